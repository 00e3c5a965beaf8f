package councils

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"google.golang.org/protobuf/proto"
)

// How councils and needs are listed: the orders ListCouncils and ListNeeds
// accept and the filters served from index sets. Every write of a council
// or need rewrites its entries (store.Tx.SetIndex) in the same atomic step.
var (
	councilIndex = &listing.Index[*councilsv1.SectorCouncil]{
		Collection: "councils",
		Name:       (*councilsv1.SectorCouncil).GetName,
		Orders: map[string]func(*councilsv1.SectorCouncil) string{
			"create_time":  func(c *councilsv1.SectorCouncil) string { return listing.TimeKey(c.GetCreateTime()) },
			"display_name": func(c *councilsv1.SectorCouncil) string { return listing.TextKey(c.GetDisplayName()) },
		},
		Tiebreak: func(c *councilsv1.SectorCouncil) string { return listing.TimeKey(c.GetCreateTime()) },
		Fields: map[string]func(*councilsv1.SectorCouncil) []string{
			"sector":         func(c *councilsv1.SectorCouncil) []string { return []string{c.GetSector().String()} },
			"municipalities": (*councilsv1.SectorCouncil).GetMunicipalities,
		},
	}

	// A need is listed by its council's sector and, when it names no
	// municipality, by its council's municipalities: changing those on the
	// council re-indexes its needs (reindexNeeds).
	needIndex = &listing.Index[needRow]{
		Collection: "needs",
		Name:       needRowName,
		Orders: map[string]func(needRow) string{
			"create_time": func(r needRow) string { return listing.TimeKey(r.need.GetCreateTime()) },
			"priority":    func(r needRow) string { return listing.IntKey(int64(r.need.GetPriority()), 2) },
			"needed_by":   func(r needRow) string { return listing.DateKey(r.need.GetNeededBy()) },
		},
		Tiebreak: func(r needRow) string { return listing.TimeKey(r.need.GetCreateTime()) },
		Fields: map[string]func(needRow) []string{
			"parent":         func(r needRow) []string { return []string{parentOf(r.need.GetName())} },
			"state":          func(r needRow) []string { return needValues(r, "state") },
			"priority":       func(r needRow) []string { return needValues(r, "priority") },
			"sector":         func(r needRow) []string { return needValues(r, "sector") },
			"municipalities": func(r needRow) []string { return needValues(r, "municipalities") },
		},
	}
)

// parentOf is "councils/x" of "councils/x/needs/y".
func parentOf(needName string) string {
	i := strings.Index(needName, "/needs/")
	if i < 0 {
		return ""
	}
	return needName[:i]
}

func (s *Service) indexCouncil(tx *store.Tx, c *councilsv1.SectorCouncil) {
	id, _ := parseCouncilName("", c.GetName())
	tx.SetIndex(councilKey(id), councilIndex.Entries(Keyspace, c))
}

func (s *Service) indexNeed(tx *store.Tx, n *councilsv1.CompetenceNeed, council *councilsv1.SectorCouncil) {
	c, id, _ := parseNeedName("", n.GetName())
	tx.SetIndex(needKey(c, id), needIndex.Entries(Keyspace, needRow{need: n, council: council}))
}

// loadCouncils reads councils by name in one round trip, skipping missing ones.
func (s *Service) loadCouncils(ctx context.Context, names []string) ([]*councilsv1.SectorCouncil, error) {
	keys := make([]string, 0, len(names))
	for _, n := range names {
		if id, err := parseCouncilName("", n); err == nil {
			keys = append(keys, councilKey(id))
		}
	}
	return store.Load(ctx, s.st, keys, newCouncil)
}

// loadNeedRows reads needs by name and their councils: two round trips.
func (s *Service) loadNeedRows(ctx context.Context, names []string) ([]needRow, error) {
	keys := make([]string, 0, len(names))
	for _, n := range names {
		if c, id, err := parseNeedName("", n); err == nil {
			keys = append(keys, needKey(c, id))
		}
	}
	needs, err := store.Load(ctx, s.st, keys, newNeed)
	if err != nil {
		return nil, err
	}
	var councilNames []string
	seen := map[string]bool{}
	for _, n := range needs {
		if p := parentOf(n.GetName()); !seen[p] {
			seen[p] = true
			councilNames = append(councilNames, p)
		}
	}
	councils, err := s.loadCouncils(ctx, councilNames)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*councilsv1.SectorCouncil, len(councils))
	for _, c := range councils {
		byName[c.GetName()] = c
	}
	rows := make([]needRow, len(needs))
	for i, n := range needs {
		rows[i] = needRow{need: n, council: byName[parentOf(n.GetName())]}
	}
	return rows, nil
}

// councilNeedNames are the names of every need of a council, from its
// index set (for re-indexing them; a council has tens of needs).
func (s *Service) councilNeedNames(ctx context.Context, council string) ([]string, error) {
	var names []string
	after := ""
	for {
		ms, err := s.st.Range(ctx, needIndex.Key(Keyspace, "create_time", false, "parent", council), after, 1000)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			names = append(names, listing.MemberName(m))
		}
		if len(ms) < 1000 {
			return names, nil
		}
		after = ms[len(ms)-1]
	}
}

// reindexNeeds adds to tx the index entries of every need of the council
// as it will be after tx (nil: deleted), each on condition that the need is
// unchanged when tx lands. A council with a thousand needs makes this a
// write of about a hundred thousand index entries; councils have tens.
// It returns the needs as read (each pinned by its etag in tx).
func (s *Service) reindexNeeds(ctx context.Context, tx *store.Tx, council string, after *councilsv1.SectorCouncil) ([]needRow, error) {
	names, err := s.councilNeedNames(ctx, council)
	if err != nil {
		return nil, err
	}
	rows, err := s.loadNeedRows(ctx, names)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		c, id, _ := parseNeedName("", r.need.GetName())
		tx.EtagIs(needKey(c, id), r.need.GetEtag(), nil)
		s.indexNeed(tx, r.need, after)
	}
	return rows, nil
}

func (s *Service) councilLister() *listing.Lister[*councilsv1.SectorCouncil] {
	return &listing.Lister[*councilsv1.SectorCouncil]{
		Index: councilIndex, Store: s.st, Keyspace: Keyspace, Tokens: s.tokens,
		Decls: councilFilter, Values: councilValues, DefaultOrder: "create_time",
		Load: s.loadCouncils,
		Size: func(c *councilsv1.SectorCouncil) int { return proto.Size(c) },
	}
}

func (s *Service) needLister() *listing.Lister[needRow] {
	return &listing.Lister[needRow]{
		Index: needIndex, Store: s.st, Keyspace: Keyspace, Tokens: s.tokens,
		Decls: needFilter, Values: needValues, DefaultOrder: "create_time",
		Load: s.loadNeedRows,
		Size: func(r needRow) int { return proto.Size(r.need) },
	}
}

// indexVersion is the version of the index declarations above; raising it
// rebuilds every index at the next start.
const indexVersion = 1

// Migrate brings the store up to date before the service serves: it
// builds the list indexes of data written before they existed (or by an
// older declaration), idempotently, logging progress.
func (s *Service) Migrate(ctx context.Context) error {
	return s.st.Migrate(ctx, "indexes", indexVersion, func(ctx context.Context, log *slog.Logger) error {
		councils, err := s.rebuild(ctx, log, "councils", Keyspace.Key("council", "*"), func(ctx context.Context, tx *store.Tx, key string) error {
			c := newCouncil()
			if err := s.st.Get(ctx, key, c); err != nil {
				return err
			}
			tx.EtagIs(key, c.GetEtag(), nil)
			s.indexCouncil(tx, c)
			return nil
		})
		if err != nil {
			return err
		}
		needs, err := s.rebuild(ctx, log, "needs", Keyspace.Key("need", "*"), func(ctx context.Context, tx *store.Tx, key string) error {
			n := newNeed()
			if err := s.st.Get(ctx, key, n); err != nil {
				return err
			}
			rows, err := s.loadNeedRows(ctx, []string{n.GetName()})
			if err != nil || len(rows) == 0 {
				return err
			}
			tx.EtagIs(key, n.GetEtag(), nil)
			s.indexNeed(tx, n, rows[0].council)
			return nil
		})
		if err != nil {
			return err
		}
		// The sorted sets of the first version, which lists read whole.
		tx := s.st.Tx()
		tx.Del(Keyspace.Key("councils"))
		tx.Del(Keyspace.Key("needs"))
		if err := s.st.Scan(ctx, Keyspace.Key("needs", "*"), func(keys []string) error {
			for _, k := range keys {
				tx.Del(k)
			}
			return nil
		}); err != nil {
			return err
		}
		if _, err := tx.Commit(ctx); err != nil {
			return err
		}
		log.InfoContext(ctx, "indexes rebuilt", "councils", councils, "needs", needs)
		return nil
	})
}

// rebuildProgressEvery is how often a rebuild logs its progress.
const rebuildProgressEvery = 1000

// rebuild re-indexes every resource whose key matches pattern, one atomic
// write each (retried if the resource changes meanwhile), and returns how
// many it indexed.
func (s *Service) rebuild(ctx context.Context, log *slog.Logger, what, pattern string, index func(context.Context, *store.Tx, string) error) (int, error) {
	done := 0
	err := s.st.Scan(ctx, pattern, func(keys []string) error {
		for _, key := range keys {
			for attempt := 0; ; attempt++ {
				tx := s.st.Tx()
				err := index(ctx, tx, key)
				if errors.Is(err, store.ErrNotFound) {
					break // deleted meanwhile
				}
				if err == nil {
					_, err = tx.Commit(ctx)
				}
				if err == nil {
					break
				}
				if !errors.Is(err, store.ErrConflict) || attempt == 20 {
					return fmt.Errorf("indexing %s: %w", key, err)
				}
			}
			if done++; done%rebuildProgressEvery == 0 {
				log.InfoContext(ctx, "rebuilding indexes", "of", what, "done", done)
			}
		}
		return nil
	})
	return done, err
}
