package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
)

func TestEventsCommandListsAndReplaysDeadLetters(t *testing.T) {
	rdb := testkit.Redis(t)
	ctx := context.Background()
	const stream, dlq = "kn:{councils}:events", "kn:{councils}:deadletter:procurement"
	rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"type", "t", "event", "x"}})
	rdb.XGroupCreate(ctx, stream, "procurement", "0")
	dead := rdb.XAdd(ctx, &redis.XAddArgs{Stream: dlq, Values: []any{"stream", stream, "group", "procurement",
		"id", "1-1", "deliveries", "5", "error", "provider not found", "type", "t", "event", "x"}}).Val()

	run := func(args ...string) (string, string, int) {
		var out, errs bytes.Buffer
		code := eventsCommand(append(args, testkit.RedisArgs(t, rdb)...), &out, &errs)
		return out.String(), errs.String(), code
	}
	out, errs, code := run("list")
	if code != 0 || !strings.Contains(out, stream) || !strings.Contains(out, "procurement") {
		t.Fatalf("list: %d %q %q", code, out, errs)
	}
	if strings.Contains(out, dlq) {
		t.Fatalf("list shows the dead-letter stream as a stream of its own:\n%s", out)
	}
	fields := strings.Fields(strings.Split(out, "\n")[1])
	if fields[3] != "1" || fields[6] != "1" { // one entry not delivered, one dead letter
		t.Fatalf("lag/dead letters in %q", fields)
	}
	out, _, code = run("deadletters", "-stream", stream, "-group", "procurement")
	if code != 0 || !strings.Contains(out, "provider not found") {
		t.Fatalf("deadletters: %d %q", code, out)
	}
	out, errs, code = run("replay", "-stream", stream, "-group", "procurement", "-id", dead)
	if code != 0 || !strings.Contains(out, "replayed "+dead) {
		t.Fatalf("replay: %d %q %q", code, out, errs)
	}
	if n, _ := rdb.XLen(ctx, dlq).Result(); n != 0 {
		t.Fatal("dead letter still there after replay")
	}
	if n, _ := rdb.XLen(ctx, stream).Result(); n != 2 {
		t.Fatalf("stream has %d entries after replay, want 2", n)
	}
	if _, errs, code = run("replay", "-stream", stream); code != 1 || !strings.Contains(errs, "required") {
		t.Fatalf("replay without -group/-id: %d %q", code, errs)
	}
	if _, _, code = run("frobnicate"); code != 2 {
		t.Fatalf("unknown command: %d", code)
	}
}
