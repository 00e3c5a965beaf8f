package enrolment_test

import (
	"context"
	"strings"
	"testing"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/enrolment"
	"github.com/kompetensnav/kompetensnav/services/enrolment/pii"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
)

// sealedWith counts participants by the id of the key their personal data
// is sealed with, from Redis directly.
func sealedWith(t testing.TB, rdb redis.UniversalClient) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, key := range testkit.Keys(t, rdb, enrolment.Keyspace.Key("participant", "*")) {
		b, err := rdb.HGet(ctx, key, "pii").Bytes()
		if err != nil {
			t.Fatal(err)
		}
		out[pii.KeyOf(b)]++
	}
	return out
}

// A rotation interrupted after its first batch has resealed that batch and
// nothing more; run again, it reseals exactly the rest (the first batch is
// found current, not redone), after which the new key alone reads every
// participant and lookups by number still work.
func TestRotatePIIKeyInBatchesAndResumes(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		oldKey, newKey, index := randomKey(), randomKey(), randomKey()
		keys := func(enc ...[]byte) *pii.Keys {
			k, err := pii.New(enc, index)
			if err != nil {
				t.Fatal(err)
			}
			return k
		}
		const n, batch = 23, 5
		e := newEnv(t, rdb, keys(oldKey))
		for i := range n {
			mustParticipant(t, e, person(nthNumber(i)))
		}
		oldID, newID := keys(oldKey).SealingKeyID(), keys(newKey).SealingKeyID()
		if got := sealedWith(t, rdb); got[oldID] != n {
			t.Fatalf("before: %v", got)
		}
		// The command's service: both keys, the new first, not started
		// (Migrate would reseal by itself).
		svc, err := enrolment.New(enrolment.Options{Redis: rdb, Logger: testkit.Logger(), Keys: keys(newKey, oldKey)})
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		var progress []enrolment.Rotation
		r, err := svc.RotatePIIKey(cctx, enrolment.RotateOptions{Batch: batch, Progress: func(r enrolment.Rotation) {
			progress = append(progress, r)
			cancel() // killed after its first batch
		}})
		if err == nil {
			t.Fatal("an interrupted rotation reported success")
		}
		if len(progress) != 1 || r.Resealed != batch || r.Scanned != batch {
			t.Fatalf("interrupted: %+v after %d batches", r, len(progress))
		}
		if got := sealedWith(t, rdb); got[newID] != batch || got[oldID] != n-batch {
			t.Fatalf("after the interruption: %v", got)
		}

		progress = nil
		r, err = svc.RotatePIIKey(ctx, enrolment.RotateOptions{Batch: batch, Progress: func(r enrolment.Rotation) {
			progress = append(progress, r)
		}})
		if err != nil {
			t.Fatal(err)
		}
		if r.Scanned != n || r.Resealed != n-batch || r.Current != batch || r.UnknownTotal() != 0 || r.SealingKey != newID {
			t.Fatalf("resumed: %+v", r)
		}
		if len(progress) < (n+batch-1)/batch {
			t.Fatalf("%d progress reports for %d participants in batches of %d", len(progress), n, batch)
		}
		if got := sealedWith(t, rdb); got[newID] != n || len(got) != 1 {
			t.Fatalf("after the rotation: %v", got)
		}
		// Run once more: nothing to do.
		if r, err = svc.RotatePIIKey(ctx, enrolment.RotateOptions{}); err != nil || r.Resealed != 0 || r.Current != n {
			t.Fatalf("again: %+v %v", r, err)
		}

		e2 := newEnv(t, rdb, keys(newKey))
		for i := range n {
			got, err := e2.c.LookupParticipant(ctx, &enrolmentv1.LookupParticipantRequest{PersonalIdentityNumber: nthNumber(i),
				View: enrolmentv1.Participant_FULL})
			if err != nil || got.GetPersonalIdentityNumber() != nthNumber(i) {
				t.Fatalf("participant %d with the new key alone: %v %v", i, got, err)
			}
		}
	})
}

// Participants sealed with a key not configured are counted by key id (the
// rotation is incomplete: the command fails on them), and a blind-index
// key other than the data's is refused before anything is written.
func TestRotatePIIKeyReportsUnknownKeysAndRefusesAnotherIndexKey(t *testing.T) {
	rdb := testkit.Redis(t)
	lost, oldKey, newKey, index := randomKey(), randomKey(), randomKey(), randomKey()
	keys := func(idx []byte, enc ...[]byte) *pii.Keys {
		k, err := pii.New(enc, idx)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	e := newEnv(t, rdb, keys(index, lost))
	mustParticipant(t, e, person(nthNumber(0)))
	mustParticipant(t, e, person(nthNumber(1)))
	e = newEnv(t, rdb, keys(index, oldKey))
	mustParticipant(t, e, person(nthNumber(2)))

	svc, err := enrolment.New(enrolment.Options{Redis: rdb, Logger: testkit.Logger(), Keys: keys(index, newKey, oldKey)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := svc.RotatePIIKey(ctx, enrolment.RotateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lostID := keys(index, lost).SealingKeyID()
	if r.Resealed != 1 || r.UnknownTotal() != 2 || r.Unknown[lostID] != 2 || r.UnknownKeys()[0] != lostID {
		t.Fatalf("%+v", r)
	}

	before := sealedWith(t, rdb)
	other, err := enrolment.New(enrolment.Options{Redis: rdb, Logger: testkit.Logger(), Keys: keys(randomKey(), newKey, oldKey)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.RotatePIIKey(ctx, enrolment.RotateOptions{}); err == nil || !strings.Contains(err.Error(), "blind index") {
		t.Fatalf("another index key: %v", err)
	}
	after := sealedWith(t, rdb)
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("written with another index key: %v → %v", before, after)
		}
	}
}
