package councils

import (
	"context"
	"errors"

	"github.com/google/uuid"
	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/masks"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"go.einride.tech/aip/filtering"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var (
	needMutable = []string{"title", "description", "skills", "headcount", "target_groups", "municipalities",
		"priority", "needed_by", "rationale", "requested_by"}
	needIgnored = []string{"name", "state", "state_reason", "create_time", "update_time", "submit_time", "etag"}
)

func newNeed() *councilsv1.CompetenceNeed { return &councilsv1.CompetenceNeed{} }

// checkNeed is the domain validation of a need as it will be stored.
func checkNeed(v *apierr.Violations, n *councilsv1.CompetenceNeed, council *councilsv1.SectorCouncil) {
	checkMunicipalities(v, "need.municipalities", n.GetMunicipalities(), council.GetMunicipalities())
	checkDate(v, "need.needed_by", n.GetNeededBy())
}

// CreateNeed implements councilsv1.CouncilsServiceServer.
func (s *Service) CreateNeed(ctx context.Context, req *councilsv1.CreateNeedRequest) (*councilsv1.CompetenceNeed, error) {
	councilID, err := parseCouncilName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	id := req.GetNeedId()
	if id == "" {
		id = uuid.NewString()
	}
	fingerprint := store.Fingerprint(req)
	// Retried when the council changes between reading it and writing the
	// need: its municipalities decide what the need may ask for.
	for range 20 {
		council, err := s.loadCouncil(ctx, councilID)
		if err != nil {
			return nil, err
		}
		n := proto.CloneOf(req.GetNeed())
		var v apierr.Violations
		checkNeed(&v, n, council)
		if err := v.Err(); err != nil {
			return nil, err
		}
		now := timestamppb.New(s.now())
		n.Name, n.CreateTime, n.UpdateTime = needName(councilID, id), now, now
		n.State, n.StateReason, n.SubmitTime = councilsv1.CompetenceNeed_STATE_DRAFT, "", nil
		if n.Priority == councilsv1.Priority_PRIORITY_UNSPECIFIED {
			n.Priority = councilsv1.Priority_PRIORITY_MEDIUM
		}

		tx := s.st.Tx()
		if req.GetRequestId() != "" {
			tx.Idempotent(idemKey("need", councilID, req.GetRequestId()), n.GetName(), fingerprint)
		}
		tx.EtagIs(councilKey(councilID), council.GetEtag(), nil)
		tx.MustNotExist(needKey(councilID, id), status.Errorf(codes.AlreadyExists, "%s already exists", n.GetName()))
		if err := tx.Put(needKey(councilID, id), n); err != nil {
			return nil, err
		}
		s.indexNeed(tx, n, council)
		tx.SAdd(openNeedsKey(councilID), id)
		tx.Emit("need.created", n.GetName(), n)
		replay, err := tx.Commit(ctx)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if replay != nil {
			return s.GetNeed(ctx, &councilsv1.GetNeedRequest{Name: replay.Name})
		}
		return n, nil
	}
	return nil, status.Errorf(codes.Aborted, "%s kept changing while the need was created; retry", req.GetParent())
}

// GetNeed implements councilsv1.CouncilsServiceServer.
func (s *Service) GetNeed(ctx context.Context, req *councilsv1.GetNeedRequest) (*councilsv1.CompetenceNeed, error) {
	c, id, err := parseNeedName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	n := newNeed()
	if err := s.st.Get(ctx, needKey(c, id), n); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.NotFound(req.GetName())
		}
		return nil, err
	}
	return n, nil
}

var needFilter = mustDecls(
	filtering.DeclareStandardFunctions(),
	filtering.DeclareEnumIdent("state", councilsv1.CompetenceNeed_State(0).Type()),
	filtering.DeclareEnumIdent("priority", councilsv1.Priority(0).Type()),
	filtering.DeclareEnumIdent("sector", commonv1.Sector(0).Type()),
	filtering.DeclareIdent("municipalities", filtering.TypeList(filtering.TypeString)),
)

// needRow is a need with what list filters need from its council.
type needRow struct {
	need    *councilsv1.CompetenceNeed
	council *councilsv1.SectorCouncil // nil once the council is deleted
}

func needValues(r needRow, field string) []string {
	switch field {
	case "state":
		return []string{r.need.GetState().String()}
	case "priority":
		return []string{r.need.GetPriority().String()}
	case "sector":
		return []string{r.council.GetSector().String()}
	case "municipalities":
		// A need that names no municipality is for all of its council's.
		if len(r.need.GetMunicipalities()) == 0 {
			return r.council.GetMunicipalities()
		}
		return r.need.GetMunicipalities()
	}
	return nil
}

func needRowName(r needRow) string { return r.need.GetName() }

// ListNeeds implements councilsv1.CouncilsServiceServer.
func (s *Service) ListNeeds(ctx context.Context, req *councilsv1.ListNeedsRequest) (*councilsv1.ListNeedsResponse, error) {
	lr := listing.Request{
		Method: "ListNeeds", Parent: req.GetParent(), Filter: req.GetFilter(), OrderBy: req.GetOrderBy(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(),
	}
	if req.GetParent() != "councils/-" {
		councilID, err := parseCouncilName("parent", req.GetParent())
		if err != nil {
			return nil, err
		}
		if _, err := s.loadCouncil(ctx, councilID); err != nil {
			return nil, err
		}
		lr.Where = map[string]string{"parent": req.GetParent()}
	}
	page, err := s.needLister().List(ctx, lr)
	if err != nil {
		return nil, err
	}
	resp := &councilsv1.ListNeedsResponse{NextPageToken: page.Next, TotalSize: page.TotalSize()}
	for _, r := range page.Items {
		resp.Needs = append(resp.Needs, r.need)
	}
	return resp, nil
}

// UpdateNeed implements councilsv1.CouncilsServiceServer.
func (s *Service) UpdateNeed(ctx context.Context, req *councilsv1.UpdateNeedRequest) (*councilsv1.CompetenceNeed, error) {
	in := req.GetNeed()
	if in == nil {
		return nil, apierr.Field("need", "is required")
	}
	councilID, id, err := parseNeedName("need.name", in.GetName())
	if err != nil {
		return nil, err
	}
	key := needKey(councilID, id)
	return store.Update(ctx, s.st, key, in.GetName(), in.GetEtag(), newNeed,
		func(cur *councilsv1.CompetenceNeed, tx *store.Tx) error {
			if cur.GetState() != councilsv1.CompetenceNeed_STATE_DRAFT {
				return wrongState(cur, "edit", councilsv1.CompetenceNeed_STATE_DRAFT)
			}
			before := proto.CloneOf(cur)
			if err := masks.Apply(req.GetUpdateMask(), cur, in, needMutable, needIgnored); err != nil {
				return err
			}
			if proto.Equal(before, cur) {
				return store.ErrUnchanged
			}
			council, err := s.loadCouncil(ctx, councilID)
			if err != nil {
				return err
			}
			var v apierr.Violations
			if err := s.checkRules(&v, cur, "need"); err != nil {
				return err
			}
			checkNeed(&v, cur, council)
			if err := v.Err(); err != nil {
				return err
			}
			if cur.Priority == councilsv1.Priority_PRIORITY_UNSPECIFIED {
				cur.Priority = councilsv1.Priority_PRIORITY_MEDIUM
			}
			// The council's municipalities bound the need's: both must be
			// as read when the write lands.
			tx.EtagIs(councilKey(councilID), council.GetEtag(), nil)
			cur.UpdateTime = timestamppb.New(s.now())
			if err := tx.Put(key, cur); err != nil {
				return err
			}
			s.indexNeed(tx, cur, council)
			tx.Emit("need.updated", cur.GetName(), cur)
			return nil
		})
}
