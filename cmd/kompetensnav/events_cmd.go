package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/redisx"
)

const eventsUsage = `usage: kompetensnav events <command> [flags]

Inspects the services' event streams in a Redis (-redis, KN_REDIS).

commands:
  list                          streams, their consumer groups, lag, pending and dead letters
  deadletters -stream S -group G   the dead letters group G left on stream S
  replay -stream S -group G -id ID put dead letter ID back on S for group G only
`

// eventsCommand runs "kompetensnav events …" and returns the exit status.
func eventsCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "help" {
		fmt.Fprint(stderr, eventsUsage)
		return 2
	}
	cmd := args[0]
	fs := flag.NewFlagSet("kompetensnav events "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	rf := redisx.RegisterFlags(fs, "127.0.0.1:6379")
	stream := fs.String("stream", "", "stream key, e.g. kn:{councils}:events")
	group := fs.String("group", "", "consumer group, e.g. procurement")
	id := fs.String("id", "", "dead-letter entry id (replay)")
	count := fs.Int64("count", 100, "at most this many dead letters (deadletters)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rdb, err := redisx.Connect(ctx, rf.Options())
	if err != nil {
		fmt.Fprintln(stderr, "kompetensnav events:", err)
		return 1
	}
	defer rdb.Close()
	switch cmd {
	case "list":
		streams := []string{*stream}
		if *stream == "" {
			if streams, err = events.Streams(ctx, rdb); err != nil {
				break
			}
		}
		var info []events.StreamInfo
		if info, err = events.Inspect(ctx, rdb, streams...); err != nil {
			break
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "STREAM\tLENGTH\tGROUP\tLAG\tPENDING\tCONSUMERS\tDEAD LETTERS\tLAST DELIVERED")
		for _, s := range info {
			if len(s.Groups) == 0 {
				fmt.Fprintf(w, "%s\t%d\t-\t\t\t\t\t\n", s.Stream, s.Length)
			}
			for _, g := range s.Groups {
				fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\n", s.Stream, s.Length, g.Name, g.Lag, g.Pending, g.Consumers, g.DeadLetters, g.LastDelivered)
			}
		}
		err = w.Flush()
	case "deadletters":
		if *stream == "" || *group == "" {
			err = errors.New("-stream and -group are required")
			break
		}
		var dl []events.DeadLetter
		if dl, err = events.DeadLetters(ctx, rdb, *stream, *group, *count); err != nil {
			break
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tSOURCE ID\tTYPE\tDELIVERIES\tTIME\tERROR")
		for _, d := range dl {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.SourceID, d.Type, d.Deliveries, d.Time, d.Error)
		}
		err = w.Flush()
	case "replay":
		if *stream == "" || *group == "" || *id == "" {
			err = errors.New("-stream, -group and -id are required")
			break
		}
		var newID string
		if newID, err = events.Replay(ctx, rdb, *stream, *group, *id); err == nil {
			fmt.Fprintf(stdout, "replayed %s as %s on %s for group %s\n", *id, newID, *stream, *group)
		}
	default:
		fmt.Fprintf(stderr, "kompetensnav events: unknown command %q\n\n%s", cmd, eventsUsage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "kompetensnav events "+cmd+":", err)
		return 1
	}
	return 0
}
