package server

import (
	"flag"
	"fmt"

	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"github.com/kompetensnav/kompetensnav/services/platform/tlsx"
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

// DefaultMaxRecvBytes is the largest request a server accepts (gRPC's own
// default, made explicit): every request of the API is far smaller.
const DefaultMaxRecvBytes = 4 << 20

// Flags are a gRPC server's settings.
type Flags struct {
	Reflection   *bool
	MaxRecvBytes *int
	TLS          *tlsx.ServerFlags
}

// RegisterFlags defines -reflection (default reflection), -grpc-max-recv-bytes
// and -grpc-tls-cert, -grpc-tls-key, -grpc-tls-client-ca on fs.
func RegisterFlags(fs *flag.FlagSet, reflection bool) *Flags {
	return &Flags{
		Reflection:   ReflectionFlag(fs, reflection),
		MaxRecvBytes: config.Int(fs, "grpc-max-recv-bytes", DefaultMaxRecvBytes, "the largest gRPC request accepted, in bytes"),
		TLS:          tlsx.RegisterServerFlags(fs, "grpc", true),
	}
}

// Options are New's options for the flags.
func (f *Flags) Options() ([]grpc.ServerOption, error) {
	if *f.MaxRecvBytes <= 0 {
		return nil, fmt.Errorf("-grpc-max-recv-bytes must be positive")
	}
	c, err := f.TLS.Config()
	if err != nil {
		return nil, err
	}
	return append([]grpc.ServerOption{Reflection(*f.Reflection), grpc.MaxRecvMsgSize(*f.MaxRecvBytes)}, tlsx.GRPCServerOption(c)...), nil
}
