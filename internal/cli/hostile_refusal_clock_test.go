package cli

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/idnsim"
)

// apply PLAN of a signed plan refused before anything is listed for a
// reason the clock did not decide (here: executed before), on a host 30
// days ahead of the tenant. Its refusal's notice goes through the outbox,
// which delivers what waits there with this host's clock, so the refusal
// is made only on a clock the tenant confirms, as serve's ApplySigned
// does. The old code confirmed only the refusals the clock decided: it
// journaled this one and sent its notice on the wrong clock.
func TestHostileApplyRefusalWaitsForAClockTheTenantConfirms(t *testing.T) {
	var hits atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hits.Add(1)
	}))
	t.Cleanup(hook.Close)
	var behind atomic.Int64 // how far the tenant's clock is behind the host's
	clock := func() time.Time { return time.Now().Add(-time.Duration(behind.Load())) }
	dir := t.TempDir()
	urlFile := filepath.Join(dir, "hook-url")
	keyFile := filepath.Join(dir, "hook-key")
	if err := os.WriteFile(urlFile, []byte(hook.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte("hmac-key-of-the-test-receiver"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newWF(t, replayPolicies+`notify:
  receivers:
    - name: siem
      webhook: {urlFile: `+urlFile+`, hmacSecretFile: `+keyFile+`}
  summary: [siem]
`, idnsim.Options{Clock: clock})
	r, _ := newReviewers(t, e.dir)
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	planFile := filepath.Join(e.dir, "plan.json")
	for _, args := range [][]string{{"plan", "--out", planFile}, {"approve", planFile, "--key", r.alice}, {"approve", planFile, "--key", r.bob}, {"apply", planFile, "--auto-approve"}} {
		if code, stdout, stderr := e.run(nil, args...); code != 0 {
			t.Fatalf("%v: %d\n%s%s", args, code, stdout, stderr)
		}
	}
	backdateConfirmed(t, e.state, time.Hour)
	journal := filepath.Join(e.state, JournalFile)
	runs, sent := len(journalRuns(t, journal)), hits.Load()

	behind.Store(int64(30 * wfDay))
	code, stdout, stderr := e.run(nil, "apply", planFile, "--auto-approve")
	if code != 1 || !strings.Contains(stderr, "tenant.maxClockSkew") || !strings.Contains(stderr, "the refusal is not made") {
		t.Fatalf("apply PLAN again on a wrong clock: exit %d, want 1 naming the clock\n%s%s", code, stdout, stderr)
	}
	if n := len(journalRuns(t, journal)); n != runs {
		t.Errorf("the refusal was journaled on a wrong clock (%d plan runs, want %d)", n, runs)
	}
	if n := hits.Load(); n != sent {
		t.Errorf("the receiver got %d messages on a wrong clock", n-sent)
	}
	if n := len(bulkUpdates(e.sim.Requests())); n != 1 {
		t.Errorf("the tenant received %d bulk updates, want the first apply's only", n)
	}

	behind.Store(0) // the clocks agree again: the refusal is made, and told
	code, stdout, stderr = e.run(nil, "apply", planFile, "--auto-approve")
	if code != 1 || !strings.Contains(stderr, "was already executed") {
		t.Fatalf("apply PLAN again with the clocks in step: exit %d\n%s%s", code, stdout, stderr)
	}
	if n := len(journalRuns(t, journal)); n != runs+1 {
		t.Errorf("%d plan runs journaled, want the refusal's too (%d)", n, runs+1)
	}
	if hits.Load() == sent {
		t.Error("the refusal's notice was not sent once the clocks agreed")
	}
}
