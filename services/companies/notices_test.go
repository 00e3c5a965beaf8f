package companies_test

import (
	"fmt"
	"strings"
	"testing"

	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

const (
	redundancy = companiesv1.Notice_KIND_REDUNDANCY
	furlough   = companiesv1.Notice_KIND_FURLOUGH
	layoff     = companiesv1.Notice_KIND_LAYOFF
)

// demandExample is a hand-built set of notices: three companies in two
// councils and two municipalities, notices inside 2026-01-01–2026-10-31
// (both ends included), before it, after it, and one deleted.
func demandExample(t *testing.T, e env) {
	t.Helper()
	place := func(id, number, council, municipality string) string {
		req := company(id, number)
		req.Company.Council, req.Company.Municipality = council, municipality
		return mustCompany(t, e, req).GetName()
	}
	volvo := place("volvo", "556012-5790", "councils/fordon", "1480")
	ale := place("ale-komponent", orgNumber(1), "councils/fordon", "1440")
	butik := place("butik", orgNumber(2), "councils/handel", "1480")
	for _, n := range []struct {
		company  string
		kind     companiesv1.Notice_Kind
		affected int32
		on       *date.Date
	}{
		{volvo, furlough, 120, day(2026, 3, 2)},
		{volvo, furlough, 30, day(2026, 6, 15)},
		{volvo, redundancy, 40, day(2026, 4, 2)},
		{ale, redundancy, 25, day(2026, 1, 1)},    // first day of the range
		{ale, furlough, 7, day(2026, 10, 31)},     // last day of the range
		{volvo, furlough, 500, day(2025, 12, 31)}, // the day before
		{ale, furlough, 300, day(2026, 11, 1)},    // the day after
		{butik, redundancy, 15, day(2026, 5, 5)},
	} {
		mustNotice(t, e, notice(n.company, n.kind, n.affected, n.on))
	}
	gone := mustNotice(t, e, notice(volvo, layoff, 99, day(2026, 7, 1)))
	if _, err := e.c.DeleteNotice(ctx, &companiesv1.DeleteNoticeRequest{Name: gone.GetName()}); err != nil {
		t.Fatal(err)
	}
	// Moving a company afterwards leaves its notices where they were given.
	if _, err := e.c.UpdateCompany(ctx, &companiesv1.UpdateCompanyRequest{Company: &companiesv1.Company{Name: volvo, Municipality: "1481"}}); err != nil {
		t.Fatal(err)
	}
}

func summaryRows(s *companiesv1.SummarizeNoticesResponse) string {
	var rows []string
	for _, r := range s.GetRows() {
		rows = append(rows, fmt.Sprintf("%s %s %s %d %d", strings.TrimPrefix(r.GetCouncil(), "councils/"), r.GetMunicipality(),
			strings.TrimPrefix(r.GetKind().String(), "KIND_"), r.GetNotices(), r.GetAffectedEmployees()))
	}
	return strings.Join(rows, "\n")
}

// The summary of the hand-built example, by council, municipality and
// kind, counts exactly the notices dated in the range.
func TestSummarizeNotices(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		demandExample(t, e)
		sum, err := e.c.SummarizeNotices(ctx, &companiesv1.SummarizeNoticesRequest{Parent: "companies/-",
			Council: "councils/fordon", StartDate: day(2026, 1, 1), EndDate: day(2026, 10, 31)})
		if err != nil {
			t.Fatal(err)
		}
		want := "fordon 1440 REDUNDANCY 1 25\nfordon 1440 FURLOUGH 1 7\nfordon 1480 REDUNDANCY 1 40\nfordon 1480 FURLOUGH 2 150"
		if got := summaryRows(sum); got != want {
			t.Fatalf("fordon's summary:\n%s\nwant\n%s", got, want)
		}
		all, err := e.c.SummarizeNotices(ctx, &companiesv1.SummarizeNoticesRequest{Parent: "companies/-",
			StartDate: day(2026, 1, 1), EndDate: day(2026, 10, 31)})
		if err != nil {
			t.Fatal(err)
		}
		if got := summaryRows(all); got != want+"\nhandel 1480 REDUNDANCY 1 15" {
			t.Fatalf("every council's summary:\n%s", got)
		}
		// One day: the range's ends are included.
		one, err := e.c.SummarizeNotices(ctx, &companiesv1.SummarizeNoticesRequest{Parent: "companies/-",
			StartDate: day(2026, 10, 31), EndDate: day(2026, 10, 31)})
		if err != nil || summaryRows(one) != "fordon 1440 FURLOUGH 1 7" {
			t.Fatalf("one day: %q, %v", summaryRows(one), err)
		}
		none, err := e.c.SummarizeNotices(ctx, &companiesv1.SummarizeNoticesRequest{Parent: "companies/-",
			Council: "councils/teknik", StartDate: day(2020, 1, 1), EndDate: day(2030, 12, 31)})
		if err != nil || len(none.GetRows()) != 0 {
			t.Fatalf("no notices: %v, %v", none, err)
		}
	})
}

func TestSummarizeNoticesRefusesBadRanges(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		for _, tc := range []struct {
			req   *companiesv1.SummarizeNoticesRequest
			field string
		}{
			{&companiesv1.SummarizeNoticesRequest{Parent: "companies/-", StartDate: day(2026, 2, 1), EndDate: day(2026, 1, 31)}, "end_date"},
			{&companiesv1.SummarizeNoticesRequest{Parent: "companies/-", EndDate: day(2026, 1, 31)}, "start_date"},
			{&companiesv1.SummarizeNoticesRequest{Parent: "companies/-", StartDate: day(2026, 2, 31), EndDate: day(2026, 3, 1)}, "start_date"},
			{&companiesv1.SummarizeNoticesRequest{Parent: "companies/volvo", StartDate: day(2026, 1, 1), EndDate: day(2026, 3, 1)}, "parent"},
			{&companiesv1.SummarizeNoticesRequest{Parent: "companies/-", Council: "fordon", StartDate: day(2026, 1, 1), EndDate: day(2026, 3, 1)}, "council"},
		} {
			_, err := e.c.SummarizeNotices(ctx, tc.req)
			testkit.WantBadRequest(t, err, tc.field)
		}
	})
}

// Notices are listed per company or across (companies/-), newest notice
// first by default, filtered by kind, council and municipality, and within
// a date range read from the date index, page by page.
func TestListNotices(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		demandExample(t, e)
		list := func(req *companiesv1.ListNoticesRequest) []string {
			t.Helper()
			var out []string
			for {
				page, err := e.c.ListNotices(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range page.GetNotices() {
					out = append(out, fmt.Sprintf("%s:%d", strings.Split(n.GetName(), "/")[1], n.GetAffectedEmployees()))
				}
				if req.PageToken = page.GetNextPageToken(); req.PageToken == "" {
					return out
				}
			}
		}
		for _, tc := range []struct {
			req  *companiesv1.ListNoticesRequest
			want string
		}{
			{&companiesv1.ListNoticesRequest{Parent: "companies/volvo"}, "[volvo:30 volvo:40 volvo:120 volvo:500]"},
			{&companiesv1.ListNoticesRequest{Parent: "companies/volvo", OrderBy: "noticeDate"}, "[volvo:500 volvo:120 volvo:40 volvo:30]"},
			{&companiesv1.ListNoticesRequest{Parent: "companies/-", PageSize: 2}, "[ale-komponent:300 ale-komponent:7 volvo:30 butik:15 volvo:40 volvo:120 ale-komponent:25 volvo:500]"},
			{&companiesv1.ListNoticesRequest{Parent: "companies/-", Filter: "kind = KIND_REDUNDANCY"}, "[butik:15 volvo:40 ale-komponent:25]"},
			{&companiesv1.ListNoticesRequest{Parent: "companies/-", Filter: `council = "councils/handel"`}, "[butik:15]"},
			{&companiesv1.ListNoticesRequest{Parent: "companies/-", Filter: `municipality = "1440" AND kind = KIND_FURLOUGH`}, "[ale-komponent:300 ale-komponent:7]"},
			{&companiesv1.ListNoticesRequest{Parent: "companies/-", StartDate: day(2026, 1, 1), EndDate: day(2026, 10, 31), PageSize: 2},
				"[ale-komponent:7 volvo:30 butik:15 volvo:40 volvo:120 ale-komponent:25]"},
			{&companiesv1.ListNoticesRequest{Parent: "companies/-", StartDate: day(2026, 1, 1), EndDate: day(2026, 10, 31), OrderBy: "notice_date", PageSize: 4},
				"[ale-komponent:25 volvo:120 volvo:40 butik:15 volvo:30 ale-komponent:7]"},
			{&companiesv1.ListNoticesRequest{Parent: "companies/-", StartDate: day(2026, 6, 1)}, "[ale-komponent:300 ale-komponent:7 volvo:30]"},
			{&companiesv1.ListNoticesRequest{Parent: "companies/ale-komponent", EndDate: day(2026, 6, 1)}, "[ale-komponent:25]"},
			{&companiesv1.ListNoticesRequest{Parent: "companies/-", StartDate: day(2026, 1, 1), EndDate: day(2026, 10, 31), Filter: "kind = KIND_FURLOUGH"},
				"[ale-komponent:7 volvo:30 volvo:120]"},
		} {
			if got := fmt.Sprint(list(proto.CloneOf(tc.req))); got != tc.want {
				t.Errorf("%v:\n got %s\nwant %s", tc.req, got, tc.want)
			}
		}
		page, err := e.c.ListNotices(ctx, &companiesv1.ListNoticesRequest{Parent: "companies/-", Filter: "kind = KIND_REDUNDANCY"})
		if err != nil || page.GetTotalSize() != 3 {
			t.Fatalf("total %v, %v", page.GetTotalSize(), err)
		}
		// Not counted exactly, so not given: a date range.
		page, err = e.c.ListNotices(ctx, &companiesv1.ListNoticesRequest{Parent: "companies/-", StartDate: day(2026, 6, 1)})
		if err != nil || page.GetTotalSize() != 0 || len(page.GetNotices()) != 3 {
			t.Fatalf("total %v, %v", page.GetTotalSize(), err)
		}
		_, err = e.c.ListNotices(ctx, &companiesv1.ListNoticesRequest{Parent: "companies/-", StartDate: day(2026, 1, 1), OrderBy: "create_time"})
		testkit.WantBadRequest(t, err, "order_by")
		_, err = e.c.ListNotices(ctx, &companiesv1.ListNoticesRequest{Parent: "companies/-", StartDate: day(2026, 3, 1), EndDate: day(2026, 2, 1)})
		testkit.WantBadRequest(t, err, "end_date")
		_, err = e.c.ListNotices(ctx, &companiesv1.ListNoticesRequest{Parent: "companies/-", Filter: "colour = 1"})
		testkit.WantBadRequest(t, err, "filter")
		_, err = e.c.ListNotices(ctx, &companiesv1.ListNoticesRequest{Parent: "companies/nowhere"})
		wantCode(t, err, codes.NotFound)
		// A token is bound to its range.
		first, err := e.c.ListNotices(ctx, &companiesv1.ListNoticesRequest{Parent: "companies/-", StartDate: day(2026, 1, 1), PageSize: 1})
		if err != nil || first.GetNextPageToken() == "" {
			t.Fatal(err)
		}
		_, err = e.c.ListNotices(ctx, &companiesv1.ListNoticesRequest{Parent: "companies/-", StartDate: day(2026, 2, 1), PageSize: 1, PageToken: first.GetNextPageToken()})
		testkit.WantBadRequest(t, err, "page_token")
	})
}

// Companies are listed by council, municipality (both from index sets) and
// SNI prefix, ordered by name or creation.
func TestListCompanies(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		for i, c := range []struct{ name, council, municipality, sni string }{
			{"Volvo Cars Torslanda", "councils/fordon", "1480", "29101"},
			{"Ale Komponent", "councils/fordon", "1440", "29320"},
			{"Mölndals Plåt", "councils/teknik", "1481", "25110"},
			{"Butiken i Nordstan", "councils/handel", "1480", "47190"},
			{"Kungälvs Gjuteri", "councils/teknik", "1482", "24510"},
		} {
			req := company(fmt.Sprintf("c%d", i), orgNumber(i))
			req.Company.DisplayName, req.Company.Council, req.Company.Municipality, req.Company.SniCode = c.name, c.council, c.municipality, c.sni
			mustCompany(t, e, req)
		}
		names := func(req *companiesv1.ListCompaniesRequest) string {
			t.Helper()
			var out []string
			for {
				page, err := e.c.ListCompanies(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range page.GetCompanies() {
					out = append(out, c.GetDisplayName())
				}
				if req.PageToken = page.GetNextPageToken(); req.PageToken == "" {
					return strings.Join(out, ", ")
				}
			}
		}
		for _, tc := range []struct {
			req  *companiesv1.ListCompaniesRequest
			want string
		}{
			{&companiesv1.ListCompaniesRequest{}, "Volvo Cars Torslanda, Ale Komponent, Mölndals Plåt, Butiken i Nordstan, Kungälvs Gjuteri"},
			{&companiesv1.ListCompaniesRequest{OrderBy: "displayName", PageSize: 2}, "Ale Komponent, Butiken i Nordstan, Kungälvs Gjuteri, Mölndals Plåt, Volvo Cars Torslanda"},
			{&companiesv1.ListCompaniesRequest{OrderBy: "display_name desc"}, "Volvo Cars Torslanda, Mölndals Plåt, Kungälvs Gjuteri, Butiken i Nordstan, Ale Komponent"},
			{&companiesv1.ListCompaniesRequest{Filter: `council = "councils/fordon"`}, "Volvo Cars Torslanda, Ale Komponent"},
			{&companiesv1.ListCompaniesRequest{Filter: `municipality = "1480"`, OrderBy: "display_name"}, "Butiken i Nordstan, Volvo Cars Torslanda"},
			{&companiesv1.ListCompaniesRequest{Filter: `sni_code = "29*"`}, "Volvo Cars Torslanda, Ale Komponent"},
			{&companiesv1.ListCompaniesRequest{Filter: `sni_code = "2*" AND council = "councils/teknik"`}, "Mölndals Plåt, Kungälvs Gjuteri"},
			{&companiesv1.ListCompaniesRequest{Filter: `sni_code = "29320"`}, "Ale Komponent"},
			{&companiesv1.ListCompaniesRequest{Filter: `NOT sni_code = "2*"`}, "Butiken i Nordstan"},
		} {
			if got := names(proto.CloneOf(tc.req)); got != tc.want {
				t.Errorf("%v:\n got %s\nwant %s", tc.req, got, tc.want)
			}
		}
		page, err := e.c.ListCompanies(ctx, &companiesv1.ListCompaniesRequest{Filter: `council = "councils/teknik"`})
		if err != nil || page.GetTotalSize() != 2 {
			t.Fatalf("total %v, %v", page.GetTotalSize(), err)
		}
		// A prefix is not an indexed term: not counted, so not given.
		page, err = e.c.ListCompanies(ctx, &companiesv1.ListCompaniesRequest{Filter: `sni_code = "29*"`})
		if err != nil || page.GetTotalSize() != 0 || len(page.GetCompanies()) != 2 {
			t.Fatalf("total %v, %v", page.GetTotalSize(), err)
		}
		_, err = e.c.ListCompanies(ctx, &companiesv1.ListCompaniesRequest{OrderBy: "sni_code"})
		testkit.WantBadRequest(t, err, "order_by")
	})
}
