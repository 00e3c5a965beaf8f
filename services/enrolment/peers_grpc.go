package enrolment

import (
	"context"

	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/peer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// CompaniesOver answers Companies by asking the companies service over
// conn (GetCompany, with the caller's credentials).
func CompaniesOver(conn *peer.Conn) Companies {
	return grpcCompanies{conn: conn, client: companiesv1.NewCompaniesServiceClient(conn)}
}

type grpcCompanies struct {
	conn   *peer.Conn
	client companiesv1.CompaniesServiceClient
}

func (g grpcCompanies) Company(ctx context.Context, name string) (Company, error) {
	c, err := g.client.GetCompany(ctx, &companiesv1.GetCompanyRequest{Name: name})
	if status.Code(err) == codes.NotFound {
		return Company{}, ErrNotFound
	}
	if err != nil {
		return Company{}, g.conn.Err(ctx, err)
	}
	return Company{Name: c.GetName(), Council: c.GetCouncil()}, nil
}

// CallOffsOver answers CallOffs by asking the procurement service over
// conn (GetCallOff, with the caller's credentials).
func CallOffsOver(conn *peer.Conn) CallOffs {
	return grpcCallOffs{conn: conn, client: procurementv1.NewProcurementServiceClient(conn)}
}

type grpcCallOffs struct {
	conn   *peer.Conn
	client procurementv1.ProcurementServiceClient
}

func (g grpcCallOffs) CallOff(ctx context.Context, name string) (CallOff, error) {
	c, err := g.client.GetCallOff(ctx, &procurementv1.GetCallOffRequest{Name: name})
	if status.Code(err) == codes.NotFound {
		return CallOff{}, ErrNotFound
	}
	if err != nil {
		return CallOff{}, g.conn.Err(ctx, err)
	}
	return CallOff{
		Name: c.GetName(), State: c.GetState().String(), Awarded: c.GetState() == procurementv1.CallOff_STATE_AWARDED,
		Provider: c.GetProvider(), Skills: c.GetSpecification().GetSkills(), Days: c.GetSpecification().GetDays(),
		Project: c.GetProject(), Value: c.GetAwardValue(),
	}, nil
}
