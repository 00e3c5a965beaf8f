package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/kompetensnav/kompetensnav/services/skills"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// waitFor polls f every 20 ms until it holds, for at most 15 s.
func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("after 15 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitConsumed waits until the skills service has handled every entry of
// the enrolment stream: its group has been given the last one and has
// none pending.
func waitConsumed(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	waitFor(t, "the enrolment stream is not consumed", func() bool {
		last, err := rdb.XRevRangeN(ctx, skills.EnrolmentEvents, "+", "-", 1).Result()
		if err != nil || len(last) != 1 {
			return false
		}
		groups, err := rdb.XInfoGroups(ctx, skills.EnrolmentEvents).Result()
		if err != nil {
			return false
		}
		for _, g := range groups {
			if g.Name == skills.EnrolmentGroup {
				return g.LastDeliveredID == last[0].ID && g.Pending == 0
			}
		}
		return false
	})
}

func listOf(r reply, field string) []any {
	l, _ := r.body[field].([]any)
	return l
}

// The all-in-one wires the skills service to the enrolment stream: a
// passed enrolment's event, delivered twice, becomes one certificate of the
// participant, listed at GET /v1/participants/{p}/certificates and
// verifiable through the gateway; the participant's erasure empties the
// list and leaves the credential they have verifiable. (The events are
// written as the enrolment service writes them, so this holds whatever
// produces them; the completion through the enrolment API is
// TestCompletionToVerifiedCertificateOverHTTP.)
func TestEnrolmentEventsBecomeCertificatesOverHTTP(t *testing.T) {
	rdb := testkit.Redis(t)
	a := start(t, rdb, true)
	staff := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	enrolment := store.New(rdb, store.Keyspace("enrolment"), testkit.Logger())
	emit := func(typ, subject string, m proto.Message) {
		tx := enrolment.Tx()
		tx.Emit(typ, subject, m)
		if _, err := tx.Commit(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	name := "offerings/cnc-operatorer/enrolments/demo-05"
	done := &enrolmentv1.Enrolment{Name: name, Participant: "participants/demo-05", State: enrolmentv1.Enrolment_STATE_COMPLETED,
		Project: "projects/esf-2020-00312", Result: enrolmentv1.Enrolment_RESULT_PASSED, CompleteTime: timestamppb.Now(),
		Skills: []string{"skills/hogvoltssakerhet"}}
	emit("enrolment.completed", name, done)
	emit("enrolment.completed", name, done)
	path := "/v1/participants/demo-05/certificates"
	waitFor(t, "no certificate listed", func() bool { return len(listOf(staff.do("GET", path, nil), "certificates")) > 0 })
	// Both events handled: still one.
	waitConsumed(t, rdb)
	list := listOf(staff.do("GET", path, nil), "certificates")
	if len(list) != 1 {
		t.Fatalf("%d certificates", len(list))
	}
	c := list[0].(map[string]any)
	if c["name"] != "certificates/"+skills.EnrolmentCertificateID(name) || c["evidence"] != name || c["holderReference"] != "participants/demo-05" {
		t.Fatalf("certificate %v", c)
	}
	cred := staff.ok("GET", "/v1/"+c["name"].(string)+":credential", nil)
	jwt := cred["jwt"].(string)
	if v := staff.ok("POST", "/v1/certificates:verify", map[string]any{"jwt": jwt}); v["valid"] != true {
		t.Fatalf("verify %v", v)
	}

	emit("participant.erased", "participants/demo-05", &enrolmentv1.Participant{Name: "participants/demo-05", State: enrolmentv1.Participant_STATE_ERASED})
	waitFor(t, "the erased participant's certificates are still listed", func() bool {
		r := staff.do("GET", path, nil)
		return r.status == http.StatusOK && len(listOf(r, "certificates")) == 0
	})
	got := staff.ok("GET", "/v1/"+c["name"].(string), nil)
	if got["holderErased"] != true || !strings.HasPrefix(got["holderReference"].(string), skills.ErasedHolderPrefix) {
		t.Fatalf("after erasure %v", got)
	}
	if v := staff.ok("POST", "/v1/certificates:verify", map[string]any{"jwt": jwt}); v["valid"] != true {
		t.Fatalf("the holder's credential after erasure: %v", v)
	}
}

// The "a passed participant has a verifiable certificate", end to
// end through the gateway: the demo offering starts, one participant
// passes and one fails; the one who passed has exactly one certificate,
// listed at GET /v1/participants/{p}/certificates, whose credential
// verifies; the one who failed has none. Erasing the one who passed
// empties their list and leaves their credential verifiable.
func TestCompletionToVerifiedCertificateOverHTTP(t *testing.T) {
	rdb := testkit.Redis(t)
	a := start(t, rdb, true)
	staff := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	if o := staff.ok("POST", "/v1/offerings/cnc-operatorer:start", map[string]any{}); o["state"] != "STATE_RUNNING" {
		t.Fatalf("start %v", o)
	}
	passed := staff.ok("POST", "/v1/offerings/cnc-operatorer/enrolments/demo-01:complete", map[string]any{"result": "RESULT_PASSED"})
	if passed["state"] != "STATE_COMPLETED" {
		t.Fatalf("complete %v", passed)
	}
	staff.ok("POST", "/v1/offerings/cnc-operatorer/enrolments/demo-02:complete", map[string]any{"result": "RESULT_FAILED"})
	waitFor(t, "no certificate for the participant who passed", func() bool {
		return len(listOf(staff.do("GET", "/v1/participants/demo-01/certificates", nil), "certificates")) > 0
	})
	// Both completions handled, and nothing for the one who failed.
	waitConsumed(t, rdb)
	if r := staff.ok("GET", "/v1/participants/demo-02/certificates", nil); len(listOf(reply{body: r}, "certificates")) != 0 {
		t.Fatalf("the participant who failed has certificates: %v", r)
	}
	list := listOf(staff.do("GET", "/v1/participants/demo-01/certificates", nil), "certificates")
	if len(list) != 1 {
		t.Fatalf("%d certificates", len(list))
	}
	c := list[0].(map[string]any)
	skillsOf := c["skills"].([]any)
	if c["evidence"] != "offerings/cnc-operatorer/enrolments/demo-01" || c["holderReference"] != "participants/demo-01" || len(skillsOf) != 1 ||
		skillsOf[0].(map[string]any)["skill"] != "skills/cnc-programmering" || skillsOf[0].(map[string]any)["level"] != float64(skills.CourseLevel) {
		t.Fatalf("certificate %v", c)
	}
	jwt := staff.ok("GET", "/v1/"+c["name"].(string)+":credential", nil)["jwt"].(string)
	// Verifying is for anyone holding a credential: no key needed beyond
	// any role's; the staff key will do here.
	if v := staff.ok("POST", "/v1/certificates:verify", map[string]any{"jwt": jwt}); v["valid"] != true || v["certificate"] != c["name"] {
		t.Fatalf("verify %v", v)
	}

	staff.ok("POST", "/v1/participants/demo-01:erase", map[string]any{"reason": "Begäran om radering"})
	waitFor(t, "the erased participant's certificates are still listed", func() bool {
		r := staff.do("GET", "/v1/participants/demo-01/certificates", nil)
		return r.status == http.StatusOK && len(listOf(r, "certificates")) == 0
	})
	if got := staff.ok("GET", "/v1/"+c["name"].(string), nil); got["holderErased"] != true || strings.Contains(got["holderReference"].(string), "demo-01") {
		t.Fatalf("after erasure %v", got)
	}
	if v := staff.ok("POST", "/v1/certificates:verify", map[string]any{"jwt": jwt}); v["valid"] != true {
		t.Fatalf("the holder's credential after erasure: %v", v)
	}
}
