package enrolment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/kompetensnav/kompetensnav/services/enrolment/pii"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
)

// DefaultRotateBatch is how many participants a rotation reads per round
// trip.
const DefaultRotateBatch = 500

// RotateOptions configure RotatePIIKey.
type RotateOptions struct {
	// Batch is how many participants are read in one pipelined round trip
	// (default DefaultRotateBatch).
	Batch int
	// Progress, when set, is called after every batch with the totals so
	// far (the command logs them). It runs on the rotating goroutine.
	Progress func(Rotation)
}

// Rotation is what a key rotation found and did.
type Rotation struct {
	SealingKey string // id of the key everything is sealed with now
	Scanned    int    // participants looked at
	Resealed   int    // sealed again with the sealing key by this run
	// Current were sealed with the sealing key already: by an earlier run
	// that was interrupted, or written since the key became first.
	Current int
	// Unknown counts, by key id, participants sealed with a key that is
	// not configured: they cannot be read, so no configured key may be
	// dropped on their account, and the rotation is not complete.
	Unknown map[string]int
}

// UnknownTotal is the number of participants sealed with keys not
// configured.
func (r Rotation) UnknownTotal() int {
	n := 0
	for _, c := range r.Unknown {
		n += c
	}
	return n
}

// UnknownKeys are the ids of those keys, sorted.
func (r Rotation) UnknownKeys() []string { return slices.Sorted(maps.Keys(r.Unknown)) }

// RotatePIIKey seals again with the sealing key (the first of the
// configured encryption keys) every participant whose personal data another
// configured key sealed, so that the other keys can then be removed. It is
// what `kompetensnav rotate-pii-key` runs, and what the service does at
// start-up when more than one key is configured.
//
// It goes through the participants in batches: one pipelined read of a
// batch's sealed data, then one atomic write per participant to reseal, on
// condition that the participant did not change meanwhile (else it is read
// again). Nothing is kept between runs, and none is needed: a participant
// already sealed with the sealing key is counted Current and left alone, so
// a run that was interrupted (killed, Redis gone) is resumed by running it
// again, which redoes no work but the reads. A resealed participant keeps
// its etag: its resource did not change.
//
// The blind-index key must be the one the index was built with (as at
// start-up): the rotation does not need it, but a configuration with
// another one is a wrong Secret, and the service would refuse to start on it.
func (s *Service) RotatePIIKey(ctx context.Context, o RotateOptions) (Rotation, error) {
	if o.Batch <= 0 {
		o.Batch = DefaultRotateBatch
	}
	r := Rotation{SealingKey: s.keys.SealingKeyID(), Unknown: map[string]int{}}
	recorded, err := s.rdb.Get(ctx, indexKeyIDKey()).Result()
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		return r, s.st.Err(ctx, err)
	case recorded != s.keys.IndexKeyID() && !s.keys.Generated:
		return r, fmt.Errorf("the participants' blind index was built with the key %s, but KN_PII_INDEX_KEY is the key %s: "+
			"configure the keys the service runs with", recorded, s.keys.IndexKeyID())
	}
	err = s.st.Scan(ctx, Keyspace.Key("participant", "*"), func(keys []string) error {
		for batch := range slices.Chunk(keys, o.Batch) {
			if err := s.rotateBatch(ctx, batch, &r); err != nil {
				return err
			}
			if o.Progress != nil {
				o.Progress(r)
			}
		}
		return nil
	})
	return r, err
}

// rotateBatch reads the sealed data of keys in one round trip and reseals
// what needs it.
func (s *Service) rotateBatch(ctx context.Context, keys []string, r *Rotation) error {
	pipe := s.rdb.Pipeline()
	reads := make([]*redis.SliceCmd, len(keys))
	for i, key := range keys {
		reads[i] = pipe.HMGet(ctx, key, "pb", fieldPII)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return s.st.Err(ctx, err)
	}
	for i, key := range keys {
		vals, err := reads[i].Result()
		if err != nil {
			return s.st.Err(ctx, err)
		}
		for attempt := 0; ; attempt++ {
			pb, ok := vals[0].(string)
			sealed, _ := vals[1].(string)
			if !ok || sealed == "" {
				break // gone, or not a participant's hash
			}
			if attempt == 0 {
				r.Scanned++
			}
			id := pii.KeyOf([]byte(sealed))
			if id == r.SealingKey {
				r.Current++
				break
			}
			if !slices.Contains(s.keys.KeyIDs(), id) {
				r.Unknown[id]++
				break
			}
			err := s.resealOne(ctx, key, []byte(pb), []byte(sealed))
			if err == nil {
				r.Resealed++
				break
			}
			if !errors.Is(err, store.ErrConflict) || attempt == 20 {
				return fmt.Errorf("re-encrypting %s: %w", key, err)
			}
			// Changed since it was read: read it again.
			if vals, err = s.rdb.HMGet(ctx, key, "pb", fieldPII).Result(); err != nil {
				return s.st.Err(ctx, err)
			}
		}
	}
	return nil
}

// resealOne seals the participant at key (its bytes pb and sealed data as
// read) again with the sealing key, on condition that its etag is still the
// one read (store.ErrConflict otherwise).
func (s *Service) resealOne(ctx context.Context, key string, pb, sealed []byte) error {
	p := newParticipant()
	if err := s.unmarshal(ctx, key, pb, p); err != nil {
		return err
	}
	plain, err := s.keys.Open(sealed, []byte(p.GetName()))
	if err != nil {
		return err
	}
	tx := s.st.Tx()
	tx.EtagIs(key, p.GetEtag(), nil)
	tx.HSet(key, fieldPII, s.keys.Seal(plain, []byte(p.GetName())))
	_, err = tx.Commit(ctx)
	return err
}

// reseal is RotatePIIKey at start-up (more than one key configured), with
// its progress and outcome logged.
func (s *Service) reseal(ctx context.Context) error {
	log := s.log.With("sealing_key", s.keys.SealingKeyID())
	next := rebuildProgressEvery
	r, err := s.RotatePIIKey(ctx, RotateOptions{Progress: func(r Rotation) {
		if r.Scanned >= next {
			next += rebuildProgressEvery
			log.InfoContext(ctx, "re-encrypting personal data", "scanned", r.Scanned, "resealed", r.Resealed)
		}
	}})
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if r.UnknownTotal() > 0 {
		level = slog.LevelError
	}
	log.Log(ctx, level, "personal data re-encrypted: every participant readable is sealed with the first key; older keys may be removed once no participant needs them",
		"resealed", r.Resealed, "sealed_with_unknown_keys", r.UnknownTotal())
	return nil
}
