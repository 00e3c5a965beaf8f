package access_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/access"
	"github.com/kompetensnav/kompetensnav/services/platform/audit"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var ctx = context.Background()

type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) advance(d time.Duration) { c.t.Add(int64(d)) }
func newClock(t time.Time) *clock        { c := &clock{}; c.t.Store(t.UnixNano()); return c }
func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("want %v, got %v", code, err)
	}
}

type env struct {
	c     accessv1.AccessServiceClient
	svc   *access.Service
	rdb   redis.UniversalClient
	clock *clock
}

// each runs f on both backends with the service behind the guard, which
// accepts its real API keys (checked in its own store) besides test tokens.
func each(t *testing.T, f func(t *testing.T, e env)) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		clk := newClock(time.Now())
		svc, err := access.New(access.Options{Redis: rdb, Logger: testkit.Logger(), Now: clk.now})
		if err != nil {
			t.Fatal(err)
		}
		conn := testkit.Serve(t, func(g *grpc.Server) { svc.Register(g) },
			testkit.Guarded(rdb, access.Policy), testkit.Authenticate(svc.Authenticator()))
		f(t, env{c: accessv1.NewAccessServiceClient(conn), svc: svc, rdb: rdb, clock: clk})
	})
}

func councilKey(id, council string) *accessv1.CreateApiKeyRequest {
	return &accessv1.CreateApiKeyRequest{ApiKeyId: id, ApiKey: &accessv1.ApiKey{
		DisplayName: "Kansliets ärendesystem", Role: accessv1.Role_ROLE_COUNCIL, Subject: council}}
}

// everything is every key and value in Redis, as text, to search for what
// must not be there.
func everything(t *testing.T, rdb redis.UniversalClient) string {
	t.Helper()
	var b strings.Builder
	for _, k := range testkit.Keys(t, rdb, "*") {
		b.WriteString(k + "\n")
		switch rdb.Type(ctx, k).Val() {
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				b.WriteString(f + "=" + v + "\n")
			}
		case "stream":
			for _, m := range rdb.XRange(ctx, k, "-", "+").Val() {
				b.WriteString(fmt.Sprint(m.Values) + "\n")
			}
		case "zset":
			b.WriteString(strings.Join(rdb.ZRange(ctx, k, 0, -1).Val(), ",") + "\n")
		case "string":
			b.WriteString(rdb.Get(ctx, k).Val() + "\n")
		}
	}
	return b.String()
}

func TestApiKeyLifecycle(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		created, err := e.c.CreateApiKey(ctx, councilKey("fordon-portal", "councils/fordon"))
		if err != nil {
			t.Fatal(err)
		}
		secret := created.GetSecret()
		if id, ok := auth.ParseAPIKey(secret); !ok || id != "fordon-portal" || len(secret) != len("kn_fordon-portal_")+43 {
			t.Fatalf("secret %q is not kn_<id>_<43 random>", secret)
		}
		k := created.GetApiKey()
		if k.GetName() != "apiKeys/fordon-portal" || k.GetRole() != accessv1.Role_ROLE_COUNCIL ||
			k.GetSubject() != "councils/fordon" || k.GetCreateTime() == nil || k.GetRevokeTime() != nil {
			t.Fatalf("created %v", k)
		}
		// Only the hash is kept: the secret is nowhere in Redis.
		random := secret[len(secret)-43:]
		stored := everything(t, e.rdb)
		if strings.Contains(stored, random) {
			t.Fatal("the secret is stored")
		}
		if !strings.Contains(stored, auth.HashAPIKey(secret)) {
			t.Fatal("the secret's hash is not stored")
		}

		// The key authenticates: who am I.
		asKey := testkit.As(ctx, secret)
		p, err := e.c.GetPrincipal(asKey, &accessv1.GetPrincipalRequest{})
		if err != nil || p.GetId() != "apiKeys/fordon-portal" || p.GetRole() != accessv1.Role_ROLE_COUNCIL || p.GetSubject() != "councils/fordon" {
			t.Fatalf("principal %v (%v)", p, err)
		}
		// Get and List show the key and when it was used, never the secret.
		got, err := e.c.GetApiKey(ctx, &accessv1.GetApiKeyRequest{Name: k.GetName()})
		if err != nil || got.GetLastUsedTime() == nil {
			t.Fatalf("get %v (%v), want last_used_time set", got, err)
		}
		list, err := e.c.ListApiKeys(ctx, &accessv1.ListApiKeysRequest{})
		if err != nil || len(list.GetApiKeys()) != 1 || list.GetApiKeys()[0].GetLastUsedTime() == nil {
			t.Fatalf("list %v (%v)", list, err)
		}
		if out := prototext.Format(got) + prototext.Format(list); strings.Contains(out, random) {
			t.Fatal("a read shows the secret")
		}

		// The same id with another secret is no key.
		forged := auth.NewAPIKeySecret("fordon-portal")
		_, err = e.c.GetPrincipal(testkit.As(ctx, forged), &accessv1.GetPrincipalRequest{})
		wantCode(t, err, codes.Unauthenticated)
		_, err = e.c.GetPrincipal(testkit.As(ctx, auth.NewAPIKeySecret("nobody")), &accessv1.GetPrincipalRequest{})
		wantCode(t, err, codes.Unauthenticated)

		// Revoked: refused at once here (the access service checks its own
		// store), and revoking again is harmless.
		r, err := e.c.RevokeApiKey(ctx, &accessv1.RevokeApiKeyRequest{Name: k.GetName()})
		if err != nil || r.GetRevokeTime() == nil {
			t.Fatalf("revoke %v (%v)", r, err)
		}
		_, err = e.c.GetPrincipal(asKey, &accessv1.GetPrincipalRequest{})
		wantCode(t, err, codes.Unauthenticated)
		if !strings.Contains(status.Convert(err).Message(), "revoked") {
			t.Errorf("message %q does not say revoked", status.Convert(err).Message())
		}
		if _, err := e.c.RevokeApiKey(ctx, &accessv1.RevokeApiKeyRequest{Name: k.GetName()}); err != nil {
			t.Fatal(err)
		}
		revoked, _ := e.c.ListApiKeys(ctx, &accessv1.ListApiKeysRequest{Filter: `revoked = "true"`})
		if len(revoked.GetApiKeys()) != 1 {
			t.Fatalf("revoked keys %v", revoked)
		}
		_, err = e.c.CreateApiKey(ctx, councilKey("fordon-portal", "councils/fordon"))
		wantCode(t, err, codes.AlreadyExists)
		_, err = e.c.GetApiKey(ctx, &accessv1.GetApiKeyRequest{Name: "apiKeys/nope"})
		wantCode(t, err, codes.NotFound)
	})
}

func TestExpiredKeyIsRefused(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		req := councilKey("", "councils/handel")
		req.ApiKey.ExpireTime = timestamppb.New(time.Now().Add(time.Hour))
		created, err := e.c.CreateApiKey(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		asKey := testkit.As(ctx, created.GetSecret())
		p, err := e.c.GetPrincipal(asKey, &accessv1.GetPrincipalRequest{})
		if err != nil || !p.GetExpireTime().AsTime().Equal(req.ApiKey.ExpireTime.AsTime()) {
			t.Fatalf("principal %v (%v), want the key's expiry on it (caches honour it)", p, err)
		}
		e.clock.advance(time.Hour + time.Second)
		_, err = e.c.GetPrincipal(asKey, &accessv1.GetPrincipalRequest{})
		wantCode(t, err, codes.Unauthenticated)
		if !strings.Contains(status.Convert(err).Message(), "expired") {
			t.Errorf("message %q", status.Convert(err).Message())
		}
		// An expiry in the past is refused at creation.
		req.ApiKey.ExpireTime = timestamppb.New(time.Now().Add(-time.Minute))
		_, err = e.c.CreateApiKey(ctx, req)
		testkit.WantBadRequest(t, err, "api_key.expire_time")
	})
}

func TestBadKeysAreRefusedAndWriteNothing(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		cases := []struct {
			name  string
			key   *accessv1.ApiKey
			id    string
			field string
		}{
			{"council without subject", &accessv1.ApiKey{DisplayName: "x", Role: accessv1.Role_ROLE_COUNCIL}, "", "api_key.subject"},
			{"council bound to a company", &accessv1.ApiKey{DisplayName: "x", Role: accessv1.Role_ROLE_COUNCIL, Subject: "companies/volvo"}, "", "api_key.subject"},
			{"partner with a subject", &accessv1.ApiKey{DisplayName: "x", Role: accessv1.Role_ROLE_PARTNER, Subject: "councils/fordon"}, "", "api_key.subject"},
			{"no role", &accessv1.ApiKey{DisplayName: "x"}, "", "api_key.role"},
			{"no display name", &accessv1.ApiKey{Role: accessv1.Role_ROLE_STAFF}, "", "api_key.display_name"},
			{"underscore in id", &accessv1.ApiKey{DisplayName: "x", Role: accessv1.Role_ROLE_STAFF}, "a_b", "api_key_id"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := testkit.KeyCount(t, e.rdb)
				_, err := e.c.CreateApiKey(ctx, &accessv1.CreateApiKeyRequest{ApiKey: tc.key, ApiKeyId: tc.id})
				testkit.WantBadRequest(t, err, tc.field)
				if after := testkit.KeyCount(t, e.rdb); after != before {
					t.Fatalf("keys %d → %d", before, after)
				}
			})
		}
	})
}

// A key whose expiry has passed by the service's clock, or that no
// timestamp can hold, is refused at creation, and nothing is written.
func TestKeyDeadOnArrivalIsRefusedAndWritesNothing(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		// The service's clock, which decides expiry at authentication, is
		// two hours ahead of the wall clock the proto rule reads.
		e.clock.advance(2 * time.Hour)
		for _, c := range []struct {
			name   string
			expire *timestamppb.Timestamp
			says   string
		}{
			{"past by the wall clock", timestamppb.New(time.Now().Add(-time.Minute)), ""},
			{"past by the service's clock", timestamppb.New(time.Now().Add(time.Hour)), "not in the future"},
			{"at the service's now", timestamppb.New(e.clock.now()), "not in the future"},
			{"after the year 9999", &timestamppb.Timestamp{Seconds: 1e15}, "not a valid time"},
			{"nanos out of range", &timestamppb.Timestamp{Seconds: time.Now().Add(24 * time.Hour).Unix(), Nanos: 2e9}, "not a valid time"},
		} {
			t.Run(c.name, func(t *testing.T) {
				before := testkit.KeyCount(t, e.rdb)
				req := councilKey("dead", "councils/handel")
				req.ApiKey.ExpireTime = c.expire
				_, err := e.c.CreateApiKey(ctx, req)
				msg := testkit.WantBadRequest(t, err, "api_key.expire_time")
				if !strings.Contains(msg, c.says) {
					t.Errorf("message %q, want %q", msg, c.says)
				}
				if after := testkit.KeyCount(t, e.rdb); after != before {
					t.Fatalf("keys %d → %d", before, after)
				}
				_, err = e.c.GetApiKey(ctx, &accessv1.GetApiKeyRequest{Name: "apiKeys/dead"})
				wantCode(t, err, codes.NotFound)
			})
		}
		// Later than the service's now: a key that works until then.
		req := councilKey("alive", "councils/handel")
		req.ApiKey.ExpireTime = timestamppb.New(e.clock.now().Add(time.Minute))
		created, err := e.c.CreateApiKey(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.GetPrincipal(testkit.As(ctx, created.GetSecret()), &accessv1.GetPrincipalRequest{}); err != nil {
			t.Fatalf("a key valid for another minute: %v", err)
		}
	})
}

// record appends a record as service would (through the platform: a
// denial or sensitive read goes through Store.Audit).
func record(t *testing.T, rdb redis.UniversalClient, service string, c *audit.Call, kind accessv1.AuditRecord_Kind, outcome codes.Code) {
	t.Helper()
	if err := store.New(rdb, store.Keyspace(service), testkit.Logger()).Audit(ctx, c.Record(kind, service, "", outcome)); err != nil {
		t.Fatal(err)
	}
}

// collect runs the collector's effect on every entry of the audit streams
// of services, as the platform's event consumer will (twice over: a
// redelivery must change nothing).
func collect(t *testing.T, e env, services ...string) {
	t.Helper()
	for range 2 {
		for _, svc := range services {
			stream := store.Keyspace(svc).Audit()
			msgs, err := e.rdb.XRange(ctx, stream, "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				if err := e.svc.CollectAudit(ctx, stream, m); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func listAll(t *testing.T, c accessv1.AccessServiceClient, callCtx context.Context, req *accessv1.ListAuditRecordsRequest) []*accessv1.AuditRecord {
	t.Helper()
	var out []*accessv1.AuditRecord
	for {
		resp, err := c.ListAuditRecords(callCtx, req)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.GetAuditRecords()...)
		if resp.GetNextPageToken() == "" {
			return out
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

func TestAuditLogCollectedAndListed(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		// Real records: writes to this service, a refused call.
		if _, err := e.c.CreateApiKey(ctx, councilKey("fordon-portal", "councils/fordon")); err != nil {
			t.Fatal(err)
		}
		_, err := e.c.ListApiKeys(testkit.AsRole(ctx, auth.Partner, ""), &accessv1.ListApiKeysRequest{})
		wantCode(t, err, codes.PermissionDenied)
		// And many from another service, several sharing a microsecond.
		council := &auth.Principal{Id: "apiKeys/fordon-portal", Role: auth.Council, Subject: "councils/fordon"}
		for i := range 120 {
			c := audit.NewCall(council, "/kompetensnav.councils.v1.CouncilsService/SubmitNeed",
				fmt.Sprintf("councils/fordon/needs/n%03d", i), fmt.Sprintf("%032x", i), fmt.Sprintf("req-%d", i), true)
			outcome := codes.OK
			kind := accessv1.AuditRecord_KIND_WRITE
			if i%10 == 0 {
				outcome, kind = codes.PermissionDenied, accessv1.AuditRecord_KIND_DENIAL
			}
			record(t, e.rdb, "councils", c, kind, outcome)
		}
		// An entry that is not a record is skipped, not stored.
		if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: store.Keyspace("councils").Audit(), Values: []any{audit.Field, "garbage"}}).Err(); err != nil {
			t.Fatal(err)
		}
		collect(t, e, "access", "councils")

		asAuditor := testkit.AsRole(ctx, auth.Auditor, "")
		all := listAll(t, e.c, asAuditor, &accessv1.ListAuditRecordsRequest{PageSize: 7})
		if len(all) != 122 {
			t.Fatalf("%d records listed, want 122 (120 + a write + a denial)", len(all))
		}
		seen := map[string]bool{}
		for i, r := range all {
			if seen[r.GetName()] {
				t.Fatalf("%s listed twice", r.GetName())
			}
			seen[r.GetName()] = true
			if i > 0 && r.GetTime().AsTime().After(all[i-1].GetTime().AsTime()) {
				t.Fatalf("not newest first at %d", i)
			}
		}
		// Who did what: the denial of the partner, with its principal.
		denied := listAll(t, e.c, asAuditor, &accessv1.ListAuditRecordsRequest{
			Filter: `service = "access" AND kind = KIND_DENIAL`})
		if len(denied) != 1 || denied[0].GetPrincipal() != "test/partner" || denied[0].GetOutcome() != "PERMISSION_DENIED" ||
			denied[0].GetMethod() != "kompetensnav.access.v1.AccessService/ListApiKeys" {
			t.Fatalf("denials %v", denied)
		}
		creates := listAll(t, e.c, asAuditor, &accessv1.ListAuditRecordsRequest{Filter: `method = "kompetensnav.access.v1.AccessService/CreateApiKey"`})
		if len(creates) != 1 || creates[0].GetResource() != "apiKeys/fordon-portal" || creates[0].GetPrincipal() != "test/staff" {
			t.Fatalf("creates %v", creates)
		}
		byKey := listAll(t, e.c, asAuditor, &accessv1.ListAuditRecordsRequest{PageSize: 5,
			Filter: `principal = "apiKeys/fordon-portal" AND outcome = "PERMISSION_DENIED"`})
		if len(byKey) != 12 {
			t.Fatalf("%d denials of the key, want 12", len(byKey))
		}
		one := listAll(t, e.c, asAuditor, &accessv1.ListAuditRecordsRequest{Filter: `resource = "councils/fordon/needs/n042"`})
		if len(one) != 1 || one[0].GetTraceId() != fmt.Sprintf("%032x", 42) || one[0].GetRequestId() != "req-42" || one[0].GetRole() != accessv1.Role_ROLE_COUNCIL {
			t.Fatalf("record of n042: %v", one)
		}
		got, err := e.c.GetAuditRecord(asAuditor, &accessv1.GetAuditRecordRequest{Name: one[0].GetName()})
		if err != nil || got.GetResource() != "councils/fordon/needs/n042" || !strings.HasPrefix(got.GetName(), "auditRecords/councils-") {
			t.Fatalf("get %v (%v)", got, err)
		}

		// A time range: [start, end).
		mid := all[60].GetTime()
		newer := listAll(t, e.c, asAuditor, &accessv1.ListAuditRecordsRequest{StartTime: mid})
		older := listAll(t, e.c, asAuditor, &accessv1.ListAuditRecordsRequest{EndTime: mid})
		if len(newer)+len(older) != 122 || len(older) == 0 || len(newer) == 0 {
			t.Fatalf("split at %v: %d newer + %d older", mid.AsTime(), len(newer), len(older))
		}
		for _, r := range older {
			if !r.GetTime().AsTime().Before(mid.AsTime()) {
				t.Fatalf("%v not before %v", r.GetTime().AsTime(), mid.AsTime())
			}
		}
		_, err = e.c.ListAuditRecords(asAuditor, &accessv1.ListAuditRecordsRequest{StartTime: mid, EndTime: mid})
		testkit.WantBadRequest(t, err, "end_time")
		_, err = e.c.ListAuditRecords(asAuditor, &accessv1.ListAuditRecordsRequest{Filter: `colour = "red"`})
		testkit.WantBadRequest(t, err, "filter")
		// A token belongs to its filter.
		page, _ := e.c.ListAuditRecords(asAuditor, &accessv1.ListAuditRecordsRequest{PageSize: 2})
		_, err = e.c.ListAuditRecords(asAuditor, &accessv1.ListAuditRecordsRequest{PageSize: 2, PageToken: page.GetNextPageToken(), Filter: `service = "access"`})
		testkit.WantBadRequest(t, err, "page_token")
		if slices.ContainsFunc(all, func(r *accessv1.AuditRecord) bool { return r.GetService() == "" }) {
			t.Fatal("a record without its service")
		}
	})
}

// Records that share a timestamp are paged through without a skip or a
// repeat, however the pages cut the run.
func TestAuditPagesThroughEqualTimes(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		at := timestamppb.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
		c := audit.NewCall(&auth.Principal{Id: "bootstrap", Role: auth.Staff}, "/kompetensnav.councils.v1.CouncilsService/CreateNeed", "", "", "", true)
		for i := range 31 {
			r := c.Record(accessv1.AuditRecord_KIND_WRITE, "councils", fmt.Sprintf("councils/fordon/needs/n%02d", i), codes.OK)
			if i > 0 && i < 30 {
				r.Time = at
			}
			b, err := audit.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: store.Keyspace("councils").Audit(), Values: []any{audit.Field, b}}).Err(); err != nil {
				t.Fatal(err)
			}
		}
		collect(t, e, "councils")
		for _, size := range []int32{1, 4, 7, 29, 50} {
			got := listAll(t, e.c, testkit.AsRole(ctx, auth.Auditor, ""), &accessv1.ListAuditRecordsRequest{PageSize: size})
			seen := map[string]bool{}
			for _, r := range got {
				seen[r.GetResource()] = true
			}
			if len(got) != 31 || len(seen) != 31 {
				t.Fatalf("page size %d: %d listed, %d distinct, want 31", size, len(got), len(seen))
			}
		}
	})
}

// The collector is the platform's event consumer: records written while
// it is stopped (the access service down) wait in the services' streams
// and arrive, each once, when it runs again.
func TestCollectorCatchesUpAfterBeingDown(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		svc, err := access.New(access.Options{Redis: rdb, Logger: testkit.Logger(),
			AuditSources: map[string]redis.UniversalClient{"councils": rdb}})
		if err != nil {
			t.Fatal(err)
		}
		write := func(n int) {
			for i := range n {
				c := audit.NewCall(&auth.Principal{Id: "apiKeys/fordon-portal", Role: auth.Council},
					"/kompetensnav.councils.v1.CouncilsService/CreateNeed", fmt.Sprintf("councils/fordon/needs/n%d", i), "", "", true)
				record(t, rdb, "councils", c, accessv1.AuditRecord_KIND_WRITE, codes.OK)
			}
		}
		count := func() int64 {
			n, _ := rdb.ZCard(ctx, access.Keyspace.Key("ix", "records", "time")).Result()
			return n
		}
		run := func() (stop func()) {
			runs, err := svc.Background()
			if err != nil {
				t.Fatal(err)
			}
			bg := events.Start(ctx, testkit.Logger(), runs...)
			return bg.Stop
		}
		stop := run()
		write(3)
		eventually(t, func() bool { return count() == 3 })
		stop() // the access service goes down
		write(4)
		if got := count(); got != 3 {
			t.Fatalf("%d records collected while the collector was down", got)
		}
		stop = run()
		defer stop()
		eventually(t, func() bool { return count() == 7 })
		// Caught up, and nothing twice: the group acknowledges all (just
		// after the effects, which the count sees first).
		eventually(t, func() bool {
			info, err := events.Inspect(ctx, rdb, store.Keyspace("councils").Audit())
			return err == nil && info[0].Groups[0].Pending == 0 && info[0].Groups[0].Lag == 0
		})
		if got := count(); got != 7 {
			t.Fatalf("%d records, want 7", got)
		}
	})
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The access service is killed while another service keeps writing: its
// connection to Redis dies mid-collection (acknowledgements and effects in
// flight fail), writes go on, and only later does it start again. Every
// write's record, appended in the write's own atomic step, waits in the
// writer's stream and is collected exactly once after the restart.
func TestNoRecordLostWhenTheAccessServiceDiesDuringWrites(t *testing.T) {
	srv := testkit.StartRedis(t)
	producer := store.New(srv.Client, store.Keyspace("councils"), testkit.Logger())
	council := &auth.Principal{Id: "apiKeys/fordon-portal", Role: auth.Council, Subject: "councils/fordon"}
	const writers, each = 4, 150
	// write is what a guarded CreateNeed does: its commit carries the
	// call's record.
	write := func(w, i int) error {
		name := fmt.Sprintf("councils/fordon/needs/w%d-%03d", w, i)
		call := audit.NewCall(council, "/kompetensnav.councils.v1.CouncilsService/CreateNeed", "councils/fordon",
			fmt.Sprintf("%032x", w*1000+i), "", true)
		tx := producer.Tx()
		if err := tx.Put(store.Keyspace("councils").Key("need", "fordon", fmt.Sprintf("w%d-%03d", w, i)), &councilsv1.CompetenceNeed{Name: name, Title: "Svetsning"}); err != nil {
			return err
		}
		tx.Emit("need.created", name, &councilsv1.CompetenceNeed{Name: name})
		_, err := tx.Commit(audit.NewContext(ctx, call))
		return err
	}
	collected := func() int64 {
		n, _ := srv.Client.ZCard(ctx, access.Keyspace.Key("ix", "records", "time")).Result()
		return n
	}
	// start runs an access service's collector on a connection of its own.
	start := func() (conn *redis.Client, stop func()) {
		conn = redis.NewClient(&redis.Options{Addr: srv.Addr})
		svc, err := access.New(access.Options{Redis: conn, Logger: testkit.Logger(),
			AuditSources: map[string]redis.UniversalClient{"councils": conn}})
		if err != nil {
			t.Fatal(err)
		}
		runs, err := svc.Background()
		if err != nil {
			t.Fatal(err)
		}
		return conn, events.Start(ctx, testkit.Logger(), runs...).Stop
	}

	conn, stop := start()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	halfway := make(chan struct{})
	var written atomic.Int64
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := write(w, i); err != nil {
					errs <- err
					return
				}
				if written.Add(1) == writers*each/3 {
					close(halfway)
				}
			}
		})
	}
	<-halfway
	eventually(t, func() bool { return collected() > 0 })
	// Killed: the collector's connection is gone under it, then the
	// process stops. The writers carry on.
	_ = conn.Close()
	stop()
	down := collected()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if down >= writers*each {
		t.Fatalf("all %d records were collected before the collector died; the test proves nothing", down)
	}
	time.Sleep(200 * time.Millisecond)
	if got := collected(); got != down {
		t.Fatalf("%d records collected while the access service was down (%d before)", got, down)
	}

	pending := int64(0)
	if info, err := events.Inspect(ctx, srv.Client, store.Keyspace("councils").Audit()); err == nil && len(info) == 1 && len(info[0].Groups) == 1 {
		pending = info[0].Groups[0].Pending
	}

	conn, stop = start()
	defer func() { stop(); _ = conn.Close() }()
	eventually(t, func() bool { return collected() >= writers*each })
	eventually(t, func() bool {
		info, err := events.Inspect(ctx, srv.Client, store.Keyspace("councils").Audit())
		return err == nil && len(info) == 1 && len(info[0].Groups) == 1 && info[0].Groups[0].Pending == 0 && info[0].Groups[0].Lag == 0
	})
	// Exactly one record per write: as many as writes, each resource once.
	keys, err := srv.Client.Keys(ctx, access.Keyspace.Key("record", "*")).Result()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, k := range keys {
		raw, err := srv.Client.HGet(ctx, k, "pb").Bytes()
		if err != nil {
			t.Fatal(err)
		}
		var r accessv1.AuditRecord
		if err := proto.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		seen[r.GetResource()]++
		if r.GetPrincipal() != council.GetId() || len(r.GetTraceId()) != 32 {
			t.Fatalf("record %v", &r)
		}
	}
	if len(keys) != writers*each || len(seen) != writers*each {
		t.Fatalf("%d records for %d distinct resources, want %d of each (one per write)", len(keys), len(seen), writers*each)
	}
	t.Logf("%d of %d records collected before the collector died (%d read and left pending), the rest after its restart", down, writers*each, pending)
}
