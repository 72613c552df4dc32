package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/patjanitor/patjanitor/internal/fakeclock"
	"github.com/patjanitor/patjanitor/internal/policy"
)

// waitFor polls cond until it holds or the deadline passes. Deadlines are
// generous: they bound a failing test, they are not what a passing one waits.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// quietAfterTest is a zaptest.TestingT that drops log lines once the test's
// cleanups have stopped the daemon. A run that outlived the shutdown timeout
// can still be writing when Run has returned and the test ends; testing
// panics on a Log after the test completed. The cleanup is registered before
// the harness's own, so it runs after the daemon has stopped.
type quietAfterTest struct {
	*testing.T
	mu   sync.Mutex
	done bool
}

func newQuietAfterTest(t *testing.T) *quietAfterTest {
	q := &quietAfterTest{T: t}
	t.Cleanup(func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.done = true
	})
	return q
}

func (q *quietAfterTest) Logf(format string, args ...any) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.done {
		q.T.Logf(format, args...)
	}
}

// configYAML is a valid config with the given policies block appended.
func configYAML(schedule, policies string) string {
	return `tenant:
  url: http://127.0.0.1:1
  clientId: 00000000000000000000000000000001
schedule: "` + schedule + `"
timezone: UTC
policies:
` + policies
}

func policyYAML(name, mode, schedule string) string {
	s := "  - name: " + name + "\n    mode: " + mode + "\n    match:\n      unusedFor: 90d\n    action: delete\n"
	if schedule != "" {
		s += "    schedule: \"" + schedule + "\"\n"
	}
	return s
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	// Write and rename, as a ConfigMap update or an editor does, so that a
	// poll never reads half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// call is one Runner.Run call the fake saw.
type call struct {
	policies []string
	modes    []policy.Mode
	digest   string
	gen      int // which NewRunner call built the runner
}

// fakeRunners is a NewRunner factory whose runners record their calls and
// run a test-supplied function.
type fakeRunners struct {
	mu      sync.Mutex
	built   int
	calls   []call
	active  int
	maxSeen int
	// fail makes NewRunner fail.
	fail error
	// run is what a Run does (default: return at once).
	run func(ctx context.Context, cfg *policy.Config) (*RunReport, error)
}

func (f *fakeRunners) newRunner(cfg *policy.Config) (Runner, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	f.built++
	gen := f.built
	return RunnerFunc(func(ctx context.Context, cfg *policy.Config) (*RunReport, error) {
		c := call{digest: cfg.Digest, gen: gen}
		for _, p := range cfg.Policies {
			c.policies = append(c.policies, p.Name)
			c.modes = append(c.modes, p.Mode)
		}
		f.mu.Lock()
		f.calls = append(f.calls, c)
		f.active++
		f.maxSeen = max(f.maxSeen, f.active)
		run := f.run
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			f.active--
			f.mu.Unlock()
		}()
		if run == nil {
			return &RunReport{RunID: "r"}, nil
		}
		return run(ctx, cfg)
	}), nil
}

func (f *fakeRunners) snapshot() ([]call, int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls), f.built, f.maxSeen
}

func (f *fakeRunners) setRun(run func(ctx context.Context, cfg *policy.Config) (*RunReport, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.run = run
}

// fakeMetrics records the daemon's metric calls.
type fakeMetrics struct {
	mu          sync.Mutex
	reloads     []bool
	lastOK      time.Time
	skipped     int
	skipReasons []string
	policies    []string
	running     []bool // every SetRunInProgress call
}

func (m *fakeMetrics) SetRunInProgress(running bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.running = append(m.running, running)
}

func (m *fakeMetrics) runningCalls() []bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.running)
}

func (m *fakeMetrics) ConfigReloaded(ok bool, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reloads = append(m.reloads, ok)
	if ok {
		m.lastOK = at
	}
}

func (m *fakeMetrics) RunSkipped(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if reason == SkipOverlap {
		m.skipped++
	}
	m.skipReasons = append(m.skipReasons, reason)
}

func (m *fakeMetrics) SetPolicies(names []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.policies = slices.Clone(names)
}

func (m *fakeMetrics) get() (reloads []bool, skipped int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.reloads), m.skipped
}

// harness is a daemon under test.
type harness struct {
	t       *testing.T
	d       *Daemon
	path    string
	runners *fakeRunners
	metrics *fakeMetrics
	reload  chan struct{}
	cancel  context.CancelFunc
	done    chan error
	base    string
	// clock is the daemon's: schedules fire when the test moves it.
	clock *fakeclock.Clock
}

// t0 is where the harness's clock starts: a Thursday noon, UTC.
var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// newHarness writes config to a temp file and builds a daemon on
// 127.0.0.1:0; edit adjusts the options. start runs it.
func newHarness(t *testing.T, config string, edit func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, runners: &fakeRunners{}, metrics: &fakeMetrics{}, reload: make(chan struct{}),
		clock: fakeclock.New(t0)}
	h.path = filepath.Join(t.TempDir(), "policies.yaml")
	writeFile(t, h.path, config)
	opts := Options{
		ConfigPath:      h.path,
		Load:            shortLoad,
		NewRunner:       h.runners.newRunner,
		Logger:          zaptest.NewLogger(newQuietAfterTest(t)),
		Registry:        prometheus.NewRegistry(),
		Metrics:         h.metrics,
		ListenAddress:   "127.0.0.1:0",
		ShutdownTimeout: 10 * time.Second,
		Reload:          h.reload,
		Clock:           h.clock,
	}
	if edit != nil {
		edit(&opts)
	}
	d, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.d = d
	h.base = "http://" + d.Addr().String()
	return h
}

// start runs the daemon and waits until /readyz answers 200.
func (h *harness) start() {
	h.run()
	waitFor(h.t, "/readyz 200", 10*time.Second, func() bool {
		code, _ := h.get("/readyz")
		return code == http.StatusOK
	})
}

// run runs the daemon until the test ends, without waiting for it to be
// ready (for a daemon whose endpoints plain HTTP cannot reach: TLS, basic
// auth).
func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.d.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(30 * time.Second):
			h.t.Error("daemon did not stop")
		}
	})
}

// stop cancels the daemon's context and returns Run's result.
func (h *harness) stop() error {
	h.t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		h.done <- err // for Cleanup
		return err
	case <-time.After(30 * time.Second):
		h.t.Fatal("daemon did not stop within 30s")
		return nil
	}
}

// asleep waits until n of the daemon's goroutines (a loop per schedule
// group, and the file poll) sleep on its clock.
func (h *harness) asleep(n int) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.clock.BlockUntil(ctx, n); err != nil {
		h.t.Fatalf("%d of the daemon's goroutines asleep on its clock, want %d: %v", h.clock.Sleepers(), n, err)
	}
}

// tick waits until n goroutines sleep on the clock (so none misses the
// tick), then moves the clock to the earliest of their deadlines: the
// schedules due then fire, or the file is polled. It returns the new time.
func (h *harness) tick(n int) time.Time {
	h.t.Helper()
	h.asleep(n)
	now, _ := h.clock.AdvanceToNext()
	return now
}

// ran waits until the runner has been called n times and the last run has
// left the gate. A run's call is recorded when Runner.Run starts, but the run
// holds the gate until runOnce has logged its end; a tick moved in between
// finds the group's run still in progress and is skipped (as it must be), so
// a test that ticks again has to wait for the gate, not for the call.
func (h *harness) ran(n int) {
	h.t.Helper()
	waitFor(h.t, fmt.Sprintf("run %d to end", n), 10*time.Second, func() bool {
		c, _, _ := h.runners.snapshot()
		return len(c) == n && !h.d.gate.running()
	})
}

// waiters is how many runs wait at the gate for the run in progress.
func (h *harness) waiters() int {
	h.d.gate.mu.Lock()
	defer h.d.gate.mu.Unlock()
	return len(h.d.gate.waiters)
}

// blockUntil is a Runner.Run that returns once release is closed or sent
// on, or the daemon stops.
func blockUntil(release <-chan struct{}) func(context.Context, *policy.Config) (*RunReport, error) {
	return func(ctx context.Context, _ *policy.Config) (*RunReport, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return &RunReport{}, nil
	}
}

func (h *harness) get(path string) (int, string) {
	h.t.Helper()
	resp, err := http.Get(h.base + path)
	if err != nil {
		return 0, err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, string(b)
}

var errBoom = errors.New("boom")

func names(cs []call) []string {
	var out []string
	for _, c := range cs {
		out = append(out, strings.Join(c.policies, "+"))
	}
	return out
}

// shortLoad parses like serve does in tests: @every schedules down to a second.
func shortLoad(path string, data []byte) (*policy.Config, error) {
	return policy.ParseWithOptions(path, data, policy.Options{MinScheduleInterval: time.Second})
}

// tickUntil ticks until now (the harness's clock, or a test's wall clock over
// it) reads at, and fails if a tick moves it past at: the schedule loops wake
// at least once a minute to read the wall clock again, so reaching a time
// hours away takes many ticks, and a loop that slept past its time shows as
// a clock moved past at.
func (h *harness) tickUntil(n int, now func() time.Time, at time.Time) {
	h.t.Helper()
	for i := 0; now().Before(at); i++ {
		if i == 100_000 {
			h.t.Fatalf("100000 ticks and the clock reads %s, not yet %s", now(), at)
		}
		h.tick(n)
	}
	if got := now(); !got.Equal(at) {
		h.t.Fatalf("a tick moved the clock to %s, past %s: a schedule loop slept past its time", got, at)
	}
}
