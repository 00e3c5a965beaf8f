package app

import (
	"context"
	"testing"
	"time"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/peer"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// In the all-in-one a service's peer is the process's own gRPC server.
func TestPeersAreTheProcessItself(t *testing.T) {
	a, err := Start(context.Background(), Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", Logger: testkit.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := a.peer("councils")
	if err != nil {
		t.Fatal(err)
	}
	councils := councilsv1.NewCouncilsServiceClient(conn)
	ctx := context.Background()

	created, err := councils.CreateCouncil(ctx, &councilsv1.CreateCouncilRequest{CouncilId: "handel",
		Council: &councilsv1.SectorCouncil{DisplayName: "Kompetensrådet för handeln", Sector: commonv1.Sector_SECTOR_RETAIL}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := councils.GetCouncil(ctx, &councilsv1.GetCouncilRequest{Name: created.GetName()}); err != nil || got.GetName() != "councils/handel" {
		t.Fatalf("read back %v, %v", got, err)
	}

	// A reference to a council that does not exist: the caller's field.
	_, err = councils.GetCouncil(ctx, &councilsv1.GetCouncilRequest{Name: "councils/nowhere"})
	err = conn.Err(ctx, err, peer.On(codes.NotFound, apierr.Field("company.council", "councils/nowhere does not exist")))
	testkit.WantBadRequest(t, err, "company.council")

	// Stopped, the process is no peer any more: UNAVAILABLE, clearly.
	addr := a.GRPCAddr
	a.Stop(5 * time.Second)
	after, err := peer.Dial("councils", addr, peer.WithLogger(testkit.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	_, err = councilsv1.NewCouncilsServiceClient(after).GetCouncil(ctx, &councilsv1.GetCouncilRequest{Name: "councils/handel"})
	if err = after.Err(ctx, err); status.Code(err) != codes.Unavailable {
		t.Fatalf("after stop: %v", err)
	}
}
