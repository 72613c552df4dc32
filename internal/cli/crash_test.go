package cli

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/pat"
)

// cleanEnv is the test process's environment without PATJANITOR_* plus kv.
func cleanEnv(kv ...string) []string {
	var env []string
	for _, v := range os.Environ() {
		if !strings.HasPrefix(v, "PATJANITOR_") {
			env = append(env, v)
		}
	}
	return append(env, kv...)
}

const crashPolicies = `limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 0}
policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
  - name: full-access
    mode: enforce
    match: {scopes: {any: ["sp:scopes:all"]}}
    action: patch
    patch: {setScopes: ["sp:scopes:default"]}
`

// A crash in the middle of apply (kill -9 at random points, again and again):
// afterwards `audit verify` passes, and a further apply completes without
// repeating a completed mutation or losing one. The simulated tenant runs in
// this test process, outside the killed one, and its request log is the
// evidence.
//
// 3 iterations in the normal suite; PATJANITOR_SLOW=1 runs 40.
func TestCrashDuringApply(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a binary")
	}
	// Mostly waiting for child processes: in parallel with the other
	// subprocess tests, after the package's sequential tests.
	t.Parallel()
	iterations := 3
	if os.Getenv("PATJANITOR_SLOW") == "1" {
		iterations = 40
	}
	bin := patjanitorBin(t)
	rng := rand.New(rand.NewPCG(4, 2026))
	for i := range iterations {
		// Kill once or twice per iteration, each time after a random delay
		// that spans "before the first mutation" to "after the last".
		kills := []time.Duration{time.Duration(rng.IntN(250)) * time.Millisecond}
		if rng.IntN(2) == 0 {
			kills = append(kills, time.Duration(rng.IntN(250))*time.Millisecond)
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { crashOnce(t, bin, kills) })
	}
}

func crashOnce(t *testing.T, bin string, kills []time.Duration) {
	sim := idnsim.New(idnsim.Options{RateLimit: -1})
	// Connections still open on the tenant's side: a killed apply's request
	// can still be in the simulator's handler (its injected latency, or the
	// delete itself) after the process is gone.
	var connMu sync.Mutex
	open := map[net.Conn]bool{}
	srv := httptest.NewUnstartedServer(sim)
	srv.Config.ConnState = func(c net.Conn, st http.ConnState) {
		connMu.Lock()
		defer connMu.Unlock()
		if st == http.StateClosed || st == http.StateHijacked {
			delete(open, c)
		} else {
			open[c] = true
		}
	}
	srv.Start()
	defer srv.Close()
	quiet := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second) // bounds a failing test only
		for {
			connMu.Lock()
			n := len(open)
			connMu.Unlock()
			if n == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d connections of the killed apply still open on the tenant", n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	admin := sim.Admin()
	self, _ := sim.Token(admin.ClientID)
	now := time.Now().UTC()
	var stale, full []string
	for i := range 40 {
		id := fmt.Sprintf("stale%02d", i)
		lu := now.Add(-200 * wfDay)
		sim.Add(pat.Token{ID: id, Name: id, Owner: pat.Owner{ID: fmt.Sprintf("o%d", i%7)}, Created: now.Add(-400 * wfDay),
			LastUsed: &lu, Scope: pat.ScopesOf("idn:sources:read")}, "")
		stale = append(stale, id)
	}
	// The over-scoped tokens are patjanitor's own identity's: a real tenant
	// (and the simulator) refuses a PATCH of anyone else's.
	for i := range 10 {
		id := fmt.Sprintf("full%02d", i)
		lu := now.Add(-time.Hour)
		sim.Add(pat.Token{ID: id, Name: id, Owner: pat.Owner{ID: self.Owner.ID}, Created: now.Add(-30 * wfDay),
			LastUsed: &lu, Scope: pat.ScopesOf(pat.ScopeAll)}, "")
		full = append(full, id)
	}
	fresh := "fresh"
	lu := now.Add(-time.Hour)
	sim.Add(pat.Token{ID: fresh, Name: fresh, Owner: pat.Owner{ID: "o1"}, Created: now.Add(-wfDay), LastUsed: &lu,
		Scope: pat.ScopesOf("idn:sources:read")}, "")
	// A little latency per mutation, so that a kill lands mid-run.
	sim.InjectFault(idnsim.Fault{Method: "DELETE", Latency: 4 * time.Millisecond})
	sim.InjectFault(idnsim.Fault{Method: "PATCH", Latency: 4 * time.Millisecond})

	dir := t.TempDir()
	cfg := filepath.Join(dir, "policies.yaml")
	body := fmt.Sprintf("tenant:\n  url: %s\n  clientId: %s\n  rateLimit: {requests: -1, per: 1s}\n%s", srv.URL, admin.ClientID, crashPolicies)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	command := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, append([]string{"-c", cfg, "--state-dir", state}, args...)...)
		cmd.Env = cleanEnv("PATJANITOR_CLIENT_SECRET=" + admin.ClientSecret)
		return cmd
	}

	for _, d := range kills {
		cmd := command("apply", "--auto-approve")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(d)
		_ = cmd.Process.Kill() // SIGKILL: no deferred call, no last journal write
		_ = cmd.Wait()
		// The next apply must find the tenant as the killed one left it,
		// not have a leftover request of it land in the middle of its run.
		quiet()
		t.Logf("killed after %s: %d mutations so far", d, len(idnsim.Mutations(sim.Requests())))
	}

	final := command("apply", "--auto-approve")
	if out, err := final.CombinedOutput(); err != nil {
		t.Fatalf("apply after the crash: %v\n%s", err, out)
	}
	verify := command("audit", "verify")
	out, err := verify.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "0 intents without an outcome") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}

	// The tenant's final state: exactly the planned changes.
	for _, id := range stale {
		if _, ok := sim.Token(id); ok {
			t.Errorf("%s was lost: still present", id)
		}
	}
	for _, id := range full {
		tok, ok := sim.Token(id)
		if !ok || !slices.Equal(tok.Scope.Values, []string{"sp:scopes:default"}) {
			t.Errorf("%s: present %v, scope %v; want patched", id, ok, tok.Scope)
		}
	}
	for _, id := range []string{admin.ClientID, fresh} {
		if _, ok := sim.Token(id); !ok {
			t.Errorf("%s, never planned, was deleted", id)
		}
	}
	// The request log: each completed mutation happened exactly once.
	done := map[string]int{}
	for _, r := range idnsim.Mutations(sim.Requests()) {
		id := r.Path[strings.LastIndex(r.Path, "/")+1:]
		switch {
		case r.Status == 204 || r.Status == 200:
			done[id]++
		case r.Status == 404:
			t.Errorf("%s %s met a 404: a completed delete was repeated", r.Method, id)
		case r.Status != 0:
			t.Errorf("%s %s -> %d", r.Method, id, r.Status)
		}
	}
	for _, id := range append(slices.Clone(stale), full...) {
		if done[id] != 1 {
			t.Errorf("%s: %d successful mutations, want exactly 1", id, done[id])
		}
	}
	// And the journal says the same: one applied (or resolved) outcome per token.
	sum, err := audit.VerifyPath(filepath.Join(state, JournalFile), audit.VerifyOptions{})
	if err != nil || sum.PendingIntents != 0 {
		t.Fatalf("pending intents after the final apply: %d, %v", sum.PendingIntents, err)
	}
}
