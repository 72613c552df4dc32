package cli

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
)

// clockWF is a workflow whose tenant clock (the simulator's, which stamps
// its Date) runs behind the host's wall clock, the one the commands read,
// by behind; stale-1 is in the tenant, and saved is a plan made while the
// clocks were in step.
type clockWF struct {
	*wfEnv
	behind atomic.Int64 // how far the tenant's clock is behind the host's
	saved  string
}

func newClockWF(t *testing.T) *clockWF {
	t.Helper()
	c := &clockWF{}
	c.wfEnv = newWF(t, wfPolicies, idnsim.Options{Clock: c.tenantNow})
	c.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	c.saved = filepath.Join(c.dir, "saved.json")
	if code, _, stderr := c.run(nil, "plan", "--out", c.saved); code != 0 {
		t.Fatalf("plan with the clocks in step: exit %d\n%s", code, stderr)
	}
	return c
}

// tenantNow is the tenant's clock.
func (c *clockWF) tenantNow() time.Time { return time.Now().Add(-time.Duration(c.behind.Load())) }

// The commands on a host whose clock is 30 days ahead of the tenant's (the
// simulator's clock, which stamps its Date, is set back: the host's is the
// wall clock the commands read): plan prints the refusal and saves no plan,
// apply and apply PLAN change nothing and exit 1, and a saved plan refused
// so is not spent: once the clocks agree again it applies.
func TestHostileCLIRefusesAWrongClock(t *testing.T) {
	c := newClockWF(t)
	e, saved := c.wfEnv, c.saved

	c.behind.Store(int64(30 * wfDay))
	e.sim.ResetRequests()
	out := filepath.Join(e.dir, "plan.json")
	code, _, stderr := e.run(nil, "plan", "--out", out)
	for _, want := range []string{"nothing will be changed", "720h0m", "ahead of the tenant", "Date header says", "tenant.maxClockSkew", "NTP", "proxy or cache", "nothing was written to " + out} {
		if !strings.Contains(stderr, want) {
			t.Errorf("plan's stderr lacks %q:\n%s", want, stderr)
		}
	}
	if code != 1 {
		t.Errorf("plan: exit %d, want 1", code)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("plan --out wrote a plan on a wrong clock (stat: %v)", err)
	}

	code, _, stderr = e.run(nil, "apply", "--auto-approve")
	if code != 1 || !strings.Contains(stderr, "tenant.maxClockSkew") {
		t.Errorf("apply: exit %d, want 1 naming the clock:\n%s", code, stderr)
	}
	code, _, stderr = e.run(nil, "apply", saved, "--auto-approve")
	if code != 1 || !strings.Contains(stderr, "tenant.maxClockSkew") {
		t.Errorf("apply PLAN: exit %d, want 1 naming the clock:\n%s", code, stderr)
	}
	for _, r := range e.sim.Requests() {
		if r.Method != "GET" && r.Path != "/oauth/token" {
			t.Errorf("the tenant received %s %s on a wrong clock", r.Method, r.Path)
		}
	}
	if !e.present("stale-1") {
		t.Fatal("stale-1 deleted on a wrong clock")
	}
	// Nothing was journaled: a run blocked before any action writes no
	// record, as on any incomplete data.
	if recs := journalOf(t, e); len(recs) != 0 {
		t.Errorf("journal holds %d records after the refused runs, want none: %+v", len(recs), recs)
	}

	c.behind.Store(0)
	code, stdout, stderr := e.run(nil, "apply", saved, "--auto-approve")
	if code != 0 || e.present("stale-1") {
		t.Fatalf("apply PLAN with the clocks in step again: exit %d, stale-1 present %v\n%s\n%s", code, e.present("stale-1"), stdout, stderr)
	}
	if recs := journalOf(t, e); len(recs) == 0 || recs[0].Kind != audit.KindRunStart {
		t.Fatalf("the journal of the apply that went through: %+v", recs)
	}
}

func journalOf(t *testing.T, e *wfEnv) []audit.Record {
	t.Helper()
	var recs []audit.Record
	path := filepath.Join(e.state, JournalFile)
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil
	}
	if _, err := audit.VerifyPath(path, audit.VerifyOptions{Each: func(r audit.Record) error { recs = append(recs, r); return nil }}); err != nil {
		t.Fatalf("journal: %v", err)
	}
	return recs
}
