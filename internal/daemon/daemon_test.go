package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/patjanitor/patjanitor/internal/fakeclock"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
)

func TestGroups(t *testing.T) {
	for _, tc := range []struct {
		name     string
		yaml     string
		want     []Group
		wantErrs []string
	}{
		{
			name: "default and overrides, grouped by spec in file order",
			yaml: configYAML("0 3 * * *",
				policyYAML("a", "report", "")+
					policyYAML("b", "enforce", "@every 1h")+
					policyYAML("c", "report", "0 3 * * *")+
					policyYAML("d", "report", "@every 1h")),
			want: []Group{
				{Schedule: "0 3 * * *", Policies: []string{"a", "c"}},
				{Schedule: "@every 1h", Policies: []string{"b", "d"}},
			},
		},
		{
			name: "specs compare as written",
			yaml: configYAML("@daily", policyYAML("a", "report", "")+policyYAML("b", "report", "0 0 * * *")),
			want: []Group{
				{Schedule: "@daily", Policies: []string{"a"}},
				{Schedule: "0 0 * * *", Policies: []string{"b"}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := policy.Parse("p.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			got, err := Groups(cfg)
			if len(tc.wantErrs) > 0 {
				if err == nil {
					t.Fatalf("Groups = %v, want an error", got)
				}
				for _, w := range tc.wantErrs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Groups: %v", err)
			}
			if !slices.EqualFunc(got, tc.want, func(a, b Group) bool {
				return a.Schedule == b.Schedule && slices.Equal(a.Policies, b.Policies)
			}) {
				t.Errorf("Groups = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestGroupsRefuses(t *testing.T) {
	cfg := &policy.Config{Policies: []*policy.Policy{{Name: "a"}}}
	if _, err := Groups(cfg); err == nil || !strings.Contains(err.Error(), `"a": no schedule`) {
		t.Errorf("Groups without any schedule: err = %v", err)
	}
	// The policy package validates schedules too; Groups does not rely on it.
	cfg = &policy.Config{Schedule: "@daily", Policies: []*policy.Policy{{Name: "a"}, {Name: "b", Schedule: "61 * * * *"}}}
	if _, err := Groups(cfg); err == nil || !strings.Contains(err.Error(), `policies[1] "b": schedule "61 * * * *"`) {
		t.Errorf("Groups with a bad spec: err = %v", err)
	}
}

func TestShortSchedulesGroup(t *testing.T) {
	yaml := configYAML("@every 1s", policyYAML("a", "report", "")+policyYAML("b", "report", "@every 2s")+
		policyYAML("c", "report", "@every 1s")+policyYAML("d", "report", "@every 90m"))
	if _, err := policy.Parse("p.yaml", []byte(yaml)); err == nil {
		t.Fatal("the policy package accepts @every 1s by default; production schedules must be at least a minute")
	}
	cfg, err := shortLoad("p.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	groups, err := Groups(cfg)
	if err != nil || len(groups) != 3 || !slices.Equal(groups[0].Policies, []string{"a", "c"}) {
		t.Errorf("groups %+v, %v", groups, err)
	}
	if _, err := shortLoad("p.yaml", []byte(configYAML("@every 1s", policyYAML("a", "report", "@every 1h")))); err != nil {
		t.Errorf("a short default with a long policy schedule: %v", err)
	}
}

func TestGate(t *testing.T) {
	var g gate
	if got := g.acquire("a", nil); got != admitted {
		t.Fatalf("first acquire = %v", got)
	}
	if got := g.acquire("a", nil); got != refusedBusy {
		t.Fatalf("acquire of the running key = %v, want busy", got)
	}
	// Another key waits, in order; a second waiter of the same key is refused.
	results := make(chan string, 4)
	waiting := make(chan struct{}, 4)
	for _, k := range []string{"b", "c"} {
		go func() {
			r := g.acquire(k, func() { waiting <- struct{}{} })
			results <- fmt.Sprint(k, r)
			if r == admitted {
				g.release()
			}
		}()
		<-waiting // b queues before c
	}
	if got := g.acquire("b", func() { t.Error("a second b waits") }); got != refusedBusy {
		t.Fatalf("acquire of a waiting key = %v, want busy", got)
	}
	g.release()
	if r1, r2 := <-results, <-results; r1 != fmt.Sprint("b", admitted) || r2 != fmt.Sprint("c", admitted) {
		t.Fatalf("waiters ran as %s, %s; want b then c", r1, r2)
	}

	// close turns waiters away and waits for the run in progress.
	if got := g.acquire("a", nil); got != admitted {
		t.Fatalf("acquire after the waiters = %v", got)
	}
	go func() { results <- fmt.Sprint("d", g.acquire("d", func() { waiting <- struct{}{} })) }()
	<-waiting
	idle := g.close()
	if r := <-results; r != fmt.Sprint("d", refusedClosed) {
		t.Errorf("waiter at close: %s", r)
	}
	select {
	case <-idle:
		t.Fatal("close returned a closed channel while a run holds the gate")
	default:
	}
	if got := g.acquire("e", nil); got != refusedClosed {
		t.Fatalf("acquire after close = %v, want closed", got)
	}
	g.release()
	<-idle
	var g2 gate
	<-g2.close() // nothing running: already idle
}

func TestCronLoggerFields(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	l := cronLogger{log: zap.New(core)}
	l.Info("wake", "now", time.Unix(0, 0).UTC(), "entry", 3, 42)
	l.Error(errBoom, "panic", "stack", "...")
	entries := logs.AllUntimed()
	if len(entries) != 2 {
		t.Fatalf("%d entries, want 2", len(entries))
	}
	if entries[0].Level != zap.DebugLevel || entries[0].Message != "wake" {
		t.Errorf("info entry: %+v", entries[0])
	}
	m := entries[0].ContextMap()
	if m["entry"] != int64(3) || len(m) != 3 {
		t.Errorf("info fields %v: want now, entry and the odd value kept", m)
	}
	if entries[1].Level != zap.ErrorLevel || entries[1].ContextMap()["error"] != "boom" {
		t.Errorf("error entry: %+v", entries[1])
	}
}

func TestNewRefuses(t *testing.T) {
	t.Run("broken config", func(t *testing.T) {
		h := &harness{t: t}
		_ = h
		dir := t.TempDir()
		path := dir + "/p.yaml"
		writeFile(t, path, "policies: [")
		_, err := New(Options{ConfigPath: path, NewRunner: (&fakeRunners{}).newRunner,
			Registry: prometheus.NewRegistry(), ListenAddress: "127.0.0.1:0"})
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("New with a broken config: err = %v, want one naming the file", err)
		}
	})
	t.Run("runner factory fails", func(t *testing.T) {
		path := t.TempDir() + "/p.yaml"
		writeFile(t, path, configYAML("@daily", policyYAML("a", "report", "")))
		_, err := New(Options{ConfigPath: path, NewRunner: (&fakeRunners{fail: errBoom}).newRunner,
			Registry: prometheus.NewRegistry(), ListenAddress: "127.0.0.1:0"})
		if !errors.Is(err, errBoom) {
			t.Errorf("New with a failing runner factory: err = %v", err)
		}
	})
	t.Run("address in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = ln.Close() }()
		path := t.TempDir() + "/p.yaml"
		writeFile(t, path, configYAML("@daily", policyYAML("a", "report", "")))
		_, err = New(Options{ConfigPath: path, NewRunner: (&fakeRunners{}).newRunner,
			Registry: prometheus.NewRegistry(), ListenAddress: ln.Addr().String()})
		if err == nil || !strings.Contains(err.Error(), "listen on --web.listen-address "+ln.Addr().String()) {
			t.Errorf("New on a taken address: err = %v", err)
		}
	})
}

func TestHTTPEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	probe := prometheus.NewCounter(prometheus.CounterOpts{Name: "patjanitor_probe_total", Help: "A test counter."})
	reg.MustRegister(probe)
	probe.Add(7)
	h := newHarness(t, configYAML("@daily", policyYAML("a", "enforce", "")), func(o *Options) {
		o.Registry = reg
		o.EnablePlan = true
	})
	release := make(chan struct{})
	h.runners.setRun(func(context.Context, *policy.Config) (*RunReport, error) {
		<-release
		return &RunReport{RunID: "run-1", Plan: &plan.Plan{Version: 1, Population: 3,
			Items: plan.NewItems(plan.Item{TokenID: "t1", Policy: "a", Mode: "enforce", Action: "delete"})}}, errBoom
	})
	h.start()

	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/plan": 404, "/nope": 404, "/": 200} {
		if code, body := h.get(path); code != want {
			t.Errorf("GET %s = %d %q, want %d", path, code, body, want)
		}
	}
	code, body := h.get("/metrics")
	if code != 200 || !strings.Contains(body, "patjanitor_probe_total 7") || !strings.Contains(body, "promhttp_metric_handler_requests_total") {
		t.Errorf("GET /metrics = %d\n%s", code, body)
	}

	// A run (through the gate, as the scheduler runs it) that fails with a
	// plan: /plan shows both.
	go h.d.runOnce(h.d.gen.Load(), h.d.gen.Load().groups[0].Group, h.d.gen.Load().groups[0].cfg, "schedule")
	close(release)
	waitFor(t, "/plan", 10*time.Second, func() bool { c, _ := h.get("/plan"); return c == 200 })
	_, body = h.get("/plan")
	var pr struct {
		DryRun bool `json:"dryRun"`
		Plans  []struct {
			Schedule, Trigger, RunID, Error string
			Policies                        []string
			Plan                            json.RawMessage
		} `json:"plans"`
	}
	if err := json.Unmarshal([]byte(body), &pr); err != nil {
		t.Fatalf("decode /plan: %v\n%s", err, body)
	}
	if len(pr.Plans) != 1 || pr.Plans[0].Schedule != "@daily" || pr.Plans[0].RunID != "run-1" ||
		pr.Plans[0].Error != "boom" || !slices.Equal(pr.Plans[0].Policies, []string{"a"}) ||
		!strings.Contains(string(pr.Plans[0].Plan), `"t1"`) {
		t.Errorf("/plan = %s", body)
	}
}

func TestPlanEndpointOffByDefault(t *testing.T) {
	h := newHarness(t, configYAML("@daily", policyYAML("a", "report", "")), func(o *Options) { o.RunOnStart = true })
	h.start()
	waitFor(t, "the start-up run", 10*time.Second, func() bool { c, _, _ := h.runners.snapshot(); return len(c) == 1 })
	if code, _ := h.get("/plan"); code != http.StatusNotFound {
		t.Errorf("/plan without EnablePlan = %d, want 404", code)
	}
	if _, body := h.get("/"); strings.Contains(body, "/plan") {
		t.Errorf("the index links /plan although it is off: %s", body)
	}
}

func TestRunOnStartRunsAllPoliciesTogether(t *testing.T) {
	h := newHarness(t, configYAML("@daily",
		policyYAML("a", "enforce", "")+policyYAML("b", "report", "@weekly")+policyYAML("c", "enforce", "@monthly")),
		func(o *Options) { o.RunOnStart = true })
	h.start()
	waitFor(t, "the start-up run", 10*time.Second, func() bool { c, _, _ := h.runners.snapshot(); return len(c) == 1 })
	calls, _, _ := h.runners.snapshot()
	if got := calls[0].policies; !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("start-up run policies = %v, want all in one run", got)
	}
	if got := calls[0].modes; !slices.Equal(got, []policy.Mode{policy.ModeEnforce, policy.ModeReport, policy.ModeEnforce}) {
		t.Errorf("modes = %v: without --dry-run the file's modes hold", got)
	}
}

func TestDryRunForcesReportMode(t *testing.T) {
	h := newHarness(t, configYAML("@daily", policyYAML("a", "enforce", "")+policyYAML("b", "enforce", "@weekly")),
		func(o *Options) { o.RunOnStart, o.DryRun = true, true })
	h.start()
	waitFor(t, "the start-up run", 10*time.Second, func() bool { c, _, _ := h.runners.snapshot(); return len(c) == 1 })
	calls, _, _ := h.runners.snapshot()
	if got := calls[0].modes; !slices.Equal(got, []policy.Mode{policy.ModeReport, policy.ModeReport}) {
		t.Errorf("--dry-run modes = %v, want all report", got)
	}
	// Every group's config too, not only the start-up run's.
	for _, g := range h.d.gen.Load().groups {
		for _, p := range g.cfg.Policies {
			if p.Mode != policy.ModeReport {
				t.Errorf("group %s policy %s mode %s under --dry-run", g.Schedule, p.Name, p.Mode)
			}
		}
	}
}

func TestTimezone(t *testing.T) {
	yaml := strings.Replace(configYAML("0 3 * * *", policyYAML("a", "report", "")), "timezone: UTC", "timezone: Europe/Berlin", 1)
	h := newHarness(t, yaml, nil)
	h.start()
	gen := h.d.gen.Load()
	if got := gen.loc.String(); got != "Europe/Berlin" {
		t.Fatalf("schedule location %s", got)
	}
	// The time the daemon sleeps until (tickUntil fails if it sleeps past
	// it), and the run it starts then.
	h.tickUntil(1, h.clock.Now, time.Date(2026, 11, 27, 3, 0, 0, 0, gen.loc))
	if c, _, _ := h.runners.snapshot(); len(c) != 0 {
		t.Errorf("%d runs before 03:00 Berlin time", len(c))
	}
	waitFor(t, "the run at 03:00", 10*time.Second, func() bool { c, _, _ := h.runners.snapshot(); return len(c) == 1 })
}

// TestScheduleFollowsTheWallClockAcrossDST: a group runs when its cron spec
// says in the config's time zone, its next time computed from the time it
// woke, as robfig/cron's own scheduler does: 02:30 in Europe/Berlin runs at
// 02:30 CEST and again at 02:30 CET on the night daylight saving time ends
// (docs/policies.md), and in spring not at all on the night it starts.
func TestScheduleFollowsTheWallClockAcrossDST(t *testing.T) {
	yaml := strings.Replace(configYAML("30 2 * * *", policyYAML("a", "report", "")), "timezone: UTC", "timezone: Europe/Berlin", 1)
	for _, tc := range []struct {
		name  string
		start time.Time
		want  []string
	}{
		{"autumn", time.Date(2026, 10, 24, 12, 0, 0, 0, time.UTC),
			[]string{"2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00", "2026-10-26T02:30:00+01:00"}},
		{"spring", time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC),
			[]string{"2026-03-30T02:30:00+02:00", "2026-03-31T02:30:00+02:00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, yaml, nil)
			h.clock.Set(tc.start)
			h.start()
			berlin := h.d.gen.Load().loc
			// tickUntil fails when the loop sleeps past a time; ran, when
			// the runs are not exactly those up to it.
			for i, w := range tc.want {
				at, err := time.Parse(time.RFC3339, w)
				if err != nil {
					t.Fatal(err)
				}
				h.tickUntil(1, h.clock.Now, at.In(berlin))
				h.ran(i + 1)
			}
		})
	}
}

// TestScheduledRunsNeverOverlap runs two groups on schedules that fire at the
// same instants ("@every 1s" and "@every 1000ms" are two groups, compared as
// written) with a first run that blocks: the other group waits for it, the
// blocked group's own next tick is skipped and counted, and no two runs are
// ever in progress at once. The test moves the daemon's clock a second at a
// time.
func TestScheduledRunsNeverOverlap(t *testing.T) {
	h := newHarness(t, configYAML("@every 1s", policyYAML("a", "enforce", "")+policyYAML("b", "enforce", "@every 1000ms")), nil)
	first := make(chan struct{})
	h.runners.setRun(blockUntil(first))
	h.start()
	h.tick(2)
	waitFor(t, "one group running, the other waiting", 10*time.Second, func() bool {
		c, _, _ := h.runners.snapshot()
		return len(c) == 1 && h.waiters() == 1
	})
	h.tick(2)
	waitFor(t, "a run skipped while its own group is in progress", 10*time.Second, func() bool {
		_, skipped := h.metrics.get()
		return skipped == 2 // the running group's and the waiting group's
	})
	if calls, _, _ := h.runners.snapshot(); len(calls) != 1 {
		t.Fatalf("%d runs while the first blocks, want 1: %v", len(calls), names(calls))
	}
	close(first)
	h.ran(2) // the waiting group's run
	h.tick(2)
	waitFor(t, "both groups to run", 10*time.Second, func() bool {
		c, _, _ := h.runners.snapshot()
		ns := names(c)
		return len(c) >= 4 && slices.Contains(ns, "a") && slices.Contains(ns, "b")
	})
	calls, _, maxSeen := h.runners.snapshot()
	if maxSeen != 1 {
		t.Errorf("%d runs at once, want never more than 1", maxSeen)
	}
	// The group that did not hold the gate waited and ran right after it.
	if calls[1].policies[0] == calls[0].policies[0] {
		t.Errorf("runs %v: the waiting group should have run second", names(calls))
	}
	for _, c := range calls {
		if len(c.policies) != 1 {
			t.Errorf("a scheduled run ran policies %v: each group runs alone", c.policies)
		}
	}
}

// TestWaitingRunRunsTheReloadedConfig: a run that waits while the config is
// reloaded does not run the old config: it runs the new one (the new
// generation's loop goes on after the time it handed to this run).
func TestWaitingRunRunsTheReloadedConfig(t *testing.T) {
	h := newHarness(t, configYAML("@daily", policyYAML("a", "enforce", "")), func(o *Options) { o.RunOnStart = true })
	started, release := make(chan struct{}, 1), make(chan struct{})
	h.runners.setRun(func(context.Context, *policy.Config) (*RunReport, error) {
		select {
		case started <- struct{}{}:
			<-release
		default:
		}
		return &RunReport{}, nil
	})
	h.start()
	<-started
	old := h.d.gen.Load()
	done := make(chan struct{})
	go func() {
		defer close(done)
		g := old.groups[0]
		h.d.runOnce(old, g.Group, g.cfg, "schedule") // as the old scheduler would
	}()
	waitFor(t, "the run to wait", 10*time.Second, func() bool { return h.waiters() == 1 })
	writeFile(t, h.path, configYAML("@daily", policyYAML("a", "report", "")))
	h.reload <- struct{}{}
	waitFor(t, "the reload", 10*time.Second, func() bool { r, _ := h.metrics.get(); return len(r) == 2 })
	close(release)
	<-done
	calls, _, _ := h.runners.snapshot()
	if len(calls) != 2 {
		t.Fatalf("runs %v, want the start run and the waiting one", names(calls))
	}
	if c := calls[1]; c.gen != 2 || c.modes[0] != policy.ModeReport {
		t.Errorf("the waiting run: %+v, want the reloaded config (runner 2, report mode), not the replaced one", c)
	}
}

// TestPanickingRunReleasesTheGate: cron.Recover catches a panic in a run, and
// the gate is released, so the next tick runs.
func TestPanickingRunReleasesTheGate(t *testing.T) {
	h := newHarness(t, configYAML("@every 1s", policyYAML("a", "enforce", "")), nil)
	panicked := false
	h.runners.setRun(func(context.Context, *policy.Config) (*RunReport, error) {
		if !panicked {
			panicked = true
			panic("engine bug")
		}
		return &RunReport{}, nil
	})
	h.start()
	h.tick(1)
	h.ran(1) // the panicking run
	h.tick(1)
	waitFor(t, "a run after the panicking one", 10*time.Second, func() bool { c, _, _ := h.runners.snapshot(); return len(c) >= 2 })
	if _, skipped := h.metrics.get(); skipped != 0 {
		t.Errorf("%d runs skipped: the panic left the gate closed", skipped)
	}
}

func TestReloadBySignal(t *testing.T) {
	h := newHarness(t, configYAML("@daily", policyYAML("a", "enforce", "")), nil)
	h.start()
	before := h.d.gen.Load()

	writeFile(t, h.path, configYAML("@daily", policyYAML("a", "enforce", "")+policyYAML("b", "report", "@hourly")))
	h.reload <- struct{}{}
	waitFor(t, "the reload", 10*time.Second, func() bool { r, _ := h.metrics.get(); return len(r) == 2 })
	if r, _ := h.metrics.get(); !slices.Equal(r, []bool{true, true}) {
		t.Fatalf("reloads %v", r)
	}
	gen := h.d.gen.Load()
	if gen == before || len(gen.groups) != 2 || gen.groups[1].Schedule != "@hourly" {
		t.Fatalf("after reload: %d groups", len(gen.groups))
	}
	// The new generation's two loops sleep; the old one's has ended.
	h.asleep(2)
	if n := h.clock.Sleepers(); n != 2 {
		t.Fatalf("after reload: %d schedule loops, want 2", n)
	}
	if len(before.groups) != 1 {
		t.Errorf("the old generation was changed")
	}
	// The next tick is the new @hourly group's, with the new runner.
	h.tickUntil(2, h.clock.Now, t0.Add(time.Hour))
	waitFor(t, "the @hourly run", 10*time.Second, func() bool { c, _, _ := h.runners.snapshot(); return len(c) == 1 })
	if c, _, _ := h.runners.snapshot(); !slices.Equal(c[0].policies, []string{"b"}) || c[0].gen != 2 {
		t.Errorf("the first run after the reload: %+v, want b with the new runner", c[0])
	}

	// A broken file is refused; the running generation stays.
	writeFile(t, h.path, "policies: [")
	h.reload <- struct{}{}
	waitFor(t, "the failed reload", 10*time.Second, func() bool { r, _ := h.metrics.get(); return len(r) == 3 })
	if r, _ := h.metrics.get(); r[2] {
		t.Errorf("a broken file reloaded successfully")
	}
	if h.d.gen.Load() != gen {
		t.Errorf("a failed reload replaced the running config")
	}
	if code, _ := h.get("/readyz"); code != 200 {
		t.Errorf("/readyz after a failed reload = %d: the old config still runs", code)
	}

	// A signal reloads even unchanged content (after fixing the file).
	writeFile(t, h.path, configYAML("@daily", policyYAML("a", "enforce", "")))
	h.reload <- struct{}{}
	waitFor(t, "the third reload", 10*time.Second, func() bool { r, _ := h.metrics.get(); return len(r) == 4 })
	h.reload <- struct{}{}
	waitFor(t, "the fourth reload", 10*time.Second, func() bool { r, _ := h.metrics.get(); return len(r) == 5 })
	if r, _ := h.metrics.get(); !slices.Equal(r[3:], []bool{true, true}) {
		t.Errorf("reloads %v", r)
	}
}

func TestReloadByFileChange(t *testing.T) {
	h := newHarness(t, configYAML("@daily", policyYAML("a", "enforce", "")), func(o *Options) {
		o.ReloadInterval = 10 * time.Second
	})
	// poll moves the clock to the next poll (the @daily schedule is far
	// later) and waits until it is done: the poller sleeps again.
	poll := func() {
		t.Helper()
		if now := h.tick(2); now.Sub(t0)%(10*time.Second) != 0 {
			t.Fatalf("clock moved to %s: not a poll", now)
		}
		h.asleep(2)
	}
	h.start()
	poll()
	if r, _ := h.metrics.get(); len(r) != 1 {
		t.Fatalf("reloads %v: a poll of an unchanged file reloaded", r)
	}
	writeFile(t, h.path, configYAML("@daily", policyYAML("a", "enforce", "")+policyYAML("b", "enforce", "")))
	poll()
	waitFor(t, "the reload", 10*time.Second, func() bool { r, _ := h.metrics.get(); return len(r) == 2 })
	if got := policyNames(h.d.gen.Load().cfg); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("policies after reload %v", got)
	}

	writeFile(t, h.path, "policies: [")
	poll()
	waitFor(t, "the failed reload", 10*time.Second, func() bool { r, _ := h.metrics.get(); return len(r) == 3 })
	// The same broken content is not retried on every poll: give it twenty
	// polls to misbehave.
	for range 20 {
		poll()
	}
	if r, _ := h.metrics.get(); !slices.Equal(r, []bool{true, true, false}) {
		t.Errorf("reloads %v: a broken file is refused once per change", r)
	}
	if got := policyNames(h.d.gen.Load().cfg); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("policies after a refused reload %v", got)
	}
	writeFile(t, h.path, configYAML("@daily", policyYAML("c", "enforce", "")))
	poll()
	waitFor(t, "the fixed file", 10*time.Second, func() bool { r, _ := h.metrics.get(); return len(r) == 4 })
	if got := policyNames(h.d.gen.Load().cfg); !slices.Equal(got, []string{"c"}) {
		t.Errorf("policies after the fix %v", got)
	}

	// The file disappears (refused) and comes back with the content that
	// runs: loaded again, so the reload metric recovers.
	if err := os.Remove(h.path); err != nil {
		t.Fatal(err)
	}
	poll()
	waitFor(t, "the missing file", 10*time.Second, func() bool { r, _ := h.metrics.get(); return len(r) >= 5 })
	writeFile(t, h.path, configYAML("@daily", policyYAML("c", "enforce", "")))
	poll()
	waitFor(t, "the file back", 10*time.Second, func() bool { r, _ := h.metrics.get(); return r[len(r)-1] })
}

// TestRunInProgressKeepsItsConfig: a reload during a run does not change the
// run's config; the next run uses the new one.
func TestRunInProgressKeepsItsConfig(t *testing.T) {
	h := newHarness(t, configYAML("@every 1s", policyYAML("a", "enforce", "")), func(o *Options) { o.RunOnStart = true })
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	h.runners.setRun(func(_ context.Context, cfg *policy.Config) (*RunReport, error) {
		select {
		case started <- struct{}{}:
			<-release
		default:
		}
		return &RunReport{}, nil
	})
	h.start()
	<-started
	writeFile(t, h.path, configYAML("@every 1s", policyYAML("a", "report", "")+policyYAML("b", "report", "")))
	h.reload <- struct{}{}
	waitFor(t, "the reload", 10*time.Second, func() bool { r, _ := h.metrics.get(); return len(r) == 2 })
	close(release)
	waitFor(t, "the run in progress to end", 10*time.Second, func() bool { return !h.d.gate.running() })
	h.tick(1)
	waitFor(t, "a run with the new config", 10*time.Second, func() bool {
		c, _, _ := h.runners.snapshot()
		return len(c) >= 2 && c[len(c)-1].gen == 2
	})
	calls, _, _ := h.runners.snapshot()
	if c := calls[0]; c.gen != 1 || !slices.Equal(c.policies, []string{"a"}) || c.modes[0] != policy.ModeEnforce {
		t.Errorf("the run in progress: %+v, want the old config", c)
	}
	if c := calls[len(calls)-1]; !slices.Equal(c.policies, []string{"a", "b"}) || c.modes[0] != policy.ModeReport {
		t.Errorf("the next run: %+v, want the new config", c)
	}
}

// TestShutdownWaitsForTheRun: cancelling ctx tells the run to stop (its ctx
// ends), /readyz turns 503 while it drains, Run returns nil once it finished,
// and no run starts afterwards.
func TestShutdownWaitsForTheRun(t *testing.T) {
	h := newHarness(t, configYAML("@every 1s", policyYAML("a", "enforce", "")), func(o *Options) { o.RunOnStart = true })
	started, sawCancel, finish := make(chan struct{}), make(chan struct{}), make(chan struct{})
	h.runners.setRun(func(ctx context.Context, _ *policy.Config) (*RunReport, error) {
		close(started)
		<-ctx.Done()
		close(sawCancel)
		<-finish // the mutation in flight completes
		return &RunReport{}, ctx.Err()
	})
	h.start()
	<-started
	h.cancel()
	<-sawCancel
	waitFor(t, "/readyz 503 while draining", 10*time.Second, func() bool { c, _ := h.get("/readyz"); return c == 503 })
	// /readyz turns 503 before the gate closes; finish the run only once it
	// is closed, or a scheduled tick could slip in between and run.
	waitFor(t, "the gate to close", 10*time.Second, func() bool {
		h.d.gate.mu.Lock()
		defer h.d.gate.mu.Unlock()
		return h.d.gate.closed
	})
	select {
	case err := <-h.done:
		t.Fatalf("Run returned %v before the run finished", err)
	default:
	}
	// A tick now (the scheduler is stopped, or its run is turned away).
	h.clock.Advance(time.Second)
	close(finish)
	if err := h.stop(); err != nil {
		t.Fatalf("Run = %v, want nil after a clean shutdown", err)
	}
	if c, _, _ := h.runners.snapshot(); len(c) != 1 {
		t.Errorf("%d runs, want only the one in progress", len(c))
	}
	if n := h.clock.Sleepers(); n != 0 {
		t.Errorf("%d schedule loops still asleep after Run returned", n)
	}
	if _, err := http.Get(h.base + "/healthz"); err == nil {
		t.Errorf("the HTTP server still answers after Run returned")
	}
}

func TestShutdownTimeout(t *testing.T) {
	h := newHarness(t, configYAML("@daily", policyYAML("a", "enforce", "")), func(o *Options) {
		o.RunOnStart = true
		o.ShutdownTimeout = 100 * time.Millisecond
	})
	started, stuck := make(chan struct{}), make(chan struct{})
	h.runners.setRun(func(context.Context, *policy.Config) (*RunReport, error) {
		close(started)
		<-stuck // ignores cancellation
		return &RunReport{}, nil
	})
	h.start()
	<-started
	// Run returns while the stuck run goes on; unstick it and wait until it
	// has logged its end and left the gate, or it would log after the test.
	defer func() {
		close(stuck)
		waitFor(t, "the stuck run to end", 10*time.Second, func() bool { return !h.d.gate.running() })
	}()
	t0 := time.Now()
	err := h.stop()
	if err == nil || !strings.Contains(err.Error(), "did not finish within 100ms") {
		t.Errorf("Run = %v, want the shutdown timeout", err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("shutdown took %s with a 100ms timeout", d)
	}
}

// run_in_progress is 1 for exactly as long as a run lasts: a run that waits
// on the tenant (here: until the test lets it go) shows on /metrics.
func TestRunInProgressMetric(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, configYAML("@daily", policyYAML("a", "enforce", "")), func(o *Options) { o.RunOnStart = true })
	h.runners.setRun(func(ctx context.Context, _ *policy.Config) (*RunReport, error) {
		<-release
		return &RunReport{RunID: "r"}, nil
	})
	h.start()
	waitFor(t, "the run to start", 10*time.Second, func() bool { return slices.Equal(h.metrics.runningCalls(), []bool{true}) })
	close(release)
	waitFor(t, "the run to end", 10*time.Second, func() bool { return slices.Equal(h.metrics.runningCalls(), []bool{true, false}) })
}

// TestRunInProgressMetricIsTheGate: run_in_progress says what the next tick
// finds. It stays 1 from the first run through the run that waited for it
// (no 0 in between, while a run is queued), and turns 0 only once the gate is
// free, so that a tick then runs: the tests tick on it.
func TestRunInProgressMetricIsTheGate(t *testing.T) {
	h := newHarness(t, configYAML("@every 1s", policyYAML("a", "enforce", "")+policyYAML("b", "enforce", "@every 1000ms")), nil)
	release := make(chan struct{})
	h.runners.setRun(blockUntil(release))
	h.start()
	h.tick(2)
	waitFor(t, "one group running, the other waiting", 10*time.Second, func() bool {
		c, _, _ := h.runners.snapshot()
		return len(c) == 1 && h.waiters() == 1
	})
	release <- struct{}{} // the first run ends; the waiting one starts
	waitFor(t, "the waiting group's run to start", 10*time.Second, func() bool { c, _, _ := h.runners.snapshot(); return len(c) == 2 })
	if got := h.metrics.runningCalls(); !slices.Equal(got, []bool{true}) {
		t.Errorf("run_in_progress set %v while the second run goes on, want [true]: it fell to 0 while a run was queued", got)
	}
	close(release)
	h.ran(2)
	if got := h.metrics.runningCalls(); !slices.Equal(got, []bool{true, false}) {
		t.Errorf("run_in_progress set %v once both ran, want [true false]", got)
	}
	// Free means free: the next tick runs both groups, nothing is skipped.
	h.tick(2)
	waitFor(t, "both groups to run again", 10*time.Second, func() bool { c, _, _ := h.runners.snapshot(); return len(c) == 4 })
	if _, skipped := h.metrics.get(); skipped != 0 {
		t.Errorf("%d runs skipped after run_in_progress turned 0", skipped)
	}
}

// steppedClock is a wall clock that can be set back while the daemon sleeps,
// as NTP or an operator does: Sleep measures elapsed time (the production
// Clock's timer runs on the monotonic clock), Now is the wall time, offset by
// the steps. Like time.Now's, Now's times carry a monotonic clock reading,
// of the elapsed time: Sub and Before of two of them compare elapsed time,
// not the wall clock, and a loop that compares them thinking of the wall
// clock fails here as it does in production.
type steppedClock struct {
	*fakeclock.Clock // elapsed time: Sleep, and Now before the offset
	mu               sync.Mutex
	offset           time.Duration
	// mono and start: a time.Now reading and the elapsed clock's time
	// when it was taken (the first Now).
	mono, start time.Time
}

func (c *steppedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	elapsed := c.Clock.Now()
	if c.mono.IsZero() {
		c.mono, c.start = time.Now(), elapsed
	}
	return withMonotonic(elapsed.Add(c.offset), c.mono.Add(elapsed.Sub(c.start)))
}

func (c *steppedClock) step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// TestHostileClockSteppedBackRunsOnTimeOnce: the wall clock is set back ten
// minutes, at 02:59, while a group sleeps until 03:00. Its timer ends when
// the wall reads 02:50; the group must not run then (early) and again at
// 03:00, but once, at 03:00, as robfig/cron's own scheduler does.
func TestHostileClockSteppedBackRunsOnTimeOnce(t *testing.T) {
	var clk *steppedClock
	h := newHarness(t, configYAML("0 3 * * *", policyYAML("a", "enforce", "")), func(o *Options) {
		clk = &steppedClock{Clock: o.Clock.(*fakeclock.Clock)}
		o.Clock = clk
	})
	var (
		mu  sync.Mutex
		ran []time.Time
	)
	h.runners.setRun(func(context.Context, *policy.Config) (*RunReport, error) {
		mu.Lock()
		defer mu.Unlock()
		ran = append(ran, clk.Now())
		return &RunReport{}, nil
	})
	h.start()
	h.tickUntil(1, clk.Now, time.Date(2026, 11, 27, 2, 59, 0, 0, time.UTC))
	clk.step(-10 * time.Minute)
	// The loop's timer ends when the wall clock reads 02:50, before the
	// time it slept for (it wakes once a minute): it must sleep on.
	h.tickUntil(1, clk.Now, time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC))
	waitFor(t, "a run", 10*time.Second, func() bool { c, _, _ := h.runners.snapshot(); return len(c) >= 1 && !h.d.gate.running() })
	// Stopping waits for every run the scheduler started: an early one has
	// either run or been turned away (and counted) by now.
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []time.Time{time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)}; !slices.EqualFunc(ran, want, time.Time.Equal) {
		t.Errorf("runs at %v, want one at %v", ran, want)
	}
	h.metrics.mu.Lock()
	defer h.metrics.mu.Unlock()
	if h.metrics.skipReasons != nil {
		t.Errorf("runs skipped: %v, want none (no run started early)", h.metrics.skipReasons)
	}
}

// TestHostileClockCorrectedBackAfterStartRunsOnTheCorrectedClock: serve
// starts on a host whose clock is three days ahead (a bad hardware clock at
// boot) and NTP sets it right while the group sleeps until 03:00. The group's
// time was computed on the wrong clock (03:00 three days on); it wakes on the
// corrected one within a minute. The group must run then, at its time on the
// clock it now has, not sleep three more days with no run: the loop that
// slept the rest of the old time ran nothing until the 30th (robfig/cron
// has the same gap: robfig/cron#352, #480).
func TestHostileClockCorrectedBackAfterStartRunsOnTheCorrectedClock(t *testing.T) {
	var clk *steppedClock
	h := newHarness(t, configYAML("0 3 * * *", policyYAML("a", "enforce", "")), func(o *Options) {
		clk = &steppedClock{Clock: o.Clock.(*fakeclock.Clock), offset: 72 * time.Hour}
		o.Clock = clk
	})
	var (
		mu  sync.Mutex
		ran []time.Time
	)
	h.runners.setRun(func(context.Context, *policy.Config) (*RunReport, error) {
		mu.Lock()
		defer mu.Unlock()
		ran = append(ran, clk.Now())
		return &RunReport{}, nil
	})
	h.start()
	h.asleep(1) // until 03:00 on the 30th by the wrong clock: fifteen hours
	clk.step(-72 * time.Hour)
	// The loop wakes a minute later, on the corrected clock: its time is
	// 03:00 on the 27th, the right time.
	h.tickUntil(1, clk.Now, time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC))
	h.ran(1)
	h.tickUntil(1, clk.Now, time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)) // the next day's
	h.ran(2)
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []time.Time{time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC), time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)}
	if !slices.EqualFunc(ran, want, time.Time.Equal) {
		t.Errorf("runs at %v, want %v", ran, want)
	}
}
