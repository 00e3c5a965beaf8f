package access

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/kompetensnav/kompetensnav/services/platform/audit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
)

// auditStream matches a service's audit stream, kn:{service}:audit.
var auditStream = regexp.MustCompile(`^kn:\{([a-z][a-z0-9-]*)\}:audit$`)

var errCollected = errors.New("audit record already collected")

// CollectAudit stores the audit record in one entry of a service's audit
// stream (kn:{service}:audit) as auditRecords/{service}-{entry id}. It is
// the effect the platform's event consumer runs for every entry of every
// service's audit stream, and is idempotent by entry id: a redelivered
// entry (a consumer crash before its ack, a reclaimed entry) changes
// nothing and succeeds.
//
// An entry that is not a record is logged and skipped (nil): retrying it
// cannot help, and it must not hold up the records behind it. It stays in
// the stream for an operator to look at until the stream is trimmed.
func (s *Service) CollectAudit(ctx context.Context, stream string, msg redis.XMessage) error {
	m := auditStream.FindStringSubmatch(stream)
	if m == nil {
		return fmt.Errorf("access: %q is not an audit stream", stream)
	}
	service := m[1]
	raw, _ := msg.Values[audit.Field].(string)
	rec := newRecord()
	if err := proto.Unmarshal([]byte(raw), rec); err != nil || raw == "" {
		s.log.ErrorContext(ctx, "audit stream entry is not a record; skipped", "stream", stream, "id", msg.ID, "error", err)
		return nil
	}
	id := service + "-" + msg.ID
	// The stream is the service's own: it, not what the entry says, is
	// who recorded it.
	rec.Name, rec.Service = "auditRecords/"+id, service
	tx := s.st.Tx()
	tx.MustNotExist(recordKey(id), errCollected)
	if err := tx.Put(recordKey(id), rec); err != nil {
		return err
	}
	tx.SetIndex(recordKey(id), recordIndex.Entries(Keyspace, rec))
	_, err := tx.Commit(ctx)
	if errors.Is(err, errCollected) {
		return nil
	}
	return err
}
