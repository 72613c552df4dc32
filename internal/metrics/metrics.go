// Package metrics defines every Prometheus metric patjanitor exports, under the
// prefix patjanitor_, on a registry the caller passes in (never the default
// registry). The names are a contract: the Grafana dashboard and the alert rules
// in deploy/ use them, and a test there fails when one of them is not exported.
//
// Label values are bounded by construction. Policy, receiver and guardrail names
// come from the configuration; results, outcomes, reasons, kinds and API
// operations come from the fixed sets documented on the constants below. Token
// ids, token names, owners and e-mail addresses are never label values: a tenant
// with 10,000 tokens has as many series as one with 10.
package metrics

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/patjanitor/patjanitor/internal/buildinfo"
)

// Namespace is the prefix of every patjanitor metric.
const Namespace = "patjanitor"

// Values of runs_total{result}. They match internal/janitor's Run* constants.
const (
	// RunSuccess: everything the run set out to do was done (possibly nothing).
	RunSuccess = "success"
	// RunFailed: incomplete data, a journal or API failure, or a failed action.
	RunFailed = "failed"
	// RunBlocked: a guardrail tripped, so the run acted on nothing by design.
	RunBlocked = "blocked"
)

// Values of runs_skipped_total{reason}.
const (
	// SkipOverlap: a scheduled run was due while the same schedule's previous
	// run was still running or waiting its turn (runs of other schedules wait
	// rather than skip; no two runs are ever in progress at once).
	SkipOverlap = "overlap"
	// SkipShutdown: a run was due while the daemon was shutting down.
	SkipShutdown = "shutdown"
)

// Values of actions_total{outcome}; the alert rules and docs/operations.md
// use the same words.
const (
	OutcomeApplied    = "applied"     // the mutation succeeded
	OutcomeWouldApply = "would_apply" // a report-mode match: nothing was sent
	OutcomeFailed     = "failed"      // the mutation was sent and failed
	OutcomeSkipped    = "skipped"     // an enforce-mode action not performed (guardrail, incomplete data, shutdown, re-verification, already gone)
)

// Values of approved_plans_total{result,reason}.
const (
	PlanApplied          = "applied"
	PlanRejected         = "rejected"
	PlanReasonNone       = "none"       // applied
	PlanReasonSignatures = "signatures" // fewer valid approvals than required
	PlanReasonPlan       = "plan"       // apply PLAN's checks refused it (age, tenant, config, hash, guardrail, executed before)
	PlanReasonUnreadable = "unreadable" // not a plan, or its signature file is malformed
	PlanReasonError      = "error"      // the apply itself failed (listing, journal)
)

// Values of notifications_total{kind}.
const (
	KindSummary = "summary" // the run summary
	KindDigest  = "digest"  // an owner's warning before an action
	KindNotice  = "notice"  // an owner's notice after an action
	KindFailure = "failure" // a failed run, tripped guardrail or authentication error
	KindTest    = "test"    // patjanitor notify test
)

// Values of notifications_total{outcome} (internal/notify's Outcome values).
const (
	// NotificationSent: the receiver accepted the message.
	NotificationSent = "sent"
	// NotificationFailed: a permanent failure, or the message expired; it
	// left the outbox undelivered.
	NotificationFailed = "failed"
	// NotificationDeferred: this attempt failed; the message stays in the
	// outbox and is tried again on the next run.
	NotificationDeferred = "deferred"
	// NotificationSuppressed: a digest identical to one delivered within the
	// digest interval; not sent.
	NotificationSuppressed = "suppressed"
)

// Values of owner_lookups_total{outcome}.
const (
	LookupFound   = "found"   // the owner's identity was returned
	LookupMissing = "missing" // no such identity (ownerMissing)
	LookupError   = "error"   // the lookup request failed
)

// CodeError is the api_requests_total{code} value for an attempt that got no
// HTTP response at all (connection refused or reset, timeout, TLS failure): the
// API client reports those with code 0. A word rather than "0" so a dashboard
// legend and an alert matcher (code=~"5..|error") read plainly.
const CodeError = "error"

// Operations returns the api_* {operation} values internal/api reports (its
// Op* constants); their retry series are created up front.
func Operations() []string {
	return []string{"oauth_token", "list_tokens", "delete_token", "patch_token", "create_token", "list_public_identities", "bulk_update_tokens", "oauth_info"}
}

// RetryReasons returns the api_retries_total{reason} values internal/api
// reports (its Reason* constants).
func RetryReasons() []string {
	return []string{"rate_limited", "server_error", "connection", "unauthorized"}
}

// WaitCauses returns the api_wait_seconds{cause} values internal/api reports
// (its Wait* constants).
func WaitCauses() []string {
	return []string{"retry_after", "backoff", "rate_limit"}
}

// Guards returns the guardrail_trips_total{guard} values: the limits keys of
// the configuration the engine checks.
func Guards() []string {
	return []string{"maxActionsPerRun", "maxActionsPercent", "maxActionsPerOwner"}
}

// Metrics holds patjanitor's collectors. All methods are safe for concurrent
// use: the API client calls ObserveRequest from several workers at once.
type Metrics struct {
	buildInfo       *prometheus.GaugeVec
	runs            *prometheus.CounterVec
	runsSkipped     *prometheus.CounterVec
	runDuration     prometheus.Histogram
	lastRun         prometheus.Gauge
	lastSuccess     prometheus.Gauge
	tokens          *prometheus.GaugeVec
	tokensMatched   *prometheus.GaugeVec
	actions         *prometheus.CounterVec
	guardrailTrips  *prometheus.CounterVec
	apiRequests     *prometheus.CounterVec
	apiDuration     *prometheus.HistogramVec
	apiRetries      *prometheus.CounterVec
	reloadOK        prometheus.Gauge
	reloadOKTime    prometheus.Gauge
	notifications   *prometheus.CounterVec
	pending         *prometheus.GaugeVec
	ownerLookups    *prometheus.CounterVec
	plansAwaiting   prometheus.Gauge
	approvedPlans   *prometheus.CounterVec
	runInProgress   prometheus.Gauge
	apiWait         *prometheus.GaugeVec
	waitMu          sync.Mutex               // guards waiting
	waiting         map[string]time.Duration // waits in progress, summed by cause
	mu              sync.Mutex               // guards the three sets below
	matchedPolicies map[string]struct{}      // policies with a tokens_matched series
	pendingPolicies map[string]struct{}      // policies with a pending_actions series
	configured      map[string]struct{}      // nil until SetPolicies; then only these get tokens_matched
	view            *viewMetrics
	unproven        *prometheus.GaugeVec // proof.go
}

// New creates patjanitor's metrics and registers them on reg. It also
// registers the standard process and Go runtime collectors, unless reg already
// has them: the PatjanitorNoSuccessfulRun alert falls back to
// process_start_time_seconds before the first successful run, so that a
// restarted daemon is not reported as stale the moment it starts.
//
// New panics if one of patjanitor's own metrics cannot be registered (a second
// New on the same registry): that is a programming error, as with
// prometheus.MustRegister.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "build_info",
			Help: "A metric with a constant '1' value labeled by the version, commit and Go version patjanitor was built from.",
		}, []string{"version", "commit", "goversion"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "runs_total",
			Help: "Runs finished, by result: success, failed, or blocked (a guardrail tripped and nothing was done).",
		}, []string{"result"}),
		runsSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "runs_skipped_total",
			Help: "Scheduled runs not started, by reason: overlap (the same schedule's previous run was still running or waiting) or shutdown.",
		}, []string{"reason"}),
		runDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "run_duration_seconds",
			Help: "Wall time of a run, from the first listing call to the last journal record.",
			// A run lists (about a second for 100,000 tokens) and then paces its
			// mutations under the tenant's rate limit (100 requests per 10 s), so
			// a run with a few hundred actions takes minutes.
			Buckets: []float64{0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "last_run_timestamp_seconds",
			Help: "Unix time the last run finished, whatever its result.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "last_successful_run_timestamp_seconds",
			Help: "Unix time the last run with result success finished; 0 until one has.",
		}),
		tokens: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "tokens",
			Help: "Credentials in the tenant at the last run (the whole population), by resource: personalAccessTokens or apiClients.",
		}, []string{"resource"}),
		tokensMatched: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "tokens_matched",
			Help: "Tokens each policy won (matched and was chosen for) at its last run.",
		}, []string{"policy"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "actions_total",
			Help: "Actions by policy, action, outcome (applied, would_apply (report mode), failed, skipped) and resource (personalAccessTokens, apiClients).",
		}, []string{"policy", "action", "outcome", "resource"}),
		guardrailTrips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "guardrail_trips_total",
			Help: "Runs stopped before their first mutation by a guardrail, by guardrail and resource (each resource has its own).",
		}, []string{"guard", "resource"}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "api_requests_total",
			Help: "HTTP requests to the tenant, by operation and status code (\"error\" when no response arrived). Each retry attempt counts.",
		}, []string{"operation", "code"}),
		apiDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "api_request_duration_seconds",
			Help: "Duration of one HTTP request to the tenant, body included, by operation.",
			// A listing of a large tenant is one response of tens of megabytes.
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"operation"}),
		apiRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "api_retries_total",
			Help: "Repeated HTTP requests to the tenant, by operation and reason: rate_limited, server_error, connection, unauthorized.",
		}, []string{"operation", "reason"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "config_last_reload_successful",
			Help: "Whether the last configuration load or reload succeeded (1) or was refused (0).",
		}),
		reloadOKTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration load or reload.",
		}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "notifications_total",
			Help: "Notification delivery attempts by receiver, kind (summary, digest, notice, failure, test) and outcome (sent, deferred, failed, suppressed).",
		}, []string{"receiver", "kind", "outcome"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "pending_actions",
			Help: "Tokens marked by a policy with a grace period whose action has not happened yet.",
		}, []string{"policy"}),
		ownerLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "owner_lookups_total",
			Help: "Owner identity lookups by outcome: found, missing, error.",
		}, []string{"outcome"}),
		plansAwaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "plans_awaiting_approval",
			Help: "Plans serve saved in --plans-dir/pending for reviewers to sign (approvals configured).",
		}),
		approvedPlans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "approved_plans_total",
			Help: "Signed plans serve took from --plans-dir/approved, by result (applied, rejected) and reason: none, signatures (not enough valid approvals), plan (stale, another tenant or config, edited, guardrail), unreadable, error (the apply failed).",
		}, []string{"result", "reason"}),
		runInProgress: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "run_in_progress",
			Help: "1 while a run is in progress (listing, waiting for the tenant, mutating), else 0.",
		}),
		apiWait: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "api_wait_seconds",
			Help: "Length of the waits before requests to the tenant in progress now, by cause: retry_after (the tenant's Retry-After), backoff (retrying a failure), rate_limit (the client-side rate limit); 0 when none. Concurrent waits add up.",
		}, []string{"cause"}),
		waiting:         map[string]time.Duration{},
		matchedPolicies: map[string]struct{}{},
		pendingPolicies: map[string]struct{}{},
	}
	reg.MustRegister(
		m.buildInfo, m.runs, m.runsSkipped, m.runDuration, m.lastRun, m.lastSuccess,
		m.tokens, m.tokensMatched, m.actions, m.guardrailTrips,
		m.apiRequests, m.apiDuration, m.apiRetries, m.reloadOK, m.reloadOKTime,
		m.notifications, m.pending, m.ownerLookups, m.plansAwaiting, m.approvedPlans,
		m.runInProgress, m.apiWait,
	)
	m.view = newViewMetrics(reg)
	m.unproven = newUnprovenMutations(reg)
	for _, c := range []prometheus.Collector{
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
	} {
		// The daemon may have registered them already; that is fine.
		var are prometheus.AlreadyRegisteredError
		if err := reg.Register(c); err != nil && !errors.As(err, &are) {
			panic(err)
		}
	}

	bi := buildinfo.Get()
	m.buildInfo.WithLabelValues(bi.Version, bi.Commit, bi.GoVersion).Set(1)

	// Series that exist from the first scrape, so that increase() and rate()
	// in alerts see the step from 0 to 1 instead of a series appearing with 1.
	for _, r := range []string{RunSuccess, RunFailed, RunBlocked} {
		m.runs.WithLabelValues(r)
	}
	for _, r := range []string{SkipOverlap, SkipShutdown} {
		m.runsSkipped.WithLabelValues(r)
	}
	for _, g := range Guards() {
		m.guardrailTrips.WithLabelValues(g, ResourcePATs)
	}
	for _, g := range ClientGuards() {
		m.guardrailTrips.WithLabelValues(g, ResourceAPIClients)
	}
	for _, op := range Operations() {
		for _, r := range RetryReasons() {
			m.apiRetries.WithLabelValues(op, r)
		}
	}
	m.approvedPlans.WithLabelValues(PlanApplied, PlanReasonNone)
	for _, r := range []string{PlanReasonSignatures, PlanReasonPlan, PlanReasonUnreadable, PlanReasonError} {
		m.approvedPlans.WithLabelValues(PlanRejected, r)
	}
	for _, o := range []string{LookupFound, LookupMissing, LookupError} {
		m.ownerLookups.WithLabelValues(o)
	}
	for _, c := range WaitCauses() {
		m.apiWait.WithLabelValues(c)
	}
	return m
}

// ObserveRequest records one HTTP attempt against the tenant (internal/api's
// Observer). code 0 means no response arrived and is recorded as CodeError.
func (m *Metrics) ObserveRequest(operation string, code int, d time.Duration) {
	m.apiRequests.WithLabelValues(operation, codeLabel(code)).Inc()
	m.apiDuration.WithLabelValues(operation).Observe(d.Seconds())
}

// codeLabel keeps the code label bounded: a status outside the HTTP range is
// not a status the server sent.
func codeLabel(code int) string {
	if code < 100 || code > 599 {
		return CodeError
	}
	return strconv.Itoa(code)
}

// ObserveRetry records that an attempt is being repeated (internal/api's
// Observer); reason is one of internal/api's Reason* values.
func (m *Metrics) ObserveRetry(operation, reason string) {
	m.apiRetries.WithLabelValues(operation, reason).Inc()
}

// WaitStarted records that the API client begins a wait of d before a
// request (internal/api's WaitObserver); cause is one of WaitCauses.
func (m *Metrics) WaitStarted(cause string, d time.Duration) { m.addWait(cause, d) }

// WaitEnded records the end of a wait WaitStarted reported.
func (m *Metrics) WaitEnded(cause string, d time.Duration) { m.addWait(cause, -d) }

// addWait keeps the sum in whole nanoseconds, so that the gauge returns to
// exactly 0 when the waits end (float additions would leave dust).
func (m *Metrics) addWait(cause string, d time.Duration) {
	m.waitMu.Lock()
	defer m.waitMu.Unlock()
	m.waiting[cause] += d
	m.apiWait.WithLabelValues(cause).Set(m.waiting[cause].Seconds())
}

// SetRunInProgress records whether a run is in progress (the daemon sets it
// around each run).
func (m *Metrics) SetRunInProgress(running bool) {
	v := 0.0
	if running {
		v = 1
	}
	m.runInProgress.Set(v)
}

// ObserveRun records a finished run: result is RunSuccess, RunFailed or
// RunBlocked. Only a success moves last_successful_run_timestamp_seconds; a
// blocked run did nothing, and the guardrail alert covers it.
func (m *Metrics) ObserveRun(result string, finished time.Time, took time.Duration) {
	m.runs.WithLabelValues(result).Inc()
	m.runDuration.Observe(took.Seconds())
	m.lastRun.Set(unixSeconds(finished))
	if result == RunSuccess {
		m.lastSuccess.Set(unixSeconds(finished))
	}
}

// RunSkipped counts a scheduled run that was not started; reason is
// SkipOverlap or SkipShutdown.
func (m *Metrics) RunSkipped(reason string) {
	m.runsSkipped.WithLabelValues(reason).Inc()
}

// SetTokens records the token population seen by the last run.
func (m *Metrics) SetTokens(n int) {
	m.tokens.WithLabelValues(ResourcePATs).Set(float64(n))
}

// SetTokensMatched records how many tokens policy won at its last run.
func (m *Metrics) SetTokensMatched(policy string, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.configured != nil {
		if _, ok := m.configured[policy]; !ok {
			// A run that started before a reload removed this policy: do not
			// bring its series back.
			return
		}
	}
	m.matchedPolicies[policy] = struct{}{}
	m.tokensMatched.WithLabelValues(policy).Set(float64(n))
}

// SetPolicies tells the metrics which policies the current configuration has,
// after each successful load or reload. tokens_matched and pending_actions
// series of policies no longer configured are removed, so a renamed policy
// does not leave a stale gauge behind; new policies start at 0.
// actions_total keeps its counters: counters must not go backwards.
func (m *Metrics) SetPolicies(names []string) {
	keep := make(map[string]struct{}, len(names))
	for _, n := range names {
		keep[n] = struct{}{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.configured = keep
	for p := range m.matchedPolicies {
		if _, ok := keep[p]; !ok {
			m.tokensMatched.DeleteLabelValues(p)
			delete(m.matchedPolicies, p)
		}
	}
	for p := range m.pendingPolicies {
		if _, ok := keep[p]; !ok {
			m.pending.DeleteLabelValues(p)
			delete(m.pendingPolicies, p)
		}
	}
	for p := range keep {
		if _, ok := m.matchedPolicies[p]; !ok {
			m.matchedPolicies[p] = struct{}{}
			m.tokensMatched.WithLabelValues(p).Set(0)
		}
	}
}

// AddAction counts one action outcome: OutcomeApplied, OutcomeWouldApply,
// OutcomeFailed or OutcomeSkipped. action is the policy's action (report,
// delete, patch, expire).
func (m *Metrics) AddAction(policy, action, outcome string) {
	m.actions.WithLabelValues(policy, action, outcome, ResourcePATs).Inc()
}

// AddGuardrailTrip counts a tripped guardrail by its limits key
// (maxActionsPerRun, maxActionsPercent, maxActionsPerOwner).
func (m *Metrics) AddGuardrailTrip(guard string) {
	m.guardrailTrips.WithLabelValues(guard, ResourcePATs).Inc()
}

// ConfigReloaded records the result of loading or reloading the configuration.
// A refused reload leaves the success timestamp where it was: the running
// configuration is still the one loaded then.
func (m *Metrics) ConfigReloaded(ok bool, at time.Time) {
	if !ok {
		m.reloadOK.Set(0)
		return
	}
	m.reloadOK.Set(1)
	m.reloadOKTime.Set(unixSeconds(at))
}

// Notification counts one delivery attempt to receiver (a configured receiver
// name); kind is one of the Kind* values and outcome one of the Notification*
// values.
func (m *Metrics) Notification(receiver, kind, outcome string) {
	m.notifications.WithLabelValues(receiver, kind, outcome).Inc()
}

// SetPending sets pending_actions for the policies in perPolicy; the others
// keep their series. A run of one schedule sees the marks of every policy but
// knows only its own policies' grace settings, so it must not remove the
// series of another schedule's policies; removed policies lose theirs in
// SetPolicies, and a policy that is not configured gets none.
func (m *Metrics) SetPending(perPolicy map[string]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p, n := range perPolicy {
		if m.configured != nil {
			if _, ok := m.configured[p]; !ok {
				continue
			}
		}
		m.pendingPolicies[p] = struct{}{}
		m.pending.WithLabelValues(p).Set(float64(n))
	}
}

// SetPlansAwaiting sets plans_awaiting_approval.
func (m *Metrics) SetPlansAwaiting(n int) { m.plansAwaiting.Set(float64(n)) }

// ApprovedPlan counts one signed plan serve applied or rejected: result is
// PlanApplied or PlanRejected, reason one of the PlanReason* values.
func (m *Metrics) ApprovedPlan(result, reason string) {
	m.approvedPlans.WithLabelValues(result, reason).Inc()
}

// OwnerLookup counts one owner lookup: LookupFound, LookupMissing or
// LookupError.
func (m *Metrics) OwnerLookup(outcome string) {
	m.ownerLookups.WithLabelValues(outcome).Inc()
}

// unixSeconds keeps sub-second precision, as Prometheus' own *_timestamp_seconds do.
func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}
