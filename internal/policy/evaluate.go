package policy

import (
	"strings"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// Env is what an evaluation depends on besides the token: the time and who
// patjanitor is. Evaluation reads no clock and does no I/O.
type Env struct {
	// Now is the decision time: every cutoff is Now minus (or plus) a
	// duration.
	Now time.Time
	// ClientID is the id of the PAT patjanitor runs as; that token is never
	// acted on, however either id is spelled (compared by pat.IDKey).
	ClientID string
	// Owner looks up a token owner's identity, for the ownerStates and
	// ownerMissing conditions. ok is false when there is no data for that
	// owner (no lookup was made, or it failed); nil means no data at all.
	// Without data those conditions do not hold: a policy that needs them
	// never matches on a guess, and a token it would judge first is
	// skipped (SkipOwnerUnknown) rather than left to the next policy.
	Owner func(ownerID string) (info OwnerInfo, ok bool)
}

// OwnerInfo is what the owner lookup learned about a token's owner.
type OwnerInfo struct {
	// Missing is true when the tenant has no identity with the owner's id
	// (a deleted user). The zero value is an identity that exists.
	Missing bool
	// State is the identity's identityState (ACTIVE, INACTIVE_SHORT_TERM,
	// INACTIVE_LONG_TERM) when it exists.
	State string
}

// SkipReason says why a matching token is exempt from any action.
type SkipReason string

// The exemptions, in the order they are checked.
const (
	SkipOwnCredential SkipReason = "own-credential" // the token patjanitor logs in with
	SkipExcludedID    SkipReason = "excluded-id"    // exclude.tokenIds
	SkipExcludedOwner SkipReason = "excluded-owner" // exclude.ownerIds
	SkipExcludedName  SkipReason = "excluded-name"  // exclude.names
	SkipManaged       SkipReason = "managed"        // managed, and no matching policy has includeManaged
	// SkipOwnerUnknown: a policy with owner conditions (ownerStates,
	// ownerMissing) whose other conditions hold would take precedence over
	// every policy that matched, and there is no data on the owner (the
	// lookup failed). Whether it acts cannot be known this run, so no other
	// policy decides the token either.
	SkipOwnerUnknown SkipReason = "owner-unknown"
)

// Decision is what the policies decided for one token.
type Decision struct {
	// Matched is true when at least one policy matched, whether the token is
	// acted on or skipped. A false Decision is the zero value.
	Matched bool
	// Policy is the winning policy: enforce-mode matches before report-mode
	// ones, then the most destructive (delete > expire > patch > report),
	// then the first in the file.
	Policy string
	Mode   Mode
	Action Action
	// Reason explains the match with the token's fields and the cutoffs, one
	// clause per condition joined by "; ".
	Reason string
	// Patch is the JSON Patch to send, for patch and expire (nil when
	// skipped).
	Patch []pat.PatchOp
	// AlsoMatched are the other policies that matched (and could act on the
	// token) and lost to Policy by the precedence above, in file order.
	AlsoMatched []string
	// Skip is set when the token matched but is exempt: nothing is done.
	Skip SkipReason
}

// Evaluator decides tokens for one Env: the cutoffs are computed once. It is
// safe for concurrent use.
type Evaluator struct {
	env  Env
	pols []evalPolicy
	ex   *exclusions
}

// evalPolicy is a compiled policy with its cutoffs for one Env.
type evalPolicy struct {
	p *Policy
	c *compiled
	// Cutoffs: a token matches a time condition when its time is at or
	// before the cutoff (<=).
	unusedCut, lastUsedCut, createdCut, expiresCut time.Time
	// expireAt is the expirationDate an expire action sets; expireOp sets
	// it, built once for every token.
	expireAt time.Time
	expireOp pat.PatchOp
}

// Evaluator returns an evaluator of the config's policies at env. Build one per
// run and call Evaluate for every token: that is the fast path.
func (c *Config) Evaluator(env Env) *Evaluator {
	return &Evaluator{env: env, ex: c.exclusions(), pols: c.evalPolicies(make([]evalPolicy, 0, len(c.Policies)), env.Now)}
}

// Evaluate decides one token at env. It prepares the cutoffs for this one call
// (on the stack, for up to 16 policies); for the tokens of a run, build an
// Evaluator once and reuse it.
func (c *Config) Evaluate(t *pat.Token, env Env) Decision {
	var buf [16]evalPolicy
	e := Evaluator{env: env, ex: c.exclusions(), pols: c.evalPolicies(buf[:0], env.Now)}
	return e.Evaluate(t)
}

func (c *Config) exclusions() *exclusions {
	if c.excluded != nil {
		return c.excluded
	}
	return compileExclusions(&c.Exclude) // a Config built in code
}

// evalPolicies appends the policies with their cutoffs at now to pols.
func (c *Config) evalPolicies(pols []evalPolicy, now time.Time) []evalPolicy {
	for _, p := range c.Policies {
		cp := p.c
		if cp == nil {
			cp = compilePolicy(p) // a Policy built in code
		}
		pols = append(pols, evalPolicy{
			p: p, c: cp,
			unusedCut:   now.Add(-cp.unusedFor),
			lastUsedCut: now.Add(-cp.lastUsedOlderThan),
			createdCut:  now.Add(-cp.createdOlderThan),
			expiresCut:  now.Add(cp.expiresWithin),
			expireAt:    now.Add(cp.expireIn),
			expireOp:    pat.SetExpiration(now.Add(cp.expireIn)),
		})
	}
	return pols
}

// Evaluate decides one token:
//
//  1. Every policy whose conditions all hold matches. A patch or expire that
//     would change nothing (the name already prefixed, the scopes already
//     narrowed, the token already expiring sooner) does not match: acting
//     would loop forever.
//  2. The winner: enforce-mode matches take precedence over report-mode
//     ones, then the most destructive action, then the first in the file
//     (see precedence). The others are AlsoMatched.
//  3. Exemptions, in order: the token patjanitor logs in with
//     (own-credential, always), exclude.tokenIds, exclude.ownerIds,
//     exclude.names; then, for a managed token, only the matches with
//     includeManaged count, and without one the token is skipped as managed.
//  4. A policy whose conditions hold except the owner conditions, which
//     cannot be told for want of owner data (a failed lookup), and which
//     would take precedence over the winner (or there is none), makes the
//     token skipped as owner-unknown under that policy: had its owner been
//     known, it might have won. Handing the token to the next policy
//     instead would act on a guess: a same-action policy with a longer
//     grace for active owners, listed first, left their tokens to a
//     delete without grace below it. The exclusions above still come
//     first (they hold whatever the owner).
func (e *Evaluator) Evaluate(t *pat.Token) Decision {
	var buf [16]int
	matched := buf[:0]
	win, winManaged := -1, -1
	unknown, unknownManaged := -1, -1 // the best policy that needs owner data it lacks
	for i := range e.pols {
		ep := &e.pols[i]
		switch e.matches(ep, t) {
		case noMatch:
			continue
		case ownerUnknown:
			if unknown < 0 || ep.c.rank > e.pols[unknown].c.rank {
				unknown = i
			}
			if ep.c.includeManaged && (unknownManaged < 0 || ep.c.rank > e.pols[unknownManaged].c.rank) {
				unknownManaged = i
			}
			continue
		}
		matched = append(matched, i)
		if win < 0 || ep.c.rank > e.pols[win].c.rank {
			win = i
		}
		if ep.c.includeManaged && (winManaged < 0 || ep.c.rank > e.pols[winManaged].c.rank) {
			winManaged = i
		}
	}
	// The winner as it would be decided below (a managed token: among the
	// policies with includeManaged only), against the best policy left
	// undecided: the earlier in the file wins a tie.
	eff, unk := win, unknown
	if t.Managed {
		eff, unk = winManaged, unknownManaged
	}
	if unk >= 0 && (eff < 0 || e.pols[unk].c.rank > e.pols[eff].c.rank || (e.pols[unk].c.rank == e.pols[eff].c.rank && unk < eff)) {
		return e.ownerUnknown(unk, t)
	}
	if win < 0 {
		return Decision{}
	}

	skip := e.excluded(t)
	onlyManaged := false
	if skip == "" && t.Managed && !e.pols[win].c.includeManaged {
		if winManaged < 0 {
			skip = SkipManaged
		} else {
			win, onlyManaged = winManaged, true
		}
	}

	ep := &e.pols[win]
	d := Decision{
		Matched: true,
		Policy:  ep.p.Name,
		Mode:    ep.p.Mode,
		Action:  ep.p.Action,
		Reason:  e.explain(ep, t),
		Skip:    skip,
	}
	also := 0
	for _, i := range matched {
		if i != win && (!onlyManaged || e.pols[i].c.includeManaged) {
			also++
		}
	}
	if also > 0 {
		d.AlsoMatched = make([]string, 0, also)
		for _, i := range matched {
			if i != win && (!onlyManaged || e.pols[i].c.includeManaged) {
				d.AlsoMatched = append(d.AlsoMatched, e.pols[i].p.Name)
			}
		}
	}
	if skip == "" {
		d.Patch = ep.patchOps(t)
	}
	return d
}

// ownerUnknown is the decision of a token that policy i, lacking the owner's
// data, would have to judge first: skipped, under i, unless an exclusion
// skips it anyway (an exclusion does not depend on the owner). AlsoMatched
// is empty: which policies lose to i is unknown too.
func (e *Evaluator) ownerUnknown(i int, t *pat.Token) Decision {
	ep := &e.pols[i]
	skip := e.excluded(t)
	if skip == "" {
		skip = SkipOwnerUnknown
	}
	return Decision{Matched: true, Policy: ep.p.Name, Mode: ep.p.Mode, Action: ep.p.Action, Reason: e.explain(ep, t), Skip: skip}
}

// excluded is the exclusion that skips t whatever policy decides it, or "":
// the own credential, exclude.tokenIds, exclude.ownerIds, exclude.names, in
// that order. Evaluate and ownerUnknown share it so that the two paths
// cannot come to name a different exclusion for the same token.
func (e *Evaluator) excluded(t *pat.Token) SkipReason {
	switch {
	case e.env.ClientID != "" && pat.SameID(t.ID, e.env.ClientID):
		return SkipOwnCredential
	case len(e.ex.ids) > 0 && hasKey(e.ex.ids, pat.IDKey(t.ID)):
		return SkipExcludedID
	case len(e.ex.owners) > 0 && hasKey(e.ex.owners, pat.IDKey(t.Owner.ID)):
		return SkipExcludedOwner
	case e.ex.nameExcluded(t.Name):
		return SkipExcludedName
	}
	return ""
}

func hasKey(m map[string]struct{}, k string) bool {
	if len(m) == 0 {
		return false
	}
	_, ok := m[k]
	return ok
}

// match is what matches found: a policy's conditions hold, one does not, or
// all hold but the owner conditions, which cannot be told without owner data.
type match uint8

const (
	noMatch match = iota
	isMatch
	ownerUnknown
)

// matches reports whether every condition of the policy holds for t. Cheap
// tests come first; the regexp and the owner lookup last.
func (e *Evaluator) matches(ep *evalPolicy, t *pat.Token) match {
	if !e.holds(ep, t) {
		return noMatch
	}
	if ep.c.needsOwner {
		known, holds := e.ownerHolds(ep.c, t)
		switch {
		case !known:
			return ownerUnknown
		case !holds:
			return noMatch
		}
	}
	return isMatch
}

// holds reports whether every condition of the policy but the owner
// conditions holds for t, and its action would change the token.
func (e *Evaluator) holds(ep *evalPolicy, t *pat.Token) bool {
	c := ep.c
	if c.unusedFor > 0 {
		if t.LastUsed != nil {
			if t.LastUsed.After(ep.unusedCut) {
				return false
			}
		} else if t.Created.After(ep.unusedCut) {
			return false
		}
	}
	if c.lastUsedOlderThan > 0 && (t.LastUsed == nil || t.LastUsed.After(ep.lastUsedCut)) {
		return false
	}
	if c.neverUsed && t.LastUsed != nil {
		return false
	}
	if c.createdOlderThan > 0 && t.Created.After(ep.createdCut) {
		return false
	}
	if c.neverExpires && t.ExpirationDate != nil {
		return false
	}
	if c.expiresWithin > 0 && (t.ExpirationDate == nil || t.ExpirationDate.After(ep.expiresCut)) {
		return false
	}
	if c.owners != nil && !hasKey(c.owners, pat.IDKey(t.Owner.ID)) {
		return false
	}
	if c.hasScopesAny && !holdsAny(t.Scope, c.scopesAny) {
		return false
	}
	if c.hasScopesOutside && !holdsOutside(t.Scope, c.scopesOutside) {
		return false
	}
	if c.nameRE != nil && !c.nameRE.MatchString(t.Name) {
		return false
	}
	switch c.action {
	case ActionPatch:
		return patchChanges(c, t)
	case ActionExpire:
		return t.ExpirationDate == nil || t.ExpirationDate.After(ep.expireAt)
	}
	return true
}

// ownerHolds reports whether there is data on t's owner (known) and whether
// the policy's owner conditions hold with it.
//
// A token listed without an owner id has no owner to look up: no lookup,
// however well it went, tells more, so its owner conditions are known not
// to hold (as they never did). Taken for unknown, it was skipped as
// owner-unknown on every run, and no policy below one with owner
// conditions could ever decide it.
func (e *Evaluator) ownerHolds(c *compiled, t *pat.Token) (known, holds bool) {
	if t.Owner.ID == "" {
		return true, false
	}
	if e.env.Owner == nil {
		return false, false
	}
	info, ok := e.env.Owner(t.Owner.ID)
	if !ok {
		return false, false
	}
	if c.ownerMissing && !info.Missing {
		return true, false
	}
	if c.ownerStates != nil && (info.Missing || !contains(c.ownerStates, info.State)) {
		return true, false
	}
	return true, true
}

// holdsAny: the token effectively holds one of set (null scope =
// sp:scopes:all).
func holdsAny(s pat.Scopes, set []string) bool {
	if s.Null {
		return contains(set, pat.ScopeAll)
	}
	for _, v := range s.Values {
		if contains(set, v) {
			return true
		}
	}
	return false
}

// holdsOutside: the token effectively holds a scope not in allowed.
func holdsOutside(s pat.Scopes, allowed []string) bool {
	if s.Null {
		return !contains(allowed, pat.ScopeAll)
	}
	for _, v := range s.Values {
		if !contains(allowed, v) {
			return true
		}
	}
	return false
}

// patchChanges reports whether the patch changes t: the name lacks the prefix,
// or the set of effective scopes would differ. A patch that would leave the
// token with no scope at all is refused outright (it does not match): what
// the tenant makes of an empty scope list is undocumented, and a tenant that
// read it like a null scope would grant sp:scopes:all.
func patchChanges(c *compiled, t *pat.Token) bool {
	nameChange := c.namePrefix != "" && !strings.HasPrefix(t.Name, c.namePrefix)
	eff := t.Scope.Values
	var all [1]string // not Scope.Effective(): no allocation per token
	if t.Scope.Null {
		all[0] = pat.ScopeAll
		eff = all[:]
	}
	scopeChange, empty := false, false
	switch {
	case c.hasSet:
		scopeChange = !sameSet(c.set, eff)
	case c.remove != nil || c.add != nil:
		kept := 0
		for _, s := range eff {
			if contains(c.remove, s) {
				scopeChange = true
			} else {
				kept++
			}
		}
		for _, s := range c.add {
			if !contains(eff, s) {
				scopeChange = true
			}
		}
		empty = kept == 0 && len(c.add) == 0
	}
	if scopeChange && empty {
		return false
	}
	return nameChange || scopeChange
}

// sameSet compares as sets (order and repeats do not matter).
func sameSet(a, b []string) bool {
	for _, s := range a {
		if !contains(b, s) {
			return false
		}
	}
	for _, s := range b {
		if !contains(a, s) {
			return false
		}
	}
	return true
}

// newScopes is the scope list a patch leaves: the effective scopes minus
// removeScopes plus addScopes (in that order, without repeats), or setScopes.
func (c *compiled) newScopes(s pat.Scopes) []string {
	if c.hasSet {
		return append([]string(nil), c.set...)
	}
	out := []string{}
	for _, v := range s.Effective() {
		if !contains(c.remove, v) && !contains(out, v) {
			out = append(out, v)
		}
	}
	for _, v := range c.add {
		if !contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// patchOps builds the JSON Patch of the policy's action for t (nil for
// report and delete).
func (ep *evalPolicy) patchOps(t *pat.Token) []pat.PatchOp {
	c := ep.c
	switch c.action {
	case ActionPatch:
		var ops []pat.PatchOp
		if c.namePrefix != "" && !strings.HasPrefix(t.Name, c.namePrefix) {
			ops = append(ops, pat.Rename(c.namePrefix+t.Name))
		}
		if c.hasSet || c.remove != nil || c.add != nil {
			if ns := c.newScopes(t.Scope); !sameSet(ns, t.Scope.Effective()) {
				ops = append(ops, pat.SetScopes(ns))
			}
		}
		return ops
	case ActionExpire:
		ops := []pat.PatchOp{ep.expireOp}
		if t.UserAwareTokenNeverExpires != nil && *t.UserAwareTokenNeverExpires {
			ops = append(ops, pat.SetNeverExpires(false))
		}
		return ops
	}
	return nil
}
