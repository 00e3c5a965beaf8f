package procurement

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/dates"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/masks"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var (
	agreementMutable = []string{"reference_number", "title", "description", "valid_from", "valid_until", "ceiling_value",
		"award_method", "price_weight", "quality_weight", "lots"}
	agreementIgnored = []string{"name", "awarded_value", "state", "state_reason", "create_time", "update_time", "activate_time", "etag"}
)

const (
	agreementDraft      = procurementv1.FrameworkAgreement_STATE_DRAFT
	agreementActive     = procurementv1.FrameworkAgreement_STATE_ACTIVE
	agreementExpired    = procurementv1.FrameworkAgreement_STATE_EXPIRED
	agreementTerminated = procurementv1.FrameworkAgreement_STATE_TERMINATED

	rankOrder       = procurementv1.AwardMethod_AWARD_METHOD_RANK_ORDER
	miniCompetition = procurementv1.AwardMethod_AWARD_METHOD_MINI_COMPETITION
	eitherMethod    = procurementv1.AwardMethod_AWARD_METHOD_EITHER

	assessmentLot = procurementv1.Lot_KIND_ASSESSMENT
	trainingLot   = procurementv1.Lot_KIND_TRAINING
)

// MaxAgreementYears is how long a framework agreement may run (LOU 7 kap.
// 2 §: at most four years).
const MaxAgreementYears = 4

var errStoredUnreadable = status.Error(codes.DataLoss, "a stored resource could not be read")

// wrongState is FAILED_PRECONDITION naming the resource's current state,
// with a PreconditionFailure detail for programs.
func wrongState(name, verb, current string, allowed ...string) error {
	st := status.Newf(codes.FailedPrecondition, "cannot %s %s: it is %s; that needs %s", verb, name, current, strings.Join(allowed, " or "))
	if d, err := st.WithDetails(&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{
		{Type: "STATE", Subject: name, Description: "current state " + current},
	}}); err == nil {
		st = d
	}
	return st.Err()
}

// precondition is FAILED_PRECONDITION with one PreconditionFailure
// violation of type typ about subject.
func precondition(typ, subject, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	st := status.New(codes.FailedPrecondition, msg)
	if d, err := st.WithDetails(&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{
		{Type: typ, Subject: subject, Description: msg},
	}}); err == nil {
		st = d
	}
	return st.Err()
}

// allows reports whether an agreement's award method admits method.
func allows(agreed, method procurementv1.AwardMethod) bool {
	return agreed == method || agreed == eitherMethod
}

// shown is a stored agreement as the API shows it: with the value awarded
// under it, and EXPIRED once its valid_until has passed (Swedish date),
// whether or not the sweeper has recorded that yet.
func (s *Service) shown(a *agreement, awarded int64) *agreement {
	a.AwardedValue = sek(awarded)
	if a.GetState() == agreementActive && s.ended(a) {
		a.State, a.StateReason = agreementExpired, "valid_until "+dates.String(a.GetValidUntil())+" has passed"
	}
	return a
}

// ended reports whether the agreement's last day is behind us.
func (s *Service) ended(a *agreement) bool { return s.today() > dates.Key(a.GetValidUntil()) }

// awarded is the öre awarded under the agreement with id so far.
func (s *Service) awarded(ctx context.Context, id string) (int64, error) {
	v, err := s.rdb.HGet(ctx, agreementKey(id), fieldAwarded).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, s.st.Err(ctx, err)
	}
	return v, nil
}

// checkAgreement is the domain validation of an agreement as it will be
// stored; it normalises lot kinds in a. It returns the ranked providers
// as read (by name), for a write to pin.
func (s *Service) checkAgreement(ctx context.Context, v *apierr.Violations, a *agreement, prefix string) (map[string]*provider, error) {
	fromOK := checkDate(v, prefix+".valid_from", a.GetValidFrom())
	untilOK := checkDate(v, prefix+".valid_until", a.GetValidUntil())
	if fromOK && untilOK {
		limit := dates.AddDate(a.GetValidFrom(), MaxAgreementYears, 0, 0)
		switch {
		case dates.Key(a.GetValidUntil()) < dates.Key(a.GetValidFrom()):
			v.Add(prefix+".valid_until", "%s is before valid_from %s", dates.String(a.GetValidUntil()), dates.String(a.GetValidFrom()))
		case dates.Key(a.GetValidUntil()) >= dates.Key(limit):
			v.Add(prefix+".valid_until", "a framework agreement runs at most %d years (LOU): from %s its last day is at the latest the day before %s, not %s",
				MaxAgreementYears, dates.String(a.GetValidFrom()), dates.String(limit), dates.String(a.GetValidUntil()))
		}
	}
	checkSEK(v, prefix+".ceiling_value", a.GetCeilingValue())
	sum := a.GetPriceWeight() + a.GetQualityWeight()
	switch {
	case allows(a.GetAwardMethod(), miniCompetition) && sum != 100:
		v.Add(prefix+".price_weight", "price_weight (%d) and quality_weight (%d) must sum to 100 when the agreement allows mini-competition",
			a.GetPriceWeight(), a.GetQualityWeight())
	case !allows(a.GetAwardMethod(), miniCompetition) && sum != 0 && sum != 100:
		v.Add(prefix+".price_weight", "price_weight (%d) and quality_weight (%d) must sum to 100, or both be 0", a.GetPriceWeight(), a.GetQualityWeight())
	}

	var names []string
	ids := map[string]int{}
	for i, l := range a.GetLots() {
		if j, dup := ids[l.GetId()]; dup {
			v.Add(fmt.Sprintf("%s.lots[%d].id", prefix, i), "%q is also the id of lots[%d]; lot ids are unique within an agreement", l.GetId(), j)
		}
		ids[l.GetId()] = i
		if l.GetKind() == procurementv1.Lot_KIND_UNSPECIFIED {
			l.Kind = trainingLot
		}
		for _, p := range l.GetProviders() {
			if !slices.Contains(names, p) {
				names = append(names, p)
			}
		}
	}
	found, err := s.loadProviders(ctx, names)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*provider, len(found))
	for _, p := range found {
		byName[p.GetName()] = p
	}
	for i, l := range a.GetLots() {
		for j, name := range l.GetProviders() {
			field := fmt.Sprintf("%s.lots[%d].providers[%d]", prefix, i, j)
			p := byName[name]
			switch {
			case p == nil:
				v.Add(field, "%s does not exist", name)
			case l.GetKind() == assessmentLot && !slices.Contains(p.GetKinds(), testCentre):
				v.Add(field, "%s is not a test centre; an assessment lot ranks accredited test centres only", name)
			case l.GetKind() == assessmentLot:
				valid := s.validAccreditations(p)
				for _, area := range l.GetSkillAreas() {
					if !slices.Contains(valid, area) {
						v.Add(field, "%s holds no accreditation for %s valid today; an assessment lot ranks accredited test centres only", name, area)
						break
					}
				}
			}
		}
	}
	return byName, nil
}

// CreateFrameworkAgreement implements procurementv1.ProcurementServiceServer.
func (s *Service) CreateFrameworkAgreement(ctx context.Context, req *procurementv1.CreateFrameworkAgreementRequest) (*procurementv1.FrameworkAgreement, error) {
	a := proto.CloneOf(req.GetFrameworkAgreement())
	var v apierr.Violations
	if _, err := s.checkAgreement(ctx, &v, a, "framework_agreement"); err != nil {
		return nil, err
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := s.checkSkills(ctx, &v, agreementSkills(a, "framework_agreement"), skillAnswers{}); err != nil {
		return nil, err
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	id := req.GetFrameworkAgreementId()
	if id == "" {
		id = uuid.NewString()
	}
	now := timestamppb.New(s.now())
	a.Name, a.CreateTime, a.UpdateTime = agreementName(id), now, now
	a.State, a.StateReason, a.ActivateTime, a.AwardedValue = agreementDraft, "", nil, nil

	tx := s.st.Tx()
	if req.GetRequestId() != "" {
		tx.Idempotent(idemKey("agreement", req.GetRequestId()), a.GetName(), store.Fingerprint(req))
	}
	tx.MustNotExist(agreementKey(id), status.Errorf(codes.AlreadyExists, "%s already exists", a.GetName()))
	tx.MustNotExist(referenceKey(a.GetReferenceNumber()), referenceTaken(a.GetReferenceNumber()))
	if err := tx.Put(agreementKey(id), a); err != nil {
		return nil, err
	}
	s.indexAgreement(tx, a)
	tx.HSet(referenceKey(a.GetReferenceNumber()), "agreement", a.GetName())
	tx.Emit("framework_agreement.created", a.GetName(), a)
	replay, err := tx.Commit(ctx)
	if err != nil {
		return nil, err
	}
	if replay != nil {
		return s.GetFrameworkAgreement(ctx, &procurementv1.GetFrameworkAgreementRequest{Name: replay.Name})
	}
	return s.shown(a, 0), nil
}

func referenceTaken(ref string) error {
	return status.Errorf(codes.AlreadyExists, "a framework agreement with reference number %s already exists", ref)
}

// GetFrameworkAgreement implements procurementv1.ProcurementServiceServer.
func (s *Service) GetFrameworkAgreement(ctx context.Context, req *procurementv1.GetFrameworkAgreementRequest) (*procurementv1.FrameworkAgreement, error) {
	if _, err := parseAgreementName("name", req.GetName()); err != nil {
		return nil, err
	}
	as, err := s.loadAgreements(ctx, []string{req.GetName()})
	if err != nil {
		return nil, err
	}
	if len(as) == 0 {
		return nil, apierr.NotFound(req.GetName())
	}
	return as[0], nil
}

// ListFrameworkAgreements implements procurementv1.ProcurementServiceServer.
func (s *Service) ListFrameworkAgreements(ctx context.Context, req *procurementv1.ListFrameworkAgreementsRequest) (*procurementv1.ListFrameworkAgreementsResponse, error) {
	page, err := s.agreementLister().List(ctx, listing.Request{
		Method: "ListFrameworkAgreements", Filter: req.GetFilter(), OrderBy: req.GetOrderBy(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	return &procurementv1.ListFrameworkAgreementsResponse{FrameworkAgreements: page.Items, NextPageToken: page.Next, TotalSize: page.TotalSize()}, nil
}

// updateAgreement is store.Update for an agreement, returning it as shown.
func (s *Service) updateAgreement(ctx context.Context, name, etag string, change func(cur *agreement, tx *store.Tx) error) (*agreement, error) {
	id, err := parseAgreementName("name", name)
	if err != nil {
		return nil, err
	}
	a, err := store.Update(ctx, s.st, agreementKey(id), name, etag, newAgreement, change)
	if err != nil {
		return nil, err
	}
	awarded, err := s.awarded(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.shown(a, awarded), nil
}

// UpdateFrameworkAgreement implements procurementv1.ProcurementServiceServer.
func (s *Service) UpdateFrameworkAgreement(ctx context.Context, req *procurementv1.UpdateFrameworkAgreementRequest) (*procurementv1.FrameworkAgreement, error) {
	in := req.GetFrameworkAgreement()
	if in == nil {
		return nil, apierr.Field("framework_agreement", "is required")
	}
	if _, err := parseAgreementName("framework_agreement.name", in.GetName()); err != nil {
		return nil, err
	}
	known := skillAnswers{}
	return s.updateAgreement(ctx, in.GetName(), in.GetEtag(), func(cur *agreement, tx *store.Tx) error {
		if cur.GetState() != agreementDraft {
			return wrongState(cur.GetName(), "edit", cur.GetState().String(), agreementDraft.String())
		}
		before := proto.CloneOf(cur)
		if err := masks.Apply(req.GetUpdateMask(), cur, in, agreementMutable, agreementIgnored); err != nil {
			return err
		}
		var v apierr.Violations
		if err := s.checkRules(&v, cur, "framework_agreement"); err != nil {
			return err
		}
		if _, err := s.checkAgreement(ctx, &v, cur, "framework_agreement"); err != nil {
			return err
		}
		if err := v.Err(); err != nil {
			return err
		}
		if proto.Equal(before, cur) {
			return store.ErrUnchanged
		}
		if err := s.checkSkills(ctx, &v, added(agreementSkills(cur, "framework_agreement"), agreementSkills(before, "")), known); err != nil {
			return err
		}
		if err := v.Err(); err != nil {
			return err
		}
		if ref := cur.GetReferenceNumber(); !strings.EqualFold(ref, before.GetReferenceNumber()) {
			tx.MustNotExist(referenceKey(ref), referenceTaken(ref))
			tx.Del(referenceKey(before.GetReferenceNumber()))
			tx.HSet(referenceKey(ref), "agreement", cur.GetName())
		}
		cur.UpdateTime = timestamppb.New(s.now())
		if err := tx.Put(agreementKey(agreementID(cur)), cur); err != nil {
			return err
		}
		s.indexAgreement(tx, cur)
		tx.Emit("framework_agreement.updated", cur.GetName(), cur)
		return nil
	})
}

// agreementID is an agreement's id.
func agreementID(a *agreement) string { return strings.TrimPrefix(a.GetName(), "frameworkAgreements/") }

// ActivateFrameworkAgreement implements procurementv1.ProcurementServiceServer.
func (s *Service) ActivateFrameworkAgreement(ctx context.Context, req *procurementv1.ActivateFrameworkAgreementRequest) (*procurementv1.FrameworkAgreement, error) {
	return s.updateAgreement(ctx, req.GetName(), req.GetEtag(), func(cur *agreement, tx *store.Tx) error {
		if cur.GetState() != agreementDraft {
			return wrongState(cur.GetName(), "activate", cur.GetState().String(), agreementDraft.String())
		}
		if s.ended(cur) {
			return precondition("VALIDITY", cur.GetName(), "cannot activate %s: its valid_until %s has passed; set new dates first",
				cur.GetName(), dates.String(cur.GetValidUntil()))
		}
		// The lots are checked against the providers as they are when the
		// write lands: each is pinned by its etag (a change or deletion
		// meanwhile makes the activation read again), and ranking them
		// (rankedKey) blocks their deletion from then on.
		var v apierr.Violations
		providers, err := s.checkAgreement(ctx, &v, cur, "framework_agreement")
		if err != nil {
			return err
		}
		if err := v.Err(); err != nil {
			return precondition("LOTS", cur.GetName(), "cannot activate %s: %s", cur.GetName(),
				strings.TrimPrefix(status.Convert(err).Message(), "invalid request: "))
		}
		id := agreementID(cur)
		for name, p := range providers {
			tx.EtagIs(providerKey(providerID(name)), p.GetEtag(), nil)
			tx.SAdd(rankedKey(providerID(name)), id)
		}
		now := timestamppb.New(s.now())
		cur.State, cur.StateReason, cur.ActivateTime, cur.UpdateTime = agreementActive, "", now, now
		if err := tx.Put(agreementKey(id), cur); err != nil {
			return err
		}
		s.indexAgreement(tx, cur)
		tx.Emit("framework_agreement.activated", cur.GetName(), cur)
		return nil
	})
}

// end moves an agreement out of ACTIVE (or DRAFT) in tx: its providers are
// no longer ranked by it.
func (s *Service) end(tx *store.Tx, a *agreement, to procurementv1.FrameworkAgreement_State, reason string) error {
	id := agreementID(a)
	if a.GetState() == agreementActive {
		for _, p := range agreementValues(a, "providers") {
			tx.SRem(rankedKey(providerID(p)), id)
		}
	}
	a.State, a.StateReason, a.UpdateTime = to, reason, timestamppb.New(s.now())
	if err := tx.Put(agreementKey(id), a); err != nil {
		return err
	}
	s.indexAgreement(tx, a)
	return nil
}

// TerminateFrameworkAgreement implements procurementv1.ProcurementServiceServer.
func (s *Service) TerminateFrameworkAgreement(ctx context.Context, req *procurementv1.TerminateFrameworkAgreementRequest) (*procurementv1.FrameworkAgreement, error) {
	return s.updateAgreement(ctx, req.GetName(), req.GetEtag(), func(cur *agreement, tx *store.Tx) error {
		state := cur.GetState()
		if state == agreementActive && s.ended(cur) {
			state = agreementExpired
		}
		if state != agreementDraft && state != agreementActive {
			return wrongState(cur.GetName(), "terminate", state.String(), agreementDraft.String(), agreementActive.String())
		}
		if err := s.end(tx, cur, agreementTerminated, req.GetReason()); err != nil {
			return err
		}
		tx.Emit("framework_agreement.terminated", cur.GetName(), cur)
		return nil
	})
}

// sweep records as EXPIRED every ACTIVE agreement whose valid_until has
// passed, every s.sweepEvery until ctx ends. Reads show them EXPIRED
// anyway; the sweep makes the state, the lists' indexes and the event
// follow, and frees their providers.
func (s *Service) sweep(ctx context.Context) error {
	t := time.NewTicker(s.sweepEvery)
	defer t.Stop()
	for {
		if n, err := s.expireDue(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "expiring framework agreements failed; retrying at the next sweep", "error", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "framework agreements expired", "count", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// expireDue expires the ACTIVE agreements whose valid_until is before
// today, reading them from the index of active ones by valid_until (so it
// touches only those due) and returns how many it expired.
func (s *Service) expireDue(ctx context.Context) (int, error) {
	key := agreementIndex.Key(Keyspace, "valid_until", false, "state", agreementActive.String())
	today := strconv.Itoa(s.today())
	done, after := 0, ""
	for {
		ms, err := s.st.Range(ctx, key, after, 100)
		if err != nil {
			return done, err
		}
		due := 0
		for _, m := range ms {
			if m[:8] >= today {
				break
			}
			due++
			after = m
			name := listing.MemberName(m)
			_, err := s.updateAgreement(ctx, name, "", func(cur *agreement, tx *store.Tx) error {
				if cur.GetState() != agreementActive || !s.ended(cur) {
					return store.ErrUnchanged
				}
				if err := s.end(tx, cur, agreementExpired, "valid_until "+dates.String(cur.GetValidUntil())+" has passed"); err != nil {
					return err
				}
				tx.Emit("framework_agreement.expired", cur.GetName(), cur)
				return nil
			})
			if err != nil {
				return done, err
			}
			done++ // (or it changed meanwhile and is no longer due)
		}
		if due < len(ms) || len(ms) < 100 {
			return done, nil
		}
	}
}
