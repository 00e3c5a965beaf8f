package enrolment_test

import (
	"crypto/rand"
	"strings"
	"testing"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/enrolment"
	"github.com/kompetensnav/kompetensnav/services/enrolment/pii"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
)

func randomKey() []byte {
	b := make([]byte, pii.KeySize)
	_, _ = rand.Read(b)
	return b
}

// Rotating the encryption key: start once with the new key first and the
// old one after it; everything is sealed again with the new key, after
// which the old key can go. The blind index stays valid throughout.
func TestKeyRotation(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		oldKey, newKey, index := randomKey(), randomKey(), randomKey()
		keys := func(enc ...[]byte) *pii.Keys {
			k, err := pii.New(enc, index)
			if err != nil {
				t.Fatal(err)
			}
			return k
		}
		e := newEnv(t, rdb, keys(oldKey))
		var names []string
		for i := range 5 {
			names = append(names, mustParticipant(t, e, person(nthNumber(i))).GetName())
		}
		// An erased participant has no sealed data: rotation passes it by.
		gone := mustParticipant(t, e, person(nthNumber(99))).GetName()
		if _, err := erase(e, gone); err != nil {
			t.Fatal(err)
		}
		// Only the new key: the old data does not open, and says so.
		e2 := newEnv(t, rdb, keys(newKey))
		_, err := e2.c.GetParticipant(ctx, &enrolmentv1.GetParticipantRequest{Name: names[0]})
		if st := wantCode(t, err, codes.DataLoss); !strings.Contains(st.Message(), keys(oldKey).SealingKeyID()) {
			t.Fatal(st.Message())
		}
		// Both: started once, every participant is sealed again.
		newEnv(t, rdb, keys(newKey, oldKey))
		for _, n := range names {
			id := strings.TrimPrefix(n, "participants/")
			sealed, _ := rdb.HGet(ctx, "kn:{enrolment}:participant:"+id, "pii").Bytes()
			if pii.KeyOf(sealed) != keys(newKey).SealingKeyID() {
				t.Fatalf("%s still sealed with %s", n, pii.KeyOf(sealed))
			}
		}
		// Now the new key alone reads everything, and lookups still work.
		e3 := newEnv(t, rdb, keys(newKey))
		if got, err := e3.c.GetParticipant(ctx, &enrolmentv1.GetParticipantRequest{Name: gone}); err != nil ||
			got.GetState() != enrolmentv1.Participant_STATE_ERASED || rdb.HExists(ctx, "kn:{enrolment}:participant:"+strings.TrimPrefix(gone, "participants/"), "pii").Val() {
			t.Fatalf("the erased participant after rotation: %v %v", got, err)
		}
		for i, n := range names {
			got, err := e3.c.LookupParticipant(ctx, &enrolmentv1.LookupParticipantRequest{PersonalIdentityNumber: nthNumber(i),
				View: enrolmentv1.Participant_FULL})
			if err != nil || got.GetName() != n || got.GetPersonalIdentityNumber() != nthNumber(i) {
				t.Fatalf("after rotation: %v %v", got, err)
			}
		}
	})
}

// A blind-index key other than the one the index was built with would
// silently break lookups and uniqueness: the service refuses to start,
// unless its keys were generated for the run (then it warns).
func TestIndexKeyMismatchRefusesToStart(t *testing.T) {
	rdb := testkit.Redis(t)
	enc := randomKey()
	first, _ := pii.New([][]byte{enc}, randomKey())
	newEnv(t, rdb, first)
	other, _ := pii.New([][]byte{enc}, randomKey())
	svc, err := enrolment.New(enrolment.Options{Redis: rdb, Logger: testkit.Logger(), Keys: other})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Migrate(ctx); err == nil || !strings.Contains(err.Error(), first.IndexKeyID()) {
		t.Fatalf("Migrate with another index key: %v", err)
	}
	gen, err := enrolment.New(enrolment.Options{Redis: rdb, Logger: testkit.Logger(), Keys: pii.Generate()})
	if err != nil {
		t.Fatal(err)
	}
	if err := gen.Migrate(ctx); err != nil {
		t.Fatalf("generated keys: %v", err)
	}
}
