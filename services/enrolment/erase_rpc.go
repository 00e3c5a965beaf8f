package enrolment

import (
	"context"
	"errors"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// fieldErasure is the erased participant's hash field holding its
// ErasureRecord.
const fieldErasure = "erasure"

const (
	participantActive = enrolmentv1.Participant_STATE_ACTIVE
	participantErased = enrolmentv1.Participant_STATE_ERASED
)

// erasedView is all a response (and the participant.erased event) shows
// of an erased participant.
func erasedView(p *enrolmentv1.Participant) *enrolmentv1.Participant {
	return &enrolmentv1.Participant{Name: p.GetName(), State: participantErased, EraseTime: p.GetEraseTime(), CreateTime: p.GetCreateTime()}
}

// refuseErased is FAILED_PRECONDITION for a change to an erased
// participant.
func refuseErased(p *enrolmentv1.Participant) error {
	return refuse("PARTICIPANT_ERASED", p.GetName(), "%s was erased; nothing new is recorded about them", p.GetName())
}

// EraseParticipant implements enrolmentv1.EnrolmentServiceServer.
//
// One atomic step, conditioned on the participant and each enrolment
// changed being as read: the participant's hash is rewritten with only
// the pseudonymous statistical fields (gender, municipality,
// labour-market status, ISCED level, employer's council) and the state,
// so the sealed personal data goes with the old hash; the blind-index key
// goes, so the number may register again; the employer reference goes
// (with the council kept, the reports need no more, and a small employer
// could point to the person); withdrawal reasons of their enrolments go
// (free text that may be personal). The enrolments, their snapshots, their
// attendance and the outcomes stay: they hold nothing that identifies the
// person and are what the reports count. Events about the participant
// never carried personal data (only the pseudonymous fields), so the
// stream has nothing to rewrite.
func (s *Service) EraseParticipant(ctx context.Context, req *enrolmentv1.EraseParticipantRequest) (*enrolmentv1.Participant, error) {
	id, err := parseParticipantName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	key := participantKey(id)
	for attempt := range 20 {
		backoff(ctx, attempt)
		read, err := s.readParticipants(ctx, []string{req.GetName()})
		if err != nil {
			return nil, err
		}
		if len(read) == 0 {
			return nil, apierr.NotFound(req.GetName())
		}
		cur := read[0].p
		if erased(cur) {
			return erasedView(cur), nil // erasing again changes nothing
		}
		blind, err := s.blindOf(ctx, id, cur, read[0].pii)
		if err != nil {
			return nil, err
		}
		es, err := s.participantEnrolments(ctx, req.GetName())
		if err != nil {
			return nil, err
		}

		now := timestamppb.New(s.now())
		kept := &enrolmentv1.Participant{
			Name: cur.GetName(), Gender: cur.GetGender(), Municipality: cur.GetMunicipality(),
			LabourMarketStatus: cur.GetLabourMarketStatus(), EducationLevel: cur.GetEducationLevel(),
			EmployerCouncil: cur.GetEmployerCouncil(), CreateTime: cur.GetCreateTime(), UpdateTime: now,
			State: participantErased, EraseTime: now,
		}
		p := auth.FromContext(ctx)
		record, err := deterministic.Marshal(&enrolmentv1.ErasureRecord{Reason: req.GetReason(), EraseTime: now,
			Principal: p.GetId(), Role: p.GetRole().String()})
		if err != nil {
			return nil, err
		}
		tx := s.st.Tx()
		tx.EtagIs(key, cur.GetEtag(), nil)
		// The whole hash goes (the sealed data with it) and is written anew.
		tx.DropIndex(key)
		tx.Del(key)
		if err := tx.Put(key, kept); err != nil {
			return nil, err
		}
		tx.SetIndex(key, participantIndex.Entries(Keyspace, kept))
		tx.HSet(key, fieldErasure, record)
		if blind != "" {
			tx.Del(blindKey(blind))
		}
		for _, e := range es {
			// Every enrolment as read, so that a withdrawal (with a reason)
			// landing meanwhile makes this read again.
			o, eid, _ := parseEnrolmentName("", e.GetName())
			tx.EtagIs(enrolmentKey(o, eid), e.GetEtag(), nil)
			if e.GetWithdrawReason() == "" {
				continue
			}
			e.WithdrawReason = ""
			if err := tx.Put(enrolmentKey(o, eid), e); err != nil {
				return nil, err
			}
		}
		tx.Emit("participant.erased", kept.GetName(), &enrolmentv1.Participant{Name: kept.GetName(), State: participantErased, EraseTime: now})
		if _, err := tx.Commit(ctx); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return nil, err
		}
		return erasedView(kept), nil
	}
	return nil, status.Errorf(codes.Aborted, "%s kept changing while it was erased; retry", req.GetName())
}

// blindOf is the blind index of a participant's number: from its sealed
// data, or, when that cannot be opened (sealed with a key no longer
// configured, or missing), found by reading the blind-index keys for the
// one that points to the participant, so that erasure never leaves it
// behind. "" when there is none.
func (s *Service) blindOf(ctx context.Context, id string, p *enrolmentv1.Participant, sealedPII []byte) (string, error) {
	if pd, err := s.open(ctx, p, sealedPII); err == nil {
		return s.keys.BlindIndex(blindUsePersonal, pd.GetPersonalIdentityNumber()), nil
	}
	found := ""
	prefix := len(blindKey(""))
	err := s.st.Scan(ctx, blindKey("*"), func(keys []string) error {
		for _, k := range keys {
			if ref, err := s.rdb.HGet(ctx, k, fieldRef).Result(); err == nil && ref == id {
				found = k[prefix:]
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return found, nil
}
