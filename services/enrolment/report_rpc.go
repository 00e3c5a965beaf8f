package enrolment

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strings"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The project report is computed on demand, from the enrolments the
// project index lists (written in the same step as every enrolment), their
// snapshots and attendance (in the enrolment's hash) and the participants'
// outcomes, rather than from counters kept as enrolments change. Measured
// on 10⁵ participants (report_bench_test.go, README "Project report"): the
// whole report answers in well under a second, while counters would make
// every write path (enrol, withdraw, promote, complete, attendance,
// outcomes) carry increments whose meaning depends on the rest of the
// participant's enrolments (distinct people, their FIRST enrolment), with
// their own bugs to prove absent; on demand the report is right by
// construction, and erasure, which leaves snapshots, enrolments and
// outcomes as they are, cannot change it.

// reportChunk is how many enrolments (or participants) one pipelined read
// of the report takes: big enough that round trips do not dominate, small
// enough that no single reply holds Redis up.
const reportChunk = 2000

// attendancePrefix starts the enrolment hash's field of a session's
// attendance, att:YYYY-MM-DD → AttendanceRecord.
const attendancePrefix = "att:"

// outcomeKey holds a participant's outcomes, one field per project and
// timing (outcomeField) → ParticipantOutcome.
func reportOutcomeKey(participantID string) string { return Keyspace.Key("outcome", participantID) }

func reportOutcomeField(projectID string, t enrolmentv1.OutcomeTiming) string {
	if t == enrolmentv1.OutcomeTiming_OUTCOME_TIMING_SIX_MONTHS {
		return projectID + "-six-months"
	}
	return projectID + "-exit"
}

// Report measures and dimensions, as the API documents them.
const (
	dimGender       = "gender"
	dimAgeBand      = "age_band"
	dimStatus       = "labour_market_status"
	dimEducation    = "education_level"
	dimMunicipality = "municipality"
	dimCouncil      = "employer_council"
	dimState        = "enrolment_state"
	dimResult       = "result"
	dimOutcomeExit  = "outcome_exit"
	dimOutcomeSix   = "outcome_six_months"
	noCouncil       = "none"
)

// ageBandLabel is how the report names an age band.
func ageBandLabel(b enrolmentv1.AgeBand) string {
	switch b {
	case enrolmentv1.AgeBand_AGE_BAND_UNDER_25:
		return "<25"
	case enrolmentv1.AgeBand_AGE_BAND_25_29:
		return "25-29"
	case enrolmentv1.AgeBand_AGE_BAND_30_54:
		return "30-54"
	case enrolmentv1.AgeBand_AGE_BAND_55_PLUS:
		return "55+"
	}
	return b.String()
}

// Targets count participants by their labour-market status at first
// enrolment, as the statuses map to target groups (targetGroup): the
// employed are those at risk, notified and furloughed, the job-seekers
// the laid off and the registered job-seekers; the inactive are neither.
func countsAsEmployed(s enrolmentv1.LabourMarketStatus) bool {
	switch s {
	case enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_EMPLOYED_AT_RISK,
		enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_NOTIFIED,
		enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_FURLOUGHED:
		return true
	}
	return false
}

func countsAsJobSeeker(s enrolmentv1.LabourMarketStatus) bool {
	switch s {
	case enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_LAID_OFF,
		enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_JOB_SEEKER:
		return true
	}
	return false
}

// tally counts the values of one dimension; order sorts them for the
// report (by enum number, or by the value's bytes when nil).
type tally struct {
	counts map[string]int32
	order  func(string) int
}

func newTally(order func(string) int) *tally { return &tally{counts: map[string]int32{}, order: order} }

func (t *tally) add(v string) { t.counts[v]++ }

// enumOrder orders the names of an enum's values by their numbers.
func enumOrder(e protoreflect.EnumDescriptor) func(string) int {
	return func(v string) int {
		if ev := e.Values().ByName(protoreflect.Name(v)); ev != nil {
			return int(ev.Number())
		}
		return math.MaxInt
	}
}

func ageBandOrder(v string) int {
	for b := range enrolmentv1.AgeBand_name {
		if ageBandLabel(enrolmentv1.AgeBand(b)) == v {
			return int(b)
		}
	}
	return math.MaxInt
}

func (t *tally) breakdown(dim string, targets map[string]int32) *enrolmentv1.ReportBreakdown {
	values := make([]string, 0, len(t.counts)+len(targets))
	for v := range t.counts {
		values = append(values, v)
	}
	for v, n := range targets {
		if _, ok := t.counts[v]; !ok && n > 0 {
			values = append(values, v)
		}
	}
	slices.SortFunc(values, func(a, b string) int {
		if t.order != nil {
			if c := cmp.Compare(t.order(a), t.order(b)); c != 0 {
				return c
			}
		}
		return strings.Compare(a, b)
	})
	out := &enrolmentv1.ReportBreakdown{Dimension: dim, Counts: make([]*enrolmentv1.ReportCount, len(values))}
	for i, v := range values {
		out.Counts[i] = &enrolmentv1.ReportCount{Value: v, Count: t.counts[v], Target: targets[v]}
	}
	return out
}

// firstEnrolment is a participant's earliest ENROLLED or COMPLETED
// enrolment in the project: the one they are counted with.
type firstEnrolment struct {
	created  *timestamppb.Timestamp
	name     string
	snapshot *enrolmentv1.EnrolmentSnapshot
}

func (f *firstEnrolment) before(created *timestamppb.Timestamp, name string) bool {
	if c := cmp.Compare(created.AsTime().UnixNano(), f.created.AsTime().UnixNano()); c != 0 {
		return c < 0
	}
	return name < f.name
}

// reportData is what a report is computed from.
type reportData struct {
	participants map[string]*firstEnrolment // by participant name
	people       map[string]bool            // everyone with an enrolment in the project
	states       *tally
	results      *tally
	recorded     int32
	present      int32
}

// GetProjectReport implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) GetProjectReport(ctx context.Context, req *enrolmentv1.GetProjectReportRequest) (*enrolmentv1.ProjectReport, error) {
	projectID, err := parseProjectName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	project, err := s.loadProject(ctx, projectID)
	if err != nil {
		return nil, err
	}
	data, err := s.readProjectEnrolments(ctx, project.GetName())
	if err != nil {
		return nil, err
	}
	exit, six, err := s.readProjectOutcomes(ctx, projectID, data.people)
	if err != nil {
		return nil, err
	}
	value, err := s.projectCallOffValue(ctx, project.GetName())
	if err != nil {
		return nil, err
	}

	gender := newTally(enumOrder(enrolmentv1.Gender(0).Descriptor()))
	age := newTally(ageBandOrder)
	status := newTally(enumOrder(enrolmentv1.LabourMarketStatus(0).Descriptor()))
	education := newTally(enumOrder(enrolmentv1.EducationLevel(0).Descriptor()))
	municipality := newTally(nil)
	council := newTally(nil)
	var women, employed, jobSeekers int32
	for _, f := range data.participants {
		sn := f.snapshot
		gender.add(sn.GetGender().String())
		age.add(ageBandLabel(sn.GetAgeBand()))
		status.add(sn.GetLabourMarketStatus().String())
		education.add(sn.GetEducationLevel().String())
		municipality.add(sn.GetMunicipality())
		council.add(cmp.Or(sn.GetEmployerCouncil(), noCouncil))
		if sn.GetGender() == enrolmentv1.Gender_GENDER_WOMAN {
			women++
		}
		if countsAsEmployed(sn.GetLabourMarketStatus()) {
			employed++
		}
		if countsAsJobSeeker(sn.GetLabourMarketStatus()) {
			jobSeekers++
		}
	}
	n := int32(len(data.participants))
	tg := project.GetTargets()
	r := &enrolmentv1.ProjectReport{
		Project: project.GetName(), ReferenceNumber: project.GetReferenceNumber(), ComputeTime: timestamppb.New(s.now()),
		Participants: n,
		Targets: []*enrolmentv1.TargetProgress{
			progress("participants", tg.GetParticipants(), n),
			progress("women", tg.GetWomen(), women),
			progress("employed", tg.GetEmployed(), employed),
			progress("job_seekers", tg.GetJobSeekers(), jobSeekers),
		},
		Breakdowns: []*enrolmentv1.ReportBreakdown{
			gender.breakdown(dimGender, map[string]int32{enrolmentv1.Gender_GENDER_WOMAN.String(): tg.GetWomen()}),
			age.breakdown(dimAgeBand, nil),
			status.breakdown(dimStatus, nil),
			education.breakdown(dimEducation, nil),
			municipality.breakdown(dimMunicipality, nil),
			council.breakdown(dimCouncil, nil),
			data.states.breakdown(dimState, nil),
			data.results.breakdown(dimResult, nil),
			exit.breakdown(dimOutcomeExit, nil),
			six.breakdown(dimOutcomeSix, nil),
		},
		SessionsRecorded: data.recorded, SessionsPresent: data.present,
		CallOffValue: value,
	}
	if data.recorded > 0 {
		r.AttendanceRate = float64(data.present) / float64(data.recorded)
	}
	if n > 0 {
		r.CostPerParticipant = perParticipant(value, n)
	}
	return r, nil
}

func progress(measure string, target, actual int32) *enrolmentv1.TargetProgress {
	p := &enrolmentv1.TargetProgress{Measure: measure, Target: target, Actual: actual}
	if target > 0 {
		p.PercentOfTarget = float64(actual) / float64(target) * 100
	}
	return p
}

// readProjectEnrolments reads every enrolment of the project, as the
// project index lists them, with its snapshot and attendance: chunks of
// reportChunk names, each one pipelined round trip for their hashes.
func (s *Service) readProjectEnrolments(ctx context.Context, project string) (*reportData, error) {
	data := &reportData{
		participants: map[string]*firstEnrolment{},
		people:       map[string]bool{},
		states:       newTally(enumOrder(enrolmentv1.Enrolment_State(0).Descriptor())),
		results:      newTally(enumOrder(enrolmentv1.Enrolment_Result(0).Descriptor())),
	}
	index := enrolmentIndex.Key(Keyspace, "create_time", false, "project", project)
	after := ""
	for {
		members, err := s.st.Range(ctx, index, after, reportChunk)
		if err != nil {
			return nil, err
		}
		if len(members) == 0 {
			return data, nil
		}
		after = members[len(members)-1]
		keys := make([]string, 0, len(members))
		for _, m := range members {
			if o, id, err := parseEnrolmentName("", memberName(m)); err == nil {
				keys = append(keys, enrolmentKey(o, id))
			}
		}
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.MapStringStringCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.HGetAll(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, s.st.Err(ctx, err)
		}
		for i, c := range cmds {
			if err := s.countEnrolment(ctx, data, project, keys[i], c.Val()); err != nil {
				return nil, err
			}
		}
		if len(members) < reportChunk {
			return data, nil
		}
	}
}

// memberName is the resource name at the end of an index member.
func memberName(m string) string {
	if i := strings.LastIndexByte(m, '\x01'); i >= 0 {
		return m[i+1:]
	}
	return m
}

// countEnrolment adds one enrolment's stored fields to the report's data.
func (s *Service) countEnrolment(ctx context.Context, data *reportData, project, key string, fields map[string]string) error {
	pb, ok := fields["pb"]
	if !ok {
		return nil // gone since the index was read
	}
	e := newEnrolment()
	if err := s.unmarshal(ctx, key, []byte(pb), e); err != nil {
		return err
	}
	if e.GetProject() != project {
		return nil
	}
	data.people[e.GetParticipant()] = true
	data.states.add(e.GetState().String())
	st := e.GetState()
	if st == enrolmentv1.Enrolment_STATE_COMPLETED {
		data.results.add(e.GetResult().String())
	}
	if st != enrolmentv1.Enrolment_STATE_ENROLLED && st != enrolmentv1.Enrolment_STATE_COMPLETED {
		return nil
	}
	for f, v := range fields {
		if !strings.HasPrefix(f, attendancePrefix) {
			continue
		}
		a := &enrolmentv1.AttendanceRecord{}
		if err := s.unmarshal(ctx, key, []byte(v), a); err != nil {
			return err
		}
		data.recorded++
		if a.GetStatus() == enrolmentv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT {
			data.present++
		}
	}
	cur := data.participants[e.GetParticipant()]
	if cur != nil && !cur.before(e.GetCreateTime(), e.GetName()) {
		return nil
	}
	sn := &enrolmentv1.EnrolmentSnapshot{}
	if err := s.unmarshal(ctx, key, []byte(fields[fieldSnapshot]), sn); err != nil {
		return err
	}
	data.participants[e.GetParticipant()] = &firstEnrolment{created: e.GetCreateTime(), name: e.GetName(), snapshot: sn}
	return nil
}

// readProjectOutcomes tallies the outcomes recorded for the project of
// everyone with an enrolment in it, by timing.
func (s *Service) readProjectOutcomes(ctx context.Context, projectID string, people map[string]bool) (exit, six *tally, err error) {
	order := enumOrder(enrolmentv1.Outcome(0).Descriptor())
	exit, six = newTally(order), newTally(order)
	names := make([]string, 0, len(people))
	for p := range people {
		names = append(names, p)
	}
	fExit := reportOutcomeField(projectID, enrolmentv1.OutcomeTiming_OUTCOME_TIMING_EXIT)
	fSix := reportOutcomeField(projectID, enrolmentv1.OutcomeTiming_OUTCOME_TIMING_SIX_MONTHS)
	for chunk := range slices.Chunk(names, reportChunk) {
		keys := make([]string, 0, len(chunk))
		for _, n := range chunk {
			if id, err := parseParticipantName("", n); err == nil {
				keys = append(keys, reportOutcomeKey(id))
			}
		}
		rows, err := s.st.HashFields(ctx, keys, fExit, fSix)
		if err != nil {
			return nil, nil, err
		}
		for i, row := range rows {
			for j, t := range []*tally{exit, six} {
				if row[j] == "" {
					continue
				}
				o := &enrolmentv1.ParticipantOutcome{}
				if err := s.unmarshal(ctx, keys[i], []byte(row[j]), o); err != nil {
					return nil, nil, err
				}
				t.add(o.GetOutcome().String())
			}
		}
	}
	return exit, six, nil
}

// projectCallOffValue sums the values recorded on the project's offerings,
// each call-off once.
func (s *Service) projectCallOffValue(ctx context.Context, project string) (*money.Money, error) {
	index := offeringIndex.Key(Keyspace, "create_time", false, "project", project)
	seen := map[string]bool{}
	var total int64 // öre
	currency := "SEK"
	after := ""
	for {
		members, err := s.st.Range(ctx, index, after, reportChunk)
		if err != nil {
			return nil, err
		}
		if len(members) == 0 {
			break
		}
		after = members[len(members)-1]
		names := make([]string, len(members))
		for i, m := range members {
			names[i] = memberName(m)
		}
		offerings, err := s.loadOfferings(ctx, names)
		if err != nil {
			return nil, err
		}
		for _, o := range offerings {
			if o.GetProject() != project || seen[o.GetCallOff()] || o.GetCallOffValue() == nil {
				continue
			}
			seen[o.GetCallOff()] = true
			v := o.GetCallOffValue()
			currency = cmp.Or(v.GetCurrencyCode(), currency)
			total += v.GetUnits()*100 + int64(v.GetNanos())/10_000_000
		}
		if len(members) < reportChunk {
			break
		}
	}
	return oere(currency, total), nil
}

// oere is an amount of öre as Money.
func oere(currency string, n int64) *money.Money {
	return &money.Money{CurrencyCode: currency, Units: n / 100, Nanos: int32(n%100) * 10_000_000}
}

// perParticipant is value / n, rounded to the öre (halves away from zero).
func perParticipant(value *money.Money, n int32) *money.Money {
	total := value.GetUnits()*100 + int64(value.GetNanos())/10_000_000
	q, rem := total/int64(n), total%int64(n)
	if 2*rem >= int64(n) {
		q++
	}
	return oere(value.GetCurrencyCode(), q)
}
