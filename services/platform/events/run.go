package events

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Background runs a service's consumers and trimmers beside its gRPC
// server and stops them with it.
type Background struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	log    *slog.Logger
}

// Start runs each of runs (a Consumer's or Trimmer's Run) in its own
// goroutine until ctx ends or Stop is called. A run that fails (a group that
// cannot be created) is logged; the others go on.
func Start(ctx context.Context, log *slog.Logger, runs ...func(context.Context) error) *Background {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	b := &Background{cancel: cancel, log: log}
	for _, run := range runs {
		b.wg.Go(func() {
			if err := run(ctx); err != nil {
				log.ErrorContext(ctx, "event consumer stopped", "error", err)
			}
		})
	}
	return b
}

// StopTimeout bounds how long Stop waits for handlers finishing the batch
// in hand.
const StopTimeout = 10 * time.Second

// Stop stops every run and waits (at most StopTimeout) for the batches in
// hand to finish. Calling it again is harmless; a nil Background is a no-op.
func (b *Background) Stop() {
	if b == nil {
		return
	}
	b.cancel()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(StopTimeout):
		b.log.Warn("event consumers still busy after the stop timeout; their entries stay pending and are reclaimed")
	}
}
