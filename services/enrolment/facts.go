package enrolment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
)

// The project report is computed from a per-project facts hash rather than
// from the enrolments themselves: reading every enrolment's hash (its
// bytes, snapshot and attendance) took ~1.6 s of CPU at 10⁵ participants,
// reading one hash of short rows takes a small fraction of it (README
// "Project report"). The facts are not counters: each is a copy of the
// fields the report counts of one enrolment or outcome, written in the same
// atomic step as the data it copies, so the report still counts (distinct
// people by their first enrolment, attendance of the enrolled) in Go at
// read time, and no write path has to know what the others mean. Fields:
//
//	e:<offering>/<enrolment>  e|<offering>/<enrolment>|participant|created|state|result|gender|age band|status|education|municipality|council
//	a:<offering>/<enrolment>  a|<offering>/<enrolment>|one byte per session of the offering, in order: '-' not recorded, 'P' present, 'o' absent or excused
//	x:<participant>           x|<participant>|the exit outcome (its enum number)
//	s:<participant>           s|<participant>|the six-month outcome
//
// Each value repeats its field's name, so that the report reads the values
// alone (HVALS: half the strings of HGETALL, and no map to build).
//
// e: is written wherever an enrolment is (CreateEnrolment in both
// branches, withdrawal, promotion, completion), conditioned on the
// enrolment's etag as the enrolment is; a: by recordAttendance, which does
// not change the etag, so it is a compare-and-set on the field (FieldIs);
// x: and s: with the outcome, under the participant's outcome version.
// Erasure changes none of them (they hold nothing that identifies a
// person). Data written before the facts existed is copied in by the
// "reportfacts" migration.
func factsKey(projectID string) string { return Keyspace.Key("reportfacts", projectID) }

const (
	factEnrolment  = "e:"
	factAttendance = "a:"
	factExit       = "x:"
	factSixMonths  = "s:"
)

func enrolmentFactField(offeringID, id string) string  { return factEnrolment + offeringID + "/" + id }
func attendanceFactField(offeringID, id string) string { return factAttendance + offeringID + "/" + id }

// outcomeFact is the field and value of a participant's outcome.
func outcomeFact(participantID string, timing enrolmentv1.OutcomeTiming, o enrolmentv1.Outcome) (field, value string) {
	kind := factExit
	if timing == sixMonths {
		kind = factSixMonths
	}
	return kind + participantID, kind[:1] + "|" + participantID + "|" + strconv.Itoa(int(o))
}

// enrolmentFacts is the e: row of an enrolment with its snapshot.
func enrolmentFacts(e *enrolmentv1.Enrolment, sn reportSnapshot) string {
	var b strings.Builder
	rest, _ := strings.CutPrefix(e.GetName(), "offerings/")
	b.WriteString("e|")
	b.WriteString(strings.Replace(rest, "/enrolments/", "/", 1))
	b.WriteByte('|')
	pid, _ := strings.CutPrefix(e.GetParticipant(), "participants/")
	b.WriteString(pid)
	for _, v := range []int64{e.GetCreateTime().AsTime().UnixNano(), int64(e.GetState()), int64(e.GetResult()),
		int64(sn.gender), int64(sn.ageBand), int64(sn.status), int64(sn.education)} {
		b.WriteByte('|')
		b.WriteString(strconv.FormatInt(v, 10))
	}
	b.WriteByte('|')
	b.WriteString(sn.municipality)
	b.WriteByte('|')
	b.WriteString(sn.council)
	return b.String()
}

// snapshotOf is what the report reads of an EnrolmentSnapshot.
func snapshotOf(sn *enrolmentv1.EnrolmentSnapshot) reportSnapshot {
	return reportSnapshot{gender: sn.GetGender(), ageBand: sn.GetAgeBand(), status: sn.GetLabourMarketStatus(),
		education: sn.GetEducationLevel(), municipality: sn.GetMunicipality(), council: sn.GetEmployerCouncil()}
}

// putEnrolmentFacts adds to tx the e: row of e, whose stored snapshot is
// snapshot (the bytes of its hash's snapshot field).
func putEnrolmentFacts(tx *store.Tx, e *enrolmentv1.Enrolment, snapshot []byte) error {
	sn, err := decodeReportSnapshot(snapshot)
	if err != nil {
		return err
	}
	o, id, err := parseEnrolmentName("", e.GetName())
	if err != nil {
		return err
	}
	projectID, err := parseProjectName("", e.GetProject())
	if err != nil {
		return err
	}
	tx.HSet(factsKey(projectID), enrolmentFactField(o, id), enrolmentFacts(e, sn))
	return nil
}

// attendanceMark is a session's byte in an a: row.
func attendanceMark(st enrolmentv1.AttendanceStatus) byte {
	if st == attended {
		return 'P'
	}
	return 'o'
}

// withAttendance is the a: row cur (as read; "" for none) of the
// enrolment id ("<offering>/<enrolment>") of an offering of n sessions,
// with session i marked as st.
func withAttendance(cur, id string, n, i int, st enrolmentv1.AttendanceStatus) string {
	prefix := "a|" + id + "|"
	row := []byte(strings.TrimPrefix(cur, prefix))
	if len(row) != n {
		old := row
		row = []byte(strings.Repeat("-", n))
		copy(row, old)
	}
	row[i] = attendanceMark(st)
	return prefix + string(row)
}

// parsedFacts is an e: row, read.
type parsedFacts struct {
	id          string // "<offering>/<enrolment>"
	participant string // the id
	created     int64
	state       enrolmentv1.Enrolment_State
	result      enrolmentv1.Enrolment_Result
	snapshot    reportSnapshot
}

// parseEnrolmentFacts reads an e: value (after its "e|").
func parseEnrolmentFacts(v string) (parsedFacts, error) {
	var f parsedFacts
	var parts [11]string
	n := 0
	for n < len(parts)-1 {
		i := strings.IndexByte(v, '|')
		if i < 0 {
			break
		}
		parts[n], v = v[:i], v[i+1:]
		n++
	}
	parts[n] = v
	if n != len(parts)-1 {
		return f, fmt.Errorf("a report fact has %d fields, want %d", n+1, len(parts))
	}
	var nums [7]int64
	for i := range nums {
		x, err := strconv.ParseInt(parts[i+2], 10, 64)
		if err != nil {
			return f, fmt.Errorf("a report fact: %w", err)
		}
		nums[i] = x
	}
	f.id, f.participant, f.created = parts[0], parts[1], nums[0]
	f.state, f.result = enrolmentv1.Enrolment_State(nums[1]), enrolmentv1.Enrolment_Result(nums[2])
	f.snapshot = reportSnapshot{gender: enrolmentv1.Gender(nums[3]), ageBand: enrolmentv1.AgeBand(nums[4]),
		status: enrolmentv1.LabourMarketStatus(nums[5]), education: enrolmentv1.EducationLevel(nums[6]),
		municipality: parts[9], council: parts[10]}
	return f, nil
}

// factsGetAll is the most fields read with one HGETALL: up to it (10⁵
// participants are ~330 000 fields, ~120 ms of Redis CPU) the facts are
// read in one command; beyond, with HSCAN in chunks of factsChunk, which
// costs Redis about three times as much per field but never holds it up
// for longer than a chunk.
//
// (Variables for the tests, which read small projects both ways.)
var factsGetAll, factsChunk = atomicInt(400_000), atomicInt(20_000)

func atomicInt(n int64) *atomic.Int64 {
	var v atomic.Int64
	v.Store(n)
	return &v
}

// readFacts counts a project's facts into the report's data: the
// enrolments' rows, the attendance of those ENROLLED or COMPLETED, and the
// outcomes of everyone with an enrolment in the project.
func (s *Service) readFacts(ctx context.Context, projectID string) (*reportData, [2]*tally, error) {
	key := factsKey(projectID)
	order := enumOrder(enrolmentv1.Outcome(0).Descriptor())
	outcomes := [2]*tally{newTally(order), newTally(order)}
	size, err := s.rdb.HLen(ctx, key).Result()
	if err != nil {
		return nil, outcomes, s.st.Err(ctx, err)
	}
	var vals []string
	if size <= factsGetAll.Load() {
		if vals, err = s.rdb.HVals(ctx, key).Result(); err != nil {
			return nil, outcomes, s.st.Err(ctx, err)
		}
	} else {
		// HSCAN may return a field more than once (when the hash grows
		// meanwhile): kept by field, each counts once.
		all := make(map[string]string, size)
		var cursor uint64
		for {
			kv, next, err := s.rdb.HScan(ctx, key, cursor, "", factsChunk.Load()).Result()
			if err != nil {
				return nil, outcomes, s.st.Err(ctx, err)
			}
			for i := 0; i+1 < len(kv); i += 2 {
				all[kv[i]] = kv[i+1]
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
		vals = make([]string, 0, len(all))
		for _, v := range all {
			vals = append(vals, v)
		}
	}
	type outcomeRow struct{ participant, value string }
	var outs [2][]outcomeRow
	rows := make([]parsedFacts, 0, len(vals)/2)
	attendance := make(map[string]string, len(vals)/2)
	for _, v := range vals {
		if len(v) < 2 || v[1] != '|' {
			return nil, outcomes, s.dataLoss(ctx, key, errors.New("a report fact without its kind"))
		}
		kind, rest := v[0], v[2:]
		switch kind {
		case 'e':
			f, err := parseEnrolmentFacts(rest)
			if err != nil {
				return nil, outcomes, s.dataLoss(ctx, key, err)
			}
			rows = append(rows, f)
		case 'a', 'x', 's':
			i := strings.LastIndexByte(rest, '|')
			if i < 0 {
				return nil, outcomes, s.dataLoss(ctx, key, errors.New("a report fact without its value"))
			}
			switch kind {
			case 'a':
				attendance[rest[:i]] = rest[i+1:]
			case 'x':
				outs[0] = append(outs[0], outcomeRow{rest[:i], rest[i+1:]})
			default:
				outs[1] = append(outs[1], outcomeRow{rest[:i], rest[i+1:]})
			}
		}
	}
	data := newReportData()
	// By participant id; the first enrolment is compared by
	// "<offering>/<enrolment>", which orders as the names do (they only
	// add the same words around it).
	people := make(map[string]*firstEnrolment, len(rows))
	states := make([]int32, len(enrolmentv1.Enrolment_State_name))
	results := make([]int32, len(enrolmentv1.Enrolment_Result_name))
	for i := range rows {
		f := &rows[i]
		cur, seen := people[f.participant]
		if !seen {
			people[f.participant] = nil
		}
		if f.state >= 0 && int(f.state) < len(states) {
			states[f.state]++
		} else {
			data.states.add(enumName(enrolmentv1.Enrolment_State_name, int32(f.state)))
		}
		if f.state == completed {
			if f.result >= 0 && int(f.result) < len(results) {
				results[f.result]++
			} else {
				data.results.add(enumName(enrolmentv1.Enrolment_Result_name, int32(f.result)))
			}
		}
		if f.state != enrolled && f.state != completed {
			continue
		}
		if row := attendance[f.id]; row != "" {
			for i := range len(row) {
				switch row[i] {
				case 'P':
					data.recorded++
					data.present++
				case 'o':
					data.recorded++
				}
			}
		}
		if cur != nil && !cur.before(f.created, f.id) {
			continue
		}
		if cur == nil {
			cur = &firstEnrolment{}
			people[f.participant] = cur
		}
		*cur = firstEnrolment{created: f.created, name: f.id, snapshot: f.snapshot}
	}
	for st, n := range states {
		if n > 0 {
			data.states.counts[enumName(enrolmentv1.Enrolment_State_name, int32(st))] += n
		}
	}
	for r, n := range results {
		if n > 0 {
			data.results.counts[enumName(enrolmentv1.Enrolment_Result_name, int32(r))] += n
		}
	}
	data.people = people
	for j, rows := range outs {
		var byOutcome [16]int32
		for _, r := range rows {
			if _, ok := people[r.participant]; !ok {
				continue
			}
			if o := outcomeOf(r.value); o >= 0 && int(o) < len(byOutcome) {
				byOutcome[o]++
			} else {
				outcomes[j].add(enumName(enrolmentv1.Outcome_name, int32(o)))
			}
		}
		for o, n := range byOutcome {
			if n > 0 {
				outcomes[j].counts[enumName(enrolmentv1.Outcome_name, int32(o))] += n
			}
		}
	}
	return data, outcomes, nil
}

func outcomeOf(v string) enrolmentv1.Outcome {
	n, _ := strconv.Atoi(v)
	return enrolmentv1.Outcome(n)
}

// factsVersion is the version of the facts' layout; raising it copies
// every enrolment and outcome into the facts again at the next start.
const factsVersion = 1

// backfillFacts writes the facts of every stored enrolment and outcome:
// for data written before the facts existed. Each enrolment's rows are one
// atomic step conditioned on its etag (and its attendance row on the row
// as read), so a write landing meanwhile makes it read again.
func (s *Service) backfillFacts(ctx context.Context, log *slog.Logger) error {
	sessions := map[string][]string{} // offering id → its sessions' attendance fields
	n, err := s.rebuild(ctx, log, "report facts of enrolments", Keyspace.Key("enrolment", "*"), func(ctx context.Context, tx *store.Tx, key string) error {
		fields, err := s.rdb.HGetAll(ctx, key).Result()
		if err != nil {
			return s.st.Err(ctx, err)
		}
		pb, ok := fields["pb"]
		if !ok {
			return store.ErrNotFound
		}
		e := newEnrolment()
		if err := s.unmarshal(ctx, key, []byte(pb), e); err != nil {
			return err
		}
		tx.EtagIs(key, e.GetEtag(), nil)
		if err := putEnrolmentFacts(tx, e, []byte(fields[fieldSnapshot])); err != nil {
			return s.dataLoss(ctx, key, err)
		}
		o, id, _ := parseEnrolmentName("", e.GetName())
		ses, ok := sessions[o]
		if !ok {
			off := newOffering()
			if err := s.st.Get(ctx, offeringKey(o), off); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			for _, x := range off.GetSessions() {
				ses = append(ses, attendanceField(x.GetDate()))
			}
			sessions[o] = ses
		}
		projectID, _ := parseProjectName("", e.GetProject())
		row := ""
		for i, f := range ses {
			if rec, ok := fields[f]; ok {
				present, err := attendedPresent([]byte(rec))
				if err != nil {
					return s.dataLoss(ctx, key, err)
				}
				st := enrolmentv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT
				if present {
					st = attended
				}
				row = withAttendance(row, o+"/"+id, len(ses), i, st)
			}
		}
		if row != "" {
			field := attendanceFactField(o, id)
			cur, err := s.rdb.HGet(ctx, factsKey(projectID), field).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return s.st.Err(ctx, err)
			}
			tx.FieldIs(factsKey(projectID), field, cur, nil)
			tx.HSet(factsKey(projectID), field, row)
		}
		return nil
	})
	if err != nil {
		return err
	}
	log.InfoContext(ctx, "report facts written", "of", "enrolments", "count", n)
	n, err = s.rebuild(ctx, log, "report facts of outcomes", Keyspace.Key("outcome", "*"), func(ctx context.Context, tx *store.Tx, key string) error {
		participantID := strings.TrimPrefix(key, Keyspace.Key("outcome", ""))
		pipe := s.rdb.Pipeline()
		all := pipe.HGetAll(ctx, key)
		ver := pipe.HGet(ctx, outcomeVersionKey(participantID), "etag")
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return s.st.Err(ctx, err)
		}
		if v, err := ver.Result(); err == nil {
			tx.EtagIs(outcomeVersionKey(participantID), v, nil)
		} else {
			tx.MustNotExist(outcomeVersionKey(participantID), store.ErrConflict)
		}
		for _, b := range all.Val() {
			out := &enrolmentv1.ParticipantOutcome{}
			if err := s.unmarshal(ctx, key, []byte(b), out); err != nil {
				return err
			}
			projectID, err := parseProjectName("", out.GetProject())
			if err != nil {
				return s.dataLoss(ctx, key, err)
			}
			field, value := outcomeFact(participantID, out.GetTiming(), out.GetOutcome())
			tx.HSet(factsKey(projectID), field, value)
		}
		return nil
	})
	if err != nil {
		return err
	}
	log.InfoContext(ctx, "report facts written", "of", "outcomes", "count", n)
	return nil
}
