package enrolment_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/enrolment"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

const (
	woman     = enrolmentv1.Gender_GENDER_WOMAN
	man       = enrolmentv1.Gender_GENDER_MAN
	nonBinary = enrolmentv1.Gender_GENDER_NON_BINARY

	atRisk     = enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_EMPLOYED_AT_RISK
	notified   = enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_NOTIFIED
	furloughed = enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_FURLOUGHED
	laidOff    = enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_LAID_OFF
	jobSeeker  = enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_JOB_SEEKER
	inactive   = enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_INACTIVE

	isced02 = enrolmentv1.EducationLevel_EDUCATION_LEVEL_ISCED_0_2
	isced34 = enrolmentv1.EducationLevel_EDUCATION_LEVEL_ISCED_3_4
	isced58 = enrolmentv1.EducationLevel_EDUCATION_LEVEL_ISCED_5_8
)

// reportPerson is one of the hand-built dataset's participants.
type reportPerson struct {
	born         [3]int
	coordination bool
	gender       enrolmentv1.Gender
	status       enrolmentv1.LabourMarketStatus
	education    enrolmentv1.EducationLevel
	municipality string
	employer     string
}

// The dataset's twenty people. Everyone enrols on 2 March 2026 (the test
// clock), so p01 (born 3 March 2001) is 24 and p02 (born 2 March 2001)
// turned 25 that very day; likewise 29/30 (p03/p04) and 54/55 (p05/p06):
// each pair sits on an ESF+ band boundary, on the exact birthday. p11 has
// a samordningsnummer and was born on a leap day.
var reportPeople = map[string]reportPerson{
	"p01": {[3]int{2001, 3, 3}, false, woman, notified, isced34, "1480", "companies/volvo-cars"},
	"p02": {[3]int{2001, 3, 2}, false, woman, notified, isced34, "1480", "companies/volvo-cars"},
	"p03": {[3]int{1996, 3, 3}, false, man, atRisk, isced02, "1481", "companies/skf"},
	"p04": {[3]int{1996, 3, 2}, false, man, furloughed, isced58, "1481", ""},
	"p05": {[3]int{1971, 3, 3}, false, nonBinary, laidOff, isced34, "1440", ""},
	"p06": {[3]int{1971, 3, 2}, false, woman, jobSeeker, isced02, "1440", ""},
	"p07": {[3]int{1985, 6, 15}, false, woman, notified, isced58, "1482", "companies/volvo-cars"},
	"p08": {[3]int{1990, 1, 20}, false, man, jobSeeker, isced34, "1480", ""},
	"p09": {[3]int{1960, 11, 11}, false, man, notified, isced02, "1480", "companies/skf"},
	"p10": {[3]int{2003, 7, 7}, false, nonBinary, jobSeeker, isced34, "1489", ""},
	"p11": {[3]int{1980, 2, 29}, true, woman, laidOff, isced58, "1401", ""},
	"p12": {[3]int{1975, 5, 5}, false, woman, atRisk, isced34, "1480", "companies/volvo-cars"},
	"p13": {[3]int{1988, 8, 8}, false, man, notified, isced34, "1480", "companies/volvo-cars"},
	"p14": {[3]int{1999, 9, 9}, false, woman, jobSeeker, isced34, "1481", ""},
	"p15": {[3]int{1970, 10, 10}, false, man, laidOff, isced02, "1384", ""},
	"p16": {[3]int{1992, 12, 12}, false, woman, notified, isced58, "1480", "companies/skf"},
	"p17": {[3]int{1983, 3, 13}, false, man, furloughed, isced58, "1482", "companies/volvo-cars"},
	"p18": {[3]int{1995, 4, 4}, false, woman, jobSeeker, isced02, "1480", ""},
	"p19": {[3]int{1978, 7, 21}, false, nonBinary, notified, isced34, "1441", "companies/skf"},
	"p20": {[3]int{1966, 1, 1}, false, woman, atRisk, isced34, "1480", "companies/volvo-cars"},
}

// reportWorld is the dataset: projects/rep-a with three offerings (two
// from one call-off), projects/rep-b with one; who enrolled where is in
// buildReportWorld.
type reportWorld struct {
	e    env
	a, b string
	// enrolments by "<offering id>/<participant id>"
	enrolments map[string]string
}

func (w *reportWorld) enrol(t *testing.T, offering, person string) {
	t.Helper()
	w.e.clock.tick()
	en, err := w.e.c.CreateEnrolment(ctx, &enrolmentv1.CreateEnrolmentRequest{Parent: "offerings/" + offering,
		EnrolmentId: offering + "-" + person, Enrolment: &enrolmentv1.Enrolment{Participant: "participants/" + person}})
	if err != nil {
		t.Fatalf("enrolling %s on %s: %v", person, offering, err)
	}
	w.enrolments[offering+"/"+person] = en.GetName()
}

func (w *reportWorld) withdraw(t *testing.T, offering, person string) {
	t.Helper()
	w.e.clock.tick()
	if _, err := w.e.c.WithdrawEnrolment(ctx, &enrolmentv1.WithdrawEnrolmentRequest{Name: w.enrolments[offering+"/"+person],
		Reason: "Har fått arbete"}); err != nil {
		t.Fatal(err)
	}
}

func (w *reportWorld) update(t *testing.T, person string, p *enrolmentv1.Participant, paths ...string) {
	t.Helper()
	w.e.clock.tick()
	p.Name = "participants/" + person
	if _, err := w.e.c.UpdateParticipant(ctx, &enrolmentv1.UpdateParticipantRequest{Participant: p,
		UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}}); err != nil {
		t.Fatal(err)
	}
}

func (w *reportWorld) report(t *testing.T, project string) *enrolmentv1.ProjectReport {
	t.Helper()
	r, err := w.e.c.GetProjectReport(ctx, &enrolmentv1.GetProjectReportRequest{Name: project})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func money2(units int64, nanos int32) *money.Money {
	return &money.Money{CurrencyCode: "SEK", Units: units, Nanos: nanos}
}

// buildReportWorld makes the dataset:
//
//   - rep-a1 (callOffs/rep-1, capacity 10): p01–p08 enrolled; p09 enrolled
//     and withdrew (so is no participant);
//   - rep-a2 (callOffs/rep-1 again, capacity 2): p10 and p11 take the
//     seats, p12 and p13 wait; p10 withdraws, promoting p12;
//   - rep-a3 (callOffs/rep-2, capacity 5): p01 again, after moving to
//     Kungälv and losing her job (her first enrolment still counts), p14,
//     p15, p16, p19;
//   - rep-b1 in projects/rep-b (callOffs/rep-3): p01 (as she is now), p13
//     (waitlisted in rep-a, so a participant of rep-b only), p17, p18, p20.
func buildReportWorld(t *testing.T, e env) *reportWorld {
	t.Helper()
	for name, v := range map[string]*money.Money{"callOffs/rep-1": money2(150_000, 0), "callOffs/rep-2": money2(99_999, 500_000_000),
		"callOffs/rep-3": money2(80_000, 0)} {
		e.callOffs.set(enrolment.CallOff{Name: name, State: "STATE_AWARDED", Awarded: true, Provider: "providers/lernia",
			Skills: []string{"skills/robotsvetsning"}, Days: 3, Value: v})
	}
	w := &reportWorld{e: e, enrolments: map[string]string{}}
	w.a = mustProject(t, e, vastkraft("rep-a")).GetName()
	w.b = mustProject(t, e, vastkraft("rep-b")).GetName()
	for _, o := range []struct {
		id, callOff, project string
		capacity             int32
	}{{"rep-a1", "callOffs/rep-1", w.a, 10}, {"rep-a2", "callOffs/rep-1", w.a, 2}, {"rep-a3", "callOffs/rep-2", w.a, 5},
		{"rep-b1", "callOffs/rep-3", w.b, 5}} {
		req := svets(o.id, o.project, o.capacity)
		req.Offering.CallOff = o.callOff
		mustOffering(t, e, req, true)
	}
	for i := 1; i <= 20; i++ {
		id := fmt.Sprintf("p%02d", i)
		p := reportPeople[id]
		e.clock.tick()
		_, err := e.c.CreateParticipant(ctx, &enrolmentv1.CreateParticipantRequest{ParticipantId: id, Participant: &enrolmentv1.Participant{
			PersonalIdentityNumber: number(p.born[0], p.born[1], p.born[2], 200+i, p.coordination),
			GivenName:              "Deltagare", FamilyName: "Nummer" + id, Gender: p.gender, Municipality: p.municipality,
			LabourMarketStatus: p.status, EducationLevel: p.education, Employer: p.employer,
		}})
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	for i := 1; i <= 9; i++ {
		w.enrol(t, "rep-a1", fmt.Sprintf("p%02d", i))
	}
	w.withdraw(t, "rep-a1", "p09")
	for _, p := range []string{"p10", "p11", "p12", "p13"} {
		w.enrol(t, "rep-a2", p)
	}
	w.withdraw(t, "rep-a2", "p10")
	w.update(t, "p01", &enrolmentv1.Participant{Municipality: "1482", LabourMarketStatus: jobSeeker, Employer: ""},
		"municipality", "labour_market_status", "employer")
	for _, p := range []string{"p01", "p14", "p15", "p16", "p19"} {
		w.enrol(t, "rep-a3", p)
	}
	for _, p := range []string{"p01", "p13", "p17", "p18", "p20"} {
		w.enrol(t, "rep-b1", p)
	}
	return w
}

// renderReport writes a report as lines a person can check by hand.
func renderReport(r *enrolmentv1.ProjectReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s participants=%d\n", r.GetProject(), r.GetReferenceNumber(), r.GetParticipants())
	for _, tp := range r.GetTargets() {
		fmt.Fprintf(&b, "target %s %d/%d %.2f%%\n", tp.GetMeasure(), tp.GetActual(), tp.GetTarget(), tp.GetPercentOfTarget())
	}
	for _, bd := range r.GetBreakdowns() {
		b.WriteString(bd.GetDimension() + ":")
		for _, c := range bd.GetCounts() {
			fmt.Fprintf(&b, " %s=%d", c.GetValue(), c.GetCount())
			if c.GetTarget() != 0 {
				fmt.Fprintf(&b, "/%d", c.GetTarget())
			}
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "attendance %d/%d %.4f\n", r.GetSessionsPresent(), r.GetSessionsRecorded(), r.GetAttendanceRate())
	fmt.Fprintf(&b, "cost %s per participant %s\n", sekString(r.GetCallOffValue()), sekString(r.GetCostPerParticipant()))
	return b.String()
}

func sekString(m *money.Money) string {
	if m == nil {
		return "-"
	}
	return fmt.Sprintf("%d.%02d %s", m.GetUnits(), m.GetNanos()/10_000_000, m.GetCurrencyCode())
}

// wantA is projects/rep-a as buildReportWorld leaves it, counted by hand:
// fourteen participants (p01–p08, p11, p12 promoted, p14, p15, p16, p19;
// not p09 and p10, who withdrew, nor p13, who waits), p01 with her first
// enrolment's fields (Göteborg, notified, at Volvo Cars); eighteen
// enrolments; rep-1's value once though two offerings were bought with
// it: (150 000 + 99 999.50) / 14 = 17 857.107… → 17 857.11.
const wantA = `projects/rep-a VK-rep-a participants=14
target participants 14/3500 0.40%
target women 8/1000 0.80%
target employed 8/2500 0.32%
target job_seekers 6/1000 0.60%
gender: GENDER_WOMAN=8/1000 GENDER_MAN=4 GENDER_NON_BINARY=2
age_band: <25=1 25-29=3 30-54=8 55+=2
labour_market_status: LABOUR_MARKET_STATUS_EMPLOYED_AT_RISK=2 LABOUR_MARKET_STATUS_NOTIFIED=5 LABOUR_MARKET_STATUS_FURLOUGHED=1 LABOUR_MARKET_STATUS_LAID_OFF=3 LABOUR_MARKET_STATUS_JOB_SEEKER=3
education_level: EDUCATION_LEVEL_ISCED_0_2=3 EDUCATION_LEVEL_ISCED_3_4=7 EDUCATION_LEVEL_ISCED_5_8=4
municipality: 1384=1 1401=1 1440=2 1441=1 1480=5 1481=3 1482=1
employer_council: councils/fordon=4 councils/teknik=3 none=7
enrolment_state: STATE_ENROLLED=15 STATE_WAITLISTED=1 STATE_WITHDRAWN=2
result:
outcome_exit:
outcome_six_months:
attendance 0/0 0.0000
cost 249999.50 SEK per participant 17857.11 SEK
`

// wantB is projects/rep-b: five participants, p01 as she was when she
// enrolled there (Kungälv, job-seeker, no employer), p13 though only
// waitlisted in rep-a.
const wantB = `projects/rep-b VK-rep-b participants=5
target participants 5/3500 0.14%
target women 3/1000 0.30%
target employed 3/2500 0.12%
target job_seekers 2/1000 0.20%
gender: GENDER_WOMAN=3/1000 GENDER_MAN=2
age_band: <25=1 30-54=3 55+=1
labour_market_status: LABOUR_MARKET_STATUS_EMPLOYED_AT_RISK=1 LABOUR_MARKET_STATUS_NOTIFIED=1 LABOUR_MARKET_STATUS_FURLOUGHED=1 LABOUR_MARKET_STATUS_JOB_SEEKER=2
education_level: EDUCATION_LEVEL_ISCED_0_2=1 EDUCATION_LEVEL_ISCED_3_4=3 EDUCATION_LEVEL_ISCED_5_8=1
municipality: 1480=3 1482=2
employer_council: councils/fordon=3 none=2
enrolment_state: STATE_ENROLLED=5
result:
outcome_exit:
outcome_six_months:
attendance 0/0 0.0000
cost 80000.00 SEK per participant 16000.00 SEK
`

// stable is a report's bytes without its compute time (deterministic
// marshalling, so equal reports are equal bytes).
func stable(t *testing.T, r *enrolmentv1.ProjectReport) []byte {
	t.Helper()
	c := proto.CloneOf(r)
	c.ComputeTime = nil
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The report's numbers against the hand-built dataset, for both projects
// sharing people; and a later change to the participants (a status,
// gender, municipality, employer) changes neither.
func TestProjectReportCountsTheHandBuiltDataset(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		w := buildReportWorld(t, e)
		a, b := w.report(t, w.a), w.report(t, w.b)
		if got := renderReport(a); got != wantA {
			t.Errorf("projects/rep-a:\n%s\nwant\n%s", got, wantA)
		}
		if got := renderReport(b); got != wantB {
			t.Errorf("projects/rep-b:\n%s\nwant\n%s", got, wantB)
		}
		// The offering shows the value it recorded from its call-off.
		if o, err := e.c.GetOffering(ctx, &enrolmentv1.GetOfferingRequest{Name: "offerings/rep-a3"}); err != nil ||
			!proto.Equal(o.GetCallOffValue(), money2(99_999, 500_000_000)) {
			t.Errorf("offering's call-off value: %v %v", o.GetCallOffValue(), err)
		}
		if !a.GetComputeTime().AsTime().Equal(e.clock.now()) {
			t.Errorf("compute time %v, want the clock's %v", a.GetComputeTime().AsTime(), e.clock.now())
		}
		// Exact, not only as rendered.
		if pc := a.GetTargets()[0].GetPercentOfTarget(); pc != 14.0/3500*100 {
			t.Errorf("percent of target %v", pc)
		}

		// Status changes after enrolment: the participants now say
		// otherwise, the reports do not.
		beforeA, beforeB := stable(t, a), stable(t, b)
		w.update(t, "p02", &enrolmentv1.Participant{LabourMarketStatus: inactive, Municipality: "1489"}, "labour_market_status", "municipality")
		w.update(t, "p17", &enrolmentv1.Participant{Gender: woman, EducationLevel: isced02, Employer: "companies/skf"}, "gender", "education_level", "employer")
		w.update(t, "p13", &enrolmentv1.Participant{LabourMarketStatus: laidOff}, "labour_market_status")
		if got, err := e.c.GetParticipant(ctx, &enrolmentv1.GetParticipantRequest{Name: "participants/p02"}); err != nil ||
			got.GetLabourMarketStatus() != inactive || got.GetMunicipality() != "1489" {
			t.Fatalf("p02 is now %v %v", got, err)
		}
		e.clock.tick()
		if got := stable(t, w.report(t, w.a)); !proto.Equal(mustReport(t, got), mustReport(t, beforeA)) || string(got) != string(beforeA) {
			t.Errorf("rep-a changed with the participants:\n%s", renderReport(mustReport(t, got)))
		}
		if got := stable(t, w.report(t, w.b)); string(got) != string(beforeB) {
			t.Errorf("rep-b changed with the participants:\n%s", renderReport(mustReport(t, got)))
		}
	})
}

func mustReport(t *testing.T, b []byte) *enrolmentv1.ProjectReport {
	t.Helper()
	r := &enrolmentv1.ProjectReport{}
	if err := proto.Unmarshal(b, r); err != nil {
		t.Fatal(err)
	}
	return r
}

// A project nobody enrolled in: zeros against its targets, every
// dimension there without counts (but women with her target), no cost
// per participant; and a closed project is still reported.
func TestProjectReportOfAnEmptyAndAClosedProject(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		p := mustProject(t, e, vastkraft("tom"))
		r, err := e.c.GetProjectReport(ctx, &enrolmentv1.GetProjectReportRequest{Name: p.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		want := `projects/tom VK-tom participants=0
target participants 0/3500 0.00%
target women 0/1000 0.00%
target employed 0/2500 0.00%
target job_seekers 0/1000 0.00%
gender: GENDER_WOMAN=0/1000
age_band:
labour_market_status:
education_level:
municipality:
employer_council:
enrolment_state:
result:
outcome_exit:
outcome_six_months:
attendance 0/0 0.0000
cost 0.00 SEK per participant -
`
		if got := renderReport(r); got != want {
			t.Errorf("empty project:\n%s\nwant\n%s", got, want)
		}

		w := buildReportWorld(t, e)
		e.clock.tick()
		if _, err := e.c.CloseProject(ctx, &enrolmentv1.CloseProjectRequest{Name: w.b}); err != nil {
			t.Fatal(err)
		}
		if got := renderReport(w.report(t, w.b)); got != wantB {
			t.Errorf("closed rep-b:\n%s", got)
		}
	})
}

// A bad name is INVALID_ARGUMENT naming it; a project that does not exist
// is NOT_FOUND.
func TestProjectReportRefusals(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		for _, name := range []string{"", "projects/", "projects/Stor", "offerings/x", "projects/a/b"} {
			_, err := e.c.GetProjectReport(ctx, &enrolmentv1.GetProjectReportRequest{Name: name})
			st := wantCode(t, err, codes.InvalidArgument)
			if !fieldViolated(st.Details(), "name") {
				t.Errorf("%q: %v does not name the field", name, err)
			}
		}
		_, err := e.c.GetProjectReport(ctx, &enrolmentv1.GetProjectReportRequest{Name: "projects/finns-inte"})
		wantCode(t, err, codes.NotFound)
	})
}

func fieldViolated(details []any, field string) bool {
	for _, d := range details {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					return true
				}
			}
		}
	}
	return false
}

// Results, attendance and outcomes, on the same dataset: the offerings
// run, p01–p06 and p14 complete with every result, p11 (still enrolled)
// has two sessions recorded, and p01's second enrolment is withdrawn
// after a session (her attendance there no longer counts, and she still
// counts, by her completed first enrolment); outcomes at exit (one
// re-recorded, one of p09, who withdrew) and at six months, one of them
// in rep-b, which rep-a does not count.
func TestProjectReportCountsResultsAttendanceAndOutcomes(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		w := buildReportWorld(t, e)
		for _, o := range []string{"rep-a1", "rep-a2", "rep-a3", "rep-b1"} {
			if _, err := e.c.StartOffering(ctx, &enrolmentv1.StartOfferingRequest{Name: "offerings/" + o}); err != nil {
				t.Fatal(err)
			}
		}
		e.clock.set(time.Date(2026, 4, 15, 10, 0, 0, 0, time.UTC))
		att := func(offering, person string, statuses ...enrolmentv1.AttendanceStatus) {
			t.Helper()
			for i, st := range statuses {
				e.clock.tick()
				if _, err := record(e, w.enrolments[offering+"/"+person], 13+i, st, 0); err != nil {
					t.Fatalf("%s on %s: %v", person, offering, err)
				}
			}
		}
		for _, p := range []string{"p01", "p02", "p03", "p04"} {
			att("rep-a1", p, present, present, present)
		}
		att("rep-a1", "p05", present, absent, excused)
		att("rep-a1", "p06", absent, absent, absent)
		att("rep-a3", "p14", present, present, present)
		att("rep-a2", "p11", present, present)
		att("rep-a3", "p01", present)
		w.withdraw(t, "rep-a3", "p01")
		for p, r := range map[string]enrolmentv1.Enrolment_Result{"rep-a1/p01": passed, "rep-a1/p02": passed, "rep-a1/p03": failed,
			"rep-a1/p04": notAssessed, "rep-a1/p05": passed, "rep-a1/p06": failed, "rep-a3/p14": passed} {
			e.clock.tick()
			if _, err := complete(e, w.enrolments[p], r); err != nil {
				t.Fatalf("completing %s: %v", p, err)
			}
		}
		out := func(project, person string, timing enrolmentv1.OutcomeTiming, o enrolmentv1.Outcome, day *date.Date) {
			t.Helper()
			e.clock.tick()
			if _, err := e.c.RecordOutcome(ctx, &enrolmentv1.RecordOutcomeRequest{Participant: "participants/" + person, Project: project,
				Timing: timing, Outcome: o, Date: day}); err != nil {
				t.Fatalf("outcome of %s: %v", person, err)
			}
		}
		exitDay := d(2026, 4, 15)
		out(w.a, "p01", atExit, keptJob, exitDay)
		out(w.a, "p02", atExit, newJob, exitDay)
		out(w.a, "p03", atExit, keptJob, exitDay)
		out(w.a, "p03", atExit, newJob, exitDay) // replaces
		out(w.a, "p09", atExit, enrolmentv1.Outcome_OUTCOME_JOB_SEEKING, exitDay)
		out(w.a, "p14", atExit, studies, exitDay)
		out(w.b, "p01", atExit, enrolmentv1.Outcome_OUTCOME_INACTIVE, exitDay)
		e.clock.set(time.Date(2026, 10, 20, 10, 0, 0, 0, time.UTC))
		out(w.a, "p01", atSix, newJob, d(2026, 10, 15))
		out(w.a, "p02", atSix, enrolmentv1.Outcome_OUTCOME_STARTED_BUSINESS, d(2026, 10, 16))

		wantA2 := strings.NewReplacer(
			"enrolment_state: STATE_ENROLLED=15 STATE_WAITLISTED=1 STATE_WITHDRAWN=2\n",
			"enrolment_state: STATE_ENROLLED=7 STATE_WAITLISTED=1 STATE_WITHDRAWN=3 STATE_COMPLETED=7\n",
			"result:\n", "result: RESULT_PASSED=4 RESULT_FAILED=2 RESULT_NOT_ASSESSED=1\n",
			"outcome_exit:\n", "outcome_exit: OUTCOME_KEPT_JOB=1 OUTCOME_NEW_JOB=2 OUTCOME_STUDIES=1 OUTCOME_JOB_SEEKING=1\n",
			"outcome_six_months:\n", "outcome_six_months: OUTCOME_NEW_JOB=1 OUTCOME_STARTED_BUSINESS=1\n",
			// p01–p04 3 of 3, p05 1 of 3, p06 0 of 3, p14 3 of 3, p11 2 of 2
			"attendance 0/0 0.0000\n", "attendance 18/23 0.7826\n",
		).Replace(wantA)
		if got := renderReport(w.report(t, w.a)); got != wantA2 {
			t.Errorf("projects/rep-a:\n%s\nwant\n%s", got, wantA2)
		}
		wantB2 := strings.Replace(wantB, "outcome_exit:\n", "outcome_exit: OUTCOME_INACTIVE=1\n", 1)
		if got := renderReport(w.report(t, w.b)); got != wantB2 {
			t.Errorf("projects/rep-b:\n%s\nwant\n%s", got, wantB2)
		}

		// Erasure: the reports are the same bytes (compute time and all,
		// the clock held still) after erasing any participant, every one
		// in turn: in both projects, withdrawn, waitlisted, promoted,
		// completed, with outcomes; and erasing again changes nothing.
		reportBytes := func(project string) []byte {
			t.Helper()
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(w.report(t, project))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		beforeA, beforeB := reportBytes(w.a), reportBytes(w.b)
		for _, p := range []string{"p01", "p09", "p13", "p12", "p03", "p05", "p14", "p11", "p02", "p04", "p06", "p07", "p08", "p10",
			"p15", "p16", "p17", "p18", "p19", "p20", "p01"} {
			if _, err := e.c.EraseParticipant(ctx, &enrolmentv1.EraseParticipantRequest{Name: "participants/" + p, Reason: "Begäran om radering, art. 17"}); err != nil {
				t.Fatalf("erasing %s: %v", p, err)
			}
			if got := reportBytes(w.a); string(got) != string(beforeA) {
				t.Fatalf("erasing %s changed rep-a:\n%s", p, renderReport(mustReport(t, got)))
			}
			if got := reportBytes(w.b); string(got) != string(beforeB) {
				t.Fatalf("erasing %s changed rep-b:\n%s", p, renderReport(mustReport(t, got)))
			}
		}
		if got, err := e.c.GetParticipant(ctx, &enrolmentv1.GetParticipantRequest{Name: "participants/p01"}); err != nil ||
			got.GetState() != enrolmentv1.Participant_STATE_ERASED {
			t.Fatalf("p01 after erasure: %v %v", got, err)
		}
	})
}
