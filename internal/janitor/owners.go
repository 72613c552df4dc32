package janitor

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// OwnerDirectory looks up token owners' identities (owners.lookup);
// *api.Client implements it. Ids the tenant does not know are absent from the
// result: that is how a missing owner (a deleted user) is told apart from a
// failed lookup, which returns an error.
type OwnerDirectory interface {
	ListPublicIdentities(ctx context.Context, ids []string) ([]api.Identity, error)
}

// ownerMetrics is the optional owner-lookup counter; *metrics.Metrics
// implements it. It is not part of Metrics so that engines without owner
// lookups (and their test fakes) need not provide it.
type ownerMetrics interface {
	OwnerLookup(outcome string)
}

// Values of owner_lookups_total{outcome}, counted once per owner looked up.
const (
	OwnerFound   = "found"
	OwnerMissing = "missing"
	OwnerError   = "error"
)

// Owners is what one run's owner lookup learned. It is built once per run
// (the per-run cache) and read only afterwards.
type Owners struct {
	// Identities are the owners the tenant returned, by pat.IDKey of their
	// id: an owner the tenant spells in another case than its tokens do is
	// still found, never taken for missing (ownerMissing would act on it).
	Identities map[string]api.Identity
	// Missing are the ids (pat.IDKey) that were looked up and that the
	// tenant does not know (ownerMissing): left out of the answer, and of a
	// second lookup of them alone.
	Missing map[string]bool
	// Err is the lookup failure, if any: owners with neither an identity nor
	// a Missing entry are unknown, and owner conditions do not hold for them.
	Err error
}

// Identity returns the owner's identity when it was found.
func (o *Owners) Identity(id string) (api.Identity, bool) {
	if o == nil {
		return api.Identity{}, false
	}
	idn, ok := o.Identities[pat.IDKey(id)]
	return idn, ok
}

// info is the policy.Env.Owner lookup over this cache. ok is false for an
// owner with no data (not looked up, or the lookup failed): the policy
// package then lets no owner condition hold, so a failed lookup never
// becomes a match on a guess.
func (o *Owners) info(id string) (policy.OwnerInfo, bool) {
	if o == nil {
		return policy.OwnerInfo{}, false
	}
	id = pat.IDKey(id)
	if idn, ok := o.Identities[id]; ok {
		return policy.OwnerInfo{State: idn.IdentityState}, true
	}
	if o.Missing[id] {
		return policy.OwnerInfo{Missing: true}, true
	}
	return policy.OwnerInfo{}, false
}

// envOwner returns the policy.Env.Owner function for o (nil when there was
// no lookup, which the policy package treats as no data at all).
func (o *Owners) envOwner() func(string) (policy.OwnerInfo, bool) {
	if o == nil {
		return nil
	}
	return o.info
}

// knownIdentity is an identity the tenant has for certain: the owner of the
// PAT patjanitor is logged in with (it is in use), else the caller's identity
// from the access token's claims; "" when neither is known (an API client
// credential without an identity).
func knownIdentity(inv *Inventory, clientID string) string {
	if own, ok := inv.Token(clientID); ok && own.Owner.ID != "" {
		return own.Owner.ID
	}
	if inv.view != nil && inv.view.caller != nil {
		return inv.view.caller.IdentityID
	}
	return ""
}

// usesOwnerConditions reports whether some policy needs the owners' identities
// before it can be evaluated (ownerStates or ownerMissing).
func usesOwnerConditions(cfg *policy.Config) bool {
	return slices.ContainsFunc(cfg.Policies, hasOwnerConditions)
}

// hasOwnerConditions reports whether p has owner conditions (ownerMissing,
// ownerStates): it matches nothing when the owner lookup failed.
func hasOwnerConditions(p *policy.Policy) bool {
	return p.Match.OwnerMissing || p.Match.OwnerStates != nil
}

// ownerIDs are the distinct non-empty ids of at(0..n-1), in first-seen order.
func ownerIDs(n int, at func(i int) string) []string {
	seen := make(map[string]bool)
	var ids []string
	for i := range n {
		id := at(i)
		if k := pat.IDKey(id); id != "" && !seen[k] {
			seen[k] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// lookupOwners looks up ids with one batched call (the client batches by
// 250). A failed lookup is not a failed run: it is recorded in Owners.Err and
// counted, and the policies with owner conditions then match nothing, so they
// mutate nothing on incomplete data. Only a cancelled ctx is returned as an
// error.
//
// known, when not empty, is an identity that exists: patjanitor's own (see
// knownIdentity). It is looked up with the others, and an answer without it
// is a failed lookup: "absent from the answer" means "missing" only if the
// answer is the whole directory, and one that does not know the caller is
// not (a proxy's or a broken page's 200 [], a tenant that shows the caller
// only some identities). Taken as it was, it made every owner missing, and
// an ownerMissing policy deleted every token.
//
// The ids the answer left out are looked up again before any is taken for
// missing (confirmMissing): an answer cut short leaves out owners that exist,
// and a second answer that returns some of them fails the whole lookup.
func (e *Engine) lookupOwners(ctx context.Context, ids []string, known string, run *clockCheck) (*Owners, error) {
	o := &Owners{Identities: map[string]api.Identity{}, Missing: map[string]bool{}}
	if e.owners == nil || len(ids) == 0 {
		return o, nil
	}
	if known != "" && !slices.ContainsFunc(ids, func(id string) bool { return pat.SameID(id, known) }) {
		ids = append(slices.Clone(ids), known)
	}
	om, _ := e.metrics.(ownerMetrics)
	count := func(outcome string, n int) {
		if om == nil {
			return
		}
		for range n {
			om.OwnerLookup(outcome)
		}
	}
	// A stored answer (a cache between patjanitor and the tenant) tells of
	// identity states as they were: it fails the lookup like any other
	// answer that cannot be trusted. (A wrong host clock has refused the
	// run at the listing already; the listing warned of a missing Date.)
	cc, date := e.followUpCheck(run), &answerDate{}
	ctx = cc.watch(ctx, date)
	found, err := e.owners.ListPublicIdentities(ctx, ids)
	if err == nil {
		err = cc.check("owner lookup", date)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		o.Err = err
		count(OwnerError, len(ids))
		e.log.Warn("owner lookup failed: policies with owner conditions match nothing this run",
			zap.Int("owners", len(ids)), zap.Error(err))
		return o, nil
	}
	for _, idn := range found {
		o.Identities[pat.IDKey(idn.ID)] = idn
	}
	if _, ok := o.Identities[pat.IDKey(known)]; known != "" && !ok {
		err := fmt.Errorf("the identity lookup did not return patjanitor's own identity %s, which exists: the answer is not the whole directory, so an owner it leaves out cannot be told missing", untrusted.ClipID(known))
		count(OwnerError, len(ids))
		e.log.Warn("owner lookup failed: policies with owner conditions match nothing this run",
			zap.Int("owners", len(ids)), zap.Int("found", len(o.Identities)), zap.Error(err))
		return &Owners{Identities: map[string]api.Identity{}, Missing: map[string]bool{}, Err: err}, nil
	}
	var missing []string
	for _, id := range ids {
		if _, ok := o.Identities[pat.IDKey(id)]; !ok && !o.Missing[pat.IDKey(id)] {
			o.Missing[pat.IDKey(id)] = true
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		err := e.confirmMissing(ctx, len(ids), missing, known)
		if err == nil {
			err = cc.check("owner lookup", date) // the second answer's Date too
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			count(OwnerError, len(ids))
			e.log.Warn("owner lookup failed: policies with owner conditions match nothing this run",
				zap.Int("owners", len(ids)), zap.Int("found", len(o.Identities)), zap.Int("leftOut", len(missing)), zap.Error(err))
			return &Owners{Identities: map[string]api.Identity{}, Missing: map[string]bool{}, Err: err}, nil
		}
	}
	count(OwnerFound, len(o.Identities))
	count(OwnerMissing, len(o.Missing))
	return o, nil
}

// confirmMissing looks up again the ids the first answer left out (without
// the ids it returned), and returns an error unless the tenant still knows
// none of them.
//
// "Absent from the answer" reads as "a deleted user" only if the answer held
// every id asked for that exists. The client takes a page shorter than the
// limit it asks for (250) as the last one, so an answer cut short (a tenant
// whose real page size is smaller, a proxy that truncates the body yet keeps
// valid JSON, a search index that answers only in part) made every owner past
// the cut missing, and an ownerMissing policy deleted their tokens. Asked
// again for only those ids, such a tenant returns some of them: the first
// answer was incomplete, and since the answers cannot be trusted this run, the
// whole lookup fails rather than only these owners becoming unknown (an owner
// the second answer also cut off would still read as missing).
//
// The confirmation is batched as the first lookup is (one request for up to
// about 170 ids): on an honest tenant the missing owners are the few deleted
// users, so it is one request, and only in a run where some owner is missing.
// Single-id lookups (`id eq`) would cost a request per missing owner and catch
// nothing more: a short page that holds at least one identity, asked for ids
// of which some exist, holds at least one of them. What no second lookup can
// catch is a directory that hides the same identities every time (a caller
// shown only part of the tenant): the check of patjanitor's own identity
// catches it only when that is among the hidden ones, and the guardrails are
// the backstop.
//
// known (patjanitor's own identity, when known) is asked for again too, and
// a second answer without it fails the lookup as the first would: an empty
// 200 (a proxy's, a broken page's) holds none of the ids left out, and would
// otherwise "confirm" every one of them missing. It costs no request more.
func (e *Engine) confirmMissing(ctx context.Context, asked int, missing []string, known string) error {
	ask := missing
	if known != "" {
		// known is not among missing: the first answer returned it.
		ask = append(slices.Clone(missing), known)
	}
	again, err := e.owners.ListPublicIdentities(ctx, ask)
	if err != nil {
		return fmt.Errorf("confirming %d missing owners: %w", len(missing), err)
	}
	left := make(map[string]bool, len(missing))
	for _, id := range missing {
		left[pat.IDKey(id)] = true
	}
	var back []string
	knownBack := false
	for _, idn := range again {
		// An identity not asked for proves nothing (the client drops those
		// anyway); a duplicate is counted once.
		if k := pat.IDKey(idn.ID); left[k] {
			delete(left, k)
			back = append(back, idn.ID)
		} else if known != "" && k == pat.IDKey(known) {
			knownBack = true
		}
	}
	if len(back) == 0 {
		if known != "" && !knownBack {
			return fmt.Errorf("the second lookup, of the %d owners the first answer left out, did not return patjanitor's own identity %s, which exists: that answer is not the whole directory, so an owner it leaves out cannot be told missing",
				len(missing), untrusted.ClipID(known))
		}
		return nil
	}
	const named = 3
	shown := make([]string, 0, named)
	for _, id := range back[:min(len(back), named)] {
		shown = append(shown, untrusted.ClipID(id))
	}
	more := ""
	if len(back) > named {
		more = fmt.Sprintf(" and %d more", len(back)-named)
	}
	return fmt.Errorf("the first answer left out %d of the %d owners asked for, and a second lookup of those %d returned %d of them (%s%s): "+
		"the tenant's answers are incomplete (a page shorter than asked for, a truncating proxy, an index catching up?), so no owner can be told missing this run",
		len(missing), asked, len(missing), len(back), strings.Join(shown, ", "), more)
}
