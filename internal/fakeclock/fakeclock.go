// Package fakeclock is a settable clock for tests. The engine, the simulated
// tenant, the API client, the notifiers and the stores each take a
// `func() time.Time`; a test hands all of them one Clock's Now, so that
// "fourteen days later" is a call, not a wait, and every part agrees on the
// time.
//
// Code that waits (the daemon's scheduler) takes a Sleep as well: a sleeper
// wakes when the test moves the clock past its deadline, and the test can
// wait until the code under test has gone to sleep (BlockUntil) before it
// moves the clock, so that a tick is never moved past before anyone waits
// for it.
package fakeclock

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Clock is a time that moves only when told to. It is safe for concurrent
// use (servers under test read it from their own goroutines).
type Clock struct {
	mu       sync.Mutex
	now      time.Time
	sleepers []*sleeper
	// changed is closed and replaced whenever the set of sleepers changes,
	// so BlockUntil waits without polling.
	changed chan struct{}
}

type sleeper struct {
	until time.Time
	wake  chan struct{}
}

// New returns a clock standing at t.
func New(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t (also backwards) and wakes the sleepers whose
// deadline it reached.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	c.wakeLocked()
}

// Advance moves the clock forward by d and wakes the sleepers whose deadline
// it reached.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.wakeLocked()
}

// Sleep blocks until the clock has been moved d past the time of the call,
// or ctx ends (then it returns ctx's error). d <= 0 returns at once. Its
// signature is the one of the sleeps the packages under test take.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	c.mu.Lock()
	s := &sleeper{until: c.now.Add(d), wake: make(chan struct{})}
	c.sleepers = append(c.sleepers, s)
	c.signalLocked()
	c.mu.Unlock()
	select {
	case <-s.wake:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		defer c.mu.Unlock()
		if i := slices.Index(c.sleepers, s); i >= 0 {
			c.sleepers = slices.Delete(c.sleepers, i, i+1)
			c.signalLocked()
			return ctx.Err()
		}
		return nil // woken in the meantime: the sleep was complete
	}
}

// Sleepers is the number of goroutines in Sleep.
func (c *Clock) Sleepers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sleepers)
}

// BlockUntil waits until at least n goroutines are in Sleep, or ctx ends.
func (c *Clock) BlockUntil(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		if c.changed == nil { // a zero Clock
			c.changed = make(chan struct{})
		}
		got, changed := len(c.sleepers), c.changed
		c.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// AdvanceToNext moves the clock to the earliest deadline of the sleepers and
// wakes the ones due then. It returns the new time and how many woke (0, not
// moving the clock, when nobody sleeps).
func (c *Clock) AdvanceToNext() (time.Time, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sleepers) == 0 {
		return c.now, 0
	}
	next := c.sleepers[0].until
	for _, s := range c.sleepers[1:] {
		if s.until.Before(next) {
			next = s.until
		}
	}
	if next.After(c.now) {
		c.now = next
	}
	return c.now, c.wakeLocked()
}

// wakeLocked wakes the sleepers due and returns how many.
func (c *Clock) wakeLocked() int {
	kept := c.sleepers[:0]
	woke := 0
	for _, s := range c.sleepers {
		if s.until.After(c.now) {
			kept = append(kept, s)
			continue
		}
		close(s.wake)
		woke++
	}
	clear(c.sleepers[len(kept):])
	c.sleepers = kept
	if woke > 0 {
		c.signalLocked()
	}
	return woke
}

func (c *Clock) signalLocked() {
	if c.changed != nil { // nil: nobody has waited yet
		close(c.changed)
		c.changed = nil
	}
}
