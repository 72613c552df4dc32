package janitor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
)

// Tenant is the part of the SailPoint API client the engine uses;
// *api.Client implements it.
type Tenant interface {
	ListTokens(ctx context.Context, opts api.ListOptions) ([]pat.Token, error)
	DeleteToken(ctx context.Context, id string) error
	PatchToken(ctx context.Context, id string, ops []pat.PatchOp) (pat.Token, error)
	// BulkUpdateTokens applies one patch of the expiration paths to up to
	// api.MaxBulkIDs tokens of any owner (the v1 admin bulk update) and
	// returns the tokens the tenant answered.
	BulkUpdateTokens(ctx context.Context, ids []string, ops []pat.PatchOp) ([]pat.Token, error)
}

// Journal is the append-only record of intents and outcomes; *audit.Journal
// implements it. Append must be durable (fsynced) when it returns nil: the
// engine sends a mutation only after its intent was appended.
//
// OpenIntents returns the intents without an outcome, in journal order: those
// an interrupted process left, and those a run of this process could not
// close (its journal failed, or it panicked). Every Plan and ApplyPlan asks
// for them and resolves them against its fresh listing before it mutates
// anything, so the journal, not the caller, carries them from run to run.
type Journal interface {
	Append(ctx context.Context, r audit.Record) (audit.Record, error)
	OpenIntents() ([]audit.Record, error)
}

// Metrics receives the engine's counters; *metrics.Metrics implements it. The
// labels are bounded: policy names, action names and fixed outcome words, never
// token ids, names or owners.
type Metrics interface {
	// SetTokens records the population seen by the last run.
	SetTokens(n int)
	// SetTokensMatched records how many tokens a policy won at the last run.
	SetTokensMatched(policy string, n int)
	// AddAction counts one action outcome: OutcomeApplied, OutcomeWouldApply,
	// OutcomeFailed or OutcomeSkipped (the actions_total{outcome} values).
	AddAction(policy, action, outcome string)
	// AddGuardrailTrip counts one tripped guardrail by name.
	AddGuardrailTrip(guard string)
	// ObserveRun records a finished run: its result (RunSuccess, RunFailed or
	// RunBlocked), when it finished and how long it took.
	ObserveRun(result string, finished time.Time, took time.Duration)
}

// Metric label values for actions_total{outcome}.
const (
	MetricApplied    = "applied"     // the request succeeded
	MetricWouldApply = "would_apply" // a report-mode match (or an enforce-mode action "report")
	MetricFailed     = "failed"      // the request failed
	MetricSkipped    = "skipped"     // an enforce-mode action not performed: guardrail, incomplete data, shutdown, dropped on re-verification, already gone
)

// Run results for runs_total{result}.
const (
	RunSuccess = "success" // everything that was to be done was done (possibly nothing)
	RunFailed  = "failed"  // incomplete data, a journal or API failure, or an action failed
	RunBlocked = "blocked" // a guardrail tripped: the run acted on nothing by design
)

// Defaults.
const (
	// DefaultWorkers bounds the mutations in flight. The client's rate limiter
	// paces them; a few workers are enough to keep the limiter's budget busy
	// while a slow request is out, without a burst of parallel deletes if the
	// limiter is off.
	DefaultWorkers = 4
	// DefaultMutationTimeout bounds one mutation (retries included) once it has
	// started; see Execute for why a started mutation ignores cancellation.
	DefaultMutationTimeout = 2 * time.Minute
	// DefaultNotifyTimeout bounds the notifications of one run.
	DefaultNotifyTimeout = 5 * time.Minute
)

// Options configure an Engine.
type Options struct {
	// Config is the loaded policy configuration (required).
	Config *policy.Config
	// Tenant is the API client (required).
	Tenant Tenant
	// TenantURL is the tenant base URL written into the plan and checked by
	// ApplyPlan (required).
	TenantURL string
	// APIVersion is written into the plan and checked by ApplyPlan; "" means
	// the config's (and v3 if that is empty too). It also names the request
	// path journaled with each intent.
	APIVersion pat.APIVersion
	// ClientID is the id of the credential the engine runs as: it is never
	// acted on (required).
	ClientID string
	// Journal is required by Execute and ApplyPlan, not by Plan. Its open
	// intents (a crash mid-mutation) are read at the start of every Plan and
	// ApplyPlan, which then lists unfiltered; the Execute that follows
	// resolves them and says so in Result.Recovered.
	Journal Journal
	// Metrics is optional.
	Metrics Metrics
	// Logger is optional (no logging).
	Logger *zap.Logger
	// Now is the clock (default time.Now). Decisions, plan ages and journal
	// times use it.
	Now func() time.Time
	// Workers bounds concurrent mutations (default DefaultWorkers).
	Workers int
	// MutationTimeout bounds one started mutation (default
	// DefaultMutationTimeout).
	MutationTimeout time.Duration
	// Owners looks up token owners when the config sets owners.lookup;
	// nil means the Tenant, if it implements OwnerDirectory (*api.Client
	// does). Without owners.lookup no lookup is made.
	Owners OwnerDirectory
	// Snoozes are read once per Plan; a snoozed token that matches is
	// skipped (SkipSnoozed). Optional: nil means no snoozes (no state store).
	Snoozes Snoozes
	// Marks keeps the grace-period marks (see grace.go): Plan reads them to
	// tell a due action from a pending one, Execute and ApplyPlan write them.
	// Give it only to an engine that may act or only plans: a dry-run daemon
	// must not unmark tokens because its report-mode policies match none.
	// Optional: without it a grace policy never acts.
	Marks MarkStore
	// Notify sends the run summary, owner digests and notices, and failure
	// alerts after Execute and ApplyPlan, to the receivers the config's
	// notify section names. Optional: nil sends nothing (and a grace policy
	// then never acts, as no warning is delivered).
	Notify Notifier
	// SaveForApproval saves a plan whose actions approvals hold back, for
	// reviewers to sign, and returns where (serve --plans-dir). Optional.
	SaveForApproval func(*plan.Plan) (string, error)
	// NotifyTimeout bounds the delivery attempts after a run (default
	// DefaultNotifyTimeout); what is not delivered by then stays in the
	// outbox for the next run.
	NotifyTimeout time.Duration
	// ClientState keeps the API clients patjanitor disabled (apiclients.go).
	// Optional: without it no API client is ever deleted (delete waits for
	// a record of the disable).
	ClientState ClientState
	// ClientMarks keeps the grace marks of API clients (clientgrace.go), as
	// Marks does for tokens: give it only to an engine that may act or only
	// plans. Optional: without it an apiClients grace policy never acts.
	ClientMarks ClientMarkStore
	// Proofs keeps the confirmed mutations until a later listing proves
	// them (proof.go). Plan reads it; Execute writes it when the engine
	// journals. Optional: without it a confirmation is taken at its word.
	Proofs ProofStore
	// Executed records the saved plans ApplyPlan executed and refuses them
	// afterwards (executed.go). Optional: without it a saved plan can be
	// applied again.
	Executed ExecutedPlans
}

// Engine runs inventories, decisions and mutations for one tenant and one
// configuration. It is immutable once New returns: what a run needs to know
// of the runs before it (the open intents, the grace marks, the snoozes) it
// reads from the journal and the stores Options gave it, so one Engine may
// serve many runs, in turn (the daemon builds one per run because it opens
// the state store per run).
type Engine struct {
	cfg        *policy.Config
	tenant     Tenant
	tenantURL  string
	version    pat.APIVersion
	clientID   string
	journal    Journal
	metrics    Metrics
	log        *zap.Logger
	now        func() time.Time
	workers    int
	mutTimeout time.Duration
	owners     OwnerDirectory           // nil: no owner lookup
	snoozes    Snoozes                  // nil: no snoozes
	grace      map[string]time.Duration // policies with a grace period
	marks      MarkStore                // nil: no grace marks
	notify     Notifier                 // nil: no notifications
	notifyTO   time.Duration
	// saveForApproval is Options.SaveForApproval.
	saveForApproval func(*plan.Plan) (string, error)
	runTimeout      time.Duration // the config's runTimeout; 0: none
	// clientState serves the API client path (apiclients.go).
	clientState ClientState
	clientMarks ClientMarkStore          // nil: no API client grace marks
	clientGrace map[string]time.Duration // apiClients policies with grace
	proofs      ProofStore               // nil: confirmations are not checked
	executed    ExecutedPlans            // nil: saved plans are not remembered
}

// New checks opts and returns an Engine. It sends nothing.
func New(opts Options) (*Engine, error) {
	var errs []error
	if opts.Config == nil {
		errs = append(errs, errors.New("janitor: no config"))
	}
	if opts.Tenant == nil {
		errs = append(errs, errors.New("janitor: no tenant client"))
	}
	if opts.ClientID == "" {
		errs = append(errs, errors.New("janitor: no client id (the engine must know which credential it runs as, to never act on it)"))
	}
	tenantURL, err := NormalizeTenantURL(opts.TenantURL)
	if err != nil {
		errs = append(errs, fmt.Errorf("janitor: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	version := opts.APIVersion
	if version == "" {
		version = opts.Config.Tenant.APIVersion
	}
	version, err = pat.ParseAPIVersion(string(version))
	if err != nil {
		return nil, fmt.Errorf("janitor: %w", err)
	}
	if j, ok := opts.Journal.(*audit.Journal); ok && j == nil {
		// A nil *audit.Journal in the interface is no journal: Plan asks a
		// journal for its open intents, and Execute refuses to mutate
		// without one.
		opts.Journal = nil
	}
	e := &Engine{
		cfg:             opts.Config,
		tenant:          opts.Tenant,
		tenantURL:       tenantURL,
		version:         version,
		clientID:        opts.ClientID,
		journal:         opts.Journal,
		metrics:         opts.Metrics,
		log:             opts.Logger,
		now:             opts.Now,
		workers:         opts.Workers,
		mutTimeout:      opts.MutationTimeout,
		snoozes:         opts.Snoozes,
		grace:           graceOf(opts.Config),
		marks:           opts.Marks,
		notify:          opts.Notify,
		notifyTO:        opts.NotifyTimeout,
		saveForApproval: opts.SaveForApproval,
		runTimeout:      opts.Config.RunTimeout,

		clientState: opts.ClientState,
		clientMarks: opts.ClientMarks,
		clientGrace: clientGrace(opts.Config),
		proofs:      opts.Proofs,
		executed:    opts.Executed,
	}
	if e.notifyTO <= 0 {
		e.notifyTO = DefaultNotifyTimeout
	}
	if e.metrics == nil {
		e.metrics = nopMetrics{}
	}
	if opts.Config.Owners.Lookup {
		e.owners = opts.Owners
		if e.owners == nil {
			e.owners, _ = opts.Tenant.(OwnerDirectory)
		}
	}
	if e.log == nil {
		e.log = zap.NewNop()
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.workers <= 0 {
		e.workers = DefaultWorkers
	}
	if e.mutTimeout <= 0 {
		e.mutTimeout = DefaultMutationTimeout
	}
	return e, nil
}

// RunInput is what one run takes besides the Engine's own parts: the state
// store's parts, for a caller that opens the store per run (serve does, so
// that `snooze` can use it between runs). A nil field keeps what Options
// gave; see Options for what each one does. The intents an earlier run left
// open are not an input: every run reads them from the journal.
type RunInput struct {
	Snoozes     Snoozes
	Marks       MarkStore
	ClientState ClientState
	ClientMarks ClientMarkStore
	Notify      Notifier
	Proofs      ProofStore
	Executed    ExecutedPlans
}

// forRun returns a copy of the engine with in's parts: the Engine itself is
// not changed, so runs with different stores do not see each other's.
func (e *Engine) forRun(in RunInput) *Engine {
	c := *e
	if in.Snoozes != nil {
		c.snoozes = in.Snoozes
	}
	if in.Marks != nil {
		c.marks = in.Marks
	}
	if in.ClientState != nil {
		c.clientState = in.ClientState
	}
	if in.ClientMarks != nil {
		c.clientMarks = in.ClientMarks
	}
	if in.Notify != nil {
		c.notify = in.Notify
	}
	if in.Proofs != nil {
		c.proofs = in.Proofs
	}
	if in.Executed != nil {
		c.executed = in.Executed
	}
	return &c
}

// TenantURL returns the normalised tenant URL the engine writes into plans.
func (e *Engine) TenantURL() string { return e.tenantURL }

// Run plans and then executes the plan: what the daemon and `apply` without a
// plan file do. The returned Result is non-nil whenever planning got far enough
// to produce a plan, also when err is not nil (incomplete data, a tripped
// guardrail, failed actions), so the caller can report it.
//
// The whole run, planning and mutations, is bounded by the config's
// runTimeout (see Execute for what the end of ctx means to mutations). in
// gives the run its state store parts (RunInput); Plan and Execute called
// on their own use the Options' ones.
func (e *Engine) Run(ctx context.Context, in RunInput) (*Result, error) {
	e = e.forRun(in)
	ctx, cancel := e.runContext(ctx)
	defer cancel()
	started := e.now()
	pl, err := e.Plan(ctx)
	if pl == nil {
		e.metrics.ObserveRun(RunFailed, e.now(), e.now().Sub(started))
		return nil, err
	}
	return e.executeUnsigned(ctx, pl, started)
}

type nopMetrics struct{}

func (nopMetrics) SetTokens(int)                               {}
func (nopMetrics) SetTokensMatched(string, int)                {}
func (nopMetrics) AddAction(string, string, string)            {}
func (nopMetrics) AddGuardrailTrip(string)                     {}
func (nopMetrics) ObserveRun(string, time.Time, time.Duration) {}
