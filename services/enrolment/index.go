package enrolment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
	"go.einride.tech/aip/filtering"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/protobuf/proto"
)

// How each collection is listed: the orders its List accepts and the
// filters served from index sets. Every write of a resource rewrites its
// entries (store.Tx.SetIndex) in the same atomic step.
//
// No index holds personal data: participants are ordered by create time
// only and indexed by pseudonymous fields, because index members are
// stored (and page tokens carry them) in clear.
var (
	projectIndex = &listing.Index[*enrolmentv1.Project]{
		Collection: "projects",
		Name:       (*enrolmentv1.Project).GetName,
		Orders: map[string]func(*enrolmentv1.Project) string{
			"create_time":  func(p *enrolmentv1.Project) string { return listing.TimeKey(p.GetCreateTime()) },
			"start_date":   func(p *enrolmentv1.Project) string { return listing.DateKey(p.GetStartDate()) },
			"display_name": func(p *enrolmentv1.Project) string { return listing.TextKey(p.GetDisplayName()) },
		},
		Tiebreak: func(p *enrolmentv1.Project) string { return listing.TimeKey(p.GetCreateTime()) },
		Fields: map[string]func(*enrolmentv1.Project) []string{
			"state":  func(p *enrolmentv1.Project) []string { return []string{p.GetState().String()} },
			"region": (*enrolmentv1.Project).GetRegion,
		},
	}

	offeringIndex = &listing.Index[*enrolmentv1.Offering]{
		Collection: "offerings",
		Name:       (*enrolmentv1.Offering).GetName,
		Orders: map[string]func(*enrolmentv1.Offering) string{
			"create_time": func(o *enrolmentv1.Offering) string { return listing.TimeKey(o.GetCreateTime()) },
			"start_date":  func(o *enrolmentv1.Offering) string { return listing.DateKey(firstDate(o)) },
		},
		Tiebreak: func(o *enrolmentv1.Offering) string { return listing.TimeKey(o.GetCreateTime()) },
		Fields: map[string]func(*enrolmentv1.Offering) []string{
			"project":      func(o *enrolmentv1.Offering) []string { return []string{o.GetProject()} },
			"state":        func(o *enrolmentv1.Offering) []string { return []string{o.GetState().String()} },
			"municipality": func(o *enrolmentv1.Offering) []string { return []string{o.GetMunicipality()} },
			"provider":     func(o *enrolmentv1.Offering) []string { return nonEmpty(o.GetProvider()) },
		},
	}

	participantIndex = &listing.Index[*enrolmentv1.Participant]{
		Collection: "participants",
		Name:       (*enrolmentv1.Participant).GetName,
		Orders: map[string]func(*enrolmentv1.Participant) string{
			"create_time": func(p *enrolmentv1.Participant) string { return listing.TimeKey(p.GetCreateTime()) },
		},
		Fields: map[string]func(*enrolmentv1.Participant) []string{
			"municipality":         func(p *enrolmentv1.Participant) []string { return []string{p.GetMunicipality()} },
			"labour_market_status": func(p *enrolmentv1.Participant) []string { return []string{p.GetLabourMarketStatus().String()} },
			"employer":             func(p *enrolmentv1.Participant) []string { return nonEmpty(p.GetEmployer()) },
		},
	}

	enrolmentIndex = &listing.Index[*enrolmentv1.Enrolment]{
		Collection: "enrolments",
		Name:       (*enrolmentv1.Enrolment).GetName,
		Orders: map[string]func(*enrolmentv1.Enrolment) string{
			"create_time": func(e *enrolmentv1.Enrolment) string { return listing.TimeKey(e.GetCreateTime()) },
		},
		Fields: map[string]func(*enrolmentv1.Enrolment) []string{
			"parent":      func(e *enrolmentv1.Enrolment) []string { return []string{offeringOf(e.GetName())} },
			"state":       func(e *enrolmentv1.Enrolment) []string { return []string{e.GetState().String()} },
			"participant": func(e *enrolmentv1.Enrolment) []string { return []string{e.GetParticipant()} },
			"project":     func(e *enrolmentv1.Enrolment) []string { return []string{e.GetProject()} },
		},
	}
)

func nonEmpty(v string) []string {
	if v == "" {
		return nil
	}
	return []string{v}
}

func firstDate(o *enrolmentv1.Offering) *date.Date {
	if len(o.GetSessions()) == 0 {
		return nil
	}
	return o.GetSessions()[0].GetDate()
}

var (
	projectFilter = mustDecls(
		filtering.DeclareStandardFunctions(),
		filtering.DeclareEnumIdent("state", enrolmentv1.Project_State(0).Type()),
		filtering.DeclareIdent("region", filtering.TypeList(filtering.TypeString)),
		filtering.DeclareIdent("funder", filtering.TypeString),
		filtering.DeclareIdent("reference_number", filtering.TypeString),
	)
	offeringFilter = mustDecls(
		filtering.DeclareStandardFunctions(),
		filtering.DeclareIdent("project", filtering.TypeString),
		filtering.DeclareEnumIdent("state", enrolmentv1.Offering_State(0).Type()),
		filtering.DeclareIdent("municipality", filtering.TypeString),
		filtering.DeclareIdent("provider", filtering.TypeString),
		filtering.DeclareEnumIdent("mode", enrolmentv1.Offering_Mode(0).Type()),
		filtering.DeclareIdent("call_off", filtering.TypeString),
	)
	participantFilter = mustDecls(
		filtering.DeclareStandardFunctions(),
		filtering.DeclareIdent("municipality", filtering.TypeString),
		filtering.DeclareEnumIdent("labour_market_status", enrolmentv1.LabourMarketStatus(0).Type()),
		filtering.DeclareIdent("employer", filtering.TypeString),
		filtering.DeclareEnumIdent("gender", enrolmentv1.Gender(0).Type()),
		filtering.DeclareEnumIdent("education_level", enrolmentv1.EducationLevel(0).Type()),
	)
	enrolmentFilter = mustDecls(
		filtering.DeclareStandardFunctions(),
		filtering.DeclareEnumIdent("state", enrolmentv1.Enrolment_State(0).Type()),
		filtering.DeclareIdent("participant", filtering.TypeString),
		filtering.DeclareIdent("project", filtering.TypeString),
	)
)

func mustDecls(opts ...filtering.DeclarationOption) *filtering.Declarations {
	d, err := filtering.NewDeclarations(opts...)
	if err != nil {
		panic(err)
	}
	return d
}

func projectValues(p *enrolmentv1.Project, field string) []string {
	switch field {
	case "state":
		return []string{p.GetState().String()}
	case "region":
		return p.GetRegion()
	case "funder":
		return []string{p.GetFunder()}
	case "reference_number":
		return []string{p.GetReferenceNumber()}
	}
	return nil
}

func offeringValues(o *enrolmentv1.Offering, field string) []string {
	switch field {
	case "project":
		return []string{o.GetProject()}
	case "state":
		return []string{o.GetState().String()}
	case "municipality":
		return []string{o.GetMunicipality()}
	case "provider":
		return []string{o.GetProvider()}
	case "mode":
		return []string{o.GetMode().String()}
	case "call_off":
		return []string{o.GetCallOff()}
	}
	return nil
}

func participantValues(p *enrolmentv1.Participant, field string) []string {
	switch field {
	case "municipality":
		return []string{p.GetMunicipality()}
	case "labour_market_status":
		return []string{p.GetLabourMarketStatus().String()}
	case "employer":
		return []string{p.GetEmployer()}
	case "gender":
		return []string{p.GetGender().String()}
	case "education_level":
		return []string{p.GetEducationLevel().String()}
	}
	return nil
}

func enrolmentValues(e *enrolmentv1.Enrolment, field string) []string {
	switch field {
	case "state":
		return []string{e.GetState().String()}
	case "participant":
		return []string{e.GetParticipant()}
	case "project":
		return []string{e.GetProject()}
	}
	return nil
}

func (s *Service) projectLister() *listing.Lister[*enrolmentv1.Project] {
	return &listing.Lister[*enrolmentv1.Project]{
		Index: projectIndex, Store: s.st, Keyspace: Keyspace, Tokens: s.tokens,
		Decls: projectFilter, Values: projectValues, DefaultOrder: "create_time",
		Load: func(ctx context.Context, names []string) ([]*enrolmentv1.Project, error) {
			keys := make([]string, 0, len(names))
			for _, n := range names {
				if id, err := parseProjectName("", n); err == nil {
					keys = append(keys, projectKey(id))
				}
			}
			return store.Load(ctx, s.st, keys, newProject)
		},
		Size: func(p *enrolmentv1.Project) int { return proto.Size(p) },
	}
}

func (s *Service) offeringLister() *listing.Lister[*enrolmentv1.Offering] {
	return &listing.Lister[*enrolmentv1.Offering]{
		Index: offeringIndex, Store: s.st, Keyspace: Keyspace, Tokens: s.tokens,
		Decls: offeringFilter, Values: offeringValues, DefaultOrder: "create_time",
		Load: s.loadOfferings,
		Size: func(o *enrolmentv1.Offering) int { return proto.Size(o) },
	}
}

func (s *Service) participantLister(view enrolmentv1.Participant_View) *listing.Lister[*enrolmentv1.Participant] {
	return &listing.Lister[*enrolmentv1.Participant]{
		Index: participantIndex, Store: s.st, Keyspace: Keyspace, Tokens: s.tokens,
		Decls: participantFilter, Values: participantValues, DefaultOrder: "create_time",
		Load: func(ctx context.Context, names []string) ([]*enrolmentv1.Participant, error) {
			return s.loadParticipants(ctx, names, view)
		},
		Size: func(p *enrolmentv1.Participant) int { return proto.Size(p) },
	}
}

func (s *Service) enrolmentLister() *listing.Lister[*enrolmentv1.Enrolment] {
	return &listing.Lister[*enrolmentv1.Enrolment]{
		Index: enrolmentIndex, Store: s.st, Keyspace: Keyspace, Tokens: s.tokens,
		Decls: enrolmentFilter, Values: enrolmentValues, DefaultOrder: "create_time",
		Load: s.loadEnrolments,
		Size: func(e *enrolmentv1.Enrolment) int { return proto.Size(e) },
	}
}

// loadOfferings reads offerings by name with their counts: one pipelined
// round trip.
func (s *Service) loadOfferings(ctx context.Context, names []string) ([]*enrolmentv1.Offering, error) {
	type read struct {
		fields *redis.SliceCmd
		wait   *redis.IntCmd
		key    string
	}
	reads := make([]read, 0, len(names))
	pipe := s.rdb.Pipeline()
	for _, n := range names {
		id, err := parseOfferingName("", n)
		if err != nil {
			continue
		}
		reads = append(reads, read{
			fields: pipe.HMGet(ctx, offeringKey(id), "pb", fieldEnrolled),
			wait:   pipe.ZCard(ctx, waitlistKey(id)),
			key:    offeringKey(id),
		})
	}
	if len(reads) == 0 {
		return nil, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.st.Err(ctx, err)
	}
	out := make([]*enrolmentv1.Offering, 0, len(reads))
	for _, r := range reads {
		vals := r.fields.Val()
		b, ok := vals[0].(string)
		if !ok {
			continue // deleted meanwhile
		}
		o := newOffering()
		if err := s.unmarshal(ctx, r.key, []byte(b), o); err != nil {
			return nil, err
		}
		withCounts(o, vals[1], r.wait.Val())
		out = append(out, o)
	}
	return out, nil
}

// withCounts sets an offering's output counts from its counter field and
// the size of its waitlist.
func withCounts(o *enrolmentv1.Offering, enrolled any, waitlisted int64) {
	n := 0
	if s, ok := enrolled.(string); ok {
		_, _ = fmt.Sscan(s, &n)
	}
	o.EnrolledCount, o.WaitlistedCount = int32(n), int32(waitlisted)
}

// loadEnrolments reads enrolments by name with their waitlist positions:
// one pipelined round trip.
func (s *Service) loadEnrolments(ctx context.Context, names []string) ([]*enrolmentv1.Enrolment, error) {
	type read struct {
		pb   *redis.StringCmd
		rank *redis.IntCmd
		key  string
	}
	reads := make([]read, 0, len(names))
	pipe := s.rdb.Pipeline()
	for _, n := range names {
		o, id, err := parseEnrolmentName("", n)
		if err != nil {
			continue
		}
		reads = append(reads, read{pb: pipe.HGet(ctx, enrolmentKey(o, id), "pb"), rank: pipe.ZRank(ctx, waitlistKey(o), id), key: enrolmentKey(o, id)})
	}
	if len(reads) == 0 {
		return nil, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.st.Err(ctx, err)
	}
	out := make([]*enrolmentv1.Enrolment, 0, len(reads))
	for _, r := range reads {
		b, err := r.pb.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, s.st.Err(ctx, err)
		}
		e := newEnrolment()
		if err := s.unmarshal(ctx, r.key, b, e); err != nil {
			return nil, err
		}
		if rank, err := r.rank.Result(); err == nil && e.GetState() == waitlisted {
			e.WaitlistPosition = int32(rank) + 1
		}
		out = append(out, e)
	}
	return out, nil
}

// indexVersion is the version of the index declarations above; raising it
// rebuilds every index at the next start.
const indexVersion = 1

// Migrate brings the store up to date before the service serves: the list
// indexes of data written by an older declaration are rebuilt, and the
// personal data is checked against the configured keys (see checkKeys).
func (s *Service) Migrate(ctx context.Context) error {
	if err := s.st.Migrate(ctx, "indexes", indexVersion, func(ctx context.Context, log *slog.Logger) error {
		for _, c := range []struct {
			what, pattern string
			index         func(ctx context.Context, tx *store.Tx, key string) error
		}{
			{"projects", Keyspace.Key("project", "*"), func(ctx context.Context, tx *store.Tx, key string) error {
				p := newProject()
				if err := s.st.Get(ctx, key, p); err != nil {
					return err
				}
				tx.EtagIs(key, p.GetEtag(), nil)
				tx.SetIndex(key, projectIndex.Entries(Keyspace, p))
				return nil
			}},
			{"offerings", Keyspace.Key("offering", "*"), func(ctx context.Context, tx *store.Tx, key string) error {
				o := newOffering()
				if err := s.st.Get(ctx, key, o); err != nil {
					return err
				}
				tx.EtagIs(key, o.GetEtag(), nil)
				tx.SetIndex(key, offeringIndex.Entries(Keyspace, o))
				return nil
			}},
			{"participants", Keyspace.Key("participant", "*"), func(ctx context.Context, tx *store.Tx, key string) error {
				p := newParticipant()
				if err := s.st.Get(ctx, key, p); err != nil {
					return err
				}
				tx.EtagIs(key, p.GetEtag(), nil)
				tx.SetIndex(key, participantIndex.Entries(Keyspace, p))
				return nil
			}},
			{"enrolments", Keyspace.Key("enrolment", "*"), func(ctx context.Context, tx *store.Tx, key string) error {
				e := newEnrolment()
				if err := s.st.Get(ctx, key, e); err != nil {
					return err
				}
				tx.EtagIs(key, e.GetEtag(), nil)
				tx.SetIndex(key, enrolmentIndex.Entries(Keyspace, e))
				return nil
			}},
		} {
			n, err := s.rebuild(ctx, log, c.what, c.pattern, c.index)
			if err != nil {
				return err
			}
			log.InfoContext(ctx, "indexes rebuilt", "of", c.what, "count", n)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := s.st.Migrate(ctx, "reportfacts", factsVersion, s.backfillFacts); err != nil {
		return err
	}
	return s.checkKeys(ctx)
}

// rebuildProgressEvery is how often a rebuild logs its progress.
const rebuildProgressEvery = 1000

// rebuild re-indexes every resource whose key matches pattern, one atomic
// write each (retried if the resource changes meanwhile).
func (s *Service) rebuild(ctx context.Context, log *slog.Logger, what, pattern string, index func(context.Context, *store.Tx, string) error) (int, error) {
	done := 0
	err := s.st.Scan(ctx, pattern, func(keys []string) error {
		for _, key := range keys {
			for attempt := 0; ; attempt++ {
				tx := s.st.Tx()
				err := index(ctx, tx, key)
				if errors.Is(err, store.ErrNotFound) {
					break
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
