package enrolment

import (
	"testing"
	"time"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The report's own decoding of enrolments and attendance reads what
// proto.Unmarshal reads, with every other field set around them (so that
// skipping works for each wire type in the messages).
func TestDecodeReportEnrolment(t *testing.T) {
	ts := func(sec int64, nanos int32) *timestamppb.Timestamp {
		return &timestamppb.Timestamp{Seconds: sec, Nanos: nanos}
	}
	for _, e := range []*enrolmentv1.Enrolment{
		{},
		{Name: "offerings/o/enrolments/e", Participant: "participants/p", State: enrolmentv1.Enrolment_STATE_COMPLETED,
			WaitlistPosition: 3, Project: "projects/vk", CreateTime: ts(1_772_442_000, 999_999_999), PromoteTime: ts(1, 2),
			WithdrawTime: ts(3, 4), WithdrawReason: "Nytt arbete – åter i höst", UpdateTime: ts(5, 6), Etag: "x",
			Result: enrolmentv1.Enrolment_RESULT_NOT_ASSESSED, CompleteTime: ts(7, 8), Skills: []string{"skills/a", "skills/b"}},
		{Name: "offerings/o/enrolments/f", State: enrolmentv1.Enrolment_STATE_WAITLISTED, CreateTime: ts(-5, 500)},
	} {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeReportEnrolment(b)
		if err != nil {
			t.Fatal(err)
		}
		created := e.GetCreateTime().AsTime().UnixNano()
		if e.GetCreateTime() == nil {
			created = 0
		}
		if string(got.name) != e.GetName() || string(got.participant) != e.GetParticipant() || string(got.project) != e.GetProject() ||
			got.state != e.GetState() || got.result != e.GetResult() || got.created != created {
			t.Errorf("decoded %+v from %v", got, e)
		}
	}
	sn := &enrolmentv1.EnrolmentSnapshot{Participant: "participants/p", Project: "projects/vk", Offering: "offerings/o",
		EnrolDate: &date.Date{Year: 2026, Month: 3, Day: 2}, Gender: enrolmentv1.Gender_GENDER_NON_BINARY, AgeBand: enrolmentv1.AgeBand_AGE_BAND_55_PLUS,
		LabourMarketStatus: enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_FURLOUGHED, EducationLevel: enrolmentv1.EducationLevel_EDUCATION_LEVEL_ISCED_5_8,
		Municipality: "1482", EmployerCouncil: "councils/fordon"}
	b, _ := proto.Marshal(sn)
	if got, err := decodeReportSnapshot(b); err != nil || got != (reportSnapshot{gender: sn.GetGender(), ageBand: sn.GetAgeBand(),
		status: sn.GetLabourMarketStatus(), education: sn.GetEducationLevel(), municipality: "1482", council: "councils/fordon"}) {
		t.Errorf("snapshot decoded %+v, %v", got, err)
	}
	if _, err := decodeReportEnrolment([]byte{0x0a, 0x05, 'a'}); err == nil {
		t.Error("a truncated enrolment decoded")
	}
	for st := range enrolmentv1.AttendanceStatus_name {
		b, _ := proto.Marshal(&enrolmentv1.AttendanceRecord{Enrolment: "offerings/o/enrolments/e", SessionDate: &date.Date{Year: 2026, Month: 4, Day: 13},
			Status: enrolmentv1.AttendanceStatus(st), Hours: 7.5, RecordTime: timestamppb.New(time.Now())})
		got, err := attendedPresent(b)
		if err != nil || got != (enrolmentv1.AttendanceStatus(st) == enrolmentv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT) {
			t.Errorf("status %v: present %v, %v", enrolmentv1.AttendanceStatus(st), got, err)
		}
	}
}
