package cli

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/daemon"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/metrics"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/plandir"
	"github.com/patjanitor/patjanitor/internal/policy"
)

// approvalInbox wires serve's side of the two-person rule: the plans
// directory (package plandir) keeps the plans whose actions approvals hold
// back and takes the signed ones, and the engine (janitor.ApplySigned)
// decides what becomes of each signed plan, before the run of the schedule
// that made it. This type only connects them and reports.
type approvalInbox struct {
	dir     plandir.Dir
	watch   *plandir.Watch
	metrics *metrics.Metrics
	log     *zap.Logger
	now     func() time.Time
	// config is the running config (set per config generation), whose
	// approvals judge the plans POSTed to /approve.
	config atomic.Pointer[policy.Config]
}

func newApprovalInbox(dir plandir.Dir, m *metrics.Metrics, log *zap.Logger) *approvalInbox {
	return &approvalInbox{dir: dir, watch: dir.Watch(), metrics: m, log: log, now: time.Now}
}

// submit is POST /approve: plandir.Submit stores the plan only when it is
// intact and carries enough valid signatures under the running config.
func (a *approvalInbox) submit(_ context.Context, planData, sigData []byte) (daemon.Approved, error) {
	cfg := a.config.Load()
	if cfg == nil || cfg.Approvals == nil {
		return daemon.Approved{}, errors.New("the config has no approvals section")
	}
	// Read now, not when the config was loaded: a key revoked (or a
	// reviewer removed) since then must not count.
	pol, err := loadApprovals(cfg)
	if err != nil {
		return daemon.Approved{}, err
	}
	path, p, err := a.dir.Submit(pol, planData, sigData, a.now())
	if err != nil {
		return daemon.Approved{}, err
	}
	a.watch.Saw(path)
	return daemon.Approved{Path: path, Policies: p.ItemPolicies()}, nil
}

// poll announces, every interval until ctx ends, each plan that appears in
// approved/ with its signature file (serve --apply-approved-immediately).
func (a *approvalInbox) poll(ctx context.Context, interval time.Duration, out chan<- daemon.Approved) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		files, err := a.watch.New()
		if err != nil {
			a.log.Error("read the approved plans", zap.Error(err))
			continue
		}
		for _, f := range files {
			_, p, err := plan.ReadDropped(f)
			if err != nil {
				continue // the run rejects it as unreadable
			}
			select {
			case out <- daemon.Approved{Path: f, Policies: p.ItemPolicies()}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// save writes a plan for review and drops pending plans too old to be
// applied.
func (a *approvalInbox) save(p *plan.Plan) (string, error) {
	path, err := a.dir.WritePending(p)
	if err != nil {
		return "", err
	}
	a.prune()
	a.log.Info("plan saved for approval", zap.String("plan", path), zap.String("run_id", p.RunID))
	return path, nil
}

func (a *approvalInbox) prune() {
	if n, err := a.dir.Prune(a.now(), janitor.DefaultMaxPlanAge); err == nil {
		a.metrics.SetPlansAwaiting(n)
	}
}

// applyApproved has the engine judge each signed plan of approved/ (a plan
// is re-decided with its own policies: ApplySigned leaves another
// schedule's alone), and settles it in applied/ or rejected/ with what
// became of it, with the generation's engine and the run's state store
// (each apply reads the intents still open from the journal).
//
// The allowed signers and revoked keys files are read again for every run
// that applies plans: only the config file's change reloads the daemon, and
// revoking a key must take effect before the next plan signed with it is
// applied. A file that no longer loads applies nothing (the plans wait).
func (a *approvalInbox) applyApproved(ctx context.Context, cfg *policy.Config, eng *janitor.Engine, in janitor.RunInput) {
	defer a.countPending()
	files, err := a.dir.SignedPlans()
	if err != nil {
		a.log.Error("read the approved plans", zap.Error(err))
		return
	}
	if len(files) == 0 {
		return
	}
	pol, err := loadApprovals(cfg)
	if err != nil {
		a.log.Error("approved plans not applied: the approvals files do not load", zap.Error(err))
		return
	}
	if pol == nil {
		return
	}
	for _, f := range files {
		if ctx.Err() != nil {
			return
		}
		sp := janitor.SignedPlan{File: f}
		sp.Data, sp.Plan, sp.ReadErr = plan.ReadDropped(f)
		s := eng.ApplySigned(ctx, in, sp, pol)
		if s.JournalErr != nil {
			a.log.Error("journal the refused plan", zap.String("plan", f), zap.Error(s.JournalErr))
		}
		if !s.Settled {
			if s.Err != nil {
				a.log.Error("approved plan not applied; retried at the next run", zap.String("plan", f), zap.Error(s.Err))
			}
			continue
		}
		to := plandir.Rejected
		if s.Result == janitor.PlanApplied {
			to = plandir.Applied
		}
		if err := a.dir.Settle(f, to, s.Detail); err != nil {
			a.log.Error("move the approved plan", zap.String("plan", f), zap.Error(err))
		}
		a.metrics.ApprovedPlan(s.Result, s.Reason)
		log := a.log.With(zap.String("plan", f), zap.String("result", s.Result), zap.String("reason", s.Reason))
		if s.Result == janitor.PlanApplied {
			log.Info("approved plan applied: " + s.Detail)
		} else {
			log.Warn("approved plan rejected: " + s.Detail)
		}
	}
}

func (a *approvalInbox) countPending() {
	if n, err := a.dir.CountPending(); err == nil {
		a.metrics.SetPlansAwaiting(n)
	}
}
