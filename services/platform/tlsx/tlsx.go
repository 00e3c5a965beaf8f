// Package tlsx is the platform's optional TLS: gRPC and HTTP servers from
// certificate and key files, verification of client certificates (mutual
// TLS for partner systems), and the transport credentials a client uses to
// reach a service that serves TLS. Without files everything stays
// plaintext, as inside a cluster whose mesh encrypts traffic.
package tlsx

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// ServerFlags are a server's TLS settings.
type ServerFlags struct {
	Cert, Key, ClientCA *string
}

// RegisterServerFlags defines -<prefix>-tls-cert, -<prefix>-tls-key and,
// for gRPC, -<prefix>-tls-client-ca (env KN_<PREFIX>_TLS_…).
func RegisterServerFlags(fs *flag.FlagSet, prefix string, clientCA bool) *ServerFlags {
	f := &ServerFlags{
		Cert: config.String(fs, prefix+"-tls-cert", "", "PEM certificate (chain) to serve "+prefix+" over TLS; empty: plaintext"),
		Key:  config.String(fs, prefix+"-tls-key", "", "PEM private key of -"+prefix+"-tls-cert"),
	}
	empty := ""
	f.ClientCA = &empty
	if clientCA {
		f.ClientCA = config.String(fs, prefix+"-tls-client-ca", "",
			"PEM CA certificates: clients presenting a certificate signed by one are verified (mutual TLS; see -mtls-principals); clients without one still connect")
	}
	return f
}

// Config is the server's tls.Config, nil without a certificate.
func (f *ServerFlags) Config() (*tls.Config, error) {
	return ServerConfig(*f.Cert, *f.Key, *f.ClientCA)
}

// ServerConfig loads a certificate and key (both or neither) and, with
// clientCA, verifies client certificates signed by it when a client sends
// one (tls.VerifyClientCertIfGiven: partner systems authenticate by
// certificate, other callers by bearer token).
func ServerConfig(certFile, keyFile, clientCA string) (*tls.Config, error) {
	switch {
	case certFile == "" && keyFile == "":
		if clientCA != "" {
			return nil, errors.New("a client CA needs a server certificate and key too")
		}
		return nil, nil
	case certFile == "" || keyFile == "":
		return nil, errors.New("TLS needs both a certificate and a key")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pool, err := loadPool(clientCA)
		if err != nil {
			return nil, err
		}
		c.ClientCAs, c.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return c, nil
}

// GRPCServerOption is the grpc.Creds for c, or no option for a nil c.
func GRPCServerOption(c *tls.Config) []grpc.ServerOption {
	if c == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(c))}
}

// ClientFlag defines -grpc-tls-ca (KN_GRPC_TLS_CA): how this process's
// clients verify the services they call.
func ClientFlag(fs *flag.FlagSet) *string {
	return config.String(fs, "grpc-tls-ca", "",
		"PEM CA certificates to verify services that serve gRPC over TLS; \"system\" for the system's roots; empty: plaintext")
}

// Client is the transport credentials of a client: plaintext for "",
// the system's roots for "system", else the CA certificates in the file.
func Client(ca string) (credentials.TransportCredentials, error) {
	switch ca {
	case "":
		return insecure.NewCredentials(), nil
	case "system":
		pool, err := x509.SystemCertPool()
		if err != nil {
			return nil, err
		}
		return credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}), nil
	}
	pool, err := loadPool(ca)
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}), nil
}

func loadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CA certificates: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA certificates: %s holds no PEM certificate", file)
	}
	return pool, nil
}
