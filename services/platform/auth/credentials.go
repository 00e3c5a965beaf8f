package auth

import (
	"context"

	"google.golang.org/grpc/credentials"
)

// Bearer is a gRPC per-call credential sending token as "authorization:
// Bearer <token>", for clients of the API (the demo loader, tests, peers
// with a service key). grpc's own oauth credentials insist on TLS, which
// in-cluster plaintext (TLS being the mesh's job) does not have.
func Bearer(token string) credentials.PerRPCCredentials { return bearer(token) }

type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{AuthorizationHeader: "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }
