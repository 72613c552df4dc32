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
// "@daily" and "0 0 * * *" are two groups that both run at midnight (and the
// second of them is skipped as overlapping); write them the same to merge them.
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
// up. A wall clock set back while a group sleeps does not make it run early:
// its time is judged again on the clock as it now is, and it sleeps until
// then (robfig/cron sleeps until the time computed on the old clock, days
// for a clock corrected by days: robfig/cron#352). One set forward makes it
// run late, by the step, since the sleep is a timer on elapsed time (cron's
// too).
type scheduler struct {
	cancel context.CancelFunc
	loops  sync.WaitGroup
}

// startScheduler starts a loop per group of gen; nexts are the groups' first
// times, as start logged them.
func (d *Daemon) startScheduler(gen *generation, nexts []time.Time) *scheduler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &scheduler{cancel: cancel}
	for i, g := range gen.groups {
		s.loops.Go(func() { d.scheduleLoop(ctx, gen, g, nexts[i]) })
	}
	return s
}

// stop ends the loops and returns when they have: no run starts from this
// scheduler afterwards. Runs it started go on (they are in d.jobs).
func (s *scheduler) stop() {
	s.cancel()
	s.loops.Wait()
}

func (d *Daemon) scheduleLoop(ctx context.Context, gen *generation, g *group, next time.Time) {
	for {
		if next.IsZero() {
			// Schedule.Next found no time within five years (robfig/cron
			// then never runs the entry either).
			d.log.Warn("schedule never fires; its policies do not run", zap.String("schedule", g.Schedule))
			<-ctx.Done()
			return
		}
		if err := d.clock.Sleep(ctx, next.Sub(d.clock.Now())); err != nil || ctx.Err() != nil {
			return
		}
		if now := d.clock.Now(); now.Before(next) {
			// Woken before the time: the wall clock was set back while
			// the loop slept (the timer counts elapsed time). The time is
			// judged again on the clock as it now is: the group's first
			// time at or after now (Next gives the first whole second
			// after its argument). Set back a little, that is still the
			// time slept for, and the loop sleeps the rest rather than
			// run early and again at the time. Set back by days (a clock
			// that was ahead, at boot, and that NTP corrected) it is the
			// schedule's time on the corrected clock: sleeping until the
			// time computed on the wrong one would run nothing for days.
			next = g.sched.Next(now.In(gen.loc).Add(-time.Second))
			if next.IsZero() || next.After(now) {
				continue
			}
		}
		d.jobs.Go(d.guard(func() { d.runOnce(gen, g.Group, g.cfg, "schedule") }))
		next = g.sched.Next(d.clock.Now().In(gen.loc))
	}
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
