package skills

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func newValidation() *skillsv1.IndustryValidation { return &skillsv1.IndustryValidation{} }

func resultSkills(v *skillsv1.IndustryValidation) []string {
	out := make([]string, len(v.GetResults()))
	for i, r := range v.GetResults() {
		out[i] = r.GetSkill()
	}
	return out
}

// CreateValidation implements skillsv1.SkillsServiceServer.
func (s *Service) CreateValidation(ctx context.Context, req *skillsv1.CreateValidationRequest) (*skillsv1.IndustryValidation, error) {
	val := proto.CloneOf(req.GetValidation())
	for _, r := range val.GetResults() {
		r.ReplacedBy = ""
	}
	var v apierr.Violations
	checkPersonReference(&v, "validation.person_reference", val.GetPersonReference())
	if checkDate(&v, "validation.assessed_on", val.GetAssessedOn()) {
		s.checkNotFuture(&v, "validation.assessed_on", val.GetAssessedOn())
	}
	if err := s.checkSkillRefs(ctx, &v, resultSkills(val), func(i int) string { return fmt.Sprintf("validation.results[%d].skill", i) }); err != nil {
		return nil, err
	}
	mappingID, err := parseMappingName("validation.mapping", val.GetMapping())
	if err != nil {
		return nil, err
	}
	if _, err := s.loadMapping(ctx, mappingID); status.Code(err) == codes.NotFound {
		v.Add("validation.mapping", "%s does not exist", val.GetMapping())
	} else if err != nil {
		return nil, err
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	id := req.GetValidationId()
	if id == "" {
		id = uuid.NewString()
	}
	val.Name, val.CreateTime, val.PersonErased = validationName(id), timestamppb.New(s.now()), false

	tx := s.st.Tx()
	if req.GetRequestId() != "" {
		tx.Idempotent(idemKey("validation", req.GetRequestId()), val.GetName(), store.Fingerprint(req))
	}
	// The mapping may be deleted meanwhile: then this is refused, and a
	// delete that comes after finds the validation and is refused.
	tx.MustExist(mappingKey(mappingID), apierr.Field("validation.mapping", "%s does not exist", val.GetMapping()))
	tx.MustNotExist(validationKey(id), status.Errorf(codes.AlreadyExists, "%s already exists", val.GetName()))
	if pid := participantID(val.GetPersonReference()); pid != "" {
		// Never again a validation naming an erased participant
		// (enrolment_events.go).
		tx.AtMost(holderKey(pid), "erased", 0, 0, wrongState(val.GetPersonReference(), "ERASED",
			val.GetPersonReference()+" was erased (GDPR): no validation may name them"))
	}
	if err := tx.Put(validationKey(id), val); err != nil {
		return nil, err
	}
	s.indexValidation(tx, val)
	tx.SAdd(mappingValidationsKey(mappingID), id)
	tx.Emit("validation.created", val.GetName(), eventCopy(val))
	replay, err := tx.Commit(ctx)
	if err != nil {
		return nil, err
	}
	if replay != nil {
		return s.GetValidation(ctx, &skillsv1.GetValidationRequest{Name: replay.Name})
	}
	return val, s.showSuccessors(ctx, val)
}

func (s *Service) loadValidation(ctx context.Context, id string) (*skillsv1.IndustryValidation, error) {
	val := newValidation()
	if err := s.st.Get(ctx, validationKey(id), val); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.NotFound(validationName(id))
		}
		return nil, err
	}
	return val, nil
}

// GetValidation implements skillsv1.SkillsServiceServer.
func (s *Service) GetValidation(ctx context.Context, req *skillsv1.GetValidationRequest) (*skillsv1.IndustryValidation, error) {
	id, err := parseValidationName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	val, err := s.loadValidation(ctx, id)
	if err != nil {
		return nil, err
	}
	return val, s.showSuccessors(ctx, val)
}

// ListValidations implements skillsv1.SkillsServiceServer.
func (s *Service) ListValidations(ctx context.Context, req *skillsv1.ListValidationsRequest) (*skillsv1.ListValidationsResponse, error) {
	page, err := s.validationLister().List(ctx, listing.Request{
		Method: "ListValidations", Filter: req.GetFilter(), OrderBy: req.GetOrderBy(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	if err := showSuccessorsOf(ctx, s, page.Items); err != nil {
		return nil, err
	}
	return &skillsv1.ListValidationsResponse{Validations: page.Items, NextPageToken: page.Next, TotalSize: page.TotalSize()}, nil
}
