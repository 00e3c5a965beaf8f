package enrolment_test

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/enrolment"
	"github.com/kompetensnav/kompetensnav/services/enrolment/pii"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The ways a project report can be kept, measured on 10⁵ participants
// (README "Project report" has the figures and the choice):
//
//   - BenchmarkProjectReport: facts, what the service does: the whole
//     GetProjectReport over gRPC through the guard, from the project's
//     facts hash (facts.go); and on demand, what it did before, in process
//     (the test-only projectReportOnDemand), reading the enrolments'
//     hashes; both on a private
//     redis-server holding one project with 10⁵ participants on 200
//     offerings (130 000 enrolments: every state, a tenth of the people
//     enrolled twice, a fifth with a withdrawn or waitlisted enrolment
//     beside their seat; three sessions of attendance each; outcomes at
//     exit for half, at six months for a quarter), loaded straight into
//     the stored form by a bulk pipeline;
//   - BenchmarkReportCounters: the alternative, prototyped far enough to
//     be measured: reading a per-project hash of counters (what the report
//     would cost then), and what keeping it would add to every enrolment's
//     atomic step (the same step with the counters' increments in it, a
//     lower bound: real counters must also decide, inside the step, whether
//     the enrolment is the participant's first in the project).
//
// -short loads 10⁴ participants.
func BenchmarkProjectReport(b *testing.B) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	e := newEnv(b, testkit.Redis(b), pii.Generate())
	project := mustProject(b, e, vastkraft("bench")).GetName()
	const offerings = 200
	for i := range offerings {
		mustOffering(b, e, svets(fmt.Sprintf("bench-%03d", i), project, 500), true)
	}
	start := time.Now()
	enrolments := loadReportData(b, e.rdb, project, offerings, n)
	b.Logf("loaded %d participants, %d enrolments in %v", n, enrolments, time.Since(start).Round(time.Millisecond))

	// The facts loaded are the facts of the data loaded: both ways give
	// the same report.
	req := &enrolmentv1.GetProjectReportRequest{Name: project}
	got, err := e.c.GetProjectReport(ctx, req)
	if err != nil {
		b.Fatal(err)
	}
	want, err := e.svc.ReportOnDemand(ctx, project)
	if err != nil {
		b.Fatal(err)
	}
	got.ComputeTime, want.ComputeTime = nil, nil
	if !proto.Equal(got, want) {
		b.Fatalf("facts\n%v\non demand\n%v", got, want)
	}

	b.Run(fmt.Sprintf("facts/participants=%d", n), func(b *testing.B) {
		cpu := startCPU(b, e.rdb)
		for b.Loop() {
			r, err := e.c.GetProjectReport(ctx, req)
			if err != nil || r.GetParticipants() != int32(n) {
				b.Fatal(r.GetParticipants(), err)
			}
		}
		cpu.report(b)
	})
	b.Run(fmt.Sprintf("on-demand/participants=%d", n), func(b *testing.B) {
		cpu := startCPU(b, e.rdb)
		for b.Loop() {
			r, err := e.svc.ReportOnDemand(ctx, project)
			if err != nil || r.GetParticipants() != int32(n) {
				b.Fatal(r.GetParticipants(), err)
			}
		}
		cpu.report(b)
	})
}

// BenchmarkCreateEnrolment: one CreateEnrolment over gRPC through the
// guard (a seat on an offering with room, each participant once), what
// every enrolment costs with its report facts row in the step (run it on
// a commit before the facts for the difference; README "Project report").
// Run with -benchtime=Nx, N ≤ 4 000.
func BenchmarkCreateEnrolment(b *testing.B) {
	e := newEnv(b, testkit.Redis(b), pii.Generate())
	project := mustProject(b, e, vastkraft("bench")).GetName()
	const people, seats = 4000, 500
	var os []string
	for i := range people / seats {
		os = append(os, mustOffering(b, e, svets(fmt.Sprintf("bench-%03d", i), project, seats), true).GetName())
	}
	ps := make([]string, people)
	for i := range people {
		ps[i] = mustParticipant(b, e, person(nthNumber(i))).GetName()
	}
	k := 0
	cpu := startCPU(b, e.rdb)
	for b.Loop() {
		if _, err := enrol(e, os[k/seats], ps[k]); err != nil {
			b.Fatal(err)
		}
		k++
	}
	cpu.report(b)
}

// cpuMeter measures the CPU time a benchmark takes in this process (the
// service, and the client calling it) and in redis-server: on a machine
// shared with other work the wall time says more about the neighbours,
// these do not.
type cpuMeter struct {
	rdb          redis.UniversalClient
	self, server time.Duration
}

func startCPU(b *testing.B, rdb redis.UniversalClient) *cpuMeter {
	m := &cpuMeter{rdb: rdb}
	m.self, m.server = processCPU(b), serverCPU(b, rdb)
	return m
}

func (m *cpuMeter) report(b *testing.B) {
	n := float64(b.N)
	b.ReportMetric(float64(processCPU(b)-m.self)/n/1e6, "service-cpu-ms/op")
	b.ReportMetric(float64(serverCPU(b, m.rdb)-m.server)/n/1e6, "redis-cpu-ms/op")
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU is redis-server's used_cpu_user + used_cpu_sys (INFO cpu).
func serverCPU(b *testing.B, rdb redis.UniversalClient) time.Duration {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_user" || k == "used_cpu_sys" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatal(err)
			}
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}

// loadReportData writes n participants' enrolments on the project's
// offerings (bench-000 …) as the service stores them: the enrolment's
// bytes, its snapshot and attendance in its hash, its index entries, and
// the participants' outcomes; and the project's report facts of them all.
// Pipelines of 1 000 enrolments.
func loadReportData(b testing.TB, rdb redis.UniversalClient, project string, offerings, n int) int {
	b.Helper()
	projectID := project[len("projects/"):]
	facts := enrolment.BenchFactsKey(projectID)
	created := start
	det := proto.MarshalOptions{Deterministic: true}
	mustBytes := func(m proto.Message) []byte {
		bs, err := det.Marshal(m)
		if err != nil {
			b.Fatal(err)
		}
		return bs
	}
	states := []enrolmentv1.Enrolment_State{benchEnrolled, benchEnrolled, benchEnrolled, benchEnrolled, benchEnrolled, benchEnrolled, benchEnrolled,
		enrolmentv1.Enrolment_STATE_COMPLETED, enrolmentv1.Enrolment_STATE_WITHDRAWN, enrolmentv1.Enrolment_STATE_WAITLISTED}
	pipe := rdb.Pipeline()
	count := 0
	flush := func() {
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	for i := range n {
		participantID := fmt.Sprintf("bench-%06d", i)
		// Every participant counts: a tenth are enrolled twice, and those
		// whose first enrolment is withdrawn or waitlisted have a second.
		for k := range 1 + btoi(i%10 == 0 || i%10 == 8 || i%10 == 9) {
			offering := fmt.Sprintf("bench-%03d", (i+k*7)%offerings)
			id := fmt.Sprintf("e%06d-%d", i, k)
			created = created.Add(time.Millisecond)
			state := benchEnrolled
			if k == 0 {
				state = states[i%len(states)]
				if i%10 == 0 {
					state = benchEnrolled // so that every participant counts
				}
			}
			en := &enrolmentv1.Enrolment{Name: "offerings/" + offering + "/enrolments/" + id, Participant: "participants/" + participantID,
				State: state, Project: project, CreateTime: timestamppb.New(created), UpdateTime: timestamppb.New(created),
				Etag: strconv.Itoa(i)}
			if state == enrolmentv1.Enrolment_STATE_COMPLETED {
				en.Result = enrolmentv1.Enrolment_Result(1 + i%3)
			}
			sn := &enrolmentv1.EnrolmentSnapshot{Participant: en.GetParticipant(), Project: project, Offering: "offerings/" + offering,
				EnrolDate: d(2026, 3, 2), Gender: enrolmentv1.Gender(1 + i%3), AgeBand: enrolmentv1.AgeBand(1 + i%4),
				LabourMarketStatus: enrolmentv1.LabourMarketStatus(1 + i%5), EducationLevel: enrolmentv1.EducationLevel(1 + i%3),
				Municipality: gr[i%len(gr)], EmployerCouncil: []string{"", "councils/fordon", "councils/teknik"}[i%3]}
			key := enrolment.BenchEnrolmentKey(offering, id)
			fields := []any{"pb", mustBytes(en), enrolment.BenchSnapshotField, mustBytes(sn)}
			var att []enrolmentv1.AttendanceStatus
			for s := range 3 {
				rec := &enrolmentv1.AttendanceRecord{Enrolment: en.GetName(), SessionDate: d(2026, 4, 13+s),
					Status: enrolmentv1.AttendanceStatus(1 + (i+s)%3), RecordTime: timestamppb.New(created)}
				fields = append(fields, fmt.Sprintf("att:2026-04-%02d", 13+s), mustBytes(rec))
				att = append(att, rec.GetStatus())
			}
			pipe.HSet(ctx, key, fields...)
			pipe.HSet(ctx, facts, enrolment.BenchEnrolmentFacts(en, sn, att)...)
			for _, ix := range enrolment.BenchEnrolmentIndex(en) {
				pipe.ZAdd(ctx, ix.Key, redis.Z{Member: ix.Member})
			}
			count++
		}
		for t, every := range map[enrolmentv1.OutcomeTiming]int{enrolmentv1.OutcomeTiming_OUTCOME_TIMING_EXIT: 2,
			enrolmentv1.OutcomeTiming_OUTCOME_TIMING_SIX_MONTHS: 4} {
			if i%every != 0 {
				continue
			}
			key, field := enrolment.BenchOutcome(participantID, projectID, t)
			pipe.HSet(ctx, key, field, mustBytes(&enrolmentv1.ParticipantOutcome{
				Name: "participants/" + participantID + "/outcomes/" + field, Project: project, Timing: t,
				Outcome: enrolmentv1.Outcome(1 + i%7), Date: d(2026, 5, 1)}))
			ff, fv := enrolment.BenchOutcomeFact(participantID, t, enrolmentv1.Outcome(1+i%7))
			pipe.HSet(ctx, facts, ff, fv)
		}
		if i%1000 == 999 {
			flush()
		}
	}
	flush()
	return count
}

const benchEnrolled = enrolmentv1.Enrolment_STATE_ENROLLED

func btoi(v bool) int {
	if v {
		return 1
	}
	return 0
}

// reportCounterFields is what a per-project hash of counters would hold:
// one field per (dimension, value) of the report, about 50.
func reportCounterFields() []string {
	var out []string
	add := func(dim string, values ...string) {
		for _, v := range values {
			out = append(out, dim+"="+v)
		}
	}
	add("gender", "GENDER_WOMAN", "GENDER_MAN", "GENDER_NON_BINARY")
	add("age_band", "<25", "25-29", "30-54", "55+")
	for s := 1; s <= 6; s++ {
		add("labour_market_status", enrolmentv1.LabourMarketStatus(s).String())
	}
	add("education_level", "EDUCATION_LEVEL_ISCED_0_2", "EDUCATION_LEVEL_ISCED_3_4", "EDUCATION_LEVEL_ISCED_5_8")
	add("municipality", gr...)
	add("employer_council", "none", "councils/fordon", "councils/teknik", "councils/handel", "councils/transport", "councils/besoksnaring")
	add("enrolment_state", "STATE_ENROLLED", "STATE_WAITLISTED", "STATE_WITHDRAWN", "STATE_COMPLETED")
	add("result", "RESULT_PASSED", "RESULT_FAILED", "RESULT_NOT_ASSESSED")
	for o := 1; o <= 7; o++ {
		add("outcome_exit", enrolmentv1.Outcome(o).String())
		add("outcome_six_months", enrolmentv1.Outcome(o).String())
	}
	add("participants", "", "women", "employed", "job_seekers")
	add("attendance", "recorded", "present")
	return out
}

func BenchmarkReportCounters(b *testing.B) {
	rdb := testkit.Redis(b)
	st := store.New(rdb, enrolment.Keyspace, slog.New(slog.DiscardHandler))
	facts := enrolment.Keyspace.Key("reportfacts", "bench")
	fields := reportCounterFields()
	for i, f := range fields {
		rdb.HSet(ctx, facts, f, 1000+i)
	}
	b.Run("read", func(b *testing.B) {
		cpu := startCPU(b, rdb)
		defer cpu.report(b)
		for b.Loop() {
			m, err := rdb.HGetAll(ctx, facts).Result()
			if err != nil || len(m) != len(fields) {
				b.Fatal(len(m), err)
			}
			for _, v := range m {
				if _, err := strconv.Atoi(v); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	// The enrolment's step without and with the counters: the stored
	// enrolment, its snapshot, its index entries and its event, as
	// CreateEnrolment writes them; then the participant added to the
	// project's set of people and the ten increments a first enrolment
	// brings (participants, the six participant dimensions, a target
	// group, the woman target, the enrolment state).
	seq := 0
	step := func(b *testing.B, counters bool) {
		seq++
		name := fmt.Sprintf("offerings/bench/enrolments/e%d", seq)
		en := &enrolmentv1.Enrolment{Name: name, Participant: fmt.Sprintf("participants/p%d", seq), State: benchEnrolled,
			Project: "projects/bench", CreateTime: timestamppb.New(start), UpdateTime: timestamppb.New(start)}
		sn, _ := proto.Marshal(&enrolmentv1.EnrolmentSnapshot{Participant: en.GetParticipant(), Project: en.GetProject(),
			Gender: woman, AgeBand: enrolmentv1.AgeBand_AGE_BAND_30_54, LabourMarketStatus: notified, EducationLevel: isced34,
			Municipality: "1480", EmployerCouncil: "councils/fordon"})
		key := enrolment.BenchEnrolmentKey("bench", fmt.Sprintf("e%d", seq))
		tx := st.Tx()
		tx.MustNotExist(key, nil)
		tx.HSet(key, enrolment.BenchSnapshotField, sn)
		if err := tx.Put(key, en); err != nil {
			b.Fatal(err)
		}
		tx.SetIndex(key, enrolment.BenchEnrolmentIndex(en))
		tx.Emit("enrolment.enrolled", name, en)
		if counters {
			tx.SAdd(enrolment.Keyspace.Key("reportpeople", "bench"), en.GetParticipant())
			for _, f := range []string{"participants=", "gender=GENDER_WOMAN", "age_band=30-54", "labour_market_status=LABOUR_MARKET_STATUS_NOTIFIED",
				"education_level=EDUCATION_LEVEL_ISCED_3_4", "municipality=1480", "employer_council=councils/fordon",
				"participants=employed", "participants=women", "enrolment_state=STATE_ENROLLED"} {
				tx.HIncrBy(facts, f, 1)
			}
		}
		if _, err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	for _, counters := range []bool{false, true} {
		b.Run(fmt.Sprintf("enrolment-step/counters=%v", counters), func(b *testing.B) {
			cpu := startCPU(b, rdb)
			for b.Loop() {
				step(b, counters)
			}
			cpu.report(b)
		})
	}
}
