package councils_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/councils"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/grpc"
)

// BenchmarkListNeeds: one full page over gRPC with 10, 1 000 and 100 000
// needs, unfiltered and filtered by state (every tenth need APPROVED; every
// second of the 10, so that every case returns a full page), on a private
// redis-server. The page's cost must not grow with the collection. The
// 100 000 take a few minutes to create; -short skips them.
func BenchmarkListNeeds(b *testing.B) {
	for _, n := range []int{10, 1_000, 100_000} {
		if testing.Short() && n > 1_000 {
			continue
		}
		rdb := testkit.Redis(b)
		svc, err := councils.New(councils.Options{Redis: rdb, Logger: testkit.Logger(),
			Now: func() time.Time { return time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC) }})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if _, err := svc.CreateCouncil(ctx, council("fordon", commonv1.Sector_SECTOR_VEHICLE_INDUSTRY)); err != nil {
			b.Fatal(err)
		}
		seed(b, svc, n)
		client := councilsv1.NewCouncilsServiceClient(testkit.Serve(b, func(g *grpc.Server) { svc.Register(g) }))
		for _, filter := range []string{"", "state = STATE_APPROVED"} {
			b.Run(fmt.Sprintf("needs=%d/filter=%q", n, filter), func(b *testing.B) {
				req := &councilsv1.ListNeedsRequest{Parent: "councils/-", Filter: filter, PageSize: benchPage}
				for b.Loop() {
					resp, err := client.ListNeeds(ctx, req)
					if err != nil || len(resp.GetNeeds()) != benchPage {
						b.Fatal(resp, err)
					}
				}
			})
		}
	}
}

const benchPage = 5

// seed creates n needs of one council, every tenth approved (every second
// when there are too few for a page), with four writers at a time.
func seed(b *testing.B, svc *councils.Service, n int) {
	approveEvery := 10
	if n/approveEvery < benchPage {
		approveEvery = 2
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	work := make(chan int)
	for range 4 {
		wg.Go(func() {
			for i := range work {
				r := need("councils/fordon")
				r.NeedId = fmt.Sprintf("n%06d", i)
				r.Need.Municipalities = []string{"1480"}
				nd, err := svc.CreateNeed(ctx, r)
				if err != nil {
					b.Error(err)
					return
				}
				if i%approveEvery != 0 {
					continue
				}
				if _, err := svc.SubmitNeed(ctx, &councilsv1.SubmitNeedRequest{Name: nd.GetName()}); err != nil {
					b.Error(err)
					return
				}
				if _, err := svc.ApproveNeed(ctx, &councilsv1.ApproveNeedRequest{Name: nd.GetName()}); err != nil {
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
