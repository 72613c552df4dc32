package janitor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/policy"
)

// Every decision is a comparison with now: unusedFor cutoffs, grace
// deadlines, disabledFor, the settle margin of confirmed changes, plan
// ages. A host whose clock jumped days ahead (a VM resumed with a bad RTC,
// NTP broken) would find every grace deadline past at once; a proxy that
// serves a stored listing has the run decide on lastUsed values hours or
// days old. The tenant's Date header is a clock independent of the host's:
// a listing answered with a Date far from the host's clock when the answer
// arrived means one of the two is wrong, and the run decides nothing
// (incomplete data: nothing is sent, marked or judged).

// ClockSkewError is a listing whose Date is further from this host's clock
// than tenant.maxClockSkew.
type ClockSkewError struct {
	// Host is this host's clock when the answer's headers arrived, Tenant
	// the answer's Date.
	Host, Tenant time.Time
	// Skew is Host minus Tenant; Max is tenant.maxClockSkew.
	Skew, Max time.Duration
	// Stepped, when set, is the host's clock when the answer arrived, which
	// agreed with the tenant: Host is then the run's clock, read at its
	// start and carried forward, and the host's clock was stepped between.
	Stepped time.Time
}

func (e *ClockSkewError) Error() string {
	dir := "ahead of"
	if e.Skew < 0 {
		dir = "behind"
	}
	if !e.Stepped.IsZero() {
		return fmt.Sprintf("this host's clock was stepped during the run: it read %s when the answer arrived, as the tenant's Date header says (%s), "+
			"but the run decides with the time it read at its start, which carried forward to the answer is %s, %s %s the tenant, more than tenant.maxClockSkew (%s). "+
			"Check NTP (chronyc tracking, timedatectl status); the next run reads a clock that has settled; "+
			"nothing is decided on a wrong clock",
			e.Stepped.UTC().Format(time.RFC3339), e.Tenant.UTC().Format(time.RFC3339), e.Host.UTC().Format(time.RFC3339),
			e.shownSkew(), dir, e.Max)
	}
	return fmt.Sprintf("this host's clock read %s when the answer arrived, the tenant's Date header says %s: "+
		"the host is %s %s the tenant, more than tenant.maxClockSkew (%s). "+
		"Either this host's clock is wrong (check NTP: chronyc tracking, timedatectl status) "+
		"or a proxy or cache between patjanitor and the tenant served a stored answer (check for caching of the API paths); "+
		"nothing is decided on a wrong clock",
		e.Host.UTC().Format(time.RFC3339), e.Tenant.UTC().Format(time.RFC3339),
		e.shownSkew(), dir, e.Max)
}

// shownSkew is |Skew| in whole seconds, as a Date has them, unless rounding
// would show it within Max: a refusal at 5m0.4s does not say "5m0s, more
// than 5m0s".
func (e *ClockSkewError) shownSkew() time.Duration {
	if d := e.Skew.Abs().Round(time.Second); d > e.Max {
		return d
	}
	return e.Skew.Abs()
}

// clockCheck compares the Dates of one run's listings with the host's
// clock. One per run: an answer without a Date is warned about once.
type clockCheck struct {
	e *Engine
	// now is the time the run decides with, read at its start (zero: the
	// answers are judged by the clock at their arrival only). A wall clock
	// stepped between that reading and the answer's arrival (NTP correcting
	// a VM resumed with a bad clock) agrees with the tenant at the arrival
	// while every decision is made with the time it read before: the Date
	// is compared with both.
	now    time.Time
	warned bool
	// dated and undated: some listing of the run had a usable Date, some
	// had none. A proxy strips the Date of all its answers or of none; a
	// run with both is served by something that treats answers unlike,
	// such as a cache that strips the Date of what it stored.
	dated, undated bool
	// noGauge: the answers are not listings (owner lookups), and do not
	// set tenant_clock_skew_seconds.
	noGauge bool
	// measured: a listing of the run set tenant_clock_skew_seconds (a
	// value, or absent for an answer without a Date).
	measured bool
	// worst is the skew furthest off of the run's listings so far: the
	// gauge shows it, not the last listing's, or a fresh API client
	// listing checked after a stored token listing would hide the
	// refusal's cause from PatjanitorClockSkew.
	worst *time.Duration
}

// followUpCheck is the check of an answer that is not one of the run's
// listings but feeds its decisions (an owner lookup, the own tokens): it
// sets no tenant_clock_skew_seconds (the gauge is of the listings) and
// does not warn again of a missing Date (the listings did). It is judged
// with what the run's listings said, when run is not nil: an answer
// without a Date where they had one (a cache that strips the Date of what
// it stored) is not the tenant's answer either.
func (e *Engine) followUpCheck(run *clockCheck) *clockCheck {
	cc := &clockCheck{e: e, warned: true, noGauge: true}
	if run != nil {
		cc.now, cc.dated, cc.undated = run.now, run.dated, run.undated
	}
	return cc
}

// answerDate is what one listing's answers said of the time.
type answerDate struct {
	seen bool      // a successful answer arrived
	ok   bool      // one had a usable Date: the one furthest off below
	date time.Time // its Date
	at   time.Time // the host's clock when its headers arrived
	// undated: an answer of the listing (a page, a probe, one of several
	// Date fields) had no usable Date.
	undated bool
}

// watch returns a context under which a listing call records its answer's
// Date in d. The host's clock is read when the headers arrive, not when
// the call returns: a listing of a million tokens takes seconds to read.
// Of several answers (retries, pages, Date fields) d keeps the one furthest
// off: one stored page is enough to distrust the listing.
func (cc *clockCheck) watch(ctx context.Context, d *answerDate) context.Context {
	return api.WithDate(ctx, func(date time.Time, ok bool) {
		a := answerDate{seen: true, ok: ok, date: date, at: cc.e.now()}
		d.undated = d.undated || !ok
		if !d.ok || (a.ok && cc.skew(&a).Abs() > cc.skew(d).Abs()) {
			a.undated = d.undated
			*d = a
		}
	})
}

// runClock is the run's clock (now) carried forward to at: the time elapsed
// since the run read it is measured on the monotonic clock when both
// readings have one (time.Now's), so that a step of the wall clock between
// them does not move it. (An injected clock has no monotonic reading: one
// that went back is taken as no time elapsed.)
func (cc *clockCheck) runClock(at time.Time) time.Time {
	if cc.now.IsZero() {
		return at
	}
	return cc.now.Add(max(at.Sub(cc.now), 0))
}

// skew is how far the host's clock is ahead of d's Date (behind:
// negative): its reading at the arrival or the run's clock carried forward
// to it, whichever is further off, since the run decides with the latter.
// (A Date has no monotonic reading: the differences are of wall clocks.
// A Date more than 292 years off saturates Sub at the minimum Duration,
// whose negation is itself; Duration.Abs makes it the maximum, where -d
// would read a Date in year 9999 as no skew at all.)
func (cc *clockCheck) skew(d *answerDate) time.Duration {
	at, run := d.at.Sub(d.date), cc.runClock(d.at).Sub(d.date)
	if run.Abs() > at.Abs() {
		return run
	}
	return at
}

// errMixedDates: the answers of a run are not all alike. (A dated one far
// off is refused for the clock first: that says more.)
var errMixedDates = errors.New("some of the run's answers carry a Date header and some none (or one that is not an HTTP date): " +
	"something between patjanitor and the tenant treats answers unlike, as a cache that strips the Date of what it stored does; " +
	"an answer without a Date cannot be checked against this host's clock (tenant.maxClockSkew)")

// clockMetrics is the optional tenant_clock_skew_seconds gauge;
// *metrics.Metrics implements it.
type clockMetrics interface {
	SetTenantClockSkew(skew *time.Duration)
}

// check judges one listing's answer: a *ClockSkewError when its Date is
// too far from the host's clock. An answer without a usable Date passes (a
// proxy that strips the header must not stop a working deployment), with a
// warning once per run, unless another answer of the run had one: then the
// answers are not all the tenant's as it answered, and the listing is
// incomplete data.
func (cc *clockCheck) check(listing string, d *answerDate) error {
	if !d.seen {
		return nil
	}
	cm, _ := cc.e.metrics.(clockMetrics)
	if cc.noGauge {
		cm = nil
	}
	if !d.ok {
		if cc.dated {
			return errMixedDates
		}
		cc.undated = true
		if cm != nil {
			cm.SetTenantClockSkew(nil)
			cc.measured = true
		}
		if !cc.warned {
			cc.warned = true
			cc.e.log.Warn("the tenant's answer has no usable Date header: this host's clock cannot be checked against the tenant's (is a proxy stripping it?)",
				zap.String("listing", listing))
		}
		return nil
	}
	cc.dated = true
	skew := cc.skew(d)
	if cc.worst == nil || skew.Abs() > cc.worst.Abs() {
		cc.worst = &skew
	}
	if cm != nil {
		cm.SetTenantClockSkew(cc.worst)
		cc.measured = true
	}
	limit := cc.e.cfg.Tenant.MaxClockSkew
	if limit <= 0 {
		// A Config not made by policy.Load (tests, embedders).
		limit = policy.DefaultMaxClockSkew
	}
	if skew.Abs() <= limit {
		if d.undated || cc.undated {
			return errMixedDates
		}
		return nil
	}
	if at := d.at.Sub(d.date); at.Abs() <= limit {
		return &ClockSkewError{Host: cc.runClock(d.at), Tenant: d.date, Skew: skew, Max: limit, Stepped: d.at}
	}
	return &ClockSkewError{Host: d.at, Tenant: d.date, Skew: d.at.Sub(d.date), Max: limit}
}

// unmeasured removes tenant_clock_skew_seconds when none of the run's
// listings set it (they failed: refused credentials, an error status, a
// body cut short). The gauge is the skew of the last run's listings, and
// PatjanitorClockSkew says so: a skew an earlier run measured, shown after
// a run that read no Date, would pass for the current one (hours old, on a
// dashboard; an alert firing on a clock fixed since). Unknown is absent, as
// for answers without a Date; the failure itself is
// runs_total{result="failed"}'s. Called once the run has listed everything
// (listedAll), not between its token and API client listings: a series
// absent for a moment within a run would resolve PatjanitorClockSkew and
// fire it again.
func (cc *clockCheck) unmeasured() {
	if cm, ok := cc.e.metrics.(clockMetrics); ok && !cc.measured && !cc.noGauge {
		cm.SetTenantClockSkew(nil)
	}
}

// listedAll is called once the run has listed everything, the API
// clients after the tokens (they share the check): a run whose token
// listings failed and whose API client listing answered measured a skew.
// Not from observePlan, which ApplyPlan calls for its fresh decisions
// before it lists the API clients.
func (inv *Inventory) listedAll() {
	if inv.clock != nil {
		inv.clock.unmeasured()
	}
}

// clockRefused reports whether a listing of the run (tokens or API
// clients) was refused for the clock: the run then writes no mark, of
// either resource, and leaves the outbox alone (alertAroundOutbox).
func (pl *Planned) clockRefused() bool {
	var ce *ClockSkewError
	if errors.As(pl.Err, &ce) {
		return true
	}
	return pl.clients != nil && errors.As(pl.clients.err, &ce)
}

// directNotifier delivers one message now, without the outbox;
// *notify.Dispatcher implements it.
type directNotifier interface {
	Deliver(ctx context.Context, m *notify.Message) notify.Result
}

// alertAroundOutbox sends the failure alert and the summary of a run
// refused for the clock straight to their receivers. Not through the
// outbox: a dispatch delivers every queued message with this host's clock,
// which the run found wrong or could not trust, and a queued digest
// delivered then starts its grace clock at that time (a host 30 days
// behind would set a deadline already past once the clock is fixed) and
// an old message expires by it. The outbox waits for a run whose clock
// agrees with the tenant's. A failed delivery is not retried later: the
// run's failure shows in runs_total and tenant_clock_skew_seconds too.
func (e *Engine) alertAroundOutbox(ctx context.Context, msgs []*notify.Message, log *zap.Logger) {
	d, ok := e.notify.(directNotifier)
	for _, m := range msgs {
		if m.Kind != notify.KindFailure && m.Kind != notify.KindSummary {
			continue // no owner is warned or told on a wrong clock
		}
		if !ok {
			log.Warn("the notifier cannot deliver around its outbox: the failure alert of a run refused for the clock is not sent",
				zap.String("receiver", m.Receiver))
			continue
		}
		if r := d.Deliver(ctx, m); r.Outcome != notify.Sent {
			log.Error("could not send the failure alert of a run refused for the clock", zap.String("receiver", m.Receiver),
				zap.String("kind", string(m.Kind)), zap.Error(r.Err))
		}
	}
}

// clockJudged is a refusal of a saved plan that this host's clock decided
// (its age): see ClockJudged.
type clockJudged struct{ msg string }

func (e *clockJudged) Error() string { return e.msg }

// ClockJudged reports whether err is a saved plan's refusal that this
// host's clock decided (too old, generated in the future): ConfirmRefusal
// before it is made.
func ClockJudged(err error) bool { return errors.As(err, new(*clockJudged)) }

// ConfirmRefusal is called before a saved plan's refusal is journaled, when
// this host's clock may have decided it (a plan too old or from the future,
// a signature outside its valid-after/valid-before) or the refusal's notice
// would dispatch the outbox. It compares this host's clock with the
// tenant's on the listing of the never-used tokens (the smallest listing
// every deployment may make, read and dropped as it arrives). On a host 30
// days ahead every approved plan would be rejected as too old, its
// reviewers' approval spent, and its notice would deliver a queued digest
// with the wrong clock (alertAroundOutbox says what that does).
//
// It returns nil when the tenant's clock confirms this host's (or cannot be
// read: no usable Date, as in a run), else an error saying why the refusal
// was not made: the caller neither journals nor notifies it, and leaves the
// plan for a later attempt.
func (e *Engine) ConfirmRefusal(ctx context.Context, refusal error) error {
	cc := &clockCheck{e: e, now: e.now()}
	var d answerDate
	l := pat.Listing{Kind: pat.ListNeverUsed}
	_, err := e.streamTokens(cc.watch(ctx, &d), api.ListOptions{Filters: api.Filter(l), Budget: e.listingBudget()}, discardTokens{})
	if err != nil {
		err = fmt.Errorf("list %s to check this host's clock against the tenant's: %w", describeListing(l), err)
	} else {
		err = cc.check(describeListing(l), &d)
	}
	if err != nil {
		return fmt.Errorf("%w; the plan would have been refused (%v), but that was judged on this host's clock, "+
			"which the tenant's does not confirm: the refusal is not made (nothing journaled, nothing sent), and the plan is judged again later", err, refusal)
	}
	return nil
}

// discardTokens is a listing read for its Date only.
type discardTokens struct{}

func (discardTokens) Token(*pat.Token) error { return nil }
func (discardTokens) Reset()                 {}
