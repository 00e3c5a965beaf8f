package companies_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/companies"
	"github.com/kompetensnav/kompetensnav/services/platform/peer"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/grpc"
)

// BenchmarkSummarizeNotices: the demand signal over gRPC for a range
// holding 100 notices, with 0, 10 000 and 100 000 more notices outside it,
// on a private redis-server. The summary reads the range of the date index,
// so its cost must not grow with the notices outside. The 100 000 take a
// while to create; -short skips them.
func BenchmarkSummarizeNotices(b *testing.B) {
	for _, outside := range []int{0, 10_000, 100_000} {
		if testing.Short() && outside > 10_000 {
			continue
		}
		rdb := testkit.Redis(b)
		councils := testkit.Serve(b, func(g *grpc.Server) { councilsv1.RegisterCouncilsServiceServer(g, &fakeCouncils{}) })
		conn, err := peer.Dial("councils", councils.Target())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = conn.Close() })
		svc, err := companies.New(companies.Options{Redis: rdb, Logger: testkit.Logger(), Councils: conn,
			Now: func() time.Time { return time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC) }})
		if err != nil {
			b.Fatal(err)
		}
		req := company("volvo", "556012-5790")
		req.Company.EmployeeCount = nil
		if _, err := svc.CreateCompany(ctx, req); err != nil {
			b.Fatal(err)
		}
		seedNotices(b, svc, 100, 2026)
		seedNotices(b, svc, outside, 2010)
		client := companiesv1.NewCompaniesServiceClient(testkit.Serve(b, func(g *grpc.Server) { svc.Register(g) }))
		b.Run(fmt.Sprintf("inside=100/outside=%d", outside), func(b *testing.B) {
			req := &companiesv1.SummarizeNoticesRequest{Parent: "companies/-", Council: "councils/fordon",
				StartDate: day(2026, 1, 1), EndDate: day(2026, 12, 31)}
			for b.Loop() {
				resp, err := client.SummarizeNotices(ctx, req)
				if err != nil || len(resp.GetRows()) != 3 || resp.GetRows()[0].GetNotices()+resp.GetRows()[1].GetNotices()+resp.GetRows()[2].GetNotices() != 100 {
					b.Fatal(resp, err)
				}
			}
		})
	}
}

// seedNotices records n notices of the three kinds, dated from 1 January
// of year on (a day each, wrapping within the year), four writers at a time.
func seedNotices(b *testing.B, svc *companies.Service, n, year int) {
	var wg sync.WaitGroup
	work := make(chan int)
	for range 4 {
		wg.Go(func() {
			for i := range work {
				on := time.Date(year, 1, 1, 12, 0, 0, 0, time.UTC).AddDate(0, 0, i%300)
				kind := []companiesv1.Notice_Kind{redundancy, furlough, layoff}[i%3]
				if _, err := svc.CreateNotice(ctx, notice("companies/volvo", kind, 5, day(on.Year(), int(on.Month()), on.Day()))); err != nil {
					b.Error(err)
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
