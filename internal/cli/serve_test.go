package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/daemon"
	"github.com/patjanitor/patjanitor/internal/fakeclock"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
)

// The tests of `patjanitor serve` run against the simulated tenant on
// loopback. The in-process daemon's schedules run on a fake clock that the
// test moves (tick), so a run "due in a second" starts at once; what a run
// did is awaited by polling for the event with a generous deadline, never a
// sleep that hopes. The subprocess tests (serve_proc_test.go) run on the
// wall clock.

// serveWait polls cond until it holds; the deadline bounds a failing test.
func serveWait(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// span is one request the simulated tenant answered: arrival to response.
type span struct {
	op         string
	path       string
	start, end time.Time
}

// serveEnv is a simulated tenant on loopback and a directory for the config,
// the credential file and the state.
type serveEnv struct {
	t          *testing.T
	sim        *idnsim.Sim
	srv        *httptest.Server
	dir        string
	secretFile string

	mu    sync.Mutex
	spans []span
}

func newServeEnv(t *testing.T, opts idnsim.Options) *serveEnv {
	t.Helper()
	for _, k := range []string{EnvTenantURL, EnvClientID, EnvClientSecret} {
		if os.Getenv(k) != "" {
			t.Skipf("%s is set in the environment; it would override the test config", k)
		}
	}
	e := &serveEnv{t: t, dir: t.TempDir()}
	opts.OnRequest = func(r idnsim.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.spans = append(e.spans, span{op: r.Operation, path: r.Path, start: r.Time, end: time.Now()})
	}
	e.sim = idnsim.New(opts)
	e.srv = httptest.NewServer(e.sim)
	t.Cleanup(e.srv.Close)
	e.secretFile = filepath.Join(e.dir, "client-secret")
	if err := os.WriteFile(e.secretFile, []byte(e.sim.Admin().ClientSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *serveEnv) requestSpans() []span {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.spans)
}

// addTokens adds n tokens named prefix-<i>, last used lastUsedAgo ago (0:
// never used), created a year ago, spread over a few owners.
func (e *serveEnv) addTokens(prefix string, n int, lastUsedAgo time.Duration) []string {
	now := time.Now()
	var ids []string
	for i := range n {
		tok := pat.Token{
			ID:      fmt.Sprintf("%s-%06d", prefix, i),
			Name:    fmt.Sprintf("%s-%d", prefix, i),
			Scope:   pat.ScopesOf("sp:scopes:default"),
			Owner:   pat.Owner{Type: "IDENTITY", ID: fmt.Sprintf("owner-%02d", i%20), Name: fmt.Sprintf("Owner %d", i%20)},
			Created: now.Add(-365 * 24 * time.Hour),
		}
		if lastUsedAgo > 0 {
			lu := now.Add(-lastUsedAgo)
			tok.LastUsed = &lu
		}
		e.sim.Add(tok, "")
		ids = append(ids, tok.ID)
	}
	return ids
}

// configYAML is a config for the simulated tenant with generous limits (the
// guardrails are the engine's tests, not these) and the given policies.
func (e *serveEnv) configYAML(schedule string, policies ...string) string {
	return fmt.Sprintf(`tenant:
  url: %s
  clientId: %s
  clientSecretFile: %s
  rateLimit: {requests: -1, per: 1s}
schedule: %q
timezone: UTC
limits:
  maxActionsPerRun: 100000
  maxActionsPercent: 100
  maxActionsPerOwner: 100000
policies:
%s`, e.srv.URL, e.sim.Admin().ClientID, e.secretFile, schedule, strings.Join(policies, ""))
}

func (e *serveEnv) writeConfig(content string) string {
	e.t.Helper()
	path := filepath.Join(e.dir, "policies.yaml")
	// Write and rename, as a ConfigMap update does: a poll never sees half
	// a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// servePolicy is one policy deleting the tokens whose names start with
// prefix and that are unused for 90 days (or never used, with neverUsed).
func servePolicy(name, mode, schedule, prefix string, neverUsed bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    mode: %s\n", name, mode)
	if schedule != "" {
		fmt.Fprintf(&b, "    schedule: %q\n", schedule)
	}
	fmt.Fprintf(&b, "    match:\n      nameMatches: %q\n", "^"+prefix+"-")
	if neverUsed {
		b.WriteString("      neverUsed: true\n")
	} else {
		b.WriteString("      unusedFor: 90d\n")
	}
	b.WriteString("    action: delete\n")
	return b.String()
}

// inProcess is `serve` wired exactly as the command wires it, run in the test
// process on 127.0.0.1:0, with its schedules on a fake clock.
type inProcess struct {
	t        *testing.T
	clock    *fakeclock.Clock
	base     string
	reg      *prometheus.Registry
	journal  string
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
	err      error
}

func startInProcess(t *testing.T, e *serveEnv, cfgPath string, o serveFlags) *inProcess {
	t.Helper()
	return startInProcessWith(t, e, cfgPath, o, nil)
}

// startInProcessWith is startInProcess with the daemon's options changed by
// mod first (nil: as serve sets them), e.g. short HTTP timeouts.
func startInProcessWith(t *testing.T, e *serveEnv, cfgPath string, o serveFlags, mod func(*daemon.Options)) *inProcess {
	t.Helper()
	stateDir := filepath.Join(e.dir, "state")
	g := &globals{config: cfgPath, stateDir: stateDir, streams: Streams{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}}
	o.listen = "127.0.0.1:0"
	o.minInterval = time.Second
	o.approvedPoll = 10 * time.Millisecond
	if o.shutdownTimeout == 0 {
		o.shutdownTimeout = 20 * time.Second
	}
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	log := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	opts, closeJournal, err := serveOptions(ctx, g, o, log, reg)
	if err != nil {
		cancel()
		t.Fatalf("serveOptions: %v", err)
	}
	// The schedules' clock only: the engine, the tenant and the journal keep
	// the wall clock, so token ages and timestamps are the real ones.
	clk := fakeclock.New(time.Now())
	opts.Clock = clk
	if mod != nil {
		mod(&opts)
	}
	d, err := daemon.New(opts)
	if err != nil {
		cancel()
		closeJournal()
		t.Fatalf("daemon.New: %v", err)
	}
	p := &inProcess{t: t, clock: clk, base: "http://" + d.Addr().String(), reg: reg, journal: g.journalPath(""), cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := d.Run(ctx)
		closeJournal()
		p.done <- err
	}()
	t.Cleanup(func() { _ = p.stop(t) })
	return p
}

func (p *inProcess) stop(t *testing.T) error {
	p.stopOnce.Do(func() {
		p.cancel()
		select {
		case p.err = <-p.done:
		case <-time.After(30 * time.Second):
			p.err = errors.New("serve did not stop within 30s")
			t.Error(p.err)
		}
	})
	return p.err
}

// ranOrSkipped is the number of runs the daemon finished or skipped so far,
// whatever their result.
func ranOrSkipped(m map[string]float64) float64 {
	n := 0.0
	for k, v := range m {
		if strings.HasPrefix(k, "patjanitor_runs_total{") || strings.HasPrefix(k, "patjanitor_runs_skipped_total{") {
			n += v
		}
	}
	return n
}

// tick waits until no run holds the gate (run_in_progress 0: the previous
// tick's run counts itself in runs_total before it has left the gate, and a
// tick in between would be skipped as overlapping it) and the daemon's loops
// sleep on its clock (one per schedule group: loops), moves the clock to the
// earliest of their times, and waits until as many runs as fell due then have
// been counted (run or skipped). A run that waits at the gate counts when it
// ends, so tick may return before that.
// A tick is a run only on schedules of a minute or less: a loop
// sleeps at most a minute at a time, and reads the wall clock again on each
// wake (internal/daemon's maxSleep).
func (p *inProcess) tick(loops int) {
	t := p.t
	t.Helper()
	p.idle()
	before := ranOrSkipped(scrape(t, p.base))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.clock.BlockUntil(ctx, loops); err != nil {
		t.Fatalf("%d schedule loops asleep, want %d: %v", p.clock.Sleepers(), loops, err)
	}
	_, due := p.clock.AdvanceToNext()
	serveWait(t, fmt.Sprintf("the %d run(s) due", due), 30*time.Second, func() bool {
		return ranOrSkipped(scrape(t, p.base)) >= before+float64(due)
	})
}

// idle waits until no run is in progress or waiting: run_in_progress is the
// daemon's gate, 0 only when the next tick runs.
func (p *inProcess) idle() {
	p.t.Helper()
	serveWait(p.t, "the run in progress to end", 30*time.Second, func() bool {
		return scrape(p.t, p.base)["patjanitor_run_in_progress"] == 0
	})
}

// tickUntil ticks until cond holds; at most 30 ticks. Before each tick it
// lets the run in flight end (on the wall clock: the tenant and the engine
// keep real time): a tick during a run is only skipped, and 30 of them can
// pass within one slow listing.
func (p *inProcess) tickUntil(what string, loops int, cond func() bool) {
	p.t.Helper()
	for range 30 {
		if cond() {
			return
		}
		p.idle()
		if cond() {
			return
		}
		p.tick(loops)
	}
	if !cond() {
		p.t.Fatalf("30 scheduled runs, and still not %s", what)
	}
}

// scrape reads /metrics over HTTP into series -> value. Series are keyed as
// exposed: name{label="value",...} with labels sorted by name.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape: line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return out
}

// series builds the exposition key of a series; labels alternate name, value.
func series(name string, labels ...string) string {
	if len(labels) == 0 {
		return name
	}
	type kv struct{ k, v string }
	var kvs []kv
	for i := 0; i+1 < len(labels); i += 2 {
		kvs = append(kvs, kv{labels[i], labels[i+1]})
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].k < kvs[j].k })
	parts := make([]string, len(kvs))
	for i, p := range kvs {
		parts[i] = fmt.Sprintf("%s=%q", p.k, p.v)
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

func actions(policy, action, outcome string) string {
	return series("patjanitor_actions_total", "policy", policy, "action", action, "outcome", outcome, "resource", "personalAccessTokens")
}

// journalKinds counts the journal's records by kind after verifying it.
func journalKinds(t *testing.T, path string) map[audit.Kind]int {
	t.Helper()
	kinds := map[audit.Kind]int{}
	for _, r := range journalRecords(t, path) {
		kinds[r.Kind]++
	}
	return kinds
}

func deletedIDs(reqs []idnsim.Request) []string {
	var ids []string
	for _, r := range idnsim.ByOperation(reqs, idnsim.OpDeleteToken) {
		ids = append(ids, r.Path[strings.LastIndexByte(r.Path, '/')+1:])
	}
	slices.Sort(ids)
	return ids
}

// TestServeEnforcesOnSchedule: with a one-second schedule, runs happen; the
// enforce-mode policy deletes exactly its tokens, once each; the report-mode
// policy deletes nothing; /metrics, scraped over HTTP, shows the matching
// counters and timestamps and passes the client library's lint; /plan serves
// the latest plan; the journal verifies.
func TestServeEnforcesOnSchedule(t *testing.T) {
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	stale := e.addTokens("stale", 5, 200*24*time.Hour)
	never := e.addTokens("never", 4, 0)
	fresh := e.addTokens("fresh", 3, 24*time.Hour)
	cfg := e.writeConfig(e.configYAML("@every 1s",
		servePolicy("stale-delete", "enforce", "", "stale", false),
		servePolicy("never-used", "report", "", "never", true)))
	started := float64(time.Now().UnixNano()) / 1e9
	p := startInProcess(t, e, cfg, serveFlags{enablePlan: true})

	var m map[string]float64
	p.tickUntil("two successful runs", 1, func() bool {
		m = scrape(t, p.base)
		return m[series("patjanitor_runs_total", "result", "success")] >= 2
	})
	runs := m[series("patjanitor_runs_total", "result", "success")]
	if got := m[actions("stale-delete", "delete", "applied")]; got != float64(len(stale)) {
		t.Errorf("stale-delete applied = %v, want %d", got, len(stale))
	}
	// Every run counts each report-mode match once.
	wa := m[actions("never-used", "delete", "would_apply")]
	if wa < float64(len(never)) || int(wa)%len(never) != 0 {
		t.Errorf("never-used would_apply = %v, want a positive multiple of %d", wa, len(never))
	}
	if v, ok := m[actions("never-used", "delete", "applied")]; ok && v != 0 {
		t.Errorf("a report-mode policy applied %v actions", v)
	}
	if got := m[series("patjanitor_tokens_matched", "policy", "never-used")]; got != float64(len(never)) {
		t.Errorf("tokens_matched{never-used} = %v, want %d", got, len(never))
	}
	for _, ts := range []string{"patjanitor_last_run_timestamp_seconds", "patjanitor_last_successful_run_timestamp_seconds",
		"patjanitor_config_last_reload_success_timestamp_seconds"} {
		if v := m[ts]; v < started-1 || v > float64(time.Now().Unix())+1 {
			t.Errorf("%s = %v, want a time since the start (%v)", ts, v, started)
		}
	}
	if m["patjanitor_config_last_reload_successful"] != 1 {
		t.Errorf("config_last_reload_successful = %v", m["patjanitor_config_last_reload_successful"])
	}
	// ObserveRun counts the run before it observes its duration: a scrape in
	// between sees one run more than durations. Every counted run's duration
	// is observed right after.
	serveWait(t, "the counted runs' durations", 20*time.Second, func() bool {
		return scrape(t, p.base)["patjanitor_run_duration_seconds_count"] >= runs
	})
	if _, ok := m[series("patjanitor_runs_skipped_total", "reason", "overlap")]; !ok {
		t.Errorf("runs_skipped_total{reason=overlap} is not exported")
	}
	if problems, err := testutil.GatherAndLint(p.reg); err != nil || len(problems) > 0 {
		t.Errorf("metrics lint: %v %+v", err, problems)
	}

	// The engine counts a run before it returns, and the daemon stores the
	// run's plan after: /plan can still serve the first run's plan (with the
	// stale tokens) for a moment after runs_total says 2.
	var pr planResponse
	getPlan := func() {
		resp, err := http.Get(p.base + "/plan")
		if err != nil {
			t.Fatal(err)
		}
		pr = planResponse{}
		err = json.NewDecoder(resp.Body).Decode(&pr)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("/plan: %s %v", resp.Status, err)
		}
	}
	serveWait(t, "/plan of a run after the deletions", 20*time.Second, func() bool {
		getPlan()
		return len(pr.Plans) == 1 && pr.Plans[0].Plan != nil &&
			!slices.ContainsFunc(pr.Plans[0].Plan.Items, func(it plan.Item) bool { return it.Policy == "stale-delete" })
	})
	if len(pr.Plans) != 1 || pr.Plans[0].Plan == nil || len(pr.Plans[0].Plan.Items) != len(never) {
		t.Errorf("/plan: %+v", pr)
	}

	if err := p.stop(t); err != nil {
		t.Fatalf("serve: %v", err)
	}
	reqs := e.sim.Requests()
	if got := deletedIDs(reqs); !slices.Equal(got, stale) {
		t.Errorf("DELETEs sent for %v, want exactly the stale tokens %v, once each", got, stale)
	}
	if m := idnsim.Mutations(reqs); len(m) != len(stale) {
		t.Errorf("%d mutating requests, want %d deletes", len(m), len(stale))
	}
	var left []string
	for _, tok := range e.sim.Tokens() {
		left = append(left, tok.ID)
	}
	for _, id := range append(slices.Clone(never), fresh...) {
		if !slices.Contains(left, id) {
			t.Errorf("token %s is gone; it was report-mode or unmatched", id)
		}
	}
	kinds := journalKinds(t, p.journal)
	if kinds[audit.KindIntent] != len(stale) || kinds[audit.KindOutcome] != len(stale) {
		t.Errorf("journal: %d intents, %d outcomes, want %d each", kinds[audit.KindIntent], kinds[audit.KindOutcome], len(stale))
	}
}

// TestServeDryRun: --dry-run runs enforce-mode policies in report mode: no
// mutating request, would_apply counted, no journal opened (invariant 1).
func TestServeDryRun(t *testing.T) {
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	stale := e.addTokens("stale", 3, 200*24*time.Hour)
	cfg := e.writeConfig(e.configYAML("@every 1s", servePolicy("stale-delete", "enforce", "", "stale", false)))
	p := startInProcess(t, e, cfg, serveFlags{dryRun: true, runOnStart: true})
	var m map[string]float64
	p.tickUntil("two runs", 1, func() bool {
		m = scrape(t, p.base)
		return m[series("patjanitor_runs_total", "result", "success")] >= 2
	})
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	if muts := idnsim.Mutations(e.sim.Requests()); len(muts) != 0 {
		t.Errorf("--dry-run sent %d mutations", len(muts))
	}
	if got := m[actions("stale-delete", "delete", "would_apply")]; got < float64(2*len(stale)) {
		t.Errorf("would_apply = %v, want %d per run", got, len(stale))
	}
	if _, err := os.Stat(p.journal); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--dry-run opened the journal: %v", err)
	}
}

// TestServeMetricsBounded: a 300-token tenant has exactly the series of a
// 10-token tenant, and no label value names a token or an owner. 300 shows
// what 10,000 did at a thirtieth of the CPU: a series per token would be 300
// series instead of 10, and the owners (addTokens cycles through 20) are 20
// instead of 3 at either size.
func TestServeMetricsBounded(t *testing.T) {
	seriesOf := func(n int) (map[string]float64, []string) {
		e := newServeEnv(t, idnsim.Options{RateLimit: -1})
		var names []string
		// The same mix at both sizes, so that every policy matches in both.
		names = append(names, e.addTokens("stale", n*3/10, 200*24*time.Hour)...)
		names = append(names, e.addTokens("never", n*3/10, 0)...)
		names = append(names, e.addTokens("fresh", n-2*(n*3/10)-1, time.Hour)...)
		names = append(names, e.addTokens("victim", 1, 200*24*time.Hour)...)
		cfg := e.writeConfig(e.configYAML("@daily",
			servePolicy("stale-report", "report", "", "stale", false),
			servePolicy("never-used", "report", "", "never", true),
			servePolicy("victim", "enforce", "", "victim", false)))
		p := startInProcess(t, e, cfg, serveFlags{runOnStart: true})
		var m map[string]float64
		serveWait(t, "the start-up run", 60*time.Second, func() bool {
			m = scrape(t, p.base)
			return m[series("patjanitor_runs_total", "result", "success")] == 1
		})
		if problems, err := testutil.GatherAndLint(p.reg); err != nil || len(problems) > 0 {
			t.Errorf("metrics lint (%d tokens): %v %+v", n, err, problems)
		}
		if err := p.stop(t); err != nil {
			t.Fatal(err)
		}
		return m, names
	}
	small, _ := seriesOf(10)
	big, bigNames := seriesOf(300)
	if pats := series("patjanitor_tokens", "resource", "personalAccessTokens"); big[pats] != 301 { // plus the admin PAT
		t.Fatalf("tokens = %v, want 301", big[pats])
	}
	keys := func(m map[string]float64) []string {
		var out []string
		for k := range m {
			if strings.HasPrefix(k, "patjanitor_") {
				out = append(out, k)
			}
		}
		slices.Sort(out)
		return out
	}
	if ks, kb := keys(small), keys(big); !slices.Equal(ks, kb) {
		t.Errorf("series differ between 10 and 300 tokens:\n10:  %v\n300: %v", ks, kb)
	}
	for _, k := range keys(big) {
		for _, id := range bigNames[:100] {
			if strings.Contains(k, id) {
				t.Fatalf("series %s names token %s", k, id)
			}
		}
		if strings.Contains(k, "owner-") {
			t.Fatalf("series %s names an owner", k)
		}
	}
}

// TestServeOverlappingSchedulesNeverRunConcurrently: two schedule groups fire
// every second and every two seconds against a slow tenant: the first
// listing hangs until the test has moved the clock past both groups' next
// times, so those ticks find a run in progress; later listings and deletions
// take a little time. From the tenant's request log: listings never overlap
// each other, and no mutation overlaps a listing; the skipped runs are
// counted.
func TestServeOverlappingSchedulesNeverRunConcurrently(t *testing.T) {
	hold := make(chan struct{})
	e := newServeEnv(t, idnsim.Options{RateLimit: -1, Sleep: func(ctx context.Context, d time.Duration) error {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
		// Once let go, a tenant that is slow but not stuck: the spans
		// in the request log have a width to overlap with.
		tm := time.NewTimer(d / 10)
		defer tm.Stop()
		select {
		case <-tm.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}})
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, Latency: 1200 * time.Millisecond})
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpDeleteToken, Latency: 150 * time.Millisecond})
	a := e.addTokens("a", 4, 200*24*time.Hour)
	b := e.addTokens("b", 4, 200*24*time.Hour)
	cfg := e.writeConfig(e.configYAML("@every 1s",
		servePolicy("a-stale", "enforce", "", "a", false),
		servePolicy("b-stale", "enforce", "@every 2s", "b", false)))
	p := startInProcess(t, e, cfg, serveFlags{})

	// The first second: a's run starts, and its listing hangs.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.clock.BlockUntil(ctx, 2); err != nil {
		t.Fatal(err)
	}
	p.clock.AdvanceToNext()
	serveWait(t, "the first run in progress", 20*time.Second, func() bool {
		return scrape(t, p.base)["patjanitor_run_in_progress"] == 1
	})
	// The second second: a's tick finds its run in progress (skipped), b's
	// waits for it.
	if err := p.clock.BlockUntil(ctx, 2); err != nil {
		t.Fatal(err)
	}
	p.clock.AdvanceToNext()
	serveWait(t, "a run skipped", 20*time.Second, func() bool {
		return scrape(t, p.base)[series("patjanitor_runs_skipped_total", "reason", "overlap")] >= 1
	})
	close(hold)
	p.tickUntil("both groups' deletions and three runs", 2, func() bool {
		m := scrape(t, p.base)
		return len(deletedIDs(e.sim.Requests())) == len(a)+len(b) &&
			m[series("patjanitor_runs_total", "result", "success")] >= 3
	})
	if skipped := scrape(t, p.base)[series("patjanitor_runs_skipped_total", "reason", "overlap")]; skipped < 1 {
		t.Errorf("runs_skipped_total{reason=overlap} = %v: a's tick during the hanging listing should have been skipped", skipped)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	var lists, muts []span
	for _, s := range e.requestSpans() {
		switch s.op {
		case idnsim.OpListTokens:
			lists = append(lists, s)
		case idnsim.OpDeleteToken, idnsim.OpPatchToken:
			muts = append(muts, s)
		}
	}
	overlaps := func(x, y span) bool { return x.start.Before(y.end) && y.start.Before(x.end) }
	for i := range lists {
		for j := i + 1; j < len(lists); j++ {
			if overlaps(lists[i], lists[j]) {
				t.Errorf("listings overlap: %v-%v and %v-%v", lists[i].start, lists[i].end, lists[j].start, lists[j].end)
			}
		}
		for _, m := range muts {
			if overlaps(lists[i], m) {
				t.Errorf("mutation %s (%v-%v) overlaps a listing (%v-%v)", m.path, m.start, m.end, lists[i].start, lists[i].end)
			}
		}
	}
	if len(lists) < 3 {
		t.Errorf("only %d listings: too few runs to show anything", len(lists))
	}
}

// planResponse is the body of GET /plan (daemon.PlanResponse) as a test
// reads it with encoding/json: each plan's items as a slice (a plan.Plan is
// read by plan.Read, not by encoding/json).
type planResponse struct {
	DryRun bool `json:"dryRun"`
	Plans  []struct {
		daemon.PlanEntry
		Plan *struct {
			Items []plan.Item `json:"items"`
		} `json:"plan"`
	} `json:"plans"`
}
