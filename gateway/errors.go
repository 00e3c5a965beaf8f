package gateway

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	// The error details the services send (google.rpc.BadRequest above
	// all) must be in the type registry, or their Any cannot be written
	// as JSON.
	_ "google.golang.org/genproto/googleapis/rpc/errdetails"
)

// errorHandler is grpc-gateway's default handler (its gRPC → HTTP status
// mapping, headers and body {code, message, details}) with errorJSON as the
// body's marshaler.
func errorHandler(ctx context.Context, mux *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if status.Code(err) == codes.Unauthenticated {
		w = challenger{ResponseWriter: w, r: r}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, errorJSON{apiJSON}, w, r, err)
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
