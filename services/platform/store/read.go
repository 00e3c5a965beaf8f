package store

import (
	"context"
	"errors"
	"math"
	"strconv"

	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/audit"
	"github.com/redis/go-redis/v9"
)

// HashFields reads fields of the hashes at keys in one round trip: out[i][j]
// is field j of keys[i], "" where the key or field does not exist. It reads
// what a service keeps beside a resource's bytes in the same hash (written
// with Tx.HSet), such as an API key's secret hash.
func (s *Store) HashFields(ctx context.Context, keys []string, fields ...string) ([][]string, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HMGet(ctx, k, fields...)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.Err(ctx, err)
	}
	out := make([][]string, len(keys))
	for i, c := range cmds {
		out[i] = make([]string, len(fields))
		for j, v := range c.Val() {
			out[i][j], _ = v.(string)
		}
	}
	return out, nil
}

// ScoreRange is a slice of a sorted set read highest score first: members
// with a score in [Min, Max] (Max itself left out with MaxExclusive), at
// most Count of them.
type ScoreRange struct {
	Max, Min     float64
	MaxExclusive bool
	Count        int64
}

// RangeDesc reads the members of the sorted set at key in r, highest score
// first, with their scores: one bounded read for keyset paging newest
// first.
func (s *Store) RangeDesc(ctx context.Context, key string, r ScoreRange) ([]redis.Z, error) {
	maxScore := formatScore(r.Max)
	if r.MaxExclusive {
		maxScore = "(" + maxScore
	}
	zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{
		Max: maxScore, Min: formatScore(r.Min), Count: r.Count,
	}).Result()
	if err != nil {
		return nil, s.Err(ctx, err)
	}
	return zs, nil
}

func formatScore(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// Audit appends rec to the service's audit stream on its own, for the
// records that go with no write: a refused call, a read of personal data.
// (A write's record goes in the write's own Tx; see Tx.Commit.)
func (s *Store) Audit(ctx context.Context, rec *accessv1.AuditRecord) error {
	b, err := audit.Marshal(rec)
	if err != nil {
		return err
	}
	err = s.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: s.ks.Audit(), Values: []any{audit.Field, b},
	}).Err()
	return s.Err(ctx, err)
}
