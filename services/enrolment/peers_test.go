package enrolment_test

import (
	"net"
	"strings"
	"testing"
	"time"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/enrolment"
	"github.com/kompetensnav/kompetensnav/services/enrolment/pii"
	"github.com/kompetensnav/kompetensnav/services/platform/peer"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// With the companies service down, a participant with an employer is
// UNAVAILABLE and nothing is written; one without is registered.
func TestEmployerCheckWithCompaniesDown(t *testing.T) {
	rdb := testkit.Redis(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close() // nothing listens there
	conn, err := peer.Dial("companies", addr, peer.WithTimeout(2*time.Second), peer.WithLogger(testkit.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	svc, err := enrolment.New(enrolment.Options{Redis: rdb, Logger: testkit.Logger(), Keys: pii.Generate(), Companies: enrolment.CompaniesOver(conn)})
	if err != nil {
		t.Fatal(err)
	}
	c := enrolmentv1.NewEnrolmentServiceClient(testkit.Serve(t, func(g *grpc.Server) { svc.Register(g) }, testkit.Guarded(rdb, enrolment.Policy)))
	before := digest(t, rdb)
	in := person(skv704)
	in.Employer = "companies/volvo-cars"
	_, err = c.CreateParticipant(ctx, &enrolmentv1.CreateParticipantRequest{Participant: in})
	if st := wantCode(t, err, codes.Unavailable); !strings.Contains(st.Message(), "companies service is unavailable; nothing was written") {
		t.Fatal(st.Message())
	}
	if digest(t, rdb) != before {
		t.Fatal("a refused participant wrote something")
	}
	if _, err := c.CreateParticipant(ctx, &enrolmentv1.CreateParticipantRequest{Participant: person(skv704)}); err != nil {
		t.Fatal(err)
	}
}
