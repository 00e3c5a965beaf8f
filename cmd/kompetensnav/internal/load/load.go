// Package load is the enrolment load generator (kompetensnav load): in one
// run on one machine it starts a redis-server of its own, a bare gRPC echo
// server and the enrolment service (both built by the platform's
// server.New with the same options, the same guard and the same
// credentials), and the REST gateway in front of the service; then drives,
// each with the same number of concurrent clients for the same time,
//
//	(a) echo:           the echo server's UnaryCall, a 64-byte payload
//	(b) gRPC enrol:     EnrolmentService.CreateEnrolment
//	(c) REST enrol:     POST /v1/offerings/{o}/enrolments through the gateway
//
// and prints each one's throughput, p50 and p99, the ratios (b)/(a) and
// (c)/(b), and the Redis round trips per enrolment, counted by a go-redis
// hook on the service's client (a pipeline is one round trip).
//
// The enrolments go to fresh (participant, offering) pairs, round robin
// over the offerings, which have a large capacity (500 seats; beyond, the
// waitlist: the same single step). The call-off the offerings are made from
// is answered by the tool itself (setup, not what is measured), and rate
// limits are off, as they would measure the limiter.
package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/kompetensnav/kompetensnav/gateway"
	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/enrolment"
	"github.com/kompetensnav/kompetensnav/services/enrolment/pii"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/redisx"
	"github.com/kompetensnav/kompetensnav/services/platform/server"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/genproto/googleapis/type/timeofday"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// Options configure a run.
type Options struct {
	// Clients is how many callers run at once in each phase (50).
	Clients int
	// Duration is how long each phase runs (10s).
	Duration time.Duration
	// Participants and Offerings bound the enrolments a run can make
	// (Participants × Offerings); a phase that runs out stops early.
	Participants, Offerings int
	// RedisServer is the redis-server binary ("" looks it up on PATH).
	RedisServer string
	// Log receives the servers' logs (nil discards).
	Log *slog.Logger
}

func (o *Options) defaults() {
	if o.Clients <= 0 {
		o.Clients = 50
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Participants <= 0 {
		o.Participants = 2000
	}
	if o.Offerings <= 0 {
		o.Offerings = 100
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Phase is what one phase measured.
type Phase struct {
	Name     string
	Requests int
	Errors   int
	Elapsed  time.Duration
	P50, P99 time.Duration
	// RoundTrips is the Redis round trips per request (enrolments only).
	RoundTrips float64
	// Enrolled and Waitlisted count the enrolments' outcomes.
	Enrolled, Waitlisted int
}

// Throughput is requests a second.
func (p Phase) Throughput() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Requests) / p.Elapsed.Seconds()
}

// Result is a whole run.
type Result struct {
	Echo, GRPC, REST Phase
	Clients          int
	Duration         time.Duration
	Machine          string
}

// roundTrips counts the Redis round trips a client makes: each command sent
// alone, and each pipeline (MULTI/EXEC or not), is one; except the
// handshake of a new pooled connection (HELLO, CLIENT SETINFO), which is
// the pool's, once per connection, not any request's.
type roundTrips struct{ n atomic.Int64 }

func handshake(cmd redis.Cmder) bool { return cmd.Name() == "hello" || cmd.Name() == "client" }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd) {
			r.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !slices.ContainsFunc(cmds, handshake) {
			r.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// callOff answers for the one call-off the run's offerings are made from.
type callOff struct{}

func (callOff) CallOff(_ context.Context, name string) (enrolment.CallOff, error) {
	if name != "callOffs/load" {
		return enrolment.CallOff{}, enrolment.ErrNotFound
	}
	return enrolment.CallOff{Name: name, State: "STATE_AWARDED", Awarded: true, Provider: "providers/load", Days: 1,
		Skills: []string{"skills/svetsning"}}, nil
}

// echo is the bare echo service.
type echo struct {
	testgrpc.UnimplementedTestServiceServer
}

func (echo) UnaryCall(_ context.Context, in *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{Payload: in.GetPayload()}, nil
}

var echoPolicy = &auth.Policy{
	Service:  testgrpc.TestService_ServiceDesc.ServiceName,
	Keyspace: store.Keyspace("load"),
	Rules:    map[string]auth.Rule{"UnaryCall": {Roles: auth.Everyone()}},
}

// Run runs the three phases and returns what they measured.
func Run(ctx context.Context, o Options) (Result, error) {
	o.defaults()
	res := Result{Clients: o.Clients, Duration: o.Duration, Machine: machine()}
	redisAddr, stopRedis, err := startRedis(o.RedisServer)
	if err != nil {
		return res, err
	}
	defer stopRedis()
	rt := &roundTrips{}
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, PoolSize: 4 * o.Clients,
		ReadTimeout: redisx.ReadTimeout, WriteTimeout: redisx.WriteTimeout, MaxRetries: redisx.MaxRetries})
	defer rdb.Close()
	rdb.AddHook(rt)

	key := "kn-load-" + strconv.FormatInt(time.Now().UnixNano(), 36) + strings.Repeat("x", 32)
	boot, err := auth.Bootstrap(key)
	if err != nil {
		return res, err
	}
	// Both servers: server.New with the same options and a guard of the
	// same kind, authenticating the same bootstrap key.
	serve := func(register func(*grpc.Server, *auth.Guard)) (string, func(), error) {
		guard := auth.NewGuard(auth.Chain(boot), o.Log)
		srv, err := server.New(o.Log, server.WithGuard(guard))
		if err != nil {
			return "", nil, err
		}
		register(srv.GRPC, guard)
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		go func() { _ = srv.Serve(lis) }()
		return lis.Addr().String(), func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		}, nil
	}
	echoAddr, stopEcho, err := serve(func(g *grpc.Server, guard *auth.Guard) {
		testgrpc.RegisterTestServiceServer(g, echo{})
		guard.Protect(echoPolicy, rdb)
	})
	if err != nil {
		return res, err
	}
	defer stopEcho()
	svc, err := enrolment.New(enrolment.Options{Redis: rdb, Logger: o.Log, Keys: pii.Generate(), CallOffs: callOff{}})
	if err != nil {
		return res, err
	}
	if err := svc.Migrate(ctx); err != nil {
		return res, err
	}
	svcAddr, stopSvc, err := serve(func(g *grpc.Server, guard *auth.Guard) {
		svc.Register(g)
		guard.Protect(enrolment.Policy, rdb)
	})
	if err != nil {
		return res, err
	}
	defer stopSvc()
	addrs := map[string]string{}
	for _, s := range gateway.Services {
		addrs[s.Name] = svcAddr
	}
	gw, err := gateway.New(ctx, gateway.Config{Addrs: addrs, Logger: o.Log})
	if err != nil {
		return res, err
	}
	defer gw.Close()
	httpLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	httpSrv := gateway.NewHTTPServer(httpLis.Addr().String(), gw.Handler())
	go func() { _ = httpSrv.Serve(httpLis) }()
	defer httpSrv.Close()

	dial := func(addr string) (*grpc.ClientConn, error) {
		return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(auth.Bearer(key)))
	}
	echoConn, err := dial(echoAddr)
	if err != nil {
		return res, err
	}
	defer echoConn.Close()
	svcConn, err := dial(svcAddr)
	if err != nil {
		return res, err
	}
	defer svcConn.Close()
	client := enrolmentv1.NewEnrolmentServiceClient(svcConn)

	offerings, participants, err := setup(ctx, client, o)
	if err != nil {
		return res, fmt.Errorf("setting up: %w", err)
	}
	var next atomic.Int64
	pair := func() (offering, participant string, ok bool) {
		i := int(next.Add(1) - 1)
		if i >= len(offerings)*len(participants) {
			return "", "", false
		}
		return offerings[i%len(offerings)], participants[(i/len(offerings))%len(participants)], true
	}

	// One enrolment first, so that the phases measure the steady state
	// (the project is in the service's cache).
	if off, who, ok := pair(); ok {
		if _, err := client.CreateEnrolment(ctx, &enrolmentv1.CreateEnrolmentRequest{Parent: off, Enrolment: &enrolmentv1.Enrolment{Participant: who}}); err != nil {
			return res, fmt.Errorf("warming up: %w", err)
		}
	}
	echoClient := testgrpc.NewTestServiceClient(echoConn)
	payload := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: bytes.Repeat([]byte("k"), 64)}}
	res.Echo = phase(ctx, "echo", o, nil, func(ctx context.Context) (string, error) {
		_, err := echoClient.UnaryCall(ctx, payload)
		return "", err
	})
	res.GRPC = phase(ctx, "gRPC CreateEnrolment", o, rt, func(ctx context.Context) (string, error) {
		off, who, ok := pair()
		if !ok {
			return "", errExhausted
		}
		e, err := client.CreateEnrolment(ctx, &enrolmentv1.CreateEnrolmentRequest{Parent: off, Enrolment: &enrolmentv1.Enrolment{Participant: who}})
		return e.GetState().String(), err
	})
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConns: 2 * o.Clients, MaxIdleConnsPerHost: 2 * o.Clients}}
	base := "http://" + httpLis.Addr().String()
	res.REST = phase(ctx, "REST CreateEnrolment", o, rt, func(ctx context.Context) (string, error) {
		off, who, ok := pair()
		if !ok {
			return "", errExhausted
		}
		body, _ := json.Marshal(map[string]string{"participant": who})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/"+off+"/enrolments", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := httpClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, raw)
		}
		var e struct{ State string }
		_ = json.Unmarshal(raw, &e)
		return e.State, nil
	})
	return res, nil
}

var errExhausted = errors.New("every participant is enrolled on every offering")

// phase runs call from o.Clients goroutines for o.Duration.
func phase(ctx context.Context, name string, o Options, rt *roundTrips, call func(context.Context) (string, error)) Phase {
	p := Phase{Name: name}
	lat := make([][]time.Duration, o.Clients)
	states := make([]map[string]int, o.Clients)
	errs := make([]int, o.Clients)
	var firstErr atomic.Value
	var before int64
	if rt != nil {
		before = rt.n.Load()
	}
	stop := time.Now().Add(o.Duration)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range o.Clients {
		states[c] = map[string]int{}
		wg.Go(func() {
			for time.Now().Before(stop) && ctx.Err() == nil {
				t0 := time.Now()
				state, err := call(ctx)
				if errors.Is(err, errExhausted) {
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
				if err != nil {
					errs[c]++
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				states[c][state]++
			}
		})
	}
	wg.Wait()
	p.Elapsed = time.Since(start)
	var all []time.Duration
	for c := range o.Clients {
		all = append(all, lat[c]...)
		p.Errors += errs[c]
		p.Enrolled += states[c]["STATE_ENROLLED"]
		p.Waitlisted += states[c]["STATE_WAITLISTED"]
	}
	p.Requests = len(all) - p.Errors
	slices.Sort(all)
	if len(all) > 0 {
		p.P50, p.P99 = all[len(all)*50/100], all[min(len(all)*99/100, len(all)-1)]
	}
	if rt != nil && p.Requests+p.Errors > 0 {
		p.RoundTrips = float64(rt.n.Load()-before) / float64(p.Requests+p.Errors)
	}
	if e, ok := firstErr.Load().(string); ok {
		o.Log.Warn("calls failed", "phase", name, "errors", p.Errors, "first", e)
	}
	return p
}

// setup makes the project, the offerings (open, 500 seats) and the
// participants the enrolments use.
func setup(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, o Options) (offerings, participants []string, err error) {
	today := time.Now()
	p, err := c.CreateProject(ctx, &enrolmentv1.CreateProjectRequest{ProjectId: "load", Project: &enrolmentv1.Project{
		ReferenceNumber: "LOAD-1", DisplayName: "Lastprov", Funder: "Kompetensnav",
		StartDate: &date.Date{Year: int32(today.Year()) - 1, Month: 1, Day: 1}, EndDate: &date.Date{Year: int32(today.Year()) + 2, Month: 12, Day: 31},
		Budget: &money.Money{CurrencyCode: "SEK", Units: 1_000_000}, Region: []string{"1480"},
		EligibleTargetGroups: []commonv1.TargetGroup{commonv1.TargetGroup_TARGET_GROUP_NOTIFIED},
		Targets:              &enrolmentv1.Targets{Participants: 1000},
	}})
	if err != nil {
		return nil, nil, err
	}
	course := today.AddDate(1, 0, 0)
	for i := range o.Offerings {
		off, err := c.CreateOffering(ctx, &enrolmentv1.CreateOfferingRequest{OfferingId: fmt.Sprintf("load-%03d", i), Offering: &enrolmentv1.Offering{
			CallOff: "callOffs/load", Project: p.GetName(), Title: "Svetsning", Capacity: 500, Municipality: "1480",
			Mode: enrolmentv1.Offering_MODE_CLASSROOM, RegistrationDeadline: &date.Date{Year: int32(course.Year()), Month: int32(course.Month()), Day: int32(course.Day())},
			Sessions: []*enrolmentv1.Session{{Date: &date.Date{Year: int32(course.Year()), Month: int32(course.Month()), Day: int32(course.Day())},
				StartTime: &timeofday.TimeOfDay{Hours: 8}, EndTime: &timeofday.TimeOfDay{Hours: 16}, Location: "Göteborg"}},
		}})
		if err != nil {
			return nil, nil, err
		}
		if _, err := c.OpenOffering(ctx, &enrolmentv1.OpenOfferingRequest{Name: off.GetName()}); err != nil {
			return nil, nil, err
		}
		offerings = append(offerings, off.GetName())
	}
	participants = make([]string, o.Participants)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				got, err := c.CreateParticipant(ctx, &enrolmentv1.CreateParticipantRequest{Participant: &enrolmentv1.Participant{
					PersonalIdentityNumber: number(i), GivenName: "Last", FamilyName: "Provsson", Gender: enrolmentv1.Gender_GENDER_WOMAN,
					Municipality: "1480", LabourMarketStatus: enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_NOTIFIED,
					EducationLevel: enrolmentv1.EducationLevel_EDUCATION_LEVEL_ISCED_3_4,
				}})
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				participants[i] = got.GetName()
				mu.Unlock()
			}
		})
	}
	for i := range o.Participants {
		work <- i
	}
	close(work)
	wg.Wait()
	return offerings, participants, firstErr
}

// number is the i-th of the run's generated personal identity numbers.
func number(i int) string {
	day := i % 13440
	y, m, d := 1960+day%40, 1+(day/40)%12, 1+(day/480)%28
	ten := fmt.Sprintf("%02d%02d%02d%03d", y%100, m, d, 100+i/13440)
	sum := 0
	for j := range 9 {
		v := int(ten[j] - '0')
		if j%2 == 0 {
			if v *= 2; v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return fmt.Sprintf("%04d%02d%02d-%s%d", y, m, d, ten[6:9], (10-sum%10)%10)
}

// startRedis starts a redis-server of the run's own on a free port, without
// persistence.
func startRedis(bin string) (string, func(), error) {
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			return "", nil, errors.New("redis-server is not installed (make redis-server, or apt-get install redis-server)")
		}
	}
	dir, err := os.MkdirTemp("", "kn-load-")
	if err != nil {
		return "", nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := lis.Addr().(*net.TCPAddr).Port
	_ = lis.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "",
		"--appendonly", "no", "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = os.RemoveAll(dir)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c.Ping(context.Background()).Err() == nil {
			return addr, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, errors.New("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// machine describes where the run ran.
func machine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if name, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = ", load average " + strings.Join(f[:3], " ") + " at the start"
		}
	}
	return fmt.Sprintf("%s/%s, %d CPUs %s, %s%s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), model, runtime.Version(), load)
}

// Print writes the result as a table with the ratios and round trips.
func (r Result) Print(w io.Writer) {
	fmt.Fprintf(w, "kompetensnav load: %d clients, %s a phase, on %s\n\n", r.Clients, r.Duration, r.Machine)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\trequests\terrors\treq/s\tp50\tp99\tRedis round trips/req\tenrolled\twaitlisted\t")
	for _, p := range []Phase{r.Echo, r.GRPC, r.REST} {
		rt := "-"
		if p.Name != "echo" {
			rt = fmt.Sprintf("%.2f", p.RoundTrips)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%d\t%d\t\n", p.Name, p.Requests, p.Errors, p.Throughput(),
			p.P50.Round(time.Microsecond), p.P99.Round(time.Microsecond), rt, p.Enrolled, p.Waitlisted)
	}
	_ = tw.Flush()
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	fmt.Fprintf(w, "\nratios        p50    p99    throughput\n")
	fmt.Fprintf(w, "(b)/(a)       %-6s %-6s %s\n", ratio(float64(r.GRPC.P50), float64(r.Echo.P50)), ratio(float64(r.GRPC.P99), float64(r.Echo.P99)),
		ratio(r.GRPC.Throughput(), r.Echo.Throughput()))
	fmt.Fprintf(w, "(c)/(b)       %-6s %-6s %s\n", ratio(float64(r.REST.P50), float64(r.GRPC.P50)), ratio(float64(r.REST.P99), float64(r.GRPC.P99)),
		ratio(r.REST.Throughput(), r.GRPC.Throughput()))
}
