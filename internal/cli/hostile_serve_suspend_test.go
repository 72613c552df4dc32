package cli

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/daemon"
	"github.com/patjanitor/patjanitor/internal/fakeclock"
	"github.com/patjanitor/patjanitor/internal/idnsim"
)

// suspendedClock is serve's schedule clock on a machine that was suspended:
// Sleep counts elapsed time (the production timer runs on the monotonic
// clock, which stops while the machine sleeps), Now is the wall clock,
// which went on.
type suspendedClock struct {
	*fakeclock.Clock
	mu    sync.Mutex
	slept time.Duration
}

func (c *suspendedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Clock.Now().Add(c.slept)
}

func (c *suspendedClock) suspend(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slept += d
}

// TestHostileServeSuspendedRunsAtResume: serve, wired as the command wires
// it, against the simulated tenant over HTTP, runs an hourly enforce policy
// ("@every 1h"). The machine is suspended for six hours right after the
// start. At the resume the run is long overdue on the wall clock: it must
// come within a minute of elapsed time, once, and delete the stale tokens
// (the tenant's request log, the journal). The loop that slept its timer's
// hour ran an hour after the resume, seven hours after its time.
func TestHostileServeSuspendedRunsAtResume(t *testing.T) {
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	stale := e.addTokens("stale", 3, 200*24*time.Hour)
	cfg := e.writeConfig(e.configYAML("@every 1h", servePolicy("stale-delete", "enforce", "", "stale", false)))
	var wall *suspendedClock
	p := startInProcessWith(t, e, cfg, serveFlags{}, func(o *daemon.Options) {
		wall = &suspendedClock{Clock: o.Clock.(*fakeclock.Clock)}
		o.Clock = wall
	})
	start := p.clock.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.clock.BlockUntil(ctx, 1); err != nil {
		t.Fatalf("the schedule loop never slept: %v", err)
	}
	wall.suspend(6 * time.Hour)
	p.tick(1)
	if elapsed := p.clock.Now().Sub(start); elapsed > time.Minute {
		t.Errorf("the run came %s of elapsed time after the start, want within a minute of the resume", elapsed)
	}
	m := scrape(t, p.base)
	if got := m[series("patjanitor_runs_total", "result", "success")]; got != 1 {
		t.Errorf("runs_total{success} = %v, want 1: the six missed hours coalesce into one run", got)
	}
	if err := p.stop(t); err != nil {
		t.Fatalf("serve: %v", err)
	}
	reqs := e.sim.Requests()
	if got := deletedIDs(reqs); !slices.Equal(got, stale) {
		t.Errorf("DELETEs sent for %v, want the stale tokens %v", got, stale)
	}
	kinds := journalKinds(t, p.journal)
	if kinds[audit.KindIntent] != len(stale) || kinds[audit.KindOutcome] != len(stale) {
		t.Errorf("journal: %d intents, %d outcomes, want %d each", kinds[audit.KindIntent], kinds[audit.KindOutcome], len(stale))
	}
}
