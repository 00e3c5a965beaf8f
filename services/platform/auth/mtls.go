package auth

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// ClientCertPrincipals authenticates partner systems by their TLS client
// certificate: a certificate the server verified (tlsx, -grpc-tls-client-ca)
// whose subject common name is configured here stands for a principal. A
// call with a bearer token is authenticated by the token instead.
type ClientCertPrincipals struct {
	byCN map[string]*Principal
}

// MTLSPrincipalsFlag defines -mtls-principals (KN_MTLS_PRINCIPALS).
func MTLSPrincipalsFlag(fs *flag.FlagSet) *string {
	return config.String(fs, "mtls-principals", "",
		"client certificate common names and the principals they stand for: cn=role or cn=role:resource, comma-separated (e.g. af-statistik=partner,portal=council:councils/fordon)")
}

// ParseClientCertPrincipals reads "cn=role[:resource],…"; empty gives nil
// (no certificate authenticates anyone).
func ParseClientCertPrincipals(spec string) (*ClientCertPrincipals, error) {
	entries := config.List(spec)
	if len(entries) == 0 {
		return nil, nil
	}
	m := &ClientCertPrincipals{byCN: map[string]*Principal{}}
	for _, e := range entries {
		cn, rest, ok := strings.Cut(e, "=")
		roleName, subject, _ := strings.Cut(rest, ":")
		role, known := roleByName(roleName)
		coll := BoundCollection(role)
		switch {
		case !ok || cn == "" || !known:
			return nil, fmt.Errorf("-mtls-principals: %q is not cn=role[:resource]", e)
		case coll != "" && !strings.HasPrefix(subject, coll+"/"):
			return nil, fmt.Errorf("-mtls-principals: %q: a %s is bound to one of %s", e, role, coll)
		case coll == "" && subject != "":
			return nil, fmt.Errorf("-mtls-principals: %q: a %s is bound to no resource", e, role)
		}
		m.byCN[cn] = &Principal{Id: "cert:" + cn, Role: role, Subject: subject}
	}
	return m, nil
}

// Principal is the principal of the call's verified client certificate,
// nil without one or for a name not configured.
func (m *ClientCertPrincipals) Principal(ctx context.Context) *Principal {
	if m == nil {
		return nil
	}
	pr, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := pr.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return nil
	}
	return m.byCN[info.State.VerifiedChains[0][0].Subject.CommonName]
}
