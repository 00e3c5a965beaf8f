package enrolment

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/enrolment/pii"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/masks"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/sweden"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var (
	participantMutable = []string{"personal_identity_number", "given_name", "family_name", "gender", "municipality",
		"labour_market_status", "employer", "education_level"}
	participantIgnored = []string{"name", "birth_date", "employer_council", "create_time", "update_time", "etag", "state", "erase_time"}
)

const (
	viewBasic = enrolmentv1.Participant_BASIC
	viewFull  = enrolmentv1.Participant_FULL
)

func newParticipant() *enrolmentv1.Participant { return &enrolmentv1.Participant{} }

// errDuplicatePerson fails a write whose personal identity number another
// participant has.
var errDuplicatePerson = errors.New("personal identity number registered")

// duplicatePerson is ALREADY_EXISTS naming the participant whose number
// has the blind index bi; never the number.
func (s *Service) duplicatePerson(ctx context.Context, field, bi string) error {
	id, err := s.rdb.HGet(ctx, blindKey(bi), fieldRef).Result()
	if err != nil {
		return status.Error(codes.Aborted, "the personal identity number was registered and released meanwhile; retry")
	}
	return status.Errorf(codes.AlreadyExists, "%s: this personal identity number is registered already, as %s", field, participantName(id))
}

// parsePersonal checks a personal identity number, naming field; the
// message never repeats the number.
func (s *Service) parsePersonal(v *apierr.Violations, field, number string) sweden.PersonalIdentityNumber {
	if strings.TrimSpace(number) == "" {
		v.Add(field, "is required: a personnummer or samordningsnummer (YYYYMMDD-NNNN, YYMMDD-NNNN, …)")
		return sweden.PersonalIdentityNumber{}
	}
	today := s.now().In(s.stockholm)
	p, err := sweden.ParsePersonalIdentityNumber(number, time.Date(today.Year(), today.Month(), today.Day(), 12, 0, 0, 0, time.UTC))
	if err != nil {
		v.Add(field, "%v", err)
	}
	return p
}

// mayViewFull refuses the FULL view to anyone but staff.
func mayViewFull(ctx context.Context, view enrolmentv1.Participant_View) error {
	if view != viewFull {
		return nil
	}
	if p := auth.FromContext(ctx); p == nil || p.GetRole() != auth.Staff {
		return status.Error(codes.PermissionDenied, "only staff may see a participant's personal data in full (view FULL)")
	}
	return nil
}

// sealed is a participant as stored: the pseudonymous resource (every
// sensitive field cleared) and its personal data sealed apart.
type sealed struct {
	stored *enrolmentv1.Participant
	pii    []byte
	blind  string // the number's blind index
}

// seal splits a participant (with its checked number) into what is
// stored. The ciphertext is bound to the participant's name.
func (s *Service) seal(full *enrolmentv1.Participant, number sweden.PersonalIdentityNumber) (sealed, error) {
	stored := proto.CloneOf(full)
	auth.Redact(stored) // the number, the names, the birth date
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&enrolmentv1.ParticipantPersonalData{
		PersonalIdentityNumber: number.Normalised(), GivenName: full.GetGivenName(), FamilyName: full.GetFamilyName(),
	})
	if err != nil {
		return sealed{}, err
	}
	return sealed{
		stored: stored,
		pii:    s.keys.Seal(b, []byte(full.GetName())),
		blind:  s.keys.BlindIndex(blindUsePersonal, number.Normalised()),
	}, nil
}

// open unseals a participant's personal data.
func (s *Service) open(ctx context.Context, stored *enrolmentv1.Participant, b []byte) (*enrolmentv1.ParticipantPersonalData, error) {
	if len(b) == 0 {
		s.log.ErrorContext(ctx, "participant without personal data", "participant", stored.GetName())
		return nil, status.Errorf(codes.DataLoss, "the personal data of %s is missing", stored.GetName())
	}
	plain, err := s.keys.Open(b, []byte(stored.GetName()))
	if err != nil {
		s.log.ErrorContext(ctx, "personal data does not open", "participant", stored.GetName(), "key_id", pii.KeyOf(b), "error", err)
		if errors.Is(err, pii.ErrUnknownKey) {
			return nil, status.Errorf(codes.DataLoss, "the personal data of %s was encrypted with key %s, which this service is not configured with",
				stored.GetName(), pii.KeyOf(b))
		}
		return nil, status.Errorf(codes.DataLoss, "the personal data of %s could not be decrypted", stored.GetName())
	}
	pd := &enrolmentv1.ParticipantPersonalData{}
	if err := proto.Unmarshal(plain, pd); err != nil || len(pd.GetPersonalIdentityNumber()) != 12 {
		return nil, status.Errorf(codes.DataLoss, "the personal data of %s could not be read", stored.GetName())
	}
	return pd, nil
}

// present is the participant a response shows: the stored fields and the
// personal data as view allows.
func present(stored *enrolmentv1.Participant, pd *enrolmentv1.ParticipantPersonalData, view enrolmentv1.Participant_View) *enrolmentv1.Participant {
	out := proto.CloneOf(stored)
	if out.GetState() == enrolmentv1.Participant_STATE_UNSPECIFIED {
		out.State = participantActive // stored before participants had states
	}
	d := pd.GetPersonalIdentityNumber() // YYYYMMDDNNNN
	out.BirthDate = birthDate(d)
	out.GivenName = pd.GetGivenName()
	if view == viewFull {
		out.PersonalIdentityNumber = d[:8] + "-" + d[8:]
		out.FamilyName = pd.GetFamilyName()
	} else {
		out.PersonalIdentityNumber = d[:8] + "-****"
		out.FamilyName = initial(pd.GetFamilyName())
	}
	return out
}

// birthDate is the date in a normalised number (a samordningsnummer's day
// less 60).
func birthDate(d string) *date.Date {
	n := func(s string) int32 {
		v := int32(0)
		for _, c := range s {
			v = v*10 + c - '0'
		}
		return v
	}
	day := n(d[6:8])
	if day > 60 {
		day -= 60
	}
	return &date.Date{Year: n(d[:4]), Month: n(d[4:6]), Day: day}
}

// initial is a family name shortened to its first letter: "Öberg" → "Ö.".
func initial(name string) string {
	for _, r := range name {
		if unicode.IsLetter(r) {
			return string(unicode.ToUpper(r)) + "."
		}
	}
	if r, _ := utf8.DecodeRuneInString(name); r != utf8.RuneError {
		return string(r) + "."
	}
	return ""
}

// employerCouncil checks an employer with the companies service and
// returns its sector council.
func (s *Service) employerCouncil(ctx context.Context, field, employer string) (string, error) {
	if employer == "" {
		return "", nil
	}
	c, err := s.companies.Company(ctx, employer)
	if errors.Is(err, ErrNotFound) {
		return "", apierr.Field(field, "%s does not exist", employer)
	}
	if err != nil {
		return "", err
	}
	return c.Council, nil
}

// CreateParticipant implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) CreateParticipant(ctx context.Context, req *enrolmentv1.CreateParticipantRequest) (*enrolmentv1.Participant, error) {
	in := req.GetParticipant()
	var v apierr.Violations
	if sixDigitsRE.MatchString(req.GetParticipantId()) {
		v.Add("participant_id", "must not hold six or more digits in a row (an id is not encrypted, so it may not carry a personal identity number or a birth date)")
	}
	number := s.parsePersonal(&v, "participant.personal_identity_number", in.GetPersonalIdentityNumber())
	checkMunicipality(&v, "participant.municipality", in.GetMunicipality())
	if err := v.Err(); err != nil {
		return nil, err
	}
	council, err := s.employerCouncil(ctx, "participant.employer", in.GetEmployer())
	if err != nil {
		return nil, err
	}
	id := req.GetParticipantId()
	if id == "" {
		id = uuid.NewString()
	}
	full := proto.CloneOf(in)
	now := timestamppb.New(s.now())
	full.Name, full.CreateTime, full.UpdateTime = participantName(id), now, now
	full.EmployerCouncil, full.BirthDate = council, nil
	full.State, full.EraseTime = participantActive, nil
	sp, err := s.seal(full, number)
	if err != nil {
		return nil, err
	}
	key := participantKey(id)
	tx := s.st.Tx()
	if req.GetRequestId() != "" {
		// Keyed: a plain hash of a request holding a personal identity
		// number could be reversed by trying every number.
		tx.Idempotent(idemKey("participant", req.GetRequestId()), full.GetName(), s.keys.Fingerprint(req))
	}
	tx.MustNotExist(key, status.Errorf(codes.AlreadyExists, "%s already exists", full.GetName()))
	tx.MustNotExist(blindKey(sp.blind), errDuplicatePerson)
	if err := tx.Put(key, sp.stored); err != nil {
		return nil, err
	}
	tx.HSet(key, fieldPII, sp.pii)
	tx.HSet(blindKey(sp.blind), fieldRef, id)
	tx.SetIndex(key, participantIndex.Entries(Keyspace, sp.stored))
	tx.Emit("participant.created", full.GetName(), sp.stored)
	replay, err := tx.Commit(ctx)
	switch {
	case errors.Is(err, errDuplicatePerson):
		return nil, s.duplicatePerson(ctx, "participant.personal_identity_number", sp.blind)
	case err != nil:
		return nil, err
	case replay != nil:
		return s.GetParticipant(ctx, &enrolmentv1.GetParticipantRequest{Name: replay.Name})
	}
	return present(sp.stored, &enrolmentv1.ParticipantPersonalData{
		PersonalIdentityNumber: number.Normalised(), GivenName: full.GetGivenName(), FamilyName: full.GetFamilyName(),
	}, viewBasic), nil
}

// GetParticipant implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) GetParticipant(ctx context.Context, req *enrolmentv1.GetParticipantRequest) (*enrolmentv1.Participant, error) {
	if err := mayViewFull(ctx, req.GetView()); err != nil {
		return nil, err
	}
	ps, err := s.loadParticipants(ctx, []string{req.GetName()}, req.GetView())
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, apierr.NotFound(req.GetName())
	}
	return ps[0], nil
}

// storedParticipant is a participant as read: the stored resource and its
// sealed personal data.
type storedParticipant struct {
	p   *enrolmentv1.Participant
	pii []byte
}

// readParticipants reads participants by name in one round trip, skipping
// missing ones.
func (s *Service) readParticipants(ctx context.Context, names []string) ([]storedParticipant, error) {
	type read struct {
		cmd *redis.SliceCmd
		key string
	}
	reads := make([]read, 0, len(names))
	pipe := s.rdb.Pipeline()
	for _, n := range names {
		if id, err := parseParticipantName("", n); err == nil {
			reads = append(reads, read{pipe.HMGet(ctx, participantKey(id), "pb", fieldPII), participantKey(id)})
		}
	}
	if len(reads) == 0 {
		return nil, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.st.Err(ctx, err)
	}
	out := make([]storedParticipant, 0, len(reads))
	for _, r := range reads {
		vals := r.cmd.Val()
		b, ok := vals[0].(string)
		if !ok {
			continue
		}
		p := newParticipant()
		if err := s.unmarshal(ctx, r.key, []byte(b), p); err != nil {
			return nil, err
		}
		sealedPII, _ := vals[1].(string)
		out = append(out, storedParticipant{p: p, pii: []byte(sealedPII)})
	}
	return out, nil
}

// loadParticipants reads participants and shows them as view allows.
func (s *Service) loadParticipants(ctx context.Context, names []string, view enrolmentv1.Participant_View) ([]*enrolmentv1.Participant, error) {
	read, err := s.readParticipants(ctx, names)
	if err != nil {
		return nil, err
	}
	out := make([]*enrolmentv1.Participant, 0, len(read))
	for _, r := range read {
		if erased(r.p) {
			out = append(out, erasedView(r.p))
			continue
		}
		pd, err := s.open(ctx, r.p, r.pii)
		if err != nil {
			return nil, err
		}
		out = append(out, present(r.p, pd, view))
	}
	return out, nil
}

// ListParticipants implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) ListParticipants(ctx context.Context, req *enrolmentv1.ListParticipantsRequest) (*enrolmentv1.ListParticipantsResponse, error) {
	if err := mayViewFull(ctx, req.GetView()); err != nil {
		return nil, err
	}
	page, err := s.participantLister(req.GetView()).List(ctx, listing.Request{
		// The view is part of the scope: a token of a BASIC list does not
		// page a FULL one.
		Method: "ListParticipants", Parent: req.GetView().String(), Filter: req.GetFilter(), OrderBy: req.GetOrderBy(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	return &enrolmentv1.ListParticipantsResponse{Participants: page.Items, NextPageToken: page.Next, TotalSize: page.TotalSize()}, nil
}

// LookupParticipant implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) LookupParticipant(ctx context.Context, req *enrolmentv1.LookupParticipantRequest) (*enrolmentv1.Participant, error) {
	if err := mayViewFull(ctx, req.GetView()); err != nil {
		return nil, err
	}
	var v apierr.Violations
	number := s.parsePersonal(&v, "personal_identity_number", req.GetPersonalIdentityNumber())
	if err := v.Err(); err != nil {
		return nil, err
	}
	id, err := s.rdb.HGet(ctx, blindKey(s.keys.BlindIndex(blindUsePersonal, number.Normalised())), fieldRef).Result()
	if errors.Is(err, redis.Nil) {
		return nil, status.Error(codes.NotFound, "no participant has that personal identity number")
	}
	if err != nil {
		return nil, s.st.Err(ctx, err)
	}
	p, err := s.GetParticipant(ctx, &enrolmentv1.GetParticipantRequest{Name: participantName(id), View: req.GetView()})
	if status.Code(err) == codes.NotFound {
		return nil, status.Error(codes.NotFound, "no participant has that personal identity number")
	}
	return p, err
}

// UpdateParticipant implements enrolmentv1.EnrolmentServiceServer.
//
// The participant is edited in full (its personal data opened) and sealed
// again with the current key. A masked value sent back from a BASIC read
// (`19640823-****`, a family name's initial) leaves that field as it is,
// so a client may send back what it read.
func (s *Service) UpdateParticipant(ctx context.Context, req *enrolmentv1.UpdateParticipantRequest) (*enrolmentv1.Participant, error) {
	in := req.GetParticipant()
	if in == nil {
		return nil, apierr.Field("participant", "is required")
	}
	id, err := parseParticipantName("participant.name", in.GetName())
	if err != nil {
		return nil, err
	}
	key := participantKey(id)
	for range 20 {
		read, err := s.readParticipants(ctx, []string{in.GetName()})
		if err != nil {
			return nil, err
		}
		if len(read) == 0 {
			return nil, apierr.NotFound(in.GetName())
		}
		cur := read[0].p
		if erased(cur) {
			return nil, refuseErased(cur)
		}
		if in.GetEtag() != "" && in.GetEtag() != cur.GetEtag() {
			return nil, apierr.Aborted(in.GetName())
		}
		pd, err := s.open(ctx, cur, read[0].pii)
		if err != nil {
			return nil, err
		}
		tx := s.st.Tx()
		tx.EtagIs(key, cur.GetEtag(), nil)
		result, blind, err := s.editParticipant(ctx, req, cur, pd, tx)
		if errors.Is(err, store.ErrUnchanged) {
			return result, nil
		}
		if err != nil {
			return nil, err
		}
		_, err = tx.Commit(ctx)
		switch {
		case errors.Is(err, store.ErrConflict) && in.GetEtag() != "":
			return nil, apierr.Aborted(in.GetName())
		case errors.Is(err, store.ErrConflict):
			continue
		case errors.Is(err, errDuplicatePerson):
			return nil, s.duplicatePerson(ctx, "participant.personal_identity_number", blind)
		case err != nil:
			return nil, err
		}
		return result, nil
	}
	return nil, apierr.Aborted(in.GetName())
}

// editParticipant applies an update to a participant as read (cur, its
// personal data pd) and adds its writes to tx. It returns what the
// response shows, the blind index of the number it will have, and
// store.ErrUnchanged when the update changes nothing.
func (s *Service) editParticipant(ctx context.Context, req *enrolmentv1.UpdateParticipantRequest, cur *enrolmentv1.Participant,
	pd *enrolmentv1.ParticipantPersonalData, tx *store.Tx) (*enrolmentv1.Participant, string, error) {
	id := strings.TrimPrefix(cur.GetName(), "participants/")
	key := participantKey(id)
	before := present(cur, pd, viewFull)
	shown := present(cur, pd, viewBasic)
	edit := proto.CloneOf(req.GetParticipant())
	if edit.GetPersonalIdentityNumber() == shown.GetPersonalIdentityNumber() {
		edit.PersonalIdentityNumber = before.GetPersonalIdentityNumber()
	}
	if edit.GetFamilyName() == shown.GetFamilyName() && before.GetFamilyName() != shown.GetFamilyName() {
		edit.FamilyName = before.GetFamilyName()
	}
	full := proto.CloneOf(before)
	if err := masks.Apply(req.GetUpdateMask(), full, edit, participantMutable, participantIgnored); err != nil {
		return nil, "", err
	}
	var v apierr.Violations
	if err := s.checkRules(&v, full, "participant"); err != nil {
		return nil, "", err
	}
	number := s.parsePersonal(&v, "participant.personal_identity_number", full.GetPersonalIdentityNumber())
	checkMunicipality(&v, "participant.municipality", full.GetMunicipality())
	if err := v.Err(); err != nil {
		return nil, "", err
	}
	full.PersonalIdentityNumber = number.Normalised()[:8] + "-" + number.Normalised()[8:]
	if proto.Equal(before, full) {
		return shown, "", store.ErrUnchanged
	}
	if full.GetEmployer() != before.GetEmployer() {
		council, err := s.employerCouncil(ctx, "participant.employer", full.GetEmployer())
		if err != nil {
			return nil, "", err
		}
		full.EmployerCouncil = council
	}
	full.UpdateTime, full.BirthDate = timestamppb.New(s.now()), nil
	sp, err := s.seal(full, number)
	if err != nil {
		return nil, "", err
	}
	if oldBlind := s.keys.BlindIndex(blindUsePersonal, pd.GetPersonalIdentityNumber()); oldBlind != sp.blind {
		tx.MustNotExist(blindKey(sp.blind), errDuplicatePerson)
		tx.Del(blindKey(oldBlind))
		tx.HSet(blindKey(sp.blind), fieldRef, id)
	}
	if err := tx.Put(key, sp.stored); err != nil {
		return nil, "", err
	}
	tx.HSet(key, fieldPII, sp.pii)
	tx.SetIndex(key, participantIndex.Entries(Keyspace, sp.stored))
	tx.Emit("participant.updated", cur.GetName(), sp.stored)
	return present(sp.stored, &enrolmentv1.ParticipantPersonalData{
		PersonalIdentityNumber: number.Normalised(), GivenName: full.GetGivenName(), FamilyName: full.GetFamilyName(),
	}, viewBasic), sp.blind, nil
}
