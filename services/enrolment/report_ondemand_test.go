package enrolment

// The report as it was computed before the facts (facts.go): from the
// enrolments' own hashes and the participants' outcomes, read in chunks.
// Kept for the tests, which hold the facts-based report to it byte for
// byte (TestReportFactsMatchOnDemand), and for the benchmark's comparison.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"
)

// projectReportOnDemand is GetProjectReport computed from the stored
// enrolments, snapshots, attendance and outcomes.
func (s *Service) projectReportOnDemand(ctx context.Context, req *enrolmentv1.GetProjectReportRequest) (*enrolmentv1.ProjectReport, error) {
	projectID, err := parseProjectName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	project, err := s.loadProject(ctx, projectID)
	if err != nil {
		return nil, err
	}
	value, sessions, err := s.reportOfferings(ctx, project.GetName())
	if err != nil {
		return nil, err
	}
	data, err := s.readProjectEnrolments(ctx, project.GetName(), sessions)
	if err != nil {
		return nil, err
	}
	exit, six, err := s.readProjectOutcomes(ctx, projectID, data.people)
	if err != nil {
		return nil, err
	}
	return s.buildReport(project, value, data, exit, six), nil
}

// reportReaders is how many chunks of a report are read at once: while
// one pipeline waits for Redis, another's replies are decoded.
const reportReaders = 4

// merge adds what another reader counted.
func (d *reportData) merge(o *reportData) {
	for p, f := range o.people {
		if cur := d.people[p]; cur == nil || (f != nil && f.before(cur.created, cur.name)) {
			d.people[p] = f
		}
	}
	for v, n := range o.states.counts {
		d.states.counts[v] += n
	}
	for v, n := range o.results.counts {
		d.results.counts[v] += n
	}
	d.recorded += o.recorded
	d.present += o.present
}

// readProjectEnrolments reads every enrolment of the project, as the
// project index lists them, with its snapshot and attendance: chunks of
// reportChunk names, each one pipelined round trip for their hashes,
// reportReaders of them at a time.
func (s *Service) readProjectEnrolments(ctx context.Context, project string, sessions map[string][]string) (*reportData, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	chunks := make(chan []enrolmentRef)
	parts := make([]*reportData, reportReaders)
	var wg sync.WaitGroup
	for w := range parts {
		parts[w] = newReportData()
		wg.Go(func() {
			for keys := range chunks {
				if err := s.readEnrolmentChunk(ctx, parts[w], project, sessions, keys); err != nil {
					cancel(err)
				}
			}
		})
	}
	index := enrolmentIndex.Key(Keyspace, "create_time", false, "project", project)
	err := func() error {
		defer close(chunks)
		after := ""
		for {
			members, err := s.st.Range(ctx, index, after, reportChunk)
			if err != nil || len(members) == 0 {
				return err
			}
			after = members[len(members)-1]
			keys := make([]enrolmentRef, 0, len(members))
			for _, m := range members {
				// Members are names the service wrote: cut, not matched
				// against the name's pattern (a tenth of the time).
				rest, ok := strings.CutPrefix(memberName(m), "offerings/")
				o, id, found := strings.Cut(rest, "/enrolments/")
				if ok && found {
					keys = append(keys, enrolmentRef{key: enrolmentKey(o, id), offering: o})
				}
			}
			select {
			case chunks <- keys:
			case <-ctx.Done():
				return nil
			}
			if len(members) < reportChunk {
				return nil
			}
		}
	}()
	wg.Wait()
	if err == nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		return nil, err
	}
	data := parts[0]
	for _, p := range parts[1:] {
		data.merge(p)
	}
	return data, nil
}

// enrolmentRef is an enrolment's hash and the id of its offering.
type enrolmentRef struct{ key, offering string }

// readEnrolmentChunk reads the enrolments of refs (one pipelined round
// trip): each one's bytes, snapshot and the attendance of its offering's
// sessions, by name (the hash also holds the enrolment's index
// memberships, which the report has no use for), and counts them into
// data.
func (s *Service) readEnrolmentChunk(ctx context.Context, data *reportData, project string, sessions map[string][]string, refs []enrolmentRef) error {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(refs))
	for i, r := range refs {
		cmds[i] = pipe.HMGet(ctx, r.key, append([]string{"pb", fieldSnapshot}, sessions[r.offering]...)...)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return s.st.Err(ctx, err)
	}
	for i, c := range cmds {
		if err := s.countEnrolment(ctx, data, project, refs[i].key, c.Val()); err != nil {
			return err
		}
	}
	return nil
}

// countEnrolment adds one enrolment's stored fields to the report's
// data: vals are its bytes, its snapshot, and its attendance records.
func (s *Service) countEnrolment(ctx context.Context, data *reportData, project, key string, vals []any) error {
	pb, ok := vals[0].(string)
	if !ok {
		return nil // gone since the index was read
	}
	e, err := decodeReportEnrolment(bytesOf(pb))
	if err != nil {
		return s.dataLoss(ctx, key, err)
	}
	if string(e.project) != project {
		return nil
	}
	cur, seen := data.people[string(e.participant)]
	if !seen {
		data.people[string(e.participant)] = nil
	}
	data.states.add(enumName(enrolmentv1.Enrolment_State_name, int32(e.state)))
	if e.state == enrolmentv1.Enrolment_STATE_COMPLETED {
		data.results.add(enumName(enrolmentv1.Enrolment_Result_name, int32(e.result)))
	}
	if e.state != enrolmentv1.Enrolment_STATE_ENROLLED && e.state != enrolmentv1.Enrolment_STATE_COMPLETED {
		return nil
	}
	for _, v := range vals[2:] {
		rec, ok := v.(string)
		if !ok {
			continue // not recorded
		}
		present, err := attendedPresent(bytesOf(rec))
		if err != nil {
			return s.dataLoss(ctx, key, err)
		}
		data.recorded++
		if present {
			data.present++
		}
	}
	if cur != nil && !cur.before(e.created, string(e.name)) {
		return nil
	}
	snapshot, _ := vals[1].(string)
	sn, err := decodeReportSnapshot(bytesOf(snapshot))
	if err != nil {
		return s.dataLoss(ctx, key, err)
	}
	data.people[string(e.participant)] = &firstEnrolment{created: e.created, name: string(e.name), snapshot: sn}
	return nil
}

// readProjectOutcomes tallies the outcomes recorded for the project of
// everyone with an enrolment in it, by timing: chunks of reportChunk
// participants, one pipelined round trip each, reportReaders at a time.
func (s *Service) readProjectOutcomes(ctx context.Context, projectID string, people map[string]*firstEnrolment) (exit, six *tally, err error) {
	order := enumOrder(enrolmentv1.Outcome(0).Descriptor())
	names := make([]string, 0, len(people))
	for p := range people {
		names = append(names, p)
	}
	fields := []string{outcomeField(projectID, enrolmentv1.OutcomeTiming_OUTCOME_TIMING_EXIT),
		outcomeField(projectID, enrolmentv1.OutcomeTiming_OUTCOME_TIMING_SIX_MONTHS)}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	chunks := make(chan []string)
	tallies := make([][2]*tally, reportReaders)
	var wg sync.WaitGroup
	for w := range tallies {
		tallies[w] = [2]*tally{newTally(order), newTally(order)}
		wg.Go(func() {
			for chunk := range chunks {
				if err := s.countOutcomes(ctx, tallies[w], chunk, fields); err != nil {
					cancel(err)
				}
			}
		})
	}
	for chunk := range slices.Chunk(names, reportChunk) {
		select {
		case chunks <- chunk:
		case <-ctx.Done():
		}
	}
	close(chunks)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, nil, err
	}
	exit, six = tallies[0][0], tallies[0][1]
	for _, t := range tallies[1:] {
		for j, into := range []*tally{exit, six} {
			for v, n := range t[j].counts {
				into.counts[v] += n
			}
		}
	}
	return exit, six, nil
}

// countOutcomes reads the participants' outcome fields (one pipelined
// round trip) and tallies them by timing.
func (s *Service) countOutcomes(ctx context.Context, into [2]*tally, participants, fields []string) error {
	keys := make([]string, 0, len(participants))
	for _, n := range participants {
		if id, ok := strings.CutPrefix(n, "participants/"); ok {
			keys = append(keys, outcomeKey(id))
		}
	}
	rows, err := s.st.HashFields(ctx, keys, fields...)
	if err != nil {
		return err
	}
	const outcomeField = 4 // ParticipantOutcome.outcome
	for i, row := range rows {
		for j, b := range row {
			if b == "" {
				continue
			}
			o := enrolmentv1.Outcome_OUTCOME_UNSPECIFIED
			if err := eachField(bytesOf(b), func(num protowire.Number, v uint64, _ []byte) error {
				if num == outcomeField {
					o = enrolmentv1.Outcome(v)
				}
				return nil
			}); err != nil {
				return s.dataLoss(ctx, keys[i], err)
			}
			into[j].add(enumName(enrolmentv1.Outcome_name, int32(o)))
		}
	}
	return nil
}
