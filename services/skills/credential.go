package skills

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
)

// A certificate's credential is an Open Badges 3.0 OpenBadgeCredential
// (a W3C verifiable credential, data model 2.0) with one Achievement: the
// certificate, aligned to each certified skill, with the level of each as
// a Result. Its VC-JWT form is a compact JWS signed EdDSA (Ed25519) whose
// payload is the credential itself with the registered JWT claims iss
// (the issuer's id), jti (the credential's id) and nbf (validFrom), as the
// Open Badges 3.0 JWT proof format has it. The holder appears only as a
// salted SHA-256 hash of their reference (an IdentityObject), so the
// credential a person shows reveals no reference to anyone who does not
// already know it.
//
// Everything in it comes from the certificate and the taxonomy as it was
// at the certificate's taxonomy version, and Ed25519 signatures are
// deterministic: the same certificate always gives the same JWT.

const (
	credentialsContext = "https://www.w3.org/ns/credentials/v2"
	openBadgesContext  = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
)

// credentialID is the credential's id: the certificate's address under
// the issuer's.
func (i *Issuer) credentialID(cert *skillsv1.CompetenceCertificate) string {
	return i.url + "/v1/" + cert.GetName()
}

// certificateOfCredential is the certificate name in a credential id made
// by credentialID ("" if it is none).
func certificateOfCredential(id string) string {
	j := strings.LastIndex(id, "/certificates/")
	if j < 0 {
		return ""
	}
	name := id[j+1:]
	if !certificateNameRE.MatchString(name) {
		return ""
	}
	return name
}

// identityHash is the holder's reference hashed with salt, as Open Badges
// writes it.
func identityHash(reference, salt string) string {
	h := sha256.Sum256([]byte(reference + salt))
	return "sha256$" + hex.EncodeToString(h[:])
}

// credential builds the certificate's OpenBadgeCredential; skills are the
// certified skills as they were when it was issued, by name.
func (i *Issuer) credential(cert *skillsv1.CompetenceCertificate, skills map[string]*skillsv1.Skill, validFrom time.Time) map[string]any {
	id := i.credentialID(cert)
	achievementID := id + "#achievement"
	var alignment, resultDescriptions, results []any
	var names []string
	for _, cs := range cert.GetSkills() {
		sk := skills[cs.GetSkill()]
		label := cs.GetSkill()
		if l := sk.GetPreferredLabel()["sv"]; l != "" {
			label = l
		}
		names = append(names, fmt.Sprintf("%s (nivå %d)", label, cs.GetLevel()))
		target := map[string]any{
			"type": []any{"Alignment"}, "targetName": label, "targetCode": cs.GetSkill(),
			"targetUrl": i.url + "/v1/" + cs.GetSkill(), "targetFramework": "Kompetensnav",
		}
		if uri := sk.GetEscoUri(); uri != "" {
			target["targetUrl"], target["targetFramework"] = uri, "ESCO"
		}
		if en := sk.GetPreferredLabel()["en"]; en != "" {
			target["targetDescription"] = en
		}
		alignment = append(alignment, target)
		rdID := achievementID + "-" + skillID(cs.GetSkill())
		resultDescriptions = append(resultDescriptions, map[string]any{
			"id": rdID, "type": []any{"ResultDescription"}, "name": "Nivå: " + label,
			"resultType": "RawScore", "valueMin": "1", "valueMax": "5",
		})
		results = append(results, map[string]any{
			"type": []any{"Result"}, "resultDescription": rdID, "value": strconv.Itoa(int(cs.GetLevel())),
		})
	}
	evidence := map[string]any{"type": []any{"Evidence"}, "name": "Kompetensbevisets underlag", "description": cert.GetEvidence()}
	if strings.HasPrefix(cert.GetEvidence(), "validations/") {
		evidence["name"] = "Branschvalidering"
		evidence["id"] = i.url + "/v1/" + cert.GetEvidence()
	}
	return map[string]any{
		"@context": []any{credentialsContext, openBadgesContext},
		"id":       id,
		"type":     []any{"VerifiableCredential", "OpenBadgeCredential"},
		"issuer":   map[string]any{"id": i.url, "type": []any{"Profile"}, "name": i.name},
		"name":     "Kompetensbevis",
		// The day it was issued, from midnight in Sweden.
		"validFrom": validFrom.UTC().Format(time.RFC3339),
		"credentialSubject": map[string]any{
			"type": []any{"AchievementSubject"},
			"identifier": []any{map[string]any{
				"type": "IdentityObject", "identityType": "identifier", "hashed": true,
				"identityHash": identityHash(cert.GetHolderReference(), cert.GetIdentitySalt()), "salt": cert.GetIdentitySalt(),
			}},
			"achievement": map[string]any{
				"id": achievementID, "type": []any{"Achievement"}, "achievementType": "Certificate",
				"name":              "Kompetensbevis",
				"description":       "Kompetensbevis från " + i.name + ": " + strings.Join(names, ", ") + ".",
				"criteria":          map[string]any{"narrative": "Visad kompetens enligt underlaget " + cert.GetEvidence() + ", bedömd på skalan 1 (grundläggande) till 5 (expert)."},
				"alignment":         alignment,
				"resultDescription": resultDescriptions,
				"inLanguage":        "sv",
			},
			"result": results,
		},
		"evidence": []any{evidence},
	}
}

// sign makes the credential's VC-JWT.
func (i *Issuer) sign(cred map[string]any, validFrom time.Time) (string, error) {
	claims := make(map[string]any, len(cred)+3)
	for k, v := range cred {
		claims[k] = v
	}
	claims["iss"] = i.url
	claims["jti"] = cred["id"]
	claims["nbf"] = validFrom.Unix()
	payload, err := json.Marshal(claims) // map keys sorted: the same bytes every time
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: i.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), i.kid))
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// registeredClaims are the JWT claims sign adds to the credential.
var registeredClaims = []string{"iss", "jti", "nbf"}

// verified is what verify learned of a token.
type verified struct {
	credential  map[string]any
	certificate string
	nbf         time.Time
}

// verify checks that token is a compact JWS signed EdDSA by this issuer's
// key and returns the credential in it; reason says why not.
func (i *Issuer) verify(token string) (v *verified, reason string) {
	obj, err := jose.ParseSigned(strings.TrimSpace(token), []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return nil, "not a compact JWS signed with EdDSA"
	}
	if len(obj.Signatures) != 1 {
		return nil, "a credential has exactly one signature"
	}
	if kid := obj.Signatures[0].Header.KeyID; kid != i.kid {
		return nil, fmt.Sprintf("signed with a key this hub does not publish (kid %q; the hub's is %q)", clip(kid, 64), i.kid)
	}
	payload, err := obj.Verify(i.PublicKey())
	if err != nil {
		return nil, "the signature does not verify: the credential was altered, or not signed by this hub"
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, "the payload is not a JSON object"
	}
	out := &verified{credential: claims}
	if nbf, ok := claims["nbf"].(float64); ok {
		out.nbf = time.Unix(int64(nbf), 0)
	}
	for _, c := range registeredClaims {
		delete(claims, c)
	}
	id, _ := claims["id"].(string)
	if out.certificate = certificateOfCredential(id); out.certificate == "" {
		return out, "the credential names no certificate of this hub"
	}
	return out, ""
}
