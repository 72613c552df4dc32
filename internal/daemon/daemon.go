package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
)

// Defaults of the serve flags.
const (
	// DefaultListenAddress is where /metrics, /healthz, /readyz and /plan are
	// served. 9874 is not taken by any exporter in Prometheus' list of default
	// port allocations.
	DefaultListenAddress = ":9874"
	// DefaultShutdownTimeout bounds the wait for the run in progress on
	// SIGTERM. Kubernetes' default terminationGracePeriodSeconds is 30 s too;
	// set the pod's a little higher than this flag so the daemon, not the
	// kubelet's SIGKILL, decides.
	DefaultShutdownTimeout = 30 * time.Second
	// DefaultReloadInterval is how often the config file's checksum is
	// polled. Kubernetes takes up to a minute or so to project a changed
	// ConfigMap into the pod, so polling faster buys little.
	DefaultReloadInterval = 30 * time.Second
)

// Runner performs one run: inventory, decisions, plan and, for enforce-mode
// policies, the mutations. The engine (internal/janitor, wired by the serve
// command) implements it. Run must honour the engine's cancellation contract:
// when ctx ends, start no new mutation, but finish and journal the ones in
// flight, then return.
type Runner interface {
	Run(ctx context.Context, cfg *policy.Config) (*RunReport, error)
}

// RunReport is what a run did, for the run's log line and /plan. The engine's
// metrics are the engine's business; the daemon only logs these counts.
type RunReport struct {
	// RunID names the run in the journal and in the engine's log lines.
	RunID string
	// Plan is the run's plan document (nil when the run failed before it had
	// one, for example the tenant refused the credentials).
	Plan *plan.Plan
	// Population is the number of tokens listed.
	Population int
	// Matched is the number of plan items; WouldApply of them are report-mode
	// (or action report) items that change nothing, Grace are marked tokens
	// of policies with a grace period, waiting for their deadline.
	Matched, WouldApply, Grace int
	// The enforce-mode items by outcome.
	Applied, Gone, Failed, Blocked, NotStarted int
	// APIClients are the API client counts (apiclients.go); nil for a run
	// without apiClients policies.
	APIClients *ClientCounts
}

// Metrics receives the daemon's own measurements; *metrics.Metrics
// implements it. Run metrics are the engine's.
type Metrics interface {
	// ConfigReloaded records the outcome of a configuration (re)load: the
	// config_last_reload_successful gauge, and on success the
	// config_last_reload_success_timestamp_seconds gauge.
	ConfigReloaded(success bool, at time.Time)
	// RunSkipped counts a run that was due but not started, with the reason
	// SkipOverlap or SkipShutdown (runs_skipped_total{reason}).
	RunSkipped(reason string)
	// SetPolicies names the policies of the configuration now running, after
	// every successful load, so per-policy gauges of removed policies go.
	SetPolicies(names []string)
	// SetRunInProgress is true while a run holds the gate, from its start
	// to its end and across the runs that waited for it (run_in_progress),
	// so that a run waiting on the tenant shows. It is called with the
	// gate's lock held: it must not block.
	SetRunInProgress(running bool)
}

// Reasons a due run was skipped (the runs_skipped_total{reason} values of
// internal/metrics).
const (
	// SkipOverlap: another run was in progress.
	SkipOverlap = "overlap"
	// SkipShutdown: the daemon was shutting down.
	SkipShutdown = "shutdown"
)

// Registry is where /metrics gathers from and where the HTTP handler's own
// metrics are registered; *prometheus.Registry implements it.
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// LoadFunc parses and validates a config file's bytes (the daemon reads the
// file itself, so that the checksum it polls is of exactly what was loaded).
type LoadFunc func(path string, data []byte) (*policy.Config, error)

// Options configure a Daemon.
type Options struct {
	// ConfigPath is the policies file (required). It is read at start, on
	// every Reload signal and, with ReloadInterval, whenever its content
	// changes.
	ConfigPath string
	// Load parses and validates the file's bytes, the way the other commands
	// load it (environment overrides included). Default: policy.Parse.
	Load LoadFunc
	// NewRunner builds the Runner for a loaded config (the tenant client, its
	// credentials). It is part of a (re)load: if it fails, the config is
	// refused like an invalid file. Required.
	NewRunner func(cfg *policy.Config) (Runner, error)
	// Logger is the root logger (default: none).
	Logger *zap.Logger
	// Registry is served at /metrics (required).
	Registry Registry
	// Metrics is optional.
	Metrics Metrics
	// ListenAddress is the HTTP listen address (default DefaultListenAddress).
	// Tests use 127.0.0.1:0 and read the bound address with Addr.
	ListenAddress string
	// DryRun forces every policy into report mode, whatever the file says.
	DryRun bool
	// RunOnStart runs all policies once, together, right after start.
	RunOnStart bool
	// EnablePlan serves the latest plan of each schedule group at /plan. Off
	// by default: a plan lists token names and owners.
	EnablePlan bool
	// ShutdownTimeout bounds the wait for the run in progress when ctx ends
	// (default DefaultShutdownTimeout).
	ShutdownTimeout time.Duration
	// ReloadInterval is how often the file's checksum is compared; 0 turns
	// polling off (the serve flag defaults to DefaultReloadInterval).
	ReloadInterval time.Duration
	// Reload triggers a reload on every receive (SIGHUP, wired by the serve
	// command). A reload always reloads, even when the content is unchanged.
	Reload <-chan struct{}
	// Clock is what the schedules, the config polling, the reload
	// timestamps and the run log lines run on (default: the wall clock).
	// Tests pass an internal/fakeclock.Clock, so that a run due in an hour
	// starts when the test moves the clock.
	Clock Clock
	// WebConfigFile is an exporter-toolkit web configuration file (TLS,
	// basic auth) for the HTTP endpoints, as every Prometheus exporter
	// takes it with --web.config.file; "" serves plain HTTP.
	WebConfigFile string
	// EnableLifecycle serves POST /-/reload (Prometheus'
	// --web.enable-lifecycle): a reload like SIGHUP, answered with its
	// result.
	EnableLifecycle bool
	// Approve stores a signed plan POSTed to /approve (with
	// EnableLifecycle): it checks the plan and its signatures and returns
	// the plan's policies. nil: /approve answers 404 (no --plans-dir).
	Approve func(ctx context.Context, plan, signatures []byte) (Approved, error)
	// Approved carries plans that reviewers approved and that should be
	// applied now (serve --apply-approved-immediately): each starts a run of
	// the schedule groups of its policies, in turn with the other runs.
	Approved <-chan Approved
	// ApplyApprovedImmediately makes POST /approve start that run too.
	ApplyApprovedImmediately bool
	// HTTPTimeouts bound how long a client may take over a request; a zero
	// field takes its default (defaultHTTPTimeouts). Tests shorten them.
	HTTPTimeouts HTTPTimeouts
}

// HTTPTimeouts bound how long a client of the HTTP endpoints may hold a
// connection, so that clients that connect and then stall (slowloris) cannot
// hold the daemon's connections, memory and POST /approve's few places.
type HTTPTimeouts struct {
	// ReadHeader bounds the request line and headers.
	ReadHeader time.Duration
	// Idle bounds a kept-alive connection between requests.
	Idle time.Duration
	// BodyStall is the longest POST /approve's body may go with no byte
	// arriving: a slow link still sends something every few seconds, a
	// stalled client sends nothing.
	BodyStall time.Duration
	// Read bounds a whole request, its body included: the largest plan
	// (plan.MaxFileBytes, 256 MiB) takes 36 minutes at 1 Mbit/s.
	Read time.Duration
}

// defaultHTTPTimeouts are the HTTP timeouts of serve.
var defaultHTTPTimeouts = HTTPTimeouts{
	ReadHeader: 10 * time.Second,
	Idle:       2 * time.Minute,
	BodyStall:  time.Minute,
	Read:       time.Hour,
}

// withDefaults fills the zero fields from defaultHTTPTimeouts.
func (t HTTPTimeouts) withDefaults() HTTPTimeouts {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&t.ReadHeader, defaultHTTPTimeouts.ReadHeader)
	def(&t.Idle, defaultHTTPTimeouts.Idle)
	def(&t.BodyStall, defaultHTTPTimeouts.BodyStall)
	def(&t.Read, defaultHTTPTimeouts.Read)
	return t
}

// Approved is a signed plan waiting in the approved directory.
type Approved struct {
	// Path is where it was stored; Policies are the policies of its items.
	Path     string
	Policies []string
}

// generation is one loaded configuration with everything built from it.
// Generations are immutable once built (start sets the scheduler, once); a
// reload builds a new one.
type generation struct {
	cfg      *policy.Config
	checksum string // sha256 of the file bytes, hex
	runner   Runner
	groups   []*group
	// loc is the config's time zone: the schedules' Next is computed in it.
	loc   *time.Location
	sched *scheduler
}

// rebase is the run of g (a group of an older generation, or the start
// run's all policies) on gen: gen's group of the same schedule, or all of
// gen's policies for the start run. false: gen has no such schedule (its
// policies now run on others, or are gone).
func (gen *generation) rebase(g Group) (Group, *policy.Config, bool) {
	if g.Schedule == "" {
		return Group{Policies: policyNames(gen.cfg)}, gen.cfg, true
	}
	for _, ng := range gen.groups {
		if ng.Schedule == g.Schedule {
			return ng.Group, ng.cfg, true
		}
	}
	return Group{}, nil, false
}

// group is a Group with its restricted config and parsed schedule.
type group struct {
	Group
	cfg   *policy.Config
	sched cron.Schedule
}

// Daemon is a running `patjanitor serve`. Create it with New, then call Run
// exactly once.
type Daemon struct {
	path            string
	load            LoadFunc
	newRunner       func(*policy.Config) (Runner, error)
	log             *zap.Logger
	metrics         Metrics
	reg             Registry
	dryRun          bool
	runOnStart      bool
	enablePlan      bool
	shutdownTimeout time.Duration
	reloadInterval  time.Duration
	reloadCh        <-chan struct{}
	clock           Clock
	webConfigFile   string
	enableLifecycle bool
	approve         func(ctx context.Context, plan, signatures []byte) (Approved, error)
	approvedCh      <-chan Approved
	applyNow        bool
	// approveNow carries the plans POST /approve stored to Run's goroutine,
	// which alone starts runs outside the schedule (shutdown waits for them).
	approveNow chan Approved
	// approving holds a place for each POST /approve being read or
	// checked: each holds its plan in memory (up to plan.MaxFileBytes), so
	// only maxApproving are read at once and the next is answered 503.
	approving chan struct{}
	timeouts  HTTPTimeouts
	// reloadReq carries POST /-/reload requests to Run's goroutine (the
	// only one that reloads), each with the channel for its result.
	reloadReq chan chan error

	listener net.Listener
	server   *http.Server

	// lastSeen is the checksum of the file content last loaded or refused.
	// Only Run's goroutine uses it.
	lastSeen string

	// runCtx is the context runs get: Run's ctx. It is set before any
	// scheduler starts and never changes afterwards.
	runCtx context.Context

	gen  atomic.Pointer[generation]
	gate gate
	// jobs are the runs in progress or waiting at the gate, whoever started
	// them (a schedule, the start, an approval), for shutdown to wait for.
	// Only Run's goroutine and the schedulers' loops add to it, and
	// shutdown stops the loops before it waits.
	jobs  sync.WaitGroup
	ready atomic.Bool
	plans planStore
}

// New loads and validates the configuration, builds its Runner and binds the
// listen address. Any failure is returned: a daemon that cannot start should
// not pretend to. Nothing runs until Run.
func New(opts Options) (*Daemon, error) {
	var errs []error
	if opts.ConfigPath == "" {
		errs = append(errs, errors.New("daemon: no config path"))
	}
	if opts.NewRunner == nil {
		errs = append(errs, errors.New("daemon: no runner factory"))
	}
	if opts.Registry == nil {
		errs = append(errs, errors.New("daemon: no metrics registry"))
	}
	if opts.ShutdownTimeout < 0 || opts.ReloadInterval < 0 {
		errs = append(errs, errors.New("daemon: negative shutdown timeout or reload interval"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	d := &Daemon{
		path:            opts.ConfigPath,
		load:            opts.Load,
		newRunner:       opts.NewRunner,
		log:             opts.Logger,
		metrics:         opts.Metrics,
		reg:             opts.Registry,
		dryRun:          opts.DryRun,
		runOnStart:      opts.RunOnStart,
		enablePlan:      opts.EnablePlan,
		shutdownTimeout: opts.ShutdownTimeout,
		reloadInterval:  opts.ReloadInterval,
		reloadCh:        opts.Reload,
		clock:           opts.Clock,
		webConfigFile:   opts.WebConfigFile,
		enableLifecycle: opts.EnableLifecycle,
		approve:         opts.Approve,
		approvedCh:      opts.Approved,
		applyNow:        opts.ApplyApprovedImmediately,
		approveNow:      make(chan Approved, 16),
		approving:       make(chan struct{}, maxApproving),
		timeouts:        opts.HTTPTimeouts.withDefaults(),
		reloadReq:       make(chan chan error),
	}
	if d.webConfigFile != "" {
		// Checked before anything starts: a typo in the TLS or auth setup
		// must stop serve, not leave the endpoints open or unreachable.
		if err := web.Validate(d.webConfigFile); err != nil {
			return nil, fmt.Errorf("--web.config.file %s: %w", d.webConfigFile, err)
		}
	}
	if d.load == nil {
		d.load = policy.Parse
	}
	if d.log == nil {
		d.log = zap.NewNop()
	}
	if d.metrics == nil {
		d.metrics = nopMetrics{}
	}
	// run_in_progress is the gate's state rather than the span of
	// Runner.Run: a run holds the gate a little longer (its end is logged,
	// its plan kept), and a tick in that time is skipped as overlapping. A
	// 0 must mean that the next tick runs (tests tick on it).
	d.gate.onBusy = d.metrics.SetRunInProgress
	if d.shutdownTimeout == 0 {
		d.shutdownTimeout = DefaultShutdownTimeout
	}
	if d.clock == nil {
		d.clock = wallClock{}
	}
	addr := opts.ListenAddress
	if addr == "" {
		addr = DefaultListenAddress
	}

	data, err := policy.ReadFile(d.path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	gen, err := d.build(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", d.path, err)
	}
	d.gen.Store(gen)
	d.lastSeen = gen.checksum

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on --web.listen-address %s: %w", addr, err)
	}
	d.listener = ln
	d.server = &http.Server{
		Handler:           d.handler(),
		ReadHeaderTimeout: d.timeouts.ReadHeader,
		// POST /approve moves its read deadline on as its body arrives
		// (BodyStall), up to Read after its handler starts: past this
		// one by at most the time its headers took (ReadHeader), which
		// the handler cannot know.
		ReadTimeout: d.timeouts.Read,
		IdleTimeout: d.timeouts.Idle,
		// net/http logs what clients do wrong (a hung-up connection, a bad
		// request line): useful when debugging, noise otherwise.
		ErrorLog: debugStdLog(d.log.Named("http")),
	}
	d.metrics.SetPolicies(policyNames(gen.cfg))
	d.metrics.ConfigReloaded(true, d.clock.Now())
	d.logGeneration("config loaded", gen)
	return d, nil
}

// Addr is the address the HTTP server listens on (with the port the kernel
// chose for ":0").
func (d *Daemon) Addr() net.Addr { return d.listener.Addr() }

// Run schedules the runs, serves HTTP and handles reloads until ctx ends, then
// shuts down gracefully. It returns nil after a clean shutdown, and an error
// when the HTTP server failed or the run in progress did not finish within the
// shutdown timeout.
func Run(ctx context.Context, opts Options) error {
	d, err := New(opts)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

// Run is the daemon's main loop; see the package function Run.
func (d *Daemon) Run(ctx context.Context) error {
	d.runCtx = ctx
	srvErr := make(chan error, 1)
	go func() {
		// exporter-toolkit serves plain HTTP when the file is "", and
		// otherwise wraps the handler with basic auth and serves TLS as
		// the file says (re-read on every new connection).
		noSocket := false
		flags := &web.FlagConfig{WebConfigFile: &d.webConfigFile, WebListenAddresses: &[]string{}, WebSystemdSocket: &noSocket}
		srvErr <- web.Serve(d.listener, d.server, flags, slogOf(d.log.Named("http")))
	}()
	d.log.Info("listening", zap.String("address", d.listener.Addr().String()),
		zap.Bool("dry_run", d.dryRun), zap.Bool("plan_endpoint", d.enablePlan))

	gen := d.gen.Load()
	d.start(gen, nil)
	d.ready.Store(true)
	if d.runOnStart {
		d.jobs.Go(d.guard(func() {
			d.runOnce(gen, Group{Policies: policyNames(gen.cfg)}, gen.cfg, "start")
		}))
	}

	var poll <-chan chan struct{}
	if d.reloadInterval > 0 {
		polls := make(chan chan struct{})
		pctx, stopPolling := context.WithCancel(ctx)
		var polling sync.WaitGroup
		polling.Go(func() { d.pollFile(pctx, polls) })
		defer polling.Wait()
		defer stopPolling()
		poll = polls
	}
	reload := d.reloadCh
	for {
		select {
		case <-ctx.Done():
			return d.shutdown(nil)
		case err := <-srvErr:
			return d.shutdown(fmt.Errorf("http server: %w", err))
		case _, ok := <-reload:
			if !ok {
				reload = nil
				continue
			}
			d.reload("signal", true)
		case reply := <-d.reloadReq:
			reply <- d.reload("POST /-/reload", true)
		case done := <-poll:
			d.reload("file changed", false)
			close(done)
		case a := <-d.approvedCh:
			d.runApproved(a)
		case a := <-d.approveNow:
			d.runApproved(a)
		}
	}
}

// runApproved starts, outside the schedule, a run of each schedule group
// that holds one of an approved plan's policies: that run applies the plan
// (the runner takes the approved plans of its policies first). It waits for
// its turn like any run; a group already running or waiting skips it, and
// the plan is then applied by that run or the group's next.
func (d *Daemon) runApproved(a Approved) {
	gen := d.gen.Load()
	want := map[string]bool{}
	for _, p := range a.Policies {
		want[p] = true
	}
	for _, g := range gen.groups {
		if !slices.ContainsFunc(g.Policies, func(p string) bool { return want[p] }) {
			continue
		}
		d.log.Info("approved plan: starting a run of its schedule now", zap.String("plan", a.Path),
			zap.String("schedule", g.Schedule), zap.Strings("policies", g.Policies))
		d.jobs.Go(d.guard(func() { d.runOnce(gen, g.Group, g.cfg, "approved") }))
	}
}

// start starts gen's scheduler and logs when each group runs next. prev is
// the scheduler a reload stopped (nil at the start): a schedule it ran goes
// on where it stood (scheduler.resume).
func (d *Daemon) start(gen *generation, prev *scheduler) {
	now := d.clock.Now().In(gen.loc)
	states := make([]loopState, len(gen.groups))
	for i, g := range gen.groups {
		st, ok := prev.resume(g.Schedule, gen.loc)
		if !ok {
			st = loopState{next: g.sched.Next(now)}
		}
		states[i] = st
		d.log.Info("scheduled", zap.String("schedule", g.Schedule), zap.Strings("policies", g.Policies),
			zap.Time("next", st.next))
	}
	gen.sched = d.startScheduler(gen, states)
}

// pollFile asks Run's goroutine, every reloadInterval, to reload the file if
// its content changed, and waits for that to be done before it sleeps again:
// polls never pile up behind a slow reload, and a test that sees it asleep
// knows the previous poll is complete.
func (d *Daemon) pollFile(ctx context.Context, polls chan<- chan struct{}) {
	for d.clock.Sleep(ctx, d.reloadInterval) == nil {
		done := make(chan struct{})
		select {
		case polls <- done:
		case <-ctx.Done():
			return
		}
		select {
		case <-done:
		case <-ctx.Done():
			return
		}
	}
}

// reload reads the file and, when forced or its content changed, builds and
// installs a new generation. A failure keeps the running one.
func (d *Daemon) reload(reason string, force bool) error {
	log := d.log.With(zap.String("reason", reason), zap.String("file", d.path))
	data, err := policy.ReadFile(d.path)
	if err != nil {
		// Forget the checksum: when the file is back, even with the content
		// that runs, it is loaded again and the reload metric recovers.
		d.lastSeen = ""
		log.Error("config reload failed; keeping the running config", zap.Error(err))
		d.metrics.ConfigReloaded(false, d.clock.Now())
		return fmt.Errorf("read config: %w", err)
	}
	sum := checksum(data)
	if !force && sum == d.lastSeen {
		return nil
	}
	// Remembered also when the content is refused, so that polling does not
	// retry (and log) the same broken file every interval; the next edit, or
	// a SIGHUP, tries again.
	d.lastSeen = sum
	old := d.gen.Load()
	gen, err := d.build(data)
	if err != nil {
		log.Error("config reload failed; keeping the running config", zap.Error(err))
		d.metrics.ConfigReloaded(false, d.clock.Now())
		return err
	}
	// Stop the old scheduler before starting the new one, so that a schedule
	// present in both cannot fire twice in the same second (the second firing
	// would be counted as skipped). A run the old scheduler started goes on
	// with the old generation (shutdown waits for it in d.jobs); the gate
	// keeps the new ones out until it ends.
	old.sched.stop()
	d.gen.Store(gen)
	d.start(gen, old.sched)
	d.plans.retain(gen.groups)
	d.metrics.SetPolicies(policyNames(gen.cfg))
	d.metrics.ConfigReloaded(true, d.clock.Now())
	d.logGeneration("config reloaded", gen)
	return nil
}

// build loads data and builds a complete generation: config, groups,
// scheduler and runner. It touches nothing that is running.
func (d *Daemon) build(data []byte) (*generation, error) {
	cfg, err := d.load(d.path, data)
	if err != nil {
		return nil, err
	}
	if d.dryRun {
		cfg = cfg.ForceReport()
	}
	groups, err := Groups(cfg)
	if err != nil {
		return nil, err
	}
	loc := cfg.Location
	if loc == nil {
		loc = time.UTC
	}
	gen := &generation{cfg: cfg, checksum: checksum(data), loc: loc}
	for _, g := range groups {
		// The parser robfig/cron's scheduler uses (cron.New's default).
		sched, err := cron.ParseStandard(g.Schedule)
		if err != nil {
			return nil, fmt.Errorf("schedule %q: %w", g.Schedule, err)
		}
		gen.groups = append(gen.groups, &group{Group: g, cfg: cfg.Only(g.Policies...), sched: sched})
	}
	runner, err := d.newRunner(cfg)
	if err != nil {
		return nil, err
	}
	gen.runner = runner
	return gen, nil
}

func (d *Daemon) logGeneration(msg string, gen *generation) {
	d.log.Info(msg, zap.String("file", d.path), zap.String("digest", gen.cfg.Digest),
		zap.Int("policies", len(gen.cfg.Policies)), zap.Int("schedules", len(gen.groups)),
		zap.String("timezone", gen.loc.String()), zap.Bool("dry_run", d.dryRun))
}

// runOnce performs one run of the policies of g with cfg. If another run is
// in progress it waits for its turn (see gate for why waiting, and why at
// most once per group); it is skipped, and counted, when a run of the same
// group is already running or waiting, or when the daemon shuts down. A run
// whose generation a reload replaced before it started (while it waited)
// runs with the new one (generation.rebase).
func (d *Daemon) runOnce(gen *generation, g Group, cfg *policy.Config, trigger string) {
	log := d.log.With(zap.String("schedule", g.Schedule), zap.Strings("policies", g.Policies),
		zap.String("trigger", trigger))
	switch d.gate.acquire(trigger+"\x00"+g.Schedule, func() {
		log.Info("run deferred: waiting for the run in progress")
	}) {
	case refusedClosed:
		log.Info("run skipped: shutting down")
		d.metrics.RunSkipped(SkipShutdown)
		return
	case refusedBusy:
		log.Warn("run skipped: the previous run of these policies is still in progress or waiting")
		d.metrics.RunSkipped(SkipOverlap)
		return
	}
	defer d.gate.release()
	if cur := d.gen.Load(); cur != gen {
		// The old config must not run (the reload may have turned a
		// policy to report mode), and the new generation's loop of this
		// schedule goes on where the old one stood, after the time it
		// handed to this run: dropped, the run was lost (a daily
		// schedule ran nothing that day).
		ng, ncfg, ok := cur.rebase(g)
		if !ok {
			log.Info("run dropped: the config was reloaded while it waited, and its schedule is gone")
			return
		}
		gen, g, cfg = cur, ng, ncfg
		log = d.log.With(zap.String("schedule", g.Schedule), zap.Strings("policies", g.Policies),
			zap.String("trigger", trigger))
		log.Info("run goes on with the reloaded config: it was reloaded while the run waited")
	}

	started := d.clock.Now()
	log.Info("run started")
	rep, err := gen.runner.Run(d.runCtx, cfg)
	finished := d.clock.Now()
	if rep == nil {
		rep = &RunReport{}
	}
	if d.enablePlan {
		// Kept only to be served: a plan of a large tenant is megabytes.
		d.plans.put(PlanEntry{Group: g, Trigger: trigger, RunID: rep.RunID, Started: started,
			Finished: finished, Error: errString(err), Plan: rep.Plan})
	}
	fields := []zap.Field{
		zap.String("run_id", rep.RunID), zap.Duration("duration", finished.Sub(started)),
		zap.Int("population", rep.Population), zap.Int("matched", rep.Matched),
		zap.Int("would_apply", rep.WouldApply), zap.Int("grace", rep.Grace), zap.Int("applied", rep.Applied),
		zap.Int("gone", rep.Gone), zap.Int("failed", rep.Failed),
		zap.Int("blocked", rep.Blocked), zap.Int("not_started", rep.NotStarted),
	}
	fields = append(fields, rep.APIClients.logFields()...)
	if err != nil {
		log.Error("run finished with errors", append(fields, zap.Error(err))...)
		return
	}
	log.Info("run finished", fields...)
}

// shutdown stops scheduling, waits (bounded) for the run in progress and stops
// the HTTP server. cause is a failure that ended the loop, returned as is.
func (d *Daemon) shutdown(cause error) error {
	d.ready.Store(false)
	busy := d.gate.running()
	d.log.Info("shutting down", zap.Bool("run_in_progress", busy), zap.Duration("timeout", d.shutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), d.shutdownTimeout)
	defer cancel()

	// The gate first: a tick between here and the scheduler's stop is then
	// turned away instead of starting a run on a cancelled context. Older
	// generations' schedulers were stopped when they were replaced. Once
	// this one's loops have returned, nothing adds to d.jobs any more.
	idle := d.gate.close()
	d.gen.Load().sched.stop()
	jobsDone := make(chan struct{})
	go func() {
		d.jobs.Wait()
		close(jobsDone)
	}()
	var errs []error
	if cause != nil {
		errs = append(errs, cause)
	}
	select {
	case <-idle:
		// What remains can only be jobs that the closed gate turns away at
		// once; bounded all the same.
		select {
		case <-jobsDone:
		case <-sctx.Done():
		}
	case <-sctx.Done():
		errs = append(errs, fmt.Errorf("shutdown: the run in progress did not finish within %s; the journal holds its open intents and the next start resolves them", d.shutdownTimeout))
	}
	// The HTTP server goes last, so /metrics and /readyz (503) stay visible
	// while the run drains. Give it a moment of its own even when the drain
	// used up the timeout.
	hctx, hcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer hcancel()
	if err := d.server.Shutdown(hctx); err != nil {
		_ = d.server.Close()
		errs = append(errs, fmt.Errorf("shutdown: http server: %w", err))
	}
	err := errors.Join(errs...)
	if err != nil {
		d.log.Error("stopped", zap.Error(err))
		return err
	}
	d.log.Info("stopped")
	return nil
}

func debugStdLog(l *zap.Logger) *log.Logger {
	std, err := zap.NewStdLogAt(l, zap.DebugLevel)
	if err != nil { // only for a level zap does not know
		return zap.NewStdLog(l)
	}
	return std
}

func checksum(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func policyNames(cfg *policy.Config) []string {
	all := cfg.AllPolicies()
	names := make([]string, len(all))
	for i, p := range all {
		names[i] = p.Name
	}
	return names
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

type nopMetrics struct{}

func (nopMetrics) ConfigReloaded(bool, time.Time) {}
func (nopMetrics) RunSkipped(string)              {}
func (nopMetrics) SetPolicies([]string)           {}
func (nopMetrics) SetRunInProgress(bool)          {}
