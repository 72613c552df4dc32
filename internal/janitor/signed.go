package janitor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/patjanitor/patjanitor/internal/approval"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
)

// The verdicts on a signed plan that serve applied or rejected, with the
// reason of a rejection (the plans_approved_total{result,reason} values).
const (
	PlanApplied          = "applied"
	PlanRejected         = "rejected"
	PlanReasonNone       = "none"       // applied
	PlanReasonSignatures = "signatures" // fewer valid approvals than required
	PlanReasonPlan       = "plan"       // apply PLAN's checks refused it (age, tenant, config, hash, guardrail, executed before)
	PlanReasonUnreadable = "unreadable" // not a plan, or its signature file could not be read
)

// Approver judges the signatures of a plan file dropped into serve's
// approved directory and returns what the journal records about it
// (approval.Policy.DroppedPlanRef, which refuses a signature file that is a
// symbolic link); err is the refusal.
type Approver interface {
	DroppedPlanRef(planFile string, data []byte, planHash string, now time.Time) (audit.PlanRef, error)
}

// NeedsApproval returns the first enforce-mode action of p, of a token or an
// API client, that approvals.for names ("" when none does, or approvals are
// not configured): such a plan is applied only with enough approvals.
func (e *Engine) NeedsApproval(p *plan.Plan) string {
	ap := e.cfg.Approvals
	for _, it := range p.Items.All() {
		if it.Mutating() && ap.Needs(policy.Action(it.Action)) {
			return it.Action
		}
	}
	for _, it := range p.PendingClients() {
		if ap.Needs(policy.Action(it.Action)) {
			return it.Action
		}
	}
	return ""
}

// Governs reports whether a run of this engine's config (one schedule's
// policies) applies plan p: a plan is re-decided with the policies that made
// it, so it waits for their schedule. A plan none of whose policies are in
// the file any more is taken by any schedule (and rejected there, item by
// item).
//
// Token and API client items alike: a plan of API client actions only was
// taken by the first run of any schedule, whose config might hold no API
// client policy, and every action of it dropped.
func (e *Engine) Governs(p *plan.Plan) bool {
	here, inFile := map[string]bool{}, map[string]bool{}
	for _, pol := range e.cfg.AllPolicies() {
		here[pol.Name] = true
	}
	for _, name := range e.cfg.FilePolicies() {
		inFile[name] = true
	}
	known := false
	for _, name := range p.ItemPolicies() {
		if here[name] {
			return true
		}
		known = known || inFile[name]
	}
	return !known
}

// Unapproved is the refusal of a saved plan whose approvals do not suffice
// for the actions approvals.for names. It was journaled as run RunID (empty
// when the journal failed).
type Unapproved struct {
	// Action is the first action of the plan that needs approval.
	Action string
	RunID  string
	// Err is why the approvals do not suffice (wraps
	// approval.ErrSignatureFile when the signature file was unreadable).
	Err error
}

func (u *Unapproved) Error() string {
	return fmt.Sprintf("the plan holds %s actions and approvals are required for them (approvals.for); refused, nothing was changed (run %s): %v", u.Action, u.RunID, u.Err)
}

func (u *Unapproved) Unwrap() error { return u.Err }

// RefuseUnapproved is the check of a saved plan's approvals before anything
// is listed: when the plan holds an action approvals.for names and
// approvalErr (the Approver's verdict) is not nil, the refusal is journaled
// (a run-start naming the plan, its counted approvals and why) and returned.
// It returns nil, nil when the plan may go on to ApplyPlan; jerr is a
// failure to journal the refusal.
func (e *Engine) RefuseUnapproved(ctx context.Context, in RunInput, p *plan.Plan, ref audit.PlanRef, approvalErr error) (refusal *Unapproved, jerr error) {
	action := e.NeedsApproval(p)
	if action == "" || approvalErr == nil {
		return nil, nil
	}
	runID, jerr := e.JournalRefusal(ctx, in, ref, approvalErr)
	return &Unapproved{Action: action, RunID: runID, Err: approvalErr}, jerr
}

// IsRefusal reports whether err is ApplyPlan refusing a saved plan: its
// checks (ErrPlanRejected), or its guardrails tripping against the fresh
// listing. Either is a decision on the plan.
func IsRefusal(err error) bool {
	var gerr *GuardrailError
	return errors.Is(err, ErrPlanRejected) || errors.As(err, &gerr)
}

// NothingSent reports whether a run sent no mutation, to a token or an API
// client (every item blocked, not started or dropped).
func (r *Result) NothingSent() bool {
	if r.Count(OutcomeApplied)+r.Count(OutcomeGone)+r.Count(OutcomeFailed) > 0 {
		return false
	}
	for _, c := range r.Clients {
		switch c.Outcome {
		case OutcomeApplied, OutcomeGone, OutcomeFailed:
			return false
		}
	}
	return true
}

// JournalsRefusal reports whether JournalRefused journals (and notifies)
// err when nothing was sent: a refusal under approvals, or one of a plan
// executed before. A caller makes such a refusal before anything is listed
// only on a clock the tenant confirms (ConfirmRefusal): its notice goes
// through the outbox.
func (e *Engine) JournalsRefusal(err error) bool {
	var executed *ExecutedError
	return IsRefusal(err) && (e.cfg.Approvals != nil || errors.As(err, &executed))
}

// JournalRefused journals, under approvals, an ApplyPlan of a saved plan
// (res, err) that was refused with nothing sent, as JournalRefusal does: the
// auditor sees who approved what and why it was not carried out. The API
// client guardrails trip after the tokens' mutations ran: such a run is not
// a refusal of the plan. refused reports whether it was one; jerr is a
// failure to journal it.
//
// A plan refused because it was executed before (*ExecutedError) is
// journaled also without approvals: someone put a consumed plan forward
// again, and the auditor must see that it was stopped.
func (e *Engine) JournalRefused(ctx context.Context, in RunInput, ref audit.PlanRef, res *Result, err error) (refused bool, jerr error) {
	if (res != nil && !res.NothingSent()) || !e.JournalsRefusal(err) {
		return false, nil
	}
	_, jerr = e.JournalRefusal(ctx, in, ref, err)
	return true, jerr
}

// SignedPlan is a saved plan put forward for an apply under approvals (serve's
// approved directory), as it was read.
type SignedPlan struct {
	File string
	// Data are the file's bytes (nil when they could not be read) and Plan
	// the plan parsed from them (nil when ReadErr says why not).
	Data    []byte
	Plan    *plan.Plan
	ReadErr error
}

// Settlement is what became of a signed plan.
type Settlement struct {
	// Settled is false when the plan stays where it is: it is another
	// schedule's, or its apply failed before anything was sent (Err says
	// why; the next run tries again, within the plan's maximum age).
	Settled bool
	// Result is PlanApplied or PlanRejected, Reason one of the PlanReason
	// values; Detail says what became of it, for the plan's .result file.
	Result, Reason, Detail string
	// Err is the apply's failure (also of an applied plan whose run failed
	// in part: Detail includes it).
	Err error
	// JournalErr is a failure to journal a refusal.
	JournalErr error
}

// ApplySigned applies a signed plan exactly as `apply PLAN` does, when this
// engine's schedule governs it: its signatures must satisfy approvals (ap
// judges them), then ApplyPlan re-verifies each item against a fresh
// listing. A plan that cannot be read, is not approved enough, or that
// ApplyPlan refuses with nothing sent is rejected and its refusal journaled
// (its signatures may be valid, and an auditor asks what became of it). A
// plan whose run sent anything counts as applied, with what became of its
// items.
func (e *Engine) ApplySigned(ctx context.Context, in RunInput, sp SignedPlan, ap Approver) Settlement {
	rejected := func(reason string, err, jerr error) Settlement {
		return Settlement{Settled: true, Result: PlanRejected, Reason: reason, Detail: err.Error(), JournalErr: jerr}
	}
	if sp.Plan == nil {
		err := sp.ReadErr
		if err == nil {
			err = errors.New("no plan")
		}
		// Not a refusal the clock decided, but its notice goes through
		// the outbox, which delivers what waits there with this host's
		// clock: made on a clock the tenant confirms too.
		if cerr := e.ConfirmRefusal(ctx, err); cerr != nil {
			return Settlement{Err: cerr}
		}
		ref := audit.PlanRef{File: sp.File}
		if sp.Data != nil {
			ref.FileSHA256 = approval.FileDigest(sp.Data)
		}
		_, jerr := e.JournalRefusal(ctx, in, ref, err)
		return rejected(PlanReasonUnreadable, err, jerr)
	}
	p := sp.Plan
	if !e.Governs(p) {
		return Settlement{}
	}
	ref, aerr := ap.DroppedPlanRef(sp.File, sp.Data, p.PlanHash, e.now())
	if aerr != nil && e.NeedsApproval(p) != "" {
		if err := e.ConfirmRefusal(ctx, aerr); err != nil { // clock.go
			return Settlement{Err: err} // the next run judges it again
		}
	}
	if refusal, jerr := e.RefuseUnapproved(ctx, in, p, ref, aerr); refusal != nil {
		if errors.Is(aerr, approval.ErrSignatureFile) {
			return rejected(PlanReasonUnreadable, aerr, jerr)
		}
		return rejected(PlanReasonSignatures, aerr, jerr)
	}
	res, err := e.ApplyPlan(ctx, p, ApplyOptions{Plan: &ref, Input: in})
	if res == nil && IsRefusal(err) {
		// Refused before anything was listed, by its age on this host's
		// clock or by another check: either way its notice goes through
		// the outbox, on a clock no listing has checked yet.
		if cerr := e.ConfirmRefusal(ctx, err); cerr != nil {
			return Settlement{Err: cerr}
		}
	}
	if refused, jerr := e.JournalRefused(ctx, in, ref, res, err); refused {
		return rejected(PlanReasonPlan, err, jerr)
	}
	// A change of any token found not in effect (UnprovenError) is
	// reported on every run until a listing proves it: it says nothing of
	// this plan, and must not keep it in approved/ (proof.go).
	if res == nil || (withoutUnproven(err) != nil && res.NothingSent()) {
		// Nothing was executed (the listing failed or was incomplete, the
		// journal could not be written): the plan stays approved for the
		// next run, within its maximum age. It is not "applied".
		return Settlement{Err: err}
	}
	detail := fmt.Sprintf("run %s: applied %d, already gone %d, failed %d, dropped %d, blocked %d",
		res.RunID, res.Count(OutcomeApplied), res.Count(OutcomeGone), res.Count(OutcomeFailed),
		res.Count(OutcomeDropped), res.Count(OutcomeBlocked))
	if len(res.Clients) > 0 {
		n := map[Outcome]int{}
		for _, c := range res.Clients {
			n[c.Outcome]++
		}
		detail += fmt.Sprintf("; API clients: applied %d, already gone %d, failed %d, dropped %d, blocked %d",
			n[OutcomeApplied], n[OutcomeGone], n[OutcomeFailed], n[OutcomeDropped], n[OutcomeBlocked])
	}
	if err != nil {
		detail += ": " + err.Error()
	}
	return Settlement{Settled: true, Result: PlanApplied, Reason: PlanReasonNone, Detail: detail, Err: err}
}
