package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/grpc/codes"
)

// fakeCompanies answers SummarizeNotices with the dates it was given, in
// the row's council (start) and municipality (end) fields.
type fakeCompanies struct {
	companiesv1.UnimplementedCompaniesServiceServer
}

func (fakeCompanies) SummarizeNotices(_ context.Context, req *companiesv1.SummarizeNoticesRequest) (*companiesv1.SummarizeNoticesResponse, error) {
	s := func(d *date.Date) string { return fmt.Sprintf("%d-%d-%d", d.GetYear(), d.GetMonth(), d.GetDay()) }
	return &companiesv1.SummarizeNoticesResponse{Rows: []*companiesv1.NoticeSummary{
		{Council: s(req.GetStartDate()), Municipality: s(req.GetEndDate())}}}, nil
}

// A date query parameter is one ISO date, or its fields one by one.
func TestDateQueryParameters(t *testing.T) {
	_, addr := backend(t)
	url := startGateway(t, t, addr, 0)
	for query, want := range map[string][2]string{
		"startDate=2026-01-01&endDate=2026-12-31":                               {"2026-1-1", "2026-12-31"},
		"start_date=2028-02-29&endDate.year=2028&endDate.month=3&endDate.day=1": {"2028-2-29", "2028-3-1"},
	} {
		resp, body := do(t, http.MethodGet, url+"/v1/companies/-/notices:summarize?"+query, nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", query, resp.StatusCode, body)
		}
		var got struct {
			Rows []struct{ Council, Municipality string }
		}
		if err := json.Unmarshal(body, &got); err != nil || len(got.Rows) != 1 {
			t.Fatalf("%s: %s", query, body)
		}
		if r := got.Rows[0]; r.Council != want[0] || r.Municipality != want[1] {
			t.Errorf("%s: the service got %s and %s, want %v", query, r.Council, r.Municipality, want)
		}
	}
	for _, query := range []string{"startDate=2026-02-30", "startDate=2026-1-1", "startDate=20260101", "startDate=soon"} {
		resp, body := do(t, http.MethodGet, url+"/v1/companies/-/notices:summarize?"+query, nil, nil)
		e := wantError(t, resp, body, http.StatusBadRequest, codes.InvalidArgument)
		if len(e.Details) != 1 || fmt.Sprint(e.Details[0]["fieldViolations"]) == "" ||
			e.Details[0]["fieldViolations"].([]any)[0].(map[string]any)["field"] != "startDate" {
			t.Errorf("%s: %s", query, body)
		}
	}
}
