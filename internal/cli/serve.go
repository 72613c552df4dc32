package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/daemon"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/metrics"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/plandir"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/state"
)

type serveFlags struct {
	listen          string
	webConfigFile   string
	enableLifecycle bool
	dryRun          bool
	runOnStart      bool
	enablePlan      bool
	shutdownTimeout time.Duration
	reloadInterval  time.Duration
	journal         journalFlags
	minInterval     time.Duration
	plansDir        string
	applyApproved   bool
	// approvedPoll is how often approved/ is listed; 0 means
	// approvedPollInterval (no flag: tests set it, to not wait a second per
	// plan they drop).
	approvedPoll time.Duration
}

func newServeCmd(g *globals) *cobra.Command {
	var o serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the policies on their schedules, with metrics, health checks and reload",
		Long: `Run as a service: every policy runs on its cron schedule (its own, or the
config's default) in the config's time zone; policies with the same schedule
run together (one listing, one plan). Runs never overlap against the tenant:
a run due while another schedule's run is in progress waits for it; a run due
while its own previous run is still in progress (or already waiting) is
skipped and counted in patjanitor_runs_skipped_total{reason="overlap"}.

HTTP on --web.listen-address: /metrics (Prometheus), /healthz and /-/healthy
(the process is alive), /readyz and /-/ready (config loaded and scheduler
running; 503 while starting or shutting down), with --web.enable-lifecycle
POST /-/reload (a reload like SIGHUP; 200, or 500 with the reason), and, with
--web.enable-plan, /plan: the latest plan of each schedule as JSON (it lists
token names and owners, hence off by default). --web.config.file takes the
web configuration file every Prometheus exporter takes (exporter-toolkit:
tls_server_config, basic_auth_users with bcrypt hashes); it is checked at
start, and its certificates are re-read on each new connection.

The config is reloaded on SIGHUP and when the file's content changes
(checked every --config.auto-reload-interval; Kubernetes updates a mounted
ConfigMap without a signal). A reload is checked completely first; a bad file
is refused, logged and reported by patjanitor_config_last_reload_successful 0,
and the running config stays. A run in progress finishes with the config it
started with.

On SIGTERM or SIGINT no new run and no new mutation starts; the mutations in
flight finish and are journaled; serve exits 0 within --shutdown-timeout.

--dry-run puts every policy in report mode: nothing is ever changed, and no
journal is opened.

With approvals in the config, the actions approvals.for names are never
carried out by a scheduled run: they are reported as awaiting approval, and
with --plans-dir the run's plan is saved in DIR/pending for reviewers to sign
(patjanitor approve). A signed plan moved with its .sig into DIR/approved is
applied at the next run of its schedule, with every check of 'apply PLAN',
and then moved to DIR/applied or DIR/rejected with a .result file saying what
became of it. With --web.enable-lifecycle, POST /approve takes a signed plan
over HTTP (multipart: plan, sig) and stores it there once its signatures
suffice; --apply-approved-immediately applies each approved plan at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "web.listen-address", daemon.DefaultListenAddress, "address of the HTTP endpoints: /metrics, /healthz, /readyz, /-/reload, /approve and /plan")
	f.StringVar(&o.webConfigFile, "web.config.file", "", "exporter-toolkit web configuration file: TLS and basic auth for the HTTP endpoints")
	f.BoolVar(&o.enableLifecycle, "web.enable-lifecycle", false, "serve POST /-/reload (reload the config over HTTP)")
	f.BoolVar(&o.dryRun, "dry-run", false, "run every policy in report mode, whatever the config says")
	f.BoolVar(&o.runOnStart, "run-on-start", false, "run all policies once at start, then follow the schedules")
	f.BoolVar(&o.enablePlan, "web.enable-plan", false, "serve the latest plans at /plan (they list token names and owners)")
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", daemon.DefaultShutdownTimeout, "how long SIGTERM waits for the run in progress")
	f.DurationVar(&o.reloadInterval, "config.auto-reload-interval", daemon.DefaultReloadInterval, "how often to check the config file for changes; 0 disables (SIGHUP still reloads)")
	addJournalFlags(f, &o.journal)
	f.BoolVar(&o.applyApproved, "apply-approved-immediately", false, "with --plans-dir: apply a signed plan as soon as it is in DIR/approved (or POSTed to /approve), not at its schedule's next run")
	f.StringVar(&o.plansDir, "plans-dir", "", "with approvals: save plans for review in DIR/pending and apply the signed plans put in DIR/approved")
	// Hidden: end-to-end tests of scheduling and reload cannot wait a minute
	// per run, and the policy package refuses shorter schedules.
	f.DurationVar(&o.minInterval, "schedule.min-interval", policy.MinScheduleInterval, "shortest @every schedule accepted (tests only)")
	_ = f.MarkHidden("schedule.min-interval")
	return cmd
}

func runServe(ctx context.Context, g *globals, o serveFlags) error {
	log, err := g.logger()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	opts, closeJournal, err := serveOptions(ctx, g, o, log, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	defer closeJournal()
	return daemon.Run(ctx, opts)
}

// serveOptions wires the daemon: metrics on reg, the journal (unless
// --dry-run), the engine as the Runner, SIGHUP as the reload trigger. The
// returned func closes the journal.
func serveOptions(ctx context.Context, g *globals, o serveFlags, log *zap.Logger, reg *prometheus.Registry) (daemon.Options, func(), error) {
	m := metrics.New(reg)
	var (
		journal janitor.Journal
		held    *audit.Journal
		closeJ  = func() {}
		inbox   *approvalInbox
	)
	if err := g.checkStateDir(); err != nil {
		return daemon.Options{}, nil, err
	}
	if o.plansDir != "" && !o.dryRun {
		dir := plandir.Dir{Root: o.plansDir}
		if err := dir.Init(); err != nil {
			return daemon.Options{}, nil, err
		}
		inbox = newApprovalInbox(dir, m, log.Named("approvals"))
		inbox.prune()
	}
	if !o.dryRun {
		jpath := g.journalPath(o.journal.path)
		// The state store is opened per run (so that `snooze` can use it
		// between runs): here only to check the journal against its
		// anchor; each run attaches it again.
		st, err := g.openState(time.Now)
		if err != nil {
			return daemon.Options{}, nil, err
		}
		j, recs, err := g.openJournal(o.journal, st)
		if j != nil {
			j.Detach()
		}
		if cerr := st.Close(); err == nil && cerr != nil {
			_ = j.Close()
			err = cerr
		}
		if err != nil {
			return daemon.Options{}, nil, err
		}
		closeJ = func() { _ = j.Close() }
		held = j
		journal = j
		if len(recs) > 0 {
			log.Warn("the journal holds intents without an outcome (an earlier run was interrupted); the next run resolves them against a fresh listing",
				zap.Int("intents", len(recs)), zap.String("journal", jpath))
		}
	}
	engineLog := log.Named("engine")
	if o.minInterval > 0 && o.minInterval < policy.MinScheduleInterval {
		log.Warn("schedules shorter than the policy minimum are accepted (--schedule.min-interval is for tests)",
			zap.Duration("min_interval", o.minInterval))
	}
	load := serveConfigLoader(o.minInterval)
	var approve func(context.Context, []byte, []byte) (daemon.Approved, error)
	var approved chan daemon.Approved
	if inbox != nil {
		approve = inbox.submit
		if o.applyApproved {
			approved = make(chan daemon.Approved)
			every := o.approvedPoll
			if every <= 0 {
				every = approvedPollInterval
			}
			go inbox.poll(ctx, every, approved)
		}
	}
	return daemon.Options{
		Approve:                  approve,
		Approved:                 approved,
		ApplyApprovedImmediately: o.applyApproved,
		ConfigPath:               g.config,
		Load:                     load,
		NewRunner: func(cfg *policy.Config) (daemon.Runner, error) {
			conn, err := connect(cfg, m, log)
			if err != nil {
				return nil, err
			}
			r := &engineRunner{client: conn.client, journal: journal,
				metrics: m, log: engineLog, openState: g.runState, inbox: inbox}
			if held != nil {
				r.held, r.anchorKey = held, g.journalKey(held.Path())
			}
			// Per config generation too: a broken allowed signers file
			// fails the reload and the running config stays. Each run that
			// applies approved plans reads the files again (applyApproved).
			if _, err := loadApprovals(cfg); err != nil {
				return nil, err
			}
			if inbox != nil {
				// The runner is the last part of a generation to be built:
				// from here the new config's approvals judge POST /approve.
				inbox.config.Store(cfg)
			}
			if !o.dryRun {
				// Built per config generation: a receiver whose secret cannot
				// be read fails the reload, and the running config stays.
				if r.notifiers, err = buildNotifiers(cfg, log); err != nil {
					return nil, err
				}
			}
			return r, nil
		},
		Logger:          log,
		Registry:        reg,
		Metrics:         m,
		ListenAddress:   o.listen,
		DryRun:          o.dryRun,
		RunOnStart:      o.runOnStart,
		EnablePlan:      o.enablePlan,
		ShutdownTimeout: o.shutdownTimeout,
		ReloadInterval:  o.reloadInterval,
		Reload:          reloadSignals(ctx),
		WebConfigFile:   o.webConfigFile,
		EnableLifecycle: o.enableLifecycle,
	}, closeJ, nil
}

// approvedPollInterval is how often serve --apply-approved-immediately looks
// for plans reviewers put in the approved directory by hand (a directory
// listing; POST /approve starts its run at once).
const approvedPollInterval = time.Second

// serveConfigLoader parses the bytes the daemon read (so that the checksum it
// compares and the config it runs are of the same content) and applies the
// environment overrides, as every other command does; minInterval is the
// shortest @every schedule it accepts.
func serveConfigLoader(minInterval time.Duration) daemon.LoadFunc {
	return func(path string, data []byte) (*policy.Config, error) {
		cfg, err := policy.ParseWithOptions(path, data, policy.Options{MinScheduleInterval: minInterval})
		if err != nil {
			return nil, err
		}
		if err := cfg.ApplyEnv(os.Getenv); err != nil {
			return nil, err
		}
		return cfg, nil
	}
}

// reloadSignals turns SIGHUP into the daemon's reload channel. Signals that
// arrive while a reload is pending merge into it: one reload reads the newest
// file anyway.
func reloadSignals(ctx context.Context) <-chan struct{} {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	out := make(chan struct{}, 1)
	go func() {
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}

// engineRunner runs the engine for the daemon: a janitor.Engine per run, as
// an Engine is bound to one config and the daemon runs each schedule group
// with its own (cfg.Only its policies), on the client built for the config
// generation and the journal opened once for the process; the run's input
// is the state store it opens.
type engineRunner struct {
	client  *api.Client
	journal janitor.Journal // nil under --dry-run: nothing is mutated
	// held is the journal (nil under --dry-run), checked at the start of
	// every run and anchored in the run's state store under anchorKey.
	held      *audit.Journal
	anchorKey string
	metrics   *metrics.Metrics
	log       *zap.Logger
	// openState opens the state store (snoozes, marks, outbox) per run, so
	// that `snooze` can use it between runs; readOnly (dry run) tolerates
	// its absence.
	openState func(readOnly bool) (*state.Store, error)
	// notifiers are the config's receivers (nil under --dry-run, which
	// sends nothing).
	notifiers map[string]notify.Notifier
	// inbox is --plans-dir (nil without it, and under --dry-run).
	inbox *approvalInbox
}

func (r *engineRunner) Run(ctx context.Context, cfg *policy.Config) (rep *daemon.RunReport, err error) {
	started := time.Now()
	engineRan := false
	defer func() {
		// The engine counts the runs it makes; a run that fails before it
		// (the journal changed behind our back, the state store held) is
		// a failed run too, for runs_total and PatjanitorRunsFailing.
		if err != nil && !engineRan && r.metrics != nil {
			r.metrics.ObserveRun(janitor.RunFailed, time.Now(), time.Since(started))
		}
	}()
	var st *state.Store
	if r.openState != nil {
		var err error
		if st, err = r.openState(r.journal == nil); err != nil {
			return nil, err
		}
		if st != nil {
			defer func() { _ = st.Close() }()
		}
	}
	if r.held != nil {
		// Before anything is listed: the journal must still be the file
		// this process holds and has written, and match its anchor;
		// otherwise the run changes nothing and fails (and
		// PatjanitorRunsFailing fires).
		if st == nil {
			if err := r.held.Check(); err != nil {
				return nil, fmt.Errorf("%w; nothing was changed", err)
			}
		} else {
			if err := r.held.Attach(ctx, st.AnchorOf(r.anchorKey), janitor.NewCatchUp(st, r.log)); err != nil {
				return nil, fmt.Errorf("%w; nothing was changed", err)
			}
			defer r.held.Detach()
		}
	}
	if st != nil && r.journal != nil {
		// Snoozes made with `snooze` while this process held the journal.
		// A failure here is logged: the snooze is honoured anyway (it only
		// keeps a token), and a journal that fails stops the run's
		// mutations by itself.
		if n, err := journalSnoozes(ctx, st, r.journal); err != nil {
			r.log.Error("journal the snoozes made during serve", zap.Error(err))
		} else if n > 0 {
			r.log.Info("journaled the snoozes made during serve", zap.Int("snoozes", n))
		}
		// Acknowledgements made with `acknowledge` meanwhile: journaled
		// and their records dropped before the engine reads them, so this
		// run no longer fails for them. One that cannot be journaled keeps
		// its record, and the alarm.
		if n, err := janitor.JournalAcks(ctx, st, r.journal); err != nil {
			r.log.Error("journal the acknowledgements made during serve", zap.Error(err))
		} else if n > 0 {
			r.log.Info("journaled the acknowledgements made during serve", zap.Int("acknowledged", n))
		}
	}
	var in janitor.RunInput
	switch {
	case r.journal != nil:
		if in, err = stateInput(cfg, st, r.notifiers, r.metrics, r.log); err != nil {
			return nil, err
		}
	case st != nil:
		// A dry run reads the snoozes only: with its policies forced to
		// report mode it must not reconcile (and so remove) grace marks.
		in.Snoozes = st
		in.ClientState = st // read only: a dry run changes no client
		in.Proofs = st      // read only: a dry run still reports changes not in effect
	}
	eng, err := r.newEngine(cfg)
	if err != nil {
		return nil, err
	}
	// The approved plans and the scheduled run each read from the journal
	// the intents still open (an interrupted process's, or those a failed
	// or panicked run of this one left): nothing is carried here from run
	// to run.
	if r.inbox != nil && r.journal != nil && cfg.Approvals != nil {
		r.inbox.applyApproved(ctx, cfg, eng, in)
	}
	engineRan = true
	res, runErr := eng.Run(ctx, in)
	return reportOf(res), runErr
}

// newEngine builds the engine for a run of cfg.
func (r *engineRunner) newEngine(cfg *policy.Config) (*janitor.Engine, error) {
	opts := janitor.Options{
		Config: cfg, Tenant: r.client, TenantURL: r.client.BaseURL(),
		APIVersion: r.client.Version(), ClientID: r.client.ClientID(),
		Journal: r.journal, Metrics: r.metrics, Logger: r.log,
	}
	if r.inbox != nil && r.journal != nil {
		opts.SaveForApproval = r.inbox.save
	}
	return janitor.New(opts)
}

// reportOf condenses an engine result into the daemon's log line and /plan.
func reportOf(res *janitor.Result) *daemon.RunReport {
	if res == nil {
		return nil
	}
	rep := &daemon.RunReport{
		RunID:      res.RunID,
		Plan:       res.Plan,
		Applied:    res.Count(janitor.OutcomeApplied),
		Gone:       res.Count(janitor.OutcomeGone),
		Failed:     res.Count(janitor.OutcomeFailed),
		Blocked:    res.Count(janitor.OutcomeBlocked),
		NotStarted: res.Count(janitor.OutcomeNotStarted) + res.Count(janitor.OutcomeRefused),
	}
	if res.Plan != nil {
		rep.Population = res.Plan.Population
		rep.Matched = res.Plan.Items.Len()
		for _, it := range res.Plan.Items.All() {
			switch {
			case it.Mode == plan.ModeGrace:
				rep.Grace++
			case !it.Mutating():
				rep.WouldApply++
			}
		}
	}
	rep.APIClients = clientCountsOf(res) // apiclients.go
	return rep
}

// Compile-time check: the engine's metrics and the daemon's are one object.
var (
	_ daemon.Metrics  = (*metrics.Metrics)(nil)
	_ janitor.Metrics = (*metrics.Metrics)(nil)
	_ api.Observer    = (*metrics.Metrics)(nil)
)
