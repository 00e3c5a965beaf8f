package enrolment

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The project report is computed from the project's facts hash
// (facts.go): a short copy of what it counts of every enrolment and
// outcome, written in the same atomic step as the data it copies, and
// counted here with the same rules as when it was computed from the
// enrolments themselves (distinct people by their FIRST enrolment,
// attendance of the enrolled and completed, outcomes of those with an
// enrolment in the project). Measured on 10⁵ participants
// (report_bench_test.go, README "Project report"): 0.41–0.45 s per
// report, 0.27–0.33 s of service and 0.17 s of Redis CPU, where reading the enrolments
// took ~1.6 s of CPU and counters, which read in under a millisecond,
// would have put the report's rules into every write path. The tests hold
// it to the on-demand computation (report_ondemand_test.go) byte for byte.

// reportChunk is how many offerings one read of the report takes (and
// enrolments or participants, one pipelined read of the on-demand report
// in the tests): big enough that round trips do not dominate, small
// enough that no single reply holds Redis up.
const reportChunk = 2000

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
	created  int64 // Unix nanoseconds
	name     string
	snapshot reportSnapshot
}

func (f *firstEnrolment) before(created int64, name string) bool {
	if created != f.created {
		return created < f.created
	}
	return name < f.name
}

// reportData is what a report is computed from.
type reportData struct {
	// Everyone with an enrolment in the project, by participant name,
	// with the enrolment they are counted with (nil: none counts).
	people   map[string]*firstEnrolment
	states   *tally
	results  *tally
	recorded int32
	present  int32
}

func newReportData() *reportData {
	return &reportData{
		people:  map[string]*firstEnrolment{},
		states:  newTally(enumOrder(enrolmentv1.Enrolment_State(0).Descriptor())),
		results: newTally(enumOrder(enrolmentv1.Enrolment_Result(0).Descriptor())),
	}
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
	value, _, err := s.reportOfferings(ctx, project.GetName())
	if err != nil {
		return nil, err
	}
	data, outcomes, err := s.readFacts(ctx, projectID)
	if err != nil {
		return nil, err
	}
	return s.buildReport(project, value, data, outcomes[0], outcomes[1]), nil
}

// buildReport is the report of what was counted of the project.
func (s *Service) buildReport(project *enrolmentv1.Project, value *money.Money, data *reportData, exit, six *tally) *enrolmentv1.ProjectReport {
	gender := newTally(enumOrder(enrolmentv1.Gender(0).Descriptor()))
	age := newTally(ageBandOrder)
	statuses := newTally(enumOrder(enrolmentv1.LabourMarketStatus(0).Descriptor()))
	education := newTally(enumOrder(enrolmentv1.EducationLevel(0).Descriptor()))
	municipality := newTally(nil)
	council := newTally(nil)
	var women, employed, jobSeekers int32
	n := int32(0)
	for _, f := range data.people {
		if f == nil {
			continue
		}
		n++
		sn := f.snapshot
		gender.add(enumName(enrolmentv1.Gender_name, int32(sn.gender)))
		age.add(ageBandLabel(sn.ageBand))
		statuses.add(enumName(enrolmentv1.LabourMarketStatus_name, int32(sn.status)))
		education.add(enumName(enrolmentv1.EducationLevel_name, int32(sn.education)))
		municipality.add(sn.municipality)
		council.add(cmp.Or(sn.council, noCouncil))
		if sn.gender == enrolmentv1.Gender_GENDER_WOMAN {
			women++
		}
		if countsAsEmployed(sn.status) {
			employed++
		}
		if countsAsJobSeeker(sn.status) {
			jobSeekers++
		}
	}
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
			statuses.breakdown(dimStatus, nil),
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
	return r
}

func progress(measure string, target, actual int32) *enrolmentv1.TargetProgress {
	p := &enrolmentv1.TargetProgress{Measure: measure, Target: target, Actual: actual}
	if target > 0 {
		p.PercentOfTarget = float64(actual) / float64(target) * 100
	}
	return p
}

// memberName is the resource name at the end of an index member.
func memberName(m string) string {
	if i := strings.LastIndexByte(m, '\x01'); i >= 0 {
		return m[i+1:]
	}
	return m
}

// enumName is the name of an enum's value v, from its generated names.
func enumName(names map[int32]string, v int32) string {
	if n, ok := names[v]; ok {
		return n
	}
	return strconv.Itoa(int(v))
}

// bytesOf is s's bytes without a copy, for the decoders below, which only
// read them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// reportSnapshot is what the report reads of an EnrolmentSnapshot.
type reportSnapshot struct {
	gender                enrolmentv1.Gender
	ageBand               enrolmentv1.AgeBand
	status                enrolmentv1.LabourMarketStatus
	education             enrolmentv1.EducationLevel
	municipality, council string
}

// decodeReportSnapshot reads those fields of a stored EnrolmentSnapshot
// (as decodeReportEnrolment, for speed).
func decodeReportSnapshot(b []byte) (reportSnapshot, error) {
	var sn reportSnapshot
	err := eachField(b, func(num protowire.Number, v uint64, bs []byte) error {
		switch num {
		case 5:
			sn.gender = enrolmentv1.Gender(v)
		case 6:
			sn.ageBand = enrolmentv1.AgeBand(v)
		case 7:
			sn.status = enrolmentv1.LabourMarketStatus(v)
		case 8:
			sn.education = enrolmentv1.EducationLevel(v)
		case 9:
			sn.municipality = string(bs)
		case 10:
			sn.council = string(bs)
		}
		return nil
	})
	return sn, err
}

func (s *Service) dataLoss(ctx context.Context, key string, err error) error {
	s.log.ErrorContext(ctx, "stored resource does not decode", "key", key, "error", err)
	return status.Error(codes.DataLoss, "a stored resource could not be read")
}

// reportEnrolment is what the report reads of an enrolment.
type reportEnrolment struct {
	name, participant, project []byte // in the decoded bytes
	state                      enrolmentv1.Enrolment_State
	result                     enrolmentv1.Enrolment_Result
	created                    int64 // Unix nanoseconds
}

// decodeReportEnrolment reads those fields of a stored Enrolment, and
// skips the others, with protowire rather than proto.Unmarshal: a report
// reads every enrolment of the project, and decoding them whole was half
// its time. (TestDecodeReportEnrolment holds it to proto.Unmarshal.)
func decodeReportEnrolment(b []byte) (reportEnrolment, error) {
	var e reportEnrolment
	err := eachField(b, func(num protowire.Number, v uint64, bs []byte) error {
		switch num {
		case 1:
			e.name = bs
		case 2:
			e.participant = bs
		case 3:
			e.state = enrolmentv1.Enrolment_State(v)
		case 5:
			e.project = bs
		case 6:
			var sec, nanos int64
			if err := eachField(bs, func(num protowire.Number, v uint64, _ []byte) error {
				switch num {
				case 1:
					sec = int64(v)
				case 2:
					nanos = int64(int32(v))
				}
				return nil
			}); err != nil {
				return err
			}
			e.created = sec*1e9 + nanos
		case 12:
			e.result = enrolmentv1.Enrolment_Result(v)
		}
		return nil
	})
	return e, err
}

// eachField calls f with every field of the message in b: its number
// and, as its wire type has it, its varint value or its bytes (fixed-size
// fields are skipped).
func eachField(b []byte, f func(num protowire.Number, v uint64, bs []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			if err := f(num, v, nil); err != nil {
				return err
			}
			b = b[m:]
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			if err := f(num, 0, v); err != nil {
				return err
			}
			b = b[m:]
		default:
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			b = b[m:]
		}
	}
	return nil
}

// attendedPresent says whether a stored AttendanceRecord is PRESENT,
// reading its status field only (as decodeReportEnrolment, for speed).
func attendedPresent(b []byte) (bool, error) {
	const statusField = 3 // AttendanceRecord.status
	st := enrolmentv1.AttendanceStatus_ATTENDANCE_STATUS_UNSPECIFIED
	err := eachField(b, func(num protowire.Number, v uint64, _ []byte) error {
		if num == statusField {
			st = enrolmentv1.AttendanceStatus(v)
		}
		return nil
	})
	return st == enrolmentv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT, err
}

// reportOfferings reads the project's offerings: the sum of the values
// recorded on them, each call-off once, and each one's attendance fields
// (attendanceField of each session's date) by offering id.
func (s *Service) reportOfferings(ctx context.Context, project string) (*money.Money, map[string][]string, error) {
	index := offeringIndex.Key(Keyspace, "create_time", false, "project", project)
	seen := map[string]bool{}
	sessions := map[string][]string{}
	var total int64 // öre
	currency := "SEK"
	after := ""
	for {
		members, err := s.st.Range(ctx, index, after, reportChunk)
		if err != nil {
			return nil, nil, err
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
			return nil, nil, err
		}
		for _, o := range offerings {
			if o.GetProject() != project {
				continue
			}
			id, _ := parseOfferingName("", o.GetName())
			for _, ses := range o.GetSessions() {
				sessions[id] = append(sessions[id], attendanceField(ses.GetDate()))
			}
			if seen[o.GetCallOff()] || o.GetCallOffValue() == nil {
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
	return oere(currency, total), sessions, nil
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
