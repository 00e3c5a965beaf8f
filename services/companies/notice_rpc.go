package companies

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/google/uuid"
	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/dates"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func newNotice() *companiesv1.Notice { return &companiesv1.Notice{} }

// checkNotice is the domain validation of a notice of company, today
// being the Swedish date.
func checkNotice(v *apierr.Violations, n *companiesv1.Notice, c *companiesv1.Company, today *dates.Date) {
	dates.Check(v, "notice.notice_date", n.GetNoticeDate())
	dates.Check(v, "notice.effective_date", n.GetEffectiveDate())
	if dates.Valid(n.GetNoticeDate()) && dates.Compare(n.GetNoticeDate(), today) > 0 {
		v.Add("notice.notice_date", "%s is in the future: record a notice once it has been given", dates.String(n.GetNoticeDate()))
	}
	if n.GetEffectiveDate() != nil && dates.Valid(n.GetNoticeDate()) && dates.Valid(n.GetEffectiveDate()) &&
		dates.Compare(n.GetEffectiveDate(), n.GetNoticeDate()) < 0 {
		v.Add("notice.effective_date", "%s is before the notice date %s", dates.String(n.GetEffectiveDate()), dates.String(n.GetNoticeDate()))
	}
	if c.EmployeeCount != nil && n.GetAffectedEmployees() > c.GetEmployeeCount() {
		v.Add("notice.affected_employees", "%d is more than the company's %d employees", n.GetAffectedEmployees(), c.GetEmployeeCount())
	}
}

// CreateNotice implements companiesv1.CompaniesServiceServer.
func (s *Service) CreateNotice(ctx context.Context, req *companiesv1.CreateNoticeRequest) (*companiesv1.Notice, error) {
	companyID, err := parseCompanyName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	id := req.GetNoticeId()
	if id == "" {
		id = uuid.NewString()
	}
	fingerprint := store.Fingerprint(req)
	// Retried when the company changes between reading it and writing the
	// notice: its employee count bounds the notice, its council and
	// municipality are copied onto it.
	for range 20 {
		c, err := s.loadCompany(ctx, companyID)
		if err != nil {
			return nil, err
		}
		n := proto.CloneOf(req.GetNotice())
		var v apierr.Violations
		checkNotice(&v, n, c, dates.Of(s.now()))
		if err := v.Err(); err != nil {
			return nil, err
		}
		n.Name, n.CreateTime = noticeName(companyID, id), timestamppb.New(s.now())
		n.Council, n.Municipality = c.GetCouncil(), c.GetMunicipality()
		tx := s.st.Tx()
		if req.GetRequestId() != "" {
			tx.Idempotent(idemKey("notice", companyID, req.GetRequestId()), n.GetName(), fingerprint)
		}
		tx.EtagIs(companyKey(companyID), c.GetEtag(), nil)
		tx.MustNotExist(noticeKey(companyID, id), status.Errorf(codes.AlreadyExists, "%s already exists", n.GetName()))
		if err := tx.Put(noticeKey(companyID, id), n); err != nil {
			return nil, err
		}
		tx.SetIndex(noticeKey(companyID, id), noticeIndex.Entries(Keyspace, n))
		tx.Emit("notice.created", n.GetName(), n)
		replay, err := tx.Commit(ctx)
		switch {
		case errors.Is(err, store.ErrConflict):
			continue
		case err != nil:
			return nil, err
		case replay != nil:
			return s.GetNotice(ctx, &companiesv1.GetNoticeRequest{Name: replay.Name})
		}
		return n, nil
	}
	return nil, status.Errorf(codes.Aborted, "%s kept changing while the notice was recorded; retry", req.GetParent())
}

// GetNotice implements companiesv1.CompaniesServiceServer.
func (s *Service) GetNotice(ctx context.Context, req *companiesv1.GetNoticeRequest) (*companiesv1.Notice, error) {
	c, id, err := parseNoticeName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	n := newNotice()
	if err := s.st.Get(ctx, noticeKey(c, id), n); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.NotFound(req.GetName())
		}
		return nil, err
	}
	return n, nil
}

// ListNotices implements companiesv1.CompaniesServiceServer.
func (s *Service) ListNotices(ctx context.Context, req *companiesv1.ListNoticesRequest) (*companiesv1.ListNoticesResponse, error) {
	lr := listing.Request{Method: "ListNotices", Parent: req.GetParent(), Filter: req.GetFilter(),
		OrderBy: req.GetOrderBy(), PageSize: req.GetPageSize(), PageToken: req.GetPageToken()}
	if req.GetParent() != "companies/-" {
		id, err := parseCompanyName("parent", req.GetParent())
		if err != nil {
			return nil, err
		}
		if _, err := s.loadCompany(ctx, id); err != nil {
			return nil, err
		}
		lr.Where = map[string]string{"parent": req.GetParent()}
	}
	if req.GetStartDate() != nil || req.GetEndDate() != nil {
		within, err := dateRange("start_date", "end_date", req.GetStartDate(), req.GetEndDate())
		if err != nil {
			return nil, err
		}
		if o := strings.TrimSpace(req.GetOrderBy()); o != "" && !strings.HasPrefix(o, "notice_date") && !strings.HasPrefix(o, "noticeDate") {
			return nil, apierr.Field("order_by", "a date range lists notices by notice_date; order by notice_date or notice_date desc")
		}
		lr.Within = within
		lr.Method += "\x00" + within.Lo + "\x00" + within.Hi
	}
	page, err := s.noticeLister().List(ctx, lr)
	if err != nil {
		return nil, err
	}
	return &companiesv1.ListNoticesResponse{Notices: page.Items, NextPageToken: page.Next, TotalSize: page.TotalSize()}, nil
}

// dateRange is the index range of notice dates from start to end, both
// included (either may be nil).
func dateRange(startField, endField string, start, end *dates.Date) (*listing.Bounds, error) {
	var v apierr.Violations
	dates.Check(&v, startField, start)
	dates.Check(&v, endField, end)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if start != nil && end != nil && dates.Compare(start, end) > 0 {
		return nil, apierr.Field(endField, "%s is before %s %s", dates.String(end), startField, dates.String(start))
	}
	b := &listing.Bounds{}
	if start != nil {
		b.Lo = listing.DateKey(start)
	}
	if end != nil {
		b.Hi = listing.DateKey(dates.AddDate(end, 0, 0, 1))
	}
	return b, nil
}

// DeleteNotice implements companiesv1.CompaniesServiceServer.
func (s *Service) DeleteNotice(ctx context.Context, req *companiesv1.DeleteNoticeRequest) (*emptypb.Empty, error) {
	c, id, err := parseNoticeName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	key := noticeKey(c, id)
	_, err = store.Update(ctx, s.st, key, req.GetName(), req.GetEtag(), newNotice, func(n *companiesv1.Notice, tx *store.Tx) error {
		tx.DropIndex(key)
		tx.Del(key)
		tx.Emit("notice.deleted", n.GetName(), n)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// summaryBatch is how many notices one round trip of a summary reads.
const summaryBatch = 1000

// SummarizeNotices implements companiesv1.CompaniesServiceServer. It reads
// only the notices dated in the range, from the date index (of the council
// when one is given): its cost grows with them, not with every notice kept.
//
// BenchmarkSummarizeNotices (gRPC over loopback, 100 notices in the range,
// private redis-server, 2-core AMD EPYC machine, 300 calls each):
//
//	notices outside the range   0        10 000   100 000
//	per summary                 0.84 ms  0.58 ms  0.57 ms
//
// (the first includes the connection's warm-up).
func (s *Service) SummarizeNotices(ctx context.Context, req *companiesv1.SummarizeNoticesRequest) (*companiesv1.SummarizeNoticesResponse, error) {
	within, err := dateRange("start_date", "end_date", req.GetStartDate(), req.GetEndDate())
	if err != nil {
		return nil, err
	}
	key := noticeIndex.Key(Keyspace, "notice_date", false, "", "")
	if req.GetCouncil() != "" {
		key = noticeIndex.Key(Keyspace, "notice_date", false, "council", req.GetCouncil())
	}
	type cell struct {
		council, municipality string
		kind                  companiesv1.Notice_Kind
	}
	sums := map[cell]*companiesv1.NoticeSummary{}
	start, stop := "["+within.Lo, "("+within.Hi
	for {
		members, err := s.st.RangeLex(ctx, key, start, stop, summaryBatch)
		if err != nil {
			return nil, err
		}
		names := make([]string, len(members))
		for i, m := range members {
			names[i] = listing.MemberName(m)
		}
		notices, err := loadByName(ctx, s.st, names, noticeKeyOf, newNotice)
		if err != nil {
			return nil, err
		}
		for _, n := range notices {
			k := cell{n.GetCouncil(), n.GetMunicipality(), n.GetKind()}
			row := sums[k]
			if row == nil {
				row = &companiesv1.NoticeSummary{Council: k.council, Municipality: k.municipality, Kind: k.kind}
				sums[k] = row
			}
			row.Notices++
			row.AffectedEmployees += int64(n.GetAffectedEmployees())
		}
		if len(members) < summaryBatch {
			break
		}
		start = "(" + members[len(members)-1]
	}
	resp := &companiesv1.SummarizeNoticesResponse{}
	for _, row := range sums {
		resp.Rows = append(resp.Rows, row)
	}
	slices.SortFunc(resp.Rows, func(a, b *companiesv1.NoticeSummary) int {
		if c := strings.Compare(a.GetCouncil(), b.GetCouncil()); c != 0 {
			return c
		}
		if c := strings.Compare(a.GetMunicipality(), b.GetMunicipality()); c != 0 {
			return c
		}
		return int(a.GetKind() - b.GetKind())
	})
	return resp, nil
}
