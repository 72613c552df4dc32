package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/state"
)

// A proxy answers 204 to every DELETE without forwarding it. `apply`
// journals the delete applied; the `plan` a reviewer runs later must say
// plainly that the tenant confirmed a delete that did not happen, and exit
// 1; the next `apply` fails the same way, journals the delete as not in
// effect, and `audit show` of that run shows it. On the old code `plan`
// listed the token as one more delete, exit 0, and nothing said it.
func TestHostilePlanSaysConfirmedDeletesStillListed(t *testing.T) {
	var faked atomic.Int32
	e := newWFWrapped(t, wfPolicies, idnsim.Options{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodDelete && strings.Contains(r.URL.Path, "/personal-access-tokens/") {
				faked.Add(1)
				w.WriteHeader(http.StatusNoContent)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, stderr)
	}
	if faked.Load() != 1 || len(e.mutations()) != 0 || !e.present("stale-1") {
		t.Fatalf("faked %d DELETEs, the tenant saw %v; want one faked, none received", faked.Load(), e.mutations())
	}
	backdateConfirmed(t, e.state, time.Hour) // the settle margin has passed

	const said = "1 token the tenant confirmed deleted is still listed (stale-1 of owner o1, deleted by policy unused-90d in run "
	code, stdout, stderr := e.run(nil, "plan")
	if code != 1 || !strings.Contains(stdout, "WARNING: 1 token the tenant confirmed deleted is still listed") || !strings.Contains(stderr, said) {
		t.Fatalf("plan: exit %d; want 1, the report and the error saying %q\nstdout:\n%s\nstderr:\n%s", code, said, stdout, stderr)
	}
	if faked.Load() != 1 {
		t.Fatal("plan sent a DELETE")
	}

	code, _, stderr = e.run(nil, "apply", "--auto-approve")
	if code != 1 || !strings.Contains(stderr, said) {
		t.Fatalf("apply: exit %d; want 1 saying %q\n%s", code, said, stderr)
	}
	var runID string
	if _, err := audit.VerifyPath(filepath.Join(e.state, JournalFile), audit.VerifyOptions{Each: func(r audit.Record) error {
		if r.Kind == audit.KindOutcome && r.Outcome != nil && r.Outcome.Status == janitor.StatusNotInEffect && r.TokenID == "stale-1" {
			runID = r.RunID
		}
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	if runID == "" {
		t.Fatal("the journal has no not-in-effect outcome for stale-1")
	}
	code, stdout, stderr = e.run(nil, "audit", "show", runID)
	if code != 0 || !strings.Contains(stdout, "outcome    stale-1  not-in-effect (HTTP 204): the tenant confirmed the delete (HTTP 204) in run ") {
		t.Fatalf("audit show: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := e.run(nil, "audit", "verify"); code != 0 {
		t.Fatalf("audit verify: exit %d\n%s%s", code, stdout, stderr)
	}
}

// backdateConfirmed moves the confirmed mutations awaiting proof in the
// state store under stateDir back by d, as the clock passing would (the
// commands read the wall clock).
func backdateConfirmed(t *testing.T, stateDir string, d time.Duration) {
	t.Helper()
	backdateRecords(t, stateDir, d, "confirmed mutations", (*state.Store).ConfirmedMutations, (*state.Store).UpdateConfirmed)
}

// backdateRecords moves the records read writes back by d with update: the
// token and the API client records differ only in those two methods. what
// names the records when there are none (a test that backdates nothing
// would prove nothing).
func backdateRecords(t *testing.T, stateDir string, d time.Duration, what string,
	read func(*state.Store, context.Context) ([]state.Confirmed, error),
	update func(*state.Store, context.Context, []state.Confirmed, []string) (int, error)) {
	t.Helper()
	ctx := context.Background()
	st, err := state.Open(filepath.Join(stateDir, state.FileName), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	cs, err := read(st, ctx)
	if err != nil || len(cs) == 0 {
		t.Fatalf("%s %v, %v; want some", what, cs, err)
	}
	for i := range cs {
		cs[i].At = cs[i].At.Add(-d)
	}
	if _, err := update(st, ctx, cs, nil); err != nil {
		t.Fatal(err)
	}
}

// serve, as deployed: a run through a proxy that fakes the DELETE records
// it; a later run, also one of `serve --dry-run`, whose listing still shows
// the token exports patjanitor_unproven_mutations{action="delete"} 1 (the
// PatjanitorUnprovenMutations alert) and counts the run as failed.
func TestHostileServeExportsUnprovenDeletes(t *testing.T) {
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	proxied := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete && strings.Contains(r.URL.Path, "/personal-access-tokens/") {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		e.sim.ServeHTTP(w, r)
	}))
	t.Cleanup(proxied.Close)
	e.srv = proxied
	stale := e.addTokens("stale", 2, 200*24*time.Hour)
	cfg := e.writeConfig(e.configYAML("@every 1s", servePolicy("stale-delete", "enforce", "", "stale", false)))
	unproven := series("patjanitor_unproven_mutations", "action", "delete")

	p := startInProcess(t, e, cfg, serveFlags{})
	p.tickUntil("the deletes applied", 1, func() bool {
		return scrape(t, p.base)[actions("stale-delete", "delete", "applied")] >= float64(len(stale))
	})
	// The run records its confirmations after its deletes are counted.
	serveWait(t, "the run to end", 30*time.Second, func() bool {
		m := scrape(t, p.base)
		return m["patjanitor_run_in_progress"] == 0 && m[series("patjanitor_runs_total", "result", "success")] >= 1
	})
	if v := scrape(t, p.base)[unproven]; v != 0 {
		t.Errorf("%s = %v right after the deletes, want 0", unproven, v)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	if len(idnsim.Mutations(e.sim.Requests())) != 0 {
		t.Fatal("the tenant received a mutation: the proxy did not lie")
	}
	backdateConfirmed(t, filepath.Join(e.dir, "state"), time.Hour)

	p = startInProcess(t, e, cfg, serveFlags{dryRun: true, runOnStart: true})
	var m map[string]float64
	p.tickUntil("a run", 1, func() bool {
		m = scrape(t, p.base)
		return m[series("patjanitor_runs_total", "result", "failed")] >= 1
	})
	if m[unproven] != float64(len(stale)) {
		t.Errorf("%s = %v, want %d", unproven, m[unproven], len(stale))
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}
