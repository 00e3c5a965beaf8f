package enrolment

import (
	"context"
	"errors"
	"fmt"

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
