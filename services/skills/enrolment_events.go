package skills

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A course passed becomes a certificate without a distributed
// transaction: the enrolment service completes an enrolment and emits
// enrolment.completed in the same atomic step; this consumer issues the
// certificate through the same code as CreateCertificate, with an id
// derived from the enrolment's name, so however often the event arrives
// (a redelivery, a replayed dead letter, two replicas racing for it) there
// is one certificate per enrolment: the second attempt is ALREADY_EXISTS
// in the write's own atomic step, which is done.
//
// participant.erased anonymises what names the participant: each of their
// certificates gets a random stand-in as holder (not derived from the
// participant's name, so nothing links it back), their industry
// validations one stand-in between them (so that a gap analysis still
// counts the person once), and all leave the indexes by person. First the
// participant is marked erased, in one atomic step: every certificate and
// validation written checks that mark in its own atomic step, so from then
// on none names them, neither a certificate the consumer issues for a
// completion it handles later (a retry, another replica) nor one staff
// record. Then what names them is read, all of it now, and anonymised in
// one more atomic step. A write racing with the erasure lands before the
// mark, and is anonymised, or after it, and is refused; however many there
// are, the erasure is not held up by them.

// EnrolmentEvents is the enrolment service's stream, read by consumer
// group EnrolmentGroup.
var EnrolmentEvents = store.Keyspace("enrolment").Events()

// EnrolmentGroup is the skills service's consumer group on it.
const EnrolmentGroup = "skills"

const (
	enrolmentCompleted = "kompetensnav.enrolment.v1.enrolment.completed"
	participantErased  = "kompetensnav.enrolment.v1.participant.erased"
)

// CourseLevel is the level a passed course certifies each of its skills
// at: call-offs name the skills a course trains, not levels, and 2 of 1–5
// is what a short course (1–10 days) of the hub gives.
const CourseLevel = 2

// ErasedHolderPrefix starts the holder reference of a certificate whose
// holder was erased.
const ErasedHolderPrefix = "erased/"

var (
	participantNameRE = regexp.MustCompile(`^participants/([a-z0-9][a-z0-9-]{0,62})$`)
	enrolmentNameRE   = regexp.MustCompile(`^offerings/[a-z0-9][a-z0-9-]{0,62}/enrolments/[a-z0-9][a-z0-9-]{0,62}$`)
)

// participantID is the id in a participants/{participant} name ("" if it
// is none).
func participantID(name string) string { return mustID(participantNameRE, name) }

// EnrolmentCertificateID is the id of the certificate issued for a passed
// enrolment: a hash of the enrolment's name, since an offering's id and an
// enrolment's together may be longer than a certificate id.
func EnrolmentCertificateID(enrolment string) string {
	h := sha256.Sum256([]byte(enrolment))
	return "enrolment-" + hex.EncodeToString(h[:16])
}

// consumeEnrolment runs the consumer of the enrolment service's events
// until ctx ends.
func (s *Service) consumeEnrolment(ctx context.Context) error {
	c, err := events.NewConsumer(events.Config{
		Source: s.enrolmentEv, Stream: EnrolmentEvents, Group: EnrolmentGroup, Consumer: s.consumer, Logger: s.log,
	}, events.Route(map[string]events.Handler{
		enrolmentCompleted: s.enrolmentCompleted,
		participantErased:  s.participantErased,
	}))
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// enrolmentCompleted issues the certificate of a passed enrolment. An
// error leaves the event to be delivered again and, after the consumer's
// last try, dead-lettered with the error as its reason.
func (s *Service) enrolmentCompleted(ctx context.Context, d *events.Delivery) error {
	var e enrolmentv1.Enrolment
	if err := d.Decode(&e); err != nil {
		return err
	}
	if e.GetState() != enrolmentv1.Enrolment_STATE_COMPLETED || e.GetResult() != enrolmentv1.Enrolment_RESULT_PASSED {
		return nil // failed or not assessed: nothing to certify
	}
	if !enrolmentNameRE.MatchString(e.GetName()) {
		return fmt.Errorf("enrolment.completed of %q: not an enrolment name, offerings/{offering}/enrolments/{enrolment}", e.GetName())
	}
	pid := participantID(e.GetParticipant())
	if pid == "" {
		return fmt.Errorf("%s: participant %q is not a participants/{participant} name", e.GetName(), e.GetParticipant())
	}
	certified, dropped, err := s.courseSkills(ctx, e.GetSkills())
	if err != nil {
		return err
	}
	if len(certified) == 0 {
		return fmt.Errorf("%s: none of its skills (%s) is in the taxonomy, so there is nothing to certify; "+
			"add them and replay this dead letter to issue the certificate", e.GetName(), strings.Join(e.GetSkills(), ", "))
	}
	if len(dropped) > 0 {
		s.log.WarnContext(ctx, "certificate for a passed course leaves out skills the taxonomy does not have",
			"enrolment", e.GetName(), "left_out", dropped)
	}
	completed := e.GetCompleteTime().AsTime()
	if e.GetCompleteTime() == nil {
		completed = d.Event.GetTime().AsTime()
	}
	issued := s.dateOf(completed)
	if dateNum(issued) > dateNum(s.today()) {
		// Completed just after midnight by a clock ahead of this one's: a
		// certificate is not dated in the future.
		issued = s.today()
	}
	req := &skillsv1.CreateCertificateRequest{
		CertificateId: EnrolmentCertificateID(e.GetName()),
		Certificate: &skillsv1.CompetenceCertificate{
			HolderReference: e.GetParticipant(), Evidence: e.GetName(),
			IssuedOn: issued, Skills: certified,
		},
	}
	_, err = s.CreateCertificate(ctx, req)
	switch {
	case err == nil:
		return nil
	case status.Code(err) == codes.AlreadyExists:
		return nil // issued before: this is a redelivery
	case status.Code(err) == codes.FailedPrecondition:
		erased, rerr := s.holderErased(ctx, pid)
		if rerr != nil {
			return rerr
		}
		if erased {
			// Erased before this completion was handled: a certificate
			// would name them again, and one that names no one is no
			// one's to show.
			s.log.InfoContext(ctx, "no certificate for a passed course: the participant was erased", "enrolment", e.GetName())
			return nil
		}
	}
	return fmt.Errorf("%s: issuing its certificate: %w", e.GetName(), err)
}

// courseSkills are the skills a course's certificate certifies, at
// CourseLevel: each of names, or its successor when it was deprecated
// since the call-off, each once. Names the taxonomy does not have (or
// whose succession ends in a deprecated skill) are left out and returned
// as dropped.
func (s *Service) courseSkills(ctx context.Context, names []string) (certified []*skillsv1.CertifiedSkill, dropped []string, err error) {
	succ, err := s.successors(ctx, names)
	if err != nil {
		return nil, nil, err
	}
	resolved := make([]string, len(names))
	for i, n := range names {
		resolved[i] = n
		if r, ok := succ[n]; ok {
			resolved[i] = r
		}
	}
	found, err := s.loadSkills(ctx, resolved)
	if err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	for i, n := range names {
		r := resolved[i]
		if sk := found[r]; sk == nil || sk.GetDeprecated() {
			dropped = append(dropped, n)
			continue
		}
		if !seen[r] {
			seen[r] = true
			certified = append(certified, &skillsv1.CertifiedSkill{Skill: r, Level: CourseLevel})
		}
	}
	return certified, dropped, nil
}

// dateOf is t's date in Sweden.
func (s *Service) dateOf(t time.Time) *date.Date {
	y, m, d := t.In(s.stockholm).Date()
	return &date.Date{Year: int32(y), Month: int32(m), Day: int32(d)}
}

// participantErased anonymises the erased participant's certificates and
// validations.
func (s *Service) participantErased(ctx context.Context, d *events.Delivery) error {
	var p enrolmentv1.Participant
	if err := d.Decode(&p); err != nil {
		return err
	}
	pid := participantID(p.GetName())
	if pid == "" {
		return nil // not a participant name: no certificate names it
	}
	// A conflict is a certificate of theirs changed (revoked, say) since
	// it was read: read again.
	for range 20 {
		err := s.eraseHolder(ctx, d, p.GetName(), pid)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("%s: their certificates kept changing while being anonymised; will try again", p.GetName())
}

// eraseHolder marks holder erased, then anonymises every certificate and
// validation naming them in one atomic step (store.ErrConflict if one
// changed meanwhile).
func (s *Service) eraseHolder(ctx context.Context, d *events.Delivery, holder, pid string) error {
	mark := s.st.Tx()
	mark.HSet(holderKey(pid), "erased", 1)
	if _, err := mark.Commit(ctx); err != nil {
		return err
	}
	names, err := s.indexed(ctx, certificateIndex.Key(Keyspace, "create_time", false, "holder", holder))
	if err != nil {
		return err
	}
	certs, err := store.Load(ctx, s.st, keysOf(names, certificateNameRE, certificateKey), newCertificate)
	if err != nil {
		return err
	}
	names, err = s.indexed(ctx, validationIndex.Key(Keyspace, "create_time", false, "person", holder))
	if err != nil {
		return err
	}
	vals, err := store.Load(ctx, s.st, keysOf(names, validationNameRE, validationKey), newValidation)
	if err != nil {
		return err
	}
	tx := s.st.Tx()
	events.ApplyOnce(tx, d)
	// One stand-in for all of the person's validations: a gap analysis
	// counts a person once, by their latest.
	person := ErasedHolderPrefix + rand.Text()
	for _, v := range vals {
		if v.GetPersonReference() != holder {
			continue
		}
		key := validationKey(mustID(validationNameRE, v.GetName()))
		tx.EtagIs(key, v.GetEtag(), store.ErrConflict)
		v.PersonReference, v.PersonErased = person, true
		if err := tx.Put(key, v); err != nil {
			return err
		}
		s.indexValidation(tx, v)
		tx.Emit("validation.person_erased", v.GetName(), eventCopy(v))
	}
	for _, c := range certs {
		if c.GetHolderReference() != holder {
			continue
		}
		key := certificateKey(mustID(certificateNameRE, c.GetName()))
		tx.EtagIs(key, c.GetEtag(), store.ErrConflict)
		c.HolderReference, c.HolderErased = ErasedHolderPrefix+rand.Text(), true
		if err := tx.Put(key, c); err != nil {
			return err
		}
		s.indexCertificate(tx, c)
		tx.Emit("certificate.holder_erased", c.GetName(), eventCopy(c))
	}
	_, err = tx.Commit(ctx)
	return err
}

// indexed are the names of every resource in the index set at key.
func (s *Service) indexed(ctx context.Context, key string) ([]string, error) {
	var names []string
	from := "-"
	for {
		members, err := s.st.RangeLex(ctx, key, from, "+", 1000)
		if err != nil {
			return nil, err
		}
		for _, m := range members {
			names = append(names, listing.MemberName(m))
		}
		if len(members) < 1000 {
			return names, nil
		}
		from = "(" + members[len(members)-1]
	}
}

// holderErased says whether the participant was erased.
func (s *Service) holderErased(ctx context.Context, pid string) (bool, error) {
	v, err := s.rdb.HGet(ctx, holderKey(pid), "erased").Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, s.st.Err(ctx, err)
	}
	return v == "1", nil
}
