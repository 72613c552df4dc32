package janitor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/state"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// DefaultMaxPlanAge is how old a saved plan apply accepts by default.
const DefaultMaxPlanAge = 24 * time.Hour

// maxClockSkew is how far in the future a plan's generatedAt may lie (the
// machine that planned may run a little ahead).
const maxClockSkew = 5 * time.Minute

// ErrPlanRejected is wrapped by every reason CheckPlan refuses a saved plan.
var ErrPlanRejected = errors.New("plan rejected")

// ApplyOptions tune ApplyPlan.
type ApplyOptions struct {
	// MaxAge is the oldest plan accepted (default DefaultMaxPlanAge).
	MaxAge time.Duration
	// Plan names the saved plan file and the approvals that counted; it is
	// journaled with the run-start. With approvals configured, a plan holding
	// an action they name is executed only when Plan carries at least the
	// required number of approvals (verified by the caller against the
	// allowed signers: see package approval).
	Plan *audit.PlanRef
	// Input are the run's state store parts (see RunInput).
	Input RunInput
	// Accept are the plan's tripped guardrails the operator accepts, each
	// with who and why. Only a guardrail that tripped in the saved plan can
	// be accepted, and only up to what the plan wanted: a run that would
	// want more than the reviewer saw is still blocked.
	Accept []GuardrailAcceptance
}

// GuardrailAcceptance is an operator's explicit, journaled override of one
// tripped guardrail of a saved plan (apply --accept-guardrail).
type GuardrailAcceptance struct {
	// Name is the guardrail (maxActionsPerRun, maxActionsPercent,
	// maxActionsPerOwner).
	Name string
	// By is who accepted it (the OS user); Reason why. Both are required.
	By, Reason string
}

// checkAccept checks the acceptances against the plan's guardrails: each
// names a guardrail that tripped in p, once, with who and why. It returns
// the accepted guardrails, by name, as the plan has them.
func checkAccept(p *plan.Plan, accept []GuardrailAcceptance) (map[string]plan.Guardrail, error) {
	out := map[string]plan.Guardrail{}
	for _, a := range accept {
		var names []string
		var g *plan.Guardrail
		for i := range p.Guardrails {
			names = append(names, p.Guardrails[i].Name)
			if p.Guardrails[i].Name == a.Name {
				g = &p.Guardrails[i]
			}
		}
		// The API client guardrails go by their resource-qualified names
		// (apiClients.maxActionsPerRun): the limits are the same settings,
		// counted per resource (apiclients.go).
		names, g = clientGuardrailNamed(p, a.Name, names, g)
		switch {
		case g == nil:
			return nil, fmt.Errorf("%w: no guardrail %q in the plan (it has %s)", ErrPlanRejected, a.Name, strings.Join(names, ", "))
		case !g.Tripped:
			return nil, fmt.Errorf("%w: guardrail %s did not trip in the plan (limit %g, wanted %d): there is nothing to accept%s", ErrPlanRejected, a.Name, g.Limit, g.Wanted, clientGuardrailHint(p, a.Name))
		case strings.TrimSpace(a.Reason) == "":
			return nil, fmt.Errorf("%w: accepting guardrail %s needs a reason", ErrPlanRejected, a.Name)
		case strings.TrimSpace(a.By) == "":
			return nil, fmt.Errorf("%w: accepting guardrail %s needs who accepts it", ErrPlanRejected, a.Name)
		}
		if _, dup := out[a.Name]; dup {
			return nil, fmt.Errorf("%w: guardrail %s accepted twice", ErrPlanRejected, a.Name)
		}
		out[a.Name] = *g
	}
	return out, nil
}

// CheckPlan verifies a saved plan before anything is listed: it must be for
// this tenant (URLs compared normalised) and API version, made with this very
// config file (the digest), not older than maxAge, not from the future, intact
// (its hash), made from complete data, and not blocked by its own guardrails.
// Every failure wraps ErrPlanRejected and says what to do.
//
// Why a changed config refuses the plan rather than warning: the reviewer
// approved the plan under the config it names. The re-check at apply time
// would drop items whose decision changed, but limits and exclusions decide
// more than single items, and "approved under another config" is exactly what
// a reviewer must notice. Planning again is cheap.
//
// accept names the tripped guardrails the operator accepts (see
// ApplyOptions.Accept); a tripped guardrail not accepted refuses the plan.
func (e *Engine) CheckPlan(p *plan.Plan, maxAge time.Duration, accept ...GuardrailAcceptance) error {
	_, err := e.checkPlan(p, maxAge, accept)
	return err
}

// checkPlan is CheckPlan, returning the accepted guardrails (checkAccept)
// for ApplyPlan to journal.
func (e *Engine) checkPlan(p *plan.Plan, maxAge time.Duration, accept []GuardrailAcceptance) (map[string]plan.Guardrail, error) {
	accepted, err := checkAccept(p, accept)
	if err != nil {
		return nil, err
	}
	if maxAge <= 0 {
		maxAge = DefaultMaxPlanAge
	}
	reject := func(format string, args ...any) (map[string]plan.Guardrail, error) {
		return nil, fmt.Errorf("%w: %s", ErrPlanRejected, fmt.Sprintf(format, args...))
	}
	// rejectByClock is a refusal this host's clock decided (ClockJudged):
	// it is made only once the tenant's clock confirms this host's.
	rejectByClock := func(format string, args ...any) (map[string]plan.Guardrail, error) {
		return nil, fmt.Errorf("%w: %w", ErrPlanRejected, &clockJudged{fmt.Sprintf(format, args...)})
	}
	if maxAge > MaxPlanAgeLimit {
		// The record that a plan was executed is kept this long
		// (executed.go): an older plan could be executed twice.
		return reject("a maximum plan age of %s (--max-plan-age) is longer than the %s patjanitor remembers which plans were executed", maxAge, MaxPlanAgeLimit)
	}
	if err := p.VerifyHash(); err != nil {
		return nil, fmt.Errorf("%w: the plan does not match its planHash (edited or damaged): %w", ErrPlanRejected, err)
	}
	if p.Version != plan.Version {
		return reject("plan format version %d, this patjanitor reads version %d", p.Version, plan.Version)
	}
	tenant, err := NormalizeTenantURL(p.Tenant)
	if err != nil {
		return reject("plan tenant: %v", err)
	}
	if tenant != e.tenantURL {
		return reject("the plan is for tenant %s, this run is configured for %s", tenant, e.tenantURL)
	}
	if pat.APIVersion(p.APIVersion) != e.version {
		return reject("the plan was made with API version %s, this run uses %s", p.APIVersion, e.version)
	}
	if p.ConfigDigest != e.cfg.Digest {
		// Quoted: the plan file's digest is whatever its writer put there.
		return reject("the plan was made with config %q, the config now is %s (%s); make a new plan", p.ConfigDigest, e.cfg.Digest, e.cfg.File)
	}
	now := e.now()
	if age := now.Sub(p.GeneratedAt); age > maxAge {
		return rejectByClock("the plan is %s old (generated %s), older than the maximum of %s (--max-plan-age); make a new plan",
			age.Round(time.Second), pat.FormatTime(p.GeneratedAt), maxAge)
	}
	if p.GeneratedAt.Sub(now) > maxClockSkew {
		return rejectByClock("the plan was generated at %s, in the future", pat.FormatTime(p.GeneratedAt))
	}
	if p.Error != "" {
		return reject("the plan was made from incomplete data (%s)", p.Error)
	}
	for _, g := range p.Guardrails {
		if _, ok := accepted[g.Name]; g.Tripped && !ok {
			return reject("the plan's guardrail %s tripped (limit %g, wanted %d): it acts on nothing unless the guardrail is accepted explicitly (apply PLAN --accept-guardrail %s --reason \"…\", journaled)", g.Name, g.Limit, g.Wanted, g.Name)
		}
	}
	return accepted, nil
}

// ApplyPlan executes a saved plan (invariant 6). After CheckPlan it lists the
// tenant afresh, unfiltered, and executes only the plan's enforce-mode items
// whose token still exists and still gets the same decision (same policy, mode
// and action, and for a patch the same operations; for expire the same
// operations apart from the date, see sameOps). Each other item is reported as
// OutcomeDropped with the reason. Tokens that are not in the plan are never
// acted on. The guardrails are evaluated again over the items that remain,
// against the fresh population.
//
// The operations sent are the plan's, as approved, including an expire's
// date; an item whose planned date has passed is dropped.
func (e *Engine) ApplyPlan(ctx context.Context, saved *plan.Plan, opts ApplyOptions) (*Result, error) {
	e = e.forRun(opts.Input)
	ctx, cancel := e.runContext(ctx)
	defer cancel()
	started := e.now()
	accepted, err := e.checkPlan(saved, opts.MaxAge, opts.Accept)
	if err != nil {
		return nil, err
	}
	if err := e.checkApprovals(saved, opts.Plan); err != nil {
		return nil, err
	}
	// Before anything is listed: a plan executed once is refused (executed.go).
	if err := e.CheckExecuted(ctx, saved); err != nil {
		return nil, err
	}
	pending, clientPending, err := e.openIntents()
	if err != nil {
		return nil, err
	}
	// The fresh decision sees what Plan saw: a token snoozed since the plan
	// was made is dropped, a grace action is due only by its stored mark,
	// and an owner condition is judged on a fresh lookup. The saved items'
	// tokens and the open intents' are kept whole, to re-verify and recover.
	want := make([]string, 0, saved.Items.Len()+len(pending))
	for _, it := range saved.Items.All() {
		want = append(want, it.TokenID)
	}
	for _, in := range pending {
		want = append(want, in.TokenID)
	}
	pr, err := e.readProofs(ctx) // proof.go
	if err != nil {
		return nil, err
	}
	want = append(want, pr.ids()...)
	inv, err := e.survey(ctx, []pat.Listing{{Kind: pat.ListAll}}, started, want, pr)
	if err != nil {
		return nil, err
	}
	e.judgeProofs(inv, started)
	// The decisions only: the fresh plan's work, guardrails and seal are
	// not this run's (those of the plan built below from the saved one are).
	fresh := e.decideItems(inv, started)
	fresh.Owners = inv.owners
	e.observePlan(fresh)

	// By pat.IDKey: a saved item matches its token however either spells
	// the id. The map holds the fresh items' indices; freshOf reads one.
	freshByID := make(map[string]int, fresh.Plan.Items.Len())
	for i, it := range fresh.Plan.Items.All() {
		freshByID[pat.IDKey(it.TokenID)] = i
	}
	freshOf := func(id string) *plan.Item {
		i, ok := freshByID[pat.IDKey(id)]
		if !ok {
			return nil
		}
		it := fresh.Plan.Items.At(i)
		return &it
	}
	skipByID := map[string]plan.Skipped{}
	for _, s := range fresh.Plan.Skipped {
		skipByID[pat.IDKey(s.TokenID)] = s
	}

	p := *saved
	p.GeneratedAt = started.UTC()
	p.RunID = NewRunID(started)
	p.Population = inv.Population
	p.Listings = fresh.Plan.Listings
	p.Error = fresh.Plan.Error
	p.Caller, p.Owners, p.CredentialExpires = fresh.Plan.Caller, fresh.Plan.Owners, fresh.Plan.CredentialExpires
	p.PartialView, p.Warnings = fresh.Plan.PartialView, fresh.Plan.Warnings
	p.Items = plan.Items{}
	var ws []work
	var dropped []ItemResult
	// The owner lookup failed: a policy with owner conditions matches
	// nothing now for want of data, not because its tokens stopped
	// matching. Its items, due or held in grace, are not dropped (that
	// executed the plan with nothing sent or marked, and a transient
	// failure of the identities endpoint had the reviewers approve it
	// again): the run is blocked as on incomplete data, sends nothing,
	// marks nothing and leaves the plan to a later run.
	var ownersErr error
	if inv.owners != nil && inv.owners.Err != nil {
		ownersErr = inv.owners.Err
	}
	var unknownOwners []string
	// The grace marks: the reviewer approved the saved plan's held items
	// (marking them warns their owners) and its due items; of the rest, the
	// fresh decision keeps the marks already stored, and the follow-up
	// unmarks what it no longer produces.
	approved := map[state.MarkKey]bool{}
	// So are the items of other policies whose token the fresh decision
	// skips as owner-unknown: a policy with owner conditions would judge it
	// first, and might decide otherwise (policy.SkipOwnerUnknown).
	ownersUnknown := func(it *plan.Item, listed bool) bool {
		if ownersErr == nil || !listed {
			return false
		}
		if s, ok := skipByID[pat.IDKey(it.TokenID)]; !e.ownerConditioned(it.Policy) && (!ok || !ownerUnknown(&s)) {
			return false
		}
		if !slices.Contains(unknownOwners, it.Policy) {
			unknownOwners = append(unknownOwners, it.Policy)
		}
		return true
	}
	for _, it := range saved.Items.All() {
		if it.Mode == plan.ModeGrace {
			// A held item of a policy with owner conditions is not in the
			// fresh decision either when the lookup failed: left out, a
			// plan of such items only had nothing left and was executed
			// (recorded, journaled) with nobody warned.
			f := freshOf(it.TokenID)
			_, listed := inv.Token(it.TokenID)
			switch {
			case inv.Err != nil, ownersUnknown(&it, listed):
			case f != nil && f.Mode == plan.ModeGrace && f.Policy == it.Policy && f.Action == it.Action:
				p.Items.Append(*f)
				approved[markKeyOf(f)] = true
			}
			continue
		}
		if !it.Mutating() {
			continue
		}
		tok, listed := inv.Token(it.TokenID)
		reason := ""
		switch {
		case inv.Err != nil, ownersUnknown(&it, listed):
		default:
			reason = dropReason(&it, tok, listed, freshOf(it.TokenID), skipByID, e.clientID, started, saved.GeneratedAt)
		}
		if reason != "" {
			dropped = append(dropped, ItemResult{Item: it, Outcome: OutcomeDropped, Detail: reason})
			continue
		}
		// The request names the token as the tenant listed it, whatever
		// spelling the saved plan holds. (An incomplete listing, which
		// blocks the run, may not hold it: the item keeps the plan's id.)
		if listed {
			it.TokenID = tok.ID
		}
		p.Items.Append(it)
		ws = append(ws, work{item: it, token: tok, ops: it.Patch})
		if it.Marked != nil {
			approved[markKeyOf(&it)] = true
		}
	}
	p.Items.Sort()
	var marks []state.Mark
	for _, m := range fresh.marks {
		old, stored := inv.marks[m.Key()]
		if approved[m.Key()] || (stored && sameChange(old, m)) {
			marks = append(marks, m)
		}
	}
	var restart []state.MarkKey
	for _, k := range fresh.restart {
		if approved[k] {
			restart = append(restart, k)
		}
	}
	p.Guardrails = e.guardrails(ws, inv.newMarks(marks), inv.Population, &p.Items)
	p.APIClients = nil // applyClients re-decides the API clients
	// The run-start names the plan as approved: the caller's reference to
	// the file and its approvals, the planHash as saved, and the guardrails
	// accepted for it.
	ref := audit.PlanRef{}
	if opts.Plan != nil {
		ref = *opts.Plan
	}
	ref.PlanHash = saved.PlanHash
	ref.Approvals = boundedApprovals(ref.Approvals)
	pl := &Planned{Plan: &p, Inventory: inv, Err: inv.Err, work: ws, marks: marks, restart: restart, planRef: &ref,
		pending: pending, clientPending: clientPending}
	if pl.Err == nil && len(unknownOwners) > 0 {
		pl.Err = fmt.Errorf("janitor: incomplete data: the owner lookup failed, and the plan's items of %s depend on owner conditions (theirs, or a policy's with them that would judge their tokens first): nothing was sent, the plan can be applied again: %w",
			strings.Join(unknownOwners, ", "), ownersErr)
	}
	if len(opts.Accept) > 0 {
		pl.accepted = map[string]int{}
		for _, a := range opts.Accept {
			g := accepted[a.Name]
			pl.accepted[a.Name] = g.Wanted
			ref.AcceptedGuardrails = append(ref.AcceptedGuardrails, audit.AcceptedGuardrail{
				Name: a.Name, Limit: g.Limit, Wanted: g.Wanted, By: clipped(a.By, MaxBy, "name"), Reason: clipped(a.Reason, MaxReason, "reason")})
		}
	}
	if err := p.Seal(); err != nil {
		pl.Err = fmt.Errorf("janitor: seal the plan: %w", err)
	}
	if err := e.applyClients(ctx, saved, pl, started); err != nil {
		return nil, err
	}
	inv.listedAll()
	recorded, err := e.recordExecution(ctx, saved, pl, opts.Plan) // executed.go
	if err != nil {
		return nil, err
	}
	res, err := e.execute(ctx, pl, dropped, started, nil)
	if recorded {
		e.releaseExecution(ctx, saved, res)
	}
	return res, err
}

// ownerConditioned reports whether the token policy of this name has owner
// conditions (hasOwnerConditions).
func (e *Engine) ownerConditioned(name string) bool {
	for _, p := range e.cfg.Policies {
		if p.Name == name {
			return hasOwnerConditions(p)
		}
	}
	return false
}

// checkApprovals refuses a saved plan that holds an action approvals.for
// names unless ref carries enough approvals. The signatures themselves are
// checked by the caller (it holds the file's bytes); this is the engine's own
// guard that no path skips them.
func (e *Engine) checkApprovals(saved *plan.Plan, ref *audit.PlanRef) error {
	ap := e.cfg.Approvals
	if ap == nil {
		return nil
	}
	if err := checkClientApprovals(saved, ref, ap); err != nil { // apiclients.go
		return err
	}
	for _, it := range saved.Items.All() {
		if !it.Mutating() || !ap.Needs(policy.Action(it.Action)) {
			continue
		}
		if ref == nil || len(ref.Approvals) < ap.Required {
			got := 0
			if ref != nil {
				got = len(ref.Approvals)
			}
			return fmt.Errorf("%w: the plan holds %s actions, which approvals.for names: they need %d approvals by distinct reviewers and has %d", ErrPlanRejected, it.Action, ap.Required, got)
		}
		return nil
	}
	return nil
}

// dropReason says why a saved item no longer holds ("" if it does).
func dropReason(it *plan.Item, tok pat.Token, listed bool, fresh *plan.Item, skipped map[string]plan.Skipped, clientID string, now, planned time.Time) string {
	if !listed {
		return "gone: the token no longer exists"
	}
	if pat.SameID(it.TokenID, clientID) || pat.SameID(tok.ID, clientID) {
		return "now exempt: own-credential"
	}
	// A PAT does not move between owners, so another owner is a lie or
	// another token under the id. Either way it is not what the reviewers
	// approved, and what was judged for the planned owner (the
	// maxActionsPerOwner count, which owner is told) would not hold for it.
	if !pat.SameID(it.OwnerID, tok.Owner.ID) {
		return fmt.Sprintf("owner changed: the token is now listed as owned by %s, planned %s", untrusted.ClipID(tok.Owner.ID), untrusted.ClipID(it.OwnerID))
	}
	usedAgain := ""
	if !sameTime(it.LastUsed, tok.LastUsed) {
		usedAgain = fmt.Sprintf("lastUsed is now %s (was %s)", tok.LastUsedString(), lastUsedString(it.LastUsed))
	}
	if s, ok := skipped[pat.IDKey(it.TokenID)]; ok {
		return "now exempt: " + s.Reason
	}
	if fresh == nil {
		if usedAgain != "" {
			return "used again: " + usedAgain + "; no policy matches now"
		}
		return "decision changed: no policy matches the token now"
	}
	if fresh.Policy != it.Policy || fresh.Action != it.Action || fresh.Mode != it.Mode {
		msg := fmt.Sprintf("decision changed: now %s %s (%s mode), planned %s %s (%s mode)",
			fresh.Policy, fresh.Action, fresh.Mode, it.Policy, it.Action, it.Mode)
		if usedAgain != "" {
			msg += "; " + usedAgain
		}
		return msg
	}
	if !sameOps(policy.Action(it.Action), it.Patch, fresh.Patch) {
		return fmt.Sprintf("decision changed: the patch would now be %s, planned %s", opsString(fresh.Patch), opsString(it.Patch))
	}
	if policy.Action(it.Action) == policy.ActionExpire {
		d, ok := expirationOf(it.Patch)
		if !ok {
			return "the planned expire has no expirationDate"
		}
		if !d.After(now) {
			return fmt.Sprintf("the planned expirationDate %s has passed", pat.FormatTime(d))
		}
		// An honest plan's date is "planned + expireIn": earlier than the
		// fresh decision's "now + expireIn" by the plan's age. Any other date
		// was not made by this policy (a plan edited and sealed again: the
		// hash is not a signature); later, it would lengthen the token's
		// life, much earlier, cut it short.
		fd, ok := expirationOf(fresh.Patch)
		if age := now.Sub(planned); !ok || d.After(fd) || fd.Sub(d) > age+time.Second {
			return fmt.Sprintf("the planned expirationDate %s is not the policy's for a plan made at %s (it would set %s now)",
				pat.FormatTime(d), pat.FormatTime(planned), pat.FormatTime(fd))
		}
	}
	return ""
}

func lastUsedString(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return pat.FormatTime(*t)
}

// sameOps compares operation lists. For expire the value of /expirationDate
// is left out: it is "now + expireIn" and so differs between planning and
// applying by construction; what was approved is "expire this token", and
// the planned date is what is sent.
func sameOps(action policy.Action, a, b []pat.PatchOp) bool {
	if len(a) != len(b) {
		return false
	}
	for i, x := range a {
		y := b[i]
		if x != y && !(action == policy.ActionExpire && x.Path() == pat.PathExpirationDate && y.Path() == pat.PathExpirationDate) {
			return false
		}
	}
	return true
}

func opsString(ops []pat.PatchOp) string {
	parts := make([]string, len(ops))
	for i, op := range ops {
		parts[i] = op.String()
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// expirationOf finds the /expirationDate value of a patch.
func expirationOf(ops []pat.PatchOp) (time.Time, bool) {
	for _, op := range ops {
		if t, ok := op.Expiration(); ok {
			return t, true
		}
	}
	return time.Time{}, false
}

// NormalizeTenantURL puts a tenant base URL into the form plans are compared
// in: lower-case scheme and host, no default port, no trailing slash.
func NormalizeTenantURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("tenant URL: %w", err)
	}
	if u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("tenant URL %q: want scheme://host", raw)
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host + strings.TrimRight(u.EscapedPath(), "/"), nil
}

// NewRunID returns a run id: the UTC start time to the second (so ids sort by
// time and say when) and 8 random hex digits (so two runs in the same second,
// say of two processes, still differ).
func NewRunID(t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
