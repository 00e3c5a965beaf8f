package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/server"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/kompetensnav/kompetensnav/services/platform/tlsx"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// pki is a certificate authority made for one test, with what it issued
// written to files as an operator would mount them.
type pki struct {
	t    *testing.T
	dir  string
	ca   *x509.Certificate
	key  *ecdsa.PrivateKey
	seq  int64
	Root string // the CA certificate file
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Kompetensnav test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{t: t, dir: t.TempDir(), ca: ca, key: key, seq: 1}
	p.Root = p.write("ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(name, typ string, der []byte) string {
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return f
}

// issue makes a certificate for cn (a server for 127.0.0.1, or a client)
// and returns its certificate and key files.
func (p *pki) issue(cn string, server bool) (certFile, keyFile string) {
	p.t.Helper()
	p.seq++
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.seq), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, key.Public(), p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return p.write(cn+".pem", "CERTIFICATE", der), p.write(cn+"-key.pem", "PRIVATE KEY", kder)
}

// directory is a councils service that answers the council directory.
type directory struct {
	councilsv1.UnimplementedCouncilsServiceServer
}

func (directory) ListCouncils(ctx context.Context, _ *councilsv1.ListCouncilsRequest) (*councilsv1.ListCouncilsResponse, error) {
	p := auth.FromContext(ctx)
	return &councilsv1.ListCouncilsResponse{NextPageToken: p.GetId() + " " + p.GetRole().String()}, nil
}

// A partner system authenticates with its TLS client certificate, mapped
// to a principal by common name; other callers use bearer tokens over the
// same TLS port; an unknown certificate authenticates nobody.
func TestClientCertificatesAuthenticatePartners(t *testing.T) {
	p := newPKI(t)
	serverCert, serverKey := p.issue("councils.kompetensnav", true)
	partnerCert, partnerKey := p.issue("af-statistik", false)
	strangerCert, strangerKey := p.issue("someone-else", false)

	tlsCfg, err := tlsx.ServerConfig(serverCert, serverKey, p.Root)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := auth.ParseClientCertPrincipals("af-statistik=partner")
	if err != nil {
		t.Fatal(err)
	}
	boot, _ := auth.Bootstrap(testBootstrapKey)
	guard := auth.NewGuard(boot, testkit.Logger())
	guard.AcceptClientCertificates(certs)
	rdb := testkit.Redis(t)
	guard.Protect(&auth.Policy{Service: councilsv1.CouncilsService_ServiceDesc.ServiceName, Keyspace: store.Keyspace("councils"),
		Rules: map[string]auth.Rule{"ListCouncils": {Roles: auth.Only(auth.Staff, auth.Partner)}}}, rdb)
	srv, err := server.New(testkit.Logger(), append(tlsx.GRPCServerOption(tlsCfg), server.WithGuard(guard))...)
	if err != nil {
		t.Fatal(err)
	}
	councilsv1.RegisterCouncilsServiceServer(srv.GRPC, directory{})
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Shutdown(context.Background()) })

	call := func(cert, key string, opts ...grpc.CallOption) (string, error) {
		roots, _ := tlsx.Client(p.Root)
		creds := roots
		if cert != "" {
			pair, err := tls.LoadX509KeyPair(cert, key)
			if err != nil {
				t.Fatal(err)
			}
			pool := x509.NewCertPool()
			pool.AddCert(p.ca)
			creds = credentials.NewTLS(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}})
		}
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		resp, err := councilsv1.NewCouncilsServiceClient(conn).ListCouncils(context.Background(), &councilsv1.ListCouncilsRequest{}, opts...)
		return resp.GetNextPageToken(), err
	}
	if who, err := call(partnerCert, partnerKey); err != nil || who != "cert:af-statistik ROLE_PARTNER" {
		t.Fatalf("partner certificate: %q %v", who, err)
	}
	if _, err := call(strangerCert, strangerKey); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("certificate of no configured principal: %v", err)
	}
	if _, err := call("", ""); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no certificate, no token: %v", err)
	}
	if who, err := call("", "", grpc.PerRPCCredentials(auth.Bearer(testBootstrapKey))); err != nil || who != "bootstrap ROLE_STAFF" {
		t.Fatalf("bearer token over TLS: %q %v", who, err)
	}
	// A plaintext client cannot talk to a TLS server at all.
	plain, _ := tlsx.Client("")
	conn, _ := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(plain))
	defer conn.Close()
	if _, err := councilsv1.NewCouncilsServiceClient(conn).ListCouncils(context.Background(), &councilsv1.ListCouncilsRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("plaintext against TLS: %v", err)
	}
}

const testBootstrapKey = "bootstrap-key-for-the-tls-test-0123456789"

func TestClientCertPrincipalsSpec(t *testing.T) {
	m, err := auth.ParseClientCertPrincipals("af=partner, portal=council:councils/fordon")
	if err != nil || m == nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"af", "af=wizard", "portal=council", "af=partner:councils/fordon", "=partner"} {
		if _, err := auth.ParseClientCertPrincipals(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if m, err := auth.ParseClientCertPrincipals(""); m != nil || err != nil {
		t.Errorf("empty: %v %v", m, err)
	}
}

func TestServerConfigNeedsCertAndKeyTogether(t *testing.T) {
	p := newPKI(t)
	cert, key := p.issue("x", true)
	for name, c := range map[string][3]string{
		"cert only":       {cert, "", ""},
		"key only":        {"", key, ""},
		"client CA alone": {"", "", p.Root},
		"unreadable":      {filepath.Join(p.dir, "nope"), key, ""},
		"CA not PEM":      {cert, key, key},
	} {
		if _, err := tlsx.ServerConfig(c[0], c[1], c[2]); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if c, err := tlsx.ServerConfig("", "", ""); c != nil || err != nil {
		t.Errorf("no files: %v %v", c, err)
	}
}

// A burst over a role's rate gets RESOURCE_EXHAUSTED with RetryInfo; other
// principals are not affected.
func TestRateLimitPerPrincipal(t *testing.T) {
	rdb := testkit.Redis(t)
	limits, err := auth.ParseRateLimits("partner=5")
	if err != nil {
		t.Fatal(err)
	}
	l := auth.NewRateLimiter(limits)
	ks := store.Keyspace("councils")
	partner := &auth.Principal{Id: "apiKeys/af", Role: auth.Partner}
	other := &auth.Principal{Id: "apiKeys/trr", Role: auth.Partner}
	staff := &auth.Principal{Id: "bootstrap", Role: auth.Staff}
	refused := 0
	for range 20 {
		if err := l.Allow(context.Background(), rdb, ks, partner); err != nil {
			st := status.Convert(err)
			if st.Code() != codes.ResourceExhausted || len(st.Details()) != 1 {
				t.Fatalf("%v %v", err, st.Details())
			}
			refused++
		}
	}
	if refused < 10 {
		t.Fatalf("only %d of 20 calls in a burst refused at 5 a second", refused)
	}
	if err := l.Allow(context.Background(), rdb, ks, other); err != nil {
		t.Fatalf("another partner: %v", err)
	}
	for range 50 {
		if err := l.Allow(context.Background(), rdb, ks, staff); err != nil {
			t.Fatalf("staff has no limit here: %v", err)
		}
	}
	for _, bad := range []string{"partner", "wizard=5", "partner=-1", "partner=x"} {
		if _, err := auth.ParseRateLimits(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
