package daemon

import "sync"

// gate lets one run at a time through. A run that arrives while another is in
// progress waits its turn, in arrival order, unless a run with the same key
// (the same schedule group) is already running or waiting: then it is
// refused, because the one already there will do the same work. Once closed,
// the gate admits nothing and turns the waiting runs away.
//
// Why waiting rather than skipping every overlap: two groups whose ticks
// always fall into each other's runs (a slow tenant, or "0 3 * * *" next to
// "5 3 * * *" with runs longer than five minutes) would otherwise starve one
// of them forever. Why at most one waiter per key: a group that is slower than
// its own schedule must not pile up runs that then fire back to back; its
// extra ticks are skipped, as cron's SkipIfStillRunning would.
type gate struct {
	mu      sync.Mutex
	busy    bool
	key     string // the run in progress
	closed  bool
	waiters []*waiter
	// idle is closed when the gate has no run in progress and no waiter.
	idle chan struct{}
	// onBusy, if set, is told under the lock when the gate turns busy and
	// when it turns free (run_in_progress). Under the lock, so that what it
	// says is always what a tick would find: 0 only once a run of the same
	// schedule is admitted again, and no 0 between a run and the waiter it
	// hands the gate to. Set before the gate is used.
	onBusy func(busy bool)
}

type waiter struct {
	key  string
	turn chan gateResult
}

// gateResult says what acquire did.
type gateResult int

const (
	// admitted: the caller runs now and must call release afterwards.
	admitted gateResult = iota
	// refusedBusy: a run of the same key is in progress or waiting.
	refusedBusy
	// refusedClosed: the gate is closed (shutting down).
	refusedClosed
)

// acquire admits the caller, makes it wait for the runs ahead of it, or
// refuses it. waiting, if not nil, is called (without the lock) when the
// caller has to wait, before it blocks.
func (g *gate) acquire(key string, waiting func()) gateResult {
	g.mu.Lock()
	switch {
	case g.closed:
		g.mu.Unlock()
		return refusedClosed
	case !g.busy:
		g.busy, g.key = true, key
		g.idle = make(chan struct{})
		if g.onBusy != nil {
			g.onBusy(true)
		}
		g.mu.Unlock()
		return admitted
	case g.key == key:
		g.mu.Unlock()
		return refusedBusy
	}
	for _, w := range g.waiters {
		if w.key == key {
			g.mu.Unlock()
			return refusedBusy
		}
	}
	w := &waiter{key: key, turn: make(chan gateResult, 1)}
	g.waiters = append(g.waiters, w)
	g.mu.Unlock()
	if waiting != nil {
		waiting()
	}
	return <-w.turn
}

// release ends the caller's run and hands the gate to the first waiter.
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.waiters) > 0 {
		w := g.waiters[0]
		g.waiters = g.waiters[1:]
		g.key = w.key
		w.turn <- admitted
		return
	}
	g.busy, g.key = false, ""
	close(g.idle)
	if g.onBusy != nil {
		g.onBusy(false)
	}
}

// running reports whether a run is in progress.
func (g *gate) running() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.busy
}

// close admits nothing more, turns the waiters away, and returns a channel
// that is closed when the run in progress, if any, has released the gate.
func (g *gate) close() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for _, w := range g.waiters {
		w.turn <- refusedClosed
	}
	g.waiters = nil
	if g.busy {
		return g.idle
	}
	done := make(chan struct{})
	close(done)
	return done
}
