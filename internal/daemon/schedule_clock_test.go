package daemon

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/patjanitor/patjanitor/internal/fakeclock"
	"github.com/patjanitor/patjanitor/internal/policy"
)

// steppedRuns is a harness on a steppedClock whose runner records the wall
// time of every run, and whose log is observed.
type steppedRuns struct {
	*harness
	clk  *steppedClock
	logs *observer.ObservedLogs
	mu   sync.Mutex
	at   []time.Time
}

func newSteppedRuns(t *testing.T, schedule string, offset time.Duration) *steppedRuns {
	s := &steppedRuns{}
	core, logs := observer.New(zap.InfoLevel)
	s.logs = logs
	s.harness = newHarness(t, configYAML(schedule, policyYAML("a", "enforce", "")), func(o *Options) {
		s.clk = &steppedClock{Clock: o.Clock.(*fakeclock.Clock), offset: offset}
		o.Clock = s.clk
		o.Logger = zap.New(core)
	})
	s.runners.setRun(func(context.Context, *policy.Config) (*RunReport, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.at = append(s.at, s.clk.Now())
		return &RunReport{}, nil
	})
	return s
}

func (s *steppedRuns) runs() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.at)
}

// TestHostileClockSteppedForwardRunsOnTime: the wall clock is set forward
// 14h50m (NTP correcting a host that was behind) while a group sleeps until
// 03:00, fifteen hours away. The group must run at 03:00 on the wall, ten
// minutes later: the loop that slept its timer's fifteen hours of elapsed
// time ran at 17:50, 14h50m late, and a janitor that runs once a day did
// nothing for most of it.
func TestHostileClockSteppedForwardRunsOnTime(t *testing.T) {
	s := newSteppedRuns(t, "0 3 * * *", 0)
	s.start()
	s.asleep(1)
	s.clk.step(14*time.Hour + 50*time.Minute) // 02:50 on the 27th
	at := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	s.tickUntil(1, s.clk.Now, at)
	s.ran(1)
	if got := s.runs(); !slices.EqualFunc(got, []time.Time{at}, time.Time.Equal) {
		t.Errorf("runs at %v, want one at %v", got, at)
	}
	if elapsed := s.clock.Now().Sub(t0); elapsed != 10*time.Minute {
		t.Errorf("the run came after %s of elapsed time, want 10m (03:00 on the stepped wall clock)", elapsed)
	}
	if n := s.logs.FilterMessageSnippet("late").Len(); n != 0 {
		t.Errorf("%d lines say a run on time was late", n)
	}
}

// TestHostileSuspendedMachineRunsOnceAtResume: a VM is suspended for six
// hours while an @hourly group sleeps until 13:00; the monotonic clock its
// timer runs on does not count the suspension. At the resume (18:00 on the
// wall) the group must run within a minute, once for the six slots it
// missed (they coalesce, as cron's do, rather than run six times back to
// back), say in the log that the run is late and by how much, and run at
// 19:00 as the schedule says. The loop that slept its timer's hour ran at
// 19:00 only, the first run six hours late.
func TestHostileSuspendedMachineRunsOnceAtResume(t *testing.T) {
	s := newSteppedRuns(t, "@hourly", 0)
	s.start()
	s.asleep(1)
	s.clk.step(6 * time.Hour) // suspended at 12:00, resumed at 18:00
	resumed := s.tick(1).Add(6 * time.Hour)
	s.ran(1)
	if got := s.runs(); len(got) != 1 || got[0].Sub(t0.Add(6*time.Hour)) > time.Minute {
		t.Fatalf("runs at %v, want one within a minute of the resume at %v", got, t0.Add(6*time.Hour))
	}
	late := s.logs.FilterMessageSnippet("late").AllUntimed()
	if len(late) != 1 {
		t.Fatalf("%d log lines say the run was late, want 1", len(late))
	}
	f := late[0].ContextMap()
	if due, ok := f["due"].(time.Time); !ok || !due.Equal(t0.Add(time.Hour)) {
		t.Errorf("the late line says due %v, want %v (the first slot missed)", f["due"], t0.Add(time.Hour))
	}
	if got, want := f["late"], resumed.Sub(t0.Add(time.Hour)); got != want {
		t.Errorf("the late line says late %v, want %v", got, want)
	}
	if got, want := f["missed"], int64(5); got != want {
		t.Errorf("the late line says %v slots missed, want %v (14:00 to 18:00; 13:00 is the one run)", got, want)
	}
	s.tickUntil(1, s.clk.Now, t0.Add(7*time.Hour))
	s.ran(2)
	want := []time.Time{resumed, t0.Add(7 * time.Hour)}
	if got := s.runs(); !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Errorf("runs at %v, want %v", got, want)
	}
}

// TestHostileClockSteppedBackAfterARunRunsTheSlotOnce: the group ran at
// 03:00, and a minute later the wall clock is set back three minutes (it
// was ahead, within tenant.maxClockSkew: the run went ahead). The 03:00
// slot comes round again on the wall at 03:00; it ran already and must not
// run twice: the next run is the next day's. (A loop that judges the wall
// clock anew on every wake must not take the slot for one still to come.)
func TestHostileClockSteppedBackAfterARunRunsTheSlotOnce(t *testing.T) {
	s := newSteppedRuns(t, "0 3 * * *", 0)
	s.start()
	first := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	s.tickUntil(1, s.clk.Now, first)
	s.ran(1)
	s.tick(1) // 03:01
	s.clk.step(-3 * time.Minute)
	second := first.Add(24 * time.Hour)
	s.tickUntil(1, s.clk.Now, second)
	s.ran(2)
	if got, want := s.runs(), []time.Time{first, second}; !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Errorf("runs at %v, want %v", got, want)
	}
}

// TestHostileClockCorrectedBackAfterARunOnAWrongClock: serve started on a
// clock three days ahead and ran its 03:00 slot of the 30th (on the wrong
// clock: the engine refuses such a run for the skew); a minute later NTP
// sets the clock right, to 03:01 on the 27th. The schedule goes on on the
// corrected clock, at 03:00 on the 28th: the slots of the 28th and 29th are
// not skipped because a run on the wrong clock bore the 30th's name.
func TestHostileClockCorrectedBackAfterARunOnAWrongClock(t *testing.T) {
	s := newSteppedRuns(t, "0 3 * * *", 72*time.Hour)
	s.start()
	wrong := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	s.tickUntil(1, s.clk.Now, wrong)
	s.ran(1)
	s.tick(1) // 03:01
	s.clk.step(-72 * time.Hour)
	next := time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)
	s.tickUntil(1, s.clk.Now, next)
	s.ran(2)
	if got, want := s.runs(), []time.Time{wrong, next}; !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Errorf("runs at %v, want %v", got, want)
	}
	// The log says when the group runs now, as it says when a run is late.
	judged := s.logs.FilterMessageSnippet("judged again").AllUntimed()
	if len(judged) != 1 {
		t.Fatalf("%d log lines say the schedule was judged again, want 1", len(judged))
	}
	f := judged[0].ContextMap()
	if was, ok := f["was"].(time.Time); !ok || !was.Equal(wrong.Add(24*time.Hour)) {
		t.Errorf("the line says was %v, want %v", f["was"], wrong.Add(24*time.Hour))
	}
	if at, ok := f["next"].(time.Time); !ok || !at.Equal(next) {
		t.Errorf("the line says next %v, want %v", f["next"], next)
	}
}

// TestHostileClockSetAYearForwardAndBackRunsOnTheCorrectedClock: the wall
// clock jumps a year ahead (a bad RTC read at a VM's resume) while a daily
// group sleeps; the group runs at once, late (on the wrong clock the engine
// refuses it for the skew), and a minute later NTP sets the clock right.
// The group's next run is its next 03:00 on the corrected clock. Before,
// the loop compared the run's time with the clock's on the monotonic
// readings time.Now carries (elapsed time: the run was always before now)
// and kept the time computed on the wrong clock: no run for a year.
func TestHostileClockSetAYearForwardAndBackRunsOnTheCorrectedClock(t *testing.T) {
	s := newSteppedRuns(t, "0 3 * * *", 0)
	s.start()
	s.asleep(1)
	const year = 365 * 24 * time.Hour
	s.clk.step(year)
	s.tick(1)
	s.ran(1)
	s.tick(1) // a minute after the run
	s.clk.step(-year)
	next := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	s.tickUntil(1, s.clk.Now, next)
	s.ran(2)
	if got := s.runs(); len(got) != 2 || !got[1].Equal(next) {
		t.Errorf("runs at %v, want the second at %v", got, next)
	}
}

// TestHostileClockCorrectedBackByLessThanAnIntervalRunsTheSlot: serve runs
// a group's slot on a clock ahead of the tenant's by more than
// tenant.maxClockSkew (5m by default), and a minute later NTP sets the
// clock right, by less than the schedule's interval. The engine refused
// that run for the skew (the tenant's Date): nothing was decided, and the
// slot must run when it comes on the corrected clock. Before, a clock set
// back by less than an interval behind the last run kept the slot after it:
// a daily janitor whose clock was ten minutes or twelve hours ahead ran
// nothing that day, a monthly one nothing that month.
func TestHostileClockCorrectedBackByLessThanAnIntervalRunsTheSlot(t *testing.T) {
	for _, tc := range []struct {
		name, schedule string
		ahead          time.Duration
		// wrong is the slot run on the wrong clock, slot the same
		// slot on the corrected one.
		wrong, slot time.Time
	}{
		{"daily, ten minutes ahead", "0 3 * * *", 10 * time.Minute,
			time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC), time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)},
		{"daily, twelve hours ahead", "0 3 * * *", 12 * time.Hour,
			time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC), time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)},
		{"monthly, four days ahead", "0 0 1 * *", 4 * 24 * time.Hour,
			time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSteppedRuns(t, tc.schedule, tc.ahead)
			s.start()
			s.tickUntil(1, s.clk.Now, tc.wrong)
			s.ran(1)
			s.tick(1) // a minute after the run
			s.clk.step(-tc.ahead)
			s.tickUntil(1, s.clk.Now, tc.slot)
			s.ran(2)
			if got, want := s.runs(), []time.Time{tc.wrong, tc.slot}; !slices.EqualFunc(got, want, time.Time.Equal) {
				t.Errorf("runs at %v, want %v", got, want)
			}
		})
	}
}

// TestHostileClockOscillatingRunsEachSlotAtMostTwice: two time sources
// fight over the host's clock (a hypervisor's periodic time sync against
// NTP): every minute the wall clock is stepped forward by an amount, and a
// minute later back by it, for two hours. Every forward step passes the
// group's time and runs it late; every step back makes that time come round
// again on the wall. Which clock is right cannot be told, so a slot may run
// again once after the clock went back, but no more: a loop that took the
// slot as still to come on every step back ran the group every two minutes
// (a full listing of the tenant each time, and on a dated tenant a failure
// alert each time the clock was the wrong one), for as long as the clocks
// fought. An @every schedule has no fixed slots (its time at or after now
// moves with the clock): each step back found a time later than the one
// last taken again, and @every 1h ran at every forward step, 60 runs in
// two hours; it may run at most twice per interval the clocks pass.
func TestHostileClockOscillatingRunsEachSlotAtMostTwice(t *testing.T) {
	for _, tc := range []struct {
		name, schedule string
		amplitude      time.Duration
	}{
		{"daily, an hour", "0 3 * * *", time.Hour},
		{"hourly, two hours", "@hourly", 2 * time.Hour},
		{"every hour, two hours", "@every 1h", 2 * time.Hour},
		{"every 90 minutes, an hour", "@every 90m", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := time.Date(2026, 11, 27, 2, 30, 0, 0, time.UTC)
			s := newSteppedRuns(t, tc.schedule, from.Sub(t0))
			s.start()
			const cycles = 60
			for range cycles {
				// Stepped while the loop sleeps, as a clock is.
				s.asleep(1)
				s.clk.step(tc.amplitude)
				s.tick(1)
				s.asleep(1)
				s.clk.step(-tc.amplitude)
				s.tick(1)
			}
			until := s.clk.Now().Add(tc.amplitude)
			// The loop sleeps, and starts nothing until the clock moves:
			// every run it started has run, or been skipped as
			// overlapping, once its jobs are done.
			s.asleep(1)
			s.d.jobs.Wait()
			_, skipped := s.metrics.get()
			started := len(s.runs()) + skipped
			// The slots either clock passed.
			slots := 0
			for at := s.d.gen.Load().groups[0].sched.Next(from); !at.After(until); at = s.d.gen.Load().groups[0].sched.Next(at) {
				slots++
			}
			t.Logf("%d runs started (%d skipped) for %d slots", started, skipped, slots)
			if started < 1 || started > 2*slots {
				t.Errorf("%d runs started (%d skipped as overlapping) for the %d slots the clocks passed, want 1 to %d",
					started, skipped, slots, 2*slots)
			}
		})
	}
}

// reloaded sends SIGHUP's reload and waits until it is done (n loads so far,
// the first one's included).
func (s *steppedRuns) reloaded(n int) {
	s.t.Helper()
	s.reload <- struct{}{}
	waitFor(s.t, "the reload", 10*time.Second, func() bool { r, _ := s.metrics.get(); return len(r) == n })
}

// TestHostileReloadAtResumeKeepsTheOverdueRun: a VM is suspended for six
// hours while an @hourly group sleeps; at the resume the config is reloaded
// (a SIGHUP, or the file poll finding an edit made meanwhile) before the
// group's loop wakes. The run overdue since 13:00 must still come within a
// minute, as without the reload. Before, the new generation's loop started
// from the schedule's next time after the resume, 19:00: the reload dropped
// the overdue run, and the resume ran nothing for an hour (a daily
// schedule: a day).
func TestHostileReloadAtResumeKeepsTheOverdueRun(t *testing.T) {
	s := newSteppedRuns(t, "@hourly", 0)
	s.start()
	s.asleep(1)
	s.clk.step(6 * time.Hour) // suspended at 12:00, resumed at 18:00
	s.reloaded(2)
	s.tick(1)
	s.ran(1)
	if got := s.runs(); len(got) != 1 || got[0].Sub(t0.Add(6*time.Hour)) > time.Minute {
		t.Fatalf("runs at %v, want one within a minute of the resume at %v", got, t0.Add(6*time.Hour))
	}
	s.tickUntil(1, s.clk.Now, t0.Add(7*time.Hour))
	s.ran(2)
}

// TestHostileReloadAfterARunThenClockSteppedBackRunsTheSlotOnce: the group
// ran at 03:00, the config is reloaded half a minute later, and at 03:01
// the clock is set back three minutes. The slot ran (the clock was within
// tenant.maxClockSkew: the run went ahead); the reload must not make it
// run again at 03:00, as it does not without the reload. Before, the new
// generation's loop knew of no run and took 03:00 for a time to come.
func TestHostileReloadAfterARunThenClockSteppedBackRunsTheSlotOnce(t *testing.T) {
	s := newSteppedRuns(t, "0 3 * * *", 0)
	s.start()
	first := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	s.tickUntil(1, s.clk.Now, first)
	s.ran(1)
	s.asleep(1)
	s.reloaded(2)
	s.tick(1) // 03:01
	s.asleep(1)
	s.clk.step(-3 * time.Minute)
	second := first.Add(24 * time.Hour)
	s.tickUntil(1, s.clk.Now, second)
	s.ran(2)
	if got, want := s.runs(), []time.Time{first, second}; !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Errorf("runs at %v, want %v", got, want)
	}
}

// TestHostileReloadWhileARunWaitsKeepsTheRun: group a's 02:00 run takes
// more than an hour (a slow tenant), so group b's 03:00 run waits for it at
// the gate; meanwhile the config is reloaded (the file poll finding an edit,
// a SIGHUP: b's policy goes to report mode). When a's run ends, b's must
// run, with the reloaded config, and b must run once a day as before.
// Before, the waiting run was dropped ("the new generation has its own
// schedule for these policies"), but the new generation's loop goes on
// where the old one stood, after the 03:00 it had handed to that run: b ran
// nothing that day.
func TestHostileReloadWhileARunWaitsKeepsTheRun(t *testing.T) {
	cfg := func(mode string) string {
		return configYAML("0 2 * * *", policyYAML("a", "enforce", "")+policyYAML("b", mode, "0 3 * * *"))
	}
	h := newHarness(t, cfg("enforce"), nil)
	release := make(chan struct{})
	h.runners.setRun(func(ctx context.Context, c *policy.Config) (*RunReport, error) {
		if c.Policies[0].Name == "a" {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return &RunReport{}, nil
	})
	h.start()
	day := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	h.tickUntil(2, h.clock.Now, day.Add(2*time.Hour))
	waitFor(t, "a's run", 10*time.Second, func() bool { c, _, _ := h.runners.snapshot(); return len(c) == 1 })
	h.tickUntil(2, h.clock.Now, day.Add(3*time.Hour))
	waitFor(t, "b's run to wait", 10*time.Second, func() bool { return h.waiters() == 1 })
	writeFile(t, h.path, cfg("report"))
	h.reload <- struct{}{}
	waitFor(t, "the reload", 10*time.Second, func() bool { r, _ := h.metrics.get(); return len(r) == 2 })
	close(release)
	// Every run the loops started has run, or been dropped, once the gate
	// is idle and the jobs are done.
	h.asleep(2)
	h.d.jobs.Wait()
	calls, _, _ := h.runners.snapshot()
	if got := names(calls); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("runs %v on the 27th, want [a b]: b's 03:00 run, deferred behind a's, was lost to the reload", got)
	}
	if c := calls[1]; c.gen != 2 || c.modes[0] != policy.ModeReport {
		t.Errorf("b's run: %+v, want the reloaded config (runner 2, report mode)", c)
	}
	h.tickUntil(2, h.clock.Now, day.Add(26*time.Hour))
	h.ran(3)
	h.tickUntil(2, h.clock.Now, day.Add(27*time.Hour))
	h.ran(4)
	if got := names(func() []call { c, _, _ := h.runners.snapshot(); return c }()); !slices.Equal(got, []string{"a", "b", "a", "b"}) {
		t.Errorf("runs %v by 03:00 on the 28th, want [a b a b]", got)
	}
}

// TestHostileClockFarAheadAtBootThenCorrectedRunsLeapDay: serve starts on a
// clock in 2097 (a bad hardware clock at boot), where a 29 February schedule
// has no time within the five years robfig/cron searches (2100 is no leap
// year): it says so, once. NTP then sets the clock right, the day before a
// leap day: the schedule must run on it. Before, the loop waited for the
// daemon's end as for a schedule that never fires: no run ever again.
func TestHostileClockFarAheadAtBootThenCorrectedRunsLeapDay(t *testing.T) {
	boot := time.Date(2097, 6, 1, 12, 0, 0, 0, time.UTC)
	s := newSteppedRuns(t, "0 0 29 2 *", boot.Sub(t0))
	s.start()
	s.tick(1)
	s.tick(1)
	right := time.Date(2028, 2, 28, 23, 0, 0, 0, time.UTC)
	s.asleep(1)
	s.clk.step(right.Sub(s.clk.Now()))
	leap := time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC)
	s.tickUntil(1, s.clk.Now, leap)
	s.ran(1)
	if got := s.runs(); !slices.EqualFunc(got, []time.Time{leap}, time.Time.Equal) {
		t.Errorf("runs at %v, want one at %v", got, leap)
	}
	if n := s.logs.FilterMessageSnippet("no time within five years").Len(); n != 1 {
		t.Errorf("%d log lines say the schedule has no time, want 1 (at boot, not every minute)", n)
	}
}
