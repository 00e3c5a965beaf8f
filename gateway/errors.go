package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	// The error details the services send (google.rpc.BadRequest above
	// all) must be in the type registry, or their Any cannot be written
	// as JSON.
	"google.golang.org/genproto/googleapis/rpc/errdetails"
)

// errorHandler is grpc-gateway's default handler (its gRPC → HTTP status
// mapping, headers and body {code, message, details}) with errorJSON as the
// body's marshaler, after restate has made the error one for a REST client.
func errorHandler(ctx context.Context, mux *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	code := status.Code(err)
	if hse := (*runtime.HTTPStatusError)(nil); errors.As(err, &hse) {
		code = status.Code(hse.Err)
	}
	switch code {
	case codes.Unauthenticated:
		w = challenger{ResponseWriter: w, r: r}
	case codes.ResourceExhausted:
		retryAfter(w, err)
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, errorJSON{apiJSON}, w, r, restate(err))
}

// restate rewrites what a REST client should not see or cannot use:
//
//   - BadRequest fields are proto paths over gRPC; over REST they are JSON
//     paths ("need.targetGroups[1]"), in the details and the message;
//   - errors of the connection to a backend ("error reading from server:
//     EOF", "connection refused") are a plain UNAVAILABLE, without the
//     transport's words;
//   - a response over the message limit is an INTERNAL error, not the
//     RESOURCE_EXHAUSTED (429) gRPC reports, which tells a client to retry.
func restate(err error) error {
	var hse *runtime.HTTPStatusError
	if errors.As(err, &hse) {
		return err // the gateway's own refusals are written for REST already
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.InvalidArgument:
		return jsonFieldPaths(st).Err()
	case codes.Unavailable:
		if isTransportMessage(st.Message()) {
			return status.Error(codes.Unavailable, "a service behind the gateway is unavailable; retry later")
		}
	case codes.ResourceExhausted:
		if strings.Contains(st.Message(), "larger than max") {
			return status.Error(codes.Internal, "the response was larger than the gateway accepts; ask for a smaller page")
		}
	case codes.Internal, codes.Unknown:
		if isTransportMessage(st.Message()) {
			return status.Error(codes.Internal, "internal error")
		}
	}
	return err
}

func isTransportMessage(msg string) bool {
	for _, s := range []string{"grpc:", "transport", "error reading from server", "connection", "dial tcp", "EOF", "name resolver", "marshal"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// jsonFieldPaths rewrites the BadRequest fields of st as JSON paths, and the
// message that lists them.
func jsonFieldPaths(st *status.Status) *status.Status {
	var br *errdetails.BadRequest
	var other []protoadapt.MessageV1
	for _, d := range st.Details() {
		if b, ok := d.(*errdetails.BadRequest); ok && br == nil {
			br = b
		} else if m, ok := d.(protoadapt.MessageV1); ok {
			other = append(other, m)
		}
	}
	if br == nil {
		return st
	}
	out := &errdetails.BadRequest{}
	parts := make([]string, 0, len(br.GetFieldViolations()))
	for _, v := range br.GetFieldViolations() {
		f := jsonPath(v.GetField())
		out.FieldViolations = append(out.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: f, Description: v.GetDescription(), Reason: v.GetReason()})
		parts = append(parts, f+": "+v.GetDescription())
	}
	msg := st.Message()
	if strings.HasPrefix(msg, "invalid request: ") {
		msg = "invalid request: " + strings.Join(parts, "; ")
	}
	ns := status.New(codes.InvalidArgument, msg)
	if d, err := ns.WithDetails(append([]protoadapt.MessageV1{out}, other...)...); err == nil {
		ns = d
	}
	return ns
}

// challenger answers a 401 with RFC 6750's challenge: how to authenticate,
// and whether the credential sent was the problem. (grpc-gateway would put
// the error message in WWW-Authenticate; this replaces it as the header is
// written.)
type challenger struct {
	http.ResponseWriter
	r *http.Request
}

func (c challenger) WriteHeader(code int) {
	v := `Bearer realm="kompetensnav"`
	if c.r.Header.Get("Authorization") != "" {
		v += `, error="invalid_token"`
	}
	c.ResponseWriter.Header().Set("WWW-Authenticate", v)
	c.ResponseWriter.WriteHeader(code)
}

// routingErrorHandler answers a known path with the wrong method with 405,
// where grpc-gateway's default says 501 (UNIMPLEMENTED), which reads as if
// the server lacked the feature.
func routingErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if httpStatus == http.StatusMethodNotAllowed {
		runtime.HTTPError(ctx, mux, m, w, r, &runtime.HTTPStatusError{
			HTTPStatus: httpStatus,
			Err:        status.Errorf(codes.Unimplemented, "method %s is not allowed on %s", r.Method, r.URL.Path),
		})
		return
	}
	runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, httpStatus)
}

// errorJSON writes a google.rpc.Status so that "details" is always there
// (clients can rely on the shape) while the details themselves leave out
// unset fields like the API's other JSON does (no empty "reason" in every
// field violation). A detail of a type the gateway does not know is reduced
// to its "@type" rather than turning the whole error into a 500.
type errorJSON struct{ runtime.Marshaler }

func (m errorJSON) Marshal(v any) ([]byte, error) {
	st, ok := v.(*spb.Status)
	if !ok {
		return m.Marshaler.Marshal(v)
	}
	body := struct {
		Code    int32             `json:"code"`
		Message string            `json:"message"`
		Details []json.RawMessage `json:"details"`
	}{Code: st.GetCode(), Message: st.GetMessage(), Details: []json.RawMessage{}}
	for _, d := range st.GetDetails() {
		b, err := m.Marshaler.Marshal(d)
		if err != nil {
			b, _ = json.Marshal(map[string]string{"@type": d.GetTypeUrl()})
		}
		body.Details = append(body.Details, b)
	}
	return json.Marshal(body)
}

// writeError answers a request the gateway refuses itself (before any
// backend is called) in the same format as a backend's error.
func (g *Gateway) writeError(w http.ResponseWriter, r *http.Request, httpStatus int, code codes.Code, msg string) {
	runtime.HTTPError(r.Context(), g.mux, apiJSON, w, r,
		&runtime.HTTPStatusError{HTTPStatus: httpStatus, Err: status.Error(code, msg)})
}
