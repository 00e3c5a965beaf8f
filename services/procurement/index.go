package procurement

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"go.einride.tech/aip/filtering"
	"google.golang.org/protobuf/proto"
)

type (
	provider  = procurementv1.Provider
	agreement = procurementv1.FrameworkAgreement
	callOff   = procurementv1.CallOff
	bid       = procurementv1.Bid
	queued    = procurementv1.QueuedNeed
)

func newProvider() *provider   { return &provider{} }
func newAgreement() *agreement { return &agreement{} }
func newCallOff() *callOff     { return &callOff{} }
func newBid() *bid             { return &bid{} }
func newQueued() *queued       { return &queued{} }

// How each collection is listed: the orders its List accepts and the
// equality filters served from index sets. Every write of a resource
// rewrites its entries (store.Tx.SetIndex) in the same atomic step.
var (
	providerIndex = &listing.Index[*provider]{
		Collection: "providers",
		Name:       (*provider).GetName,
		Orders: map[string]func(*provider) string{
			"create_time":  func(p *provider) string { return listing.TimeKey(p.GetCreateTime()) },
			"display_name": func(p *provider) string { return listing.TextKey(p.GetDisplayName()) },
		},
		Tiebreak: func(p *provider) string { return listing.TimeKey(p.GetCreateTime()) },
		Fields: map[string]func(*provider) []string{
			"kinds":          func(p *provider) []string { return providerValues(p, "kinds") },
			"municipalities": (*provider).GetMunicipalities,
			"skill_areas":    func(p *provider) []string { return providerValues(p, "skill_areas") },
		},
	}

	// Agreements are indexed by their stored state: one that passed its
	// valid_until is listed as ACTIVE until the sweeper records it EXPIRED
	// (within Options.SweepEvery), though it reads as EXPIRED at once.
	agreementIndex = &listing.Index[*agreement]{
		Collection: "agreements",
		Name:       (*agreement).GetName,
		Orders: map[string]func(*agreement) string{
			"create_time":      func(a *agreement) string { return listing.TimeKey(a.GetCreateTime()) },
			"valid_until":      func(a *agreement) string { return listing.DateKey(a.GetValidUntil()) },
			"reference_number": func(a *agreement) string { return listing.TextKey(a.GetReferenceNumber()) },
		},
		Tiebreak: func(a *agreement) string { return listing.TimeKey(a.GetCreateTime()) },
		Fields: map[string]func(*agreement) []string{
			"state":        func(a *agreement) []string { return agreementValues(a, "state") },
			"award_method": func(a *agreement) []string { return agreementValues(a, "award_method") },
			"skill_areas":  func(a *agreement) []string { return agreementValues(a, "skill_areas") },
			"providers":    func(a *agreement) []string { return agreementValues(a, "providers") },
		},
	}

	// A call-off is listed under "invited" by every provider it was offered
	// or invited to bid on (ListCallOffsRequest.provider), and under
	// "provider" by its current offeree or winner.
	callOffIndex = &listing.Index[*callOff]{
		Collection: "call_offs",
		Name:       (*callOff).GetName,
		Orders: map[string]func(*callOff) string{
			"create_time": func(c *callOff) string { return listing.TimeKey(c.GetCreateTime()) },
			"award_time":  func(c *callOff) string { return listing.TimeKey(c.GetAwardTime()) },
		},
		Tiebreak: func(c *callOff) string { return listing.TimeKey(c.GetCreateTime()) },
		Fields: map[string]func(*callOff) []string{
			"state":               func(c *callOff) []string { return callOffValues(c, "state") },
			"framework_agreement": func(c *callOff) []string { return callOffValues(c, "framework_agreement") },
			"lot":                 func(c *callOff) []string { return callOffValues(c, "lot") },
			"need":                func(c *callOff) []string { return callOffValues(c, "need") },
			"project":             func(c *callOff) []string { return callOffValues(c, "project") },
			"award_method":        func(c *callOff) []string { return callOffValues(c, "award_method") },
			"provider":            func(c *callOff) []string { return callOffValues(c, "provider") },
			"invited":             (*callOff).GetInvitedProviders,
		},
	}

	bidIndex = &listing.Index[*bid]{
		Collection: "bids",
		Name:       (*bid).GetName,
		Orders: map[string]func(*bid) string{
			"rank": func(b *bid) string { return listing.IntKey(int64(b.GetRank()), 3) },
		},
		Tiebreak: func(b *bid) string { return listing.TimeKey(b.GetCreateTime()) },
		Fields: map[string]func(*bid) []string{
			"parent":   func(b *bid) []string { return []string{bidParent(b.GetName())} },
			"provider": func(b *bid) []string { return []string{b.GetProvider()} },
		},
	}

	// The queue: "priority desc" lists the most urgent first and, within a
	// priority, the earliest approved first (the tiebreak ascends in both
	// directions).
	queueIndex = &listing.Index[*queued]{
		Collection: "queue",
		Name:       (*queued).GetNeed,
		Orders: map[string]func(*queued) string{
			"priority":     func(q *queued) string { return listing.IntKey(int64(q.GetPriority()), 2) },
			"approve_time": func(q *queued) string { return listing.TimeKey(q.GetApproveTime()) },
		},
		Tiebreak: func(q *queued) string { return listing.TimeKey(q.GetApproveTime()) },
		Fields: map[string]func(*queued) []string{
			"council":  func(q *queued) []string { return []string{q.GetCouncil()} },
			"priority": func(q *queued) []string { return []string{q.GetPriority().String()} },
		},
	}
)

// bidParent is "callOffs/x" of "callOffs/x/bids/y".
func bidParent(name string) string {
	if i := strings.Index(name, "/bids/"); i >= 0 {
		return name[:i]
	}
	return ""
}

func providerValues(p *provider, field string) []string {
	switch field {
	case "kinds":
		out := make([]string, len(p.GetKinds()))
		for i, k := range p.GetKinds() {
			out[i] = k.String()
		}
		return out
	case "municipalities":
		return p.GetMunicipalities()
	case "skill_areas":
		var out []string
		for _, a := range p.GetAccreditations() {
			if !slices.Contains(out, a.GetSkillArea()) {
				out = append(out, a.GetSkillArea())
			}
		}
		return out
	case "display_name":
		return []string{p.GetDisplayName()}
	}
	return nil
}

func agreementValues(a *agreement, field string) []string {
	switch field {
	case "state":
		return []string{a.GetState().String()}
	case "award_method":
		return []string{a.GetAwardMethod().String()}
	case "reference_number":
		return []string{a.GetReferenceNumber()}
	case "skill_areas", "providers":
		var out []string
		for _, l := range a.GetLots() {
			vs := l.GetSkillAreas()
			if field == "providers" {
				vs = l.GetProviders()
			}
			for _, v := range vs {
				if !slices.Contains(out, v) {
					out = append(out, v)
				}
			}
		}
		return out
	}
	return nil
}

func callOffValues(c *callOff, field string) []string {
	switch field {
	case "state":
		return []string{c.GetState().String()}
	case "framework_agreement":
		return []string{c.GetFrameworkAgreement()}
	case "lot":
		return []string{c.GetLot()}
	case "need":
		return []string{c.GetNeed()}
	case "project":
		return []string{c.GetProject()}
	case "award_method":
		return []string{c.GetAwardMethod().String()}
	case "provider":
		return []string{c.GetProvider()}
	}
	return nil
}

func queuedValues(q *queued, field string) []string {
	switch field {
	case "council":
		return []string{q.GetCouncil()}
	case "priority":
		return []string{q.GetPriority().String()}
	}
	return nil
}

func mustDecls(opts ...filtering.DeclarationOption) *filtering.Declarations {
	d, err := filtering.NewDeclarations(opts...)
	if err != nil {
		panic(err)
	}
	return d
}

var (
	providerFilter = mustDecls(
		filtering.DeclareStandardFunctions(),
		filtering.DeclareIdent("kinds", filtering.TypeList(filtering.TypeString)),
		filtering.DeclareIdent("municipalities", filtering.TypeList(filtering.TypeString)),
		filtering.DeclareIdent("skill_areas", filtering.TypeList(filtering.TypeString)),
		filtering.DeclareIdent("display_name", filtering.TypeString),
	)
	agreementFilter = mustDecls(
		filtering.DeclareStandardFunctions(),
		filtering.DeclareEnumIdent("state", procurementv1.FrameworkAgreement_State(0).Type()),
		filtering.DeclareEnumIdent("award_method", procurementv1.AwardMethod(0).Type()),
		filtering.DeclareIdent("skill_areas", filtering.TypeList(filtering.TypeString)),
		filtering.DeclareIdent("providers", filtering.TypeList(filtering.TypeString)),
		filtering.DeclareIdent("reference_number", filtering.TypeString),
	)
	callOffFilter = mustDecls(
		filtering.DeclareStandardFunctions(),
		filtering.DeclareEnumIdent("state", procurementv1.CallOff_State(0).Type()),
		filtering.DeclareEnumIdent("award_method", procurementv1.AwardMethod(0).Type()),
		filtering.DeclareIdent("framework_agreement", filtering.TypeString),
		filtering.DeclareIdent("lot", filtering.TypeString),
		filtering.DeclareIdent("need", filtering.TypeString),
		filtering.DeclareIdent("project", filtering.TypeString),
		filtering.DeclareIdent("provider", filtering.TypeString),
	)
	queueFilter = mustDecls(
		filtering.DeclareStandardFunctions(),
		filtering.DeclareIdent("council", filtering.TypeString),
		filtering.DeclareEnumIdent("priority", councilsv1.Priority(0).Type()),
	)
	noFilter = mustDecls(filtering.DeclareStandardFunctions())
)

func (s *Service) indexProvider(tx *store.Tx, p *provider) {
	tx.SetIndex(providerKey(providerID(p.GetName())), providerIndex.Entries(Keyspace, p))
}

func (s *Service) indexAgreement(tx *store.Tx, a *agreement) {
	id, _ := parseAgreementName("", a.GetName())
	tx.SetIndex(agreementKey(id), agreementIndex.Entries(Keyspace, a))
}

func (s *Service) indexCallOff(tx *store.Tx, c *callOff) {
	id, _ := parseCallOffName("", c.GetName())
	tx.SetIndex(callOffKey(id), callOffIndex.Entries(Keyspace, c))
}

func (s *Service) indexBid(tx *store.Tx, b *bid) {
	c, _ := parseCallOffName("", bidParent(b.GetName()))
	tx.SetIndex(bidKey(c, providerID(b.GetProvider())), bidIndex.Entries(Keyspace, b))
}

func (s *Service) indexQueued(tx *store.Tx, q *queued) {
	c, n, _ := parseNeedName(q.GetNeed())
	tx.SetIndex(queuedKey(c, n), queueIndex.Entries(Keyspace, q))
}

// Loading rows by name, one pipelined read each.

func (s *Service) loadProviders(ctx context.Context, names []string) ([]*provider, error) {
	keys := make([]string, 0, len(names))
	for _, n := range names {
		if id, err := parseProviderName("", n); err == nil {
			keys = append(keys, providerKey(id))
		}
	}
	return store.Load(ctx, s.st, keys, newProvider)
}

// loadAgreements reads agreements with the value awarded under each, as
// they are shown: awarded_value filled in, an ACTIVE one past its
// valid_until shown EXPIRED.
func (s *Service) loadAgreements(ctx context.Context, names []string) ([]*agreement, error) {
	keys := make([]string, 0, len(names))
	for _, n := range names {
		if id, err := parseAgreementName("", n); err == nil {
			keys = append(keys, agreementKey(id))
		}
	}
	rows, err := s.st.HashFields(ctx, keys, "pb", fieldAwarded)
	if err != nil {
		return nil, err
	}
	out := make([]*agreement, 0, len(rows))
	for i, r := range rows {
		if r[0] == "" {
			continue // deleted between the index read and now
		}
		a := newAgreement()
		if err := proto.Unmarshal([]byte(r[0]), a); err != nil {
			s.log.ErrorContext(ctx, "stored agreement does not decode", "key", keys[i], "error", err)
			return nil, errStoredUnreadable
		}
		awarded, _ := strconv.ParseInt(r[1], 10, 64)
		out = append(out, s.shown(a, awarded))
	}
	return out, nil
}

func (s *Service) loadCallOffs(ctx context.Context, names []string) ([]*callOff, error) {
	keys := make([]string, 0, len(names))
	for _, n := range names {
		if id, err := parseCallOffName("", n); err == nil {
			keys = append(keys, callOffKey(id))
		}
	}
	return store.Load(ctx, s.st, keys, newCallOff)
}

func (s *Service) loadBids(ctx context.Context, names []string) ([]*bid, error) {
	keys := make([]string, 0, len(names))
	for _, n := range names {
		c, err := parseCallOffName("", bidParent(n))
		if err == nil {
			keys = append(keys, bidKey(c, n[strings.LastIndex(n, "/")+1:]))
		}
	}
	return store.Load(ctx, s.st, keys, newBid)
}

func (s *Service) loadQueued(ctx context.Context, names []string) ([]*queued, error) {
	keys := make([]string, 0, len(names))
	for _, n := range names {
		if c, id, ok := parseNeedName(n); ok {
			keys = append(keys, queuedKey(c, id))
		}
	}
	return store.Load(ctx, s.st, keys, newQueued)
}

func (s *Service) providerLister() *listing.Lister[*provider] {
	return &listing.Lister[*provider]{
		Index: providerIndex, Store: s.st, Keyspace: Keyspace, Tokens: s.tokens,
		Decls: providerFilter, Values: providerValues, DefaultOrder: "create_time",
		Load: s.loadProviders, Size: func(p *provider) int { return proto.Size(p) },
	}
}

func (s *Service) agreementLister() *listing.Lister[*agreement] {
	return &listing.Lister[*agreement]{
		Index: agreementIndex, Store: s.st, Keyspace: Keyspace, Tokens: s.tokens,
		Decls: agreementFilter, Values: agreementValues, DefaultOrder: "create_time",
		Load: s.loadAgreements, Size: func(a *agreement) int { return proto.Size(a) },
	}
}

func (s *Service) callOffLister() *listing.Lister[*callOff] {
	return &listing.Lister[*callOff]{
		Index: callOffIndex, Store: s.st, Keyspace: Keyspace, Tokens: s.tokens,
		Decls: callOffFilter, Values: callOffValues, DefaultOrder: "create_time",
		Load: s.loadCallOffs, Size: func(c *callOff) int { return proto.Size(c) },
	}
}

func (s *Service) bidLister() *listing.Lister[*bid] {
	return &listing.Lister[*bid]{
		Index: bidIndex, Store: s.st, Keyspace: Keyspace, Tokens: s.tokens,
		Decls: noFilter, Values: func(*bid, string) []string { return nil }, DefaultOrder: "rank",
		Load: s.loadBids, Size: func(b *bid) int { return proto.Size(b) },
	}
}

func (s *Service) queueLister() *listing.Lister[*queued] {
	return &listing.Lister[*queued]{
		Index: queueIndex, Store: s.st, Keyspace: Keyspace, Tokens: s.tokens,
		Decls: queueFilter, Values: queuedValues, DefaultOrder: "priority desc",
		Load: s.loadQueued, Size: func(q *queued) int { return proto.Size(q) },
	}
}

// indexVersion is the version of the index declarations above; raising it
// rebuilds every index at the next start.
const indexVersion = 1

// Migrate brings the store up to date before the service serves: it
// (re)builds the list indexes of everything stored when their declaration
// is newer than the data's, idempotently, logging progress.
func (s *Service) Migrate(ctx context.Context) error {
	return s.st.Migrate(ctx, "indexes", indexVersion, func(ctx context.Context, log *slog.Logger) error {
		kinds := []struct {
			what, pattern string
			index         func(ctx context.Context, tx *store.Tx, key string) error
		}{
			{"providers", Keyspace.Key("provider", "*"), reindex(s, newProvider, s.indexProvider)},
			{"agreements", Keyspace.Key("agreement", "*"), reindex(s, newAgreement, s.indexAgreement)},
			{"call-offs", Keyspace.Key("calloff", "*"), reindex(s, newCallOff, s.indexCallOff)},
			{"bids", Keyspace.Key("bid", "*"), reindex(s, newBid, s.indexBid)},
			{"queued needs", Keyspace.Key("queued", "*"), reindex(s, newQueued, s.indexQueued)},
		}
		for _, k := range kinds {
			n, err := s.rebuild(ctx, log, k.what, k.pattern, k.index)
			if err != nil {
				return err
			}
			log.InfoContext(ctx, "indexes rebuilt", "of", k.what, "count", n)
		}
		return nil
	})
}

// reindex re-writes the index entries of the resource at a key, on
// condition that it is unchanged when the write lands.
func reindex[T proto.Message](s *Service, newT func() T, index func(*store.Tx, T)) func(context.Context, *store.Tx, string) error {
	return func(ctx context.Context, tx *store.Tx, key string) error {
		r := newT()
		if err := s.st.Get(ctx, key, r); err != nil {
			return err
		}
		// Queued needs have no etag: the consumer that writes them starts
		// after Migrate.
		if fd := r.ProtoReflect().Descriptor().Fields().ByName("etag"); fd != nil {
			tx.EtagIs(key, r.ProtoReflect().Get(fd).String(), nil)
		}
		index(tx, r)
		return nil
	}
}

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
			if done++; done%1000 == 0 {
				log.InfoContext(ctx, "rebuilding indexes", "of", what, "done", done)
			}
		}
		return nil
	})
	return done, err
}
