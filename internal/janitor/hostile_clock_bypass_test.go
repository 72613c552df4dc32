package janitor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/metrics"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/notify/notifytest"
)

// extraDate adds a second Date field to an answer, as a proxy that stamps
// its own beside the one of the answer it stored.
type extraDate struct {
	http.ResponseWriter
	value string
}

func (w extraDate) WriteHeader(code int) {
	w.Header().Add("Date", w.value)
	w.ResponseWriter.WriteHeader(code)
}

func (w extraDate) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// A proxy serves the token listing it stored on day 0 and adds a Date of
// its own beside the stored one. Two Dates used to read as "no Date" and
// the run went ahead unchecked: g-001, used on day 8, was deleted on the
// stored listing. Each Date is judged now, and the stored one refuses the
// run for the clock whatever the other says.
func TestHostileSecondDateHeaderKeepsTheCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra func(now time.Time) string
	}{
		{"current", func(now time.Time) string { return now.UTC().Format(http.TimeFormat) }},
		{"garbled", func(time.Time) string { return "now" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := &stalingProxy{}
			var g *graceEnv
			front := func(h http.Handler) http.Handler {
				proxy.next = h
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					proxy.mu.Lock()
					hold := proxy.hold
					proxy.mu.Unlock()
					if hold && r.URL.Path == "/v3/personal-access-tokens" {
						w = extraDate{w, tc.extra(g.clock.Now())}
					}
					proxy.ServeHTTP(w, r)
				})
			}
			// One unfiltered listing (its URL does not move with the
			// clock) and the owner lookup's answers, both dated: the
			// listing's answer is the one with two Dates.
			cfg := strings.Replace(graceConfig, "maxActionsPercent: 0", "maxActionsPercent: 100", 1)
			g = newGraceEnvOpts(t, cfg, envOpts{wrap: front})
			warnDay0(t, g)
			marks, journaled := mustJSON(t, g.marks()), len(g.journalRecords())
			proxy.mu.Lock()
			proxy.hold = true
			proxy.mu.Unlock()

			g.sim.Touch("g-001", at(8))
			g.clock.Set(at(14))
			g.sim.ResetRequests()
			res, err := g.engine().Run(context.Background(), janitor.RunInput{})
			var ce *janitor.ClockSkewError
			if !errors.As(err, &ce) || ce.Skew != 14*day {
				t.Fatalf("run error = %v, want a *ClockSkewError of 14 days (the stored Date)", err)
			}
			g.requireNoMutations()
			if !g.present("g-001") {
				t.Fatal("g-001, used on day 8, was deleted on a stored listing")
			}
			if res == nil || !res.NothingSent() {
				t.Fatalf("result %+v, want nothing sent", res)
			}
			if got := mustJSON(t, g.marks()); got != marks {
				t.Errorf("marks changed:\n got %s\nwant %s", got, marks)
			}
			if n := len(g.journalRecords()); n != journaled {
				t.Errorf("journal holds %d records, want %d (unchanged)", n, journaled)
			}
		})
	}
}

// A listing's answer without a Date in a run whose other
// answers had one: a cache answers the lastUsed listing with what it
// stored on day 0 and strips its Date (the neverUsed listing, which it
// does not hold, keeps the tenant's). The undated answer used to pass with
// a warning, as when a proxy strips every Date, and g-001, used on day 8,
// was deleted on it. Answers that differ so are incomplete data now.
func TestHostileUndatedAnswerAmongDatedOnesBlocksTheRun(t *testing.T) {
	var (
		mu     sync.Mutex
		stored *httptest.ResponseRecorder
		hold   bool
	)
	cache := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v3/personal-access-tokens" || !strings.Contains(r.URL.Query().Get("filters"), "lastUsed le") {
				h.ServeHTTP(w, r)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if !hold || stored == nil {
				stored = httptest.NewRecorder()
				h.ServeHTTP(stored, r)
			}
			maps.Copy(w.Header(), stored.Header())
			if hold {
				w.Header()["Date"] = nil // nil: net/http adds none either
			}
			w.WriteHeader(stored.Code)
			_, _ = io.Copy(w, bytes.NewReader(stored.Body.Bytes()))
		})
	}
	g := newGraceEnvOpts(t, graceConfig, envOpts{wrap: cache})
	warnDay0(t, g)
	marks, journaled := mustJSON(t, g.marks()), len(g.journalRecords())
	mu.Lock()
	hold = true
	mu.Unlock()

	g.sim.Touch("g-001", at(8))
	g.clock.Set(at(14))
	g.sim.ResetRequests()
	res, err := g.engine().Run(context.Background(), janitor.RunInput{})
	var inc *janitor.IncompleteError
	if !errors.As(err, &inc) || !strings.Contains(err.Error(), "some of the run's answers carry a Date header and some none") {
		t.Fatalf("run error = %v, want incomplete data naming the undated answer", err)
	}
	if n := len(res.Plan.Listings); n != 2 {
		t.Fatalf("%d listings, want the two filtered ones", n)
	}
	g.requireNoMutations()
	if !g.present("g-001") {
		t.Fatal("g-001, used on day 8, was deleted on a stored listing")
	}
	if got := mustJSON(t, g.marks()); got != marks {
		t.Errorf("marks changed:\n got %s\nwant %s", got, marks)
	}
	if n := len(g.journalRecords()); n != journaled {
		t.Errorf("journal holds %d records, want %d (unchanged)", n, journaled)
	}
	if fails := notifytest.OfKind(g.hook.Take(), notify.KindFailure); len(fails) != 1 {
		t.Errorf("failure alerts %+v, want one", fails)
	}
}

// The probe of a listing of exactly 250 tokens is the listing's second
// page: a cache that answers it with the empty page it stored when the
// tenant had 250 tokens says the listing is complete. The run used to
// decide on the first page of a tenant that pages (and has 300 tokens
// now), and deleted its stale tokens; the probe's Date (two days old)
// refuses the run now.
func TestHostileStoredProbeOfACappedListing(t *testing.T) {
	var (
		mu     sync.Mutex
		stored *httptest.ResponseRecorder
	)
	cache := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v3/personal-access-tokens" || r.URL.Query().Get("offset") != "250" {
				h.ServeHTTP(w, r)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if stored == nil {
				stored = httptest.NewRecorder()
				h.ServeHTTP(stored, r)
			}
			maps.Copy(w.Header(), stored.Header())
			w.WriteHeader(stored.Code)
			_, _ = io.Copy(w, bytes.NewReader(stored.Body.Bytes()))
		})
	}
	e := newEnv(t, `limits: {maxActionsPerRun: 0, maxActionsPercent: 100, maxActionsPerOwner: 0}
policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
`, envOpts{sim: idnsim.Options{Paging: true}, wrap: cache})
	// Day 0: 249 tokens (and the admin's: 250) used 89 days ago, none
	// stale; the probe finds an empty second page, which the cache keeps.
	for i := range 249 {
		e.add("a-"+itoa3(i), "o", "n", 400*day, 89*day)
	}
	if _, err := e.engine().Run(context.Background(), janitor.RunInput{}); err != nil {
		t.Fatalf("day 0: %v", err)
	}
	e.requireNoMutations()
	// Day 2: every one of them is stale, and 50 more tokens page the
	// listing.
	for i := range 50 {
		e.add("b-"+itoa3(i), "o", "n", 400*day, 89*day)
	}
	e.clock.Set(t0.Add(2 * day))
	e.sim.ResetRequests()
	_, err := e.engine().Run(context.Background(), janitor.RunInput{})
	var ce *janitor.ClockSkewError
	if !errors.As(err, &ce) || ce.Skew != 2*day {
		t.Fatalf("run error = %v, want a *ClockSkewError of 48h (the stored probe)", err)
	}
	e.requireNoMutations()
	var probes int
	for _, r := range e.sim.Requests() {
		if r.Operation == idnsim.OpListTokens && strings.Contains(r.RawQuery, "offset=250") {
			probes++
		}
	}
	if probes != 0 {
		t.Errorf("the tenant received %d probes, want none (the cache answered)", probes)
	}
	if n := len(e.journalRecords()); n != 0 {
		t.Errorf("journal holds %d records, want none", n)
	}
}

func itoa3(i int) string { return fmt.Sprintf("%03d", i) }

// The host's clock read 30 days ahead when the run started (a VM resumed
// with a bad clock) and NTP stepped it right before the listing's answer
// arrived: the answer agrees with the host's clock then, but the run
// decides with the time it read at its start, every grace deadline past.
// It used to delete the three marked tokens 13 days early; the Date is
// compared with the run's clock too now (time elapsed on the monotonic
// clock, which a step does not move).
func TestHostileHostClockSteppedDuringTheRun(t *testing.T) {
	var stepped atomic.Bool
	step := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v3/personal-access-tokens" {
				stepped.Store(true) // NTP steps the host's clock back
			}
			h.ServeHTTP(w, r)
		})
	}
	g := newGraceEnvOpts(t, graceConfig, envOpts{wrap: step})
	warnDay0(t, g)
	marks, journaled := g.marks(), len(g.journalRecords())
	stepped.Store(false)
	g.sim.ResetRequests()

	g.clock.Set(at(1))
	host := func() time.Time {
		if stepped.Load() {
			return g.clock.Now()
		}
		return g.clock.Now().Add(30 * day)
	}
	res, err := g.engine(func(o *janitor.Options) { o.Now = host }).Run(context.Background(), janitor.RunInput{})
	requireRefusal(t, g, err, res, marks, journaled,
		"was stepped during the run", "2026-11-27T03:00:00Z", "2026-12-27T03:00:00Z", "720h0m0s ahead of")
	var ce *janitor.ClockSkewError
	if errors.As(err, &ce) && (ce.Skew != 30*day || !ce.Stepped.Equal(at(1))) {
		t.Errorf("skew %s stepped %s, want 720h and the host's clock at the answer", ce.Skew, ce.Stepped)
	}
	// The gauge is the run's clock, with which it decides (the host's
	// agreed at the answer): PatjanitorClockSkew names the cause.
	if v, ok := g.skewGauge(); !ok || v != (30*day).Seconds() {
		t.Errorf("tenant_clock_skew_seconds = %v (present %v), want %v", v, ok, (30 * day).Seconds())
	}
	for _, id := range []string{"g-000", "g-001", "g-002"} {
		if !g.present(id) {
			t.Errorf("%s deleted before its deadline", id)
		}
	}
}

// Of a run's listings, the gauge shows the one furthest off: a cache
// answers the lastUsed listing with a stored answer (its Date two days
// old) and the neverUsed listing, checked after it, comes from the tenant.
// The gauge showed the last listing's 0, and PatjanitorClockSkew stayed
// silent about the run it refused.
func TestHostileClockSkewGaugeShowsTheListingFurthestOff(t *testing.T) {
	var g *graceEnv
	stale := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Query().Get("filters"), "lastUsed le") {
				w = oldDate{w, g.clock.Now()}
			}
			h.ServeHTTP(w, r)
		})
	}
	g = newGraceEnvOpts(t, graceConfig, envOpts{wrap: stale})
	g.addStale("g", 1, 1)
	res, err := g.engine().Run(context.Background(), janitor.RunInput{})
	var ce *janitor.ClockSkewError
	if !errors.As(err, &ce) || ce.Skew != 2*day {
		t.Fatalf("run error = %v, want a *ClockSkewError of 48h", err)
	}
	if n := len(res.Plan.Listings); n != 2 || !strings.Contains(res.Plan.Listings[0].Filter, "lastUsed le") {
		t.Fatalf("listings %+v, want the stored lastUsed listing checked first", res.Plan.Listings)
	}
	g.requireNoMutations()
	if len(g.marks()) != 0 {
		t.Errorf("marks %v written by a refused run", g.marks())
	}
	if v, ok := g.skewGauge(); !ok || v != (2*day).Seconds() {
		t.Errorf("tenant_clock_skew_seconds = %v (present %v), want %v", v, ok, (2 * day).Seconds())
	}
}

// serve judges the plans of its approved directory before its run lists
// anything, by their age on this host's clock. On a host 30 days ahead
// every approved plan was rejected as too old: moved to rejected/ (the
// reviewers' approval spent), its refusal journaled, and its notice sent
// through the outbox, which delivered the digest waiting there with the
// wrong clock (its grace clock started 30 days off). The refusal waits now
// for a clock the tenant confirms: the plan stays, nothing is journaled or
// sent.
func TestHostileHostClockAheadKeepsApprovedPlans(t *testing.T) {
	cfg := strings.Replace(graceConfig, "policies:", `approvals:
  allowedSignersFile: /nonexistent/allowed_signers
  required: 2
  for: [delete]
policies:`, 1)
	g := newGraceEnv(t, cfg)
	alice, bob := newSigner(t, "alice"), newSigner(t, "bob")
	pol := approvalPolicy(t, 2, alice, bob)
	g.addStale("f", 1, 1)
	g.hook.Fail(http.StatusInternalServerError)
	g.run() // day 0: marked, the digest waits in the outbox
	g.hook.Fail(0)
	g.hook.Take()
	outbox := mustJSON(t, g.outbox())
	if !strings.Contains(outbox, `"digest"`) {
		t.Fatalf("outbox %s: the digest is not waiting", outbox)
	}
	pl, err := g.engine().Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	file, data := savePlan(t, t.TempDir(), pl.Plan, alice, bob)
	journaled := len(g.journalRecords())

	g.clock.Set(at(0).Add(time.Hour)) // the plan is an hour old
	g.sim.ResetRequests()
	host := func() time.Time { return g.clock.Now().Add(30 * day) }
	sp := janitor.SignedPlan{File: file, Data: data, Plan: pl.Plan}
	s := g.engine(func(o *janitor.Options) { o.Now = host }).ApplySigned(context.Background(), janitor.RunInput{}, sp, pol)
	var ce *janitor.ClockSkewError
	if s.Settled || !errors.As(s.Err, &ce) || !strings.Contains(s.Err.Error(), "older than the maximum") {
		t.Fatalf("settlement %+v, want the plan left where it is for the clock", s)
	}
	for _, r := range g.sim.Requests() {
		if r.Method != http.MethodGet && r.Path != "/oauth/token" {
			t.Errorf("the tenant received %s %s", r.Method, r.Path)
		}
	}
	if n := len(g.journalRecords()); n != journaled {
		t.Errorf("journal holds %d records, want %d (no refusal journaled)", n, journaled)
	}
	if msgs := g.hook.Take(); len(msgs) != 0 {
		t.Errorf("%d messages delivered on the unconfirmed clock, want none: %+v", len(msgs), msgs)
	}
	if got := mustJSON(t, g.outbox()); got != outbox {
		t.Errorf("outbox changed:\n got %s\nwant %s", got, outbox)
	}

	// An unreadable plan's refusal is no judgement of the clock, but its
	// notice would dispatch the outbox: it waits as well.
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"version": 1`), 0o600); err != nil {
		t.Fatal(err)
	}
	ub := janitor.SignedPlan{File: bad, Data: []byte(`{"version": 1`), ReadErr: errors.New("read plan " + bad + ": unexpected EOF")}
	s = g.engine(func(o *janitor.Options) { o.Now = host }).ApplySigned(context.Background(), janitor.RunInput{}, ub, pol)
	if s.Settled || !errors.As(s.Err, &ce) {
		t.Fatalf("settlement %+v of an unreadable plan, want it left where it is for the clock", s)
	}
	if msgs := g.hook.Take(); len(msgs) != 0 {
		t.Errorf("%d messages delivered on the unconfirmed clock, want none: %+v", len(msgs), msgs)
	}
	if got := mustJSON(t, g.outbox()); got != outbox {
		t.Errorf("outbox changed:\n got %s\nwant %s", got, outbox)
	}
	if n := len(g.journalRecords()); n != journaled {
		t.Errorf("journal holds %d records, want %d", n, journaled)
	}

	// On a clock the tenant confirms, an old plan is still refused.
	g.clock.Set(at(2))
	s = g.engine().ApplySigned(context.Background(), janitor.RunInput{}, sp, pol)
	if !s.Settled || s.Result != janitor.PlanRejected || !strings.Contains(s.Detail, "older than the maximum") {
		t.Fatalf("settlement %+v, want the plan rejected for its age", s)
	}
}

// farDate answers with a Date centuries away.
type farDate struct {
	http.ResponseWriter
	date string
}

func (w farDate) WriteHeader(code int) {
	w.Header().Set("Date", w.date)
	w.ResponseWriter.WriteHeader(code)
}

func (w farDate) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// A Date more than 292 years from the host's clock overflows a
// time.Duration: Sub saturates at its minimum, whose absolute value is
// itself (negative), so a Date in year 9999 passed as no skew at all and
// the run acted. Saturated either way, it is refused now.
func TestHostileAbsurdDateIsRefused(t *testing.T) {
	for _, date := range []string{"Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 0001 00:00:00 GMT", "Sat, 01 Jan 2400 00:00:00 GMT"} {
		t.Run(date[12:16], func(t *testing.T) {
			far := func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/v3/personal-access-tokens" {
						w = farDate{w, date}
					}
					h.ServeHTTP(w, r)
				})
			}
			g := newGraceEnvOpts(t, enforceDeleteStale, envOpts{wrap: far})
			g.addStale("s", 2, 1)
			res, err := g.engine().Run(context.Background(), janitor.RunInput{})
			if !errors.As(err, new(*janitor.ClockSkewError)) {
				t.Fatalf("run error = %v, want a *ClockSkewError", err)
			}
			g.requireNoMutations()
			if res == nil || !res.NothingSent() {
				t.Fatalf("result %+v, want nothing sent", res)
			}
			if n := len(g.journalRecords()); n != 0 {
				t.Errorf("journal holds %d records, want none", n)
			}
		})
	}
}

// An owner lookup answered without a Date (a cache that strips the Date of
// the identities it stored) while the run's listings carried one: the
// lookup's own check saw only undated answers and let it pass, and the
// token of the owner it did not hold was deleted as ownerMissing. Judged
// with what the run's listings said, it fails like any untrusted lookup.
func TestHostileUndatedOwnerLookupInADatedRunMatchesNothing(t *testing.T) {
	var e *env
	stripped := func(w http.ResponseWriter, r *http.Request) { e.sim.ServeHTTP(dateless{w}, r) }
	e, _, _ = hostileEnv(t, ownerMissingDelete, map[string]http.HandlerFunc{"GET /v3/public-identities": stripped})
	tenOwnersAndOneGone(e)
	if _, err := e.engine().Run(context.Background(), janitor.RunInput{}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if del := deletedIDs(e.mutations()); len(del) != 0 {
		t.Fatalf("deleted %v on an undated owner lookup, want nothing", del)
	}
	if n := len(e.journalRecords()); n != 0 {
		t.Errorf("journal holds %d records, want none", n)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "owner lookup failed") || !strings.Contains(logs, "some of the run's answers carry a Date header and some none") {
		t.Fatalf("the log does not say the owner lookup failed for its missing Date:\n%s", logs)
	}
}

// A run whose listings fail (here the tenant answers 400 to every listing)
// measured no skew: tenant_clock_skew_seconds must not show the one an
// earlier run measured as the last run's. Before, it kept the stored
// listing's 48 h of the run before, and PatjanitorClockSkew went on firing
// with "at the last run" for a run that read no Date; now the series is
// absent until a run reads one (the failure is PatjanitorRunsFailing's), as
// for a run whose answers had no Date.
func TestHostileFailedListingLeavesNoOldClockSkew(t *testing.T) {
	var g *graceEnv
	var stored atomic.Bool
	stored.Store(true)
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if stored.Load() {
				w = oldDate{w, g.clock.Now()}
			}
			h.ServeHTTP(w, r)
		})
	}
	g = newGraceEnvOpts(t, graceConfig, envOpts{wrap: wrap})
	g.addStale("g", 1, 1)
	if _, err := g.engine().Run(context.Background(), janitor.RunInput{}); !errors.As(err, new(*janitor.ClockSkewError)) {
		t.Fatalf("run 1 error = %v, want a *ClockSkewError", err)
	}
	if v, ok := g.skewGauge(); !ok || v != (2*day).Seconds() {
		t.Fatalf("after run 1: tenant_clock_skew_seconds = %v (present %v), want %v", v, ok, (2 * day).Seconds())
	}
	stored.Store(false)
	g.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, Status: http.StatusBadRequest})
	g.clock.Advance(time.Hour)
	if _, err := g.engine().Run(context.Background(), janitor.RunInput{}); err == nil || errors.As(err, new(*janitor.ClockSkewError)) {
		t.Fatalf("run 2 error = %v, want the failed listing", err)
	}
	g.requireNoMutations()
	if n := g.failedRuns(); n != 2 {
		t.Errorf("runs_total{result=\"failed\"} = %v, want 2", n)
	}
	if v, ok := g.skewGauge(); ok {
		t.Errorf("after a run whose listings failed: tenant_clock_skew_seconds = %v, the skew an earlier run measured; want the series absent", v)
	}
	// The next run that reads a Date sets it again.
	g.sim.ClearFaults()
	g.clock.Advance(time.Hour)
	g.run()
	if v, ok := g.skewGauge(); !ok || v != 0 {
		t.Errorf("after a run with fresh answers: tenant_clock_skew_seconds = %v (present %v), want 0", v, ok)
	}
}

// A run whose token listings fail while its API client listing answers
// measured the skew on that answer: the gauge shows it, the one the API
// client listing judged, not absent.
func TestFailedTokenListingKeepsTheClientListingsSkew(t *testing.T) {
	c := newClientEnvOpts(t, "enforce", envOpts{})
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	earlier := 2 * day
	m.SetTenantClockSkew(&earlier) // an earlier run's
	c.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, Status: http.StatusBadRequest})
	_, err := c.env.engine(func(o *janitor.Options) {
		o.ClientID = cOwn
		o.ClientState = c.store
		o.Metrics = m
	}).Run(context.Background(), janitor.RunInput{})
	if err == nil {
		t.Fatal("run succeeded on failed token listings")
	}
	clients := false
	for _, r := range c.sim.Requests() {
		clients = clients || (r.Method == http.MethodGet && r.Path == "/v3/oauth-clients" && r.Status == http.StatusOK)
	}
	if !clients {
		t.Fatal("the API client listing was not answered: nothing to measure")
	}
	if v := gaugeValue(t, reg, "patjanitor_tenant_clock_skew_seconds"); v != 0 {
		t.Errorf("tenant_clock_skew_seconds = %v, want 0: the API client listing's", v)
	}
	if n := len(idnsim.Mutations(c.sim.Requests())); n != 0 {
		t.Errorf("%d mutations on failed token listings", n)
	}
}

// ApplyPlan (apply PLAN, serve's approved plans) whose token listing fails
// and whose API client listing answers: tenant_clock_skew_seconds keeps its
// series through the run and ends with the API client listing's skew. Before,
// it was judged unmeasured after the token listing (the fresh decisions'
// observePlan), before the API client listing: the series was absent while
// that listing ran (its retries and Retry-After waits included), so that
// PatjanitorClockSkew resolved and fired again within one run, the flap
// Plan avoids by judging it once the run has listed everything.
func TestHostileApplyPlanFailedTokenListingKeepsTheSkewGaugeThroughTheRun(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	var clientListings, absent atomic.Int32
	watch := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && r.URL.Path == "/v3/oauth-clients" {
				clientListings.Add(1)
				fams, err := reg.Gather()
				if err != nil {
					t.Error(err)
				}
				found := false
				for _, f := range fams {
					found = found || (f.GetName() == "patjanitor_tenant_clock_skew_seconds" && len(f.GetMetric()) == 1)
				}
				if !found {
					absent.Add(1)
				}
			}
			h.ServeHTTP(w, r)
		})
	}
	c := newClientEnvOpts(t, "enforce", envOpts{wrap: watch})
	engine := func() *janitor.Engine {
		return c.env.engine(func(o *janitor.Options) {
			o.ClientID = cOwn
			o.ClientState = c.store
			o.Metrics = m
		})
	}
	earlier := 2 * time.Minute
	m.SetTenantClockSkew(&earlier) // an earlier run's
	pl, err := engine().Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	saved := roundTrip(t, pl.Plan)
	clientListings.Store(0)
	c.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, Status: http.StatusBadRequest})
	if _, err := engine().ApplyPlan(context.Background(), saved, janitor.ApplyOptions{}); err == nil {
		t.Fatal("apply succeeded on failed token listings")
	}
	if clientListings.Load() == 0 {
		t.Fatal("apply made no API client listing")
	}
	if n := absent.Load(); n != 0 {
		t.Errorf("tenant_clock_skew_seconds was absent at %d of the API client listings of the run, within it", n)
	}
	if v := gaugeValue(t, reg, "patjanitor_tenant_clock_skew_seconds"); v != 0 {
		t.Errorf("after the run: tenant_clock_skew_seconds = %v, want 0: the API client listing's", v)
	}
	if n := len(idnsim.Mutations(c.sim.Requests())); n != 0 {
		t.Errorf("%d mutations on failed token listings", n)
	}
}
