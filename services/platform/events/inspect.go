package events

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// GroupInfo is the state of one consumer group on a stream.
type GroupInfo struct {
	Name string
	// Lag is how many entries have not been delivered to the group yet.
	Lag int64
	// Pending is how many were delivered and not acknowledged.
	Pending int64
	// LastDelivered is the id of the last entry delivered to the group.
	LastDelivered string
	Consumers     int64
	// DeadLetters is the length of the group's dead-letter stream.
	DeadLetters int64
}

// StreamInfo is a stream and its groups.
type StreamInfo struct {
	Stream string
	Length int64
	Groups []GroupInfo
}

func groupInfo(ctx context.Context, rdb redis.UniversalClient, stream, group string) (GroupInfo, error) {
	gs, err := rdb.XInfoGroups(ctx, stream).Result()
	if err != nil {
		return GroupInfo{}, err
	}
	for _, g := range gs {
		if g.Name == group {
			lag, err := lagOf(ctx, rdb, stream, g)
			if err != nil {
				return GroupInfo{}, err
			}
			return GroupInfo{Name: g.Name, Lag: lag, Pending: g.Pending, LastDelivered: g.LastDeliveredID, Consumers: g.Consumers}, nil
		}
	}
	return GroupInfo{}, fmt.Errorf("stream %s has no group %s", stream, group)
}

// MaxCountedLag caps the lag counted by reading the stream.
const MaxCountedLag = 100_000

// lagOf is the group's lag. Redis 7 tracks it (XINFO GROUPS "lag") once the
// group has read something; when it cannot tell (entries deleted, a group
// created at an arbitrary id) or the server does not track it (the embedded
// store reports the stream's length), the entries after the last delivered
// one are counted, up to MaxCountedLag.
func lagOf(ctx context.Context, rdb redis.UniversalClient, stream string, g redis.XInfoGroup) (int64, error) {
	if g.EntriesRead > 0 && g.Lag >= 0 {
		return g.Lag, nil
	}
	after, err := parseID(g.LastDeliveredID)
	if err != nil {
		return 0, err
	}
	msgs, err := rdb.XRangeN(ctx, stream, after.next().String(), "+", MaxCountedLag).Result()
	if err != nil {
		return 0, err
	}
	return int64(len(msgs)), nil
}

// Inspect reports on each of streams: length, groups, lag, pending and dead
// letters.
func Inspect(ctx context.Context, rdb redis.UniversalClient, streams ...string) ([]StreamInfo, error) {
	var out []StreamInfo
	for _, s := range streams {
		n, err := rdb.XLen(ctx, s).Result()
		if err != nil {
			return nil, err
		}
		info := StreamInfo{Stream: s, Length: n}
		gs, err := rdb.XInfoGroups(ctx, s).Result()
		if err != nil && !isNoSuchKey(err) {
			return nil, err
		}
		for _, g := range gs {
			dl, err := rdb.XLen(ctx, DeadLetterStream(s, g.Name)).Result()
			if err != nil {
				return nil, err
			}
			lag, err := lagOf(ctx, rdb, s, g)
			if err != nil {
				return nil, err
			}
			info.Groups = append(info.Groups, GroupInfo{Name: g.Name, Lag: lag, Pending: g.Pending,
				LastDelivered: g.LastDeliveredID, Consumers: g.Consumers, DeadLetters: dl})
		}
		out = append(out, info)
	}
	return out, nil
}

func isNoSuchKey(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "no such key") || strings.Contains(err.Error(), "ERR no such"))
}

// Streams finds the services' streams in rdb (keys kn:{…}:… of type
// stream, dead-letter streams left out), sorted.
func Streams(ctx context.Context, rdb redis.UniversalClient) ([]string, error) {
	var (
		mu   sync.Mutex // ForEachMaster scans the masters concurrently
		keys []string
	)
	scan := func(ctx context.Context, c *redis.Client) error {
		it := c.ScanType(ctx, 0, "kn:{*}:*", 1000, "stream").Iterator()
		for it.Next(ctx) {
			if _, rest, ok := splitTag(it.Val()); ok && !strings.HasPrefix(rest, "deadletter:") {
				mu.Lock()
				keys = append(keys, it.Val())
				mu.Unlock()
			}
		}
		return it.Err()
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	case *redis.Client:
		err = scan(ctx, c)
	default:
		return nil, errors.New("events: cannot list streams with this kind of client; name them")
	}
	sort.Strings(keys)
	return keys, err
}

// DeadLetter is an entry a group gave up on.
type DeadLetter struct {
	// ID is the entry's id in the dead-letter stream.
	ID string
	// Stream, Group and SourceID say where it came from.
	Stream, Group, SourceID string
	Type                    string
	Deliveries              int64
	Error                   string
	Time                    string
}

// DeadLetters lists up to count of the dead letters group left on stream,
// oldest first.
func DeadLetters(ctx context.Context, rdb redis.UniversalClient, stream, group string, count int64) ([]DeadLetter, error) {
	msgs, err := rdb.XRangeN(ctx, DeadLetterStream(stream, group), "-", "+", count).Result()
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		str := func(k string) string { s, _ := m.Values[k].(string); return s }
		n, _ := strconv.ParseInt(str("deliveries"), 10, 64)
		out = append(out, DeadLetter{ID: m.ID, Stream: str("stream"), Group: str("group"), SourceID: str("id"),
			Type: str(fieldType), Deliveries: n, Error: str("error"), Time: str("time")})
	}
	return out, nil
}

// Replay puts the dead letter id of group back on stream, for that group
// only (other groups acknowledge it unread), and removes it from the
// dead-letter stream, in one atomic step. The event keeps its id, so a
// consumer that did apply it after all (ApplyOnce) does not apply it again.
// It returns the id of the new stream entry.
func Replay(ctx context.Context, rdb redis.UniversalClient, stream, group, id string) (string, error) {
	dlq := DeadLetterStream(stream, group)
	msgs, err := rdb.XRangeN(ctx, dlq, id, id, 1).Result()
	if err != nil {
		return "", err
	}
	if len(msgs) == 0 {
		return "", fmt.Errorf("%s has no entry %s", dlq, id)
	}
	ev, ok := msgs[0].Values[fieldEvent]
	if !ok {
		return "", fmt.Errorf("dead letter %s carries no event to replay", id)
	}
	var add *redis.StringCmd
	_, err = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		add = p.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{
			fieldType, msgs[0].Values[fieldType], fieldEvent, ev, fieldReplayFor, group}})
		p.XDel(ctx, dlq, id)
		return nil
	})
	if err != nil {
		return "", err
	}
	return add.Val(), nil
}
