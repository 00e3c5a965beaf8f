package enrolment_test

import (
	"strings"
	"testing"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// The personal data of the scan test, and every form its number can take.
var (
	scanGiven, scanFamily, scanFamily2 = "Zlatanka", "Öbergsdotter", "Järnbärarsson"
	scanForms                          = []string{"196408233234", "19640823-3234", "640823-3234", "6408233234", "19640823"}
)

// clearText is what of the scan test's personal data s holds in clear.
func clearText(s string) []string {
	var found []string
	for _, v := range append([]string{scanGiven, scanFamily, scanFamily2}, scanForms...) {
		if strings.Contains(s, v) {
			found = append(found, v)
		}
	}
	return found
}

// A known personnummer and name go through the whole participant and
// enrolment flow (and a few refusals); then every Redis key and value, every
// stream entry (events, audit) and the service's whole debug log are
// searched for them in clear text, in every spelling of the number.
func TestNoPersonalDataInClearText(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		p := mustProject(t, e, vastkraft("vk"))
		o := mustOffering(t, e, svets("svets", p.GetName(), 1), true)
		in := person(skv704)
		in.GivenName, in.FamilyName, in.Employer = scanGiven, scanFamily, "companies/volvo-cars"
		var responses []string
		note := func(_ any, err error) {
			t.Helper()
			if err == nil {
				t.Fatal("a refusal was expected")
			}
			responses = append(responses, err.Error())
		}
		created, err := e.c.CreateParticipant(ctx, &enrolmentv1.CreateParticipantRequest{Participant: in, RequestId: "scan-1"})
		if err != nil {
			t.Fatal(err)
		}
		// Refusals that hold the number or the name in the request.
		for _, form := range []string{"640823-3234", "196408233234"} {
			dup := person(form)
			dup.GivenName = scanGiven
			_, err := e.c.CreateParticipant(ctx, &enrolmentv1.CreateParticipantRequest{Participant: dup})
			note(nil, err)
		}
		bad := person("19640823-3235")
		bad.FamilyName = scanFamily
		_, err = e.c.CreateParticipant(ctx, &enrolmentv1.CreateParticipantRequest{Participant: bad})
		note(nil, err)
		if replay, err := e.c.CreateParticipant(ctx, &enrolmentv1.CreateParticipantRequest{Participant: in, RequestId: "scan-1"}); err != nil ||
			replay.GetName() != created.GetName() {
			t.Fatalf("replay %v %v", replay, err)
		}
		for _, form := range scanForms[:3] {
			_, err := e.c.LookupParticipant(ctx, &enrolmentv1.LookupParticipantRequest{PersonalIdentityNumber: form, View: enrolmentv1.Participant_FULL})
			if err != nil {
				t.Fatal(err)
			}
		}
		_, err = e.c.LookupParticipant(ctx, &enrolmentv1.LookupParticipantRequest{PersonalIdentityNumber: "19640823-3243"})
		note(nil, err)
		if _, err := e.c.GetParticipant(ctx, &enrolmentv1.GetParticipantRequest{Name: created.GetName(), View: enrolmentv1.Participant_FULL}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.ListParticipants(ctx, &enrolmentv1.ListParticipantsRequest{View: enrolmentv1.Participant_FULL, PageSize: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.UpdateParticipant(ctx, &enrolmentv1.UpdateParticipantRequest{
			Participant: &enrolmentv1.Participant{Name: created.GetName(), FamilyName: scanFamily2, PersonalIdentityNumber: "640823-3234"},
			UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"family_name", "personal_identity_number"}}}); err != nil {
			t.Fatal(err)
		}
		other := mustParticipant(t, e, person(testPNR))
		_, err = e.c.UpdateParticipant(ctx, &enrolmentv1.UpdateParticipantRequest{Participant: &enrolmentv1.Participant{Name: other.GetName(), PersonalIdentityNumber: skv704}})
		note(nil, err)
		if _, err := enrol(e, o.GetName(), other.GetName()); err != nil {
			t.Fatal(err)
		}
		en, err := enrol(e, o.GetName(), created.GetName()) // waitlisted
		if err != nil {
			t.Fatal(err)
		}
		note(enrol(e, o.GetName(), created.GetName()))
		if _, err := e.c.ListEnrolments(ctx, &enrolmentv1.ListEnrolmentsRequest{Parent: o.GetName(), PageSize: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.ListParticipantEnrolments(ctx, &enrolmentv1.ListParticipantEnrolmentsRequest{Parent: created.GetName()}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.WithdrawEnrolment(ctx, &enrolmentv1.WithdrawEnrolmentRequest{Name: en.GetName()}); err != nil {
			t.Fatal(err)
		}
		if _, err := enrol(e, o.GetName(), created.GetName()); err != nil {
			t.Fatal(err)
		}

		for _, r := range responses {
			if found := clearText(r); len(found) > 0 {
				t.Errorf("an error message holds %v: %s", found, r)
			}
		}
		dump := dumpAll(t, e.rdb)
		if len(dump) < 20 {
			t.Fatalf("only %d keys: the scan would prove nothing", len(dump))
		}
		for k, v := range dump {
			if found := clearText(k + "\n" + v); len(found) > 0 {
				t.Errorf("Redis key %s holds %v in clear text", k, found)
			}
		}
		if n, _ := e.rdb.XLen(ctx, "kn:{enrolment}:events").Result(); n < 8 {
			t.Fatalf("%d events", n)
		}
		if n, _ := e.rdb.XLen(ctx, "kn:{enrolment}:audit").Result(); n < 8 {
			t.Fatalf("%d audit records", n)
		}
		log := e.log.String()
		if found := clearText(log); len(found) > 0 {
			t.Errorf("the log holds %v", found)
		}
		// The scan looks where the data would be: the ciphertext is there.
		if !strings.Contains(dump["kn:{enrolment}:participant:"+strings.TrimPrefix(created.GetName(), "participants/")], "pii=") {
			t.Fatal("no sealed personal data found")
		}
	})
}
