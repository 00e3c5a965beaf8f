package server

import (
	"flag"

	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"google.golang.org/grpc"
)

// Guard authenticates and authorises calls (services/platform/auth.Guard).
// Its interceptors run after logging and panic recovery, so refusals are
// logged and a panic inside is contained, and before request validation,
// so a caller without credentials learns nothing, not even that its
// request was malformed.
type Guard interface {
	Unary() grpc.UnaryServerInterceptor
	Stream() grpc.StreamServerInterceptor
}

// WithGuard installs g in the server's interceptor chain.
func WithGuard(g Guard) grpc.ServerOption { return guardOption{g: g} }

// Reflection switches gRPC server reflection on or off (on when not given):
// the all-in-one keeps it on for grpcurl, the standalone binaries default to
// off (-reflection).
func Reflection(on bool) grpc.ServerOption { return reflectionOption{on: on} }

// Platform options ride in New's grpc.ServerOption list: grpc lets a
// package embed EmptyServerOption to make its own.
type guardOption struct {
	grpc.EmptyServerOption
	g Guard
}

type reflectionOption struct {
	grpc.EmptyServerOption
	on bool
}

type options struct {
	guard      Guard
	reflection bool
	grpc       []grpc.ServerOption
}

func splitOptions(extra []grpc.ServerOption) options {
	o := options{reflection: true}
	for _, e := range extra {
		switch v := e.(type) {
		case guardOption:
			o.guard = v.g
		case reflectionOption:
			o.reflection = v.on
		default:
			o.grpc = append(o.grpc, e)
		}
	}
	return o
}

// ReflectionFlag defines -reflection (KN_REFLECTION) on fs with default def.
func ReflectionFlag(fs *flag.FlagSet, def bool) *bool {
	return config.Bool(fs, "reflection", def, "serve gRPC server reflection (lets grpcurl list and call methods without the protos)")
}
