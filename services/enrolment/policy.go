package enrolment

import (
	"context"
	"errors"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Policy is who may call what on the enrolment service (policy_test.go
// proves every cell over gRPC):
//
//   - projects and offerings hold no personal data: every role reads
//     them (partners and councils follow what is bought and run), only
//     staff change them;
//   - participants are personal data: staff only, every read of one in
//     the audit log;
//   - staff enrol and withdraw;
//   - a provider reads the enrolments of the offerings it runs (the
//     offering's provider, looked up by OwnerOf), never another's; an
//     enrolment holds a participant's reference but no personal data, and
//     a withdrawal's reason (sensitive) is cleared for it;
//   - the provider running an offering records its attendance and
//     completes its enrolments (staff may too);
//   - outcomes and erasure are staff's;
//   - partners, councils, companies and auditors see nothing personal;
//     staff, auditors and partners read the project reports (aggregates).
var Policy = &auth.Policy{
	Service:  enrolmentv1.EnrolmentService_ServiceDesc.ServiceName,
	Keyspace: Keyspace,
	Rules: map[string]auth.Rule{
		"CreateProject": {Write: true, Roles: staff},
		"GetProject":    {Resource: "name", Roles: auth.Everyone()},
		"ListProjects":  {Roles: auth.Everyone()},
		"UpdateProject": {Write: true, Resource: "project.name", Roles: staff},
		"CloseProject":  {Write: true, Resource: "name", Roles: staff},

		"CreateOffering": {Write: true, Roles: staff},
		"GetOffering":    {Resource: "name", Roles: auth.Everyone()},
		"ListOfferings":  {Roles: auth.Everyone()},
		"UpdateOffering": {Write: true, Resource: "offering.name", Roles: staff},
		"OpenOffering":   {Write: true, Resource: "name", Roles: staff},
		"StartOffering":  {Write: true, Resource: "name", Roles: staff},
		"FinishOffering": {Write: true, Resource: "name", Roles: staff},
		"CancelOffering": {Write: true, Resource: "name", Roles: staff},

		"CreateParticipant": {Write: true, Roles: staff},
		"GetParticipant":    {Resource: "name", Roles: staff},
		"ListParticipants":  {Roles: staff},
		"UpdateParticipant": {Write: true, Resource: "participant.name", Roles: staff},
		// No Resource: the request's one field is the personal identity
		// number, which must not reach the audit log.
		"LookupParticipant": {Roles: staff},

		"CreateEnrolment":           {Write: true, Resource: "parent", Roles: staff},
		"GetEnrolment":              {Resource: "name", Roles: staffOrOwnProvider, OwnerOf: offeringProvider},
		"ListEnrolments":            {Resource: "parent", Roles: staffOrOwnProvider, OwnerOf: offeringProvider},
		"WithdrawEnrolment":         {Write: true, Resource: "name", Roles: staff},
		"ListParticipantEnrolments": {Resource: "parent", Roles: staff},

		// The provider running the offering takes attendance and completes
		// its participants; staff may do it for them.
		"RecordAttendance":      {Write: true, Resource: "name", Roles: staffOrOwnProvider, OwnerOf: offeringProvider},
		"BatchRecordAttendance": {Write: true, Resource: "offering", Roles: staffOrOwnProvider, OwnerOf: offeringProvider},
		"ListAttendance":        {Resource: "parent", Roles: staffOrOwnProvider, OwnerOf: offeringProvider},
		"CompleteEnrolment":     {Write: true, Resource: "name", Roles: staffOrOwnProvider, OwnerOf: offeringProvider},

		"RecordOutcome":           {Write: true, Resource: "participant", Roles: staff},
		"ListParticipantOutcomes": {Resource: "parent", Roles: staff},
		"EraseParticipant":        {Write: true, Resource: "name", Roles: staff},

		// Aggregates only, nothing personal.
		"GetProjectReport": {Resource: "name", Roles: auth.Only(auth.Staff, auth.Auditor, auth.Partner)},
	},
}

var (
	staff              = auth.Only(auth.Staff)
	staffOrOwnProvider = staff.With(auth.Provider, auth.Own)
)

// offeringProvider is the provider running the offering that name
// (offerings/{o}, or an enrolment under it) belongs to: what a provider
// principal's Own scope is checked against.
func offeringProvider(ctx context.Context, rdb redis.UniversalClient, name string) (string, error) {
	id, err := parseOfferingName("", offeringOf(name))
	if err != nil {
		return "", status.Error(codes.NotFound, name)
	}
	b, err := rdb.HGet(ctx, offeringKey(id), "pb").Bytes()
	if errors.Is(err, redis.Nil) {
		return "", status.Error(codes.NotFound, name)
	}
	if err != nil {
		return "", status.Error(codes.Unavailable, "storage unavailable, retry later")
	}
	o := newOffering()
	if err := proto.Unmarshal(b, o); err != nil {
		return "", status.Error(codes.DataLoss, "a stored resource could not be read")
	}
	return o.GetProvider(), nil
}
