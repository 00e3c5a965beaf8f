package enrolment_test

import (
	"strings"
	"sync"
	"testing"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/enrolment"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

func erase(e env, name string) (*enrolmentv1.Participant, error) {
	return e.c.EraseParticipant(ctx, &enrolmentv1.EraseParticipantRequest{Name: name, Reason: "Begäran om radering, art. 17"})
}

// A participant known by a number, names, an employer and a personal
// withdrawal reason goes through registration, an update, lookups,
// enrolments, a withdrawal and an outcome, and is erased: then no Redis
// key or value and no stream entry holds the number in any spelling, the
// names, the blind index, the sealed data or the reason; Get shows only
// the name and the state; the enrolments, their snapshots and the
// outcomes stay; erasing again changes nothing; and the same number
// registers again as a new participant.
func TestEraseParticipant(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		p := mustProject(t, e, vastkraft("vk"))
		first := mustOffering(t, e, svets("svets", p.GetName(), 5), true)
		second := mustOffering(t, e, svets("svets-2", p.GetName(), 5), true)
		in := person(skv704)
		in.GivenName, in.FamilyName, in.Employer = scanGiven, scanFamily, "companies/volvo-cars"
		created, err := e.c.CreateParticipant(ctx, &enrolmentv1.CreateParticipantRequest{Participant: in, RequestId: "erase-1"})
		if err != nil {
			t.Fatal(err)
		}
		if created.GetState() != enrolmentv1.Participant_STATE_ACTIVE {
			t.Fatalf("a new participant is %v", created.GetState())
		}
		name := created.GetName()
		if _, err := e.c.UpdateParticipant(ctx, &enrolmentv1.UpdateParticipantRequest{Participant: &enrolmentv1.Participant{Name: name, FamilyName: scanFamily2},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"family_name"}}}); err != nil {
			t.Fatal(err)
		}
		const reason = "Sjukskriven efter en olycka"
		gone, err := enrol(e, first.GetName(), name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.WithdrawEnrolment(ctx, &enrolmentv1.WithdrawEnrolmentRequest{Name: gone.GetName(), Reason: reason}); err != nil {
			t.Fatal(err)
		}
		kept, err := enrol(e, second.GetName(), name)
		if err != nil {
			t.Fatal(err)
		}
		exit, err := outcome(e, name, atExit, newJob, 2026, 3, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, form := range scanForms[:3] {
			if _, err := e.c.LookupParticipant(ctx, &enrolmentv1.LookupParticipantRequest{PersonalIdentityNumber: form}); err != nil {
				t.Fatal(err)
			}
		}
		id := strings.TrimPrefix(name, "participants/")
		blind := e.keys.BlindIndex("personnummer", "196408233234")
		sealed := e.rdb.HGet(ctx, "kn:{enrolment}:participant:"+id, "pii").Val()
		if n, _ := e.rdb.Exists(ctx, "kn:{enrolment}:pin:"+blind).Result(); n != 1 || len(sealed) < 20 {
			t.Fatal("the blind index or the sealed data is not where the test looks")
		}
		snapshots := map[string]string{}
		for _, en := range []string{gone.GetName(), kept.GetName()} {
			snapshots[en] = e.rdb.HGet(ctx, enrolmentKeyOf(en), "snapshot").Val()
		}
		erasedBefore := count(eventTypes(t, e), "participant.erased")

		e.clock.tick()
		got, err := erase(e, name)
		if err != nil {
			t.Fatal(err)
		}
		want := &enrolmentv1.Participant{Name: name, State: enrolmentv1.Participant_STATE_ERASED, EraseTime: got.GetEraseTime(), CreateTime: created.GetCreateTime()}
		if got.GetEraseTime() == nil || !proto.Equal(got, want) {
			t.Fatalf("erased %v", got)
		}
		for _, view := range []enrolmentv1.Participant_View{enrolmentv1.Participant_BASIC, enrolmentv1.Participant_FULL} {
			if read, err := e.c.GetParticipant(ctx, &enrolmentv1.GetParticipantRequest{Name: name, View: view}); err != nil || !proto.Equal(read, want) {
				t.Fatalf("read after erasure (%v): %v %v", view, read, err)
			}
		}
		list, err := e.c.ListParticipants(ctx, &enrolmentv1.ListParticipantsRequest{View: enrolmentv1.Participant_FULL})
		if err != nil || len(list.GetParticipants()) != 1 || !proto.Equal(list.GetParticipants()[0], want) {
			t.Fatalf("list after erasure %v %v", list, err)
		}
		_, err = e.c.LookupParticipant(ctx, &enrolmentv1.LookupParticipantRequest{PersonalIdentityNumber: skv704})
		wantCode(t, err, codes.NotFound)

		// Nothing that identifies the person is left anywhere.
		dump := dumpAll(t, e.rdb)
		for k, v := range dump {
			all := k + "\n" + v
			if found := clearText(all); len(found) > 0 {
				t.Errorf("Redis key %s holds %v after erasure", k, found)
			}
			for what, s := range map[string]string{"the blind index": blind, "the sealed data": sealed, "the withdrawal reason": reason,
				"the birth date": "1964-08-23", "the employer": "companies/volvo-cars"} {
				if strings.Contains(all, s) && !(what == "the employer" && k == enrolment.Keyspace.Events()) {
					t.Errorf("Redis key %s holds %s after erasure", k, what)
				}
			}
		}
		if found := clearText(e.log.String()); len(found) > 0 {
			t.Errorf("the log holds %v", found)
		}
		// What the reports count stays as it was.
		for en, snap := range snapshots {
			if now := e.rdb.HGet(ctx, enrolmentKeyOf(en), "snapshot").Val(); now != snap || snap == "" {
				t.Errorf("the snapshot of %s changed", en)
			}
		}
		mine, err := e.c.ListParticipantEnrolments(ctx, &enrolmentv1.ListParticipantEnrolmentsRequest{Parent: name})
		if err != nil || len(mine.GetEnrolments()) != 2 {
			t.Fatalf("enrolments after erasure %v %v", mine, err)
		}
		for _, en := range mine.GetEnrolments() {
			if en.GetWithdrawReason() != "" {
				t.Fatalf("a withdrawal reason is left: %v", en)
			}
		}
		outs, err := e.c.ListParticipantOutcomes(ctx, &enrolmentv1.ListParticipantOutcomesRequest{Parent: name})
		if err != nil || len(outs.GetOutcomes()) != 1 || !proto.Equal(outs.GetOutcomes()[0], exit) {
			t.Fatalf("outcomes after erasure %v %v", outs, err)
		}
		ev, data := lastEvent(t, e, "participant.erased", &enrolmentv1.Participant{})
		if ev.GetSubject() != name || !proto.Equal(data, &enrolmentv1.Participant{Name: name, State: enrolmentv1.Participant_STATE_ERASED, EraseTime: got.GetEraseTime()}) {
			t.Fatalf("event %v %v", ev, data)
		}
		var rec enrolmentv1.ErasureRecord
		if err := proto.Unmarshal([]byte(e.rdb.HGet(ctx, "kn:{enrolment}:participant:"+id, "erasure").Val()), &rec); err != nil ||
			rec.GetReason() != "Begäran om radering, art. 17" || rec.GetPrincipal() == "" {
			t.Fatalf("erasure record %v %v", &rec, err)
		}
		recs := auditRecords(t, e.rdb)
		if last := recs[len(recs)-1]; !strings.HasSuffix(last.GetMethod(), "/EraseParticipant") || last.GetResource() != name {
			t.Fatalf("audit record %v", last)
		}

		// Erasing again changes nothing.
		before := digest(t, e.rdb)
		again, err := erase(e, name)
		if err != nil || !proto.Equal(again, want) {
			t.Fatalf("erased again %v %v", again, err)
		}
		if digest(t, e.rdb) != before || count(eventTypes(t, e), "participant.erased") != erasedBefore+1 {
			t.Fatal("erasing again wrote something")
		}

		// An erased participant takes part in nothing new.
		third := mustOffering(t, e, svets("svets-3", p.GetName(), 5), true)
		before = digest(t, e.rdb)
		_, err = enrol(e, third.GetName(), name)
		wantRule(t, err, "PARTICIPANT_ERASED")
		_, err = e.c.UpdateParticipant(ctx, &enrolmentv1.UpdateParticipantRequest{Participant: &enrolmentv1.Participant{Name: name, Municipality: "1481"}})
		wantRule(t, err, "PARTICIPANT_ERASED")
		_, err = outcome(e, name, atExit, keptJob, 2026, 3, 2)
		wantRule(t, err, "PARTICIPANT_ERASED")
		_, err = e.c.EraseParticipant(ctx, &enrolmentv1.EraseParticipantRequest{Name: name})
		testkit.WantBadRequest(t, err, "reason")
		_, err = erase(e, "participants/finns-inte")
		wantCode(t, err, codes.NotFound)
		if digest(t, e.rdb) != before {
			t.Fatal("a refusal wrote something")
		}

		// A withdrawal's reason is not kept for an erased participant.
		w, err := e.c.WithdrawEnrolment(ctx, &enrolmentv1.WithdrawEnrolmentRequest{Name: kept.GetName(), Reason: "Flyttar till Malmö"})
		if err != nil || w.GetWithdrawReason() != "" || w.GetState() != enrolmentv1.Enrolment_STATE_WITHDRAWN {
			t.Fatalf("withdrawn after erasure %v %v", w, err)
		}
		if strings.Contains(valueOf(t, e.rdb, enrolmentKeyOf(kept.GetName())), "Malmö") {
			t.Fatal("the reason was stored")
		}

		// The same number registers again, as someone new.
		again2 := person("640823-3234")
		again2.GivenName, again2.FamilyName = scanGiven, scanFamily
		fresh, err := e.c.CreateParticipant(ctx, &enrolmentv1.CreateParticipantRequest{Participant: again2})
		if err != nil || fresh.GetName() == name {
			t.Fatalf("registering again %v %v", fresh, err)
		}
		if found, err := e.c.LookupParticipant(ctx, &enrolmentv1.LookupParticipantRequest{PersonalIdentityNumber: skv704}); err != nil || found.GetName() != fresh.GetName() {
			t.Fatalf("lookup %v %v", found, err)
		}
	})
}

// An erased participant's enrolment is not completed (no certificate
// for someone erased); many erasures at once erase once.
func TestErasedParticipantIsNotCompletedAndErasesOnce(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := runningCourse(t, e, "svets", 2, 2)
		mustRecord(t, e, c.enrolments[0], 13, 14)
		p := participantOf(t, e, c.enrolments[0])
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				if got, err := erase(e, p); err != nil || got.GetState() != enrolmentv1.Participant_STATE_ERASED {
					t.Errorf("%v %v", got, err)
				}
			})
		}
		wg.Wait()
		if n := count(eventTypes(t, e), "participant.erased"); n != 1 {
			t.Fatalf("%d participant.erased events", n)
		}
		before := digest(t, e.rdb)
		_, err := complete(e, c.enrolments[0], passed)
		wantRule(t, err, "PARTICIPANT_ERASED")
		if digest(t, e.rdb) != before {
			t.Fatal("a refused completion wrote something")
		}
		// Attendance is about the enrolment and counts in the report: it
		// is still recorded.
		if _, err := record(e, c.enrolments[0], 14, absent, 0); err != nil {
			t.Fatal(err)
		}
	})
}
