package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/cmd/kompetensnav/internal/app"
	"github.com/kompetensnav/kompetensnav/gateway"
	"github.com/kompetensnav/kompetensnav/services/platform/redisx"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
)

// The Sentinel failover test: the all-in-one on a primary + replica behind
// three Sentinels takes writes over REST in a bounded loop; the replica is
// cut off from the primary (its link killed, the replica paused so it cannot
// reconnect: a partition, or a replica that lags), a few more writes are
// sent, the primary is killed with SIGKILL, and the Sentinels promote the
// replica. The service must find the new primary by itself and keep
// serving. Then every write it acknowledged is read back: those missing
// are acknowledged writes lost in the failover.
//
// Without -redis-wait-replicas the writes sent while the replica was cut
// off are acknowledged and then lost. With -redis-wait-replicas 1 they are
// answered 503 instead (not confirmed by a replica), and nothing
// acknowledged is lost. The figures are logged (go test -v; make
// test-cluster prints them).
func TestSentinelFailover(t *testing.T) {
	if testkit.Topology() != "sentinel" {
		t.Skip("skipped: the failover test runs with KN_TEST_REDIS=sentinel (make test-cluster)")
	}
	for _, waitReplicas := range []int{0, 1} {
		t.Run(fmt.Sprintf("wait-replicas=%d", waitReplicas), func(t *testing.T) {
			f := failover(t, waitReplicas)
			t.Logf("FAILOVER -redis-wait-replicas=%d: %d writes acknowledged, %d of them lost; "+
				"while the replica was cut off %d of %d writes were acknowledged; failover took %s; "+
				"%d writes refused (503) around the failover before the service wrote again",
				waitReplicas, f.acked, len(f.lost), f.isolatedAcked, isolatedWrites, f.failoverTook.Round(100*time.Millisecond), f.refused)
			if f.acked < 2*steadyWrites {
				t.Fatalf("only %d writes acknowledged: the service did not keep serving", f.acked)
			}
			for _, id := range f.lost {
				if !f.isolated[id] {
					t.Errorf("lost %s, which was written while the replica was in sync", id)
				}
			}
			if waitReplicas == 0 {
				// The documented risk, shown: asynchronous replication
				// acknowledges what the replica never got.
				if f.isolatedAcked != isolatedWrites || len(f.lost) != isolatedWrites {
					t.Fatalf("without WAIT: %d of %d isolated writes acknowledged and %d lost, want all of them acknowledged and lost",
						f.isolatedAcked, isolatedWrites, len(f.lost))
				}
			} else if f.isolatedAcked != 0 || len(f.lost) != 0 {
				t.Fatalf("with WAIT 1: %d isolated writes acknowledged and %d acknowledged writes lost, want none",
					f.isolatedAcked, len(f.lost))
			}
		})
	}
}

const (
	steadyWrites   = 20 // before the partition, and again after the failover
	isolatedWrites = 5  // while the replica is cut off
)

type failoverResult struct {
	acked, isolatedAcked, refused int
	isolated                      map[string]bool
	lost                          []string
	failoverTook                  time.Duration
}

func failover(t *testing.T, waitReplicas int) failoverResult {
	s := testkit.StartSentinel(t)
	opts := redisx.WithSettings(s.Options(), redisx.Settings{WaitReplicas: waitReplicas, WaitReplicasTimeout: 300 * time.Millisecond})
	a, err := app.Start(context.Background(), app.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", Redis: opts, Logger: testkit.Logger(),
		Gateway: gateway.Config{AnonymousRate: 10_000},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop(5 * time.Second) })
	c := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	ctx := context.Background()

	res := failoverResult{isolated: map[string]bool{}}
	var acked []string
	n := 0
	write := func() int {
		n++
		id := "raad-" + strconv.Itoa(n)
		r := c.do("POST", "/v1/councils?councilId="+id, map[string]any{"displayName": "Råd " + strconv.Itoa(n), "sector": "SECTOR_OTHER"})
		if r.status == http.StatusOK {
			acked = append(acked, id)
		}
		return r.status
	}
	for range steadyWrites {
		if st := write(); st != http.StatusOK {
			t.Fatalf("a write before the failover: %d", st)
		}
	}
	// Everything so far is on the replica before it is cut off.
	waitInSync(t, s)
	if err := s.Replica.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := s.Primary.Client.ClientKillByFilter(ctx, "TYPE", "replica").Err(); err != nil {
		t.Fatal(err)
	}
	for range isolatedWrites {
		id := "raad-" + strconv.Itoa(n+1)
		res.isolated[id] = true
		if st := write(); st == http.StatusOK {
			res.isolatedAcked++
		} else if st != http.StatusServiceUnavailable {
			t.Fatalf("a write while the replica was cut off: %d, want 200 or 503", st)
		}
	}
	if err := s.Primary.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := s.Replica.Resume(); err != nil {
		t.Fatal(err)
	}
	if res.failoverTook, err = s.WaitFailover(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	// The old primary comes back (empty: no persistence here) as a replica
	// of the new one; WAIT 1 needs it to confirm writes again. Were it to
	// come back as a primary, empty, the promoted replica could be made to
	// sync from it and lose everything (Redis's replication docs on
	// primaries without persistence): seen here about one run in two.
	if err := s.Primary.RestartAsReplicaOf(s.Replica.Addr); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for ok := 0; ok < steadyWrites; {
		if time.Now().After(deadline) {
			t.Fatalf("the service did not keep serving after the failover: %d writes succeeded, %d refused", ok, res.refused)
		}
		switch st := write(); st {
		case http.StatusOK:
			ok++
		case http.StatusServiceUnavailable:
			res.refused++
			time.Sleep(100 * time.Millisecond)
		default:
			t.Fatalf("a write after the failover: %d", st)
		}
	}
	res.acked = len(acked)
	for _, id := range acked {
		switch r := c.do("GET", "/v1/councils/"+id, nil); r.status {
		case http.StatusOK:
		case http.StatusNotFound:
			res.lost = append(res.lost, id)
		default:
			t.Fatalf("reading %s back: %d %s", id, r.status, r.raw)
		}
	}
	return res
}

// waitInSync waits until the replica has processed everything the primary
// has written.
func waitInSync(t *testing.T, s *testkit.Sentinel) {
	t.Helper()
	offset := func(c redis.UniversalClient, field string) string {
		info, err := c.Info(context.Background(), "replication").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, field+":"); ok {
				return v
			}
		}
		return ""
	}
	deadline := time.Now().Add(10 * time.Second)
	for offset(s.Primary.Client, "master_repl_offset") != offset(s.Replica.Client, "slave_repl_offset") {
		if time.Now().After(deadline) {
			t.Fatal("the replica did not catch up")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
