package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/approval"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/daemon"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/metrics"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/plandir"
	"github.com/patjanitor/patjanitor/internal/policy"
)

// approvalInbox is serve's side of the two-person rule: it saves the plans
// whose actions approvals hold back in --plans-dir/pending, and applies the
// signed plans reviewers put in --plans-dir/approved, exactly as `apply PLAN`
// would, before the run of the schedule that made them.
type approvalInbox struct {
	dir     plandir.Dir
	metrics *metrics.Metrics
	log     *zap.Logger
	now     func() time.Time
	// config is the running config (set per config generation), whose
	// approvals judge the plans POSTed to /approve.
	config atomic.Pointer[policy.Config]
	// seen are the approved plans already announced for an immediate run
	// (path and modification time), so that the poll announces each once.
	mu   sync.Mutex
	seen map[string]time.Time
}

// submit is POST /approve: the plan must be intact and carry enough valid
// signatures under the running config before it is stored; a refused
// submission stores nothing.
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
	p, err := plan.Read(bytes.NewReader(planData))
	if err != nil {
		return daemon.Approved{}, fmt.Errorf("plan: %w", err)
	}
	if err := p.VerifyHash(); err != nil {
		return daemon.Approved{}, fmt.Errorf("plan: does not match its planHash (edited or damaged): %w", err)
	}
	entries, err := approval.ParseSigFile("sig", sigData)
	if err != nil {
		return daemon.Approved{}, err
	}
	if err := pol.Check(planData, entries, a.now()).Err(); err != nil {
		return daemon.Approved{}, err
	}
	path, err := a.dir.StoreApproved(p.RunID, planData, sigData)
	if err != nil {
		return daemon.Approved{}, err
	}
	a.markSeen(path)
	return daemon.Approved{Path: path, Policies: planPolicies(p)}, nil
}

func (a *approvalInbox) markSeen(path string) {
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen == nil {
		a.seen = map[string]time.Time{}
	}
	a.seen[path] = fi.ModTime()
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
		files, err := a.dir.ApprovedPlans()
		if err != nil {
			a.log.Error("read the approved plans", zap.Error(err))
			continue
		}
		for _, f := range files {
			fi, err := os.Stat(f)
			if err != nil {
				continue
			}
			if _, err := os.Stat(approval.SigFile(f)); err != nil {
				continue
			}
			a.mu.Lock()
			if a.seen == nil {
				a.seen = map[string]time.Time{}
			}
			old, known := a.seen[f]
			a.seen[f] = fi.ModTime()
			a.mu.Unlock()
			if known && old.Equal(fi.ModTime()) {
				continue
			}
			_, p, err := readPlanFile(f)
			if err != nil {
				continue // the run rejects it as unreadable
			}
			select {
			case out <- daemon.Approved{Path: f, Policies: planPolicies(p)}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// planPolicies names the policies of a plan's items, of tokens and of API
// clients: the schedules that apply it.
func planPolicies(p *plan.Plan) []string {
	var out []string
	add := func(name string) {
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	for i := range p.Items {
		add(p.Items[i].Policy)
	}
	if p.APIClients != nil {
		for i := range p.APIClients.Items {
			add(p.APIClients.Items[i].Policy)
		}
	}
	return out
}

// save writes a plan for review and drops pending plans too old to be
// applied (apply refuses a plan older than its maximum age).
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
	files, err := filepath.Glob(filepath.Join(a.dir.Root, plandir.Pending, "*.json"))
	if err != nil {
		return
	}
	n := 0
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && a.now().Sub(fi.ModTime()) > janitor.DefaultMaxPlanAge {
			_ = os.Remove(f)
			continue
		}
		n++
	}
	a.metrics.SetPlansAwaiting(n)
}

// applyApproved applies each signed plan of approved/ whose policies this
// run's schedule governs (a plan is re-decided with its own policies), and
// moves it to applied/ or rejected/ with what became of it, with the
// generation's engine and the run's state store (each ApplyPlan reads the
// intents still open from the journal).
//
// The allowed signers and revoked keys files are read again for every run
// that applies plans: only the config file's change reloads the daemon, and
// revoking a key must take effect before the next plan signed with it is
// applied. A file that no longer loads applies nothing (the plans wait).
func (a *approvalInbox) applyApproved(ctx context.Context, cfg *policy.Config, eng *janitor.Engine, in janitor.RunInput) {
	files, err := a.dir.ApprovedPlans()
	if err != nil {
		a.log.Error("read the approved plans", zap.Error(err))
		return
	}
	if len(files) == 0 {
		if n, err := a.dir.CountPending(); err == nil {
			a.metrics.SetPlansAwaiting(n)
		}
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
		if _, err := os.Stat(approval.SigFile(f)); errors.Is(err, os.ErrNotExist) {
			// Being copied in, or signatures still to come: a plan is judged
			// once its signature file is there (move the .sig in first).
			continue
		}
		result, reason, detail, settle := a.applyOne(ctx, cfg, pol, f, eng, in)
		if !settle {
			continue
		}
		to := plandir.Rejected
		if result == metrics.PlanApplied {
			to = plandir.Applied
		}
		if err := a.dir.Settle(f, to, detail); err != nil {
			a.log.Error("move the approved plan", zap.String("plan", f), zap.Error(err))
		}
		a.metrics.ApprovedPlan(result, reason)
		log := a.log.With(zap.String("plan", f), zap.String("result", result), zap.String("reason", reason))
		if result == metrics.PlanApplied {
			log.Info("approved plan applied: " + detail)
		} else {
			log.Warn("approved plan rejected: " + detail)
		}
	}
	if n, err := a.dir.CountPending(); err == nil {
		a.metrics.SetPlansAwaiting(n)
	}
}

// applyOne returns what became of one approved plan; settle is false when
// the plan stays in approved/ (another schedule's, or a failure that the next
// run may not have).
func (a *approvalInbox) applyOne(ctx context.Context, cfg *policy.Config, pol *approval.Policy, f string, eng *janitor.Engine, in janitor.RunInput) (result, reason, detail string, settle bool) {
	rejected := func(reason string, err error) (string, string, string, bool) {
		return metrics.PlanRejected, reason, err.Error(), true
	}
	data, p, err := readPlanFile(f)
	if err != nil {
		// Journaled like every refused plan: its signatures may be valid,
		// and an auditor asks what became of it.
		ref := audit.PlanRef{File: f}
		if data != nil {
			ref.FileSHA256 = fileDigest(data)
		}
		if _, jerr := eng.JournalRefusal(ctx, in, ref, err); jerr != nil {
			a.log.Error("journal the refused plan", zap.Error(jerr))
		}
		return rejected(metrics.PlanReasonUnreadable, err)
	}
	if !governs(cfg, p) {
		return "", "", "", false
	}
	ref, aerr := planRef(pol, f, data, p, a.now())
	if action := needsApproval(cfg, p); action != "" && aerr != nil {
		if _, jerr := eng.JournalRefusal(ctx, in, ref, aerr); jerr != nil {
			a.log.Error("journal the refused plan", zap.Error(jerr))
		}
		if errors.Is(aerr, errSignatureFile) {
			return rejected(metrics.PlanReasonUnreadable, aerr)
		}
		return rejected(metrics.PlanReasonSignatures, aerr)
	}
	res, err := eng.ApplyPlan(ctx, p, janitor.ApplyOptions{Plan: &ref, Input: in})
	switch {
	case refusedPlan(err) && (res == nil || nothingSent(res)):
		if _, jerr := eng.JournalRefusal(ctx, in, ref, err); jerr != nil {
			a.log.Error("journal the refused plan", zap.Error(jerr))
		}
		return rejected(metrics.PlanReasonPlan, err)
	case res == nil || (err != nil && nothingSent(res)):
		// Nothing was executed (the listing failed or was incomplete, the
		// journal could not be written): the plan stays approved for the
		// next run, within its maximum age. It is not "applied".
		a.log.Error("approved plan not applied; retried at the next run", zap.String("plan", f), zap.Error(err))
		return "", "", "", false
	}
	detail = fmt.Sprintf("run %s: applied %d, already gone %d, failed %d, dropped %d, blocked %d",
		res.RunID, res.Count(janitor.OutcomeApplied), res.Count(janitor.OutcomeGone), res.Count(janitor.OutcomeFailed),
		res.Count(janitor.OutcomeDropped), res.Count(janitor.OutcomeBlocked))
	if len(res.Clients) > 0 {
		n := map[janitor.Outcome]int{}
		for _, c := range res.Clients {
			n[c.Outcome]++
		}
		detail += fmt.Sprintf("; API clients: applied %d, already gone %d, failed %d, dropped %d, blocked %d",
			n[janitor.OutcomeApplied], n[janitor.OutcomeGone], n[janitor.OutcomeFailed], n[janitor.OutcomeDropped], n[janitor.OutcomeBlocked])
	}
	if err != nil {
		detail += ": " + err.Error()
	}
	return metrics.PlanApplied, metrics.PlanReasonNone, detail, true
}

// governs reports whether a run of cfg's schedule applies plan p: a plan is
// re-decided with the policies that made it, so it waits for their schedule.
// A plan none of whose policies are in the file any more is taken by any
// schedule (and rejected there, item by item).
//
// Token and API client items alike: a plan of API client actions only was
// taken by the first run of any schedule, whose config might hold no API
// client policy, and every action of it dropped.
func governs(cfg *policy.Config, p *plan.Plan) bool {
	here, inFile := map[string]bool{}, map[string]bool{}
	for _, pol := range cfg.AllPolicies() {
		here[pol.Name] = true
	}
	for _, name := range cfg.FilePolicies() {
		inFile[name] = true
	}
	known := false
	for _, name := range planPolicies(p) {
		if here[name] {
			return true
		}
		known = known || inFile[name]
	}
	return !known
}

// refusedPlan reports whether an apply of a saved plan was refused: apply
// PLAN's checks, or its guardrails tripping against the fresh listing.
// Either is a decision on the plan, journaled as a refusal when nothing was
// sent (the API clients' guardrails trip after the tokens' mutations ran).
func refusedPlan(err error) bool {
	var gerr *janitor.GuardrailError
	return errors.Is(err, janitor.ErrPlanRejected) || errors.As(err, &gerr)
}

// nothingSent reports whether a run sent no mutation, to a token or an API
// client (every item blocked, not started or dropped).
func nothingSent(res *janitor.Result) bool {
	if res.Count(janitor.OutcomeApplied)+res.Count(janitor.OutcomeGone)+res.Count(janitor.OutcomeFailed) > 0 {
		return false
	}
	for _, c := range res.Clients {
		switch c.Outcome {
		case janitor.OutcomeApplied, janitor.OutcomeGone, janitor.OutcomeFailed:
			return false
		}
	}
	return true
}
