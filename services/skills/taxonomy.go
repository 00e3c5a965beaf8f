package skills

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The taxonomy is versioned: every change (a create, an update, a
// deprecation, an import batch) is one atomic write that raises the version
// by one, on condition that the version is still the one the change was
// built on. Changes are rare and small next to reads, so they are simply
// serialised this way: a change that loses the race is built again on the
// new version (a retried import finds the skills the winner wrote, so an
// import of the same file twice changes nothing the second time).
//
// Each skill keeps its history in a sorted set scored by version, whose
// members are the skill as it was from that version on. Reading the
// taxonomy at version N is a read of the skills created by N (a prefix of
// the creation-order index) and, for each, its last revision at or below
// N: one pipelined round trip per page, whatever the history's length.

// maxTaxonomyAttempts bounds how often a change is rebuilt after losing
// the race to another change (50 concurrent imports of different files
// need up to 50).
const maxTaxonomyAttempts = 200

func newSkill() *skillsv1.Skill { return &skillsv1.Skill{} }

// version is the taxonomy's current version (0 before the first skill).
func (s *Service) version(ctx context.Context) (int32, error) {
	v, err := s.rdb.HGet(ctx, taxonomyKey(), "etag").Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, s.st.Err(ctx, err)
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, status.Error(codes.DataLoss, "the taxonomy version could not be read")
	}
	return int32(n), nil
}

// change is one change of the taxonomy being built: the write that makes
// version.
type change struct {
	s       *Service
	tx      *store.Tx
	version int32
	now     *timestamppb.Timestamp
	written int
}

// put writes a skill as it is from this change on: the resource, its
// revision, its list and search index entries, and its event.
func (c *change) put(sk *skillsv1.Skill, event string) error {
	sk.UpdateVersion, sk.UpdateTime = c.version, c.now
	id := skillID(sk.GetName())
	if err := c.tx.Put(skillKey(id), sk); err != nil {
		return err
	}
	// Marshalled after Put, so the revision carries the new etag.
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(sk)
	if err != nil {
		return err
	}
	c.tx.ZAdd(revisionsKey(id), float64(c.version), versionKey(c.version)+string(b))
	indexSkill(c.tx, sk)
	c.tx.Emit(event, sk.GetName(), sk)
	c.written++
	return nil
}

// errVersionMoved says the version changed while an unchanged answer was
// being built: build again.
var errVersionMoved = errors.New("taxonomy version moved")

// changeTaxonomy builds a change with build (on the current version) and
// commits it as the next version. build puts what it changes with
// change.put; if it puts nothing, nothing is written and the current
// version is returned. replay is non-nil when the change's idempotency key
// (set by build on change.tx) was already used.
func (s *Service) changeTaxonomy(ctx context.Context, build func(c *change) error) (version int32, replay *store.Replay, err error) {
	for attempt := range maxTaxonomyAttempts {
		if attempt > 0 {
			// Jittered, so that racing changes do not collide again in step.
			time.Sleep(time.Duration(rand.Int64N(int64(time.Millisecond) * int64(min(attempt, 20)))))
		}
		cur, err := s.version(ctx)
		if err != nil {
			return 0, nil, err
		}
		c := &change{s: s, tx: s.st.Tx(), version: cur + 1, now: timestamppb.New(s.now())}
		if err := build(c); errors.Is(err, errVersionMoved) {
			continue
		} else if err != nil {
			return 0, nil, err
		}
		if c.written == 0 {
			// Nothing to change, judged against what build read: only an
			// answer for version cur if nothing changed meanwhile.
			again, err := s.version(ctx)
			if err != nil {
				return 0, nil, err
			}
			if again != cur {
				continue
			}
			return cur, nil, nil
		}
		if cur == 0 {
			c.tx.MustNotExist(taxonomyKey(), store.ErrConflict)
		} else {
			c.tx.EtagIs(taxonomyKey(), strconv.Itoa(int(cur)), nil)
		}
		c.tx.HSet(taxonomyKey(), "etag", strconv.Itoa(int(c.version)))
		replay, err := c.tx.Commit(ctx)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return 0, nil, err
		}
		return c.version, replay, nil
	}
	return 0, nil, status.Error(codes.Aborted, "the taxonomy kept changing while this change was made; retry")
}

// loadSkill reads a skill as it is now.
func (s *Service) loadSkill(ctx context.Context, id string) (*skillsv1.Skill, error) {
	sk := newSkill()
	if err := s.st.Get(ctx, skillKey(id), sk); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.NotFound(skillName(id))
		}
		return nil, err
	}
	return sk, nil
}

// loadSkills reads skills by name as they are now, in one round trip,
// keyed by name; missing ones are absent.
func (s *Service) loadSkills(ctx context.Context, names []string) (map[string]*skillsv1.Skill, error) {
	list, err := store.Load(ctx, s.st, keysOf(names, skillNameRE, skillKey), newSkill)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*skillsv1.Skill, len(list))
	for _, sk := range list {
		out[sk.GetName()] = sk
	}
	return out, nil
}

// skillsAt reads skills by name as they were at version, in one round
// trip, in order, leaving out those that did not exist yet.
func (s *Service) skillsAt(ctx context.Context, names []string, version int32) ([]*skillsv1.Skill, error) {
	if len(names) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, 0, len(names))
	for _, n := range names {
		id := skillID(n)
		if id == "" {
			continue
		}
		cmds = append(cmds, pipe.ZRevRangeByScore(ctx, revisionsKey(id), &redis.ZRangeBy{
			Max: strconv.Itoa(int(version)), Min: "-inf", Count: 1}))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.st.Err(ctx, err)
	}
	out := make([]*skillsv1.Skill, 0, len(cmds))
	for _, c := range cmds {
		ms := c.Val()
		if len(ms) == 0 {
			continue
		}
		sk := newSkill()
		if len(ms[0]) < 10 || proto.Unmarshal([]byte(ms[0][10:]), sk) != nil {
			s.log.ErrorContext(ctx, "stored skill revision does not decode")
			return nil, status.Error(codes.DataLoss, "a stored skill revision could not be read")
		}
		out = append(out, sk)
	}
	return out, nil
}

// checkVersion refuses a version the taxonomy has not reached, and returns
// the current one.
func (s *Service) checkVersion(ctx context.Context, version int32) (int32, error) {
	cur, err := s.version(ctx)
	if err != nil {
		return 0, err
	}
	if version > cur {
		return 0, apierr.Field("version", "the taxonomy has not reached version %d; it is at version %d", version, cur)
	}
	return cur, nil
}

// maxSuccession bounds how far a chain of replacements is followed (each
// successor was not deprecated when it was named, so chains are short and
// have no cycles).
const maxSuccession = 16

// successors maps each of names that is deprecated to the skill that now
// stands for it, following replaced_by to a skill that is not deprecated:
// a few pipelined reads.
func (s *Service) successors(ctx context.Context, names []string) (map[string]string, error) {
	out := map[string]string{}
	current := map[string]string{} // name → the name it resolves to so far
	pending := map[string]bool{}
	for _, n := range names {
		current[n] = n
		pending[n] = true
	}
	cache := map[string]*skillsv1.Skill{}
	for range maxSuccession {
		var need []string
		seen := map[string]bool{}
		for n := range pending {
			if c := current[n]; cache[c] == nil && !seen[c] {
				seen[c] = true
				need = append(need, c)
			}
		}
		if len(need) > 0 {
			got, err := s.loadSkills(ctx, need)
			if err != nil {
				return nil, err
			}
			for n, sk := range got {
				cache[n] = sk
			}
		}
		for n := range pending {
			sk := cache[current[n]]
			if sk == nil || !sk.GetDeprecated() || sk.GetReplacedBy() == "" {
				delete(pending, n)
				if current[n] != n {
					out[n] = current[n]
				}
				continue
			}
			current[n] = sk.GetReplacedBy()
		}
		if len(pending) == 0 {
			break
		}
	}
	return out, nil
}
