package fakeclock

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	c := New(t0)
	if !c.Now().Equal(t0) {
		t.Fatalf("Now = %v, want %v", c.Now(), t0)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { c.Advance(time.Hour) })
	}
	wg.Wait()
	if got := c.Now(); !got.Equal(t0.Add(10 * time.Hour)) {
		t.Fatalf("after 10 concurrent Advance(1h): %v", got)
	}
	c.Set(t0)
	if !c.Now().Equal(t0) {
		t.Fatalf("Set back: %v", c.Now())
	}
}

func TestSleep(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	c := New(t0)
	ctx := context.Background()
	if err := c.Sleep(ctx, 0); err != nil {
		t.Fatalf("Sleep(0) = %v", err)
	}
	woke := make(chan time.Duration, 2)
	for _, d := range []time.Duration{time.Second, time.Hour} {
		go func() {
			if err := c.Sleep(ctx, d); err != nil {
				t.Errorf("Sleep(%s) = %v", d, err)
			}
			woke <- d
		}()
	}
	if err := c.BlockUntil(ctx, 2); err != nil {
		t.Fatal(err)
	}
	c.Advance(999 * time.Millisecond)
	select {
	case d := <-woke:
		t.Fatalf("the %s sleeper woke 1ms early", d)
	default:
	}
	if now, n := c.AdvanceToNext(); n != 1 || !now.Equal(t0.Add(time.Second)) {
		t.Fatalf("AdvanceToNext = %v, %d woken; want %v, 1", now, n, t0.Add(time.Second))
	}
	if d := <-woke; d != time.Second {
		t.Fatalf("woke %s first", d)
	}
	if n := c.Sleepers(); n != 1 {
		t.Fatalf("%d sleepers after the first woke, want 1", n)
	}
	c.Set(t0.Add(2 * time.Hour))
	if d := <-woke; d != time.Hour {
		t.Fatalf("woke %s", d)
	}
	if _, n := c.AdvanceToNext(); n != 0 {
		t.Fatal("AdvanceToNext with nobody asleep moved the clock")
	}

	// A cancelled sleep returns ctx's error and no longer counts.
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- c.Sleep(cctx, time.Minute) }()
	if err := c.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Sleep = %v", err)
	}
	if n := c.Sleepers(); n != 0 {
		t.Fatalf("%d sleepers after the cancel", n)
	}
	// BlockUntil gives up with its ctx.
	if err := c.BlockUntil(cctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("BlockUntil on a cancelled ctx = %v", err)
	}
	var zero Clock
	go func() { _ = zero.Sleep(ctx, time.Second) }()
	if err := zero.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	zero.Advance(time.Second)
	if err := zero.BlockUntil(ctx, 0); err != nil || zero.Sleepers() != 0 {
		t.Fatalf("zero clock: %v, %d sleepers", err, zero.Sleepers())
	}
}
