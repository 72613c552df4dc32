package metrics_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/buildinfo"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/metrics"
	"github.com/patjanitor/patjanitor/internal/metrics/metricstest"
	"github.com/patjanitor/patjanitor/internal/notify"
)

// designNames is the metric list users rely on (docs/operations.md, section
// Metrics), runs_skipped_total (a run skipped because another was in
// progress) among them. It is written out here, not derived, so that a rename in the package fails
// this test: dashboards and alerts depend on these names.
var designNames = []string{
	"build_info", "runs_total", "run_duration_seconds", "last_run_timestamp_seconds",
	"last_successful_run_timestamp_seconds", "tokens", "tokens_matched", "actions_total",
	"guardrail_trips_total", "api_requests_total", "api_request_duration_seconds",
	"api_retries_total", "config_last_reload_successful",
	"config_last_reload_success_timestamp_seconds",
	"notifications_total", "pending_actions", "owner_lookups_total",
	"runs_skipped_total",
	"plans_awaiting_approval", "approved_plans_total",
	// patjanitor's own PAT expiry and a partial view.
	"credential_expiry_timestamp_seconds", "partial_view",
	// This host's clock minus the tenant's (the Date of its listings).
	"tenant_clock_skew_seconds",
	// Confirmed token changes a later listing showed not in effect.
	"unproven_mutations",
	"run_in_progress", "api_wait_seconds",
}

// exercise touches every method, so that every vector has a child and
// therefore appears in Gather and in the lint.
func exercise(m *metrics.Metrics) {
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	m.ObserveRequest(api.OpListTokens, 200, 120*time.Millisecond)
	m.ObserveRequest(api.OpDeleteToken, 0, time.Second)
	m.ObserveRetry(api.OpDeleteToken, api.ReasonConnection)
	m.ObserveRun(metrics.RunSuccess, t0, 3*time.Second)
	m.RunSkipped(metrics.SkipOverlap)
	m.SetTokens(1234)
	m.SetPolicies([]string{"unused-90d"})
	m.SetTokensMatched("unused-90d", 7)
	m.AddAction("unused-90d", "delete", metrics.OutcomeApplied)
	m.AddGuardrailTrip("maxActionsPerRun")
	m.ConfigReloaded(true, t0)
	m.Notification("security-slack", metrics.KindSummary, metrics.NotificationSent)
	m.SetPending(map[string]int{"unused-90d": 2})
	m.OwnerLookup(metrics.LookupFound)
	exp := t0.Add(90 * 24 * time.Hour)
	m.SetCredentialExpiry(&exp)
	skew := 90 * time.Second
	m.SetTenantClockSkew(&skew)
	m.SetPartialView(false)
	m.SetRunInProgress(true)
	m.WaitStarted(api.WaitRetryAfter, time.Minute)
}

func families(t *testing.T, g prometheus.Gatherer) map[string]bool {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]bool{}
	for _, mf := range mfs {
		out[mf.GetName()] = true
	}
	return out
}

func TestNamesMatchDesign(t *testing.T) {
	var want []string
	for _, n := range designNames {
		want = append(want, "patjanitor_"+n)
	}
	slices.Sort(want)
	if got := metricstest.Names(); !slices.Equal(got, want) {
		t.Fatalf("metricstest.Names() = %v\nwant                   %v", got, want)
	}

	reg := prometheus.NewPedanticRegistry()
	exercise(metrics.New(reg))
	var gathered []string
	for name := range families(t, reg) {
		if strings.HasPrefix(name, "patjanitor_") {
			gathered = append(gathered, name)
		}
	}
	slices.Sort(gathered)
	if !slices.Equal(gathered, want) {
		t.Fatalf("registry exports %v\nwant             %v", gathered, want)
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var histograms []string
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "patjanitor_") && mf.GetType() == dto.MetricType_HISTOGRAM {
			histograms = append(histograms, mf.GetName())
		}
	}
	if !slices.Equal(histograms, metricstest.Histograms()) {
		t.Errorf("histograms %v, metricstest.Histograms() says %v", histograms, metricstest.Histograms())
	}
}

func TestLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	exercise(metrics.New(reg))
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "patjanitor_") {
			t.Errorf("lint %s: %s", p.Metric, p.Text)
		}
	}
}

func TestFreshRegistryHasStandardCollectorsAndZeroSeries(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	metrics.New(reg)
	fam := families(t, reg)
	for _, n := range []string{"process_start_time_seconds", "go_goroutines"} {
		if !fam[n] {
			t.Errorf("%s not registered (the no-successful-run alert needs process_start_time_seconds)", n)
		}
	}
	// Alerts use increase() on these; the series must exist at 0 from the start.
	want := `
# HELP patjanitor_runs_total Runs finished, by result: success, failed, or blocked (a guardrail tripped and nothing was done).
# TYPE patjanitor_runs_total counter
patjanitor_runs_total{result="blocked"} 0
patjanitor_runs_total{result="failed"} 0
patjanitor_runs_total{result="success"} 0
# HELP patjanitor_guardrail_trips_total Runs stopped before their first mutation by a guardrail, by guardrail and resource (each resource has its own).
# TYPE patjanitor_guardrail_trips_total counter
patjanitor_guardrail_trips_total{guard="maxActionsPerOwner",resource="personalAccessTokens"} 0
patjanitor_guardrail_trips_total{guard="maxActionsPerRun",resource="apiClients"} 0
patjanitor_guardrail_trips_total{guard="maxActionsPerRun",resource="personalAccessTokens"} 0
patjanitor_guardrail_trips_total{guard="maxActionsPercent",resource="apiClients"} 0
patjanitor_guardrail_trips_total{guard="maxActionsPercent",resource="personalAccessTokens"} 0
# HELP patjanitor_runs_skipped_total Scheduled runs not started, by reason: overlap (the same schedule's previous run was still running or waiting) or shutdown.
# TYPE patjanitor_runs_skipped_total counter
patjanitor_runs_skipped_total{reason="overlap"} 0
patjanitor_runs_skipped_total{reason="shutdown"} 0
# HELP patjanitor_owner_lookups_total Owner identity lookups by outcome: found, missing, error.
# TYPE patjanitor_owner_lookups_total counter
patjanitor_owner_lookups_total{outcome="error"} 0
patjanitor_owner_lookups_total{outcome="found"} 0
patjanitor_owner_lookups_total{outcome="missing"} 0
# HELP patjanitor_last_successful_run_timestamp_seconds Unix time the last run with result success finished; 0 until one has.
# TYPE patjanitor_last_successful_run_timestamp_seconds gauge
patjanitor_last_successful_run_timestamp_seconds 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"patjanitor_runs_total", "patjanitor_guardrail_trips_total", "patjanitor_runs_skipped_total",
		"patjanitor_owner_lookups_total", "patjanitor_last_successful_run_timestamp_seconds"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "patjanitor_api_retries_total"); n != len(metrics.Operations())*len(metrics.RetryReasons()) {
		t.Errorf("api_retries_total has %d series at start, want every operation x reason", n)
	}
}

// The lists in the metrics package must name what internal/api and the
// engine actually report, or the pre-initialised series are the wrong ones.
func TestFixedLabelSetsMatchProducers(t *testing.T) {
	ops := []string{api.OpOAuthToken, api.OpListTokens, api.OpDeleteToken, api.OpPatchToken, api.OpCreateToken, api.OpListPublicIdentities, api.OpBulkUpdateTokens, api.OpOAuthInfo}
	if got := metrics.Operations(); !sameSet(got, ops) {
		t.Errorf("Operations() = %v, internal/api has %v", got, ops)
	}
	reasons := []string{api.ReasonRateLimited, api.ReasonServerError, api.ReasonConnection, api.ReasonUnauthorized}
	if got := metrics.RetryReasons(); !sameSet(got, reasons) {
		t.Errorf("RetryReasons() = %v, internal/api has %v", got, reasons)
	}
	causes := []string{api.WaitRetryAfter, api.WaitBackoff, api.WaitRateLimit}
	if got := metrics.WaitCauses(); !sameSet(got, causes) {
		t.Errorf("WaitCauses() = %v, internal/api has %v", got, causes)
	}
}

// The engine and the notifier report these label values; the pre-initialised
// series, the alert rules (result="failed", outcome=~"failed|deferred") and
// the docs depend on them being the same words.
func TestProducerLabelValuesMatch(t *testing.T) {
	pairs := [][2]string{
		{janitor.RunSuccess, metrics.RunSuccess}, {janitor.RunFailed, metrics.RunFailed}, {janitor.RunBlocked, metrics.RunBlocked},
		{janitor.MetricApplied, metrics.OutcomeApplied}, {janitor.MetricWouldApply, metrics.OutcomeWouldApply},
		{janitor.MetricFailed, metrics.OutcomeFailed}, {janitor.MetricSkipped, metrics.OutcomeSkipped},
	}
	for _, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("engine reports %q where metrics expects %q", p[0], p[1])
		}
	}
	notifyPairs := [][2]string{
		{string(notify.Sent), metrics.NotificationSent}, {string(notify.Failed), metrics.NotificationFailed},
		{string(notify.Deferred), metrics.NotificationDeferred}, {string(notify.Suppressed), metrics.NotificationSuppressed},
		{string(notify.KindSummary), metrics.KindSummary}, {string(notify.KindDigest), metrics.KindDigest},
		{string(notify.KindNotice), metrics.KindNotice}, {string(notify.KindFailure), metrics.KindFailure},
		{string(notify.KindTest), metrics.KindTest},
	}
	for _, p := range notifyPairs {
		if p[0] != p[1] {
			t.Errorf("notify reports %q where metrics documents %q", p[0], p[1])
		}
	}
	guards := []string{janitor.GuardMaxActionsPerRun, janitor.GuardMaxActionsPercent, janitor.GuardMaxActionsPerOwner}
	if !sameSet(guards, metrics.Guards()) {
		t.Errorf("engine guardrails %v, metrics pre-initialises %v", guards, metrics.Guards())
	}
}

// *Metrics is what the engine gets as its Metrics.
var _ janitor.Metrics = (*metrics.Metrics)(nil)

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// *Metrics is what internal/api's client gets as its Observer, and it also
// receives the waits.
var (
	_ api.Observer     = (*metrics.Metrics)(nil)
	_ api.WaitObserver = (*metrics.Metrics)(nil)
)

// While the client waits, /metrics shows how long the waits in progress
// are, by cause; when they end the gauge is exactly 0 again.
func TestWaitsAndRunInProgress(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	m.SetRunInProgress(true)
	m.WaitStarted(api.WaitRetryAfter, 90*time.Second)
	m.WaitStarted(api.WaitRateLimit, 100*time.Millisecond)
	m.WaitStarted(api.WaitRateLimit, 300*time.Millisecond) // another worker
	want := `
# HELP patjanitor_api_wait_seconds Length of the waits before requests to the tenant in progress now, by cause: retry_after (the tenant's Retry-After), backoff (retrying a failure), rate_limit (the client-side rate limit); 0 when none. Concurrent waits add up.
# TYPE patjanitor_api_wait_seconds gauge
patjanitor_api_wait_seconds{cause="backoff"} 0
patjanitor_api_wait_seconds{cause="rate_limit"} 0.4
patjanitor_api_wait_seconds{cause="retry_after"} 90
# HELP patjanitor_run_in_progress 1 while a run is in progress (listing, waiting for the tenant, mutating), else 0.
# TYPE patjanitor_run_in_progress gauge
patjanitor_run_in_progress 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "patjanitor_api_wait_seconds", "patjanitor_run_in_progress"); err != nil {
		t.Fatal(err)
	}
	m.WaitEnded(api.WaitRateLimit, 100*time.Millisecond)
	m.WaitEnded(api.WaitRateLimit, 300*time.Millisecond)
	m.WaitEnded(api.WaitRetryAfter, 90*time.Second)
	m.SetRunInProgress(false)
	want = strings.NewReplacer("} 0.4\n", "} 0\n", "} 90\n", "} 0\n", "\npatjanitor_run_in_progress 1\n", "\npatjanitor_run_in_progress 0\n").Replace(want)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "patjanitor_api_wait_seconds", "patjanitor_run_in_progress"); err != nil {
		t.Fatal(err)
	}
}

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	metrics.New(reg)
	bi := buildinfo.Get()
	want := fmt.Sprintf(`
# HELP patjanitor_build_info A metric with a constant '1' value labeled by the version, commit and Go version patjanitor was built from.
# TYPE patjanitor_build_info gauge
patjanitor_build_info{commit=%q,goversion=%q,version=%q} 1
`, bi.Commit, bi.GoVersion, bi.Version)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "patjanitor_build_info"); err != nil {
		t.Fatal(err)
	}
}

func TestObserveRequestCodes(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	m.ObserveRequest("list_tokens", 200, 10*time.Millisecond)
	m.ObserveRequest("list_tokens", 200, 20*time.Millisecond)
	m.ObserveRequest("list_tokens", 429, time.Millisecond)
	m.ObserveRequest("delete_token", 0, time.Second)  // transport error
	m.ObserveRequest("delete_token", -1, time.Second) // nonsense is not a status either
	want := `
# HELP patjanitor_api_requests_total HTTP requests to the tenant, by operation and status code ("error" when no response arrived). Each retry attempt counts.
# TYPE patjanitor_api_requests_total counter
patjanitor_api_requests_total{code="200",operation="list_tokens"} 2
patjanitor_api_requests_total{code="429",operation="list_tokens"} 1
patjanitor_api_requests_total{code="error",operation="delete_token"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "patjanitor_api_requests_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "patjanitor_api_request_duration_seconds"); n != 2 {
		t.Errorf("api_request_duration_seconds has %d series, want 2 (one per operation)", n)
	}
}

func TestObserveRunTimestamps(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	ok := time.Date(2026, 11, 26, 3, 0, 5, 500_000_000, time.UTC)
	m.ObserveRun(metrics.RunSuccess, ok, 5*time.Second)
	m.ObserveRun(metrics.RunBlocked, ok.Add(time.Hour), time.Second)
	m.ObserveRun(metrics.RunFailed, ok.Add(2*time.Hour), time.Second)

	want := fmt.Sprintf(`
# HELP patjanitor_last_run_timestamp_seconds Unix time the last run finished, whatever its result.
# TYPE patjanitor_last_run_timestamp_seconds gauge
patjanitor_last_run_timestamp_seconds %v
# HELP patjanitor_last_successful_run_timestamp_seconds Unix time the last run with result success finished; 0 until one has.
# TYPE patjanitor_last_successful_run_timestamp_seconds gauge
patjanitor_last_successful_run_timestamp_seconds %v
# HELP patjanitor_runs_total Runs finished, by result: success, failed, or blocked (a guardrail tripped and nothing was done).
# TYPE patjanitor_runs_total counter
patjanitor_runs_total{result="blocked"} 1
patjanitor_runs_total{result="failed"} 1
patjanitor_runs_total{result="success"} 1
`, float64(ok.Add(2*time.Hour).Unix())+0.5, float64(ok.Unix())+0.5)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"patjanitor_last_run_timestamp_seconds", "patjanitor_last_successful_run_timestamp_seconds", "patjanitor_runs_total"); err != nil {
		t.Fatal(err)
	}
	if got := histogramCount(t, reg, "patjanitor_run_duration_seconds"); got != 3 {
		t.Errorf("run_duration_seconds count = %d, want 3", got)
	}
}

func histogramCount(t *testing.T, g prometheus.Gatherer, name string) uint64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("%s not gathered", name)
	return 0
}

func TestConfigReloaded(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	at := time.Unix(1_800_000_000, 0)
	m.ConfigReloaded(true, at)
	m.ConfigReloaded(false, at.Add(time.Minute)) // refused: the timestamp stays
	want := `
# HELP patjanitor_config_last_reload_success_timestamp_seconds Unix time of the last successful configuration load or reload.
# TYPE patjanitor_config_last_reload_success_timestamp_seconds gauge
patjanitor_config_last_reload_success_timestamp_seconds 1.8e+09
# HELP patjanitor_config_last_reload_successful Whether the last configuration load or reload succeeded (1) or was refused (0).
# TYPE patjanitor_config_last_reload_successful gauge
patjanitor_config_last_reload_successful 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"patjanitor_config_last_reload_success_timestamp_seconds", "patjanitor_config_last_reload_successful"); err != nil {
		t.Fatal(err)
	}
	m.ConfigReloaded(true, at.Add(2*time.Minute))
	if v := testutil.ToFloat64(gaugeOf(t, reg, "patjanitor_config_last_reload_successful")); v != 1 {
		t.Errorf("config_last_reload_successful = %v after a good reload, want 1", v)
	}
}

// gaugeOf adapts one gathered single-series family to a Collector for ToFloat64.
func gaugeOf(t *testing.T, g prometheus.Gatherer, name string) prometheus.Collector {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			gg := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "copy"})
			gg.Set(mf.GetMetric()[0].GetGauge().GetValue())
			return gg
		}
	}
	t.Fatalf("%s not gathered", name)
	return nil
}

// A run of one schedule sets its own policies and leaves the other
// schedule's series alone; a policy that is not configured gets no series.
func TestSetPendingKeepsOtherPolicies(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	m.SetPolicies([]string{"a", "b", "c"})
	m.SetPending(map[string]int{"a": 3, "b": 1})
	m.SetPending(map[string]int{"b": 0, "c": 4, "removed": 7})
	want := `
# HELP patjanitor_pending_actions Tokens marked by a policy with a grace period whose action has not happened yet.
# TYPE patjanitor_pending_actions gauge
patjanitor_pending_actions{policy="a"} 3
patjanitor_pending_actions{policy="b"} 0
patjanitor_pending_actions{policy="c"} 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "patjanitor_pending_actions"); err != nil {
		t.Fatal(err)
	}
}

func TestSetPoliciesForgetsRemovedPolicies(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	m.SetPolicies([]string{"old", "kept"})
	m.SetTokensMatched("old", 5)
	m.SetTokensMatched("kept", 2)
	m.SetPending(map[string]int{"old": 1, "kept": 1})
	m.AddAction("old", "delete", metrics.OutcomeApplied)

	m.SetPolicies([]string{"kept", "new"}) // a reload renamed "old" to "new"
	m.SetTokensMatched("old", 9)           // a run that started before the reload ends
	want := `
# HELP patjanitor_tokens_matched Tokens each policy won (matched and was chosen for) at its last run.
# TYPE patjanitor_tokens_matched gauge
patjanitor_tokens_matched{policy="kept"} 2
patjanitor_tokens_matched{policy="new"} 0
# HELP patjanitor_pending_actions Tokens marked by a policy with a grace period whose action has not happened yet.
# TYPE patjanitor_pending_actions gauge
patjanitor_pending_actions{policy="kept"} 1
# HELP patjanitor_actions_total Actions by policy, action, outcome (applied, would_apply (report mode), failed, skipped) and resource (personalAccessTokens, apiClients).
# TYPE patjanitor_actions_total counter
patjanitor_actions_total{action="delete",outcome="applied",policy="old",resource="personalAccessTokens"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"patjanitor_tokens_matched", "patjanitor_pending_actions", "patjanitor_actions_total"); err != nil {
		t.Fatal(err)
	}
}

// Series count depends on configuration, never on the number of tokens or
// requests: the same calls for 10 and for 10,000 tokens give as many series.
func TestCardinalityIndependentOfPopulation(t *testing.T) {
	count := func(tokens int) int {
		reg := prometheus.NewPedanticRegistry()
		m := metrics.New(reg)
		m.SetPolicies([]string{"unused-90d", "full-access"})
		for i := range tokens {
			pol := []string{"unused-90d", "full-access"}[i%2]
			m.AddAction(pol, "delete", []string{metrics.OutcomeApplied, metrics.OutcomeFailed}[i%2])
			m.ObserveRequest(api.OpDeleteToken, []int{204, 404, 429, 0}[i%4], time.Millisecond)
			m.OwnerLookup(metrics.LookupFound)
		}
		m.SetTokens(tokens)
		n := 0
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if strings.HasPrefix(mf.GetName(), "patjanitor_") {
				n += len(mf.GetMetric())
			}
		}
		return n
	}
	if small, big := count(10), count(10_000); small != big {
		t.Fatalf("series: %d with 10 tokens, %d with 10,000", small, big)
	}
}

func TestDoubleRegistrationPanics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	metrics.New(reg)
	defer func() {
		if recover() == nil {
			t.Fatal("second New on the same registry did not panic")
		}
	}()
	metrics.New(reg)
}

func TestStandardCollectorsRegisteredByCallerAreKept(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics.New(reg) // must not panic on the already registered process collector
	if !families(t, reg)["process_start_time_seconds"] {
		t.Fatal("process_start_time_seconds missing")
	}
}

func TestConcurrentUse(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				m.ObserveRequest(api.OpDeleteToken, 204, time.Millisecond)
				m.SetPending(map[string]int{fmt.Sprint("p", (w+i)%3): i})
				m.SetPolicies([]string{"p0", "p1"})
				m.SetTokensMatched("p1", i)
				if i%20 != 0 {
					continue
				}
				// A scrape in the middle (the Go collector makes a full
				// gather slow under -race, so not on every pass).
				if _, err := reg.Gather(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := testutil.CollectAndCount(reg, "patjanitor_api_requests_total"); got != 1 {
		t.Errorf("api_requests_total series = %d, want 1", got)
	}
}

// No label may carry token or owner data: no token ids, names or owners as
// labels, or a tenant's token count would become its series count.
func TestNoTokenOrOwnerLabels(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	exercise(metrics.New(reg))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	forbidden := regexp.MustCompile(`^(token_?id|token_?name|owner|owner_?id|email|id|name)$`)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if forbidden.MatchString(lp.GetName()) {
					t.Errorf("%s has label %q", mf.GetName(), lp.GetName())
				}
			}
		}
	}
}
