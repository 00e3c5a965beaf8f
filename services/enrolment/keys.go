package enrolment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/kompetensnav/kompetensnav/services/enrolment/pii"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
)

// checkKeys compares the configured keys with the stored data before the
// service serves:
//
//   - the blind index must have been built with the configured index key
//     (its id is recorded with the first participant): with another key,
//     lookups would find nobody and a person could be registered twice.
//     That refuses to start, unless the keys were generated for this
//     process (the all-in-one without keys, which warns instead: the data
//     of an earlier run is unreadable anyway);
//   - with more than one encryption key configured (a rotation), every
//     participant sealed with an older key is sealed again with the first,
//     and the log says when none is left, so the old key can go.
func (s *Service) checkKeys(ctx context.Context) error {
	recorded, err := s.rdb.Get(ctx, indexKeyIDKey()).Result()
	switch {
	case errors.Is(err, redis.Nil):
		if err := s.rdb.SetNX(ctx, indexKeyIDKey(), s.keys.IndexKeyID(), 0).Err(); err != nil {
			return s.st.Err(ctx, err)
		}
	case err != nil:
		return s.st.Err(ctx, err)
	case recorded != s.keys.IndexKeyID():
		if !s.keys.Generated {
			return fmt.Errorf("the participants' blind index was built with the key %s, but KN_PII_INDEX_KEY is the key %s: "+
				"with it nobody could be looked up and people could be registered twice; configure the key the data was written with", recorded, s.keys.IndexKeyID())
		}
		s.log.WarnContext(ctx, "participants of an earlier run were protected with keys this process does not have (none configured, so new ones were generated): "+
			"their personal data cannot be read and their personal identity numbers are not found; set KN_PII_KEY and KN_PII_INDEX_KEY to keep data across runs",
			"index_key_then", recorded, "index_key_now", s.keys.IndexKeyID())
		return nil
	}
	if len(s.keys.KeyIDs()) > 1 {
		return s.reseal(ctx)
	}
	return nil
}

// reseal seals again, with the sealing key, every participant's personal
// data that an older key sealed: one atomic write each, on condition that
// the participant did not change meanwhile (then it is read again).
func (s *Service) reseal(ctx context.Context) error {
	log := s.log.With("sealing_key", s.keys.SealingKeyID())
	resealed, unknown := 0, 0
	err := s.st.Scan(ctx, Keyspace.Key("participant", "*"), func(keys []string) error {
		for _, key := range keys {
			for attempt := 0; ; attempt++ {
				done, err := s.resealOne(ctx, key)
				if errors.Is(err, pii.ErrUnknownKey) {
					unknown++
					break
				}
				if err == nil {
					if done {
						resealed++
						if resealed%rebuildProgressEvery == 0 {
							log.InfoContext(ctx, "re-encrypting personal data", "done", resealed)
						}
					}
					break
				}
				if !errors.Is(err, store.ErrConflict) || attempt == 20 {
					return fmt.Errorf("re-encrypting %s: %w", key, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if unknown > 0 {
		level = slog.LevelError
	}
	log.Log(ctx, level, "personal data re-encrypted: every participant readable is sealed with the first key; older keys may be removed once no participant needs them",
		"resealed", resealed, "sealed_with_unknown_keys", unknown)
	return nil
}

func (s *Service) resealOne(ctx context.Context, key string) (bool, error) {
	vals, err := s.rdb.HMGet(ctx, key, "pb", fieldPII).Result()
	if err != nil {
		return false, s.st.Err(ctx, err)
	}
	pb, ok := vals[0].(string)
	sealedPII, _ := vals[1].(string)
	// An erased participant has no sealed data left to seal again.
	if !ok || sealedPII == "" || pii.KeyOf([]byte(sealedPII)) == s.keys.SealingKeyID() {
		return false, nil
	}
	p := newParticipant()
	if err := s.unmarshal(ctx, key, []byte(pb), p); err != nil {
		return false, err
	}
	plain, err := s.keys.Open([]byte(sealedPII), []byte(p.GetName()))
	if err != nil {
		return false, err
	}
	tx := s.st.Tx()
	tx.EtagIs(key, p.GetEtag(), nil)
	tx.HSet(key, fieldPII, s.keys.Seal(plain, []byte(p.GetName())))
	if _, err := tx.Commit(ctx); err != nil {
		return false, err
	}
	return true, nil
}
