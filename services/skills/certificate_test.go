package skills_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/kompetensnav/kompetensnav/services/skills"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

func certificate(holder, evidence string, skills ...*skillsv1.CertifiedSkill) *skillsv1.CompetenceCertificate {
	return &skillsv1.CompetenceCertificate{HolderReference: holder, Evidence: evidence, Skills: skills}
}

func certified(skill string, level int32) *skillsv1.CertifiedSkill {
	return &skillsv1.CertifiedSkill{Skill: "skills/" + skill, Level: level}
}

// certEnv is a taxonomy, a mapping and Anna's validation (svetsning 4, plc 2).
func certEnv(t *testing.T, e env) {
	t.Helper()
	baseSkills(t, e)
	m := mustMapping(t, e, "volvo", mapping("companies/volvo-torslanda", req("svetsning", 3, 5), req("plc", 2, 2)))
	mustValidation(t, e, "anna", validation(m.GetName(), "participants/anna", feb, result("svetsning", 4), result("plc", 2)))
}

func TestCertificateRules(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		certEnv(t, e)
		create := func(c *skillsv1.CompetenceCertificate) error {
			_, err := e.c.CreateCertificate(ctx, &skillsv1.CreateCertificateRequest{Certificate: c})
			return err
		}
		for _, c := range []struct {
			name, field string
			cert        *skillsv1.CompetenceCertificate
		}{
			{"another person's validation", "certificate.evidence", certificate("participants/bo", "validations/anna", certified("svetsning", 3))},
			{"above the level assessed", "certificate.skills[0].level", certificate("participants/anna", "validations/anna", certified("svetsning", 5))},
			{"a skill not assessed", "certificate.skills[1].skill", certificate("participants/anna", "validations/anna", certified("svetsning", 3), certified("truck", 1))},
			{"a validation that does not exist", "certificate.evidence", certificate("participants/anna", "validations/nej", certified("svetsning", 3))},
			{"personnummer as holder", "certificate.holder_reference", certificate("19640823-3234", "kurs-2026-17", certified("svetsning", 3))},
			{"personnummer in the evidence", "certificate.evidence", certificate("participants/anna", "kursintyg 640823-3234", certified("svetsning", 3))},
			{"unknown skill", "certificate.skills[0].skill", certificate("participants/anna", "kurs-2026-17", certified("finns-inte", 3))},
			{"level 0", "certificate.skills[0].level", certificate("participants/anna", "kurs-2026-17", certified("svetsning", 0))},
			{"same skill twice", "certificate.skills[1].skill", certificate("participants/anna", "kurs-2026-17", certified("svetsning", 1), certified("svetsning", 2))},
			{"no skills", "certificate.skills", certificate("participants/anna", "kurs-2026-17")},
			{"no evidence", "certificate.evidence", certificate("participants/anna", "", certified("svetsning", 1))},
		} {
			t.Run(c.name, func(t *testing.T) {
				before := digest(t, e.rdb)
				testkit.WantBadRequest(t, create(c.cert), c.field)
				if digest(t, e.rdb) != before {
					t.Fatal("a refused certificate wrote something")
				}
			})
		}
		future := certificate("participants/anna", "validations/anna", certified("svetsning", 3))
		future.IssuedOn = &date.Date{Year: 2026, Month: 3, Day: 3}
		testkit.WantBadRequest(t, create(future), "certificate.issued_on")

		// An event consumer derives the id from the event: issuing twice is
		// ALREADY_EXISTS, and there is one certificate.
		r := &skillsv1.CreateCertificateRequest{CertificateId: "enrolment-42", Certificate: certificate("participants/anna", "offerings/svets-1/enrolments/42", certified("svetsning", 2))}
		first, err := e.c.CreateCertificate(ctx, r)
		if err != nil || first.GetIssuer() != "Kompetensnavet Göteborgsregionen" || first.GetIssuedOn().GetDay() != 2 || first.GetTaxonomyVersion() != 3 {
			t.Fatalf("certificate %v %v", first, err)
		}
		_, err = e.c.CreateCertificate(ctx, r)
		wantCode(t, err, codes.AlreadyExists)
		// Or it sends the event's id as the request id.
		r = &skillsv1.CreateCertificateRequest{RequestId: "event-0192", Certificate: certificate("participants/anna", "validations/anna", certified("plc", 2))}
		a, err := e.c.CreateCertificate(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.c.CreateCertificate(ctx, r)
		if err != nil || b.GetName() != a.GetName() {
			t.Fatalf("retry %v %v", b, err)
		}
		list, err := e.c.ListCertificates(ctx, &skillsv1.ListCertificatesRequest{})
		if err != nil || len(list.GetCertificates()) != 2 {
			t.Fatalf("list %v %v", list, err)
		}
		byEvidence, err := e.c.ListCertificates(ctx, &skillsv1.ListCertificatesRequest{Filter: `evidence = "offerings/svets-1/enrolments/42"`})
		if err != nil || len(byEvidence.GetCertificates()) != 1 || byEvidence.GetCertificates()[0].GetName() != "certificates/enrolment-42" {
			t.Fatalf("by evidence %v %v", byEvidence, err)
		}
		// Events never carry the holder.
		msgs, _ := e.rdb.XRange(ctx, skills.Keyspace.Events(), "-", "+").Result()
		for _, m := range msgs {
			if strings.Contains(m.Values["event"].(string), "participants/anna") {
				t.Fatalf("an event (%s) carries the person reference", m.Values["type"])
			}
		}
	})
}

// b64 decodes base64url without padding.
func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCredentialVerifiesOfflineAndRevocationBites(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		certEnv(t, e)
		c, err := e.c.CreateCertificate(ctx, &skillsv1.CreateCertificateRequest{CertificateId: "anna-svets",
			Certificate: certificate("participants/anna", "validations/anna", certified("svetsning", 4), certified("plc", 2))})
		if err != nil {
			t.Fatal(err)
		}
		cred, err := e.c.GetCertificateCredential(ctx, &skillsv1.GetCertificateCredentialRequest{Name: c.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		keys, err := e.c.GetIssuerKeySet(ctx, &skillsv1.GetIssuerKeySetRequest{})
		if err != nil {
			t.Fatal(err)
		}

		// Independently of the service: the key set as JSON, read by
		// go-jose, verifies the JWT…
		raw, err := protojson.Marshal(keys)
		if err != nil {
			t.Fatal(err)
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) != 1 {
			t.Fatalf("key set %s: %v", raw, err)
		}
		jws, err := jose.ParseSigned(cred.GetJwt(), []jose.SignatureAlgorithm{jose.EdDSA})
		if err != nil {
			t.Fatal(err)
		}
		kid := jws.Signatures[0].Header.KeyID
		if kid != set.Keys[0].KeyID || kid == "" || jws.Signatures[0].Header.Algorithm != "EdDSA" {
			t.Fatalf("header kid %q alg %q, key set kid %q", kid, jws.Signatures[0].Header.Algorithm, set.Keys[0].KeyID)
		}
		payload, err := jws.Verify(set.Keys[0].Key)
		if err != nil {
			t.Fatalf("go-jose does not verify it with the published key: %v", err)
		}
		// …and so does the standard library's Ed25519, from the JWK's x.
		parts := strings.Split(cred.GetJwt(), ".")
		pub := ed25519.PublicKey(b64(t, keys.GetKeys()[0].GetX()))
		if len(parts) != 3 || !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), b64(t, parts[2])) {
			t.Fatal("crypto/ed25519 does not verify it")
		}
		var header map[string]any
		if err := json.Unmarshal(b64(t, parts[0]), &header); err != nil || header["typ"] != "JWT" || header["alg"] != "EdDSA" {
			t.Fatalf("header %v", header)
		}

		// The payload is an Open Badges 3.0 credential.
		var vc map[string]any
		if err := json.Unmarshal(payload, &vc); err != nil {
			t.Fatal(err)
		}
		types, _ := vc["type"].([]any)
		contexts, _ := vc["@context"].([]any)
		issuer, _ := vc["issuer"].(map[string]any)
		subject, _ := vc["credentialSubject"].(map[string]any)
		achievement, _ := subject["achievement"].(map[string]any)
		if len(types) != 2 || types[1] != "OpenBadgeCredential" || len(contexts) != 2 || contexts[1] != "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json" ||
			issuer["name"] != "Kompetensnavet Göteborgsregionen" || issuer["id"] != "https://kompetensnav.test" ||
			vc["id"] != "https://kompetensnav.test/v1/certificates/anna-svets" || vc["jti"] != vc["id"] || vc["iss"] != issuer["id"] ||
			vc["validFrom"] != "2026-03-01T23:00:00Z" || vc["nbf"] != float64(1772406000) {
			t.Fatalf("credential %s", payload)
		}
		if !strings.Contains(string(payload), `"targetName":"Svetsning"`) || !strings.Contains(string(payload), `"targetCode":"skills/plc"`) ||
			achievement["achievementType"] != "Certificate" {
			t.Fatalf("achievement %v", achievement)
		}
		// The holder only hashed, with the certificate's salt.
		ids, _ := subject["identifier"].([]any)
		id, _ := ids[0].(map[string]any)
		h := sha256.Sum256([]byte("participants/anna" + c.GetIdentitySalt()))
		if id["identityHash"] != "sha256$"+hex.EncodeToString(h[:]) || id["hashed"] != true || strings.Contains(string(payload), "participants/anna") {
			t.Fatalf("identity %v", id)
		}
		// The response's credential is the same, without the JWT claims.
		if cj, _ := protojson.Marshal(cred.GetCredential()); strings.Contains(string(cj), `"jti"`) || !strings.Contains(string(cj), `"OpenBadgeCredential"`) {
			t.Fatalf("credential object %s", cj)
		}

		// The service's own verify agrees.
		v, err := e.c.VerifyCredential(ctx, &skillsv1.VerifyCredentialRequest{Jwt: cred.GetJwt()})
		if err != nil || !v.GetValid() || v.GetCertificate() != c.GetName() || v.GetCredential().GetFields()["id"].GetStringValue() != vc["id"] {
			t.Fatalf("verify: %v %v", v, err)
		}
		// The same certificate gives the same JWT, even after its skills
		// are renamed: it shows the taxonomy as it was when issued.
		if _, err := e.c.UpdateSkill(ctx, &skillsv1.UpdateSkillRequest{Skill: &skillsv1.Skill{Name: "skills/svetsning", PreferredLabel: map[string]string{"sv": "Svetsteknik"}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"preferred_label"}}}); err != nil {
			t.Fatal(err)
		}
		again, err := e.c.GetCertificateCredential(ctx, &skillsv1.GetCertificateCredentialRequest{Name: c.GetName()})
		if err != nil || again.GetJwt() != cred.GetJwt() {
			t.Fatalf("the credential changed: %v", err)
		}

		// Tampered: a level raised in the payload, the signature kept.
		forged := strings.Replace(string(payload), `"value":"2"`, `"value":"5"`, 1)
		if forged == string(payload) {
			t.Fatal("nothing to tamper with")
		}
		tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + parts[2]
		if _, err := jws.Verify(set.Keys[0].Key); err != nil {
			t.Fatal(err)
		}
		if tj, err := jose.ParseSigned(tampered, []jose.SignatureAlgorithm{jose.EdDSA}); err != nil {
			t.Fatal(err)
		} else if _, err := tj.Verify(set.Keys[0].Key); err == nil {
			t.Fatal("go-jose verifies a tampered credential")
		}
		v, err = e.c.VerifyCredential(ctx, &skillsv1.VerifyCredentialRequest{Jwt: tampered})
		if err != nil || v.GetValid() || !strings.Contains(v.GetReason(), "signature does not verify") {
			t.Fatalf("tampered: %v %v", v, err)
		}
		// Signed by someone else, or not a JWS at all: invalid, not an error.
		other, err := skills.NewIssuer("Någon annan", "https://annan.test", skills.GenerateIssuerKey())
		if err != nil {
			t.Fatal(err)
		}
		foreign := signWith(t, other, payload)
		for _, bad := range []string{foreign, "not a jwt", parts[0] + "." + parts[1], "a.b.c"} {
			v, err = e.c.VerifyCredential(ctx, &skillsv1.VerifyCredentialRequest{Jwt: bad})
			if err != nil || v.GetValid() || v.GetReason() == "" {
				t.Fatalf("%.20s…: %v %v", bad, v, err)
			}
		}
		_, err = e.c.VerifyCredential(ctx, &skillsv1.VerifyCredentialRequest{})
		testkit.WantBadRequest(t, err, "jwt")

		// Revoked: verify says so; the certificate stays readable.
		_, err = e.c.RevokeCertificate(ctx, &skillsv1.RevokeCertificateRequest{Name: c.GetName()})
		testkit.WantBadRequest(t, err, "reason")
		rev, err := e.c.RevokeCertificate(ctx, &skillsv1.RevokeCertificateRequest{Name: c.GetName(), Reason: "Utfärdat på fel underlag"})
		if err != nil || !rev.GetRevoked() || rev.GetRevokeTime() == nil {
			t.Fatalf("revoke %v %v", rev, err)
		}
		v, err = e.c.VerifyCredential(ctx, &skillsv1.VerifyCredentialRequest{Jwt: cred.GetJwt()})
		if err != nil || v.GetValid() || !strings.Contains(v.GetReason(), "revoked on 2026-03-02: Utfärdat på fel underlag") {
			t.Fatalf("verify after revocation: %v %v", v, err)
		}
		_, err = e.c.RevokeCertificate(ctx, &skillsv1.RevokeCertificateRequest{Name: c.GetName(), Reason: "igen"})
		wantCode(t, err, codes.FailedPrecondition)
		if got, err := e.c.GetCertificate(ctx, &skillsv1.GetCertificateRequest{Name: c.GetName()}); err != nil || !got.GetRevoked() {
			t.Fatalf("revoked certificate: %v %v", got, err)
		}
		revoked, err := e.c.ListCertificates(ctx, &skillsv1.ListCertificatesRequest{Filter: `revoked = "true"`})
		if err != nil || len(revoked.GetCertificates()) != 1 {
			t.Fatalf("revoked list %v %v", revoked, err)
		}
	})
}

// signWith signs payload as issuer i would, for a credential of another hub.
func signWith(t *testing.T, i *skills.Issuer, payload []byte) string {
	t.Helper()
	key, err := skills.MarshalIssuerKey(skills.GenerateIssuerKey())
	if err != nil {
		t.Fatal(err)
	}
	priv, err := skills.ParseIssuerKey(key)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: priv},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", i.KeyID()))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIssuerKeys(t *testing.T) {
	key := skills.GenerateIssuerKey()
	pemBytes, err := skills.MarshalIssuerKey(key)
	if err != nil {
		t.Fatal(err)
	}
	back, err := skills.ParseIssuerKey(pemBytes)
	if err != nil || !back.Equal(key) {
		t.Fatalf("round trip: %v", err)
	}
	for _, bad := range []string{"", "not pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"} {
		if _, err := skills.ParseIssuerKey([]byte(bad)); err == nil {
			t.Errorf("%q accepted as a key", bad)
		}
	}
	for _, u := range []string{"", "kompetensnav.se", "ftp://x", "https://x/?q=1"} {
		if _, err := skills.NewIssuer("Hubben", u, key); err == nil {
			t.Errorf("issuer URL %q accepted", u)
		}
	}
	if _, err := skills.NewIssuer(" ", "https://x", key); err == nil {
		t.Error("an issuer without a name accepted")
	}
	a, _ := skills.NewIssuer("Hubben", "https://x/", key)
	b, _ := skills.NewIssuer("Hubben", "https://y", back)
	if a.KeyID() != b.KeyID() || len(a.KeyID()) != 43 {
		t.Fatalf("key ids %q %q: a thumbprint of the key alone", a.KeyID(), b.KeyID())
	}
}
