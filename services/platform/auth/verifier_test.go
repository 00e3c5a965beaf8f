package auth_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// fakeAccess answers GetPrincipal from a table it can change (a key
// revoked), counting the questions and failing while down.
type fakeAccess struct {
	accessv1.UnimplementedAccessServiceServer
	mu    sync.Mutex
	keys  map[string]*auth.Principal
	down  bool
	calls atomic.Int32
	gate  chan struct{} // when set, GetPrincipal waits for it
}

func (f *fakeAccess) GetPrincipal(ctx context.Context, _ *accessv1.GetPrincipalRequest) (*accessv1.Principal, error) {
	f.calls.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	token, err := auth.BearerToken(ctx)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, status.Error(codes.Unavailable, "down")
	}
	if p, ok := f.keys[token]; ok {
		return p, nil
	}
	return nil, status.Error(codes.Unauthenticated, "invalid credentials: unknown API key")
}

func (f *fakeAccess) set(token string, p *auth.Principal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p == nil {
		delete(f.keys, token)
	} else {
		f.keys[token] = p
	}
}

func verifier(t *testing.T, ttl time.Duration) (*auth.KeyVerifier, *fakeAccess) {
	t.Helper()
	fake := &fakeAccess{keys: map[string]*auth.Principal{}}
	conn := testkit.Serve(t, func(g *grpc.Server) { accessv1.RegisterAccessServiceServer(g, fake) })
	v, err := auth.NewKeyVerifier(conn, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return v, fake
}

func TestVerifierCachesAndRevocationTakesEffectWithinTheTTL(t *testing.T) {
	const ttl = 300 * time.Millisecond
	v, fake := verifier(t, ttl)
	ctx := context.Background()
	key := auth.NewAPIKeySecret("fordon-portal")
	fake.set(key, &auth.Principal{Id: "apiKeys/fordon-portal", Role: auth.Council, Subject: "councils/fordon"})

	for range 5 {
		p, err := v.Authenticate(ctx, key)
		if err != nil || p.GetSubject() != "councils/fordon" {
			t.Fatalf("%v %v", p, err)
		}
	}
	if n := fake.calls.Load(); n != 1 {
		t.Fatalf("%d questions to the access service for 5 calls within the TTL, want 1", n)
	}

	// Revoked: accepted from the cache at most until the TTL, then refused.
	fake.set(key, nil)
	revoked := time.Now()
	deadline := revoked.Add(5 * time.Second)
	for {
		_, err := v.Authenticate(ctx, key)
		if status.Code(err) == codes.Unauthenticated {
			break
		}
		if err != nil {
			t.Fatalf("unexpected %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("a revoked key still works 5s after revocation")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if took := time.Since(revoked); took > ttl+200*time.Millisecond {
		t.Fatalf("revocation took %v with a TTL of %v", took, ttl)
	}
	// The refusal is cached too.
	calls := fake.calls.Load()
	if _, err := v.Authenticate(ctx, key); status.Code(err) != codes.Unauthenticated || fake.calls.Load() != calls {
		t.Fatalf("refusal not cached: %v, calls %d → %d", err, calls, fake.calls.Load())
	}
	// Not an API key at all: the next authenticator's business.
	if _, err := v.Authenticate(ctx, "eyJhbGciOi.x.y"); err != auth.ErrNotMine {
		t.Fatalf("JWT-shaped token: %v", err)
	}
}

func TestVerifierNeverCachesPastExpiryOrAnOutage(t *testing.T) {
	v, fake := verifier(t, auth.MaxCacheTTL)
	ctx := context.Background()
	key := auth.NewAPIKeySecret("kort")
	fake.set(key, &auth.Principal{Id: "apiKeys/kort", Role: auth.Partner, ExpireTime: timestamppb.New(time.Now().Add(200 * time.Millisecond))})
	if _, err := v.Authenticate(ctx, key); err != nil {
		t.Fatal(err)
	}
	time.Sleep(250 * time.Millisecond)
	fake.set(key, nil) // expired: the access service refuses it now
	if _, err := v.Authenticate(ctx, key); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("past its expiry the cached key still works: %v", err)
	}

	// An outage is UNAVAILABLE, and not remembered.
	other := auth.NewAPIKeySecret("annan")
	fake.set(other, &auth.Principal{Id: "apiKeys/annan", Role: auth.Staff})
	fake.mu.Lock()
	fake.down = true
	fake.mu.Unlock()
	if _, err := v.Authenticate(ctx, other); status.Code(err) != codes.Unavailable {
		t.Fatalf("access down: %v, want UNAVAILABLE", err)
	}
	fake.mu.Lock()
	fake.down = false
	fake.mu.Unlock()
	if _, err := v.Authenticate(ctx, other); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
	if _, err := auth.NewKeyVerifier(nil, time.Minute); err == nil {
		t.Fatal("a TTL above 30s was accepted")
	}
}

func TestVerifierAsksOnceForConcurrentCalls(t *testing.T) {
	v, fake := verifier(t, auth.MaxCacheTTL)
	fake.gate = make(chan struct{})
	key := auth.NewAPIKeySecret("many")
	fake.set(key, &auth.Principal{Id: "apiKeys/many", Role: auth.Staff})
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			_, err := v.Authenticate(context.Background(), key)
			errs <- err
		})
	}
	// Let the one question through once it is asked.
	deadline := time.Now().Add(5 * time.Second)
	for fake.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(fake.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := fake.calls.Load(); n > 2 {
		t.Fatalf("%d questions for 50 concurrent calls", n)
	}
}
