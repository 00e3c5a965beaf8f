package skills_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/peer"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/kompetensnav/kompetensnav/services/skills"
	"github.com/kompetensnav/kompetensnav/services/skills/demotaxonomy"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

var ctx = context.Background()

// clock is the service's time, moved by tests.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time  { return time.Unix(0, c.t.Load()) }
func (c *clock) set(t time.Time) { c.t.Store(t.UnixNano()) }
func (c *clock) tick()           { c.t.Add(int64(time.Millisecond)) }

type env struct {
	c      skillsv1.SkillsServiceClient
	rdb    redis.UniversalClient
	clock  *clock
	issuer *skills.Issuer
	// councils and companies count the calls the fakes answered.
	councils  *fakeCouncils
	companies *fakeCompanies
}

// fakeCouncils is the councils service as far as skills uses it: councils
// fordon and handel exist.
type fakeCouncils struct {
	councilsv1.UnimplementedCouncilsServiceServer
	calls atomic.Int32
}

func (f *fakeCouncils) GetCouncil(_ context.Context, req *councilsv1.GetCouncilRequest) (*councilsv1.SectorCouncil, error) {
	f.calls.Add(1)
	if req.GetName() == "councils/fordon" || req.GetName() == "councils/handel" {
		return &councilsv1.SectorCouncil{Name: req.GetName(), DisplayName: "Kompetensråd"}, nil
	}
	return nil, apierr.NotFound(req.GetName())
}

// fakeCompanies is the companies service as far as skills uses it: the
// companies volvo-torslanda (Göteborg, the vehicle council), volvo and
// scania exist.
type fakeCompanies struct {
	companiesv1.UnimplementedCompaniesServiceServer
	calls atomic.Int32
}

func (f *fakeCompanies) GetCompany(_ context.Context, req *companiesv1.GetCompanyRequest) (*companiesv1.Company, error) {
	f.calls.Add(1)
	switch req.GetName() {
	case "companies/volvo-torslanda", "companies/volvo", "companies/scania":
		return &companiesv1.Company{Name: req.GetName(), DisplayName: "Fordonsföretaget (test)", Municipality: "1480", Council: "councils/fordon"}, nil
	}
	return nil, apierr.NotFound(req.GetName())
}

// start is the skills service on rdb, served over loopback gRPC behind the
// guard (calls are staff unless a context says otherwise), with fake
// councils and companies services as its peers.
func start(t testing.TB, rdb redis.UniversalClient) env {
	t.Helper()
	councils, companies := &fakeCouncils{}, &fakeCompanies{}
	peers := testkit.Serve(t, func(g *grpc.Server) {
		councilsv1.RegisterCouncilsServiceServer(g, councils)
		companiesv1.RegisterCompaniesServiceServer(g, companies)
	})
	e := startWithPeers(t, rdb, peers.Target())
	e.councils, e.companies = councils, companies
	return e
}

// startWithPeers is start with the councils and companies services at addr.
func startWithPeers(t testing.TB, rdb redis.UniversalClient, addr string) env {
	t.Helper()
	clk := &clock{}
	clk.set(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	dial := func(service string) *peer.Conn {
		c, err := peer.Dial(service, addr, peer.WithLogger(testkit.Logger()), peer.WithTimeout(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	councils, companies := dial("councils"), dial("companies")
	issuer, err := skills.NewIssuer("Kompetensnavet Göteborgsregionen", "https://kompetensnav.test", skills.GenerateIssuerKey())
	if err != nil {
		t.Fatal(err)
	}
	svc, err := skills.New(skills.Options{Redis: rdb, Logger: testkit.Logger(), Now: clk.now, Issuer: issuer, Councils: councils, Companies: companies})
	if err != nil {
		t.Fatal(err)
	}
	conn := testkit.Serve(t, func(g *grpc.Server) { svc.Register(g) }, testkit.Guarded(rdb, skills.Policy))
	return env{c: skillsv1.NewSkillsServiceClient(conn), rdb: rdb, clock: clk, issuer: issuer}
}

// each runs f against a real redis-server and against the embedded store.
func each(t *testing.T, f func(t *testing.T, e env)) {
	t.Helper()
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) { f(t, start(t, rdb)) })
}

func wantCode(t *testing.T, err error, code codes.Code) *status.Status {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code {
		t.Fatalf("want %v, got %v", code, err)
	}
	return st
}

// demoImport is the demo taxonomy as an import request.
func demoImport(t testing.TB) *skillsv1.ImportSkillsRequest {
	t.Helper()
	req := &skillsv1.ImportSkillsRequest{}
	if err := protojson.Unmarshal(demotaxonomy.JSON, req); err != nil {
		t.Fatal(err)
	}
	return req
}

func importDemo(t *testing.T, e env) *skillsv1.ImportSkillsResponse {
	t.Helper()
	resp, err := e.c.ImportSkills(ctx, demoImport(t))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func skill(sv, en string) *skillsv1.Skill {
	l := map[string]string{"sv": sv}
	if en != "" {
		l["en"] = en
	}
	return &skillsv1.Skill{PreferredLabel: l}
}

func mustSkill(t *testing.T, e env, id string, s *skillsv1.Skill) *skillsv1.Skill {
	t.Helper()
	e.clock.tick()
	got, err := e.c.CreateSkill(ctx, &skillsv1.CreateSkillRequest{SkillId: id, Skill: s})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// digest is a digest of every key and value in rdb (on both backends,
// which DUMP is not): what a refused request must leave as it was.
func digest(t testing.TB, rdb redis.UniversalClient) string {
	t.Helper()
	keys := testkit.Keys(t, rdb, "*")
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var v any
		switch typ {
		case "string":
			v, err = rdb.Get(ctx, k).Result()
		case "hash":
			m, e := rdb.HGetAll(ctx, k).Result()
			v, err = sortedMap(m), e
		case "set":
			m, e := rdb.SMembers(ctx, k).Result()
			slices.Sort(m)
			v, err = m, e
		case "zset":
			v, err = rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "stream":
			v, err = rdb.XRange(ctx, k, "-", "+").Result()
		}
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s\x00%s\x00%v\x00", k, typ, v)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sortedMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + m[k] + "\n")
	}
	return b.String()
}

// eventTypes are the types on the skills event stream, without the prefix.
func eventTypes(t *testing.T, e env) []string {
	t.Helper()
	msgs, err := e.rdb.XRange(ctx, skills.Keyspace.Events(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		typ, _ := m.Values["type"].(string)
		out = append(out, strings.TrimPrefix(typ, "kompetensnav.skills.v1."))
	}
	return out
}
