package access_test

import (
	"context"
	"fmt"
	"testing"

	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/audit"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// The access service's matrix: every RPC × every role. None of its rules
// is scoped to a bound resource (keys are staff business whoever they are
// bound to), so each role gets the same answer for any key or record; the
// council and company columns are bound anyway, to show binding grants
// nothing here.
func TestPolicyMatrix(t *testing.T) {
	const ok, denied = codes.OK, codes.PermissionDenied
	staffOnly := map[auth.Role]codes.Code{auth.Staff: ok, auth.Council: denied, auth.Company: denied, auth.Provider: denied, auth.Partner: denied, auth.Auditor: denied}
	auditLog := map[auth.Role]codes.Code{auth.Staff: ok, auth.Council: denied, auth.Company: denied, auth.Provider: denied, auth.Partner: denied, auth.Auditor: ok}
	everyone := map[auth.Role]codes.Code{auth.Staff: ok, auth.Council: ok, auth.Company: ok, auth.Provider: ok, auth.Partner: ok, auth.Auditor: ok}
	subject := map[auth.Role]string{auth.Council: "councils/fordon", auth.Company: "companies/volvo-cars", auth.Provider: "providers/lernia"}

	each(t, func(t *testing.T, e env) {
		// A record to get.
		if _, err := e.c.CreateApiKey(ctx, councilKey("seed", "councils/fordon")); err != nil {
			t.Fatal(err)
		}
		collect(t, e, "access")
		recs := listAll(t, e.c, ctx, &accessv1.ListAuditRecordsRequest{})
		n := 0
		rows := []struct {
			method string
			write  bool
			call   func(callCtx context.Context) error
			want   map[auth.Role]codes.Code
		}{
			{"CreateApiKey", true, func(c context.Context) error {
				n++
				return err1(e.c.CreateApiKey(c, councilKey(fmt.Sprintf("k%d", n), "councils/fordon")))
			}, staffOnly},
			{"GetApiKey", false, func(c context.Context) error {
				return err1(e.c.GetApiKey(c, &accessv1.GetApiKeyRequest{Name: "apiKeys/seed"}))
			}, staffOnly},
			{"ListApiKeys", false, func(c context.Context) error { return err1(e.c.ListApiKeys(c, &accessv1.ListApiKeysRequest{})) }, staffOnly},
			{"RevokeApiKey", true, func(c context.Context) error {
				return err1(e.c.RevokeApiKey(c, &accessv1.RevokeApiKeyRequest{Name: "apiKeys/seed"}))
			}, staffOnly},
			{"GetPrincipal", false, func(c context.Context) error { return err1(e.c.GetPrincipal(c, &accessv1.GetPrincipalRequest{})) }, everyone},
			{"GetAuditRecord", false, func(c context.Context) error {
				return err1(e.c.GetAuditRecord(c, &accessv1.GetAuditRecordRequest{Name: recs[0].GetName()}))
			}, auditLog},
			{"ListAuditRecords", false, func(c context.Context) error {
				return err1(e.c.ListAuditRecords(c, &accessv1.ListAuditRecordsRequest{}))
			}, auditLog},
		}
		methods := map[string]bool{}
		for _, row := range rows {
			methods[row.method] = true
			for _, role := range auth.AllRoles {
				t.Run(row.method+"/"+role.String(), func(t *testing.T) {
					before := streamLen(t, e)
					err := row.call(testkit.AsRole(ctx, role, subject[role]))
					if got := status.Code(err); got != row.want[role] {
						t.Fatalf("got %v, want %v", err, row.want[role])
					}
					recs := streamRecords(t, e)[before:]
					wantRecs := 0
					if err != nil || row.write {
						wantRecs = 1
					}
					if len(recs) != wantRecs {
						t.Fatalf("%d audit records, want %d", len(recs), wantRecs)
					}
					if wantRecs == 1 && (recs[0].GetRole() != role || recs[0].GetOutcome() != audit.OutcomeName(status.Code(err))) {
						t.Fatalf("audit record %v", recs[0])
					}
				})
			}
		}
		ms := accessv1.File_kompetensnav_access_v1_access_proto.Services().Get(0).Methods()
		for i := range ms.Len() {
			if name := string(ms.Get(i).Name()); !methods[name] {
				t.Errorf("the matrix has no row for %s", name)
			}
		}
	})
}

func streamRecords(t *testing.T, e env) []*accessv1.AuditRecord {
	t.Helper()
	msgs, err := e.rdb.XRange(ctx, "kn:{access}:audit", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*accessv1.AuditRecord, len(msgs))
	for i, m := range msgs {
		out[i] = &accessv1.AuditRecord{}
		raw, _ := m.Values[audit.Field].(string)
		if err := proto.Unmarshal([]byte(raw), out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func streamLen(t *testing.T, e env) int { return len(streamRecords(t, e)) }

func err1[T any](_ T, err error) error { return err }
