package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/daemon"
	"github.com/patjanitor/patjanitor/internal/idnsim"
)

// approveServe is serve with --plans-dir and the lifecycle API, its config
// requiring two reviewers, and a plan those two signed (planFile and its
// .sig), ready to be POSTed to /approve.
type approveServe struct {
	e        *serveEnv
	p        *inProcess
	plans    string
	planFile string
	stale    []string
}

func newApproveServe(t *testing.T, mod func(*daemon.Options)) *approveServe {
	t.Helper()
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	stale := e.addTokens("stale", 2, 0)
	r, signers := newReviewers(t, e.dir)
	cfg := withApprovals(e.configYAML("@daily", servePolicy("stale", "enforce", "", "stale", true)), signers, "")
	cfgPath := e.writeConfig(cfg)
	plans := filepath.Join(e.dir, "plans")
	p := startInProcessWith(t, e, cfgPath, serveFlags{plansDir: plans, enableLifecycle: true}, mod)
	planFile := filepath.Join(e.dir, "plan.json")
	reviewerRun(t, e, cfgPath, "plan", "--out", planFile)
	reviewerRun(t, e, cfgPath, "approve", planFile, "--key", r.alice)
	reviewerRun(t, e, cfgPath, "approve", planFile, "--key", r.bob)
	return &approveServe{e: e, p: p, plans: plans, planFile: planFile, stale: stale}
}

// nothingDone asserts that the daemon stored nothing in the plans directory,
// sent nothing to the tenant and journaled no run: the submissions were
// refused at the door.
func (a *approveServe) nothingDone(t *testing.T) {
	t.Helper()
	if files, _ := filepath.Glob(filepath.Join(a.plans, "*", "*")); len(files) != 0 {
		t.Fatalf("refused submissions left %v", files)
	}
	if err := a.p.stop(t); err != nil {
		t.Fatal(err)
	}
	if m := idnsim.Mutations(a.e.sim.Requests()); len(m) != 0 {
		t.Fatalf("refused submissions sent %v", m)
	}
	for _, id := range a.stale {
		if _, ok := a.e.sim.Token(id); !ok {
			t.Fatalf("token %s gone", id)
		}
	}
	if runs := journalRuns(t, a.p.journal); len(runs) != 0 {
		t.Fatalf("journal plan runs %+v; want none", runs)
	}
}

// filler is n bytes of 'x', made as they are read: a client that streams a
// large part without holding it, so that what the test measures is what
// the daemon holds.
type filler struct{ n int64 }

func (f *filler) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), f.n)]
	for i := range p {
		p[i] = 'x'
	}
	f.n -= int64(len(p))
	return len(p), nil
}

const testBoundary = "patjanitor-test-boundary"

func partHeader(name string) string {
	return fmt.Sprintf("--%s\r\nContent-Disposition: form-data; name=%q; filename=%q\r\nContent-Type: application/octet-stream\r\n\r\n", testBoundary, name, name)
}

// approveBody is a multipart POST /approve body: the plan, then a
// signature part of sigBytes bytes of filler.
func approveBody(planData []byte, sigBytes int64) io.Reader {
	return io.MultiReader(
		strings.NewReader(partHeader("plan")), strings.NewReader(string(planData)), strings.NewReader("\r\n"),
		strings.NewReader(partHeader("sig")), &filler{n: sigBytes}, strings.NewReader("\r\n--"+testBoundary+"--\r\n"),
	)
}

func postBody(t *testing.T, base string, body io.Reader) (int, http.Header, string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/approve", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "multipart/form-data; boundary="+testBoundary)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(out), nil
}

// A signature file may hold 1 MiB, and POST /approve read its sig part
// whole (up to the body's 256 MiB, in memory and in a temporary file) before
// ParseSigFile refused it: four clients sending 32 MiB each had the daemon
// allocate over 256 MiB to refuse them. The part is read up to 1 MiB + 1
// byte and answered 413 naming it; what the daemon allocates for the four
// is a few MiB, and nothing is stored.
func TestHostileApproveEndpointOversizedSigPartIsNotReadWhole(t *testing.T) {
	a := newApproveServe(t, nil)
	planData, err := os.ReadFile(a.planFile)
	if err != nil {
		t.Fatal(err)
	}
	const clients, sigBytes = 4, 32 << 20
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	type answer struct {
		code   int
		header http.Header
		body   string
		err    error
	}
	answers := make([]answer, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			var an answer
			an.code, an.header, an.body, an.err = postBody(t, a.p.base, approveBody(planData, sigBytes))
			answers[i] = an
		})
	}
	wg.Wait()
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	refused := 0
	for i, an := range answers {
		switch {
		case an.err != nil:
			t.Errorf("client %d: %v", i, an.err)
		case an.code == http.StatusRequestEntityTooLarge && strings.Contains(an.body, "refused, nothing stored: the sig part is larger than 1 MiB, the most a signature file may be"):
			refused++
		case an.code == http.StatusServiceUnavailable && an.header.Get("Retry-After") != "":
			// Turned away while two others were read: also fine.
		default:
			t.Errorf("client %d: %d %s", i, an.code, an.body)
		}
	}
	if refused == 0 {
		t.Errorf("no client was answered 413: %+v", answers)
	}
	// Each read holds 1 MiB + 1 byte at most (io.ReadAll's growth makes
	// that about 3 MiB allocated); the old code allocated twice the part.
	if limit := uint64(clients * 4 << 20); allocated > limit {
		t.Errorf("%d clients sending a %d MiB sig part: %d MiB allocated, want at most %d MiB", clients, sigBytes>>20, allocated>>20, limit>>20)
	}
	t.Logf("%d clients × %d MiB sig part: %.1f MiB allocated", clients, sigBytes>>20, float64(allocated)/(1<<20))
	a.nothingDone(t)
}

// stall opens a connection to addr and sends a POST /approve's headers
// announcing a large body and the first bytes of it, then nothing: a client
// that holds the request open (slowloris), or a reviewer whose link died.
func stall(t *testing.T, base string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	head := partHeader("plan")
	_, err = fmt.Fprintf(c, "POST /approve HTTP/1.1\r\nHost: janitor\r\nContent-Type: multipart/form-data; boundary=%s\r\nContent-Length: %d\r\n\r\n%s{", testBoundary, 64<<20, head)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// holdBothPlaces has two stalled clients (c1 and c2 to begin with) hold the two places of POST
// /approve, and returns once a probe is answered 503.
//
// The stalled requests reach the handler in their own time, and a probe
// takes a place while it is read: a stalled request that arrives while the
// first one and a probe hold the places is answered 503 at once, and its
// client, which reads nothing, went on looking like a holder. The probes
// were then answered 400 for as long as the test waited (seen once under
// load). So a stalled client the daemon answered is replaced by a new one.
func holdBothPlaces(t *testing.T, base string, c1, c2 net.Conn) (net.Conn, net.Conn) {
	t.Helper()
	cs := [2]net.Conn{c1, c2}
	var code int
	var h http.Header
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if code, h = probeApprove(t, base); code == http.StatusServiceUnavailable {
			if h.Get("Retry-After") != "30" {
				t.Fatalf("POST /approve while two are being read: 503 with Retry-After %q; want 30", h.Get("Retry-After"))
			}
			return cs[0], cs[1]
		}
		for i, c := range cs {
			if got, answered := stalledAnswer(c, time.Millisecond); answered {
				rest, _ := stalledAnswer(c, time.Second) // the daemon hangs up after answering
				got += rest
				if !strings.HasPrefix(got, "HTTP/1.1 503 ") {
					t.Fatalf("a stalled client was answered %q; want nothing, or 503 when it came while a probe held a place", got)
				}
				t.Logf("stalled client %d came while a probe held a place and was answered 503; a new one takes its turn", i+1)
				_ = c.Close()
				cs[i] = stall(t, base)
			}
		}
	}
	t.Fatalf("POST /approve while two are being read: %d (Retry-After %q); want 503 with Retry-After 30; the stalled clients got %s and %s",
		code, h.Get("Retry-After"), stalledGot(cs[0]), stalledGot(cs[1]))
	return nil, nil
}

// stalledAnswer returns what a stalled client has received within wait, and
// whether the daemon answered (or hung up).
func stalledAnswer(c net.Conn, wait time.Duration) (string, bool) {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	out, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return string(out), len(out) > 0
	}
	return string(out), true
}

// stalledGot says what a stalled client has received: the daemon's answer,
// its hang-up, or nothing yet.
func stalledGot(c net.Conn) string {
	if got, answered := stalledAnswer(c, 100*time.Millisecond); answered {
		return fmt.Sprintf("%q", got)
	}
	return "nothing yet"
}

// A request that cannot be read (no parts) is answered at once: 503 while
// the places are taken, 400 otherwise.
func probeApprove(t *testing.T, base string) (int, http.Header) {
	t.Helper()
	code, h, _, err := postBody(t, base, strings.NewReader("--"+testBoundary+"--\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	return code, h
}

// Each POST /approve holds its plan in memory, up to 256 MiB, and there was
// no bound on how many were read at once: N clients sending large plans
// (or stalling in the middle of one) held N times that. Two are read at
// once; the next is answered 503 with Retry-After before its body is read,
// and once one of the two ends, a signed plan is accepted again.
func TestHostileApproveEndpointBusyWhileTwoAreRead(t *testing.T) {
	a := newApproveServe(t, nil)
	c1, c2 := holdBothPlaces(t, a.p.base, stall(t, a.p.base), stall(t, a.p.base))
	// A third large submission is turned away without its body being read.
	planData, err := os.ReadFile(a.planFile)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	code, h, body, err := postBody(t, a.p.base, approveBody(planData, 32<<20))
	runtime.ReadMemStats(&after)
	if err == nil && (code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || !strings.Contains(body, "nothing stored")) {
		t.Fatalf("a large POST /approve while two are being read: %d %s", code, body)
	}
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 4<<20 {
		t.Errorf("a turned-away POST with a 32 MiB sig part: %d MiB allocated", allocated>>20)
	}
	if files, _ := filepath.Glob(filepath.Join(a.plans, "*", "*")); len(files) != 0 {
		t.Fatalf("stored %v", files)
	}
	// The stalled clients hang up: their places are free again.
	_ = c1.Close()
	_ = c2.Close()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if code, _ = probeApprove(t, a.p.base); code != http.StatusServiceUnavailable {
			break
		}
	}
	if code, body := postApprove(t, a.p.base, a.planFile); code != http.StatusAccepted {
		t.Fatalf("POST /approve of a signed plan once the stalled clients left: %d %s", code, body)
	}
	if files, _ := filepath.Glob(filepath.Join(a.plans, "approved", "*")); len(files) != 2 {
		t.Fatalf("approved/ holds %v; want the plan and its signatures", files)
	}
}

// serve set no ReadTimeout: a client that sent POST /approve's headers and
// then part of the body, or nothing more, held its connection, its memory
// and (now) one of the two places of POST /approve for as long as it liked.
// The body must keep arriving (HTTPTimeouts.BodyStall, a minute by
// default); a stalled client is answered 408 and disconnected, nothing is
// stored, and its place is free for the next reviewer.
func TestHostileApproveEndpointStalledClientIsDisconnected(t *testing.T) {
	a := newApproveServe(t, func(o *daemon.Options) {
		o.HTTPTimeouts = daemon.HTTPTimeouts{ReadHeader: 100 * time.Millisecond, BodyStall: 100 * time.Millisecond}
	})
	// disconnected reads what the daemon sends until it hangs up; a
	// connection still open after 10 s is a daemon that waits for ever.
	disconnected := func(c net.Conn) string {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		out, err := io.ReadAll(bufio.NewReader(c))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the stalled client is still connected after 10 s (read %q)", out)
		}
		return string(out)
	}
	// Stalled in the body.
	got := disconnected(stall(t, a.p.base))
	if !strings.HasPrefix(got, "HTTP/1.1 408 ") || !strings.Contains(got, "refused, nothing stored: read the plan part:") {
		t.Fatalf("a client stalled in the body got %q; want 408", got)
	}
	// Stalled in the headers.
	c, err := net.Dial("tcp", strings.TrimPrefix(a.p.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if _, err := io.WriteString(c, "POST /approve HTTP/1.1\r\nHost: janitor\r\n"); err != nil {
		t.Fatal(err)
	}
	disconnected(c)
	if files, _ := filepath.Glob(filepath.Join(a.plans, "*", "*")); len(files) != 0 {
		t.Fatalf("stored %v", files)
	}
	// A reviewer whose body arrives is not cut off, and the places the
	// stalled clients held are free.
	if code, body := postApprove(t, a.p.base, a.planFile); code != http.StatusAccepted {
		t.Fatalf("POST /approve of a signed plan after the stalled clients: %d %s", code, body)
	}
	if files, _ := filepath.Glob(filepath.Join(a.plans, "approved", "*")); len(files) != 2 {
		t.Fatalf("approved/ holds %v; want the plan and its signatures", files)
	}
}
