package access

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"

	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"go.einride.tech/aip/filtering"
)

const (
	// recordBatch is how many index entries one round trip reads.
	recordBatch = 200
	// maxScan bounds the records one list call looks at: a filter few
	// records match returns a short page and a token to go on (AIP-158)
	// rather than reading the whole log.
	maxScan = 5000
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

// position is a place in the time index: a record's score and id. Records
// sharing a score are ordered by id, highest first, as ZREVRANGEBYSCORE
// returns them.
type position struct {
	score float64
	id    string
}

// ListAuditRecords implements accessv1.AccessServiceServer: newest first,
// read from the time index after the page token's position (keyset
// paging), filtered as it goes, looking at no more than maxScan records.
func (s *Service) ListAuditRecords(ctx context.Context, req *accessv1.ListAuditRecordsRequest) (*accessv1.ListAuditRecordsResponse, error) {
	filter, err := listing.ParseFilter(req.GetFilter(), recordFilter)
	if err != nil {
		return nil, err
	}
	minScore, maxScore := math.Inf(-1), math.Inf(1)
	if t := req.GetStartTime(); t != nil {
		minScore = float64(t.AsTime().UnixMicro())
	}
	if t := req.GetEndTime(); t != nil {
		maxScore = float64(t.AsTime().UnixMicro())
	}
	if req.GetStartTime() != nil && req.GetEndTime() != nil && minScore >= maxScore {
		return nil, apierr.Field("end_time", "must be after start_time")
	}
	scope := listing.Scope("ListAuditRecords", req.GetFilter(),
		strconv.FormatFloat(minScore, 'f', -1, 64), strconv.FormatFloat(maxScore, 'f', -1, 64))
	cursor, err := s.tokens.Decode(req.GetPageToken(), scope)
	if err != nil {
		return nil, err
	}
	var from *position
	if len(cursor) == 2 {
		sc, err := strconv.ParseFloat(cursor[0], 64)
		if err != nil {
			return nil, apierr.Field("page_token", "is not a page token of this list request")
		}
		from = &position{score: sc, id: cursor[1]}
	}

	size := listing.PageSize(req.GetPageSize())
	resp := &accessv1.ListAuditRecordsResponse{}
	scanned := 0
	var last *position
	done, err := s.scanRecords(ctx, from, maxScore, req.GetEndTime() != nil, minScore, func(batch []position) (bool, error) {
		keys := make([]string, len(batch))
		for i, p := range batch {
			keys[i] = recordKey(p.id)
		}
		recs, err := s.loadRecords(ctx, keys)
		if err != nil {
			return false, err
		}
		for i, p := range batch {
			last = &batch[i]
			scanned++
			if r := recs[p.id]; r != nil && listing.Match(filter, r, recordValues) {
				resp.AuditRecords = append(resp.AuditRecords, r)
			}
			if len(resp.AuditRecords) == size || scanned >= maxScan {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	if !done && last != nil {
		resp.NextPageToken = s.tokens.Encode(scope, []string{strconv.FormatFloat(last.score, 'f', -1, 64), last.id})
	}
	return resp, nil
}

// loadRecords reads records by key, keyed by id (missing ones absent).
func (s *Service) loadRecords(ctx context.Context, keys []string) (map[string]*accessv1.AuditRecord, error) {
	recs, err := store.Load(ctx, s.st, keys, newRecord)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*accessv1.AuditRecord, len(recs))
	for _, r := range recs {
		out[strings.TrimPrefix(r.GetName(), "auditRecords/")] = r
	}
	return out, nil
}

// scanRecords walks the time index from the newest record in [minScore,
// maxScore] (maxScore left out with maxExclusive) after from (all of them without from), a batch at a time,
// until visit says stop (then it returns false) or the index is exhausted
// (true). A batch may end inside a run of records sharing one score: the
// rest of that run is read before going below the score, so paging never
// skips or repeats a record.
func (s *Service) scanRecords(ctx context.Context, from *position, maxScore float64, maxExclusive bool, minScore float64,
	visit func([]position) (stop bool, err error)) (exhausted bool, err error) {
	r := store.ScoreRange{Max: maxScore, Min: minScore, MaxExclusive: maxExclusive, Count: recordBatch}
	if from != nil {
		// A position at or above the end of the range would be a token
		// for another range: Decode already refused those.
		rest, err := s.sameScoreBelow(ctx, *from)
		if err != nil {
			return false, err
		}
		if len(rest) > 0 {
			if stop, err := visit(rest); stop || err != nil {
				return false, err
			}
		}
		r.Max, r.MaxExclusive = from.score, true
	}
	for {
		zs, err := s.st.RangeDesc(ctx, recordIndexKey(), r)
		if err != nil {
			return false, err
		}
		if len(zs) == 0 {
			return true, nil
		}
		batch := make([]position, len(zs))
		for i, z := range zs {
			batch[i] = position{score: z.Score, id: z.Member.(string)}
		}
		if stop, err := visit(batch); stop || err != nil {
			return false, err
		}
		lastPos := batch[len(batch)-1]
		rest, err := s.sameScoreBelow(ctx, lastPos)
		if err != nil {
			return false, err
		}
		if len(rest) > 0 {
			if stop, err := visit(rest); stop || err != nil {
				return false, err
			}
		}
		r.Max, r.MaxExclusive = lastPos.score, true
	}
}

// sameScoreBelow is the records with p's score and an id below p's,
// highest id first.
func (s *Service) sameScoreBelow(ctx context.Context, p position) ([]position, error) {
	zs, err := s.st.RangeDesc(ctx, recordIndexKey(), store.ScoreRange{Max: p.score, Min: p.score})
	if err != nil {
		return nil, err
	}
	var out []position
	for _, z := range zs {
		if id := z.Member.(string); id < p.id {
			out = append(out, position{score: z.Score, id: id})
		}
	}
	return out, nil
}
