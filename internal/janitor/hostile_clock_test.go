package janitor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/notify/notifytest"
	"github.com/patjanitor/patjanitor/internal/state"
)

// skewGauge reads patjanitor_tenant_clock_skew_seconds (ok false when the
// series is absent).
func (g *graceEnv) skewGauge() (float64, bool) {
	g.t.Helper()
	fams, err := g.reg.Gather()
	if err != nil {
		g.t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "patjanitor_tenant_clock_skew_seconds" && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// failedRuns reads runs_total{result="failed"}: serve's PatjanitorRunsFailing.
func (g *graceEnv) failedRuns() float64 {
	g.t.Helper()
	fams, err := g.reg.Gather()
	if err != nil {
		g.t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "patjanitor_runs_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "result" && lp.GetValue() == "failed" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// warnDay0 runs day 0 on the shared clock: the three stale tokens are
// marked, their owners warned, the deadlines set to day 14.
func warnDay0(t *testing.T, g *graceEnv) {
	t.Helper()
	g.addStale("g", 3, 2)
	g.run()
	g.requireNoMutations()
	if n := len(g.marks()); n != 3 {
		t.Fatalf("day 0: %d marks, want 3", n)
	}
	g.hook.Take()
}

// requireClockRefusal checks a run refused for a wrong clock: the error
// names both times, the difference and the two causes; nothing but
// listings reached the tenant; the marks are as they were; no owner was
// warned or told; the journal holds nothing more (a run blocked before any
// action journals nothing, as on any incomplete data).
func requireClockRefusal(t *testing.T, g *graceEnv, err error, res *janitor.Result, marks map[string]state.Mark, journaled int, wantErr ...string) {
	t.Helper()
	requireRefusal(t, g, err, res, marks, journaled, append([]string{"NTP", "proxy or cache", "stored answer"}, wantErr...)...)
}

// requireRefusal is requireClockRefusal without the causes the message
// names (a clock stepped during the run has one cause).
func requireRefusal(t *testing.T, g *graceEnv, err error, res *janitor.Result, marks map[string]state.Mark, journaled int, wantErr ...string) {
	t.Helper()
	for _, r := range g.sim.Requests() {
		if r.Method != http.MethodGet && r.Path != "/oauth/token" {
			t.Errorf("the tenant received %s %s", r.Method, r.Path)
		}
	}
	g.requireNoMutations()
	var ce *janitor.ClockSkewError
	if !errors.As(err, &ce) {
		t.Fatalf("run error = %v, want a *ClockSkewError", err)
	}
	for _, w := range append([]string{"nothing will be changed", "tenant.maxClockSkew (5m0s)", "NTP"}, wantErr...) {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("run error does not say %q:\n%v", w, err)
		}
	}
	if res == nil || !res.NothingSent() {
		t.Fatalf("result %+v, want a result with nothing sent", res)
	}
	if got, want := mustJSON(t, g.marks()), mustJSON(t, marks); got != want {
		t.Errorf("marks changed by the refused run:\n got %s\nwant %s", got, want)
	}
	msgs := g.hook.Take()
	if n := len(notifytest.OfKind(msgs, notify.KindDigest)) + len(notifytest.OfKind(msgs, notify.KindNotice)); n != 0 {
		t.Errorf("%d owner digests or notices sent by the refused run, want none", n)
	}
	fails := notifytest.OfKind(msgs, notify.KindFailure)
	if len(fails) != 1 || !strings.Contains(fails[0].Failure.Error, "tenant.maxClockSkew") {
		t.Errorf("failure alerts %+v, want one naming the clock", fails)
	}
	if n := g.failedRuns(); n != 1 {
		t.Errorf("runs_total{result=\"failed\"} = %v, want 1", n)
	}
	if n := len(g.journalRecords()); n != journaled {
		t.Errorf("journal holds %d records after the refused run, want %d (unchanged)", n, journaled)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A host whose clock jumped 30 days ahead (a VM resumed with a bad RTC)
// finds every grace deadline past. Before the check, it deleted every
// marked token at once, 16 days before its owner's deadline; now the
// tenant's Date shows the host's clock wrong and the run acts on nothing.
func TestHostileHostClockAheadKeepsGraceDeadlines(t *testing.T) {
	g := newGraceEnv(t, graceConfig)
	warnDay0(t, g)
	marks, journaled := g.marks(), len(g.journalRecords())
	g.sim.ResetRequests()

	// Day 1 on the tenant, day 31 on the host.
	g.clock.Set(at(1))
	host := func() time.Time { return g.clock.Now().Add(30 * day) }
	res, err := g.engine(func(o *janitor.Options) { o.Now = host }).Run(context.Background(), janitor.RunInput{})
	requireClockRefusal(t, g, err, res, marks, journaled,
		"2026-12-27T03:00:00Z", "2026-11-27T03:00:00Z", "720h0m0s ahead of")
	if v, ok := g.skewGauge(); !ok || v != (30*day).Seconds() {
		t.Errorf("tenant_clock_skew_seconds = %v (present %v), want %v", v, ok, (30 * day).Seconds())
	}
	for _, id := range []string{"g-000", "g-001", "g-002"} {
		if !g.present(id) {
			t.Errorf("%s deleted before its deadline", id)
		}
	}
}

// stalingProxy stands between patjanitor and the tenant like a caching
// gateway: once told to hold, it answers a token listing it has seen (by
// path and query) with the answer it stored, Date included, and passes
// everything else through.
type stalingProxy struct {
	next  http.Handler
	mu    sync.Mutex
	store map[string]*httptest.ResponseRecorder
	hold  bool
}

func (p *stalingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.URL.Path != "/v3/personal-access-tokens" {
		p.next.ServeHTTP(w, r)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	rec := p.store[r.URL.RequestURI()]
	if !p.hold || rec == nil {
		rec = httptest.NewRecorder()
		p.next.ServeHTTP(rec, r)
		if p.store == nil {
			p.store = map[string]*httptest.ResponseRecorder{}
		}
		p.store[r.URL.RequestURI()] = rec
	}
	maps.Copy(w.Header(), rec.Header())
	w.WriteHeader(rec.Code)
	_, _ = io.Copy(w, bytes.NewReader(rec.Body.Bytes()))
}

// A proxy that serves the token listing it stored on day 0: on day 14 the
// listing still shows g-001 unused, although its owner used it on day 8.
// Before the check the run deleted it; the Date of the stored answer (14
// days old) now refuses the run.
func TestHostileProxyServesStoredListing(t *testing.T) {
	proxy := &stalingProxy{}
	// maxActionsPercent: one unfiltered listing, the same URL every day
	// (a filtered one's cutoff moves with the clock, and misses the cache).
	cfg := strings.Replace(graceConfig, "maxActionsPercent: 0", "maxActionsPercent: 100", 1)
	g := newGraceEnvOpts(t, cfg, envOpts{wrap: func(h http.Handler) http.Handler { proxy.next = h; return proxy }})
	warnDay0(t, g)
	marks, journaled := g.marks(), len(g.journalRecords())
	proxy.mu.Lock()
	proxy.hold = true
	proxy.mu.Unlock()

	g.sim.Touch("g-001", at(8))
	g.clock.Set(at(14))
	g.sim.ResetRequests()
	res, err := g.engine().Run(context.Background(), janitor.RunInput{})
	requireClockRefusal(t, g, err, res, marks, journaled, "336h0m0s ahead of")
	if !g.present("g-001") {
		t.Fatal("g-001, used on day 8, was deleted on a stored listing")
	}
}

// Within tenant.maxClockSkew the run goes ahead: a host 2 minutes ahead
// acts on the deadlines, and the gauge shows the difference.
func TestHostileClockWithinToleranceActs(t *testing.T) {
	for _, off := range []time.Duration{2 * time.Minute, -2 * time.Minute} {
		t.Run(off.String(), func(t *testing.T) {
			g := newGraceEnv(t, graceConfig)
			warnDay0(t, g)
			g.clock.Set(at(14).Add(5 * time.Minute)) // past the deadlines on both clocks
			host := func() time.Time { return g.clock.Now().Add(off) }
			if _, err := g.engine(func(o *janitor.Options) { o.Now = host }).Run(context.Background(), janitor.RunInput{}); err != nil {
				t.Fatalf("run %s off: %v", off, err)
			}
			if del := deletedIDs(g.mutations()); len(del) != 3 {
				t.Fatalf("deleted %v, want the 3 due tokens", del)
			}
			if v, ok := g.skewGauge(); !ok || v != off.Seconds() {
				t.Errorf("tenant_clock_skew_seconds = %v (present %v), want %v", v, ok, off.Seconds())
			}
		})
	}
}

// dateless strips the Date header from every answer, as some proxies do.
// (A test proxy: net/http adds a Date to any answer whose handler set
// none, so it is removed by setting the key to nil before the headers go.)
type dateless struct{ http.ResponseWriter }

func (w dateless) WriteHeader(code int) {
	w.Header()["Date"] = nil
	w.ResponseWriter.WriteHeader(code)
}

func (w dateless) Write(b []byte) (int, error) {
	w.Header()["Date"] = nil
	return w.ResponseWriter.Write(b)
}

func (w dateless) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// An answer without a Date cannot be checked: the run goes ahead as it did
// before the check (a proxy that strips the header must not stop a working
// deployment), with one warning per run, and the gauge is absent.
func TestHostileNoDateHeaderWarnsOnce(t *testing.T) {
	strip := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(dateless{w}, r) })
	}
	// Two listings (never used, lastUsed before the cutoff) in one run.
	g := newGraceEnvOpts(t, graceConfig, envOpts{wrap: strip})
	warnDay0(t, g)
	g.clock.Set(at(14))
	g.logs.Reset()
	res := g.run()
	if del := deletedIDs(g.mutations()); len(del) != 3 {
		t.Fatalf("deleted %v, want the 3 due tokens", del)
	}
	if n := len(res.Plan.Listings); n < 2 {
		t.Fatalf("%d listings, want at least 2 to show one warning per run", n)
	}
	if n := strings.Count(g.logs.String(), "no usable Date header"); n != 1 {
		t.Errorf("%d warnings about the missing Date, want 1:\n%s", n, g.logs.String())
	}
	if v, ok := g.skewGauge(); ok {
		t.Errorf("tenant_clock_skew_seconds = %v, want the series absent", v)
	}
}

// oldDate answers with the Date a stored answer would carry: two days old.
type oldDate struct {
	http.ResponseWriter
	date time.Time
}

func (w oldDate) WriteHeader(code int) {
	w.Header().Set("Date", w.date.Add(-2*day).UTC().Format(http.TimeFormat))
	w.ResponseWriter.WriteHeader(code)
}

func (w oldDate) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// The API client listing is checked too: answered by a cache (its Date two
// days old), it blocks every change of the run, the tokens' as on any
// incomplete API client listing. Before the check the full-scope client
// was disabled on that answer.
func TestHostileStoredAPIClientListingBlocksEveryChange(t *testing.T) {
	var c *clientEnv
	stale := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && r.URL.Path == "/v3/oauth-clients" {
				w = oldDate{w, c.clock.Now()}
			}
			h.ServeHTTP(w, r)
		})
	}
	c = newClientEnvOpts(t, "enforce", envOpts{wrap: stale})
	c.add("tok-stale", "owner-1", "stale", 400*day, 200*day)
	res, err := c.engine().Run(context.Background(), janitor.RunInput{})
	if m := idnsim.Mutations(c.sim.Requests()); len(m) != 0 {
		t.Fatalf("mutations on a stored API client listing: %+v", m)
	}
	var ce *janitor.ClockSkewError
	if !errors.As(err, &ce) || ce.Skew != 2*day {
		t.Fatalf("run error = %v, want a *ClockSkewError of 48h", err)
	}
	if res.Count(janitor.OutcomeBlocked) != 1 || !c.present("tok-stale") {
		t.Fatalf("token results %+v, want the token's delete blocked", res.Items)
	}
	if res.Plan.APIClients == nil || !strings.Contains(res.Plan.APIClients.Error, "tenant.maxClockSkew") {
		t.Fatalf("the plan does not name the clock: %+v", res.Plan.APIClients)
	}
}

// An owner lookup answered from a cache (its Date two days old) tells of
// identities as they were: it fails like any lookup that cannot be trusted,
// and the owner conditions match nothing this run. Before the check, the
// token of the owner the stored answer did not hold was deleted as
// ownerMissing.
func TestHostileStoredOwnerLookupMatchesNothing(t *testing.T) {
	var e *env
	stored := func(w http.ResponseWriter, r *http.Request) { e.sim.ServeHTTP(oldDate{w, e.clock.Now()}, r) }
	e, _, _ = hostileEnv(t, ownerMissingDelete, map[string]http.HandlerFunc{"GET /v3/public-identities": stored})
	tenOwnersAndOneGone(e)
	if _, err := e.engine().Run(context.Background(), janitor.RunInput{}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if del := deletedIDs(e.mutations()); len(del) != 0 {
		t.Fatalf("deleted %v on a stored owner lookup, want nothing", del)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "owner lookup failed") || !strings.Contains(logs, "tenant.maxClockSkew") {
		t.Fatalf("the log does not say the owner lookup failed for the clock:\n%s", logs)
	}
}

// A listing takes time to read (seconds for a million tokens; here the
// tenant sends its headers, then the body 10 minutes later): the Date is
// compared with the host's clock when the headers arrived, not when the
// listing ended, so a slow listing from a tenant whose clock agrees is not
// refused.
func TestHostileSlowListingIsJudgedWhenItsAnswerArrived(t *testing.T) {
	// read: the engine read its clock once armed is set, when the
	// listing's headers went out. Armed rather than drained: a read before
	// the headers (the run's start, the plan's now) must not count.
	read := make(chan struct{}, 1)
	var armed atomic.Bool
	var g *graceEnv
	slow := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || r.URL.Path != "/v3/personal-access-tokens" {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			maps.Copy(w.Header(), rec.Header())
			armed.Store(true) // reads of the clock before the headers go out do not count
			w.WriteHeader(rec.Code)
			_ = http.NewResponseController(w).Flush()
			select {
			case <-read: // the engine read its clock on the headers' arrival
			case <-time.After(time.Minute): // a hang guard, not a timing assumption
				t.Error("the engine did not read its clock when the listing's headers arrived")
			}
			g.clock.Advance(10 * time.Minute)
			_, _ = w.Write(rec.Body.Bytes())
		})
	}
	// One unfiltered listing: no other listing reads the clock meanwhile.
	cfg := strings.Replace(graceConfig, "maxActionsPercent: 0", "maxActionsPercent: 100", 1)
	g = newGraceEnvOpts(t, cfg, envOpts{wrap: slow})
	g.addStale("g", 1, 1)
	// The clock is read before the proxy is told: told first, the proxy
	// could advance the clock between the signal and the reading, and the
	// reading on the headers' arrival would see the body's time (the flake
	// of "the host is 10m0s ahead of the tenant" under load).
	now := func() time.Time {
		at := g.clock.Now()
		if armed.CompareAndSwap(true, false) {
			read <- struct{}{}
		}
		return at
	}
	if _, err := g.engine(func(o *janitor.Options) { o.Now = now }).Run(context.Background(), janitor.RunInput{}); err != nil {
		t.Fatalf("a listing read in 10 minutes was refused: %v", err)
	}
	if v, ok := g.skewGauge(); !ok || v != 0 {
		t.Errorf("tenant_clock_skew_seconds = %v (present %v), want 0", v, ok)
	}
	if len(g.marks()) != 1 {
		t.Errorf("marks %v, want the stale token marked", g.marks())
	}
}

// A run refused for the clock leaves the outbox alone: a digest an earlier
// run could not deliver waits for a run whose clock agrees with the
// tenant's. Delivered on a host 30 days behind, it started its mark's
// grace clock then, with a deadline already past once the clock was fixed:
// the token was deleted at the next run, its owner warned one run before.
// The failure alert still goes out, around the outbox.
func TestHostileHostClockBehindLeavesTheOutboxAlone(t *testing.T) {
	g := newGraceEnv(t, graceConfig)
	g.addStale("f", 1, 1)
	g.hook.Fail(http.StatusInternalServerError)
	g.run() // day 0: marked, the digest waits in the outbox
	g.hook.Fail(0)
	g.hook.Take()
	outbox, marks := mustJSON(t, g.outbox()), mustJSON(t, g.marks())
	if !strings.Contains(outbox, `"digest"`) {
		t.Fatalf("outbox %s: the digest is not waiting", outbox)
	}

	g.clock.Set(at(1))
	host := func() time.Time { return g.clock.Now().Add(-30 * day) }
	_, err := g.engine(func(o *janitor.Options) { o.Now = host }).Run(context.Background(), janitor.RunInput{})
	if !errors.As(err, new(*janitor.ClockSkewError)) || !strings.Contains(err.Error(), "720h0m0s behind the tenant") {
		t.Fatalf("run error = %v, want the clock refusal", err)
	}
	msgs := g.hook.Take()
	if n := len(notifytest.OfKind(msgs, notify.KindDigest)); n != 0 {
		t.Errorf("%d digests delivered by the run refused for the clock, want none", n)
	}
	if n := len(notifytest.OfKind(msgs, notify.KindFailure)); n != 1 {
		t.Errorf("%d failure alerts, want 1", n)
	}
	if got := mustJSON(t, g.marks()); got != marks {
		t.Errorf("marks changed:\n got %s\nwant %s", got, marks)
	}
	if got := mustJSON(t, g.outbox()); got != outbox {
		t.Errorf("outbox changed:\n got %s\nwant %s", got, outbox)
	}
}

// A gateway that answers 429 or 503 with an error page it stored (its Date
// two days old) before the retry reaches the tenant does not refuse the
// run: only the answers whose content the run reads are judged, and the
// retried ones are fresh.
func TestHostileStoredErrorAnswerBeforeAFreshRetryActs(t *testing.T) {
	for _, code := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			var g *graceEnv
			var armed atomic.Bool // from day 14's run on
			var mu sync.Mutex
			refused := map[string]bool{} // the listings answered with the stored error page once
			front := func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					first := armed.Load() && r.URL.Path == "/v3/personal-access-tokens" && !refused[r.URL.RawQuery]
					refused[r.URL.RawQuery] = refused[r.URL.RawQuery] || first
					mu.Unlock()
					if first {
						oldDate{w, g.clock.Now()}.WriteHeader(code)
						return
					}
					h.ServeHTTP(w, r)
				})
			}
			g = newGraceEnvOpts(t, graceConfig, envOpts{wrap: front})
			warnDay0(t, g)
			g.clock.Set(at(14))
			armed.Store(true)
			g.run()
			if del := deletedIDs(g.mutations()); len(del) != 3 {
				t.Fatalf("deleted %v, want the 3 due tokens", del)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(refused) < 2 {
				t.Fatalf("%d listings answered with the stored error page, want each of the run's (2)", len(refused))
			}
		})
	}
}

// A refusal just past the limit says by how much: rounded to whole seconds
// it read "5m0s ahead of the tenant, more than tenant.maxClockSkew (5m0s)".
func TestClockSkewErrorJustPastTheLimit(t *testing.T) {
	tenant := at(14)
	for _, tc := range []struct {
		skew time.Duration
		want string
	}{
		{5*time.Minute + 400*time.Millisecond, "the host is 5m0.4s ahead of the tenant"},
		{-5*time.Minute - 600*time.Millisecond, "the host is 5m1s behind the tenant"},
		{720 * time.Hour, "the host is 720h0m0s ahead of the tenant"},
	} {
		err := &janitor.ClockSkewError{Host: tenant.Add(tc.skew), Tenant: tenant, Skew: tc.skew, Max: 5 * time.Minute}
		if !strings.Contains(err.Error(), tc.want+", more than tenant.maxClockSkew (5m0s)") {
			t.Errorf("skew %s: %q, want %q", tc.skew, err.Error(), tc.want)
		}
	}
}
