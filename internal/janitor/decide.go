package janitor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/state"
)

// Guardrail names, as in the config's limits and the plan's guardrails (and
// the guardrail_trips_total{guard} label).
const (
	GuardMaxActionsPerRun   = "maxActionsPerRun"
	GuardMaxActionsPercent  = "maxActionsPercent"
	GuardMaxActionsPerOwner = "maxActionsPerOwner"
)

// Planned is the outcome of Plan: the plan document and the inventory it was
// made from (Execute journals each token's state as listed).
type Planned struct {
	// Plan is the sealed plan document.
	Plan *plan.Plan
	// Inventory is what the listing calls found (the tokens themselves are
	// not kept; see Inventory).
	Inventory *Inventory
	// Owners is the run's owner lookup (nil without owners.lookup): every
	// owner in the inventory when a policy has owner conditions, else the
	// owners of the plan's items (for notifications).
	Owners *Owners
	// Err is the reason this plan must not be executed: an *IncompleteError
	// when the inventory is incomplete. A tripped guardrail is not an error of
	// the plan; Execute reports it as a *GuardrailError.
	Err error

	// work are the enforce-mode items that would mutate, in plan order, with
	// the token state and the operations to send.
	work []work
	// marks are the grace marks this plan stands for (its mode-grace items
	// and its due items), with the stored clocks; restart are stored marks
	// that warned about another action and must be dropped before these are
	// stored.
	marks   []state.Mark
	restart []state.MarkKey
	// planRef is the saved plan ApplyPlan executes, journaled with the
	// run-start (nil for a plan made by this run).
	planRef *audit.PlanRef
	// accepted are the guardrails the operator accepted, with the most the
	// approved plan wanted: a fresh trip up to that many does not block.
	accepted map[string]int
	// clients is the API client part (apiclients.go), nil without
	// apiClients policies.
	clients *clientRun
	// pending and clientPending are the journal's open intents when the
	// run began, by resource: Execute resolves them (recover.go).
	pending, clientPending []audit.Record
}

// Blocking returns the plan's tripped guardrails that stop the run: every
// tripped one, except those accepted for this run (apply --accept-guardrail)
// that want no more than the approved plan did.
func (pl *Planned) Blocking() []plan.Guardrail {
	var out []plan.Guardrail
	for _, g := range pl.Plan.Tripped() {
		if most, ok := pl.accepted[g.Name]; ok && g.Wanted <= most {
			continue
		}
		out = append(out, g)
	}
	return out
}

// work is one mutation to perform.
type work struct {
	item  plan.Item
	token pat.Token
	ops   []pat.PatchOp
}

// Plan lists the tenant and decides every token: a read-only run. The plan is
// always returned when the listing calls finished (also with incomplete data,
// then with a non-nil error and Planned.Err set, so the report can show what
// was seen and why it cannot be trusted); only a cancelled ctx returns no plan.
//
// Plan is bounded by the config's runTimeout.
func (e *Engine) Plan(ctx context.Context) (*Planned, error) {
	ctx, cancel := e.runContext(ctx)
	defer cancel()
	now := e.now()
	pending, clientPending, err := e.openIntents()
	if err != nil {
		return nil, err
	}
	listings := e.cfg.Listings(now)
	hasAll := slices.ContainsFunc(listings, func(l pat.Listing) bool { return l.Kind == pat.ListAll })
	// maxActionsPercent is a share of the whole population, which only an
	// unfiltered listing counts (policy.Listings asks for one then; the engine
	// does not rely on it), and interrupted intents need one to tell a token
	// that is gone from one that is merely not stale. One unfiltered call
	// returns every token the filtered ones would.
	// Without token policies (a schedule of apiClients policies only) there
	// is no token share to count.
	// The same for confirmed mutations due for proof (proof.go): only an
	// unfiltered listing shows that a deleted token is gone.
	pr, err := e.readProofs(ctx)
	if err != nil {
		return nil, err
	}
	if !hasAll && ((e.cfg.Limits.MaxActionsPercent > 0 && len(e.cfg.Policies) > 0) || len(pending) > 0 || pr.due(now)) {
		listings = []pat.Listing{{Kind: pat.ListAll}}
	}
	want := make([]string, 0, len(pending))
	for _, in := range pending {
		want = append(want, in.TokenID)
	}
	want = append(want, pr.ids()...)
	inv, err := e.survey(ctx, listings, now, want, pr)
	if err != nil {
		return nil, err
	}
	e.judgeProofs(inv, now)
	needOwners := inv.owners != nil

	pl := e.decide(inv, now)
	pl.Owners = inv.owners
	pl.pending, pl.clientPending = pending, clientPending
	if e.owners != nil && !needOwners {
		items := &pl.Plan.Items
		if pl.Owners, err = e.lookupOwners(ctx, ownerIDs(items.Len(), func(i int) string { return items.At(i).OwnerID }), "", nil); err != nil {
			return nil, err
		}
	}
	if err := e.planClients(ctx, pl, now, e.clientListings(now, clientPending)); err != nil {
		return nil, err
	}
	inv.listedAll()
	e.observePlan(pl)
	return pl, errors.Join(pl.Err, pl.clientsErr())
}

// decideItems makes the decisions of a plan from the inventory's
// candidates (the tokens were evaluated as they were listed, straight into
// the plan's items): it sorts them into plan order and applies needs-owner
// (the own identity is known only after the listing) and the grace periods
// item by item. The plan is neither worked out nor sealed: ApplyPlan, which
// builds its own plan from a saved one, needs only these decisions.
func (e *Engine) decideItems(inv *Inventory, now time.Time) *Planned {
	p := e.newPlan(inv, now)
	p.Skipped = append(p.Skipped, inv.skipped...)
	p.Items = inv.items
	inv.items, inv.skipped = plan.Items{}, nil // the plan holds them now
	items := &p.Items
	items.Sort()
	var marks []state.Mark
	var restart []state.MarkKey
	for i := range items.Len() {
		// Most items are neither patches (needsOwner) nor of a grace
		// policy: only their decision is read, not the whole item.
		policy, _, action := items.Decision(i)
		g, grace := e.grace[policy]
		if !grace && action != plan.ActionPatch {
			continue
		}
		it := items.At(i)
		changed := needsOwner(&it, inv)
		if grace && it.Mutating() {
			m, again := graceItem(&it, inv.marks, g, now)
			marks = append(marks, m)
			if again {
				restart = append(restart, m.Key())
			}
			changed = true
		}
		if changed {
			items.Set(i, it)
		}
	}
	marks = append(marks, e.ownerUnknownMarks(inv, p.Skipped)...)
	slices.SortFunc(p.Skipped, func(a, b plan.Skipped) int {
		return cmpStrings(a.Policy, b.Policy, a.OwnerID, b.OwnerID, a.TokenID, b.TokenID)
	})
	if inv.Err != nil {
		p.Error = inv.Err.Error()
	}
	return &Planned{Plan: p, Inventory: inv, Err: inv.Err, marks: marks, restart: restart}
}

// decide makes the plan of a run: the decisions (decideItems), then the
// work to do, the guardrails over it and the plan's seal.
func (e *Engine) decide(inv *Inventory, now time.Time) *Planned {
	pl := e.decideItems(inv, now)
	p, items := pl.Plan, &pl.Plan.Items
	n := 0
	for i := range items.Len() {
		if items.Mutating(i) {
			n++
		}
	}
	// Sized once: a work is an item and a token, and growing the slice
	// copied them again and again (the mutations of a large enforce run).
	ws := make([]work, 0, n)
	for i := range items.Len() {
		if items.Mutating(i) {
			it := items.At(i)
			ops := it.Patch
			if len(ops) == 0 {
				ops = nil
			}
			tok, _ := inv.Token(it.TokenID)
			ws = append(ws, work{item: it, token: tok, ops: ops})
		}
	}
	p.Guardrails = e.guardrails(ws, inv.newMarks(pl.marks), inv.Population, &p.Items)
	pl.work = ws
	if err := p.Seal(); err != nil {
		// Only a value that cannot be encoded gets here: a bug, and a plan
		// that cannot be sealed must not be executed either.
		pl.Err = fmt.Errorf("janitor: seal the plan: %w", err)
	}
	return pl
}

// newPlan fills the plan's header.
func (e *Engine) newPlan(inv *Inventory, now time.Time) *plan.Plan {
	p := &plan.Plan{
		Version:      plan.Version,
		Tenant:       e.tenantURL,
		APIVersion:   string(e.version),
		GeneratedAt:  now.UTC(),
		RunID:        NewRunID(now),
		ConfigDigest: e.cfg.Digest,
		Population:   inv.Population,
		Skipped:      []plan.Skipped{},
		Guardrails:   []plan.Guardrail{},
	}
	p.Policies = make([]plan.Policy, 0, len(e.cfg.Policies))
	for _, pol := range e.cfg.Policies {
		p.Policies = append(p.Policies, plan.Policy{Name: pol.Name, Mode: string(pol.Mode), Action: string(pol.Action)})
	}
	inv.view.fill(p)
	p.Warnings = append(p.Warnings, inv.proofs.warnings()...) // proof.go
	for _, l := range inv.Listings {
		pl := plan.Listing{Filter: l.Filter, Count: l.Count}
		if l.Err != nil {
			pl.Error = l.Err.Error()
		}
		p.Listings = append(p.Listings, pl)
	}
	return p
}

func itemOf(t *pat.Token, d policy.Decision) plan.Item {
	it := plan.Item{
		TokenID:        t.ID,
		TokenName:      t.Name,
		OwnerID:        t.Owner.ID,
		OwnerName:      t.Owner.Name,
		Created:        t.Created,
		LastUsed:       t.LastUsed,
		ExpirationDate: t.ExpirationDate,
		Scope:          t.Scope,
		Managed:        t.Managed,
		Policy:         d.Policy,
		Mode:           string(d.Mode),
		Action:         string(d.Action),
		Reason:         d.Reason,
		Patch:          d.Patch,
		AlsoMatched:    d.AlsoMatched,
	}
	if it.Patch == nil {
		it.Patch = []pat.PatchOp{}
	}
	if it.AlsoMatched == nil {
		it.AlsoMatched = []string{}
	}
	return it
}

// SkipUndecodable is the plan.Skipped reason of a token whose listed data
// cannot be used; the reason goes on with what was wrong ("undecodable:
// scope[0] is null").
const SkipUndecodable policy.SkipReason = "undecodable"

func undecodableOf(t *pat.Token, d policy.Decision) plan.Skipped {
	return plan.Skipped{
		TokenID:   t.ID,
		TokenName: t.Name,
		OwnerID:   t.Owner.ID,
		Policy:    d.Policy, // "" when no policy matched
		Reason:    string(SkipUndecodable) + ": " + t.Undecodable,
	}
}

func skippedOf(t *pat.Token, d policy.Decision) plan.Skipped {
	reason := string(d.Skip)
	if d.Skip == policy.SkipOwnerUnknown {
		reason += ": policy " + d.Policy + " would decide the token first and needs its owner, whose lookup failed this run; no other policy decides it"
	}
	return plan.Skipped{
		TokenID:   t.ID,
		TokenName: t.Name,
		OwnerID:   t.Owner.ID,
		Policy:    d.Policy,
		Reason:    reason,
	}
}

// ownerUnknown reports whether a skipped token is skipped as owner-unknown.
func ownerUnknown(s *plan.Skipped) bool {
	return strings.HasPrefix(s.Reason, string(policy.SkipOwnerUnknown))
}

// ownerUnknownMarks are the stored grace marks, of the policies this run
// reconciles, of the tokens skipped as owner-unknown: kept as they are
// (warning, deadline). The token was not judged, so it neither stopped
// matching the policy that marked it nor matches it still: removed, a
// token marked by a policy below the one that needs the owner lost its
// owner's warning to a failed lookup, and was marked and warned anew.
func (e *Engine) ownerUnknownMarks(inv *Inventory, skipped []plan.Skipped) []state.Mark {
	if len(inv.marks) == 0 {
		return nil
	}
	var tokens map[string]bool
	for i := range skipped {
		if ownerUnknown(&skipped[i]) {
			if tokens == nil {
				tokens = map[string]bool{}
			}
			tokens[pat.IDKey(skipped[i].TokenID)] = true
		}
	}
	if tokens == nil {
		return nil
	}
	// The marks of the policies out of scope are kept anyway (markScope);
	// listing them again would count them twice (predictMarks).
	scope := e.markScope(inv)
	var out []state.Mark
	for _, m := range inv.marks {
		if tokens[pat.IDKey(m.TokenID)] && slices.Contains(scope, m.Policy) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b state.Mark) int { return cmpStrings(a.Policy, b.Policy, a.TokenID, b.TokenID) })
	return out
}

// cmpStrings compares pairs in order: (a0,b0), then (a1,b1), ...
func cmpStrings(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}

// guardrails evaluates every configured limit over the mutations the run
// wants. Report-mode items and the report action change nothing and so count
// against no limit. A limit of 0 (or less) is not configured and is not listed.
//
// A token newly marked for a grace period counts as an action too: marking
// starts the clock of that action and warns its owner, and a policy that
// suddenly matches thousands of tokens should stop at the first run, not
// after thousands of warnings. (Once marked, a token counts again only when
// its action is due.)
//
// All limits are evaluated, also after one tripped, so the report shows every
// limit that a reviewer would have to raise.
func (e *Engine) guardrails(ws []work, newMarks []state.Mark, population int, items *plan.Items) []plan.Guardrail {
	lim := e.cfg.Limits
	out := []plan.Guardrail{}
	n := len(ws) + len(newMarks)
	wanted := fmt.Sprintf("%d actions wanted", n)
	if len(newMarks) > 0 {
		wanted = fmt.Sprintf("%d actions wanted (%d now, %d tokens newly marked for a grace period)", n, len(ws), len(newMarks))
	}
	if lim.MaxActionsPerRun > 0 {
		out = append(out, plan.Guardrail{
			Name: GuardMaxActionsPerRun, Limit: float64(lim.MaxActionsPerRun), Wanted: n,
			Tripped: n > lim.MaxActionsPerRun,
			Detail:  fmt.Sprintf("%s, at most %d per run", wanted, lim.MaxActionsPerRun),
		})
	}
	if lim.MaxActionsPercent > 0 {
		// floor: "at most 10% of 15 tokens" allows 1, not 2.
		allowed := int(math.Floor(lim.MaxActionsPercent / 100 * float64(population)))
		out = append(out, plan.Guardrail{
			Name: GuardMaxActionsPercent, Limit: lim.MaxActionsPercent, Wanted: n,
			Tripped: n > allowed,
			Detail: fmt.Sprintf("%s, at most %g%% of the %d tokens = %d",
				wanted, lim.MaxActionsPercent, population, allowed),
		})
	}
	if lim.MaxActionsPerOwner > 0 {
		perOwner := map[string]int{}
		var worst string
		owners := make([]string, 0, n)
		for _, w := range ws {
			owners = append(owners, w.item.OwnerID)
		}
		for _, m := range newMarks {
			owners = append(owners, m.OwnerID)
		}
		for _, o := range owners {
			// One owner's tokens count together however the tenant
			// spells the owner's id.
			o = pat.IDKey(o)
			perOwner[o]++
			if perOwner[o] > perOwner[worst] || (perOwner[o] == perOwner[worst] && o < worst) {
				worst = o
			}
		}
		g := plan.Guardrail{
			Name: GuardMaxActionsPerOwner, Limit: float64(lim.MaxActionsPerOwner), Wanted: perOwner[worst],
			Tripped: perOwner[worst] > lim.MaxActionsPerOwner,
		}
		if n == 0 {
			g.Detail = fmt.Sprintf("no actions wanted, at most %d per owner", lim.MaxActionsPerOwner)
		} else {
			g.Detail = fmt.Sprintf("%d actions wanted on the tokens of owner %s, at most %d per owner",
				perOwner[worst], ownerLabel(worst, items), lim.MaxActionsPerOwner)
		}
		out = append(out, g)
	}
	return out
}

// ownerLabel names an owner for a reviewer: "Ann Example (2c91…)", the id
// alone when no item gives a name. The id stays: names are not unique. id
// is the owner's key (pat.IDKey); the label spells it as the tenant did.
func ownerLabel(id string, items *plan.Items) string {
	for _, it := range items.All() {
		if pat.SameID(it.OwnerID, id) {
			if it.OwnerName != "" {
				return it.OwnerName + " (" + it.OwnerID + ")"
			}
			id = it.OwnerID
		}
	}
	return id
}

// observePlan feeds the metrics every run (also a read-only one) produces:
// the population, the matches per policy and the report-mode would-apply
// counts.
func (e *Engine) observePlan(pl *Planned) {
	// A run whose listings are incomplete counted no population and found
	// no true match count: the gauges keep what the last run that listed
	// saw (a failed listing dropped them to 0 on every failure).
	counted := pl.Inventory == nil || !pl.Inventory.listingIncomplete
	if counted {
		e.metrics.SetTokens(pl.Plan.Population)
	}
	matched := map[string]int{}
	for _, p := range e.cfg.Policies {
		matched[p.Name] = 0 // reset policies that matched nothing this time
	}
	items := &pl.Plan.Items
	for i := range items.Len() {
		policy, mode, action := items.Decision(i)
		matched[policy]++
		switch {
		case mode == plan.ModeNeedsOwner:
			// An enforce-mode action that is not performed.
			e.metrics.AddAction(policy, action, MetricSkipped)
		case !items.Mutating(i) && mode != plan.ModeGrace:
			// A held grace item is counted by pending_actions instead.
			e.metrics.AddAction(policy, action, MetricWouldApply)
		}
	}
	if counted {
		for name, n := range matched {
			e.metrics.SetTokensMatched(name, n)
		}
	}
}
