package skills

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func newCertificate() *skillsv1.CompetenceCertificate { return &skillsv1.CompetenceCertificate{} }

func certifiedSkills(c *skillsv1.CompetenceCertificate) []string {
	out := make([]string, len(c.GetSkills()))
	for i, cs := range c.GetSkills() {
		out[i] = cs.GetSkill()
	}
	return out
}

// CreateCertificate implements skillsv1.SkillsServiceServer.
func (s *Service) CreateCertificate(ctx context.Context, req *skillsv1.CreateCertificateRequest) (*skillsv1.CompetenceCertificate, error) {
	c := proto.CloneOf(req.GetCertificate())
	for _, cs := range c.GetSkills() {
		cs.ReplacedBy = ""
	}
	var v apierr.Violations
	checkPersonReference(&v, "certificate.holder_reference", c.GetHolderReference())
	checkPersonReference(&v, "certificate.evidence", c.GetEvidence())
	if c.IssuedOn == nil {
		c.IssuedOn = s.today()
	} else if checkDate(&v, "certificate.issued_on", c.GetIssuedOn()) {
		s.checkNotFuture(&v, "certificate.issued_on", c.GetIssuedOn())
	}
	if err := s.checkSkillRefs(ctx, &v, certifiedSkills(c), func(i int) string { return fmt.Sprintf("certificate.skills[%d].skill", i) }); err != nil {
		return nil, err
	}
	if strings.HasPrefix(c.GetEvidence(), "validations/") {
		if err := s.checkValidationEvidence(ctx, &v, c); err != nil {
			return nil, err
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	version, err := s.version(ctx)
	if err != nil {
		return nil, err
	}
	id := req.GetCertificateId()
	if id == "" {
		id = uuid.NewString()
	}
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	c.Name, c.CreateTime, c.Issuer = certificateName(id), timestamppb.New(s.now()), s.issuer.Name()
	c.Revoked, c.RevokeTime, c.RevocationReason, c.HolderErased = false, nil, "", false
	c.IdentitySalt, c.TaxonomyVersion = base64.RawURLEncoding.EncodeToString(salt), version

	tx := s.st.Tx()
	if req.GetRequestId() != "" {
		tx.Idempotent(idemKey("certificate", req.GetRequestId()), c.GetName(), store.Fingerprint(req))
	}
	tx.MustNotExist(certificateKey(id), status.Errorf(codes.AlreadyExists, "%s already exists", c.GetName()))
	if pid := participantID(c.GetHolderReference()); pid != "" {
		// Never again a certificate naming an erased participant
		// (enrolment_events.go).
		tx.AtMost(holderKey(pid), "erased", 0, 0, wrongState(c.GetHolderReference(), "ERASED",
			c.GetHolderReference()+" was erased (GDPR): no certificate may name them"))
	}
	if err := tx.Put(certificateKey(id), c); err != nil {
		return nil, err
	}
	s.indexCertificate(tx, c)
	tx.Emit("certificate.issued", c.GetName(), eventCopy(c))
	replay, err := tx.Commit(ctx)
	if err != nil {
		return nil, err
	}
	if replay != nil {
		return s.GetCertificate(ctx, &skillsv1.GetCertificateRequest{Name: replay.Name})
	}
	return c, s.showSuccessors(ctx, c)
}

// checkValidationEvidence: a certificate resting on a validation is for the
// person validated, and certifies no skill at a higher level than assessed
// (a deprecated skill and its successor count as one).
func (s *Service) checkValidationEvidence(ctx context.Context, v *apierr.Violations, c *skillsv1.CompetenceCertificate) error {
	id, err := parseValidationName("certificate.evidence", c.GetEvidence())
	if err != nil {
		v.Add("certificate.evidence", "must be a validation name, validations/{validation}, or a reference that does not start with validations/")
		return nil
	}
	val, err := s.loadValidation(ctx, id)
	if status.Code(err) == codes.NotFound {
		v.Add("certificate.evidence", "%s does not exist", c.GetEvidence())
		return nil
	}
	if err != nil {
		return err
	}
	if val.GetPersonReference() != c.GetHolderReference() {
		v.Add("certificate.evidence", "%s is a validation of another person than the holder", c.GetEvidence())
		return nil
	}
	succ, err := s.successors(ctx, append(resultSkills(val), certifiedSkills(c)...))
	if err != nil {
		return err
	}
	resolve := func(n string) string {
		if r, ok := succ[n]; ok {
			return r
		}
		return n
	}
	held := map[string]int32{}
	for _, r := range val.GetResults() {
		held[resolve(r.GetSkill())] = max(held[resolve(r.GetSkill())], r.GetLevel())
	}
	for i, cs := range c.GetSkills() {
		level, ok := held[resolve(cs.GetSkill())]
		switch {
		case !ok:
			v.Add(fmt.Sprintf("certificate.skills[%d].skill", i), "%s was not assessed in %s", cs.GetSkill(), c.GetEvidence())
		case cs.GetLevel() > level:
			v.Add(fmt.Sprintf("certificate.skills[%d].level", i), "is %d, but %s assessed %s at level %d", cs.GetLevel(), c.GetEvidence(), cs.GetSkill(), level)
		}
	}
	return nil
}

func (s *Service) loadCertificate(ctx context.Context, id string) (*skillsv1.CompetenceCertificate, error) {
	c := newCertificate()
	if err := s.st.Get(ctx, certificateKey(id), c); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.NotFound(certificateName(id))
		}
		return nil, err
	}
	return c, nil
}

// GetCertificate implements skillsv1.SkillsServiceServer.
func (s *Service) GetCertificate(ctx context.Context, req *skillsv1.GetCertificateRequest) (*skillsv1.CompetenceCertificate, error) {
	id, err := parseCertificateName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	c, err := s.loadCertificate(ctx, id)
	if err != nil {
		return nil, err
	}
	return c, s.showSuccessors(ctx, c)
}

// ListCertificates implements skillsv1.SkillsServiceServer.
func (s *Service) ListCertificates(ctx context.Context, req *skillsv1.ListCertificatesRequest) (*skillsv1.ListCertificatesResponse, error) {
	page, err := s.certificateLister().List(ctx, listing.Request{
		Method: "ListCertificates", Filter: req.GetFilter(), OrderBy: req.GetOrderBy(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	if err := showSuccessorsOf(ctx, s, page.Items); err != nil {
		return nil, err
	}
	return &skillsv1.ListCertificatesResponse{Certificates: page.Items, NextPageToken: page.Next, TotalSize: page.TotalSize()}, nil
}

// ListParticipantCertificates implements skillsv1.SkillsServiceServer.
func (s *Service) ListParticipantCertificates(ctx context.Context, req *skillsv1.ListParticipantCertificatesRequest) (*skillsv1.ListParticipantCertificatesResponse, error) {
	if participantID(req.GetParent()) == "" {
		return nil, apierr.Field("parent", "must be a participant name, participants/{participant}")
	}
	page, err := s.certificateLister().List(ctx, listing.Request{
		Method: "ListParticipantCertificates", Parent: req.GetParent(), Filter: req.GetFilter(), OrderBy: req.GetOrderBy(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(), Where: map[string]string{"holder": req.GetParent()},
	})
	if err != nil {
		return nil, err
	}
	if err := showSuccessorsOf(ctx, s, page.Items); err != nil {
		return nil, err
	}
	return &skillsv1.ListParticipantCertificatesResponse{Certificates: page.Items, NextPageToken: page.Next, TotalSize: page.TotalSize()}, nil
}

// RevokeCertificate implements skillsv1.SkillsServiceServer.
func (s *Service) RevokeCertificate(ctx context.Context, req *skillsv1.RevokeCertificateRequest) (*skillsv1.CompetenceCertificate, error) {
	id, err := parseCertificateName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	key := certificateKey(id)
	c, err := store.Update(ctx, s.st, key, req.GetName(), req.GetEtag(), newCertificate,
		func(cur *skillsv1.CompetenceCertificate, tx *store.Tx) error {
			if cur.GetRevoked() {
				return wrongState(cur.GetName(), "REVOKED", fmt.Sprintf("%s was already revoked on %s", cur.GetName(),
					cur.GetRevokeTime().AsTime().In(s.stockholm).Format(time.DateOnly)))
			}
			cur.Revoked, cur.RevokeTime, cur.RevocationReason = true, timestamppb.New(s.now()), req.GetReason()
			if err := tx.Put(key, cur); err != nil {
				return err
			}
			s.indexCertificate(tx, cur)
			tx.Emit("certificate.revoked", cur.GetName(), eventCopy(cur))
			return nil
		})
	if err != nil {
		return nil, err
	}
	return c, s.showSuccessors(ctx, c)
}

// validFrom is the start of the day a certificate was issued, in Sweden.
func (s *Service) validFrom(d *date.Date) time.Time {
	return time.Date(int(d.GetYear()), time.Month(d.GetMonth()), int(d.GetDay()), 0, 0, 0, 0, s.stockholm)
}

// GetCertificateCredential implements skillsv1.SkillsServiceServer.
func (s *Service) GetCertificateCredential(ctx context.Context, req *skillsv1.GetCertificateCredentialRequest) (*skillsv1.CertificateCredential, error) {
	id, err := parseCertificateName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	c, err := s.loadCertificate(ctx, id)
	if err != nil {
		return nil, err
	}
	// The skills as they were when it was issued: the credential reads the
	// same however the taxonomy changes later.
	at, err := s.skillsAt(ctx, certifiedSkills(c), max(c.GetTaxonomyVersion(), 1))
	if err != nil {
		return nil, err
	}
	skills := make(map[string]*skillsv1.Skill, len(at))
	for _, sk := range at {
		skills[sk.GetName()] = sk
	}
	from := s.validFrom(c.GetIssuedOn())
	cred := s.issuer.credential(c, skills, from)
	jwt, err := s.issuer.sign(cred, from)
	if err != nil {
		return nil, err
	}
	st, err := structpb.NewStruct(cred)
	if err != nil {
		return nil, err
	}
	return &skillsv1.CertificateCredential{Jwt: jwt, Credential: st}, nil
}

// GetIssuerKeySet implements skillsv1.SkillsServiceServer.
func (s *Service) GetIssuerKeySet(context.Context, *skillsv1.GetIssuerKeySetRequest) (*skillsv1.JsonWebKeySet, error) {
	return &skillsv1.JsonWebKeySet{Keys: []*skillsv1.JsonWebKey{{
		Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(s.issuer.PublicKey()),
		Kid: s.issuer.KeyID(), Use: "sig", Alg: "EdDSA",
	}}}, nil
}

// VerifyCredential implements skillsv1.SkillsServiceServer.
func (s *Service) VerifyCredential(ctx context.Context, req *skillsv1.VerifyCredentialRequest) (*skillsv1.VerifyCredentialResponse, error) {
	got, reason := s.issuer.verify(req.GetJwt())
	resp := &skillsv1.VerifyCredentialResponse{Reason: reason}
	if got == nil {
		return resp, nil
	}
	st, err := structpb.NewStruct(got.credential)
	if err != nil {
		resp.Reason = "the payload is not a credential"
		return resp, nil
	}
	resp.Credential, resp.Certificate = st, got.certificate
	if reason != "" {
		return resp, nil
	}
	c, err := s.loadCertificate(ctx, mustID(certificateNameRE, got.certificate))
	switch {
	case status.Code(err) == codes.NotFound:
		resp.Reason = got.certificate + " does not exist at this hub"
	case err != nil:
		return nil, err
	case c.GetRevoked():
		resp.Reason = fmt.Sprintf("revoked on %s: %s", c.GetRevokeTime().AsTime().In(s.stockholm).Format(time.DateOnly), c.GetRevocationReason())
	case got.nbf.After(s.now()):
		resp.Reason = "not valid yet (its validFrom is in the future)"
	default:
		resp.Valid = true
	}
	return resp, nil
}
