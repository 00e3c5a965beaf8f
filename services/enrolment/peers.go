package enrolment

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/type/money"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// What the service asks other services, behind small interfaces: the
// binaries answer them over gRPC (package peer), tests with what they set
// up.

// CallOff is what an offering takes from the call-off that bought it.
type CallOff struct {
	Name string
	// State is the call-off's state name ("STATE_AWARDED"); Awarded says
	// whether it is awarded, the one state an offering can be made from.
	State   string
	Awarded bool
	// Provider is the awarded provider, providers/{provider}.
	Provider string
	Skills   []string
	// Days is the course's length, 1–10: the offering has one session a day.
	Days int32
	// Project is the funded project the call-off was made for, if it names
	// one; an offering from it must then be booked against that project.
	Project string
	// Value is what the call-off was awarded for (procurement's
	// award_value, SEK; nil before it is awarded): recorded on the
	// offering for the project report's cost per participant.
	Value *money.Money
}

// CallOffs looks up call-offs (the procurement service).
type CallOffs interface {
	// CallOff returns the call-off called name, ErrNotFound when there is
	// none, or an error to return as it is (UNAVAILABLE when the service
	// cannot be reached).
	CallOff(ctx context.Context, name string) (CallOff, error)
}

// Company is what a participant takes from their employer.
type Company struct {
	Name string
	// Council is the company's sector council, councils/{council}.
	Council string
}

// Companies looks up companies (the companies service).
type Companies interface {
	// Company returns the company called name, ErrNotFound when there is
	// none, or an error to return as it is.
	Company(ctx context.Context, name string) (Company, error)
}

// ErrNotFound is what a lookup returns for a resource the other service
// does not have.
var ErrNotFound = errors.New("not found")

// Unavailable answers every lookup with UNAVAILABLE: what the service uses
// where the service it would ask is not deployed.
type Unavailable string

func (u Unavailable) err() error {
	return status.Errorf(codes.Unavailable, "the %s service is unavailable; nothing was written; retry later", string(u))
}

// CallOff implements CallOffs.
func (u Unavailable) CallOff(context.Context, string) (CallOff, error) { return CallOff{}, u.err() }

// Company implements Companies.
func (u Unavailable) Company(context.Context, string) (Company, error) { return Company{}, u.err() }
