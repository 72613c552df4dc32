package janitor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/state"
)

// The grace workflow of API clients (an apiClients policy with `grace`),
// the token workflow (grace.go) with the notify.apiClients receivers in the
// owner's place, since API clients have no owner:
//
//  1. A run whose enforce-mode grace policy would disable or delete a client
//     marks it instead (the item is in mode grace, not executed).
//  2. The run sends each notify.apiClients receiver one digest of every
//     marked client that is not due yet. Its delivery starts the clocks of
//     the marks it lists, in the store transaction that records the delivery
//     (state.Store.Settle); a failed delivery starts none and the digest
//     waits in the outbox. The first receiver to get it starts the clock:
//     from then on someone responsible for the clients was told.
//  3. A later run acts only when the mark's deadline has passed and the
//     client still matches the same policy with the same action; the item is
//     then an ordinary enforce-mode item (Marked, Deadline set) under the
//     client guardrails, approvals and journal.
//  4. A client that no longer matches (used, excluded, changed, deleted,
//     another policy or another action won) is unmarked by the next run with
//     complete client data; a delete policy warns before the disable and
//     again before the delete.
//
// The marks live in their own bucket (state.ClientMark), written only by
// this file, and only by an engine given Options.ClientMarks.

// ClientMarkStore keeps the API client grace marks; *state.Store implements
// it. Plan reads it; Execute and ApplyPlan reconcile it.
type ClientMarkStore interface {
	ClientMarks(ctx context.Context) ([]state.ClientMark, error)
	ReconcileClientMarks(ctx context.Context, policies []string, current []state.ClientMark) (state.ClientMarkChanges, error)
}

// clientGrace returns the grace period of each apiClients policy with one.
func clientGrace(cfg *policy.Config) map[string]time.Duration {
	m := map[string]time.Duration{}
	for _, p := range cfg.ClientPolicies {
		if p.Grace > 0 {
			m[p.Name] = p.Grace
		}
	}
	return m
}

// readClientMarks loads the client marks for one run, by key. A store that
// cannot be read makes the client data incomplete: a due action cannot be
// told from a pending one.
func (e *Engine) readClientMarks(ctx context.Context, cr *clientRun) {
	if e.clientMarks == nil {
		return
	}
	ms, err := e.clientMarks.ClientMarks(ctx)
	if err != nil {
		cr.err = errors.Join(cr.err, fmt.Errorf("read the API client grace marks: %w", err))
		return
	}
	cr.stored = make(map[state.ClientMarkKey]state.ClientMark, len(ms))
	for _, m := range ms {
		cr.stored[clientMarkKey(m.ClientID, m.Policy)] = m
	}
}

func clientMarkKey(id, policy string) state.ClientMarkKey {
	return state.ClientMarkKey{ClientID: pat.IDKey(id), Policy: policy}
}

// clientGraceItem decides an enforce-mode disable or delete item of a policy
// with grace: due (it stays enforce, with Marked and Deadline) when its
// mark's deadline has passed, else held in mode grace. It returns the mark
// the item stands for, with the stored mark's clock when that one warned
// about the same action. Without a mark store the item is held: an action
// that waits for a warning never runs unwarned.
func (e *Engine) clientGraceItem(it *plan.ClientItem, cr *clientRun, grace time.Duration, now time.Time) state.ClientMark {
	m := state.ClientMark{ClientID: it.ClientID, ClientName: it.Name, Policy: it.Policy, Action: it.Action,
		Reason: it.Reason, Grace: grace, MarkedAt: now}
	old, found := cr.stored[clientMarkKey(it.ClientID, it.Policy)]
	if found && old.Action != m.Action {
		found = false // the receivers were warned about another action
	}
	if found {
		m.MarkedAt, m.WarnedAt = old.MarkedAt, old.WarnedAt
		if m.WarnedAt != nil {
			d := state.DeadlineAfter(*m.WarnedAt, grace, old.Deadline)
			m.Deadline = &d
		}
	}
	marked := m.MarkedAt
	it.Marked = &marked
	v := graceVerdict(clientWarned, grace, m.MarkedAt, m.WarnedAt, m.Deadline, found, now)
	if v.deadline != nil {
		it.Deadline = v.deadline
	}
	it.Reason += v.reason
	if !v.due {
		it.Mode = plan.ModeGrace
	}
	return m
}

// newMarks counts the marks of this run the store does not hold yet (or
// holds for another action): the clients this run would start a grace
// period for.
func (cr *clientRun) newMarks() int {
	n := 0
	for _, m := range cr.marks {
		if old, ok := cr.stored[clientMarkKey(m.ClientID, m.Policy)]; !ok || old.Action != m.Action {
			n++
		}
	}
	return n
}

// clientsBlocked reports whether the run must leave the client marks alone:
// after incomplete client data an absent client is no evidence that it
// stopped matching, and a run stopped by a client guardrail warns about
// nothing new (the warning is the first step of the actions it refused).
func (pl *Planned) clientsBlocked() bool {
	cr := pl.clients
	return cr == nil || cr.err != nil || len(pl.blockingClientGuardrails()) > 0
}

// clientMarkScope are the policies whose client marks a run decides: the
// config's apiClients policies (a daemon schedule's), and any policy no
// longer among the file's apiClients policies.
func (e *Engine) clientMarkScope(cr *clientRun) []string {
	var names []string
	for _, p := range e.cfg.ClientPolicies {
		names = append(names, p.Name)
	}
	file := e.cfg.FileClientPolicies()
	for _, m := range cr.stored {
		if len(file) > 0 && !slices.Contains(file, m.Policy) && !slices.Contains(names, m.Policy) {
			names = append(names, m.Policy)
		}
	}
	return names
}

// clientFollowUp brings the client marks up to date after the client
// actions and sends the notify.apiClients receivers the digest of the marked
// clients. Its error is the state store's or the outbox's; a failed
// delivery waits in the outbox and starts no clock.
func (e *Engine) clientFollowUp(ctx context.Context, pl *Planned, res *Result, log *zap.Logger) error {
	cr := pl.clients
	if cr == nil || e.clientMarks == nil || pl.clientsBlocked() || pl.clockRefused() {
		return nil
	}
	bctx := context.WithoutCancel(ctx)
	acted := map[state.ClientMarkKey]bool{}
	for _, r := range res.Clients {
		if r.Outcome == OutcomeApplied || r.Outcome == OutcomeGone {
			acted[clientMarkKey(r.Item.ClientID, r.Item.Policy)] = true
		}
	}
	var keep []state.ClientMark
	for _, m := range cr.marks {
		if !acted[clientMarkKey(m.ClientID, m.Policy)] {
			keep = append(keep, m)
		}
	}
	ch, err := e.clientMarks.ReconcileClientMarks(bctx, e.clientMarkScope(cr), keep)
	if err != nil {
		log.Error("could not update the API client grace marks: no warning is sent this run", zap.Error(err))
		return fmt.Errorf("API client grace marks: %w", err)
	}
	if len(ch.New)+len(ch.Removed) > 0 {
		log.Info("API client grace marks updated", zap.Int("new", len(ch.New)), zap.Int("kept", len(ch.Kept)), zap.Int("removed", len(ch.Removed)))
	}
	all, err := e.clientMarks.ClientMarks(bctx)
	if err != nil {
		return fmt.Errorf("API client grace marks: %w", err)
	}
	e.observeClientPending(all)
	receivers := e.cfg.Notify.APIClients
	if e.notify == nil || len(receivers) == 0 {
		return nil
	}
	// A digest goes out when this run holds a client, and also when it
	// unmarked some while others (of another schedule) still wait: the new
	// digest replaces an undelivered one that lists the unmarked clients.
	held := slices.ContainsFunc(cr.section.Items, func(it plan.ClientItem) bool { return it.Mode == plan.ModeGrace })
	msgs := e.clientDigests(res.RunID, e.now(), all, held || len(ch.Removed) > 0)
	if len(msgs) == 0 && len(ch.Removed) > 0 {
		// Nothing is pending any more: an undelivered digest would warn
		// about actions that will not happen.
		ids := make([]string, 0, len(receivers))
		for _, r := range receivers {
			ids = append(ids, notify.DigestID(r, clientDigestOwner(r)))
		}
		if err := e.notify.Withdraw(bctx, ids...); err != nil {
			return fmt.Errorf("API client digests: %w", err)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	nctx, cancel := context.WithTimeout(ctx, e.notifyTO)
	defer cancel()
	rep, err := e.notify.Send(nctx, msgs...)
	log.Info("API client digests", zap.Int("messages", len(msgs)), zap.Int("sent", rep.Count(notify.Sent)),
		zap.Int("deferred", rep.Count(notify.Deferred)), zap.Int("failed", rep.Count(notify.Failed)), zap.Int("suppressed", rep.Count(notify.Suppressed)))
	if err != nil {
		log.Error("could not queue the API client digests", zap.Error(err))
		return fmt.Errorf("API client digests: %w", err)
	}
	return nil
}

// observeClientPending sets pending_actions{policy} for the apiClients
// policies, as observePending does for tokens (policy names are unique
// across resources): the marks of each policy of the file, 0 for the
// config's grace policies without any.
func (e *Engine) observeClientPending(all []state.ClientMark) {
	pm, ok := e.metrics.(pendingMetrics)
	if !ok {
		return
	}
	counts := map[string]int{}
	for name := range e.clientGrace {
		counts[name] = 0
	}
	file := e.cfg.FileClientPolicies()
	for _, m := range all {
		if len(file) == 0 || slices.Contains(file, m.Policy) {
			counts[m.Policy]++
		}
	}
	pm.SetPending(counts)
}

// clientDigestOwner is the owner id of a receiver's client digest: the
// receiver stands in for the owner API clients do not have. It is per
// receiver so that each receiver's last delivery (and repeat suppression)
// is its own.
func clientDigestOwner(receiver string) string { return apiclient.Resource + "/" + receiver }

// clientDigests are the digests of the marks that are not due, one per
// notify.apiClients receiver, when send is set (the caller's judgement: the
// run holds a client in mode grace, or changed what waits; a run of another
// schedule that changed nothing does not repeat them).
func (e *Engine) clientDigests(runID string, at time.Time, marks []state.ClientMark, send bool) []*notify.Message {
	if !send || len(e.cfg.Notify.APIClients) == 0 {
		return nil
	}
	var pending []state.ClientMark
	for _, m := range marks {
		if !m.Due(at) {
			pending = append(pending, m)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	slices.SortFunc(pending, func(a, b state.ClientMark) int {
		return cmpStrings(a.Policy, b.Policy, a.ClientName, b.ClientName, pat.IDKey(a.ClientID), pat.IDKey(b.ClientID))
	})
	items := make([]notify.DigestItem, 0, len(pending))
	for _, m := range pending {
		items = append(items, notify.DigestItem{TokenID: m.ClientID, TokenName: m.ClientName, Policy: m.Policy, Action: m.Action,
			Reason: m.Reason, MarkedAt: m.MarkedAt, Grace: notify.Duration(m.Grace), Deadline: m.Deadline})
	}
	var msgs []*notify.Message
	for _, r := range e.cfg.Notify.APIClients {
		msgs = append(msgs, notify.DigestMessage(r, runID, at, notify.Digest{
			Resource: apiclient.Resource, Tenant: e.tenantURL, Owner: notify.Owner{ID: clientDigestOwner(r), Name: r},
			Items: items,
		}))
	}
	return msgs
}

// clientDryRunDigests are the client digests a run of pl would send (plan
// --notifications-dir): the stored marks of other policies and this run's.
func (e *Engine) clientDryRunDigests(pl *Planned) []*notify.Message {
	cr := pl.clients
	if cr == nil || cr.err != nil || len(cr.section.Tripped()) > 0 {
		return nil
	}
	inScope := map[string]bool{}
	for _, p := range e.clientMarkScope(cr) {
		inScope[p] = true
	}
	var marks []state.ClientMark
	for _, m := range cr.stored {
		if !inScope[m.Policy] {
			marks = append(marks, m)
		}
	}
	marks = append(marks, cr.marks...)
	held := slices.ContainsFunc(cr.section.Items, func(it plan.ClientItem) bool { return it.Mode == plan.ModeGrace })
	runID := pl.Plan.RunID
	if runID == "" {
		runID = "plan"
	}
	return e.clientDigests(runID, pl.Plan.GeneratedAt, marks, held)
}
