package access

import (
	"context"
	"strconv"

	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"google.golang.org/protobuf/proto"
)

// How API keys and audit records are listed (listing.Index): every write
// of either rewrites its index entries in the same atomic step.
var (
	keyIndex = &listing.Index[*accessv1.ApiKey]{
		Collection: "keys",
		Name:       (*accessv1.ApiKey).GetName,
		Orders: map[string]func(*accessv1.ApiKey) string{
			"create_time": func(k *accessv1.ApiKey) string { return listing.TimeKey(k.GetCreateTime()) },
		},
		Fields: map[string]func(*accessv1.ApiKey) []string{
			"role":    func(k *accessv1.ApiKey) []string { return []string{k.GetRole().String()} },
			"subject": func(k *accessv1.ApiKey) []string { return []string{k.GetSubject()} },
			"revoked": func(k *accessv1.ApiKey) []string { return []string{strconv.FormatBool(k.GetRevokeTime() != nil)} },
		},
	}

	// The audit log is kept for years and read by who did what: its
	// filters users rely on are served by index sets.
	recordIndex = &listing.Index[*accessv1.AuditRecord]{
		Collection: "records",
		Name:       (*accessv1.AuditRecord).GetName,
		Orders: map[string]func(*accessv1.AuditRecord) string{
			"time": func(r *accessv1.AuditRecord) string { return listing.TimeKey(r.GetTime()) },
		},
		Fields: map[string]func(*accessv1.AuditRecord) []string{
			"principal": func(r *accessv1.AuditRecord) []string { return []string{r.GetPrincipal()} },
			"service":   func(r *accessv1.AuditRecord) []string { return []string{r.GetService()} },
			"resource":  func(r *accessv1.AuditRecord) []string { return []string{r.GetResource()} },
			"outcome":   func(r *accessv1.AuditRecord) []string { return []string{r.GetOutcome()} },
			"kind":      func(r *accessv1.AuditRecord) []string { return []string{r.GetKind().String()} },
		},
	}
)

func (s *Service) loadKeys(ctx context.Context, names []string) ([]*accessv1.ApiKey, error) {
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = keyKey(keyID(n))
	}
	return store.Load(ctx, s.st, keys, newKey)
}

func (s *Service) loadRecordsByName(ctx context.Context, names []string) ([]*accessv1.AuditRecord, error) {
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = recordKey(recordID(n))
	}
	return store.Load(ctx, s.st, keys, newRecord)
}

func (s *Service) keyLister() *listing.Lister[*accessv1.ApiKey] {
	return &listing.Lister[*accessv1.ApiKey]{
		Index: keyIndex, Store: s.st, Keyspace: Keyspace, Tokens: s.tokens,
		Decls: keyFilter, Values: keyValues, DefaultOrder: "create_time",
		Load: s.loadKeys, Size: func(k *accessv1.ApiKey) int { return proto.Size(k) },
	}
}

func (s *Service) recordLister() *listing.Lister[*accessv1.AuditRecord] {
	return &listing.Lister[*accessv1.AuditRecord]{
		Index: recordIndex, Store: s.st, Keyspace: Keyspace, Tokens: s.tokens,
		Decls: recordFilter, Values: recordValues, DefaultOrder: "time desc",
		Load: s.loadRecordsByName, Size: func(r *accessv1.AuditRecord) int { return proto.Size(r) },
	}
}
