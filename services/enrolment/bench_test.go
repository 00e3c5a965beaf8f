package enrolment_test

import (
	"fmt"
	"sync"
	"testing"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/enrolment/pii"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
)

// BenchmarkListParticipants: page 1 and page 500 of 100 000 participants
// (pages of 200, over gRPC through the guard, BASIC view: every row's
// personal data opened and masked), on a private redis-server. A page is
// read from the ordered index after the token's position, so the last
// page costs what the first does. Creating the 100 000 takes a while;
// -short lists 10 000 instead.
func BenchmarkListParticipants(b *testing.B) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	const size = 200
	e := newEnv(b, testkit.Redis(b), pii.Generate())
	seedParticipants(b, e, n)
	// The token of the page 500 of n/size pages down (the last, at 10⁵).
	last := n / size
	target := min(500, last)
	token := ""
	for range target - 1 {
		page, err := e.c.ListParticipants(ctx, &enrolmentv1.ListParticipantsRequest{PageSize: size, PageToken: token})
		if err != nil {
			b.Fatal(err)
		}
		token = page.GetNextPageToken()
	}
	for _, c := range []struct {
		page  int
		token string
	}{{1, ""}, {target, token}} {
		b.Run(fmt.Sprintf("participants=%d/page=%d", n, c.page), func(b *testing.B) {
			req := &enrolmentv1.ListParticipantsRequest{PageSize: size, PageToken: c.token}
			for b.Loop() {
				page, err := e.c.ListParticipants(ctx, req)
				if err != nil || len(page.GetParticipants()) != size {
					b.Fatal(len(page.GetParticipants()), err)
				}
			}
		})
	}
}

// seedParticipants registers n participants through the service itself
// (in process: the seeding is not what is measured), four at a time.
func seedParticipants(b *testing.B, e env, n int) {
	var wg sync.WaitGroup
	work := make(chan int)
	for range 4 {
		wg.Go(func() {
			for i := range work {
				e.clock.tick()
				p := person(nthNumber(i))
				p.Municipality = gr[i%len(gr)]
				if _, err := e.svc.CreateParticipant(ctx, &enrolmentv1.CreateParticipantRequest{Participant: p}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
}
