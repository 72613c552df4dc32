package cli

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/pat"
)

// apply PLAN killed (SIGKILL) while its first mutation is on the wire: the
// record that the plan is executed was made before that mutation, so the
// next apply of the same plan is refused and sends nothing (the old code
// carried out the rest of the plan as a second execution of one approval).
// What the killed run did not get to needs a new plan: `apply` plans afresh,
// resolves the interrupted intents against its listing, and finishes.
func TestCrashAfterPlanRecordedRefusesTheSamePlan(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a binary")
	}
	// Mostly waiting for the binary's build and for child processes: in
	// parallel with the other subprocess tests (TestCrashDuringApply,
	// TestServeProcess, the README walkthrough), after the package's
	// sequential tests. It shares nothing with them but the binary.
	t.Parallel()
	bin := patjanitorBin(t)
	sim := idnsim.New(idnsim.Options{RateLimit: -1})
	var (
		mu     sync.Mutex
		victim *exec.Cmd
		killed = make(chan struct{})
		served = make(chan struct{})
		once   sync.Once
	)
	// The first DELETE kills the apply that sent it, before the tenant
	// answers (the tenant still carries it out: the outcome is unknown to
	// the journal). served is closed once the tenant has carried out that
	// DELETE: the kill ends the apply before it, so the count of what the
	// killed apply sent waits for it (counted at once, it missed the DELETE
	// still being served, which then showed as sent by the refused plan).
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first := false
		if r.Method == http.MethodDelete {
			mu.Lock()
			if victim != nil {
				once.Do(func() {
					_ = victim.Process.Kill()
					close(killed)
					first = true
				})
			}
			mu.Unlock()
		}
		sim.ServeHTTP(w, r)
		if first {
			close(served)
		}
	}))
	defer srv.Close()
	admin := sim.Admin()
	now := time.Now().UTC()
	var stale []string
	for i := range 6 {
		id := fmt.Sprintf("stale%02d", i)
		lu := now.Add(-200 * wfDay)
		sim.Add(pat.Token{ID: id, Name: id, Owner: pat.Owner{ID: fmt.Sprintf("o%d", i)}, Created: now.Add(-400 * wfDay),
			LastUsed: &lu, Scope: pat.ScopesOf("idn:sources:read")}, "")
		stale = append(stale, id)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "policies.yaml")
	body := fmt.Sprintf("tenant:\n  url: %s\n  clientId: %s\n  rateLimit: {requests: -1, per: 1s}\n%s", srv.URL, admin.ClientID, wfPolicies)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(dir, "state")
	command := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, append([]string{"-c", cfg, "--state-dir", stateDir}, args...)...)
		cmd.Env = cleanEnv("PATJANITOR_CLIENT_SECRET=" + admin.ClientSecret)
		return cmd
	}
	planFile := filepath.Join(dir, "plan.json")
	if out, err := command("plan", "--out", planFile).CombinedOutput(); err != nil {
		t.Fatalf("plan: %v\n%s", err, out)
	}

	cmd := command("apply", planFile, "--auto-approve")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	mu.Lock()
	if err := cmd.Start(); err != nil {
		mu.Unlock()
		t.Fatal(err)
	}
	victim = cmd
	mu.Unlock()
	err := cmd.Wait()
	select {
	case <-killed:
	default:
		t.Fatalf("the apply ended without sending a DELETE: %v\n%s", err, out.String())
	}
	<-served
	sent := len(idnsim.Mutations(sim.Requests()))
	t.Logf("the killed apply's mutations that reached the tenant: %d of %d", sent, len(stale))

	again, err := command("apply", planFile, "--auto-approve").CombinedOutput()
	if err == nil || !strings.Contains(string(again), "was already executed") || !strings.Contains(string(again), "make a new plan") {
		t.Fatalf("the same plan after the crash: %v\n%s", err, again)
	}
	if n := len(idnsim.Mutations(sim.Requests())); n != sent {
		t.Fatalf("the refused plan sent %d mutations", n-sent)
	}

	fresh, err := command("apply", "--auto-approve").CombinedOutput()
	if err != nil || !strings.Contains(string(fresh), "Resolved ") {
		t.Fatalf("apply of a new plan after the crash: %v\n%s", err, fresh)
	}
	for _, id := range stale {
		if _, ok := sim.Token(id); ok {
			t.Errorf("%s still present after the new plan", id)
		}
	}
	verify, err := command("audit", "verify").CombinedOutput()
	if err != nil || !strings.Contains(string(verify), "0 intents without an outcome") {
		t.Fatalf("audit verify: %v\n%s", err, verify)
	}
}
