// Package audit carries what the audit log needs to know about a call from
// the guard that authenticated and authorised it (services/platform/auth)
// to the store, which appends the record of a write in the same atomic step
// as the write, and builds the records every service writes to its
// kn:{service}:audit stream. A record says who did what, when, and how it
// ended; never what the request or response held.
package audit

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Field is the stream entry field that holds a record (AuditRecord bytes,
// without a name: the collector names it after the entry).
const Field = "record"

// MaxResource bounds the resource name kept in a record: a refused call's
// name was never validated and could be anything.
const MaxResource = 512

// Call is one RPC as the audit log sees it. The guard puts it in the
// call's context; handlers never build one.
type Call struct {
	Principal *accessv1.Principal
	// Method is the full gRPC method without the leading slash,
	// "kompetensnav.councils.v1.CouncilsService/ApproveNeed".
	Method string
	// Resource is the resource the request names (its policy rule says
	// which field); a write records the resource it stored instead.
	Resource  string
	TraceID   string
	RequestID string

	state atomic.Int32
}

const (
	notWrite int32 = iota
	pending        // a write whose record is not written yet
	claimed        // a commit carrying the record is under way
	done           // the record is written
)

// NewCall describes a call; write marks an RPC that changes something, so
// that the first commit it makes carries its record.
func NewCall(p *accessv1.Principal, method, resource, traceID, requestID string, write bool) *Call {
	c := &Call{Principal: p, Method: strings.TrimPrefix(method, "/"), Resource: Clip(resource),
		TraceID: traceID, RequestID: Clip(requestID)}
	if write {
		c.state.Store(pending)
	}
	return c
}

type callKey struct{}

// NewContext returns ctx carrying c.
func NewContext(ctx context.Context, c *Call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// FromContext is the call ctx belongs to; nil outside a guarded call.
func FromContext(ctx context.Context) *Call {
	c, _ := ctx.Value(callKey{}).(*Call)
	return c
}

// ClaimWrite reports whether the commit about to run must carry the call's
// write record: true for the first commit of a write RPC, false for every
// other (a read, a record already written, one being written right now).
// Every true must be followed by Settle.
func (c *Call) ClaimWrite() bool {
	return c != nil && c.state.CompareAndSwap(pending, claimed)
}

// Settle ends a claim: written says the commit applied (so the record is
// in the stream); otherwise the next commit of the call carries it. This is
// what keeps a write RPC that retries its transaction (on a concurrent
// change) at exactly one record.
func (c *Call) Settle(written bool) {
	if written {
		c.state.Store(done)
	} else {
		c.state.CompareAndSwap(claimed, pending)
	}
}

// Record is the call's audit record of kind, as recorded by service
// ("councils"), about resource ("" for the call's own) with outcome.
func (c *Call) Record(kind accessv1.AuditRecord_Kind, service, resource string, outcome codes.Code) *accessv1.AuditRecord {
	if resource == "" {
		resource = c.Resource
	}
	return &accessv1.AuditRecord{
		Time:             timestamppb.New(time.Now()),
		Kind:             kind,
		Principal:        c.Principal.GetId(),
		Role:             c.Principal.GetRole(),
		PrincipalSubject: c.Principal.GetSubject(),
		Service:          service,
		Method:           c.Method,
		Resource:         Clip(resource),
		Outcome:          OutcomeName(outcome),
		TraceId:          c.TraceID,
		RequestId:        c.RequestID,
	}
}

// OutcomeName is the canonical name of a status code, "PERMISSION_DENIED"
// (grpc's codes.Code.String says "PermissionDenied").
func OutcomeName(c codes.Code) string { return rpccode.Code(c).String() }

// Marshal is the stream form of a record.
func Marshal(r *accessv1.AuditRecord) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(r)
}

// Clip keeps a caller-supplied string storable: valid UTF-8 (proto3
// strings must be) and at most MaxResource bytes.
func Clip(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > MaxResource {
		s = strings.ToValidUTF8(s[:MaxResource], "")
	}
	return s
}
