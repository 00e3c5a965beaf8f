package gateway_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// fakeReports stands in for the enrolment service's GetProjectReport
// (the real one is tested in its module and end to end in the
// all-in-one): a report per project name, or an error, recording the
// metadata of each call.
type fakeReports struct {
	enrolmentv1.UnimplementedEnrolmentServiceServer
	mu    sync.Mutex
	md    []metadata.MD
	names []string
}

// sampleReport is a report with every kind of row.
func sampleReport(name, ref string) *enrolmentv1.ProjectReport {
	return &enrolmentv1.ProjectReport{
		Project: name, ReferenceNumber: ref, Participants: 14,
		Targets: []*enrolmentv1.TargetProgress{
			{Measure: "participants", Target: 3500, Actual: 14, PercentOfTarget: 0.4},
			{Measure: "women", Target: 1000, Actual: 8, PercentOfTarget: 0.8},
			{Measure: "employed", Target: 2500, Actual: 8, PercentOfTarget: 0.32},
			{Measure: "job_seekers", Target: 1000, Actual: 6, PercentOfTarget: 0.6},
		},
		Breakdowns: []*enrolmentv1.ReportBreakdown{
			{Dimension: "gender", Counts: []*enrolmentv1.ReportCount{{Value: "GENDER_WOMAN", Count: 8, Target: 1000},
				{Value: "GENDER_MAN", Count: 4}, {Value: "GENDER_NON_BINARY", Count: 2}}},
			{Dimension: "age_band", Counts: []*enrolmentv1.ReportCount{{Value: "<25", Count: 1}, {Value: "25-29", Count: 3},
				{Value: "30-54", Count: 8}, {Value: "55+", Count: 2}}},
			{Dimension: "municipality", Counts: []*enrolmentv1.ReportCount{{Value: "1480", Count: 9}, {Value: "1481", Count: 5}}},
			{Dimension: "employer_council", Counts: []*enrolmentv1.ReportCount{{Value: "councils/fordon", Count: 4}, {Value: "none", Count: 10}}},
			{Dimension: "enrolment_state", Counts: []*enrolmentv1.ReportCount{{Value: "STATE_ENROLLED", Count: 15}, {Value: "STATE_WITHDRAWN", Count: 2}}},
			{Dimension: "result"},
		},
		SessionsRecorded: 40, SessionsPresent: 30, AttendanceRate: 0.75,
		CallOffValue:       &money.Money{CurrencyCode: "SEK", Units: 249_999, Nanos: 500_000_000},
		CostPerParticipant: &money.Money{CurrencyCode: "SEK", Units: 17_857, Nanos: 110_000_000},
	}
}

func (f *fakeReports) GetProjectReport(ctx context.Context, req *enrolmentv1.GetProjectReportRequest) (*enrolmentv1.ProjectReport, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.md, f.names = append(f.md, md), append(f.names, req.GetName())
	f.mu.Unlock()
	switch req.GetName() {
	case "projects/esf":
		return sampleReport(req.GetName(), "2020/00312"), nil
	case "projects/odd":
		return sampleReport(req.GetName(), `x"; filename=../../etc/passwd`), nil
	case "projects/missing":
		return nil, apierr.NotFound(req.GetName())
	case "projects/secret":
		return nil, status.Error(codes.PermissionDenied, "reports are for staff, auditors and partners")
	case "projects/bad":
		return nil, apierr.Field("name", "must be a project name")
	}
	return nil, status.Error(codes.Internal, "unexpected name in test")
}

func (f *fakeReports) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.md)
}

func reportBackend(t *testing.T) (*fakeReports, string) {
	t.Helper()
	fake := &fakeReports{}
	conn := testkit.Serve(t, func(s *grpc.Server) {
		councilsv1.RegisterCouncilsServiceServer(s, councilsv1.UnimplementedCouncilsServiceServer{})
		accessv1.RegisterAccessServiceServer(s, accessv1.UnimplementedAccessServiceServer{})
		companiesv1.RegisterCompaniesServiceServer(s, companiesv1.UnimplementedCompaniesServiceServer{})
		procurementv1.RegisterProcurementServiceServer(s, procurementv1.UnimplementedProcurementServiceServer{})
		skillsv1.RegisterSkillsServiceServer(s, skillsv1.UnimplementedSkillsServiceServer{})
		enrolmentv1.RegisterEnrolmentServiceServer(s, fake)
	})
	return fake, conn.Target()
}

// readCSV checks the BOM and parses the rest with encoding/csv.
func readCSV(t *testing.T, body []byte, comma rune) [][]string {
	t.Helper()
	rest, ok := strings.CutPrefix(string(body), "\uFEFF")
	if !ok {
		t.Fatalf("no UTF-8 byte-order mark: %q", body[:min(len(body), 10)])
	}
	r := csv.NewReader(strings.NewReader(rest))
	r.Comma = comma
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, rest)
	}
	return rows
}

// csvTable is the rows by "dimension/value".
func csvTable(t *testing.T, rows [][]string) map[string][]string {
	t.Helper()
	if strings.Join(rows[0], ",") != "dimension,value,count,target,percent,amount_sek" {
		t.Fatalf("header %q", rows[0])
	}
	out := map[string][]string{}
	for _, r := range rows[1:] {
		key := r[0] + "/" + r[1]
		if _, dup := out[key]; dup {
			t.Fatalf("row %s twice", key)
		}
		out[key] = r
	}
	return out
}

func atoi(t *testing.T, s string) int32 {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q is not a count", s)
	}
	return int32(n)
}

// The CSV is the report, row for row: every count, target and the
// totals, with the headers a spreadsheet needs; semicolons and decimal
// commas on request.
func TestReportCSV(t *testing.T) {
	fake, addr := reportBackend(t)
	url := startGateway(t, t, addr, 0)
	want := sampleReport("projects/esf", "2020/00312")

	resp, body := do(t, http.MethodGet, url+"/v1/projects/esf/report.csv", nil, http.Header{"X-Request-Id": {"csv-1"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="2020-00312.csv"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	md := fake.md[len(fake.md)-1]
	if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer test-credential" {
		t.Errorf("the backend got authorization %q", got)
	}
	if got := md.Get("x-request-id"); len(got) != 1 || got[0] != "csv-1" {
		t.Errorf("the backend got x-request-id %q", got)
	}
	if fake.names[len(fake.names)-1] != "projects/esf" {
		t.Errorf("asked for %q", fake.names)
	}

	rows := readCSV(t, body, ',')
	table := csvTable(t, rows)
	if r := table["participants/"]; r[2] != "14" || r[3] != "3500" || r[4] != "0.40" {
		t.Errorf("participants row %q", r)
	}
	for _, tp := range want.GetTargets() {
		r := table["target/"+tp.GetMeasure()]
		if r == nil || atoi(t, r[2]) != tp.GetActual() || atoi(t, r[3]) != tp.GetTarget() || r[4] != strconv.FormatFloat(tp.GetPercentOfTarget(), 'f', 2, 64) {
			t.Errorf("target %s: row %q", tp.GetMeasure(), r)
		}
	}
	n := 0
	for _, b := range want.GetBreakdowns() {
		var sum int32
		for _, c := range b.GetCounts() {
			n++
			r := table[b.GetDimension()+"/"+c.GetValue()]
			if r == nil || atoi(t, r[2]) != c.GetCount() {
				t.Errorf("%s=%s: row %q, want count %d", b.GetDimension(), c.GetValue(), r, c.GetCount())
				continue
			}
			sum += atoi(t, r[2])
			if c.GetTarget() > 0 && (atoi(t, r[3]) != c.GetTarget() || r[4] != "0.80") {
				t.Errorf("%s=%s: target %q", b.GetDimension(), c.GetValue(), r)
			}
			if c.GetTarget() == 0 && (r[3] != "" || r[4] != "") {
				t.Errorf("%s=%s: a target where there is none: %q", b.GetDimension(), c.GetValue(), r)
			}
		}
		if b.GetDimension() == "gender" || b.GetDimension() == "age_band" || b.GetDimension() == "employer_council" {
			if sum != want.GetParticipants() {
				t.Errorf("%s sums to %d in the CSV, the report has %d participants", b.GetDimension(), sum, want.GetParticipants())
			}
		}
	}
	// header, participants, 4 targets, the counts, 3 attendance, 2 cost
	if len(rows) != 1+1+4+n+3+2 {
		t.Errorf("%d rows", len(rows))
	}
	for key, want := range map[string]string{"attendance/sessions_recorded": "40", "attendance/sessions_present": "30"} {
		if table[key][2] != want {
			t.Errorf("%s %q", key, table[key])
		}
	}
	if r := table["attendance/attendance_rate"]; r[4] != "75.00" {
		t.Errorf("attendance rate %q", r)
	}
	if r := table["cost/call_off_value"]; r[5] != "249999.50" {
		t.Errorf("call-off value %q", r)
	}
	if r := table["cost/cost_per_participant"]; r[5] != "17857.11" {
		t.Errorf("cost per participant %q", r)
	}

	// Semicolons, for a Swedish Excel: the same rows, decimal commas.
	resp, body = do(t, http.MethodGet, url+"/v1/projects/esf/report.csv?delimiter=semicolon", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "participants;;14;3500;0,40;\r\n") &&
		!strings.Contains(string(body), "participants;;14;3500;0,40;\n") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	semi := csvTable(t, readCSV(t, body, ';'))
	if len(semi) != len(table) {
		t.Errorf("%d rows with semicolons, %d with commas", len(semi), len(table))
	}
	for key, r := range table {
		s := semi[key]
		for i := range r {
			if strings.ReplaceAll(r[i], ".", ",") != s[i] {
				t.Errorf("%s: %q with commas, %q with semicolons", key, r, s)
				break
			}
		}
	}
	if r := semi["cost/call_off_value"]; r[5] != "249999,50" {
		t.Errorf("call-off value with a decimal comma %q", r)
	}
	if resp, _ := do(t, http.MethodGet, url+"/v1/projects/esf/report.csv?delimiter=comma", nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("delimiter=comma: %d", resp.StatusCode)
	}

	// A reference number that tries to leave the header's quotes or name
	// a path is made a plain file name.
	resp, _ = do(t, http.MethodGet, url+"/v1/projects/odd/report.csv", nil, nil)
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="x---filename-..-..-etc-passwd.csv"` {
		t.Errorf("Content-Disposition %q", cd)
	}
}

// Refusals are the API's: 400 naming the parameter before any backend
// call, 401 without credentials, and the backend's errors mapped as for
// every call (404, 403, 400 with the field).
func TestReportCSVRefusals(t *testing.T) {
	fake, addr := reportBackend(t)
	url := startGateway(t, t, addr, 0)
	for _, c := range []struct{ query, field string }{
		{"delimiter=tab", "delimiter"},
		{"delimiter=semicolon&delimiter=comma", "delimiter"},
		{"Delimiter=semicolon", "Delimiter"},
		{"view=FULL", "view"},
	} {
		resp, body := do(t, http.MethodGet, url+"/v1/projects/esf/report.csv?"+c.query, nil, nil)
		e := wantError(t, resp, body, http.StatusBadRequest, codes.InvalidArgument)
		if !strings.Contains(string(body), `"field":"`+c.field+`"`) {
			t.Errorf("%s: %s does not name %s", c.query, e.Message, c.field)
		}
	}
	if fake.calls() != 0 {
		t.Fatalf("refused requests reached the backend %d times", fake.calls())
	}
	resp, body := do(t, http.MethodGet, url+"/v1/projects/esf/report.csv", nil, http.Header{"Authorization": {}})
	wantError(t, resp, body, http.StatusUnauthorized, codes.Unauthenticated)
	for _, c := range []struct {
		project string
		status  int
		code    codes.Code
	}{
		{"missing", http.StatusNotFound, codes.NotFound},
		{"secret", http.StatusForbidden, codes.PermissionDenied},
		{"bad", http.StatusBadRequest, codes.InvalidArgument},
	} {
		resp, body := do(t, http.MethodGet, url+"/v1/projects/"+c.project+"/report.csv", nil, nil)
		wantError(t, resp, body, c.status, c.code)
	}
	if resp, body := do(t, http.MethodPost, url+"/v1/projects/esf/report.csv", strings.NewReader("{}"), nil); resp.StatusCode == http.StatusOK {
		t.Errorf("POST answered %d %s", resp.StatusCode, body)
	}
}
