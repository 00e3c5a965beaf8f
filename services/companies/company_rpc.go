package companies

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/dates"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/masks"
	"github.com/kompetensnav/kompetensnav/services/platform/peer"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/sweden"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var (
	companyMutable = []string{"organisation_number", "display_name", "sni_code", "municipality", "employee_count", "council"}
	companyIgnored = []string{"name", "create_time", "update_time", "etag"}
)

func newCompany() *companiesv1.Company { return &companiesv1.Company{} }

// errOrgTaken marks the failed uniqueness check; orgNumberTaken turns it
// into the error the caller gets, naming the company that has the number.
var errOrgTaken = errors.New("organisation number taken")

// checkCompany is the domain validation of a company as it will be stored:
// it normalises the organisation number and the SNI code in place.
func checkCompany(v *apierr.Violations, c *companiesv1.Company) {
	if nr, err := sweden.ParseOrganisationNumber(c.GetOrganisationNumber()); err != nil {
		v.Add("company.organisation_number", "%v", err)
	} else {
		c.OrganisationNumber = nr
	}
	if c.GetSniCode() != "" {
		if code, err := sweden.ParseSNICode(c.GetSniCode()); err != nil {
			v.Add("company.sni_code", "%v", err)
		} else {
			c.SniCode = code
		}
	}
	if !sweden.IsMunicipality(c.GetMunicipality()) {
		v.Add("company.municipality", "%q is not an SCB municipality code", c.GetMunicipality())
	}
}

// checkCouncil asks the councils service whether the company's council
// exists: a company is never tied to a council that is not there. Nothing
// is written when the councils service cannot answer.
func (s *Service) checkCouncil(ctx context.Context, council string) error {
	_, err := s.councilsClient().GetCouncil(ctx, &councilsv1.GetCouncilRequest{Name: council})
	if err == nil {
		return nil
	}
	return s.councils.Err(ctx, err, peer.On(codes.NotFound, apierr.Field("company.council", "%s does not exist", council)))
}

// orgNumberTaken is ALREADY_EXISTS naming the company that has number, with
// a ResourceInfo detail for programs. The holder is read after the refused
// write; should it have been deleted in between, the caller is told to
// retry rather than given an empty name.
func (s *Service) orgNumberTaken(ctx context.Context, number string) error {
	holder, err := s.rdb.HGet(ctx, orgNumberKey(number), "company").Result()
	if errors.Is(err, redis.Nil) {
		return status.Errorf(codes.Aborted, "organisation number %s was registered to another company at the same moment, which is gone again; retry", number)
	}
	if err != nil {
		return s.st.Err(ctx, err)
	}
	name := companyName(holder)
	st := status.Newf(codes.AlreadyExists, "organisation number %s is already registered to %s", number, name)
	if d, err := st.WithDetails(&errdetails.ResourceInfo{ResourceType: "kompetensnav.se/Company", ResourceName: name,
		Description: "the company with this organisation number"}); err == nil {
		st = d
	}
	return st.Err()
}

// CreateCompany implements companiesv1.CompaniesServiceServer.
func (s *Service) CreateCompany(ctx context.Context, req *companiesv1.CreateCompanyRequest) (*companiesv1.Company, error) {
	c := proto.CloneOf(req.GetCompany())
	var v apierr.Violations
	checkCompany(&v, c)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := s.checkCouncil(ctx, c.GetCouncil()); err != nil {
		return nil, err
	}
	id := req.GetCompanyId()
	if id == "" {
		id = uuid.NewString()
	}
	now := timestamppb.New(s.now())
	c.Name, c.CreateTime, c.UpdateTime = companyName(id), now, now

	tx := s.st.Tx()
	if req.GetRequestId() != "" {
		tx.Idempotent(idemKey("company", req.GetRequestId()), c.GetName(), store.Fingerprint(req))
	}
	tx.MustNotExist(companyKey(id), status.Errorf(codes.AlreadyExists, "%s already exists", c.GetName()))
	// A deleted company's notices and coaching stay on record under its
	// name, so the name is never given to another company.
	tx.MustNotExist(deletedKey(id), status.Errorf(codes.AlreadyExists,
		"%s was deleted and its records are kept under that name; choose another company_id", c.GetName()))
	tx.MustNotExist(orgNumberKey(c.GetOrganisationNumber()), errOrgTaken)
	if err := tx.Put(companyKey(id), c); err != nil {
		return nil, err
	}
	tx.HSet(orgNumberKey(c.GetOrganisationNumber()), "company", id)
	tx.SetIndex(companyKey(id), companyIndex.Entries(Keyspace, c))
	tx.Emit("company.created", c.GetName(), c)
	replay, err := tx.Commit(ctx)
	switch {
	case errors.Is(err, errOrgTaken):
		return nil, s.orgNumberTaken(ctx, c.GetOrganisationNumber())
	case err != nil:
		return nil, err
	case replay != nil:
		return s.GetCompany(ctx, &companiesv1.GetCompanyRequest{Name: replay.Name})
	}
	return c, nil
}

// GetCompany implements companiesv1.CompaniesServiceServer.
func (s *Service) GetCompany(ctx context.Context, req *companiesv1.GetCompanyRequest) (*companiesv1.Company, error) {
	id, err := parseCompanyName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	return s.loadCompany(ctx, id)
}

func (s *Service) loadCompany(ctx context.Context, id string) (*companiesv1.Company, error) {
	c := newCompany()
	if err := s.st.Get(ctx, companyKey(id), c); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.NotFound(companyName(id))
		}
		return nil, err
	}
	return c, nil
}

// LookupCompany implements companiesv1.CompaniesServiceServer.
func (s *Service) LookupCompany(ctx context.Context, req *companiesv1.LookupCompanyRequest) (*companiesv1.Company, error) {
	nr, err := sweden.ParseOrganisationNumber(req.GetOrganisationNumber())
	if err != nil {
		return nil, apierr.Field("organisation_number", "%v", err)
	}
	id, err := s.rdb.HGet(ctx, orgNumberKey(nr), "company").Result()
	if errors.Is(err, redis.Nil) {
		return nil, status.Errorf(codes.NotFound, "no company has organisation number %s", nr)
	}
	if err != nil {
		return nil, s.st.Err(ctx, err)
	}
	return s.loadCompany(ctx, id)
}

// ListCompanies implements companiesv1.CompaniesServiceServer.
func (s *Service) ListCompanies(ctx context.Context, req *companiesv1.ListCompaniesRequest) (*companiesv1.ListCompaniesResponse, error) {
	page, err := s.companyLister().List(ctx, listing.Request{Method: "ListCompanies", Filter: req.GetFilter(),
		OrderBy: req.GetOrderBy(), PageSize: req.GetPageSize(), PageToken: req.GetPageToken()})
	if err != nil {
		return nil, err
	}
	return &companiesv1.ListCompaniesResponse{Companies: page.Items, NextPageToken: page.Next, TotalSize: page.TotalSize()}, nil
}

// UpdateCompany implements companiesv1.CompaniesServiceServer.
func (s *Service) UpdateCompany(ctx context.Context, req *companiesv1.UpdateCompanyRequest) (*companiesv1.Company, error) {
	in := req.GetCompany()
	if in == nil {
		return nil, apierr.Field("company", "is required")
	}
	id, err := parseCompanyName("company.name", in.GetName())
	if err != nil {
		return nil, err
	}
	key := companyKey(id)
	var number string // the new organisation number, when it changes
	c, err := store.Update(ctx, s.st, key, in.GetName(), in.GetEtag(), newCompany,
		func(cur *companiesv1.Company, tx *store.Tx) error {
			before := proto.CloneOf(cur)
			if err := masks.Apply(req.GetUpdateMask(), cur, in, companyMutable, companyIgnored); err != nil {
				return err
			}
			var v apierr.Violations
			if err := s.validator.Validate(cur); err != nil {
				if other := v.AddValidation(err, "company"); other != nil {
					return other
				}
			}
			checkCompany(&v, cur)
			if err := v.Err(); err != nil {
				return err
			}
			if proto.Equal(before, cur) {
				return store.ErrUnchanged
			}
			if cur.GetCouncil() != before.GetCouncil() {
				if err := s.checkCouncil(ctx, cur.GetCouncil()); err != nil {
					return err
				}
			}
			if cur.GetOrganisationNumber() != before.GetOrganisationNumber() {
				number = cur.GetOrganisationNumber()
				tx.MustNotExist(orgNumberKey(cur.GetOrganisationNumber()), errOrgTaken)
				tx.Del(orgNumberKey(before.GetOrganisationNumber()))
				tx.HSet(orgNumberKey(cur.GetOrganisationNumber()), "company", id)
			}
			cur.UpdateTime = timestamppb.New(s.now())
			if err := tx.Put(key, cur); err != nil {
				return err
			}
			tx.SetIndex(key, companyIndex.Entries(Keyspace, cur))
			tx.Emit("company.updated", cur.GetName(), cur)
			return nil
		})
	if errors.Is(err, errOrgTaken) {
		return nil, s.orgNumberTaken(ctx, number)
	}
	return c, err
}

// NoticeMemory is how far back a notice keeps its company from being
// deleted: a year of notices is the demand signal councils read.
const NoticeMemory = 12 // months

// DeleteCompany implements companiesv1.CompaniesServiceServer.
func (s *Service) DeleteCompany(ctx context.Context, req *companiesv1.DeleteCompanyRequest) (*emptypb.Empty, error) {
	id, err := parseCompanyName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	key := companyKey(id)
	cutoff := dates.AddDate(dates.Of(s.now()), 0, -NoticeMemory, 0)
	_, err = store.Update(ctx, s.st, key, req.GetName(), req.GetEtag(), newCompany,
		func(cur *companiesv1.Company, tx *store.Tx) error {
			// Both checked inside the write: a notice or a session recorded
			// at the same moment either lands first (and refuses the delete)
			// or finds no company.
			tx.RangeEmpty(noticeIndex.Key(Keyspace, "notice_date", false, "parent", req.GetName()),
				"["+listing.DateKey(cutoff), "+", apierr.FailedPrecondition(
					"%s has notices dated since %s; a company with notices in the last %d months stays on record",
					req.GetName(), dates.String(cutoff), NoticeMemory))
			tx.MustNotExist(plannedKey(id), apierr.FailedPrecondition(
				"%s has coaching sessions still planned; hold or cancel them first", req.GetName()))
			tx.DropIndex(key)
			tx.Del(key)
			tx.Del(orgNumberKey(cur.GetOrganisationNumber())) // the number may be registered again
			tx.HSet(deletedKey(id), "time", s.now().UTC().Format(time.RFC3339))
			tx.Emit("company.deleted", cur.GetName(), cur)
			return nil
		})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}
