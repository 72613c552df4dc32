package janitor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/state"
)

// Notifier sends messages through the durable outbox: every message is
// stored before it is tried, and what is not delivered waits for the next
// run. *notify.Dispatcher implements it.
type Notifier interface {
	Send(ctx context.Context, msgs ...*notify.Message) (notify.Report, error)
	// Withdraw removes undelivered messages from the outbox.
	Withdraw(ctx context.Context, ids ...string) error
}

// SummaryTop is how many plan items a run summary names.
const SummaryTop = 10

// followUp runs after a run's mutations (or after it was blocked): it brings
// the grace marks up to date and sends the run's messages. Its error is the
// state store's or the outbox's; delivery failures are counted and logged by
// the dispatcher and wait in the outbox.
//
// The marks are left alone when the run was blocked: after incomplete data an
// absent token is no evidence that it stopped matching, and a run stopped by
// a guardrail marks nothing new (warning the owners of a run that tripped a
// limit would be the first step of the actions it refused). Digests that
// earlier runs queued are still delivered, starting their marks' clocks:
// those marks were made on complete data.
func (e *Engine) followUp(ctx context.Context, pl *Planned, res *Result, runErr error, log *zap.Logger) error {
	var errs []error
	// Bookkeeping outlives a shutdown: what the run did must be recorded.
	bctx := context.WithoutCancel(ctx)
	refused := pl.clockRefused() // clock.go
	blocked := pl.Err != nil || len(pl.Blocking()) > 0 || refused
	var marks, removed []state.Mark
	marksOK := false
	if e.marks != nil && !blocked {
		var err error
		if marks, removed, err = e.updateMarks(bctx, pl, res, log); err != nil {
			err = fmt.Errorf("grace marks: %w", err)
			log.Error("could not update the grace marks: no owner is warned this run", zap.Error(err))
			errs = append(errs, err)
		} else {
			marksOK = true
		}
	}
	if e.notify == nil {
		return errors.Join(errs...)
	}
	if err := e.withdrawDigests(bctx, marks, removed); err != nil {
		err = fmt.Errorf("notifications: %w", err)
		log.Error("could not withdraw the digests of unmarked tokens", zap.Error(err))
		errs = append(errs, err)
	}
	nctx, cancel := context.WithTimeout(ctx, e.notifyTO)
	defer cancel()
	v := runView{
		plan: pl.Plan, res: res, runErr: errors.Join(append([]error{runErr}, errs...)...),
		owners: pl.Owners, started: res.Started, finished: res.Finished, approval: res.Awaiting,
	}
	if ref := pl.planRef; ref != nil && len(ref.Approvals) > 0 {
		ap := &notify.ApprovedPlan{File: ref.File, PlanHash: ref.PlanHash}
		for _, a := range ref.Approvals {
			ap.Principals = append(ap.Principals, a.Principal)
		}
		v.approved = ap
	}
	if marksOK {
		v.marks = marks
	}
	if v.owners == nil && e.owners != nil && !refused {
		// apply PLAN decides without a lookup; the owners written to are few.
		ids := ownerIDs(len(res.Items), func(i int) string { return res.Items[i].Item.OwnerID })
		for _, it := range pl.Plan.Items.All() {
			if it.Mode == plan.ModeGrace || it.Mode == plan.ModeNeedsOwner {
				ids = append(ids, it.OwnerID)
			}
		}
		// A lookup cut short leaves the fallback address.
		if o, err := e.lookupOwners(nctx, ownerIDs(len(ids), func(i int) string { return ids[i] }), "", nil); err == nil {
			v.owners = o
		}
	}
	msgs := e.messages(v)
	if refused {
		e.alertAroundOutbox(nctx, msgs, log)
		return errors.Join(errs...)
	}
	if len(msgs) == 0 {
		return errors.Join(errs...)
	}
	rep, err := e.notify.Send(nctx, msgs...)
	res.Notified = rep
	if err != nil {
		err = fmt.Errorf("notifications: %w", err)
		log.Error("could not queue the run's notifications", zap.Error(err))
		errs = append(errs, err)
	}
	warned := 0
	for _, r := range rep.Results {
		warned += len(r.Warned)
	}
	log.Info("notifications", zap.Int("messages", len(msgs)), zap.Int("sent", rep.Count(notify.Sent)),
		zap.Int("deferred", rep.Count(notify.Deferred)), zap.Int("failed", rep.Count(notify.Failed)),
		zap.Int("suppressed", rep.Count(notify.Suppressed)), zap.Int("grace_clocks_started", warned))
	return errors.Join(errs...)
}

// withdrawDigests removes from the outbox the undelivered digests of owners
// whose marks this run removed and who have none left that is not due: such
// a digest would warn about an action that will not happen. (An owner with
// marks left gets a new digest that replaces the old one.)
func (e *Engine) withdrawDigests(ctx context.Context, all, removed []state.Mark) error {
	if e.cfg.Notify.Owners == "" || len(removed) == 0 {
		return nil
	}
	held := map[string]bool{}
	for _, m := range all {
		held[pat.IDKey(m.OwnerID)] = true
	}
	var ids []string
	for _, m := range removed {
		if !held[pat.IDKey(m.OwnerID)] {
			held[pat.IDKey(m.OwnerID)] = true // once per owner
			ids = append(ids, notify.DigestID(e.cfg.Notify.Owners, m.OwnerID))
		}
	}
	if len(ids) == 0 {
		return nil
	}
	return e.notify.Withdraw(ctx, ids...)
}

// DryRunMessages are the messages a run of pl would send (plan
// --notifications-dir): the summary, failure alerts, and the owner digests
// for the marks the run would hold. Notices are not included: they report
// what was done, and a dry run does nothing. Suppression of a digest already
// delivered is the dispatcher's, so a dry run shows every digest.
func (e *Engine) DryRunMessages(pl *Planned, planErr error) []*notify.Message {
	at := pl.Plan.GeneratedAt
	v := runView{plan: pl.Plan, runErr: planErr, owners: pl.Owners, dryRun: true, started: at, finished: at}
	if len(e.grace) > 0 && pl.Err == nil && len(pl.Blocking()) == 0 {
		v.marks = e.predictMarks(pl)
	}
	return append(e.messages(v), e.clientDryRunDigests(pl)...) // clientgrace.go
}

// runView is what the messages of one run are made of.
type runView struct {
	plan   *plan.Plan
	res    *Result // nil for a dry run
	runErr error
	// marks are every mark after the run; nil means no digests (no store,
	// or the marks could not be updated).
	marks             []state.Mark
	owners            *Owners
	dryRun            bool
	started, finished time.Time
	// approval is what awaits reviewers' signatures (nil: nothing);
	// approved is the signed plan the run applied (nil: none).
	approval *notify.AwaitingApproval
	approved *notify.ApprovedPlan
}

func (v *runView) runID() string {
	switch {
	case v.res != nil && v.res.RunID != "":
		return v.res.RunID
	case v.plan.RunID != "":
		return v.plan.RunID
	}
	return "plan"
}

// messages builds the run's messages for the receivers the config names.
func (e *Engine) messages(v runView) []*notify.Message {
	n := e.cfg.Notify
	runID, at := v.runID(), v.finished
	var msgs []*notify.Message
	if n.Owners != "" {
		for _, d := range e.digests(v) {
			msgs = append(msgs, notify.DigestMessage(n.Owners, runID, at, d))
		}
		for _, nt := range e.notices(v) {
			msgs = append(msgs, notify.NoticeMessage(n.Owners, runID, at, nt))
		}
	}
	if len(n.Summary) > 0 {
		sum := e.summary(v)
		for _, r := range n.Summary {
			msgs = append(msgs, notify.SummaryMessage(r, runID, at, sum))
		}
	}
	for _, f := range e.failures(v) {
		for _, r := range n.Failures {
			msgs = append(msgs, notify.FailureMessage(r, runID, at, f))
		}
	}
	return msgs
}

// contact is how a message addresses an owner: the identity's email, else
// the configured fallback address. A token listed without an owner id (the
// API makes it optional) has no identity to look up: it gets the fallback,
// and a name the greeting can use.
func (e *Engine) contact(id, name string, owners *Owners) notify.Owner {
	o := notify.Owner{ID: id, Name: name}
	if id == "" && strings.TrimSpace(name) == "" {
		o.Name = "(no owner listed)"
	}
	if idn, ok := owners.Identity(id); ok {
		if idn.Name != "" {
			o.Name = idn.Name
		}
		o.Email = idn.Email
	}
	if o.Email == "" && e.cfg.Owners.FallbackEmail != "" {
		o.Email, o.Fallback = e.cfg.Owners.FallbackEmail, true
	}
	return o
}

// digests warn the owners of the run's held (mode grace) items, one digest
// per owner listing all of that owner's marks that are not yet due, also
// those of other policies: a digest per policy would make two digests
// alternate, each defeating the other's repeat suppression. The same digest
// asks the owner for the changes only they can make (the plan's needs-owner
// items: the API lets only a token's owner change its scopes), unless the run
// was blocked.
func (e *Engine) digests(v runView) []notify.Digest {
	asks := map[string][]notify.DigestItem{}
	if v.plan.Error == "" && len(v.plan.Tripped()) == 0 {
		for _, it := range v.plan.Items.All() {
			if it.Mode == plan.ModeNeedsOwner {
				asks[pat.IDKey(it.OwnerID)] = append(asks[pat.IDKey(it.OwnerID)], notify.DigestItem{
					TokenID: it.TokenID, TokenName: it.TokenName, Policy: it.Policy, Action: it.Action,
					Reason: it.Reason, NeedsOwner: true, Change: ownerChange(it.Patch),
				})
			}
		}
	}
	if v.marks == nil && len(asks) == 0 {
		return nil
	}
	byOwner := map[string][]state.Mark{}
	for _, m := range v.marks {
		if !m.Due(v.finished) {
			byOwner[pat.IDKey(m.OwnerID)] = append(byOwner[pat.IDKey(m.OwnerID)], m)
		}
	}
	var out []notify.Digest
	seen := map[string]bool{}
	for _, it := range v.plan.Items.All() {
		owner := pat.IDKey(it.OwnerID)
		if seen[owner] {
			continue
		}
		held := it.Mode == plan.ModeGrace && len(byOwner[owner]) > 0
		asked := it.Mode == plan.ModeNeedsOwner && len(asks[owner]) > 0
		if !held && !asked {
			continue
		}
		seen[owner] = true
		ms := byOwner[owner]
		slices.SortFunc(ms, func(a, b state.Mark) int {
			return cmpStrings(a.Policy, b.Policy, a.TokenName, b.TokenName, a.TokenID, b.TokenID)
		})
		d := notify.Digest{Tenant: v.plan.Tenant, Owner: e.contact(it.OwnerID, it.OwnerName, v.owners), Contact: e.cfg.Owners.FallbackEmail}
		for _, m := range ms {
			d.Items = append(d.Items, notify.DigestItem{
				TokenID: m.TokenID, TokenName: m.TokenName, Policy: m.Policy, Action: m.Action,
				Reason: m.Reason, MarkedAt: m.MarkedAt, Grace: notify.Duration(m.Grace), Deadline: m.Deadline,
			})
		}
		d.Items = append(d.Items, asks[owner]...)
		out = append(out, d)
	}
	return out
}

// ownerChange says what the owner of a needs-owner item should change:
// "set the scope to [sp:scopes:default]; rename it to \"old-ci\"".
func ownerChange(ops []pat.PatchOp) string {
	var parts []string
	for _, op := range ops {
		if s, ok := op.Scopes(); ok {
			parts = append(parts, "set the scope to ["+strings.Join(s, ", ")+"]")
		}
		if name, ok := op.Name(); ok {
			parts = append(parts, fmt.Sprintf("rename it to %q", name))
		}
	}
	return strings.Join(parts, "; ")
}

// notices tell owners what the run did to their tokens: the actions applied
// and the tokens found already gone. A failed action changed nothing and is
// the operators' business (summary, failure alert), not the owner's.
func (e *Engine) notices(v runView) []notify.Notice {
	if v.res == nil {
		return nil
	}
	var out []notify.Notice
	idx := map[string]int{}
	// A token whose earlier confirmed change a listing showed not in
	// effect: its owner was told once, wrongly; a change sent again is
	// not announced before a listing proves it (proof.go).
	inDoubt := map[string]bool{}
	for _, u := range v.res.Unproven {
		if u.Confirmed.Resource == "" { // an API client's id names no token
			inDoubt[pat.IDKey(u.Confirmed.TokenID)] = true
		}
	}
	for _, r := range v.res.Items {
		if inDoubt[pat.IDKey(r.Item.TokenID)] {
			continue
		}
		var outcome string
		switch r.Outcome {
		case OutcomeApplied:
			outcome = notify.OutcomeApplied
		case OutcomeGone:
			outcome = notify.OutcomeAlreadyGone
		default:
			continue
		}
		it := r.Item
		i, ok := idx[pat.IDKey(it.OwnerID)]
		if !ok {
			i = len(out)
			idx[pat.IDKey(it.OwnerID)] = i
			out = append(out, notify.Notice{Tenant: v.plan.Tenant, Owner: e.contact(it.OwnerID, it.OwnerName, v.owners), Contact: e.cfg.Owners.FallbackEmail})
		}
		out[i].Items = append(out[i].Items, notify.NoticeItem{
			TokenID: it.TokenID, TokenName: it.TokenName, Policy: it.Policy, Action: it.Action,
			Outcome: outcome, Reason: it.Reason, Detail: patchDetail(it.Patch), At: v.finished,
		})
	}
	return out
}

// patchDetail says in words what a patch did.
func patchDetail(ops []pat.PatchOp) string {
	var parts []string
	for _, op := range ops {
		if s, ok := op.Scopes(); ok {
			parts = append(parts, "scope set to ["+strings.Join(s, ", ")+"]")
		}
		if name, ok := op.Name(); ok {
			parts = append(parts, fmt.Sprintf("renamed to %q", name))
		}
		if t, ok := op.Expiration(); ok {
			parts = append(parts, "now expires "+pat.FormatTime(t))
		}
	}
	return strings.Join(parts, "; ")
}

// summary counts the run's items per policy and action by outcome.
func (e *Engine) summary(v runView) notify.Summary {
	type key struct{ token, policy string }
	outcomes := map[key]Outcome{}
	var dropped []plan.Item
	if v.res != nil {
		for _, r := range v.res.Items {
			outcomes[key{r.Item.TokenID, r.Item.Policy}] = r.Outcome
			if r.Outcome == OutcomeDropped {
				dropped = append(dropped, r.Item)
			}
		}
	}
	var items []notify.SummaryItem
	add := func(it *plan.Item, outcome string) {
		items = append(items, notify.SummaryItem{TokenID: it.TokenID, TokenName: it.TokenName, OwnerID: it.OwnerID,
			OwnerName: it.OwnerName, Policy: it.Policy, Action: it.Action, Outcome: outcome, Reason: it.Reason})
	}
	for _, it := range v.plan.Items.All() {
		switch {
		case it.Mode == plan.ModeGrace:
			add(&it, notify.OutcomePending)
		case !it.Mutating() || v.res == nil:
			add(&it, notify.OutcomeWouldApply)
		default:
			add(&it, summaryOutcome(outcomes[key{it.TokenID, it.Policy}]))
		}
	}
	for i := range dropped {
		add(&dropped[i], notify.OutcomeSkipped)
	}
	for _, s := range v.plan.Skipped {
		items = append(items, notify.SummaryItem{TokenID: s.TokenID, TokenName: s.TokenName, OwnerID: s.OwnerID,
			Policy: s.Policy, Outcome: notify.OutcomeSkipped, Reason: s.Reason})
	}
	items = append(items, clientSummaryItems(v.plan, v.res)...) // apiclients.go
	rows, top, more := notify.Summarize(items, SummaryTop)
	sum := notify.Summary{
		Tenant: v.plan.Tenant, DryRun: v.dryRun, StartedAt: v.started, FinishedAt: v.finished,
		Population: v.plan.Population, Rows: rows, Top: top, More: more, Guardrails: guardrailsOf(v.plan.Guardrails, false),
		Approval: v.approval, Approved: v.approved,
	}
	if v.plan.APIClients != nil {
		sum.APIClients = v.plan.APIClients.Population
	}
	return sum
}

// summaryOutcome is the summary's word for what became of an enforce-mode
// item (tokens and API clients alike): anything not applied, gone or failed
// was skipped (blocked, dropped, not started, awaiting approval).
func summaryOutcome(o Outcome) string {
	switch o {
	case OutcomeApplied:
		return notify.OutcomeApplied
	case OutcomeGone:
		return notify.OutcomeAlreadyGone
	case OutcomeFailed:
		return notify.OutcomeFailed
	}
	return notify.OutcomeSkipped
}

func guardrailsOf(gs []plan.Guardrail, trippedOnly bool) []notify.Guardrail {
	var out []notify.Guardrail
	for _, g := range gs {
		if trippedOnly && !g.Tripped {
			continue
		}
		out = append(out, notify.Guardrail{Name: g.Name, Limit: g.Limit, Wanted: g.Wanted, Tripped: g.Tripped})
	}
	return out
}

// failures are the alerts of a run: a tripped guardrail, an authentication
// error, any other failure.
func (e *Engine) failures(v runView) []notify.Failure {
	var out []notify.Failure
	tenant, at := v.plan.Tenant, v.finished
	if tripped := guardrailsOf(v.plan.Guardrails, true); len(tripped) > 0 {
		out = append(out, notify.Failure{Kind: notify.FailureGuardrail, Tenant: tenant, Guardrails: tripped, At: at})
	}
	err := v.runErr
	var gerr *GuardrailError
	if err == nil || (errors.As(err, &gerr) && onlyGuardrail(err)) {
		return out
	}
	kind := notify.FailureRun
	if errors.Is(err, api.ErrUnauthorized) {
		kind = notify.FailureAuth
	}
	return append(out, notify.Failure{Kind: kind, Tenant: tenant, Error: err.Error(), At: at})
}

// onlyGuardrail reports whether err is nothing but a *GuardrailError (the
// guardrail alert covers it).
func onlyGuardrail(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if e != nil && !onlyGuardrail(e) {
				return false
			}
		}
		return true
	}
	var g *GuardrailError
	return errors.As(err, &g) && err == error(g)
}
