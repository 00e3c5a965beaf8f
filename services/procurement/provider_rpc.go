package procurement

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/dates"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/masks"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/sweden"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var (
	providerMutable = []string{"organisation_number", "display_name", "kinds", "accreditations", "contact_email", "municipalities"}
	providerIgnored = []string{"name", "create_time", "update_time", "etag"}
)

const (
	trainingProvider = procurementv1.Provider_KIND_TRAINING_PROVIDER
	testCentre       = procurementv1.Provider_KIND_TEST_CENTRE
)

// checkProvider is the domain validation of a provider as it will be
// stored; it normalises the organisation number in p.
func (s *Service) checkProvider(v *apierr.Violations, p *provider, prefix string) {
	if n, err := sweden.ParseOrganisationNumber(p.GetOrganisationNumber()); err != nil {
		v.Add(prefix+".organisation_number", "%s %v", p.GetOrganisationNumber(), err)
	} else {
		p.OrganisationNumber = n
	}
	checkMunicipalities(v, prefix+".municipalities", p.GetMunicipalities())
	for i, a := range p.GetAccreditations() {
		checkDate(v, fmt.Sprintf("%s.accreditations[%d].valid_until", prefix, i), a.GetValidUntil())
	}
	if slices.Contains(p.GetKinds(), testCentre) && len(s.validAccreditations(p)) == 0 {
		v.Add(prefix+".accreditations", "a test centre needs at least one accreditation valid today (%s)", dates.String(dates.Of(s.now())))
	}
}

// validAccreditations are the skill areas p is accredited for today.
func (s *Service) validAccreditations(p *provider) []string {
	today := s.today()
	var out []string
	for _, a := range p.GetAccreditations() {
		if a.GetValidUntil() != nil && dates.Key(a.GetValidUntil()) >= today {
			out = append(out, a.GetSkillArea())
		}
	}
	return out
}

// orgNumberTaken is the error of a create or update whose organisation
// number another provider has.
func orgNumberTaken(number string) error {
	return status.Errorf(codes.AlreadyExists, "a provider with organisation number %s is already registered", number)
}

// CreateProvider implements procurementv1.ProcurementServiceServer.
func (s *Service) CreateProvider(ctx context.Context, req *procurementv1.CreateProviderRequest) (*procurementv1.Provider, error) {
	p := proto.CloneOf(req.GetProvider())
	var v apierr.Violations
	s.checkProvider(&v, p, "provider")
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := s.checkSkills(ctx, &v, providerSkills(p, "provider"), skillAnswers{}); err != nil {
		return nil, err
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	id := req.GetProviderId()
	if id == "" {
		id = uuid.NewString()
	}
	now := timestamppb.New(s.now())
	p.Name, p.CreateTime, p.UpdateTime = providerName(id), now, now

	tx := s.st.Tx()
	if req.GetRequestId() != "" {
		tx.Idempotent(idemKey("provider", req.GetRequestId()), p.GetName(), store.Fingerprint(req))
	}
	tx.MustNotExist(providerKey(id), status.Errorf(codes.AlreadyExists, "%s already exists", p.GetName()))
	// Unique atomically: the number's marker is checked and set in the
	// same step as the provider is written.
	tx.MustNotExist(orgNumberKey(p.GetOrganisationNumber()), orgNumberTaken(p.GetOrganisationNumber()))
	if err := tx.Put(providerKey(id), p); err != nil {
		return nil, err
	}
	s.indexProvider(tx, p)
	tx.HSet(orgNumberKey(p.GetOrganisationNumber()), "provider", p.GetName())
	tx.Emit("provider.created", p.GetName(), p)
	replay, err := tx.Commit(ctx)
	if err != nil {
		return nil, err
	}
	if replay != nil {
		return s.GetProvider(ctx, &procurementv1.GetProviderRequest{Name: replay.Name})
	}
	return p, nil
}

// GetProvider implements procurementv1.ProcurementServiceServer.
func (s *Service) GetProvider(ctx context.Context, req *procurementv1.GetProviderRequest) (*procurementv1.Provider, error) {
	id, err := parseProviderName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	return s.loadProvider(ctx, id)
}

func (s *Service) loadProvider(ctx context.Context, id string) (*provider, error) {
	p := newProvider()
	if err := s.st.Get(ctx, providerKey(id), p); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.NotFound(providerName(id))
		}
		return nil, err
	}
	return p, nil
}

// ListProviders implements procurementv1.ProcurementServiceServer.
func (s *Service) ListProviders(ctx context.Context, req *procurementv1.ListProvidersRequest) (*procurementv1.ListProvidersResponse, error) {
	page, err := s.providerLister().List(ctx, listing.Request{
		Method: "ListProviders", Filter: req.GetFilter(), OrderBy: req.GetOrderBy(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	return &procurementv1.ListProvidersResponse{Providers: page.Items, NextPageToken: page.Next, TotalSize: page.TotalSize()}, nil
}

// UpdateProvider implements procurementv1.ProcurementServiceServer.
func (s *Service) UpdateProvider(ctx context.Context, req *procurementv1.UpdateProviderRequest) (*procurementv1.Provider, error) {
	in := req.GetProvider()
	if in == nil {
		return nil, apierr.Field("provider", "is required")
	}
	id, err := parseProviderName("provider.name", in.GetName())
	if err != nil {
		return nil, err
	}
	key := providerKey(id)
	known := skillAnswers{}
	return store.Update(ctx, s.st, key, in.GetName(), in.GetEtag(), newProvider,
		func(cur *provider, tx *store.Tx) error {
			before := proto.CloneOf(cur)
			if err := masks.Apply(req.GetUpdateMask(), cur, in, providerMutable, providerIgnored); err != nil {
				return err
			}
			var v apierr.Violations
			if err := s.checkRules(&v, cur, "provider"); err != nil {
				return err
			}
			s.checkProvider(&v, cur, "provider")
			if err := v.Err(); err != nil {
				return err
			}
			if proto.Equal(before, cur) {
				return store.ErrUnchanged
			}
			if err := s.checkSkills(ctx, &v, added(providerSkills(cur, "provider"), providerSkills(before, "")), known); err != nil {
				return err
			}
			if err := v.Err(); err != nil {
				return err
			}
			if n := cur.GetOrganisationNumber(); n != before.GetOrganisationNumber() {
				tx.MustNotExist(orgNumberKey(n), orgNumberTaken(n))
				tx.Del(orgNumberKey(before.GetOrganisationNumber()))
				tx.HSet(orgNumberKey(n), "provider", cur.GetName())
			}
			cur.UpdateTime = timestamppb.New(s.now())
			if err := tx.Put(key, cur); err != nil {
				return err
			}
			s.indexProvider(tx, cur)
			tx.Emit("provider.updated", cur.GetName(), cur)
			return nil
		})
}

// DeleteProvider implements procurementv1.ProcurementServiceServer.
func (s *Service) DeleteProvider(ctx context.Context, req *procurementv1.DeleteProviderRequest) (*emptypb.Empty, error) {
	id, err := parseProviderName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	key := providerKey(id)
	_, err = store.Update(ctx, s.st, key, req.GetName(), req.GetEtag(), newProvider,
		func(cur *provider, tx *store.Tx) error {
			ranking, err := s.rdb.SMembers(ctx, rankedKey(id)).Result()
			if err != nil {
				return s.st.Err(ctx, err)
			}
			slices.Sort(ranking)
			for i, a := range ranking {
				ranking[i] = agreementName(a)
			}
			// Checked inside the write: an activation ranking the provider
			// at the same moment either lands first (and blocks this) or
			// finds the provider gone.
			which := "an ACTIVE framework agreement"
			if len(ranking) > 0 {
				which = "ACTIVE framework agreements (" + strings.Join(ranking, ", ") + ")"
			}
			tx.MustNotExist(rankedKey(id), apierr.FailedPrecondition(
				"%s is ranked in %s; it can be deleted once they have ended", req.GetName(), which))
			tx.DropIndex(key)
			tx.Del(key)
			tx.Del(orgNumberKey(cur.GetOrganisationNumber()))
			tx.Emit("provider.deleted", cur.GetName(), cur)
			return nil
		})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}
