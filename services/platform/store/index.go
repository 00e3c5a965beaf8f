package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// IndexEntry is one membership of a resource in a sorted-set index: the
// index key and the member (all members score 0 and sort by their bytes,
// so a member is "<sort key>\x01<resource name>"; see listing).
type IndexEntry struct {
	Key, Member string
}

// fieldIndex is the hash field where a resource remembers its index
// memberships, so the write script can remove the stale ones without Go
// reading the previous version.
const fieldIndex = "ix"

// entrySep separates key and member in the remembered memberships; neither
// may contain it or a newline.
const entrySep = "\x02"

// SetIndex makes the resource at key (written in this Tx or before) a
// member of exactly the given index entries: memberships it had and no
// longer has are removed, new ones added, in the same atomic step as the
// rest of the Tx. Call it after Put.
func (t *Tx) SetIndex(key string, entries []IndexEntry) {
	var b strings.Builder
	for _, e := range entries {
		if strings.ContainsAny(e.Key, "\n"+entrySep) || strings.ContainsAny(e.Member, "\n"+entrySep) || e.Key == "" {
			t.evErrs = append(t.evErrs, fmt.Errorf("index entry %q/%q holds a newline or \\x02", e.Key, e.Member))
			return
		}
		b.WriteString(e.Key)
		b.WriteString(entrySep)
		b.WriteString(e.Member)
		b.WriteByte('\n')
	}
	t.plan.Writes = append(t.plan.Writes, planWrite{Op: "index", K: t.key(key), V: t.arg(b.String()), B: t.branch})
}

// DropIndex removes every index membership of the resource at key. Call it
// before Del.
func (t *Tx) DropIndex(key string) {
	t.plan.Writes = append(t.plan.Writes, planWrite{Op: "unindex", K: t.key(key), B: t.branch})
}

// Range reads up to n members of the sorted-set index at key that come
// after the member after ("" means from the start), in byte order: one
// ZRANGE … BYLEX LIMIT, whatever the index's size.
func (s *Store) Range(ctx context.Context, key, after string, n int) ([]string, error) {
	start := "-"
	if after != "" {
		start = "(" + after
	}
	return s.RangeLex(ctx, key, start, "+", n)
}

// RangeLex reads up to n members of the sorted-set index at key between
// start and stop, given as ZRANGE … BYLEX takes them ("-", "+", "[x", "(x").
func (s *Store) RangeLex(ctx context.Context, key, start, stop string, n int) ([]string, error) {
	z := redis.ZRangeArgs{Key: key, ByLex: true, Start: start, Stop: stop, Count: int64(n)}
	ms, err := s.rdb.ZRangeArgs(ctx, z).Result()
	if err != nil {
		return nil, s.Err(ctx, err)
	}
	return ms, nil
}

// Cards is the number of members of each of the sorted sets at keys, in one
// round trip.
func (s *Store) Cards(ctx context.Context, keys ...string) ([]int64, error) {
	cmds := make([]*redis.IntCmd, len(keys))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.ZCard(ctx, k)
		}
		return nil
	})
	if err != nil {
		return nil, s.Err(ctx, err)
	}
	out := make([]int64, len(keys))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// Scan calls fn with batches of the service's keys matching pattern (a
// SCAN pattern such as kn:{councils}:need:*), for migrations. Keys added or
// removed during the scan may or may not be seen. fn is never called
// concurrently (on a Cluster the masters are scanned side by side).
func (s *Store) Scan(ctx context.Context, pattern string, fn func(keys []string) error) error {
	var mu sync.Mutex
	scan := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				mu.Lock()
				err := fn(keys)
				mu.Unlock()
				if err != nil {
					return err
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	var err error
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, s.rdb)
	}
	return err
}

// Migrate runs fn once per store for each version of the migration called
// name: when the version recorded in kn:{svc}:migration:<name> is below
// version (or absent), fn runs and then the version is recorded. fn must be
// idempotent: replicas starting together may both run it, and a run that
// failed half way runs again at the next start.
func (s *Store) Migrate(ctx context.Context, name string, version int, fn func(ctx context.Context, log *slog.Logger) error) error {
	key := s.ks.Key("migration", name)
	cur, err := s.rdb.Get(ctx, key).Int()
	if err != nil && !errors.Is(err, redis.Nil) {
		return s.Err(ctx, err)
	}
	if cur >= version {
		return nil
	}
	log := s.log.With("migration", name, "version", version)
	log.InfoContext(ctx, "migration starting", "from_version", cur)
	start := time.Now()
	if err := fn(ctx, log); err != nil {
		return fmt.Errorf("migration %s to version %d: %w", name, version, err)
	}
	if err := s.rdb.Set(ctx, key, strconv.Itoa(version), 0).Err(); err != nil {
		return s.Err(ctx, err)
	}
	log.InfoContext(ctx, "migration done", "took", time.Since(start).Round(time.Millisecond))
	return nil
}
