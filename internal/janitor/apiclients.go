package janitor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/state"
)

// The API client side of the engine (resource: apiClients). It runs beside
// the token path rather than inside it: its own inventory, decisions,
// guardrails and plan section (plan.Clients), executed after the token work
// of the same run with the same journal discipline (intent before, outcome
// after). What the two share is the run id, the journal, the clock and the
// invariants; what they do not share is failure: an incomplete client
// listing blocks the client actions only, and a token listing or guardrail
// problem blocks the token actions only.

// ClientTenant is the part of the API client the API client path uses;
// *api.Client implements it. The engine finds it on Options.Tenant.
type ClientTenant interface {
	ListOAuthClients(ctx context.Context, filters string) ([]apiclient.Client, error)
	DeleteOAuthClient(ctx context.Context, id string) error
	// SetOAuthClientEnabled sends PATCH /enabled and nothing else.
	SetOAuthClientEnabled(ctx context.Context, id string, enabled bool) (apiclient.Client, error)
}

// ClientState keeps the record of the clients patjanitor disabled;
// *state.Store implements it.
type ClientState interface {
	DisabledClients(ctx context.Context) (map[string]state.Disabled, error)
	PutDisabled(ctx context.Context, d state.Disabled) error
	DeleteDisabled(ctx context.Context, id string) (bool, error)
}

// ClientItemResult is the fate of one API client item.
type ClientItemResult struct {
	Item    plan.ClientItem
	Outcome Outcome
	Status  int
	Detail  string
}

// clientRun is the API client part of a Planned.
type clientRun struct {
	section *plan.Clients
	byID    map[string]apiclient.Client
	work    []clientWork
	dropped []ClientItemResult
	err     error // incomplete listing or unreadable state: no client mutation
	// listingIncomplete: a listing failed (or was truncated, stale,
	// inconsistent): the section's Population counts no population.
	listingIncomplete bool
	disabled          map[string]state.Disabled
	// stored are the client grace marks read for this run, marks those
	// this run stands for (clientgrace.go).
	stored map[state.ClientMarkKey]state.ClientMark
	marks  []state.ClientMark
	// proofs are the confirmed disables and deletes awaiting proof
	// (clientproof.go; nil without a store); doubted and reclocks index
	// what this run's listing found of them by pat.IDKey
	// (indexClientProofs; nil when they were not judged).
	proofs   *proofs
	doubted  map[string]state.Confirmed
	reclocks map[string]bool
	// now is the run's time, of which the decisions were made: the settle
	// margin is measured from it wherever the listing is read.
	now time.Time
}

type clientWork struct {
	item   plan.ClientItem
	client apiclient.Client
}

// ClientsError reports why the API client actions of a run were not taken.
type ClientsError struct{ Err error }

func (e *ClientsError) Error() string { return "API clients: " + e.Err.Error() }
func (e *ClientsError) Unwrap() error { return e.Err }

func (e *Engine) clientTenant() (ClientTenant, bool) {
	ct, ok := e.tenant.(ClientTenant)
	return ct, ok
}

// listClients makes the API client listing calls and merges them by id.
// Every failure is recorded as a problem of the section.
func (e *Engine) listClients(ctx context.Context, listings []pat.Listing, cc *clockCheck) (*clientRun, error) {
	cr := &clientRun{section: &plan.Clients{}, byID: map[string]apiclient.Client{}}
	var causes []error
	ct, ok := e.clientTenant()
	var problems []string
	if !ok {
		problems = append(problems, "the tenant client cannot list API clients")
	}
	all := false
	for _, l := range listings {
		if !ok {
			break
		}
		f := api.Filter(l)
		var date answerDate
		cs, err := ct.ListOAuthClients(cc.watch(ctx, &date), f)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("list API clients: %w", context.Cause(ctx))
		}
		pl := plan.Listing{Filter: f, Count: len(cs)}
		desc := "of all API clients"
		if f != "" {
			desc = fmt.Sprintf("of API clients %q", f)
		}
		var skew error
		if err == nil {
			skew = cc.check(desc, &date)
		}
		switch {
		case err != nil:
			pl.Error = err.Error()
		case skew != nil:
			pl.Error = skew.Error()
			causes = append(causes, skew)
		case len(cs) == PageCap && !e.cfg.Tenant.Unpaged:
			pl.Error = fmt.Sprintf("returned exactly %d API clients, the page cap of this API family: the listing is probably truncated", PageCap)
		}
		seen := map[string]bool{}
		for _, c := range cs {
			if pl.Error != "" {
				break
			}
			k := pat.IDKey(c.ID)
			if seen[k] {
				pl.Error = fmt.Sprintf("API client %s appears twice", c.ID)
				break
			}
			seen[k] = true
			if why := clientOutsideFilter(l, &c); why != "" {
				pl.Error = fmt.Sprintf("API client %s %s: the tenant did not apply the filter", c.ID, why)
				break
			}
			cr.byID[k] = c
		}
		if pl.Error != "" {
			problems = append(problems, "listing "+desc+": "+pl.Error)
		}
		cr.section.Listings = append(cr.section.Listings, pl)
		if l.Kind == pat.ListAll {
			all = true
			cr.section.Population = len(cs)
		}
	}
	if !all {
		cr.section.Population = len(cr.byID)
	}
	if len(problems) > 0 {
		cr.err = &IncompleteError{Problems: problems, Causes: causes}
		cr.listingIncomplete = true
	}
	return cr, nil
}

func clientOutsideFilter(l pat.Listing, c *apiclient.Client) string {
	switch l.Kind {
	case pat.ListLastUsedBefore:
		cutoff := l.Cutoff.UTC().Truncate(time.Millisecond)
		if c.LastUsed == nil {
			return "was never used"
		}
		if c.LastUsed.After(cutoff) {
			return "has lastUsed " + pat.FormatTime(*c.LastUsed) + " after " + pat.FormatTime(cutoff)
		}
	case pat.ListNeverUsed:
		if c.LastUsed != nil {
			return "has lastUsed " + pat.FormatTime(*c.LastUsed)
		}
	}
	return ""
}

// planClients lists and decides the API clients and adds the section to the
// plan (sealing it again). Only a cancelled ctx is an error.
func (e *Engine) planClients(ctx context.Context, pl *Planned, now time.Time, listings []pat.Listing) error {
	if len(e.cfg.ClientPolicies) == 0 {
		return nil
	}
	// Confirmed disables and deletes due for proof need an unfiltered
	// listing: only that shows a deleted client gone (clientproof.go).
	pr, err := e.readClientProofs(ctx)
	if err != nil {
		return err
	}
	if pr.due(now) && !slices.ContainsFunc(listings, func(l pat.Listing) bool { return l.Kind == pat.ListAll }) {
		listings = []pat.Listing{{Kind: pat.ListAll}}
	}
	cc := &clockCheck{e: e, now: now}
	if pl.Inventory != nil && pl.Inventory.clock != nil {
		cc = pl.Inventory.clock // one warning per run about a missing Date
	}
	cr, err := e.listClients(ctx, listings, cc)
	if err != nil {
		return err
	}
	cr.proofs, cr.now = pr, now
	if pr != nil && pr.err != nil {
		// A run that cannot tell which client changes are in doubt acts
		// on no client.
		cr.err = errors.Join(cr.err, fmt.Errorf("read the confirmed API client changes: %w", pr.err))
	}
	if e.clientState != nil {
		d, err := e.clientState.DisabledClients(ctx)
		if err != nil {
			cr.err = errors.Join(cr.err, fmt.Errorf("read the disabled API clients: %w", err))
		}
		cr.disabled = d
	}
	e.readClientMarks(ctx, cr) // clientgrace.go
	e.judgeClientProofs(cr, now)
	e.decideClients(cr, now)
	e.observeClients(cr)
	pl.clients = cr
	pl.Plan.APIClients = cr.section
	pl.Plan.Warnings = append(pl.Plan.Warnings, cr.proofs.warnings()...)
	if err := pl.Plan.Seal(); err != nil {
		pl.Err = fmt.Errorf("janitor: seal the plan: %w", err)
	}
	return nil
}

// decideClients evaluates every listed client into the section.
func (e *Engine) decideClients(cr *clientRun, now time.Time) {
	s := cr.section
	for _, p := range e.cfg.ClientPolicies {
		s.Policies = append(s.Policies, plan.Policy{Name: p.Name, Mode: string(p.Mode), Action: string(p.Action)})
	}
	env := policy.ClientEnv{Now: now, ClientID: e.clientID, DisabledAt: func(id string) (time.Time, bool) {
		return cr.clientDisabledAt(id, now) // clientproof.go
	}}
	ids := make([]string, 0, len(cr.byID))
	for k := range cr.byID {
		ids = append(ids, k)
	}
	slices.Sort(ids)
	for _, k := range ids {
		c := cr.byID[k]
		d := e.cfg.EvaluateClient(&c, env)
		if !d.Matched {
			continue
		}
		if strings.EqualFold(c.ID, e.clientID) && d.Skip == "" {
			d.Skip = policy.SkipOwnCredential // defence in depth
		}
		if d.Skip != "" {
			reason := string(d.Skip)
			if d.Skip == policy.SkipFlagsMissing {
				reason += ": the tenant did not send " + c.Incomplete() + "; treated as internal and enabled"
				e.log.Warn("API client listed without internal or enabled; never acted on", zap.String("client_id", c.ID))
			}
			s.Skipped = append(s.Skipped, plan.Skipped{TokenID: c.ID, TokenName: c.Name, Policy: d.Policy, Reason: reason})
			continue
		}
		it := plan.ClientItem{
			ClientID: c.ID, Name: c.Name, Type: c.Type, GrantTypes: c.GrantTypes, Scope: c.Scope,
			Enabled: c.IsEnabled(), Internal: c.IsInternal(), Created: c.Created, LastUsed: c.LastUsed,
			Policy: d.Policy, Mode: string(d.Mode), Action: string(d.Action), Reason: d.Reason,
			AlsoMatched: d.AlsoMatched, DisabledAt: d.DisabledAt, DeleteAfter: d.DeleteAfter,
		}
		if it.Mutating() {
			// Changed less than SettleMargin ago: neither judged nor sent
			// again until a listing can tell (clientproof.go).
			if rec, ok := cr.proofs.settling(c.ID, now); ok {
				s.Skipped = append(s.Skipped, clientAwaitingProof(&it, rec))
				continue
			}
		}
		if g := e.clientGrace[it.Policy]; g > 0 && it.Mutating() {
			cr.marks = append(cr.marks, e.clientGraceItem(&it, cr, g, now))
		}
		s.Items = append(s.Items, it)
		if it.Mutating() {
			cr.work = append(cr.work, clientWork{item: it, client: c})
		}
	}
	slices.SortFunc(s.Items, func(a, b plan.ClientItem) int {
		return cmpStrings(a.Policy, b.Policy, a.Name, b.Name, a.ClientID, b.ClientID)
	})
	slices.SortFunc(cr.work, func(a, b clientWork) int {
		return cmpStrings(a.item.Policy, b.item.Policy, a.item.Name, b.item.Name, a.item.ClientID, b.item.ClientID)
	})
	s.Guardrails = e.clientGuardrails(len(cr.work), cr.newMarks(), s.Population)
	if cr.err != nil {
		s.Error = cr.err.Error()
	}
}

// clientGuardrails applies maxActionsPerRun and maxActionsPercent to the API
// client actions alone, against the API client population: the limits of
// the config hold per resource. maxActionsPerOwner does not apply (API
// clients have no owner).
//
// A client that a grace policy would newly mark counts as an action, as a
// newly marked token does: marking warns the receivers and starts the
// action's clock, so a policy that suddenly matches many clients stops at
// its first run.
func (e *Engine) clientGuardrails(actions, newMarks, population int) []plan.Guardrail {
	lim := e.cfg.Limits
	out := []plan.Guardrail{}
	n := actions + newMarks
	wanted := fmt.Sprintf("%d API client actions wanted", n)
	if newMarks > 0 {
		wanted = fmt.Sprintf("%d API client actions wanted (%d now, %d clients newly marked for a grace period)", n, actions, newMarks)
	}
	if lim.MaxActionsPerRun > 0 {
		out = append(out, plan.Guardrail{
			Name: GuardMaxActionsPerRun, Limit: float64(lim.MaxActionsPerRun), Wanted: n, Tripped: n > lim.MaxActionsPerRun,
			Detail: fmt.Sprintf("%s, at most %d per run", wanted, lim.MaxActionsPerRun),
		})
	}
	if lim.MaxActionsPercent > 0 {
		allowed := int(math.Floor(lim.MaxActionsPercent / 100 * float64(population)))
		out = append(out, plan.Guardrail{
			Name: GuardMaxActionsPercent, Limit: lim.MaxActionsPercent, Wanted: n, Tripped: n > allowed,
			Detail: fmt.Sprintf("%s, at most %g%% of the %d API clients = %d", wanted, lim.MaxActionsPercent, population, allowed),
		})
	}
	return out
}

// applyClients re-verifies the saved plan's API client items against a fresh
// unfiltered listing and decision at apply time: an item is executed only if
// the client is still listed and the fresh decision is the same policy,
// action and mode.
func (e *Engine) applyClients(ctx context.Context, saved *plan.Plan, pl *Planned, now time.Time) error {
	if saved.APIClients == nil && len(e.cfg.ClientPolicies) == 0 {
		return nil
	}
	if err := e.planClients(ctx, pl, now, []pat.Listing{{Kind: pat.ListAll}}); err != nil {
		return err
	}
	cr := pl.clients
	if cr == nil { // the config lost its apiClients policies since the plan
		cr = &clientRun{section: &plan.Clients{}}
		pl.clients = cr
	}
	fresh := map[string]clientWork{}
	for _, w := range cr.work {
		fresh[pat.IDKey(w.item.ClientID)] = w
	}
	cr.work = nil
	if saved.APIClients != nil {
		for _, it := range saved.APIClients.Items {
			if !it.Mutating() {
				continue
			}
			w, ok := fresh[pat.IDKey(it.ClientID)]
			reason := ""
			switch {
			case cr.err != nil:
			case !ok:
				reason = clientDropReason(&it, cr)
			case w.item.Policy != it.Policy || w.item.Action != it.Action:
				reason = fmt.Sprintf("decision changed: now %s %s, planned %s %s", w.item.Policy, w.item.Action, it.Policy, it.Action)
			}
			if reason != "" {
				cr.dropped = append(cr.dropped, ClientItemResult{Item: it, Outcome: OutcomeDropped, Detail: reason})
				continue
			}
			if ok {
				cr.work = append(cr.work, w)
			}
		}
	}
	cr.marks = approvedClientMarks(saved, cr)
	cr.section.Guardrails = e.clientGuardrails(len(cr.work), cr.newMarks(), cr.section.Population)
	if err := pl.Plan.Seal(); err != nil {
		pl.Err = fmt.Errorf("janitor: seal the plan: %w", err)
	}
	return nil
}

// clientDropReason says why a saved API client item has no work in the
// fresh decision, as dropReason does for a token: a reviewer reading the
// apply result must tell a client whose disable awaits proof (sent again
// after the settle margin, if it did not take effect) from one that is gone
// or that no policy matches any more.
func clientDropReason(it *plan.ClientItem, cr *clientRun) string {
	k := pat.IDKey(it.ClientID)
	if _, listed := cr.byID[k]; !listed {
		return "gone: the API client no longer exists"
	}
	for _, s := range cr.section.Skipped {
		if pat.IDKey(s.TokenID) == k {
			return "now exempt: " + s.Reason
		}
	}
	for _, f := range cr.section.Items {
		if pat.IDKey(f.ClientID) == k {
			return fmt.Sprintf("decision changed: now %s %s (%s mode), planned %s %s (%s mode)",
				f.Policy, f.Action, f.Mode, it.Policy, it.Action, it.Mode)
		}
	}
	return "decision changed: no policy matches the API client now"
}

// approvedClientMarks are the client marks an apply of saved may keep or
// make: those of the saved plan's held and due items (the reviewer saw them;
// marking warns the notify.apiClients receivers), and those already stored
// for the same action. The follow-up unmarks the rest.
func approvedClientMarks(saved *plan.Plan, cr *clientRun) []state.ClientMark {
	approved := map[state.ClientMarkKey]bool{}
	if saved.APIClients != nil {
		for _, it := range saved.APIClients.Items {
			if it.Mode == plan.ModeGrace || it.Marked != nil {
				approved[clientMarkKey(it.ClientID, it.Policy)] = true
			}
		}
	}
	var out []state.ClientMark
	for _, m := range cr.marks {
		k := clientMarkKey(m.ClientID, m.Policy)
		if old, ok := cr.stored[k]; approved[k] || (ok && old.Action == m.Action) {
			out = append(out, m)
		}
	}
	return out
}

// executeClients performs the API client work of pl after the token work.
// runErr is the token part's error: a journal failure or a stop there stops
// this part too (nothing is sent without its journal record).
func (e *Engine) executeClients(ctx context.Context, pl *Planned, res *Result, runErr error, log *zap.Logger) error {
	cr := pl.clients
	if cr == nil {
		return nil
	}
	res.Clients = append(res.Clients, cr.dropped...)
	for _, d := range cr.dropped {
		e.clientMetrics().AddClientAction(d.Item.Policy, d.Item.Action, MetricSkipped)
	}
	e.forgetReenabled(ctx, pl, log)
	block := func(o Outcome, detail string) {
		for _, w := range cr.work {
			res.Clients = append(res.Clients, ClientItemResult{Item: w.item, Outcome: o, Detail: detail})
			e.clientMetrics().AddClientAction(w.item.Policy, w.item.Action, MetricSkipped)
		}
	}
	var jerr *JournalError
	var serr *StoppedError
	switch {
	case cr.err != nil:
		block(OutcomeBlocked, cr.err.Error())
		log.Error("API client actions blocked: incomplete data", zap.Error(cr.err))
		return &ClientsError{Err: cr.err}
	case pl.Err != nil:
		// The token listing is incomplete: no change in this run, API
		// clients included (the token part reports the error).
		block(OutcomeBlocked, "blocked: the token listing is incomplete, and incomplete data stops every change of the run: "+pl.Err.Error())
		return nil
	case len(pl.blockingClientGuardrails()) > 0:
		// Before "no work": new grace marks alone can trip a guardrail.
		// The error names them as apply --accept-guardrail takes them
		// (apiClients.maxActionsPerRun); the metric has the resource label.
		gerr := &GuardrailError{}
		for _, g := range pl.blockingClientGuardrails() {
			e.clientMetrics().AddClientGuardrailTrip(g.Name)
			g.Name = ClientGuardrailName(g.Name)
			gerr.Tripped = append(gerr.Tripped, g)
		}
		block(OutcomeBlocked, gerr.Error())
		return &ClientsError{Err: gerr}
	case len(cr.work) == 0:
		return e.recoverClients(ctx, cr, pl.clientPending, res)
	case errors.As(runErr, &jerr), errors.As(runErr, &serr), ctx.Err() != nil:
		block(OutcomeNotStarted, "not started: the run stopped")
		return nil
	case e.journal == nil:
		err := errors.New("janitor: no journal: mutations are only made with a journal")
		block(OutcomeNotStarted, err.Error())
		return &ClientsError{Err: err}
	}
	ct, _ := e.clientTenant()
	jctx := context.WithoutCancel(ctx)
	if _, err := e.journal.Append(jctx, audit.Record{
		Kind: audit.KindRunStart, RunID: res.RunID, Resource: apiclient.Resource,
		Note: fmt.Sprintf("%d API client actions; plan %s", len(cr.work), pl.Plan.PlanHash),
		// The approved plan and the guardrails accepted for it, as the
		// token run-start records them: a run may have API client actions
		// only, and an acceptance of apiClients.NAME must be journaled
		// with the actions it let through.
		Plan: pl.planRef,
	}); err != nil {
		block(OutcomeNotStarted, "not started: the journal could not be written: "+err.Error())
		return &ClientsError{Err: &JournalError{Err: err}}
	}
	if err := e.recoverClients(ctx, cr, pl.clientPending, res); err != nil {
		block(OutcomeNotStarted, "not started: "+err.Error())
		return err
	}
	if err := e.journalProofs(jctx, res.RunID, cr.proofs); err != nil { // clientproof.go
		block(OutcomeNotStarted, "not started: the journal could not be written: "+err.Error())
		return &ClientsError{Err: &JournalError{Err: err}}
	}
	failed := 0
	for i, w := range cr.work {
		if ctx.Err() != nil {
			for _, rest := range cr.work[i:] {
				res.Clients = append(res.Clients, ClientItemResult{Item: rest.item, Outcome: OutcomeNotStarted, Detail: "not started: the run stopped"})
				e.clientMetrics().AddClientAction(rest.item.Policy, rest.item.Action, MetricSkipped)
			}
			break
		}
		r, err := e.mutateClient(ctx, ct, res.RunID, w, cr.proofs, log)
		res.Clients = append(res.Clients, r)
		if r.Outcome == OutcomeFailed {
			failed++
		}
		if err != nil {
			for _, rest := range cr.work[i+1:] {
				res.Clients = append(res.Clients, ClientItemResult{Item: rest.item, Outcome: OutcomeNotStarted, Detail: "not started: " + err.Error()})
			}
			return &ClientsError{Err: err}
		}
	}
	note := fmt.Sprintf("API clients: applied %d, failed %d", countClients(res.Clients, OutcomeApplied)+countClients(res.Clients, OutcomeGone), failed)
	if _, err := e.journal.Append(jctx, audit.Record{Kind: audit.KindRunEnd, RunID: res.RunID, Resource: apiclient.Resource, Note: note}); err != nil {
		return &ClientsError{Err: &JournalError{Err: err}}
	}
	nerr := e.noticeClients(ctx, pl, res, log)
	if failed > 0 {
		return errors.Join(&ClientsError{Err: &ActionsFailedError{Failed: failed, Total: len(cr.work)}}, nerr)
	}
	return nerr
}

func countClients(rs []ClientItemResult, o Outcome) int {
	n := 0
	for _, r := range rs {
		if r.Outcome == o {
			n++
		}
	}
	return n
}

// ClientRequest describes the request an API client action sends, for the
// journal: PATCH /enabled (false to disable, true to re-enable) or DELETE.
func ClientRequest(action policy.Action, id string) audit.Request {
	path := api.OAuthClientPath(id)
	switch action {
	case policy.ActionDelete:
		return audit.Request{Method: http.MethodDelete, Path: path}
	case policy.ActionDisable:
		return audit.Request{Method: http.MethodPatch, Path: path, Patch: api.EnabledPatch(false)}
	}
	return audit.Request{Method: http.MethodPatch, Path: path, Patch: api.EnabledPatch(true)}
}

// mutateClient performs one API client action: intent, request, outcome, and
// the disabled record (and, for a change the tenant confirmed, the record
// awaiting its proof, before the outcome: see storeConfirmed). The error is
// non-nil only for a journal failure.
func (e *Engine) mutateClient(ctx context.Context, ct ClientTenant, runID string, w clientWork, pr *proofs, log *zap.Logger) (ClientItemResult, error) {
	it := w.item
	res := ClientItemResult{Item: it}
	log = log.With(zap.String("policy", it.Policy), zap.String("client_id", it.ClientID), zap.String("action", it.Action))
	// Defence in depth: decide already refused these.
	if strings.EqualFold(it.ClientID, e.clientID) || w.client.IsInternal() || w.client.Incomplete() != "" {
		res.Outcome, res.Detail = OutcomeRefused, "the API client is patjanitor's own credential or internal; never acted on"
		log.Error("refused to act on a protected API client (a bug put it into the plan)")
		e.clientMetrics().AddClientAction(it.Policy, it.Action, MetricSkipped)
		return res, nil
	}
	action := policy.Action(it.Action)
	req := ClientRequest(action, it.ClientID)
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.mutTimeout)
	defer cancel()
	before := w.client
	if _, err := e.journal.Append(mctx, audit.Record{
		Kind: audit.KindIntent, RunID: runID, Resource: apiclient.Resource, Policy: it.Policy, TokenID: it.ClientID,
		Client: &before, Request: &req,
	}); err != nil {
		res.Outcome, res.Detail = OutcomeNotStarted, "not started: the journal could not record the intent: "+err.Error()
		e.clientMetrics().AddClientAction(it.Policy, it.Action, MetricSkipped)
		return res, &JournalError{Err: fmt.Errorf("record intent for API client %s: %w", it.ClientID, err)}
	}
	var err error
	switch action {
	case policy.ActionDelete:
		err = ct.DeleteOAuthClient(mctx, it.ClientID)
	case policy.ActionDisable:
		_, err = ct.SetOAuthClientEnabled(mctx, it.ClientID, false)
	default:
		err = fmt.Errorf("janitor: action %q is not an API client mutation", it.Action)
	}
	var out audit.Outcome
	var metric string
	res.Outcome, res.Status, res.Detail, metric, out = mutationOutcome(it.Action, err, log)
	e.clientMetrics().AddClientAction(it.Policy, it.Action, metric)
	// The state record follows the tenant: a disabled client is recorded
	// (the clock of disabledFor starts), a deleted or gone one forgotten (a
	// confirmed or 404 delete once a listing proves it, when confirmations
	// are recorded). A
	// store that cannot be written is reported in the outcome: the delete
	// then waits for a later run's record, which is the safe direction.
	if e.clientState != nil && res.Outcome != OutcomeFailed {
		var serr error
		switch {
		case action == policy.ActionDisable && res.Outcome == OutcomeApplied:
			serr = e.clientState.PutDisabled(context.WithoutCancel(ctx), state.Disabled{ClientID: it.ClientID, Name: it.Name, At: e.now().UTC(), Policy: it.Policy, RunID: runID})
		case action == policy.ActionDelete && (res.Outcome == OutcomeApplied || res.Outcome == OutcomeGone) && e.provesClients():
			// Kept until a listing proves the delete (clientproof.go),
			// also after a 404: a delete found not in effect is sent
			// again, which the record of the disable allows.
		default:
			_, serr = e.clientState.DeleteDisabled(context.WithoutCancel(ctx), it.ClientID)
		}
		if serr != nil {
			out.Error = strings.TrimPrefix(out.Error+"; ", "; ") + "state store: " + serr.Error()
			log.Error("state store not updated", zap.Error(serr))
		}
	}
	octx, ocancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeTimeout)
	defer ocancel()
	if res.Outcome.awaitsProof() && (action == policy.ActionDelete || action == policy.ActionDisable) {
		e.storeConfirmedClient(octx, pr, confirmedClient(it, res.Status, runID, e.now(), &w.client), log)
	}
	if _, jerr := e.journal.Append(octx, audit.Record{
		Kind: audit.KindOutcome, RunID: runID, Resource: apiclient.Resource, Policy: it.Policy, TokenID: it.ClientID, Outcome: &out,
	}); jerr != nil {
		return res, &JournalError{Err: fmt.Errorf("record outcome for API client %s: %w", it.ClientID, jerr)}
	}
	return res, nil
}

// forgetReenabled drops the disabled record of each client the listing
// shows enabled (explicitly: enabled true): someone re-enabled it in the
// tenant, not with patjanitor enable. The record is what lets a delete
// policy delete a disabled client, counting disabledFor from patjanitor's
// disable; kept, it would let the delete go ahead at once when the client
// is next found disabled, by someone else and perhaps for an hour, though
// patjanitor never kept it disabled for disabledFor. Forgotten, such a
// client is reported as "disabled, but not by patjanitor", or quarantined
// again if it is enabled and matches. Also when this run means to disable
// it again: that disable writes a record of its own once it succeeds
// (mutateClient), and one that fails or is blocked (a guardrail, the
// journal, a stop) must not leave the old record behind.
//
// Only after a complete listing (a partial one may still be right about the
// clients it shows, but a run with incomplete data changes no state), and
// only by a run that journals (not a dry run, whose store is read-only).
// Forgetting is the safe direction, so a failure to write is logged, not
// fatal: the next run tries again.
func (e *Engine) forgetReenabled(ctx context.Context, pl *Planned, log *zap.Logger) {
	cr := pl.clients
	if e.clientState == nil || e.journal == nil || cr.err != nil || pl.Err != nil || len(cr.disabled) == 0 {
		return
	}
	bctx := context.WithoutCancel(ctx)
	for k, c := range cr.byID {
		if c.Enabled == nil || !*c.Enabled {
			continue
		}
		d, ok := cr.disabled[k]
		if !ok {
			continue
		}
		if _, settling := cr.proofs.settling(c.ID, cr.now); settling {
			// A listing within SettleMargin of a confirmed disable may
			// lag: it proves nothing, re-enabled included (clientproof.go).
			// Measured at the run's time, as the decision that skipped
			// the client as awaiting proof was: the clock read now, after
			// the listing and the token actions, may be past the margin
			// while the listing is not.
			continue
		}
		if _, err := e.clientState.DeleteDisabled(bctx, d.ClientID); err != nil {
			log.Error("could not forget the disabled record of an API client that is enabled again", zap.String("client_id", c.ID), zap.Error(err))
			continue
		}
		log.Info("API client enabled again outside patjanitor: its disabled record is forgotten, and disabledFor starts over if patjanitor disables it again",
			zap.String("client_id", c.ID), zap.Time("disabled_at", d.At))
	}
}

// ClientGuardrailName is the name by which apply --accept-guardrail accepts
// an API client guardrail: the resource, a dot, the setting
// (apiClients.maxActionsPerRun). The token guardrails keep their bare names.
func ClientGuardrailName(name string) string { return apiclient.Resource + "." + name }

// clientGuardrailNamed finds the API client guardrail a qualified name
// means in p (g unchanged when it names none), adding the section's
// qualified names to names for the error that lists what the plan has.
func clientGuardrailNamed(p *plan.Plan, name string, names []string, g *plan.Guardrail) ([]string, *plan.Guardrail) {
	if p.APIClients == nil {
		return names, g
	}
	for i := range p.APIClients.Guardrails {
		q := ClientGuardrailName(p.APIClients.Guardrails[i].Name)
		names = append(names, q)
		if q == name {
			g = &p.APIClients.Guardrails[i]
		}
	}
	return names, g
}

// clientGuardrailHint points from a token guardrail's name to the tripped
// API client guardrail of the same setting, if there is one.
func clientGuardrailHint(p *plan.Plan, name string) string {
	if p.APIClients == nil {
		return ""
	}
	for _, g := range p.APIClients.Tripped() {
		if g.Name == name {
			return fmt.Sprintf(" (the API client guardrail that tripped is %s)", ClientGuardrailName(name))
		}
	}
	return ""
}

// blockingClientGuardrails are the tripped API client guardrails that stop
// the client actions: every tripped one, except those accepted for this run
// (apply --accept-guardrail apiClients.NAME) that want no more than the
// approved plan did.
func (pl *Planned) blockingClientGuardrails() []plan.Guardrail {
	if pl.clients == nil {
		return nil
	}
	var out []plan.Guardrail
	for _, g := range pl.clients.section.Tripped() {
		if most, ok := pl.accepted[ClientGuardrailName(g.Name)]; ok && g.Wanted <= most {
			continue
		}
		out = append(out, g)
	}
	return out
}

// clientsErr is the API client part's reason not to act (nil when fine).
func (pl *Planned) clientsErr() error {
	if pl.clients == nil || pl.clients.err == nil {
		return nil
	}
	return &ClientsError{Err: pl.clients.err}
}

// ClientsError returns why the plan's API client actions must not be taken
// (an incomplete client listing), or nil.
func (pl *Planned) ClientsError() error { return pl.clientsErr() }

// clientListings are the API client listing calls of a Plan: the config's,
// or every client when interrupted API client intents wait to be resolved.
func (e *Engine) clientListings(now time.Time, pending []audit.Record) []pat.Listing {
	if len(pending) > 0 && len(e.cfg.ClientPolicies) > 0 {
		return []pat.Listing{{Kind: pat.ListAll}}
	}
	return e.cfg.ClientListings(now)
}

// tokenIntents and clientIntents split the pending intents by resource: the
// token recovery must not read an API client id as a deleted token.
func tokenIntents(rs []audit.Record) []audit.Record {
	var out []audit.Record
	for _, r := range rs {
		if r.Resource == "" {
			out = append(out, r)
		}
	}
	return out
}

func clientIntents(rs []audit.Record) []audit.Record {
	var out []audit.Record
	for _, r := range rs {
		if r.Resource == apiclient.Resource {
			out = append(out, r)
		}
	}
	return out
}

// recoverClients closes the API client intents an interrupted run left open
// (pending, read from the journal by Plan or ApplyPlan), as
// resolveInterrupted does for tokens: the client is gone, or still listed and
// decided afresh by this run. It needs an unfiltered listing (clientListings
// asks for one while intents are pending).
func (e *Engine) recoverClients(ctx context.Context, cr *clientRun, pending []audit.Record, res *Result) error {
	if len(pending) == 0 || e.journal == nil || cr.err != nil {
		return nil
	}
	unfiltered := slices.ContainsFunc(cr.section.Listings, func(l plan.Listing) bool { return l.Filter == "" })
	if !unfiltered {
		return nil
	}
	jctx := context.WithoutCancel(ctx)
	for _, in := range pending {
		_, present := cr.byID[pat.IDKey(in.TokenID)]
		status, note := StatusPresentAfterCrash, "interrupted API client intent resolved by run "+res.RunID+": client still listed; decided afresh"
		if !present {
			status, note = StatusGoneAfterCrash, "interrupted API client intent resolved by run "+res.RunID+": client no longer listed"
		}
		if _, err := e.journal.Append(jctx, audit.Record{
			Kind: audit.KindOutcome, RunID: in.RunID, Resource: apiclient.Resource, Policy: in.Policy, TokenID: in.TokenID,
			Outcome: &audit.Outcome{Status: status}, Note: note,
		}); err != nil {
			return &ClientsError{Err: &JournalError{Err: err}}
		}
	}
	return nil
}

// holdClientsForApproval keeps the API client mutations approvals.for names
// (by default disable and delete) out of a run that is not the apply of a
// signed plan, as holdForApproval does for tokens.
func holdClientsForApproval(pl *Planned, ap *policy.Approvals) *Planned {
	if pl.clients == nil || len(pl.clients.work) == 0 {
		return pl
	}
	cr := *pl.clients
	cr.work = nil
	for _, w := range pl.clients.work {
		if !ap.Needs(policy.Action(w.item.Action)) {
			cr.work = append(cr.work, w)
			continue
		}
		cr.dropped = append(cr.dropped, ClientItemResult{Item: w.item, Outcome: OutcomeAwaitingApproval,
			Detail: fmt.Sprintf("approvals.for names %s: it is carried out only from a saved plan signed by %d reviewers", w.item.Action, ap.Required)})
	}
	cp := *pl
	cp.clients = &cr
	return &cp
}

// checkClientApprovals refuses a saved plan with API client mutations that
// approvals.for names when it does not carry the required approvals.
func checkClientApprovals(saved *plan.Plan, ref *audit.PlanRef, ap *policy.Approvals) error {
	if saved.APIClients == nil {
		return nil
	}
	for i := range saved.APIClients.Items {
		it := &saved.APIClients.Items[i]
		if !it.Mutating() || !ap.Needs(policy.Action(it.Action)) {
			continue
		}
		got := 0
		if ref != nil {
			got = len(ref.Approvals)
		}
		if got < ap.Required {
			return fmt.Errorf("%w: the plan holds API client %s actions, which approvals.for names: they need %d approvals by distinct reviewers and has %d", ErrPlanRejected, it.Action, ap.Required, got)
		}
		return nil
	}
	return nil
}

// ClientMetrics receives the API client path's counters, with the
// resource="apiClients" label; *metrics.Metrics implements it. An engine
// whose Metrics does not is simply not measured for API clients (the token
// Metrics interface stayed as it was).
type ClientMetrics interface {
	SetAPIClients(n int)
	AddClientAction(policy, action, outcome string)
	AddClientGuardrailTrip(guard string)
}

func (e *Engine) clientMetrics() ClientMetrics {
	if m, ok := e.metrics.(ClientMetrics); ok {
		return m
	}
	return nopClientMetrics{}
}

type nopClientMetrics struct{}

func (nopClientMetrics) SetAPIClients(int)                      {}
func (nopClientMetrics) AddClientAction(string, string, string) {}
func (nopClientMetrics) AddClientGuardrailTrip(string)          {}

// observeClients records the API client population, what each apiClients
// policy won, and the report-only items (would_apply), as observePlan does
// for tokens.
func (e *Engine) observeClients(cr *clientRun) {
	m := e.clientMetrics()
	if !cr.listingIncomplete {
		m.SetAPIClients(cr.section.Population)
	}
	won := map[string]int{}
	for _, p := range e.cfg.ClientPolicies {
		won[p.Name] = 0
	}
	for i := range cr.section.Items {
		it := &cr.section.Items[i]
		won[it.Policy]++
		if !it.Mutating() {
			m.AddClientAction(it.Policy, it.Action, MetricWouldApply)
		}
	}
	if !cr.listingIncomplete {
		for name, n := range won {
			e.metrics.SetTokensMatched(name, n)
		}
	}
}

// clientsHeld counts the API client actions held for approval.
func clientsHeld(pl *Planned) int {
	if pl.clients == nil {
		return 0
	}
	n := 0
	for _, d := range pl.clients.dropped {
		if d.Outcome == OutcomeAwaitingApproval {
			n++
		}
	}
	return n
}

// clientSummaryItems are the API client items of a run for its summary:
// every item of the plan's section by outcome (held in grace: pending;
// report or dry run: would apply), then the items dropped or held for
// approval, then the skipped clients. The client policies have names of
// their own, so they make rows of their own.
func clientSummaryItems(p *plan.Plan, res *Result) []notify.SummaryItem {
	if p.APIClients == nil {
		return nil
	}
	outcomes := map[string]Outcome{}
	var extra []ClientItemResult
	if res != nil {
		for _, r := range res.Clients {
			outcomes[pat.IDKey(r.Item.ClientID)+"\x00"+r.Item.Policy] = r.Outcome
			if r.Outcome == OutcomeDropped {
				extra = append(extra, r)
			}
		}
	}
	var out []notify.SummaryItem
	add := func(it *plan.ClientItem, outcome string) {
		out = append(out, notify.SummaryItem{TokenID: it.ClientID, TokenName: it.Name, Policy: it.Policy,
			Action: it.Action, Outcome: outcome, Reason: it.Reason})
	}
	for i := range p.APIClients.Items {
		it := &p.APIClients.Items[i]
		switch {
		case it.Mode == plan.ModeGrace:
			add(it, notify.OutcomePending)
		case !it.Mutating() || res == nil:
			add(it, notify.OutcomeWouldApply)
		default:
			add(it, summaryOutcome(outcomes[pat.IDKey(it.ClientID)+"\x00"+it.Policy]))
		}
	}
	for i := range extra {
		add(&extra[i].Item, notify.OutcomeSkipped)
	}
	for _, s := range p.APIClients.Skipped {
		out = append(out, notify.SummaryItem{TokenID: s.TokenID, TokenName: s.TokenName, Policy: s.Policy,
			Outcome: notify.OutcomeSkipped, Reason: s.Reason})
	}
	return out
}

// noticeClients tells the notify.apiClients receivers what the run did to
// API clients (one notice per receiver, listing every client acted on),
// after the actions: API clients have no owner. Delivery failures wait in
// the outbox as for every notice; only an outbox failure is returned.
func (e *Engine) noticeClients(ctx context.Context, pl *Planned, res *Result, log *zap.Logger) error {
	receivers := e.cfg.Notify.APIClients
	if e.notify == nil || len(receivers) == 0 {
		return nil
	}
	var items []notify.NoticeItem
	for _, r := range res.Clients {
		// A client whose earlier confirmed change a listing showed not in
		// effect: the receivers were told once, wrongly; a change sent
		// again is not announced before a listing proves it.
		if pl.clients.clientInDoubt(r.Item.ClientID) {
			continue
		}
		outcome := ""
		switch r.Outcome {
		case OutcomeApplied:
			outcome = "applied"
		case OutcomeGone:
			outcome = "already_gone"
		case OutcomeFailed:
			outcome = "failed"
		default:
			continue
		}
		items = append(items, notify.NoticeItem{TokenID: r.Item.ClientID, TokenName: r.Item.Name, Policy: r.Item.Policy,
			Action: r.Item.Action, Outcome: outcome, Reason: r.Item.Reason, Detail: r.Detail, At: res.Finished})
	}
	if len(items) == 0 {
		return nil
	}
	at := e.now()
	msgs := make([]*notify.Message, 0, len(receivers))
	for _, rcv := range receivers {
		msgs = append(msgs, notify.NoticeMessage(rcv, res.RunID, at, notify.Notice{
			Resource: apiclient.Resource, Tenant: e.tenantURL, Owner: notify.Owner{ID: apiclient.Resource, Name: rcv}, Items: items,
		}))
	}
	nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.notifyTO)
	defer cancel()
	if _, err := e.notify.Send(nctx, msgs...); err != nil {
		log.Error("could not queue the API client notices", zap.Error(err))
		return fmt.Errorf("API client notices: %w", err)
	}
	return nil
}
