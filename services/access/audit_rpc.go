package access

import (
	"context"
	"errors"
	"strings"

	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"go.einride.tech/aip/filtering"
)

func newRecord() *accessv1.AuditRecord { return &accessv1.AuditRecord{} }

// GetAuditRecord implements accessv1.AccessServiceServer.
func (s *Service) GetAuditRecord(ctx context.Context, req *accessv1.GetAuditRecordRequest) (*accessv1.AuditRecord, error) {
	r := newRecord()
	if err := s.st.Get(ctx, recordKey(strings.TrimPrefix(req.GetName(), "auditRecords/")), r); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.NotFound(req.GetName())
		}
		return nil, err
	}
	return r, nil
}

var recordFilter = mustDecls(
	filtering.DeclareStandardFunctions(),
	filtering.DeclareIdent("principal", filtering.TypeString),
	filtering.DeclareEnumIdent("role", accessv1.Role(0).Type()),
	filtering.DeclareIdent("principal_subject", filtering.TypeString),
	filtering.DeclareIdent("service", filtering.TypeString),
	filtering.DeclareIdent("method", filtering.TypeString),
	filtering.DeclareIdent("resource", filtering.TypeString),
	filtering.DeclareIdent("outcome", filtering.TypeString),
	filtering.DeclareEnumIdent("kind", accessv1.AuditRecord_Kind(0).Type()),
)

func recordValues(r *accessv1.AuditRecord, field string) []string {
	switch field {
	case "principal":
		return []string{r.GetPrincipal()}
	case "role":
		return []string{r.GetRole().String()}
	case "principal_subject":
		return []string{r.GetPrincipalSubject()}
	case "service":
		return []string{r.GetService()}
	case "method":
		return []string{r.GetMethod()}
	case "resource":
		return []string{r.GetResource()}
	case "outcome":
		return []string{r.GetOutcome()}
	case "kind":
		return []string{r.GetKind().String()}
	}
	return nil
}

// recordID is the id in auditRecords/{id}.
func recordID(name string) string { return strings.TrimPrefix(name, "auditRecords/") }

// ListAuditRecords implements accessv1.AccessServiceServer: newest first,
// pages read from the record index (a time range is a range of it), the
// filters on principal, service, resource, outcome and kind served by
// index sets.
func (s *Service) ListAuditRecords(ctx context.Context, req *accessv1.ListAuditRecordsRequest) (*accessv1.ListAuditRecordsResponse, error) {
	var within *listing.Bounds
	if req.GetStartTime() != nil || req.GetEndTime() != nil {
		if req.GetStartTime() != nil && req.GetEndTime() != nil && !req.GetStartTime().AsTime().Before(req.GetEndTime().AsTime()) {
			return nil, apierr.Field("end_time", "must be after start_time")
		}
		within = &listing.Bounds{}
		if t := req.GetStartTime(); t != nil {
			within.Lo = listing.TimeKey(t)
		}
		if t := req.GetEndTime(); t != nil {
			within.Hi = listing.TimeKey(t)
		}
	}
	scope := "ListAuditRecords"
	if within != nil {
		scope += "\x00" + within.Lo + "\x00" + within.Hi
	}
	page, err := s.recordLister().List(ctx, listing.Request{Method: scope, Filter: req.GetFilter(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(), Within: within})
	if err != nil {
		return nil, err
	}
	return &accessv1.ListAuditRecordsResponse{AuditRecords: page.Items, NextPageToken: page.Next}, nil
}
