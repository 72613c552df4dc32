package cli

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/plan"
)

// apply PLAN judges a saved plan's age on this host's clock before it
// lists anything. On a host 30 days ahead of the tenant, a plan made an
// hour ago (on a machine in step with the tenant) was refused as 30 days
// old, with the advice to make a new plan: the operator re-planned and had
// it approved again, on a clock that refused nothing. The refusal is made
// on a clock the tenant confirms now: apply PLAN names the clock and
// journals nothing.
func TestHostileCLIApplyPlanAgeJudgedOnAConfirmedClock(t *testing.T) {
	c := newClockWF(t)
	e, saved := c.wfEnv, c.saved

	// The tenant is 30 days behind this host; the plan was made an hour
	// ago by the tenant's clock, as a machine in step with it made it.
	c.behind.Store(int64(30 * wfDay))
	data, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	p.GeneratedAt = c.tenantNow().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	if err := p.Seal(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := plan.Write(&buf, p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(saved, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	e.sim.ResetRequests()
	code, _, stderr := e.run(nil, "apply", saved, "--auto-approve")
	for _, want := range []string{"tenant.maxClockSkew", "720h0m", "ahead of the tenant", "would have been refused", "older than the maximum", "the refusal is not made"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("apply PLAN's stderr lacks %q:\n%s", want, stderr)
		}
	}
	if code != 1 {
		t.Errorf("apply PLAN: exit %d, want 1", code)
	}
	for _, r := range e.sim.Requests() {
		if r.Method != "GET" && r.Path != "/oauth/token" {
			t.Errorf("the tenant received %s %s on a wrong clock", r.Method, r.Path)
		}
	}
	if recs := journalOf(t, e); len(recs) != 0 {
		t.Errorf("journal holds %d records, want none: %+v", len(recs), recs)
	}

	// With the clocks in step again (here the tenant's is moved: the
	// host's is the wall clock), the plan is judged by its age, which
	// both clocks now agree on: refused.
	c.behind.Store(0)
	code, _, stderr = e.run(nil, "apply", saved, "--auto-approve")
	if code != 1 || !strings.Contains(stderr, "older than the maximum") || strings.Contains(stderr, "tenant.maxClockSkew") {
		t.Fatalf("apply PLAN with the clocks in step: exit %d, want 1 refusing the plan for its age:\n%s", code, stderr)
	}
	if !e.present("stale-1") {
		t.Fatal("stale-1 deleted")
	}
}
