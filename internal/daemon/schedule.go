package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/policy"
)

// Group is a set of policies that share one schedule string and therefore run
// together: one inventory, one plan.
type Group struct {
	// Schedule is the cron spec as written (5 fields or a descriptor such as
	// "@daily" or "@every 1h").
	Schedule string `json:"schedule"`
	// Policies are the names of the group's policies, in file order.
	Policies []string `json:"policies"`
}

// Groups returns the schedule groups of cfg: policies with an equal schedule
// string (their own, or the config's default) in one group, groups ordered by
// their first policy in the file. Schedules are compared as written, so
// "@daily" and "0 0 * * *" are two groups that both run at midnight (the
// second waits at the gate for the first: two listings of the tenant); write
// them the same to merge them.
func Groups(cfg *policy.Config) ([]Group, error) {
	var (
		groups []Group
		index  = map[string]int{}
		errs   []error
	)
	for i, p := range cfg.AllPolicies() {
		spec := strings.TrimSpace(p.Schedule)
		if spec == "" {
			spec = strings.TrimSpace(cfg.Schedule)
		}
		if spec == "" {
			errs = append(errs, fmt.Errorf("policies[%d] %q: no schedule, and the config has no default schedule: serve needs one", i, p.Name))
			continue
		}
		if _, err := cron.ParseStandard(spec); err != nil {
			errs = append(errs, fmt.Errorf("policies[%d] %q: schedule %q: %w", i, p.Name, spec, err))
			continue
		}
		if gi, ok := index[spec]; ok {
			groups[gi].Policies = append(groups[gi].Policies, p.Name)
			continue
		}
		index[spec] = len(groups)
		groups = append(groups, Group{Schedule: spec, Policies: []string{p.Name}})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(groups) == 0 {
		return nil, errors.New("no policies to schedule")
	}
	return groups, nil
}

// Clock is the time the daemon schedules on. Sleep returns nil after d, or
// ctx's error when ctx ends first. *fakeclock.Clock implements it for tests.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// wallClock is the production Clock.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// scheduler is the running schedule of one generation: a loop per group.
//
// Why not robfig/cron's Cron: it reads the wall clock and its own timers, so
// tests of the daemon could only wait for real seconds to pass. The daemon
// uses cron for what it is good at, parsing a spec and computing its next
// time (Schedule.Next, in the config's time zone), and sleeps on its Clock.
// The behaviour is cron's: when a group's time comes, its run is started in
// its own goroutine (the gate decides whether it runs, waits or is skipped),
// and the group's next time is computed from the time it woke, so ticks
// missed while the process was stopped or the machine slept are not caught
// up one by one: they coalesce into one run.
//
// A schedule is a time on the wall clock, but a timer counts elapsed time
// (Go's run on the monotonic clock), which stops while the machine is
// suspended and ignores steps of the wall clock. A loop that slept the whole
// way to its time on one timer ran late by the step or the suspension (a VM
// suspended for six hours, a clock NTP set forward): robfig/cron's does. So
// a loop sleeps at most maxSleep at a time and reads the wall clock on each
// wake, as cronie re-reads it every minute, and a run that starts late says
// so in the log. See rejudge for a clock set back.
type scheduler struct {
	cancel context.CancelFunc
	loops  sync.WaitGroup
	loc    *time.Location
	mu     sync.Mutex
	// stopped is where each loop stood when it ended, by schedule.
	stopped map[string]loopState
}

// loopState is where a schedule loop stands: the time it waits for (next),
// the wall time its last run started (last) and the last slot it ran again
// after the clock was set back (reran: rejudge). A reload's
// loop of the same schedule goes on from it: from the schedule's next time
// after the reload instead, it dropped a run overdue when the reload came
// (the machine resumed, the clock set forward, and the reload came before
// the loop's wake: no run for an interval), and it forgot a run it had
// made (a clock set back afterwards ran that slot again).
type loopState struct {
	next, last, reran time.Time
}

// startScheduler starts a loop per group of gen from states, as start
// logged them.
func (d *Daemon) startScheduler(gen *generation, states []loopState) *scheduler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &scheduler{cancel: cancel, loc: gen.loc, stopped: map[string]loopState{}}
	for i, g := range gen.groups {
		s.loops.Go(func() {
			st := d.scheduleLoop(ctx, gen, g, states[i])
			s.mu.Lock()
			defer s.mu.Unlock()
			s.stopped[g.Schedule] = st
		})
	}
	return s
}

// stop ends the loops and returns when they have: no run starts from this
// scheduler afterwards. Runs it started go on (they are in d.jobs).
func (s *scheduler) stop() {
	s.cancel()
	s.loops.Wait()
}

// resume is where a loop of schedule in loc goes on from after a reload
// that stopped s: where s's loop of the same schedule stood, if it had one
// in the same time zone (a schedule's times are the zone's).
func (s *scheduler) resume(schedule string, loc *time.Location) (loopState, bool) {
	if s == nil || s.loc.String() != loc.String() {
		return loopState{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.stopped[schedule]
	return st, ok && !st.next.IsZero()
}

// maxSleep bounds one sleep of a schedule loop: a run is at most this late
// after the wall clock was set forward or the machine resumed, and an idle
// daemon wakes once a minute per schedule group.
const maxSleep = time.Minute

// lateAfter is how late a run must start to be logged as late: timers end
// milliseconds late, a step or a suspension seconds to years.
const lateAfter = time.Second

// scheduleLoop runs g's schedule from st until ctx ends, and returns where
// it stands then.
func (d *Daemon) scheduleLoop(ctx context.Context, gen *generation, g *group, st loopState) loopState {
	warned := false
	for {
		if st.next.IsZero() {
			// Schedule.Next found no time within the five years after
			// the clock. The config refuses a spec that never fires, so
			// the clock is far off: 29 February on a clock in 2097 to
			// 2099 (2100 is no leap year; a bad hardware clock at boot).
			// Judged again on each wake, as any time is: a loop that
			// waited for the end gave up for good, and the schedule ran
			// nothing after NTP set the clock right.
			if !warned {
				d.log.Warn("schedule has no time within five years of the clock; its policies do not run until the clock is set right",
					zap.String("schedule", g.Schedule), zap.Time("now", d.clock.Now()))
				warned = true
			}
			if err := d.clock.Sleep(ctx, maxSleep); err != nil || ctx.Err() != nil {
				return st
			}
			st.next = g.sched.Next(d.clock.Now().Round(0).In(gen.loc))
			continue
		}
		warned = false
		// The wall clock only (Round(0) drops time.Now's monotonic
		// reading): a schedule is a time on the wall, and last (below) is
		// compared with now. Two readings that both carry a monotonic
		// clock compare elapsed time, so that a run's last was always
		// before now, however far the wall clock was set back, and a
		// clock corrected back by days after a run kept the time
		// computed on the wrong one (rejudge).
		now := d.clock.Now().Round(0)
		if now.Before(st.next) {
			if err := d.clock.Sleep(ctx, min(st.next.Sub(now), maxSleep)); err != nil || ctx.Err() != nil {
				return st
			}
			if now = d.clock.Now().Round(0); now.Before(st.next) {
				d.rejudge(gen, g, &st, now)
				continue
			}
		}
		if late := now.Sub(st.next); late >= lateAfter {
			d.log.Warn("scheduled run is late: the wall clock was set forward, or the machine was suspended, while the schedule slept; "+
				"the slots missed meanwhile are coalesced into this one run",
				zap.String("schedule", g.Schedule), zap.Strings("policies", g.Policies),
				zap.Time("due", st.next), zap.Duration("late", late), zap.Int("missed", missed(g.sched, st.next.In(gen.loc), now)))
		}
		d.jobs.Go(d.guard(func() { d.runOnce(gen, g.Group, g.cfg, "schedule") }))
		st.last = now
		st.next = g.sched.Next(now.In(gen.loc))
	}
}

// rejudge sets st.next, the group's time, after a wake at now, before it:
// the time it slept for, unless the wall clock was set back. Set back a
// little, next is still the time to run at, and the loop sleeps on rather
// than run early and again at the time. Set back by days (a clock that was ahead, at boot, and
// that NTP corrected), the schedule's next time on the corrected clock is
// earlier, and sleeping until the time computed on the wrong one would run
// nothing for days (robfig/cron does: robfig/cron#352). The earlier of the
// two is taken, so that a wake never delays a run.
//
// Except that a slot already run is not run again: a clock set back behind
// the group's last run (st.last) by at most tenant.maxClockSkew (and less than
// the schedule's interval) keeps next, the slot after that run (a daily
// 03:00 run, a clock set back three minutes at 03:01: 03:00 comes round
// again on the wall, and ran). Set back further, the run was made on a
// clock that far ahead of the corrected one, further than the engine
// accepts from the tenant's Date: it was refused and decided nothing, and
// the slot runs when it comes on the corrected clock. (Keeping next up to a
// whole interval lost that slot: a daily janitor whose clock was ten
// minutes ahead ran nothing that day, a monthly one nothing that month.)
//
// But a slot runs again so at most once (st.reran is the last time taken so;
// a time before the schedule's next after it is not): which of two clocks
// is right cannot be told when they keep taking turns (a hypervisor's time
// sync fighting NTP), and a loop that took the slot for one to come on
// every step back ran it again on every step forward, every other minute
// for as long as the clocks fought. An @every schedule has no slots (its
// time at or after now moves with now), so it is its interval after reran
// that a time must reach: compared with reran itself, every step back was
// a new time, and @every 1h ran every other minute.
func (d *Daemon) rejudge(gen *generation, g *group, st *loopState, now time.Time) {
	// Next gives the first whole second after its argument: its time at or
	// after now.
	t := g.sched.Next(now.In(gen.loc).Add(-time.Second))
	if t.IsZero() || !t.Before(st.next) {
		return
	}
	if last := st.last; !last.IsZero() {
		// t comes round again on a clock set back behind the last run.
		if last.Sub(now) <= min(g.sched.Next(last.In(gen.loc)).Sub(last), maxClockSkew(g.cfg)) ||
			!st.reran.IsZero() && t.Before(g.sched.Next(st.reran.In(gen.loc))) {
			return
		}
		st.reran = t
	}
	// Said, as a late run is: a run that comes earlier than the last
	// "scheduled" line said is otherwise unexplained.
	d.log.Info("schedule judged again: the wall clock was set back while it slept; it runs at its time on the clock as it now is",
		zap.String("schedule", g.Schedule), zap.Strings("policies", g.Policies),
		zap.Time("was", st.next), zap.Time("next", t))
	st.next = t
}

// maxClockSkew is cfg's tenant.maxClockSkew: how far a host clock may be
// from the tenant's for a run to decide anything.
func maxClockSkew(cfg *policy.Config) time.Duration {
	if cfg.Tenant.MaxClockSkew <= 0 {
		// A Config not made by policy.Load (tests, embedders).
		return policy.DefaultMaxClockSkew
	}
	return cfg.Tenant.MaxClockSkew
}

// maxMissed bounds the count of missed slots a late run logs: an @every 1m
// schedule on a clock set forward by years would count for seconds.
const maxMissed = 100_000

// missed is how many of sched's slots after due passed by now, up to
// maxMissed: the late run is for all of them and due.
func missed(sched cron.Schedule, due, now time.Time) int {
	n := 0
	for t := sched.Next(due); !t.IsZero() && !t.After(now) && n < maxMissed; t = sched.Next(t) {
		n++
	}
	return n
}

// guard wraps a run in robfig/cron's panic guard: a panic in the engine is
// logged with its stack and ends that run only (runOnce's deferred release
// frees the gate for the next).
func (d *Daemon) guard(run func()) func() {
	return cron.Recover(cronLogger{log: d.log.Named("cron")})(cron.FuncJob(run)).Run
}

// cronLogger routes robfig/cron's logging through zap: the errors of its
// panic guard (a recovered panic) stay errors; its Info messages, which the
// daemon does not produce any more, would be debug-level.
type cronLogger struct{ log *zap.Logger }

var _ cron.Logger = cronLogger{}

func (l cronLogger) Info(msg string, keysAndValues ...any) {
	if ce := l.log.Check(zap.DebugLevel, msg); ce != nil {
		ce.Write(kvFields(keysAndValues)...)
	}
}

func (l cronLogger) Error(err error, msg string, keysAndValues ...any) {
	l.log.Error(msg, append(kvFields(keysAndValues), zap.Error(err))...)
}

// kvFields turns cron's alternating keys and values into zap fields. A key
// that is not a string, or a missing value, is kept under a made-up key rather
// than dropped: a log line should never lose data silently.
func kvFields(kv []any) []zap.Field {
	fields := make([]zap.Field, 0, (len(kv)+1)/2)
	for i := 0; i < len(kv); i += 2 {
		key, ok := kv[i].(string)
		if !ok {
			key = fmt.Sprintf("arg%d", i)
		}
		if i+1 >= len(kv) {
			fields = append(fields, zap.Any(key, nil))
			break
		}
		fields = append(fields, zap.Any(key, kv[i+1]))
	}
	return fields
}
