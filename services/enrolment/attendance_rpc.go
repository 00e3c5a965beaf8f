package enrolment

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Attendance lives in the enrolment's own hash, one field per session
// (attendanceField: "att:YYYY-MM-DD" → AttendanceRecord bytes), so that it
// is written in the same atomic step as anything else about the enrolment
// and a withdrawal or completion racing with it is decided by the
// enrolment's etag. Writing a field does not change the etag: records of
// different sessions never conflict with each other, and recording the
// same session twice at once leaves one record (the field).
const attendancePrefix = "att:"

const (
	attended = enrolmentv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT
)

func attendanceField(d *date.Date) string {
	return fmt.Sprintf("%s%04d-%02d-%02d", attendancePrefix, d.GetYear(), d.GetMonth(), d.GetDay())
}

var deterministic = proto.MarshalOptions{Deterministic: true}

// RecordAttendance implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) RecordAttendance(ctx context.Context, req *enrolmentv1.RecordAttendanceRequest) (*enrolmentv1.AttendanceRecord, error) {
	offeringID, _, err := parseEnrolmentName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	recs, err := s.recordAttendance(ctx, offeringID, []*enrolmentv1.AttendanceEntry{{
		Enrolment: req.GetName(), SessionDate: req.GetSessionDate(), Status: req.GetStatus(), Hours: req.GetHours(),
	}}, false)
	if err != nil {
		return nil, err
	}
	return recs[0], nil
}

// BatchRecordAttendance implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) BatchRecordAttendance(ctx context.Context, req *enrolmentv1.BatchRecordAttendanceRequest) (*enrolmentv1.BatchRecordAttendanceResponse, error) {
	offeringID, err := parseOfferingName("offering", req.GetOffering())
	if err != nil {
		return nil, err
	}
	if len(req.GetRecords()) == 0 {
		return nil, apierr.Field("records", "give at least one record")
	}
	recs, err := s.recordAttendance(ctx, offeringID, req.GetRecords(), true)
	if err != nil {
		return nil, err
	}
	return &enrolmentv1.BatchRecordAttendanceResponse{Records: recs}, nil
}

// recordAttendance checks and writes entries of one offering, all or
// nothing, in one atomic step conditioned on the offering and every
// enrolment being as read. In a batch, fields are named records[i].….
func (s *Service) recordAttendance(ctx context.Context, offeringID string, entries []*enrolmentv1.AttendanceEntry, batch bool) ([]*enrolmentv1.AttendanceRecord, error) {
	field := func(i int, f string) string {
		if batch {
			return fmt.Sprintf("records[%d].%s", i, f)
		}
		return f
	}
	// What the request alone can tell.
	var v apierr.Violations
	ids := make([]string, len(entries))
	seen := map[string]int{}
	for i, en := range entries {
		o, id, err := parseEnrolmentName(field(i, "enrolment"), en.GetEnrolment())
		switch {
		case err != nil && batch:
			v.Add(field(i, "enrolment"), "must be an enrolment name, offerings/{offering}/enrolments/{enrolment}")
			continue
		case err != nil:
			return nil, err
		case o != offeringID:
			v.Add(field(i, "enrolment"), "%s is not an enrolment of %s", en.GetEnrolment(), offeringName(offeringID))
			continue
		}
		ids[i] = id
		checkDate(&v, field(i, "session_date"), en.GetSessionDate())
		if en.GetStatus() != attended && en.GetHours() != 0 {
			v.Add(field(i, "hours"), "must be 0 unless status is ATTENDANCE_STATUS_PRESENT (it is %s)", en.GetStatus())
		}
		if validDate(en.GetSessionDate()) {
			k := id + "|" + attendanceField(en.GetSessionDate())
			if j, dup := seen[k]; dup {
				v.Add(field(i, "session_date"), "records[%d] records the same enrolment and session already; give each at most once", j)
			} else {
				seen[k] = i
			}
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}

	for attempt := range 20 {
		backoff(ctx, attempt)
		pipe := s.rdb.Pipeline()
		ob := pipe.HGet(ctx, offeringKey(offeringID), "pb")
		type read struct {
			pb, att *redis.StringCmd
		}
		reads := make([]read, len(entries))
		for i, en := range entries {
			key := enrolmentKey(offeringID, ids[i])
			reads[i] = read{pipe.HGet(ctx, key, "pb"), pipe.HGet(ctx, key, attendanceField(en.GetSessionDate()))}
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, s.st.Err(ctx, err)
		}
		b, err := ob.Bytes()
		if errors.Is(err, redis.Nil) {
			return nil, apierr.NotFound(offeringName(offeringID))
		}
		o := newOffering()
		if err := s.unmarshal(ctx, offeringKey(offeringID), b, o); err != nil {
			return nil, err
		}
		sessions := map[int]*enrolmentv1.Session{}
		for _, ses := range o.GetSessions() {
			sessions[dateKey(ses.GetDate())] = ses
		}
		today := s.today()
		var v apierr.Violations
		var r refusal
		es := make([]*enrolmentv1.Enrolment, len(entries))
		for i, en := range entries {
			ses, ok := sessions[dateKey(en.GetSessionDate())]
			switch {
			case !ok:
				v.Add(field(i, "session_date"), "%s is not a session of %s (its sessions: %s)", dateString(en.GetSessionDate()), o.GetName(), sessionDates(o))
			case dateKey(en.GetSessionDate()) > dateKey(today):
				v.Add(field(i, "session_date"), "the session of %s has not been held yet (today is %s)", dateString(en.GetSessionDate()), dateString(today))
			case en.GetStatus() == attended && en.GetHours() > sessionHours(ses):
				v.Add(field(i, "hours"), "%g is more than the session's %g hours", en.GetHours(), sessionHours(ses))
			}
			eb, err := reads[i].pb.Bytes()
			if errors.Is(err, redis.Nil) {
				if !batch {
					return nil, apierr.NotFound(en.GetEnrolment())
				}
				v.Add(field(i, "enrolment"), "%s does not exist", en.GetEnrolment())
				continue
			}
			es[i] = newEnrolment()
			if err := s.unmarshal(ctx, enrolmentKey(offeringID, ids[i]), eb, es[i]); err != nil {
				return nil, err
			}
			if es[i].GetState() != enrolled {
				what := ""
				if batch {
					what = fmt.Sprintf("records[%d]: ", i)
				}
				r.add("ENROLMENT_STATE", es[i].GetName(), "%s%s is %s; attendance is recorded for ENROLLED participants only", what, es[i].GetName(), es[i].GetState())
			}
		}
		if err := v.Err(); err != nil {
			return nil, err
		}
		if o.GetState() != offeringRunning && o.GetState() != offeringFinished {
			r.add("OFFERING_STATE", o.GetName(), "%s is %s; attendance is recorded while it is RUNNING or after it FINISHED", o.GetName(), o.GetState())
		}
		if err := r.err("cannot record attendance"); err != nil {
			return nil, err
		}

		now := timestamppb.New(s.now())
		out := make([]*enrolmentv1.AttendanceRecord, len(entries))
		tx := s.st.Tx()
		tx.EtagIs(offeringKey(offeringID), o.GetEtag(), nil)
		conditioned := map[string]bool{}
		writes := 0
		for i, en := range entries {
			rec := &enrolmentv1.AttendanceRecord{Enrolment: es[i].GetName(), SessionDate: en.GetSessionDate(), Status: en.GetStatus(),
				Hours: en.GetHours(), RecordTime: now}
			if rec.GetStatus() == attended && rec.GetHours() == 0 {
				rec.Hours = sessionHours(sessions[dateKey(en.GetSessionDate())])
			}
			// The same record again is the same result: nothing written.
			if prev, err := reads[i].att.Bytes(); err == nil {
				old := &enrolmentv1.AttendanceRecord{}
				if err := s.unmarshal(ctx, enrolmentKey(offeringID, ids[i]), prev, old); err != nil {
					return nil, err
				}
				if old.GetStatus() == rec.GetStatus() && old.GetHours() == rec.GetHours() {
					out[i] = old
					continue
				}
			}
			key := enrolmentKey(offeringID, ids[i])
			if !conditioned[key] {
				tx.EtagIs(key, es[i].GetEtag(), nil)
				conditioned[key] = true
			}
			b, err := deterministic.Marshal(rec)
			if err != nil {
				return nil, err
			}
			tx.HSet(key, attendanceField(en.GetSessionDate()), b)
			tx.Emit("attendance.recorded", es[i].GetName(), rec)
			out[i] = rec
			writes++
		}
		if writes == 0 {
			return out, nil
		}
		if _, err := tx.Commit(ctx); errors.Is(err, store.ErrConflict) {
			continue // withdrawn, completed or the offering moved: read again
		} else if err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, status.Errorf(codes.Aborted, "the enrolments of %s kept changing while attendance was recorded; retry", offeringName(offeringID))
}

// sessionHours is how long a session is, in hours.
func sessionHours(ses *enrolmentv1.Session) float64 {
	return float64(timeKey(ses.GetEndTime())-timeKey(ses.GetStartTime())) / 3600
}

func sessionDates(o *enrolmentv1.Offering) string {
	ds := make([]string, len(o.GetSessions()))
	for i, ses := range o.GetSessions() {
		ds[i] = dateString(ses.GetDate())
	}
	return strings.Join(ds, ", ")
}

// attendanceOf is every attendance record in an enrolment's hash fields,
// by session date.
func (s *Service) attendanceOf(ctx context.Context, key string, fields map[string]string) ([]*enrolmentv1.AttendanceRecord, error) {
	names := make([]string, 0, len(fields))
	for f := range fields {
		if strings.HasPrefix(f, attendancePrefix) {
			names = append(names, f)
		}
	}
	sort.Strings(names) // att:YYYY-MM-DD sorts by date
	out := make([]*enrolmentv1.AttendanceRecord, len(names))
	for i, f := range names {
		out[i] = &enrolmentv1.AttendanceRecord{}
		if err := s.unmarshal(ctx, key, []byte(fields[f]), out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ListAttendance implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) ListAttendance(ctx context.Context, req *enrolmentv1.ListAttendanceRequest) (*enrolmentv1.ListAttendanceResponse, error) {
	offeringID, id, err := parseEnrolmentName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	key := enrolmentKey(offeringID, id)
	fields, err := s.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, s.st.Err(ctx, err)
	}
	if _, ok := fields["pb"]; !ok {
		return nil, apierr.NotFound(req.GetParent())
	}
	recs, err := s.attendanceOf(ctx, key, fields)
	if err != nil {
		return nil, err
	}
	return &enrolmentv1.ListAttendanceResponse{Records: recs}, nil
}
