package testkit_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
)

// The Cluster is real: keys of one hash tag share a slot and a multi-key
// command across two tags is refused (CROSSSLOT), which is what the
// store's one-slot-per-service design has to avoid.
func TestClusterIsARealThreeMasterCluster(t *testing.T) {
	c := testkit.StartCluster(t)
	rdb := c.Client(t)
	ctx := context.Background()
	var masters atomic.Int32
	if err := rdb.(*redis.ClusterClient).ForEachMaster(ctx, func(context.Context, *redis.Client) error {
		masters.Add(1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if masters.Load() != 3 {
		t.Fatalf("%d masters, want 3", masters.Load())
	}
	if err := rdb.MSet(ctx, "kn:{councils}:a", "1", "kn:{councils}:b", "2").Err(); err != nil {
		t.Fatalf("one hash tag, one slot: %v", err)
	}
	err := rdb.Do(ctx, "mset", "kn:{councils}:c", "1", "kn:{access}:c", "2").Err()
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("two hash tags in one command: %v, want CROSSSLOT", err)
	}
}

// A client given the Sentinels finds the primary, and what it writes
// reaches the replica.
func TestSentinelSetReplicates(t *testing.T) {
	s := testkit.StartSentinel(t)
	rdb := s.Client(t)
	ctx := context.Background()
	if err := rdb.Set(ctx, "kn:{councils}:x", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, _ := s.Replica.Client.Get(ctx, "kn:{councils}:x").Result()
		if v == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("write did not reach the replica")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if addr, err := s.MasterAddr(); err != nil || addr != s.Primary.Addr {
		t.Fatalf("sentinels name %q (%v), want the primary %s", addr, err, s.Primary.Addr)
	}
}
