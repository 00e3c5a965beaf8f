package skills_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/kompetensnav/kompetensnav/services/skills"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// consumerEnv is the skills service reading the enrolment stream from src,
// with a producer standing in for the enrolment service (which these tests
// do not import: services never import each other).
type consumerEnv struct {
	env
	svc *skills.Service
	src redis.UniversalClient
	// enrolment writes to the enrolment service's keyspace in src, as the
	// enrolment service does.
	enrolment *store.Store
}

func startConsumerEnv(t *testing.T, rdb, src redis.UniversalClient) consumerEnv {
	t.Helper()
	clk := &clock{}
	clk.set(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	issuer, err := skills.NewIssuer("Kompetensnavet Göteborgsregionen", "https://kompetensnav.test", skills.GenerateIssuerKey())
	if err != nil {
		t.Fatal(err)
	}
	svc, err := skills.New(skills.Options{Redis: rdb, Logger: testkit.Logger(), Now: clk.now, Issuer: issuer, EnrolmentEvents: src, Consumer: "replica-1"})
	if err != nil {
		t.Fatal(err)
	}
	conn := testkit.Serve(t, func(g *grpc.Server) { svc.Register(g) }, testkit.Guarded(rdb, skills.Policy))
	e := env{c: skillsv1.NewSkillsServiceClient(conn), rdb: rdb, clock: clk, issuer: issuer}
	mustSkill(t, e, "svetsning", skill("Svetsning", "Welding"))
	mustSkill(t, e, "plc", skill("PLC-programmering", "PLC programming"))
	mustSkill(t, e, "truck", skill("Truckkörning", "Forklift operation"))
	return consumerEnv{env: e, svc: svc, src: src, enrolment: store.New(src, store.Keyspace("enrolment"), testkit.Logger())}
}

// run runs the service's background work (the consumer among it) until t
// ends.
func (e consumerEnv) run(t *testing.T) {
	t.Helper()
	bg := events.Start(context.Background(), testkit.Logger(), e.svc.Background()...)
	t.Cleanup(bg.Stop)
}

// completed emits enrolment.completed as the enrolment service does.
func (e consumerEnv) completed(t *testing.T, enrolment, participant string, result enrolmentv1.Enrolment_Result, at time.Time, skillNames ...string) {
	t.Helper()
	en := &enrolmentv1.Enrolment{
		Name: enrolment, Participant: participant, State: enrolmentv1.Enrolment_STATE_COMPLETED,
		Project: "projects/esf-2026", Result: result, CompleteTime: timestamppb.New(at), Skills: skillNames,
	}
	tx := e.enrolment.Tx()
	tx.Emit("enrolment.completed", en.GetName(), en)
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// erased emits participant.erased as the enrolment service does.
func (e consumerEnv) erased(t *testing.T, participant string) {
	t.Helper()
	p := &enrolmentv1.Participant{Name: participant, State: enrolmentv1.Participant_STATE_ERASED, EraseTime: timestamppb.Now()}
	tx := e.enrolment.Tx()
	tx.Emit("participant.erased", p.GetName(), p)
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// redeliverAll appends every entry of the stream once more as it was (the
// same event ids): what a producer's retry or a replay looks like.
func (e consumerEnv) redeliverAll(t *testing.T) {
	t.Helper()
	msgs, err := e.src.XRange(ctx, skills.EnrolmentEvents, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := e.src.XAdd(ctx, &redis.XAddArgs{Stream: skills.EnrolmentEvents, Values: m.Values}).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// settle waits until the skills group has handled every entry of the
// stream (none waiting, none pending) and returns the number of dead
// letters.
func (e consumerEnv) settle(t *testing.T) int64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		infos, err := events.Inspect(ctx, e.src, skills.EnrolmentEvents)
		if err == nil && len(infos) == 1 {
			for _, g := range infos[0].Groups {
				if g.Name == skills.EnrolmentGroup && g.Lag == 0 && g.Pending == 0 {
					return g.DeadLetters
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the enrolment stream is not consumed after 20 s: %+v %v", infos, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e consumerEnv) participantCertificates(t *testing.T, participant string) []*skillsv1.CompetenceCertificate {
	t.Helper()
	resp, err := e.c.ListParticipantCertificates(ctx, &skillsv1.ListParticipantCertificatesRequest{Parent: participant, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetCertificates()
}

func (e consumerEnv) allCertificates(t *testing.T) []*skillsv1.CompetenceCertificate {
	t.Helper()
	resp, err := e.c.ListCertificates(ctx, &skillsv1.ListCertificatesRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetCertificates()
}

func countType(t *testing.T, e env, typ string) int {
	t.Helper()
	n := 0
	for _, got := range eventTypes(t, e) {
		if got == typ {
			n++
		}
	}
	return n
}

const (
	deltagare1 = "participants/deltagare-1"
	deltagare2 = "participants/deltagare-2"
)

// A passed enrolment is one certificate however often its event arrives:
// the same event redelivered, and the same completion in a second event.
// Failed and not-assessed ones are none. The certificate is the
// participant's, at level 2 per skill, dated the Swedish day of the
// completion, resting on the enrolment, and its credential verifies.
func TestEnrolmentCompletedIssuesExactlyOneCertificate(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		// The enrolment stream in a Redis of its own, as when the services
		// are deployed apart (-enrolment-events-redis).
		e := startConsumerEnv(t, rdb, testkit.Embedded(t))
		// 23:30 UTC on 1 March is 00:30 on 2 March in Sweden.
		at := time.Date(2026, 3, 1, 23, 30, 0, 0, time.UTC)
		passed := "offerings/svets-vt26/enrolments/e-1"
		e.completed(t, passed, deltagare1, enrolmentv1.Enrolment_RESULT_PASSED, at, "skills/svetsning", "skills/plc")
		e.completed(t, "offerings/svets-vt26/enrolments/e-2", deltagare2, enrolmentv1.Enrolment_RESULT_FAILED, at, "skills/svetsning", "skills/plc")
		e.completed(t, "offerings/svets-vt26/enrolments/e-3", deltagare2, enrolmentv1.Enrolment_RESULT_NOT_ASSESSED, at, "skills/svetsning")
		e.redeliverAll(t)
		// The same completion again under a new event id.
		e.completed(t, passed, deltagare1, enrolmentv1.Enrolment_RESULT_PASSED, at, "skills/svetsning", "skills/plc")
		e.run(t)
		if dl := e.settle(t); dl != 0 {
			t.Fatalf("%d dead letters", dl)
		}

		if all := e.allCertificates(t); len(all) != 1 {
			t.Fatalf("%d certificates, want 1: %v", len(all), all)
		}
		if n := countType(t, e.env, "certificate.issued"); n != 1 {
			t.Fatalf("%d certificate.issued events, want 1", n)
		}
		mine := e.participantCertificates(t, deltagare1)
		if len(mine) != 1 {
			t.Fatalf("%s has %d certificates, want 1", deltagare1, len(mine))
		}
		c := mine[0]
		if c.GetName() != "certificates/"+skills.EnrolmentCertificateID(passed) || c.GetHolderReference() != deltagare1 ||
			c.GetEvidence() != passed || c.GetHolderErased() || c.GetRevoked() ||
			c.GetIssuedOn().GetYear() != 2026 || c.GetIssuedOn().GetMonth() != 3 || c.GetIssuedOn().GetDay() != 2 {
			t.Fatalf("certificate %v", c)
		}
		if len(c.GetSkills()) != 2 || c.GetSkills()[0].GetSkill() != "skills/svetsning" || c.GetSkills()[1].GetSkill() != "skills/plc" ||
			c.GetSkills()[0].GetLevel() != skills.CourseLevel || c.GetSkills()[1].GetLevel() != skills.CourseLevel {
			t.Fatalf("certified skills %v", c.GetSkills())
		}
		if other := e.participantCertificates(t, deltagare2); len(other) != 0 {
			t.Fatalf("failed and not-assessed enrolments gave certificates: %v", other)
		}
		cred, err := e.c.GetCertificateCredential(ctx, &skillsv1.GetCertificateCredentialRequest{Name: c.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		v, err := e.c.VerifyCredential(ctx, &skillsv1.VerifyCredentialRequest{Jwt: cred.GetJwt()})
		if err != nil || !v.GetValid() || v.GetCertificate() != c.GetName() {
			t.Fatalf("verify %v %v", v, err)
		}
	})
}

// A skill deprecated since the call-off is certified as its successor; one
// the taxonomy does not have is left out; a course none of whose skills
// the taxonomy has gives no certificate and its event is dead-lettered
// with the reason, to be replayed once the taxonomy has them.
func TestEnrolmentCompletedSkillsDeprecatedOrUnknown(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		e := startConsumerEnv(t, rdb, rdb)
		mustSkill(t, e.env, "gammal-svets", skill("Gammal svetsning", ""))
		if _, err := e.c.DeprecateSkill(ctx, &skillsv1.DeprecateSkillRequest{Name: "skills/gammal-svets", ReplacedBy: "skills/svetsning"}); err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 2, 27, 15, 0, 0, 0, time.UTC)
		// Completed by a clock a day ahead of the service's: dated today,
		// not in the future.
		ahead := e.clock.now().Add(24 * time.Hour)
		mixed := "offerings/svets-vt26/enrolments/e-1"
		e.completed(t, mixed, deltagare1, enrolmentv1.Enrolment_RESULT_PASSED, ahead,
			"skills/gammal-svets", "skills/finns-inte", "skills/svetsning", "skills/truck")
		none := "offerings/okand-kurs/enrolments/e-9"
		e.completed(t, none, deltagare2, enrolmentv1.Enrolment_RESULT_PASSED, at, "skills/finns-inte", "skills/inte-heller")
		e.run(t)
		if dl := e.settle(t); dl != 1 {
			t.Fatalf("%d dead letters, want 1", dl)
		}
		mine := e.participantCertificates(t, deltagare1)
		if len(mine) != 1 {
			t.Fatalf("%d certificates", len(mine))
		}
		var got []string
		for _, cs := range mine[0].GetSkills() {
			got = append(got, fmt.Sprintf("%s:%d", cs.GetSkill(), cs.GetLevel()))
		}
		if strings.Join(got, ",") != "skills/svetsning:2,skills/truck:2" {
			t.Fatalf("certified %v", got)
		}
		if d := mine[0].GetIssuedOn(); d.GetYear() != 2026 || d.GetMonth() != 3 || d.GetDay() != 2 {
			t.Fatalf("issued on %v, want the service's today, 2026-03-02", d)
		}
		if len(e.participantCertificates(t, deltagare2)) != 0 {
			t.Fatal("a course with no known skill gave a certificate")
		}
		letters, err := e.src.XRange(ctx, events.DeadLetterStream(skills.EnrolmentEvents, skills.EnrolmentGroup), "-", "+").Result()
		if err != nil || len(letters) != 1 {
			t.Fatalf("dead letters %v %v", letters, err)
		}
		if reason, _ := letters[0].Values["error"].(string); !strings.Contains(reason, none) || !strings.Contains(reason, "none of its skills") {
			t.Fatalf("dead letter reason %q", reason)
		}
	})
}

// Erasing a participant anonymises their certificates (each with a stand-in
// of its own that does not derive from their name) and validations (one
// stand-in between them, so the gap analysis is unchanged), drops them from
// the indexes by person, keeps the credentials they already have verifiable, and
// leaves no trace of the reference in the service's data; other holders'
// certificates stay as they were. Afterwards no certificate or validation
// names them: not one for a completion handled later, nor one staff write. Erasing
// again changes nothing.
func TestParticipantErasedAnonymisesCertificates(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		e := startConsumerEnv(t, rdb, rdb)
		at := time.Date(2026, 2, 27, 15, 0, 0, 0, time.UTC)
		e.completed(t, "offerings/svets-vt26/enrolments/e-1", deltagare1, enrolmentv1.Enrolment_RESULT_PASSED, at, "skills/svetsning")
		e.completed(t, "offerings/plc-vt26/enrolments/e-7", deltagare1, enrolmentv1.Enrolment_RESULT_PASSED, at, "skills/plc")
		e.completed(t, "offerings/svets-vt26/enrolments/e-2", deltagare2, enrolmentv1.Enrolment_RESULT_PASSED, at, "skills/svetsning")
		e.run(t)
		e.settle(t)
		// And one staff issued by hand.
		if _, err := e.c.CreateCertificate(ctx, &skillsv1.CreateCertificateRequest{CertificateId: "truck-1",
			Certificate: certificate(deltagare1, "kursintyg truck 2026-02", certified("truck", 1))}); err != nil {
			t.Fatal(err)
		}
		before := e.participantCertificates(t, deltagare1)
		if len(before) != 3 {
			t.Fatalf("%d certificates before erasure", len(before))
		}
		var jwts []string
		for _, c := range before {
			cred, err := e.c.GetCertificateCredential(ctx, &skillsv1.GetCertificateCredentialRequest{Name: c.GetName()})
			if err != nil {
				t.Fatal(err)
			}
			jwts = append(jwts, cred.GetJwt())
		}
		otherBefore := e.participantCertificates(t, deltagare2)
		// Industry validations of both against a mapping: deltagare-1
		// twice (the later one counts), deltagare-2 once.
		m, err := e.c.CreateMapping(ctx, &skillsv1.CreateMappingRequest{MappingId: "svets",
			Mapping: mapping("companies/volvo-torslanda", req("svetsning", 3, 5), req("plc", 2, 2))})
		if err != nil {
			t.Fatal(err)
		}
		var valNames []string
		for i, v := range []*skillsv1.IndustryValidation{
			validation(m.GetName(), deltagare1, &date.Date{Year: 2026, Month: 1, Day: 15}, result("svetsning", 1), result("plc", 1)),
			validation(m.GetName(), deltagare1, feb, result("svetsning", 4), result("plc", 1)),
			validation(m.GetName(), deltagare2, feb, result("svetsning", 2), result("plc", 2)),
		} {
			e.clock.tick()
			got, err := e.c.CreateValidation(ctx, &skillsv1.CreateValidationRequest{ValidationId: fmt.Sprintf("v-%d", i), Validation: v})
			if err != nil {
				t.Fatal(err)
			}
			valNames = append(valNames, got.GetName())
		}
		gapBefore, err := e.c.AnalyzeGap(ctx, &skillsv1.AnalyzeGapRequest{Name: m.GetName()})
		if err != nil {
			t.Fatal(err)
		}

		e.erased(t, deltagare1)
		e.redeliverAll(t) // everything again, the erasure too
		e.erased(t, deltagare1)
		if dl := e.settle(t); dl != 0 {
			t.Fatalf("%d dead letters", dl)
		}
		if got := e.participantCertificates(t, deltagare1); len(got) != 0 {
			t.Fatalf("the erased participant still lists %d certificates", len(got))
		}
		if n := countType(t, e.env, "certificate.holder_erased"); n != 3 {
			t.Fatalf("%d certificate.holder_erased events, want 3 (erasing again is a no-op)", n)
		}
		standIns := map[string]bool{}
		for i, c := range before {
			got, err := e.c.GetCertificate(ctx, &skillsv1.GetCertificateRequest{Name: c.GetName()})
			if err != nil {
				t.Fatal(err)
			}
			ref := got.GetHolderReference()
			if !got.GetHolderErased() || !strings.HasPrefix(ref, skills.ErasedHolderPrefix) || strings.Contains(ref, "deltagare") || standIns[ref] || got.GetRevoked() {
				t.Fatalf("after erasure %v", got)
			}
			standIns[ref] = true
			// The credential the holder has keeps verifying.
			v, err := e.c.VerifyCredential(ctx, &skillsv1.VerifyCredentialRequest{Jwt: jwts[i]})
			if err != nil || !v.GetValid() {
				t.Fatalf("a credential issued before the erasure: %v %v", v, err)
			}
			// The hub's credential now names no one it can tell.
			cred, err := e.c.GetCertificateCredential(ctx, &skillsv1.GetCertificateCredentialRequest{Name: c.GetName()})
			if err != nil || cred.GetJwt() == jwts[i] {
				t.Fatalf("the credential after erasure is the one before (%v)", err)
			}
		}
		if after := e.participantCertificates(t, deltagare2); len(after) != 1 || after[0].GetEtag() != otherBefore[0].GetEtag() {
			t.Fatalf("another participant's certificate changed: %v", after)
		}
		// The validations: one stand-in for both of the erased person's,
		// the other's as it was, and the gap analysis unchanged.
		var vals []*skillsv1.IndustryValidation
		for _, n := range valNames {
			v, err := e.c.GetValidation(ctx, &skillsv1.GetValidationRequest{Name: n})
			if err != nil {
				t.Fatal(err)
			}
			vals = append(vals, v)
		}
		if ref := vals[0].GetPersonReference(); !vals[0].GetPersonErased() || !strings.HasPrefix(ref, skills.ErasedHolderPrefix) ||
			vals[1].GetPersonReference() != ref || !vals[1].GetPersonErased() || standIns[ref] {
			t.Fatalf("the erased person's validations: %v", vals[:2])
		}
		if vals[2].GetPersonReference() != deltagare2 || vals[2].GetPersonErased() {
			t.Fatalf("the other person's validation: %v", vals[2])
		}
		gapAfter, err := e.c.AnalyzeGap(ctx, &skillsv1.AnalyzeGapRequest{Name: m.GetName()})
		if err != nil || !proto.Equal(gapAfter, gapBefore) {
			t.Fatalf("gap before %v, after %v (%v)", gapBefore, gapAfter, err)
		}
		if n := countType(t, e.env, "validation.person_erased"); n != 2 {
			t.Fatalf("%d validation.person_erased events, want 2", n)
		}
		// No key or value of the service names the erased participant, but
		// for the audit stream: who listed whose certificates is the
		// record of the processing, collected by the access service and
		// kept by its rules.
		for _, k := range testkit.Keys(t, rdb, "kn:{skills}:*") {
			if k == skills.Keyspace.Audit() {
				continue
			}
			if strings.Contains(k, deltagare1) {
				t.Fatalf("key %q names the erased participant", k)
			}
			if strings.Contains(valueOf(t, rdb, k), deltagare1) {
				t.Fatalf("key %q holds the erased participant's name", k)
			}
		}

		// A completion handled after the erasure: no certificate.
		e.completed(t, "offerings/truck-vt26/enrolments/e-3", deltagare1, enrolmentv1.Enrolment_RESULT_PASSED, at, "skills/truck")
		if dl := e.settle(t); dl != 0 {
			t.Fatalf("%d dead letters", dl)
		}
		if all := e.allCertificates(t); len(all) != 4 {
			t.Fatalf("%d certificates, want 4 (3 anonymised, the other participant's)", len(all))
		}
		// Nor by hand: refused naming the rule, nothing written.
		d := digest(t, rdb)
		_, err = e.c.CreateCertificate(ctx, &skillsv1.CreateCertificateRequest{Certificate: certificate(deltagare1, "kursintyg", certified("truck", 1))})
		wantCode(t, err, codes.FailedPrecondition)
		testkit.WantPreconditionFailure(t, err, deltagare1)
		if digest(t, rdb) != d {
			t.Fatal("a refused certificate wrote something")
		}
		_, err = e.c.CreateValidation(ctx, &skillsv1.CreateValidationRequest{Validation: validation(m.GetName(), deltagare1, feb, result("plc", 1))})
		wantCode(t, err, codes.FailedPrecondition)
		testkit.WantPreconditionFailure(t, err, deltagare1)
		if digest(t, rdb) != d {
			t.Fatal("a refused validation wrote something")
		}
	})
}

// valueOf is every value at key as text (a hash's fields, a set's or
// stream's members), for scanning.
func valueOf(t *testing.T, rdb redis.UniversalClient, key string) string {
	t.Helper()
	typ, err := rdb.Type(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	switch typ {
	case "string":
		v, _ := rdb.Get(ctx, key).Result()
		b.WriteString(v)
	case "hash":
		m, _ := rdb.HGetAll(ctx, key).Result()
		for k, v := range m {
			b.WriteString(k + "=" + v + "\n")
		}
	case "set":
		m, _ := rdb.SMembers(ctx, key).Result()
		b.WriteString(strings.Join(m, "\n"))
	case "zset":
		m, _ := rdb.ZRange(ctx, key, 0, -1).Result()
		b.WriteString(strings.Join(m, "\n"))
	case "stream":
		msgs, _ := rdb.XRange(ctx, key, "-", "+").Result()
		for _, m := range msgs {
			fmt.Fprintf(&b, "%v\n", m.Values)
		}
	}
	return b.String()
}

// Two replicas consuming the same stream, each completion delivered three
// times (twice under one event id, once under another): one certificate
// per passed enrolment, one issue event each.
func TestEnrolmentCompletedTwoConsumersOneCertificateEach(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		e := startConsumerEnv(t, rdb, rdb)
		second, err := skills.New(skills.Options{Redis: rdb, Logger: testkit.Logger(), Now: e.clock.now, Issuer: e.issuer, Consumer: "replica-2"})
		if err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 2, 27, 15, 0, 0, 0, time.UTC)
		const n = 40
		for i := range n {
			e.completed(t, fmt.Sprintf("offerings/svets-vt26/enrolments/e-%d", i), fmt.Sprintf("participants/deltagare-%d", i),
				enrolmentv1.Enrolment_RESULT_PASSED, at, "skills/svetsning")
		}
		e.redeliverAll(t)
		for i := range n {
			e.completed(t, fmt.Sprintf("offerings/svets-vt26/enrolments/e-%d", i), fmt.Sprintf("participants/deltagare-%d", i),
				enrolmentv1.Enrolment_RESULT_PASSED, at, "skills/svetsning")
		}
		// Both replicas start together, so they split the work and race
		// for the copies.
		var wg sync.WaitGroup
		for _, svc := range []*skills.Service{e.svc, second} {
			wg.Go(func() {
				bg := events.Start(context.Background(), testkit.Logger(), svc.Background()...)
				t.Cleanup(bg.Stop)
			})
		}
		wg.Wait()
		if dl := e.settle(t); dl != 0 {
			t.Fatalf("%d dead letters", dl)
		}
		if all := e.allCertificates(t); len(all) != n {
			t.Fatalf("%d certificates, want %d", len(all), n)
		}
		if got := countType(t, e.env, "certificate.issued"); got != n {
			t.Fatalf("%d certificate.issued events, want %d", got, n)
		}
		for i := range n {
			if got := e.participantCertificates(t, fmt.Sprintf("participants/deltagare-%d", i)); len(got) != 1 {
				t.Fatalf("participant %d has %d certificates", i, len(got))
			}
		}
	})
}

// Issuing races with erasing: workers keep creating certificates for one
// participant while their erasure is emitted and applied. Each lands
// before the erasure (and is anonymised by it) or after it (and is
// refused): none is left naming the erased participant.
func TestErasureRacingIssuesLeavesNoneNamingTheParticipant(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		e := startConsumerEnv(t, rdb, rdb)
		e.run(t)
		var mu sync.Mutex
		created, refused := 0, 0
		counts := func() (int, int) { mu.Lock(); defer mu.Unlock(); return created, refused }
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					_, err := e.c.CreateCertificate(ctx, &skillsv1.CreateCertificateRequest{CertificateId: fmt.Sprintf("lopp-%d-%d", w, i),
						Certificate: certificate(deltagare1, "kursintyg", certified("truck", 1))})
					mu.Lock()
					switch status.Code(err) {
					case codes.OK:
						created++
					case codes.FailedPrecondition:
						refused++
					default:
						t.Errorf("create: %v", err)
					}
					mu.Unlock()
				}
			})
		}
		deadline := time.Now().Add(20 * time.Second)
		wait := func(cond func(c, r int) bool) {
			for c, r := counts(); !cond(c, r); c, r = counts() {
				if time.Now().After(deadline) {
					close(stop)
					t.Fatalf("after 20 s: %d created, %d refused", c, r)
				}
				time.Sleep(time.Millisecond)
			}
		}
		wait(func(c, _ int) bool { return c >= 20 })
		e.erased(t, deltagare1) // while the workers go on
		wait(func(_, r int) bool { return r >= 20 })
		close(stop)
		wg.Wait()
		if dl := e.settle(t); dl != 0 {
			t.Fatalf("%d dead letters", dl)
		}
		all := e.allCertificates(t)
		if len(all) != created {
			t.Fatalf("%d certificates, %d created", len(all), created)
		}
		for _, c := range all {
			if c.GetHolderReference() == deltagare1 || !c.GetHolderErased() {
				t.Fatalf("left naming the erased participant: %v", c)
			}
		}
		if got := e.participantCertificates(t, deltagare1); len(got) != 0 {
			t.Fatalf("%d listed", len(got))
		}
		t.Logf("%d issued before the erasure and anonymised, %d refused after it", created, refused)
	})
}

// The list by participant: its own certificates only, paged, filtered and
// ordered like ListCertificates; a parent that is not a participant name
// is a 400 naming it.
func TestListParticipantCertificates(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		e := startConsumerEnv(t, rdb, rdb)
		for i, holder := range []string{deltagare1, deltagare2, deltagare1, "extern-id 17", deltagare1} {
			e.clock.tick()
			if _, err := e.c.CreateCertificate(ctx, &skillsv1.CreateCertificateRequest{CertificateId: fmt.Sprintf("c-%d", i),
				Certificate: certificate(holder, "kursintyg", certified("svetsning", 1))}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.c.RevokeCertificate(ctx, &skillsv1.RevokeCertificateRequest{Name: "certificates/c-2", Reason: "fel underlag"}); err != nil {
			t.Fatal(err)
		}
		var names []string
		token := ""
		for {
			resp, err := e.c.ListParticipantCertificates(ctx, &skillsv1.ListParticipantCertificatesRequest{Parent: deltagare1, PageSize: 2, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetTotalSize() != 3 {
				t.Fatalf("total size %d", resp.GetTotalSize())
			}
			for _, c := range resp.GetCertificates() {
				names = append(names, c.GetName())
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		if strings.Join(names, ",") != "certificates/c-0,certificates/c-2,certificates/c-4" {
			t.Fatalf("listed %v", names)
		}
		resp, err := e.c.ListParticipantCertificates(ctx, &skillsv1.ListParticipantCertificatesRequest{Parent: deltagare1,
			Filter: `revoked = "false"`, OrderBy: "create_time desc"})
		if err != nil || len(resp.GetCertificates()) != 2 || resp.GetCertificates()[0].GetName() != "certificates/c-4" {
			t.Fatalf("filtered %v %v", resp, err)
		}
		// A token is bound to its participant.
		first, err := e.c.ListParticipantCertificates(ctx, &skillsv1.ListParticipantCertificatesRequest{Parent: deltagare1, PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.c.ListParticipantCertificates(ctx, &skillsv1.ListParticipantCertificatesRequest{Parent: deltagare2, PageToken: first.GetNextPageToken()})
		testkit.WantBadRequest(t, err, "page_token")
		for _, bad := range []string{"", "deltagare-1", "participants/", "participants/Stora", "companies/volvo"} {
			_, err := e.c.ListParticipantCertificates(ctx, &skillsv1.ListParticipantCertificatesRequest{Parent: bad})
			testkit.WantBadRequest(t, err, "parent")
		}
	})
}

// Certificates (and validations) written before the indexes by person
// existed are found by participant once the service's migration has run.
func TestMigrateIndexesCertificatesByHolder(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		e := startConsumerEnv(t, rdb, rdb)
		if _, err := e.c.CreateCertificate(ctx, &skillsv1.CreateCertificateRequest{CertificateId: "gammalt",
			Certificate: certificate(deltagare1, "kursintyg", certified("svetsning", 1))}); err != nil {
			t.Fatal(err)
		}
		m, err := e.c.CreateMapping(ctx, &skillsv1.CreateMappingRequest{MappingId: "svets", Mapping: mapping("companies/volvo", req("svetsning", 3, 5))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.CreateValidation(ctx, &skillsv1.CreateValidationRequest{ValidationId: "gammal",
			Validation: validation(m.GetName(), deltagare1, feb, result("svetsning", 2))}); err != nil {
			t.Fatal(err)
		}
		// As an older version left them: no index entries by person.
		personIndex := skills.Keyspace.Key("ix", "validations", "create_time", "person="+deltagare1)
		for _, key := range []string{skills.Keyspace.Key("certificate", "gammalt"), skills.Keyspace.Key("validation", "gammal")} {
			ix, err := rdb.HGet(ctx, key, "ix").Result()
			if err != nil {
				t.Fatal(err)
			}
			var kept []string
			for _, line := range strings.Split(strings.TrimSuffix(ix, "\n"), "\n") {
				k, m, _ := strings.Cut(line, "\x02")
				if strings.Contains(k, "holder=") || strings.Contains(k, "person=") {
					rdb.ZRem(ctx, k, m)
					continue
				}
				kept = append(kept, line)
			}
			rdb.HSet(ctx, key, "ix", strings.Join(kept, "\n")+"\n")
		}
		if got := e.participantCertificates(t, deltagare1); len(got) != 0 {
			t.Fatalf("the simulated old data is listed: %v", got)
		}
		if n := rdb.ZCard(ctx, personIndex).Val(); n != 0 {
			t.Fatalf("%d validations indexed by person before the migration", n)
		}
		if err := e.svc.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if got := e.participantCertificates(t, deltagare1); len(got) != 1 || got[0].GetName() != "certificates/gammalt" {
			t.Fatalf("after the migration %v", got)
		}
		if n := rdb.ZCard(ctx, personIndex).Val(); n != 1 {
			t.Fatalf("%d validations indexed by person after the migration", n)
		}
		// Once per store.
		if err := e.svc.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
