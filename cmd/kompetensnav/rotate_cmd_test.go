package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/enrolment"
	"github.com/kompetensnav/kompetensnav/services/enrolment/pii"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
)

// rotationKeys are a PII key pair's base64 forms and the keys they make.
type rotationKeys struct{ old, new, index string }

func newRotationKeys() rotationKeys {
	k := func() string {
		b := make([]byte, pii.KeySize)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	return rotationKeys{old: k(), new: k(), index: k()}
}

func (r rotationKeys) keys(t testing.TB, enc ...string) *pii.Keys {
	t.Helper()
	var raw [][]byte
	for _, e := range enc {
		b, _ := base64.StdEncoding.DecodeString(e)
		raw = append(raw, b)
	}
	idx, _ := base64.StdEncoding.DecodeString(r.index)
	k, err := pii.New(raw, idx)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// enrolmentWith serves the enrolment service with keys on rdb and returns
// a client (calls are staff).
func enrolmentWith(t testing.TB, rdb redis.UniversalClient, keys *pii.Keys) enrolmentv1.EnrolmentServiceClient {
	t.Helper()
	svc, err := enrolment.New(enrolment.Options{Redis: rdb, Logger: testkit.Logger(), Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	conn := testkit.Serve(t, func(g *grpc.Server) { svc.Register(g) }, testkit.Guarded(rdb, enrolment.Policy))
	return enrolmentv1.NewEnrolmentServiceClient(conn)
}

// testNumber is the i-th generated personal identity number (born
// 1960–1999, serials from 100): valid by Luhn, never printed.
func testNumber(i int) string {
	day := i % 13440
	y, m, d, serial := 1960+day%40, 1+(day/40)%12, 1+(day/480)%28, 100+i/13440
	nine := fmt.Sprintf("%02d%02d%02d%03d", y%100, m, d, serial)
	sum := 0
	for j := range 9 {
		v := int(nine[j] - '0')
		if j%2 == 0 {
			if v *= 2; v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return fmt.Sprintf("%04d%02d%02d-%03d%d", y, m, d, serial, (10-sum%10)%10)
}

// registerParticipants creates n participants through c, several at once.
func registerParticipants(t testing.TB, c enrolmentv1.EnrolmentServiceClient, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				_, err := c.CreateParticipant(context.Background(), &enrolmentv1.CreateParticipantRequest{Participant: &enrolmentv1.Participant{
					PersonalIdentityNumber: testNumber(i), GivenName: "Testa", FamilyName: "Testsson",
					Gender: enrolmentv1.Gender_GENDER_WOMAN, Municipality: "1480",
					LabourMarketStatus: enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_NOTIFIED,
					EducationLevel:     enrolmentv1.EducationLevel_EDUCATION_LEVEL_ISCED_3_4,
				}})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// sealedBy counts participants by the id of the key that sealed them.
func sealedBy(t testing.TB, rdb redis.UniversalClient) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, key := range testkit.Keys(t, rdb, enrolment.Keyspace.Key("participant", "*")) {
		b, err := rdb.HGet(context.Background(), key, "pii").Bytes()
		if err != nil {
			t.Fatal(err)
		}
		out[pii.KeyOf(b)]++
	}
	return out
}

// The command as the chart's Job runs it: a process of its own, keys from
// the environment. Killed (SIGKILL) after its first batch it has resealed part
// of the participants; run again it finishes, saying so, and then the
// service with the new key alone reads every participant.
func TestRotatePIIKeyCommandResumesAfterKill(t *testing.T) {
	rdb := testkit.Redis(t)
	k := newRotationKeys()
	const n = 400
	registerParticipants(t, enrolmentWith(t, rdb, k.keys(t, k.old)), n)
	oldID, newID := k.keys(t, k.old).SealingKeyID(), k.keys(t, k.new).SealingKeyID()

	// The test binary runs main (TestMain, KN_TEST_MAIN): the command as
	// the binary runs it, without building one.
	command := func() *exec.Cmd {
		args := append([]string{"rotate-pii-key", "-batch", "10", "-redis-wait", "0"}, testkit.RedisArgs(t, rdb)...)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "KN_TEST_MAIN=1", "KN_TEST_ARGS="+strings.Join(args, " "),
			"KN_PII_KEY="+k.new+","+k.old, "KN_PII_INDEX_KEY="+k.index)
		return cmd
	}

	cmd := command()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	var seen []string
	for lines.Scan() {
		seen = append(seen, lines.Text())
		if strings.Contains(lines.Text(), "msg=re-encrypting ") {
			_ = cmd.Process.Kill()
			break
		}
	}
	_ = cmd.Wait()
	got := sealedBy(t, rdb)
	if got[newID] == 0 || got[oldID] == 0 || got[newID]+got[oldID] != n {
		t.Fatalf("killed after its first batch: sealed %v (new %s, old %s); output:\n%s", got, newID, oldID, strings.Join(seen, "\n"))
	}
	t.Logf("killed with %d of %d participants resealed", got[newID], n)

	out, err := command().CombinedOutput()
	text := strings.TrimSpace(string(out))
	last := text[strings.LastIndex(text, "\n")+1:]
	if err != nil || !strings.Contains(last, "every participant is sealed with the first key") ||
		!strings.Contains(last, fmt.Sprintf("resealed=%d", got[oldID])) || !strings.Contains(last, fmt.Sprintf("current=%d", got[newID])) {
		t.Fatalf("resumed: %v\n%s", err, text)
	}
	if got := sealedBy(t, rdb); got[newID] != n || len(got) != 1 {
		t.Fatalf("after the rotation: %v", got)
	}

	// The new key alone reads every participant, and finds them by number.
	c := enrolmentWith(t, rdb, k.keys(t, k.new))
	for i := range n {
		p, err := c.LookupParticipant(context.Background(), &enrolmentv1.LookupParticipantRequest{
			PersonalIdentityNumber: testNumber(i), View: enrolmentv1.Participant_FULL})
		if err != nil || p.GetPersonalIdentityNumber() != testNumber(i) || p.GetGivenName() != "Testa" {
			t.Fatalf("participant %d with the new key alone: %v", i, err)
		}
	}
}

// Failures end in one last line naming the cause and exit status 1:
// no key, no Redis, another blind-index key, and participants sealed
// with a key that is not configured (the rotation is not complete).
func TestRotatePIIKeyCommandFailsClearly(t *testing.T) {
	rdb := testkit.Redis(t)
	k := newRotationKeys()
	registerParticipants(t, enrolmentWith(t, rdb, k.keys(t, k.old)), 3)
	other := newRotationKeys()
	run := func(args ...string) (string, int) {
		var errs bytes.Buffer
		code := rotatePIIKeyCommand(append([]string{"-redis-wait", "0"}, args...), &errs)
		text := strings.TrimSpace(errs.String())
		return text[strings.LastIndex(text, "\n")+1:], code
	}
	redisArgs := testkit.RedisArgs(t, rdb)
	for _, c := range []struct {
		args []string
		want string
	}{
		{redisArgs, "no key for participants' personal data: set KN_PII_KEY"},
		{[]string{"-redis", "127.0.0.1:1", "-pii-key", k.new + "," + k.old, "-pii-index-key", k.index}, "127.0.0.1:1"},
		{append([]string{"-pii-key", k.new + "," + k.old, "-pii-index-key", other.index}, redisArgs...), "blind index was built with the key"},
		{append([]string{"-pii-key", k.new, "-pii-index-key", k.index}, redisArgs...),
			"3 of 3 participants are sealed with keys not in KN_PII_KEY (" + k.keys(t, k.old).SealingKeyID() + ")"},
		{append([]string{"-pii-key", k.new, "-pii-index-key", k.index, "extra"}, redisArgs...), "unexpected arguments"},
	} {
		last, code := run(c.args...)
		if code != 1 || !strings.HasPrefix(last, "kompetensnav rotate-pii-key: ") || !strings.Contains(last, c.want) {
			t.Errorf("%v: exit %d, last line %q; want 1 and %q", c.args, code, last, c.want)
		}
	}
	// With the old key after the new one, it completes.
	if last, code := run(append([]string{"-pii-key", k.new + "," + k.old, "-pii-index-key", k.index}, redisArgs...)...); code != 0 ||
		!strings.Contains(last, "resealed=3") {
		t.Fatalf("exit %d: %s", code, last)
	}
}
