package enrolment_test

import (
	"strings"
	"sync"
	"testing"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// Skatteverket's published test personnummer (SKV 704's example, and the
// one the sweden package tests with), and one of its samordningsnummer.
const (
	skv704       = "19640823-3234"
	testPNR      = "20170101-2393"
	coordination = "19701063-2391"
)

func TestParticipantIsMaskedUnlessStaffAskForFull(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		in := person("640823-3234") // the 10-digit form
		in.GivenName, in.FamilyName = "Märta", "Öberg"
		in.Employer = "companies/volvo-cars"
		p := mustParticipant(t, e, in)
		if p.GetPersonalIdentityNumber() != "19640823-****" || p.GetGivenName() != "Märta" || p.GetFamilyName() != "Ö." ||
			!proto.Equal(p.GetBirthDate(), d(1964, 8, 23)) || p.GetEmployerCouncil() != "councils/fordon" {
			t.Fatalf("created %v", p)
		}
		got, err := e.c.GetParticipant(ctx, &enrolmentv1.GetParticipantRequest{Name: p.GetName()})
		if err != nil || got.GetPersonalIdentityNumber() != "19640823-****" || got.GetFamilyName() != "Ö." {
			t.Fatalf("basic %v %v", got, err)
		}
		full, err := e.c.GetParticipant(ctx, &enrolmentv1.GetParticipantRequest{Name: p.GetName(), View: enrolmentv1.Participant_FULL})
		if err != nil || full.GetPersonalIdentityNumber() != skv704 || full.GetFamilyName() != "Öberg" {
			t.Fatalf("full %v %v", full, err)
		}
		list, err := e.c.ListParticipants(ctx, &enrolmentv1.ListParticipantsRequest{View: enrolmentv1.Participant_FULL})
		if err != nil || len(list.GetParticipants()) != 1 || list.GetParticipants()[0].GetFamilyName() != "Öberg" {
			t.Fatalf("full list %v %v", list, err)
		}
		// Nobody but staff reads participants at all, FULL or not.
		for _, role := range []auth.Role{auth.Provider, auth.Partner, auth.Auditor, auth.Council, auth.Company} {
			_, err := e.c.GetParticipant(testkit.AsRole(ctx, role, ""), &enrolmentv1.GetParticipantRequest{Name: p.GetName()})
			wantCode(t, err, codes.PermissionDenied)
		}
		// A samordningsnummer is a personal identity number too.
		c := mustParticipant(t, e, person(coordination))
		if c.GetPersonalIdentityNumber() != "19701063-****" || !proto.Equal(c.GetBirthDate(), d(1970, 10, 3)) {
			t.Fatalf("coordination number %v", c)
		}
	})
}

// Every rule of a participant is a 400 naming the field, nothing is
// written, and no message repeats the number.
func TestParticipantValidation(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		mustParticipant(t, e, person(testPNR))
		before := digest(t, e.rdb)
		wrongCheck := skv704[:12] + "5"
		for _, c := range []struct {
			name, field string
			edit        func(p *enrolmentv1.Participant)
		}{
			{"wrong check digit", "participant.personal_identity_number", func(p *enrolmentv1.Participant) { p.PersonalIdentityNumber = wrongCheck }},
			{"30 February", "participant.personal_identity_number", func(p *enrolmentv1.Participant) {
				p.PersonalIdentityNumber = number(1990, 2, 30, 123, false)
			}},
			{"future", "participant.personal_identity_number", func(p *enrolmentv1.Participant) {
				p.PersonalIdentityNumber = number(2027, 1, 5, 123, false)
			}},
			{"11 digits", "participant.personal_identity_number", func(p *enrolmentv1.Participant) { p.PersonalIdentityNumber = "19640823323" }},
			{"letters", "participant.personal_identity_number", func(p *enrolmentv1.Participant) { p.PersonalIdentityNumber = "1964O823-3234" }},
			{"missing", "participant.personal_identity_number", func(p *enrolmentv1.Participant) { p.PersonalIdentityNumber = "" }},
			{"no given name", "participant.given_name", func(p *enrolmentv1.Participant) { p.GivenName = "" }},
			{"gender", "participant.gender", func(p *enrolmentv1.Participant) { p.Gender = enrolmentv1.Gender_GENDER_UNSPECIFIED }},
			{"municipality", "participant.municipality", func(p *enrolmentv1.Participant) { p.Municipality = "0000" }},
			{"status", "participant.labour_market_status", func(p *enrolmentv1.Participant) {
				p.LabourMarketStatus = enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_UNSPECIFIED
			}},
			{"education", "participant.education_level", func(p *enrolmentv1.Participant) {
				p.EducationLevel = enrolmentv1.EducationLevel_EDUCATION_LEVEL_UNSPECIFIED
			}},
			{"unknown employer", "participant.employer", func(p *enrolmentv1.Participant) { p.Employer = "companies/finns-inte" }},
			{"bad employer", "participant.employer", func(p *enrolmentv1.Participant) { p.Employer = "volvo" }},
		} {
			in := person(skv704)
			c.edit(in)
			_, err := e.c.CreateParticipant(ctx, &enrolmentv1.CreateParticipantRequest{Participant: in})
			msg := testkit.WantBadRequest(t, err, c.field)
			if in.GetPersonalIdentityNumber() != "" && strings.Contains(msg, in.GetPersonalIdentityNumber()[:8]) {
				t.Fatalf("%s: the message repeats the number: %s", c.name, msg)
			}
		}
		_, err := e.c.CreateParticipant(ctx, &enrolmentv1.CreateParticipantRequest{Participant: person(skv704), ParticipantId: "p-196408233234"})
		testkit.WantBadRequest(t, err, "participant_id")
		// The same person in another form of the number: ALREADY_EXISTS
		// naming who has it, not the number.
		_, err = e.c.CreateParticipant(ctx, &enrolmentv1.CreateParticipantRequest{Participant: person("170101-2393")})
		st := wantCode(t, err, codes.AlreadyExists)
		if !strings.Contains(st.Message(), "participants/") || strings.Contains(st.Message(), "20170101") {
			t.Fatalf("duplicate: %s", st.Message())
		}
		if digest(t, e.rdb) != before {
			t.Fatal("a refused participant wrote something")
		}
	})
}

// Registering the same person twice at the same moment: one participant.
func TestSamePersonRegisteredConcurrentlyOnce(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		codesSeen := map[codes.Code]int{}
		for i := range 20 {
			wg.Go(func() {
				n := skv704
				if i%2 == 1 {
					n = "640823-3234"
				}
				_, err := e.c.CreateParticipant(ctx, &enrolmentv1.CreateParticipantRequest{Participant: person(n)})
				mu.Lock()
				codesSeen[status.Code(err)]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if codesSeen[codes.OK] != 1 || codesSeen[codes.AlreadyExists] != 19 {
			t.Fatalf("outcomes %v", codesSeen)
		}
		list, _ := e.c.ListParticipants(ctx, &enrolmentv1.ListParticipantsRequest{})
		if len(list.GetParticipants()) != 1 {
			t.Fatalf("%d participants", len(list.GetParticipants()))
		}
	})
}

func TestLookupAndUpdateParticipant(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		p := mustParticipant(t, e, person(skv704))
		for _, form := range []string{skv704, "196408233234", "640823-3234"} {
			got, err := e.c.LookupParticipant(ctx, &enrolmentv1.LookupParticipantRequest{PersonalIdentityNumber: form})
			if err != nil || got.GetName() != p.GetName() || got.GetPersonalIdentityNumber() != "19640823-****" {
				t.Fatalf("lookup %s: %v %v", form[:4], got, err)
			}
		}
		_, err := e.c.LookupParticipant(ctx, &enrolmentv1.LookupParticipantRequest{PersonalIdentityNumber: testPNR})
		if st := wantCode(t, err, codes.NotFound); strings.Contains(st.Message(), "2017") {
			t.Fatal(st.Message())
		}
		_, err = e.c.LookupParticipant(ctx, &enrolmentv1.LookupParticipantRequest{PersonalIdentityNumber: "12"})
		testkit.WantBadRequest(t, err, "personal_identity_number")

		// Sending back what a BASIC read showed changes nothing.
		same, err := e.c.UpdateParticipant(ctx, &enrolmentv1.UpdateParticipantRequest{Participant: p})
		if err != nil || same.GetEtag() != p.GetEtag() {
			t.Fatalf("sending back the masked read: %v %v", same, err)
		}
		// A corrected number moves the lookup; the old one finds nobody.
		up, err := e.c.UpdateParticipant(ctx, &enrolmentv1.UpdateParticipantRequest{
			Participant: &enrolmentv1.Participant{Name: p.GetName(), Etag: p.GetEtag(), PersonalIdentityNumber: testPNR, FamilyName: "Lind",
				Municipality: "1481", Employer: "companies/skf"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"personal_identity_number", "family_name", "municipality", "employer"}}})
		if err != nil || up.GetPersonalIdentityNumber() != "20170101-****" || up.GetFamilyName() != "L." || up.GetMunicipality() != "1481" ||
			up.GetEmployerCouncil() != "councils/teknik" || up.GetGivenName() != "Testa" {
			t.Fatalf("update %v %v", up, err)
		}
		_, err = e.c.LookupParticipant(ctx, &enrolmentv1.LookupParticipantRequest{PersonalIdentityNumber: skv704})
		wantCode(t, err, codes.NotFound)
		got, err := e.c.LookupParticipant(ctx, &enrolmentv1.LookupParticipantRequest{PersonalIdentityNumber: testPNR, View: enrolmentv1.Participant_FULL})
		if err != nil || got.GetFamilyName() != "Lind" || got.GetPersonalIdentityNumber() != testPNR {
			t.Fatalf("lookup after update %v %v", got, err)
		}
		// A stale etag is ABORTED; another's number is ALREADY_EXISTS.
		_, err = e.c.UpdateParticipant(ctx, &enrolmentv1.UpdateParticipantRequest{Participant: &enrolmentv1.Participant{Name: p.GetName(), Etag: p.GetEtag(), GivenName: "X"}})
		wantCode(t, err, codes.Aborted)
		other := mustParticipant(t, e, person(skv704))
		_, err = e.c.UpdateParticipant(ctx, &enrolmentv1.UpdateParticipantRequest{Participant: &enrolmentv1.Participant{Name: other.GetName(), PersonalIdentityNumber: testPNR}})
		if st := wantCode(t, err, codes.AlreadyExists); !strings.Contains(st.Message(), p.GetName()) {
			t.Fatal(st.Message())
		}
		_, err = e.c.UpdateParticipant(ctx, &enrolmentv1.UpdateParticipantRequest{Participant: &enrolmentv1.Participant{Name: other.GetName(), PersonalIdentityNumber: "19640823-3235"}})
		testkit.WantBadRequest(t, err, "participant.personal_identity_number")

		// Filters on the pseudonymous fields.
		list, err := e.c.ListParticipants(ctx, &enrolmentv1.ListParticipantsRequest{Filter: `municipality = "1481" AND employer = "companies/skf"`})
		if err != nil || len(list.GetParticipants()) != 1 || list.GetParticipants()[0].GetName() != p.GetName() {
			t.Fatalf("list %v %v", list, err)
		}
		list, err = e.c.ListParticipants(ctx, &enrolmentv1.ListParticipantsRequest{Filter: `gender = GENDER_WOMAN AND labour_market_status = LABOUR_MARKET_STATUS_NOTIFIED`})
		if err != nil || len(list.GetParticipants()) != 2 {
			t.Fatalf("list %v %v", list, err)
		}
		types := eventTypes(t, e)
		if count(types, "participant.created") != 2 || count(types, "participant.updated") != 1 {
			t.Fatalf("events %v", types)
		}
	})
}
