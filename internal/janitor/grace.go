package janitor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/state"
)

// The grace workflow (a policy with `grace: 14d`):
//
//  1. A run whose enforce-mode grace policy matches a token marks it (Plan
//     shows the item in mode grace; Execute stores the mark).
//  2. The run sends the owner a digest of all their marked tokens through
//     the outbox. Delivering it starts the grace clock of each mark it lists,
//     in the same store transaction (package state); a failed delivery starts
//     no clock, and the digest waits in the outbox for the next run.
//  3. A later run acts on the token only when the mark's deadline (delivery
//     time + grace) has passed and the token still matches the same policy
//     with the same change (action and patch); the item is then an ordinary
//     enforce-mode item with Marked and Deadline, under the usual guardrails
//     and journal.
//  4. A token that no longer matches (it was used, excluded, snoozed,
//     deleted, or another policy won) is unmarked by the next run with
//     complete data, and would start over with a new warning; so are the
//     tokens of a policy that left the file.

// MarkStore keeps the grace-period marks between runs; *state.Store
// implements it. Plan only reads it; Execute and ApplyPlan write it.
type MarkStore interface {
	Marks(ctx context.Context) ([]state.Mark, error)
	ReconcileMarks(ctx context.Context, policies []string, current []state.Mark) (state.MarkChanges, error)
	DeleteMarks(ctx context.Context, keys ...state.MarkKey) error
}

// pendingMetrics is the optional pending_actions gauge; *metrics.Metrics
// implements it.
type pendingMetrics interface {
	SetPending(perPolicy map[string]int)
}

// graceOf returns the grace period of each policy that has one.
func graceOf(cfg *policy.Config) map[string]time.Duration {
	var m map[string]time.Duration
	for _, p := range cfg.Policies {
		if p.Grace > 0 {
			if m == nil {
				m = map[string]time.Duration{}
			}
			m[p.Name] = p.Grace
		}
	}
	return m
}

// readMarks loads every mark for one run (also without a grace policy in the
// config: a run reconciles the marks of policies that lost their grace or
// left the file). A store that cannot be read makes the inventory
// incomplete (appended to later, as readSnoozes does): a due action cannot be
// told from a pending one.
func (e *Engine) readMarks(ctx context.Context, inv *Inventory, later *[]func()) error {
	if e.marks == nil {
		return nil
	}
	ms, err := e.marks.Marks(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		*later = append(*later, func() { inv.addProblem("read grace marks: "+err.Error(), err) })
		return nil
	}
	inv.marks = make(map[state.MarkKey]state.Mark, len(ms))
	for _, m := range ms {
		inv.marks[m.Key()] = m
	}
	return nil
}

// graceItem decides an enforce-mode item of a policy with a grace period: due
// (it stays enforce, with Marked and Deadline) when its mark's deadline has
// passed, else held in mode grace. It returns the mark the item stands for,
// with the clock fields of the stored mark, and whether the stored mark must
// be dropped first because it warned about a different change.
func graceItem(it *plan.Item, marks map[state.MarkKey]state.Mark, grace time.Duration, now time.Time) (m state.Mark, restart bool) {
	m = state.Mark{
		TokenID: it.TokenID, TokenName: it.TokenName, OwnerID: it.OwnerID, Policy: it.Policy,
		Action: it.Action, Change: changeOf(it), Reason: it.Reason, Grace: grace, MarkedAt: now,
	}
	old, found := marks[m.Key()]
	switch {
	case found && !sameChange(old, m):
		// The owner was warned about another change (the policy was
		// edited): that warning does not cover this one.
		restart = true
		found = false
	case found:
		m.MarkedAt, m.WarnedAt = old.MarkedAt, old.WarnedAt
		if m.WarnedAt != nil {
			// As the store does: a changed grace moves the deadline, never
			// to before the one the owner was told.
			d := state.DeadlineAfter(*m.WarnedAt, grace, old.Deadline)
			m.Deadline = &d
		}
	}
	marked := m.MarkedAt
	it.Marked = &marked
	v := graceVerdict(ownerWarned, grace, m.MarkedAt, m.WarnedAt, m.Deadline, found, now)
	if v.deadline != nil {
		it.Deadline = v.deadline
	}
	it.Reason += v.reason
	if !v.due {
		it.Mode = plan.ModeGrace
	}
	return m, restart
}

// warnedWho names who a grace warning goes to, in an item's reason.
type warnedWho struct {
	who     string // "owner warned <time>"
	warning string // "<the owner's warning> is not delivered yet"
}

var (
	ownerWarned  = warnedWho{who: "owner", warning: "the owner's warning"}
	clientWarned = warnedWho{who: "notify.apiClients", warning: "the warning to notify.apiClients"}
)

// verdict is what a grace mark's clock says of its item.
type verdict struct {
	due      bool       // the deadline passed: the item is acted on
	deadline *time.Time // the item's Deadline (a copy), nil before the warning
	reason   string     // appended to the item's reason
}

// graceVerdict reads the clock of a mark (a token's or an API client's):
// due once its deadline has passed, else held, with the reason saying which
// step of the workflow the item waits for. found says whether the store
// already held the mark (for the same change).
//
// A deadline without a warning time is no deadline: the mark is not
// warned, so the item is held and its warning sent (again); the clock starts
// on that delivery. The callers derive the deadline from the warning, but
// the clock fields come from the state file, which may be edited or written
// by another version: reading such a mark must neither stop the daemon (it
// panicked here) nor fail the run (every owner's warnings with it), and
// acting on it would act on a token whose owner may never have been warned.
func graceVerdict(w warnedWho, grace time.Duration, markedAt time.Time, warnedAt, deadline *time.Time, found bool, now time.Time) verdict {
	g := policy.FormatDuration(grace)
	var v verdict
	if warnedAt == nil {
		deadline = nil
	}
	if deadline != nil {
		d := *deadline
		v.deadline = &d
	}
	switch {
	case deadline != nil && !now.Before(*deadline):
		v.due = true
		v.reason = fmt.Sprintf("; grace %s: %s warned %s, deadline %s passed", g, w.who, pat.FormatTime(*warnedAt), pat.FormatTime(*deadline))
	case deadline != nil:
		v.reason = fmt.Sprintf("; grace %s: %s warned %s, nothing is done before %s", g, w.who, pat.FormatTime(*warnedAt), pat.FormatTime(*deadline))
	case found:
		v.reason = fmt.Sprintf("; grace %s: marked %s, %s is not delivered yet (the clock starts on delivery)", g, pat.FormatTime(markedAt), w.warning)
	default:
		v.reason = fmt.Sprintf("; grace %s: marked by this run, the clock starts when %s is delivered", g, w.warning)
	}
	return v
}

// changeOf describes what an item's action changes beyond its name, as its
// owner is warned about it: a patch's operations; for an expire only the
// fields it writes (the date it sets moves with every run).
func changeOf(it *plan.Item) string {
	switch it.Action {
	case plan.ActionPatch:
		return patchDetail(it.Patch)
	case plan.ActionExpire:
		var paths []string
		for _, op := range it.Patch {
			paths = append(paths, op.Path())
		}
		return "writes " + strings.Join(paths, ", ")
	}
	return ""
}

// sameChange reports whether a stored mark warned about the change m stands
// for, and warned the owner m's token has now. Marks stored before Change was
// recorded compare by action only. A token listed under another owner than
// the one warned (a PAT does not move between owners: a lie, or another
// token under the id) restarts the clock like another change would: the
// listed owner was never told, and is told before anything is done.
func sameChange(old, m state.Mark) bool {
	return old.Action == m.Action && (old.Change == "" || old.Change == m.Change) && pat.SameID(old.OwnerID, m.OwnerID)
}

// newMarks are the marks of ms the store does not hold yet (or holds for
// another action): the tokens this run would start a grace period for.
func (inv *Inventory) newMarks(ms []state.Mark) []state.Mark {
	var out []state.Mark
	for _, m := range ms {
		if old, ok := inv.marks[m.Key()]; !ok || !sameChange(old, m) {
			out = append(out, m)
		}
	}
	return out
}

// markKeyOf is the mark an item stands for.
func markKeyOf(it *plan.Item) state.MarkKey {
	return state.KeyOf(it.TokenID, it.Policy)
}

// updateMarks brings the store up to date after a run's mutations and
// returns every mark it then holds, and the marks it removed. The marks of
// the config's policies (and of policies that left the file) become exactly
// pl.marks minus those acted on: a token that stopped matching, was used,
// snoozed or deleted, is unmarked. Call it only with complete data.
func (e *Engine) updateMarks(ctx context.Context, pl *Planned, res *Result, log *zap.Logger) (all, removed []state.Mark, err error) {
	acted := map[state.MarkKey]bool{}
	for _, r := range res.Items {
		if r.Outcome == OutcomeApplied || r.Outcome == OutcomeGone {
			acted[markKeyOf(&r.Item)] = true
		}
	}
	keep := make([]state.Mark, 0, len(pl.marks))
	for _, m := range pl.marks {
		if !acted[m.Key()] {
			keep = append(keep, m)
		}
	}
	if len(pl.restart) > 0 {
		if err := e.marks.DeleteMarks(ctx, pl.restart...); err != nil {
			return nil, nil, err
		}
	}
	ch, err := e.marks.ReconcileMarks(ctx, e.markScope(pl.Inventory), keep)
	if err != nil {
		return nil, nil, err
	}
	if len(ch.New)+len(ch.Removed) > 0 {
		log.Info("grace marks updated", zap.Int("new", len(ch.New)), zap.Int("kept", len(ch.Kept)), zap.Int("removed", len(ch.Removed)))
	}
	if all, err = e.marks.Marks(ctx); err != nil {
		return nil, nil, err
	}
	e.observePending(all)
	return all, ch.Removed, nil
}

// markScope are the policies whose marks a run decides: the config's (for a
// daemon schedule, that schedule's), and any policy that is no longer in the
// file at all, whose marks are stale by definition (a policy removed and
// added back months later must not act on an old warning).
//
// Not the policies with owner conditions when the owner lookup failed: they
// matched nothing because the owners are unknown, not because the tokens
// stopped matching, so their marks stay as they are (warnings, deadlines).
// Removed, every such token was marked anew by the next run with a working
// lookup, its owner warned again and its clock restarted: a directory that
// failed once in each grace period kept the tokens forever.
func (e *Engine) markScope(inv *Inventory) []string {
	ownersUnknown := inv.owners != nil && inv.owners.Err != nil
	names := make([]string, 0, len(e.cfg.Policies))
	for _, p := range e.cfg.Policies {
		if ownersUnknown && hasOwnerConditions(p) {
			continue
		}
		names = append(names, p.Name)
	}
	inFile := e.inFile()
	for _, m := range inv.marks {
		if !inFile(m.Policy) && !slices.Contains(names, m.Policy) {
			names = append(names, m.Policy)
		}
	}
	return names
}

// inFile reports whether a policy is in the config file (every policy is
// when the config does not know its file's policies).
func (e *Engine) inFile() func(string) bool {
	all := e.cfg.FilePolicies()
	if len(all) == 0 {
		return func(string) bool { return true }
	}
	set := make(map[string]bool, len(all))
	for _, n := range all {
		set[n] = true
	}
	return func(p string) bool { return set[p] }
}

// observePending sets pending_actions{policy}: the marks per policy of the
// file, and 0 for the config's grace policies without any.
func (e *Engine) observePending(all []state.Mark) {
	pm, ok := e.metrics.(pendingMetrics)
	if !ok {
		return
	}
	counts := map[string]int{}
	for name := range e.grace {
		counts[name] = 0
	}
	inFile := e.inFile()
	for _, m := range all {
		if inFile(m.Policy) {
			counts[m.Policy]++
		}
	}
	pm.SetPending(counts)
}

// predictMarks is what the store would hold after a run of pl with complete
// data: the stored marks of other policies, and this run's marks (for plan
// --notifications-dir, which writes nothing).
func (e *Engine) predictMarks(pl *Planned) []state.Mark {
	inScope := map[string]bool{}
	for _, p := range e.markScope(pl.Inventory) {
		inScope[p] = true
	}
	var out []state.Mark
	for _, m := range pl.Inventory.marks {
		if !inScope[m.Policy] {
			out = append(out, m)
		}
	}
	return append(out, pl.marks...)
}
