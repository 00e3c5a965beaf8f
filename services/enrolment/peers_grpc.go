package enrolment

import (
	"context"

	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
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
