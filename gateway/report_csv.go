package gateway

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc"
)

// reportCSVPath is the project report as CSV: the gateway's own route
// (the API has the report as JSON, GetProjectReport), for a funder's
// spreadsheet.
const reportCSVPath = "/v1/projects/{project}/report.csv"

// csvColumns are the CSV report's columns: one row per (dimension,
// value); count, target and percent where the row has them, amount_sek
// for the cost rows.
var csvColumns = []string{"dimension", "value", "count", "target", "percent", "amount_sek"}

// handleReportCSV serves GET /v1/projects/{project}/report.csv: the
// project report asked of the enrolment service over gRPC, on the caller's
// behalf (their Authorization, the request id and deadline travel as for
// every API call, and errors are answered as for every API call), written
// with encoding/csv:
//
//   - UTF-8 with a byte-order mark, so Excel reads å, ä and ö;
//   - comma-separated, or with ?delimiter=semicolon the list separator of
//     a Swedish Excel, which then also wants decimal commas;
//   - as an attachment named after the project's reference number.
func (g *Gateway) handleReportCSV(conn *grpc.ClientConn) runtime.HandlerFunc {
	client := enrolmentv1.NewEnrolmentServiceClient(conn)
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		comma, decimal, err := csvOptions(r)
		if err == nil {
			err = checkPath(params)
		}
		if err != nil {
			g.refuse(w, r, err)
			return
		}
		ctx, err := runtime.AnnotateContext(r.Context(), g.mux, r,
			"/"+enrolmentv1.EnrolmentService_ServiceDesc.ServiceName+"/GetProjectReport",
			runtime.WithHTTPPathPattern(reportCSVPath))
		if err != nil {
			runtime.HTTPError(r.Context(), g.mux, apiJSON, w, r, err)
			return
		}
		report, err := client.GetProjectReport(ctx, &enrolmentv1.GetProjectReportRequest{Name: "projects/" + params["project"]})
		if err != nil {
			runtime.HTTPError(ctx, g.mux, apiJSON, w, r, err)
			return
		}
		var body bytes.Buffer
		body.WriteString("\uFEFF")
		cw := csv.NewWriter(&body)
		cw.Comma = comma
		if err := cw.WriteAll(reportRows(report, decimal)); err != nil {
			runtime.HTTPError(ctx, g.mux, apiJSON, w, r, err)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.csv"`, csvFilename(report.GetReferenceNumber(), params["project"])))
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Length", strconv.Itoa(body.Len()))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body.Bytes())
	}
}

// csvOptions reads the query: delimiter=comma (the default) or semicolon,
// nothing else (as the API refuses parameters it does not take).
func csvOptions(r *http.Request) (comma rune, decimal byte, err error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return 0, 0, badField("query", "the query string is malformed")
	}
	for k, vs := range q {
		if k != "delimiter" {
			return 0, 0, badField(k, "is not a parameter of this request; it takes: delimiter (names are case-sensitive)")
		}
		if len(vs) > 1 {
			return 0, 0, badField(k, "is given %d times; give it once", len(vs))
		}
	}
	switch v := q.Get("delimiter"); v {
	case "", "comma":
		return ',', '.', nil
	case "semicolon":
		return ';', ',', nil
	default:
		return 0, 0, badField("delimiter", "must be comma or semicolon, not %q", v)
	}
}

// csvFilename is the reference number (2020/00312) as a file name
// (2020-00312): anything but letters, digits, '.', '_' and '-' becomes
// '-', so it can neither leave the quotes of the header nor name a path;
// the project id when there is none.
func csvFilename(ref, fallback string) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '-'
	}, ref)
	name = strings.TrimLeft(name, ".-")
	if name == "" {
		name = fallback
	}
	return name
}

// reportRows is the report as CSV rows: the header, participants against
// their target, each target, every breakdown's counts, attendance and
// cost.
func reportRows(r *enrolmentv1.ProjectReport, decimal byte) [][]string {
	num := func(v float64) string {
		s := strconv.FormatFloat(v, 'f', 2, 64)
		if decimal != '.' {
			s = strings.Replace(s, ".", string(decimal), 1)
		}
		return s
	}
	itoa := func(n int32) string { return strconv.Itoa(int(n)) }
	rows := [][]string{slices.Clone(csvColumns)}
	var participantsTarget int32
	for _, t := range r.GetTargets() {
		if t.GetMeasure() == "participants" {
			participantsTarget = t.GetTarget()
		}
	}
	pct := 0.0
	if participantsTarget > 0 {
		pct = float64(r.GetParticipants()) / float64(participantsTarget) * 100
	}
	rows = append(rows, []string{"participants", "", itoa(r.GetParticipants()), itoa(participantsTarget), num(pct), ""})
	for _, t := range r.GetTargets() {
		rows = append(rows, []string{"target", t.GetMeasure(), itoa(t.GetActual()), itoa(t.GetTarget()), num(t.GetPercentOfTarget()), ""})
	}
	for _, b := range r.GetBreakdowns() {
		for _, c := range b.GetCounts() {
			target, percent := "", ""
			if c.GetTarget() > 0 {
				target, percent = itoa(c.GetTarget()), num(float64(c.GetCount())/float64(c.GetTarget())*100)
			}
			rows = append(rows, []string{b.GetDimension(), c.GetValue(), itoa(c.GetCount()), target, percent, ""})
		}
	}
	rows = append(rows,
		[]string{"attendance", "sessions_recorded", itoa(r.GetSessionsRecorded()), "", "", ""},
		[]string{"attendance", "sessions_present", itoa(r.GetSessionsPresent()), "", "", ""},
		[]string{"attendance", "attendance_rate", "", "", num(r.GetAttendanceRate() * 100), ""},
		[]string{"cost", "call_off_value", "", "", "", amount(r.GetCallOffValue(), decimal)},
		[]string{"cost", "cost_per_participant", "", "", "", amount(r.GetCostPerParticipant(), decimal)},
	)
	return rows
}

// amount is a Money to the öre ("" when unset: no participants, no cost
// per participant).
func amount(m *money.Money, decimal byte) string {
	if m == nil {
		return ""
	}
	units, nanos := m.GetUnits(), int64(m.GetNanos())
	sign := ""
	if units < 0 || nanos < 0 {
		sign, units, nanos = "-", -units, -nanos
	}
	return fmt.Sprintf("%s%d%c%02d", sign, units, decimal, nanos/10_000_000)
}
