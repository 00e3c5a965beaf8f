package gateway

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// What the gRPC client library reports about the connection or the message
// size reaches a REST client as a plain error of the right kind.
func TestRestate(t *testing.T) {
	for _, c := range []struct {
		in   error
		code codes.Code
		msg  string
	}{
		{status.Error(codes.ResourceExhausted, "grpc: received message larger than max (5242880 vs. 4194304)"), codes.Internal, "the response was larger than the gateway accepts; ask for a smaller page"},
		{status.Error(codes.Unavailable, "error reading from server: EOF"), codes.Unavailable, "a service behind the gateway is unavailable; retry later"},
		{status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:9090: connect: connection refused"`), codes.Unavailable, "a service behind the gateway is unavailable; retry later"},
		{status.Error(codes.Internal, "grpc: error while marshaling: string field contains invalid UTF-8"), codes.Internal, "internal error"},
		{status.Error(codes.ResourceExhausted, "rate limit exceeded"), codes.ResourceExhausted, "rate limit exceeded"},
		{status.Error(codes.Unavailable, "storage unavailable, retry later"), codes.Unavailable, "storage unavailable, retry later"},
	} {
		st := status.Convert(restate(c.in))
		if st.Code() != c.code || st.Message() != c.msg {
			t.Errorf("%v → %v %q, want %v %q", c.in, st.Code(), st.Message(), c.code, c.msg)
		}
	}
}
