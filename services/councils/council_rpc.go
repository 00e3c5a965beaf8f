package councils

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/google/uuid"
	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/masks"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"go.einride.tech/aip/filtering"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var (
	councilMutable = []string{"display_name", "sector", "member_organisations", "contact_email", "municipalities"}
	councilIgnored = []string{"name", "create_time", "update_time", "etag"}
)

func newCouncil() *councilsv1.SectorCouncil { return &councilsv1.SectorCouncil{} }

// CreateCouncil implements councilsv1.CouncilsServiceServer.
func (s *Service) CreateCouncil(ctx context.Context, req *councilsv1.CreateCouncilRequest) (*councilsv1.SectorCouncil, error) {
	c := proto.CloneOf(req.GetCouncil())
	if len(c.Municipalities) == 0 {
		c.Municipalities = append([]string(nil), s.region...)
	}
	var v apierr.Violations
	checkMunicipalities(&v, "council.municipalities", c.GetMunicipalities(), nil)
	if err := v.Err(); err != nil {
		return nil, err
	}
	id := req.GetCouncilId()
	if id == "" {
		id = uuid.NewString()
	}
	now := timestamppb.New(s.now())
	c.Name, c.CreateTime, c.UpdateTime = councilName(id), now, now

	tx := s.st.Tx()
	if req.GetRequestId() != "" {
		tx.Idempotent(idemKey("council", req.GetRequestId()), c.GetName(), store.Fingerprint(req))
	}
	tx.MustNotExist(councilKey(id), status.Errorf(codes.AlreadyExists, "%s already exists", c.GetName()))
	if err := tx.Put(councilKey(id), c); err != nil {
		return nil, err
	}
	s.indexCouncil(tx, c)
	tx.Emit("council.created", c.GetName(), c)
	replay, err := tx.Commit(ctx)
	if err != nil {
		return nil, err
	}
	if replay != nil {
		return s.GetCouncil(ctx, &councilsv1.GetCouncilRequest{Name: replay.Name})
	}
	return c, nil
}

// GetCouncil implements councilsv1.CouncilsServiceServer.
func (s *Service) GetCouncil(ctx context.Context, req *councilsv1.GetCouncilRequest) (*councilsv1.SectorCouncil, error) {
	id, err := parseCouncilName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	return s.loadCouncil(ctx, id)
}

func (s *Service) loadCouncil(ctx context.Context, id string) (*councilsv1.SectorCouncil, error) {
	c := newCouncil()
	if err := s.st.Get(ctx, councilKey(id), c); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.NotFound(councilName(id))
		}
		return nil, err
	}
	return c, nil
}

var councilFilter = mustDecls(
	filtering.DeclareStandardFunctions(),
	filtering.DeclareEnumIdent("sector", commonv1.Sector(0).Type()),
	filtering.DeclareIdent("municipalities", filtering.TypeList(filtering.TypeString)),
	filtering.DeclareIdent("display_name", filtering.TypeString),
)

func mustDecls(opts ...filtering.DeclarationOption) *filtering.Declarations {
	d, err := filtering.NewDeclarations(opts...)
	if err != nil {
		panic(err)
	}
	return d
}

func councilValues(c *councilsv1.SectorCouncil, field string) []string {
	switch field {
	case "sector":
		return []string{c.GetSector().String()}
	case "municipalities":
		return c.GetMunicipalities()
	case "display_name":
		return []string{c.GetDisplayName()}
	}
	return nil
}

// ListCouncils implements councilsv1.CouncilsServiceServer.
func (s *Service) ListCouncils(ctx context.Context, req *councilsv1.ListCouncilsRequest) (*councilsv1.ListCouncilsResponse, error) {
	page, err := s.councilLister().List(ctx, listing.Request{
		Method: "ListCouncils", Filter: req.GetFilter(), OrderBy: req.GetOrderBy(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	return &councilsv1.ListCouncilsResponse{Councils: page.Items, NextPageToken: page.Next, TotalSize: page.TotalSize()}, nil
}

// UpdateCouncil implements councilsv1.CouncilsServiceServer.
func (s *Service) UpdateCouncil(ctx context.Context, req *councilsv1.UpdateCouncilRequest) (*councilsv1.SectorCouncil, error) {
	in := req.GetCouncil()
	if in == nil {
		return nil, apierr.Field("council", "is required")
	}
	id, err := parseCouncilName("council.name", in.GetName())
	if err != nil {
		return nil, err
	}
	key := councilKey(id)
	return store.Update(ctx, s.st, key, in.GetName(), in.GetEtag(), newCouncil,
		func(cur *councilsv1.SectorCouncil, tx *store.Tx) error {
			before := proto.CloneOf(cur)
			if err := masks.Apply(req.GetUpdateMask(), cur, in, councilMutable, councilIgnored); err != nil {
				return err
			}
			if proto.Equal(before, cur) {
				return store.ErrUnchanged
			}
			var v apierr.Violations
			if err := s.checkRules(&v, cur, "council"); err != nil {
				return err
			}
			if len(cur.GetMunicipalities()) == 0 {
				// A council without municipalities would let its needs name any.
				v.Add("council.municipalities", "must name at least one municipality (the council's area)")
			}
			checkMunicipalities(&v, "council.municipalities", cur.GetMunicipalities(), nil)
			if err := v.Err(); err != nil {
				return err
			}
			cur.UpdateTime = timestamppb.New(s.now())
			if err := tx.Put(key, cur); err != nil {
				return err
			}
			s.indexCouncil(tx, cur)
			// Needs are listed by their council's sector and municipalities,
			// and an open need may only name the council's municipalities.
			if before.GetSector() != cur.GetSector() || !slices.Equal(before.GetMunicipalities(), cur.GetMunicipalities()) {
				rows, err := s.reindexNeeds(ctx, tx, cur.GetName(), cur)
				if err != nil {
					return err
				}
				if err := outsideArea(rows, cur); err != nil {
					return err
				}
			}
			tx.Emit("council.updated", cur.GetName(), cur)
			return nil
		})
}

// outsideArea refuses a council update that would leave open needs naming
// municipalities the council no longer covers, naming each.
func outsideArea(rows []needRow, c *councilsv1.SectorCouncil) error {
	var pf errdetails.PreconditionFailure
	var names []string
	for _, r := range rows {
		if st := r.need.GetState(); st == closed || st == rejected {
			continue
		}
		for _, m := range r.need.GetMunicipalities() {
			if !slices.Contains(c.GetMunicipalities(), m) {
				pf.Violations = append(pf.Violations, &errdetails.PreconditionFailure_Violation{
					Type: "MUNICIPALITY", Subject: r.need.GetName(), Description: m + " is not among the council's municipalities"})
				names = append(names, r.need.GetName()+" ("+m+")")
			}
		}
	}
	if len(names) == 0 {
		return nil
	}
	st := status.Newf(codes.FailedPrecondition, "%s: open needs name municipalities the update removes: %s; change or close those needs first",
		c.GetName(), strings.Join(names, ", "))
	if d, err := st.WithDetails(&pf); err == nil {
		st = d
	}
	return st.Err()
}

// DeleteCouncil implements councilsv1.CouncilsServiceServer.
func (s *Service) DeleteCouncil(ctx context.Context, req *councilsv1.DeleteCouncilRequest) (*emptypb.Empty, error) {
	id, err := parseCouncilName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	key := councilKey(id)
	_, err = store.Update(ctx, s.st, key, req.GetName(), req.GetEtag(), newCouncil,
		func(cur *councilsv1.SectorCouncil, tx *store.Tx) error {
			// Checked inside the write, so a need created at the same moment
			// either lands first (and blocks the delete) or finds no council.
			tx.MustNotExist(openNeedsKey(id), apierr.FailedPrecondition(
				"%s still has needs that are neither CLOSED nor REJECTED; close or reject them first", req.GetName()))
			tx.DropIndex(key)
			tx.Del(key)
			// Its closed and rejected needs stay, listed without a council.
			if _, err := s.reindexNeeds(ctx, tx, cur.GetName(), nil); err != nil {
				return err
			}
			tx.Emit("council.deleted", cur.GetName(), cur)
			return nil
		})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}
