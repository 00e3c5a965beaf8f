package companies

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"go.einride.tech/aip/filtering"
	"google.golang.org/protobuf/proto"
)

// Names.
var (
	companyNameRE = regexp.MustCompile(`^companies/([a-z0-9][a-z0-9-]{0,62})$`)
	noticeNameRE  = regexp.MustCompile(`^companies/([a-z0-9][a-z0-9-]{0,62})/notices/([a-z0-9][a-z0-9-]{0,62})$`)
	sessionNameRE = regexp.MustCompile(`^companies/([a-z0-9][a-z0-9-]{0,62})/coachingSessions/([a-z0-9][a-z0-9-]{0,62})$`)
)

func companyName(id string) string         { return "companies/" + id }
func noticeName(company, id string) string { return "companies/" + company + "/notices/" + id }
func sessionName(company, id string) string {
	return "companies/" + company + "/coachingSessions/" + id
}

func parseCompanyName(field, name string) (string, error) {
	m := companyNameRE.FindStringSubmatch(name)
	if m == nil {
		return "", apierr.Field(field, "must be a company name, companies/{company}")
	}
	return m[1], nil
}

func parseNoticeName(field, name string) (company, id string, err error) {
	m := noticeNameRE.FindStringSubmatch(name)
	if m == nil {
		return "", "", apierr.Field(field, "must be a notice name, companies/{company}/notices/{notice}")
	}
	return m[1], m[2], nil
}

func parseSessionName(field, name string) (company, id string, err error) {
	m := sessionNameRE.FindStringSubmatch(name)
	if m == nil {
		return "", "", apierr.Field(field, "must be a coaching session name, companies/{company}/coachingSessions/{coaching_session}")
	}
	return m[1], m[2], nil
}

// parentOf is "companies/x" of "companies/x/notices/y".
func parentOf(name string) string {
	parts := strings.SplitN(name, "/", 3)
	if len(parts) < 2 {
		return ""
	}
	return parts[0] + "/" + parts[1]
}

// How companies, notices and coaching sessions are listed (listing.Index);
// every write rewrites a resource's entries in its atomic step.
var (
	companyIndex = &listing.Index[*companiesv1.Company]{
		Collection: "companies",
		Name:       (*companiesv1.Company).GetName,
		Orders: map[string]func(*companiesv1.Company) string{
			"create_time":  func(c *companiesv1.Company) string { return listing.TimeKey(c.GetCreateTime()) },
			"display_name": func(c *companiesv1.Company) string { return listing.TextKey(c.GetDisplayName()) },
		},
		Tiebreak: func(c *companiesv1.Company) string { return listing.TimeKey(c.GetCreateTime()) },
		Fields: map[string]func(*companiesv1.Company) []string{
			"council":      func(c *companiesv1.Company) []string { return []string{c.GetCouncil()} },
			"municipality": func(c *companiesv1.Company) []string { return []string{c.GetMunicipality()} },
		},
	}

	noticeIndex = &listing.Index[*companiesv1.Notice]{
		Collection: "notices",
		Name:       (*companiesv1.Notice).GetName,
		Orders: map[string]func(*companiesv1.Notice) string{
			"notice_date": func(n *companiesv1.Notice) string { return listing.DateKey(n.GetNoticeDate()) },
			"create_time": func(n *companiesv1.Notice) string { return listing.TimeKey(n.GetCreateTime()) },
		},
		Tiebreak: func(n *companiesv1.Notice) string { return listing.TimeKey(n.GetCreateTime()) },
		Fields: map[string]func(*companiesv1.Notice) []string{
			"parent":       func(n *companiesv1.Notice) []string { return []string{parentOf(n.GetName())} },
			"kind":         func(n *companiesv1.Notice) []string { return []string{n.GetKind().String()} },
			"council":      func(n *companiesv1.Notice) []string { return []string{n.GetCouncil()} },
			"municipality": func(n *companiesv1.Notice) []string { return []string{n.GetMunicipality()} },
		},
	}

	sessionIndex = &listing.Index[*companiesv1.CoachingSession]{
		Collection: "coaching",
		Name:       (*companiesv1.CoachingSession).GetName,
		Orders: map[string]func(*companiesv1.CoachingSession) string{
			"conversation": func(c *companiesv1.CoachingSession) string {
				return listing.IntKey(int64(c.GetConversation()), 1)
			},
		},
		Tiebreak: func(c *companiesv1.CoachingSession) string { return listing.TimeKey(c.GetCreateTime()) },
		Fields: map[string]func(*companiesv1.CoachingSession) []string{
			"parent": func(c *companiesv1.CoachingSession) []string { return []string{parentOf(c.GetName())} },
		},
	}
)

var (
	companyFilter = mustDecls(
		filtering.DeclareStandardFunctions(),
		filtering.DeclareIdent("council", filtering.TypeString),
		filtering.DeclareIdent("municipality", filtering.TypeString),
		filtering.DeclareIdent("sni_code", filtering.TypeString),
		filtering.DeclareIdent("display_name", filtering.TypeString),
	)
	noticeFilter = mustDecls(
		filtering.DeclareStandardFunctions(),
		filtering.DeclareEnumIdent("kind", companiesv1.Notice_Kind(0).Type()),
		filtering.DeclareIdent("council", filtering.TypeString),
		filtering.DeclareIdent("municipality", filtering.TypeString),
	)
	noFilter = mustDecls(filtering.DeclareStandardFunctions())
)

func mustDecls(opts ...filtering.DeclarationOption) *filtering.Declarations {
	d, err := filtering.NewDeclarations(opts...)
	if err != nil {
		panic(err)
	}
	return d
}

func companyValues(c *companiesv1.Company, field string) []string {
	switch field {
	case "council":
		return []string{c.GetCouncil()}
	case "municipality":
		return []string{c.GetMunicipality()}
	case "sni_code":
		return []string{c.GetSniCode()}
	case "display_name":
		return []string{c.GetDisplayName()}
	}
	return nil
}

func noticeValues(n *companiesv1.Notice, field string) []string {
	switch field {
	case "kind":
		return []string{n.GetKind().String()}
	case "council":
		return []string{n.GetCouncil()}
	case "municipality":
		return []string{n.GetMunicipality()}
	}
	return nil
}

func loadByName[T proto.Message](ctx context.Context, st *store.Store, names []string, key func(string) string, newT func() T) ([]T, error) {
	keys := make([]string, 0, len(names))
	for _, n := range names {
		if k := key(n); k != "" {
			keys = append(keys, k)
		}
	}
	return store.Load(ctx, st, keys, newT)
}

func (s *Service) companyLister() *listing.Lister[*companiesv1.Company] {
	return &listing.Lister[*companiesv1.Company]{
		Index: companyIndex, Store: s.st, Keyspace: Keyspace, Tokens: s.tokens, Decls: companyFilter,
		Values: companyValues, DefaultOrder: "create_time",
		Load: func(ctx context.Context, names []string) ([]*companiesv1.Company, error) {
			return loadByName(ctx, s.st, names, func(n string) string {
				id, err := parseCompanyName("", n)
				if err != nil {
					return ""
				}
				return companyKey(id)
			}, newCompany)
		},
		Size: func(c *companiesv1.Company) int { return proto.Size(c) },
	}
}

func (s *Service) noticeLister() *listing.Lister[*companiesv1.Notice] {
	return &listing.Lister[*companiesv1.Notice]{
		Index: noticeIndex, Store: s.st, Keyspace: Keyspace, Tokens: s.tokens, Decls: noticeFilter,
		Values: noticeValues, DefaultOrder: "notice_date desc",
		Load: func(ctx context.Context, names []string) ([]*companiesv1.Notice, error) {
			return loadByName(ctx, s.st, names, noticeKeyOf, newNotice)
		},
		Size: func(n *companiesv1.Notice) int { return proto.Size(n) },
	}
}

func (s *Service) sessionLister() *listing.Lister[*companiesv1.CoachingSession] {
	return &listing.Lister[*companiesv1.CoachingSession]{
		Index: sessionIndex, Store: s.st, Keyspace: Keyspace, Tokens: s.tokens, Decls: noFilter,
		Values:       func(*companiesv1.CoachingSession, string) []string { return nil },
		DefaultOrder: "conversation",
		Load: func(ctx context.Context, names []string) ([]*companiesv1.CoachingSession, error) {
			return loadByName(ctx, s.st, names, func(n string) string {
				c, id, err := parseSessionName("", n)
				if err != nil {
					return ""
				}
				return sessionKey(c, id)
			}, newSession)
		},
		Size: func(c *companiesv1.CoachingSession) int { return proto.Size(c) },
	}
}

func noticeKeyOf(name string) string {
	c, id, err := parseNoticeName("", name)
	if err != nil {
		return ""
	}
	return noticeKey(c, id)
}

// indexVersion is the version of the index declarations above; raising it
// rebuilds every index at the next start.
const indexVersion = 1

// Migrate brings the store up to date before the service serves: it builds
// the list indexes of data written before they existed (or by an older
// declaration), idempotently, logging progress.
func (s *Service) Migrate(ctx context.Context) error {
	return s.st.Migrate(ctx, "indexes", indexVersion, func(ctx context.Context, log *slog.Logger) error {
		companies, err := rebuild(ctx, s.st, log, "companies", Keyspace.Key("company", "*"), newCompany,
			func(c *companiesv1.Company) []store.IndexEntry { return companyIndex.Entries(Keyspace, c) })
		if err != nil {
			return err
		}
		notices, err := rebuild(ctx, s.st, log, "notices", Keyspace.Key("notice", "*"), newNotice,
			func(n *companiesv1.Notice) []store.IndexEntry { return noticeIndex.Entries(Keyspace, n) })
		if err != nil {
			return err
		}
		sessions, err := rebuild(ctx, s.st, log, "coaching sessions", Keyspace.Key("coaching", "*"), newSession,
			func(c *companiesv1.CoachingSession) []store.IndexEntry { return sessionIndex.Entries(Keyspace, c) })
		if err != nil {
			return err
		}
		log.InfoContext(ctx, "indexes rebuilt", "companies", companies, "notices", notices, "coaching_sessions", sessions)
		return nil
	})
}

// rebuildProgressEvery is how often a rebuild logs its progress.
const rebuildProgressEvery = 1000

// rebuild re-indexes every resource whose key matches pattern, one atomic
// write each on condition that the resource is unchanged (re-read and
// retried if it changed meanwhile), and returns how many it indexed.
func rebuild[T proto.Message](ctx context.Context, st *store.Store, log *slog.Logger, what, pattern string,
	newT func() T, entries func(T) []store.IndexEntry) (int, error) {
	done := 0
	err := st.Scan(ctx, pattern, func(keys []string) error {
		for _, key := range keys {
			for attempt := 0; ; attempt++ {
				r := newT()
				err := st.Get(ctx, key, r)
				if errors.Is(err, store.ErrNotFound) {
					break // deleted meanwhile
				}
				if err == nil {
					tx := st.Tx()
					tx.EtagIs(key, etagOf(r), nil)
					tx.SetIndex(key, entries(r))
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

// etagOf is a resource's etag (every resource of the service has one).
func etagOf(m proto.Message) string {
	if e, ok := m.(interface{ GetEtag() string }); ok {
		return e.GetEtag()
	}
	return ""
}
