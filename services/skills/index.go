package skills

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"go.einride.tech/aip/filtering"
	"google.golang.org/protobuf/proto"
)

// How skills, mappings, validations and certificates are listed: the
// orders each List accepts and the filters served from index sets. Every
// write rewrites a resource's entries (store.Tx.SetIndex) in the same
// atomic step; a skill's entries include its search index entries.
var (
	skillIndex = &listing.Index[*skillsv1.Skill]{
		Collection: "skills",
		Name:       (*skillsv1.Skill).GetName,
		Orders: map[string]func(*skillsv1.Skill) string{
			"create_version":  func(s *skillsv1.Skill) string { return versionKey(s.GetCreateVersion()) },
			"preferred_label": func(s *skillsv1.Skill) string { return listing.TextKey(s.GetPreferredLabel()["sv"]) },
		},
		Fields: map[string]func(*skillsv1.Skill) []string{
			"broader":     func(s *skillsv1.Skill) []string { return nonEmpty(s.GetBroader()) },
			"replaced_by": func(s *skillsv1.Skill) []string { return nonEmpty(s.GetReplacedBy()) },
		},
	}

	// skillHistoryIndex reads the same creation-order sets as skillIndex
	// for a read at a past version, with no index-served filters: the
	// index sets hold the skills as they are now, so filters are checked
	// on the skills as they were.
	skillHistoryIndex = &listing.Index[*skillsv1.Skill]{
		Collection: skillIndex.Collection,
		Name:       skillIndex.Name,
		Orders:     map[string]func(*skillsv1.Skill) string{"create_version": skillIndex.Orders["create_version"]},
	}

	mappingIndex = &listing.Index[*skillsv1.CompetenceMapping]{
		Collection: "mappings",
		Name:       (*skillsv1.CompetenceMapping).GetName,
		Orders: map[string]func(*skillsv1.CompetenceMapping) string{
			"create_time":  func(m *skillsv1.CompetenceMapping) string { return listing.TimeKey(m.GetCreateTime()) },
			"display_name": func(m *skillsv1.CompetenceMapping) string { return listing.TextKey(m.GetDisplayName()) },
		},
		Tiebreak: func(m *skillsv1.CompetenceMapping) string { return listing.TimeKey(m.GetCreateTime()) },
		Fields: map[string]func(*skillsv1.CompetenceMapping) []string{
			"subject": func(m *skillsv1.CompetenceMapping) []string { return []string{m.GetSubject()} },
		},
	}

	validationIndex = &listing.Index[*skillsv1.IndustryValidation]{
		Collection: "validations",
		Name:       (*skillsv1.IndustryValidation).GetName,
		Orders: map[string]func(*skillsv1.IndustryValidation) string{
			"create_time": func(v *skillsv1.IndustryValidation) string { return listing.TimeKey(v.GetCreateTime()) },
			"assessed_on": func(v *skillsv1.IndustryValidation) string { return listing.DateKey(v.GetAssessedOn()) },
		},
		Tiebreak: func(v *skillsv1.IndustryValidation) string { return listing.TimeKey(v.GetCreateTime()) },
		Fields: map[string]func(*skillsv1.IndustryValidation) []string{
			"mapping": func(v *skillsv1.IndustryValidation) []string { return []string{v.GetMapping()} },
			// What an erasure finds a participant's validations by (only
			// participant names, as for certificates' holders).
			"person": func(v *skillsv1.IndustryValidation) []string {
				if participantID(v.GetPersonReference()) == "" {
					return nil
				}
				return []string{v.GetPersonReference()}
			},
		},
	}

	certificateIndex = &listing.Index[*skillsv1.CompetenceCertificate]{
		Collection: "certificates",
		Name:       (*skillsv1.CompetenceCertificate).GetName,
		Orders: map[string]func(*skillsv1.CompetenceCertificate) string{
			"create_time": func(c *skillsv1.CompetenceCertificate) string { return listing.TimeKey(c.GetCreateTime()) },
			"issued_on":   func(c *skillsv1.CompetenceCertificate) string { return listing.DateKey(c.GetIssuedOn()) },
		},
		Tiebreak: func(c *skillsv1.CompetenceCertificate) string { return listing.TimeKey(c.GetCreateTime()) },
		Fields: map[string]func(*skillsv1.CompetenceCertificate) []string{
			"evidence": func(c *skillsv1.CompetenceCertificate) []string { return []string{c.GetEvidence()} },
			"revoked":  func(c *skillsv1.CompetenceCertificate) []string { return []string{strconv.FormatBool(c.GetRevoked())} },
			// ListParticipantCertificates' index. Only participant names
			// are indexed: another system's id is free text, and an erased
			// holder's stand-in is no one's.
			"holder": func(c *skillsv1.CompetenceCertificate) []string {
				if participantID(c.GetHolderReference()) == "" {
					return nil
				}
				return []string{c.GetHolderReference()}
			},
		},
	}
)

// versionKey sorts taxonomy versions.
func versionKey(v int32) string { return listing.IntKey(int64(v), 10) }

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

var (
	skillFilter = mustDecls(
		filtering.DeclareStandardFunctions(),
		filtering.DeclareIdent("broader", filtering.TypeString),
		filtering.DeclareIdent("replaced_by", filtering.TypeString),
	)
	mappingFilter = mustDecls(
		filtering.DeclareStandardFunctions(),
		filtering.DeclareIdent("subject", filtering.TypeString),
	)
	validationFilter = mustDecls(
		filtering.DeclareStandardFunctions(),
		filtering.DeclareIdent("mapping", filtering.TypeString),
	)
	certificateFilter = mustDecls(
		filtering.DeclareStandardFunctions(),
		filtering.DeclareIdent("evidence", filtering.TypeString),
		filtering.DeclareIdent("revoked", filtering.TypeString),
	)
)

func mustDecls(opts ...filtering.DeclarationOption) *filtering.Declarations {
	d, err := filtering.NewDeclarations(opts...)
	if err != nil {
		panic(err)
	}
	return d
}

// fieldValues adapts an index's field functions to listing.Values.
func fieldValues[R any](ix *listing.Index[R]) listing.Values[R] {
	return func(r R, field string) []string {
		if f, ok := ix.Fields[field]; ok {
			return f(r)
		}
		return nil
	}
}

// skillValues are the filter values of a skill, also of one read at a past
// version (whose index declares no fields).
var skillValues = fieldValues(skillIndex)

// indexSkill writes the skill's list and search index entries.
func indexSkill(tx *store.Tx, s *skillsv1.Skill) {
	tx.SetIndex(skillKey(skillID(s.GetName())), append(skillIndex.Entries(Keyspace, s), searchEntries(s)...))
}

// searchEntries are a skill's memberships in the search index: each label
// (preferred, every language, and alternative) normalised whole, and each
// of its words.
func searchEntries(s *skillsv1.Skill) []store.IndexEntry {
	id := skillID(s.GetName())
	var out []store.IndexEntry
	seen := map[store.IndexEntry]bool{}
	add := func(e store.IndexEntry) {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	for _, label := range skillLabels(s) {
		n := normalise(label)
		if n == "" {
			continue
		}
		add(store.IndexEntry{Key: searchLabelKey(), Member: n + searchSep + id})
		for _, w := range words(n) {
			add(store.IndexEntry{Key: searchWordKey(), Member: w + searchSep + id})
		}
	}
	return out
}

// searchSep ends the text of a search index member; it sorts before every
// character normalised text holds.
const searchSep = "\x01"

// skillLabels are every label of a skill: Swedish first, the other
// languages in a fixed order, then the alternative labels.
func skillLabels(s *skillsv1.Skill) []string {
	labels := []string{s.GetPreferredLabel()["sv"]}
	for _, lang := range sortedKeys(s.GetPreferredLabel()) {
		if lang != "sv" {
			labels = append(labels, s.GetPreferredLabel()[lang])
		}
	}
	return append(labels, s.GetAlternativeLabels()...)
}

func (s *Service) indexMapping(tx *store.Tx, m *skillsv1.CompetenceMapping) {
	tx.SetIndex(mappingKey(mustID(mappingNameRE, m.GetName())), mappingIndex.Entries(Keyspace, m))
}

func (s *Service) indexValidation(tx *store.Tx, v *skillsv1.IndustryValidation) {
	tx.SetIndex(validationKey(mustID(validationNameRE, v.GetName())), validationIndex.Entries(Keyspace, v))
}

func (s *Service) indexCertificate(tx *store.Tx, c *skillsv1.CompetenceCertificate) {
	tx.SetIndex(certificateKey(mustID(certificateNameRE, c.GetName())), certificateIndex.Entries(Keyspace, c))
}

func (s *Service) skillLister() *listing.Lister[*skillsv1.Skill] {
	return &listing.Lister[*skillsv1.Skill]{
		Index: skillIndex, Store: s.st, Keyspace: Keyspace, Tokens: s.tokens,
		Decls: skillFilter, Values: skillValues, DefaultOrder: "create_version",
		Load: func(ctx context.Context, names []string) ([]*skillsv1.Skill, error) {
			return store.Load(ctx, s.st, keysOf(names, skillNameRE, skillKey), newSkill)
		},
		Size: func(s *skillsv1.Skill) int { return proto.Size(s) },
	}
}

// skillHistoryLister lists the taxonomy as it was at version.
func (s *Service) skillHistoryLister(version int32) *listing.Lister[*skillsv1.Skill] {
	return &listing.Lister[*skillsv1.Skill]{
		Index: skillHistoryIndex, Store: s.st, Keyspace: Keyspace, Tokens: s.tokens,
		Decls: skillFilter, Values: skillValues, DefaultOrder: "create_version",
		Load: func(ctx context.Context, names []string) ([]*skillsv1.Skill, error) {
			return s.skillsAt(ctx, names, version)
		},
		Size: func(s *skillsv1.Skill) int { return proto.Size(s) },
	}
}

func (s *Service) mappingLister() *listing.Lister[*skillsv1.CompetenceMapping] {
	return &listing.Lister[*skillsv1.CompetenceMapping]{
		Index: mappingIndex, Store: s.st, Keyspace: Keyspace, Tokens: s.tokens,
		Decls: mappingFilter, Values: fieldValues(mappingIndex), DefaultOrder: "create_time",
		Load: func(ctx context.Context, names []string) ([]*skillsv1.CompetenceMapping, error) {
			return store.Load(ctx, s.st, keysOf(names, mappingNameRE, mappingKey), newMapping)
		},
		Size: func(m *skillsv1.CompetenceMapping) int { return proto.Size(m) },
	}
}

func (s *Service) validationLister() *listing.Lister[*skillsv1.IndustryValidation] {
	return &listing.Lister[*skillsv1.IndustryValidation]{
		Index: validationIndex, Store: s.st, Keyspace: Keyspace, Tokens: s.tokens,
		Decls: validationFilter, Values: fieldValues(validationIndex), DefaultOrder: "create_time",
		Load: func(ctx context.Context, names []string) ([]*skillsv1.IndustryValidation, error) {
			return store.Load(ctx, s.st, keysOf(names, validationNameRE, validationKey), newValidation)
		},
		Size: func(v *skillsv1.IndustryValidation) int { return proto.Size(v) },
	}
}

func (s *Service) certificateLister() *listing.Lister[*skillsv1.CompetenceCertificate] {
	return &listing.Lister[*skillsv1.CompetenceCertificate]{
		Index: certificateIndex, Store: s.st, Keyspace: Keyspace, Tokens: s.tokens,
		Decls: certificateFilter, Values: fieldValues(certificateIndex), DefaultOrder: "create_time",
		Load: func(ctx context.Context, names []string) ([]*skillsv1.CompetenceCertificate, error) {
			return store.Load(ctx, s.st, keysOf(names, certificateNameRE, certificateKey), newCertificate)
		},
		Size: func(c *skillsv1.CompetenceCertificate) int { return proto.Size(c) },
	}
}

// indexVersion is the version of the certificate and validation index
// declarations above; raising it rebuilds their index entries at the next
// start. Version 1 added the holder and person indexes.
const indexVersion = 1

// Migrate brings the store up to date before the service serves: it
// writes the index entries of certificates and validations recorded before
// their index declarations had them (by holder, by person), idempotently,
// one atomic write per resource, retried if it changes meanwhile.
func (s *Service) Migrate(ctx context.Context) error {
	return s.st.Migrate(ctx, "person-indexes", indexVersion, func(ctx context.Context, log *slog.Logger) error {
		certs, err := reindex(ctx, s, "certificate", newCertificate, func(tx *store.Tx, c *skillsv1.CompetenceCertificate) {
			s.indexCertificate(tx, c)
		})
		if err != nil {
			return err
		}
		vals, err := reindex(ctx, s, "validation", newValidation, func(tx *store.Tx, v *skillsv1.IndustryValidation) {
			s.indexValidation(tx, v)
		})
		if err != nil {
			return err
		}
		log.InfoContext(ctx, "indexes rebuilt", "certificates", certs, "validations", vals)
		return nil
	})
}

// reindex rewrites the index entries of every resource of kind and says
// how many it indexed.
func reindex[T interface {
	proto.Message
	GetEtag() string
}](ctx context.Context, s *Service, kind string, newT func() T, index func(*store.Tx, T)) (int, error) {
	done := 0
	err := s.st.Scan(ctx, Keyspace.Key(kind, "*"), func(keys []string) error {
		for _, key := range keys {
			for attempt := 0; ; attempt++ {
				r := newT()
				err := s.st.Get(ctx, key, r)
				if errors.Is(err, store.ErrNotFound) {
					break
				}
				if err == nil {
					tx := s.st.Tx()
					tx.EtagIs(key, r.GetEtag(), nil)
					index(tx, r)
					_, err = tx.Commit(ctx)
				}
				if err == nil {
					break
				}
				if !errors.Is(err, store.ErrConflict) || attempt == 20 {
					return fmt.Errorf("indexing %s: %w", key, err)
				}
			}
			done++
		}
		return nil
	})
	return done, err
}
