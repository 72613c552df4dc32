package janitor

import (
	"context"
	"fmt"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
)

// ReasonNeedsOwner is why a patch of another owner's token is not sent.
const ReasonNeedsOwner = "the API lets only a token's owner change its scopes"

// A real tenant refuses a PATCH of another owner's personal access token,
// also to an org admin with sp:scopes:all (a 403 whatever the scopes), and
// the admin bulk update writes only the expiration. So the patch action
// (scopes, name) is carried out only on tokens owned by patjanitor's own
// identity; on every other token the item is needs-owner: no request, and
// the owner is told what to change.

// findOwnIdentity sets inv.OwnIdentity when a policy patches: the owner of
// the token whose id is the client id, from the listing, else from the
// owner-id=me listing (ownTokens; its Date checked). A failure
// leaves it unknown, and every patch item then needs its owner: an unknown
// identity must never make another owner's token look like our own. Only a
// cancelled ctx is an error.
func (e *Engine) findOwnIdentity(ctx context.Context, inv *Inventory) error {
	if !usesPatch(e.cfg) {
		return nil
	}
	if own, ok := inv.Token(e.clientID); ok {
		inv.OwnIdentity = own.Owner.ID
		return nil
	}
	mine, err := e.ownTokens(ctx, inv)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("list own tokens: %w", context.Cause(ctx))
		}
		inv.ownWhy = "patjanitor's own identity is unknown (its token is not in the listing, and listing owner-id=me failed: " + err.Error() + ")"
		return nil
	}
	for i := range mine {
		if pat.SameID(mine[i].ID, e.clientID) {
			inv.OwnIdentity = mine[i].Owner.ID
			return nil
		}
	}
	inv.ownWhy = fmt.Sprintf("patjanitor's own identity is unknown (its token %s is in neither the listing nor owner-id=me)", e.clientID)
	return nil
}

func usesPatch(cfg *policy.Config) bool {
	for _, p := range cfg.Policies {
		if p.Action == policy.ActionPatch {
			return true
		}
	}
	return false
}

// needsOwner turns an enforce-mode patch of a token not owned by
// patjanitor's own identity into a needs-owner item (and notes on a
// report-mode one what enforcing it would do). It reports whether it
// changed the item.
func needsOwner(it *plan.Item, inv *Inventory) bool {
	if it.Action != plan.ActionPatch || (it.Mode != plan.ModeEnforce && it.Mode != plan.ModeReport) {
		return false
	}
	if inv.OwnIdentity != "" && pat.SameID(it.OwnerID, inv.OwnIdentity) {
		return false
	}
	why := ReasonNeedsOwner
	if inv.OwnIdentity == "" {
		why += "; " + inv.ownWhy
	} else {
		why += fmt.Sprintf(" (patjanitor runs as identity %s)", inv.OwnIdentity)
	}
	if it.Mode == plan.ModeReport {
		it.Reason += "; in enforce mode this would be needs-owner: " + why
		return true
	}
	it.Mode = plan.ModeNeedsOwner
	it.Reason += "; needs-owner: " + why + "; no request is sent, the owner must make this change"
	return true
}

// ownListing is the run's listing of the caller's own tokens.
type ownListing struct {
	tokens []pat.Token
	err    error
}

// ownTokens lists the caller's own tokens (owner-id=me: small, read-only),
// once a run: the own PAT's expiry (credentialExpiry) and the own identity
// (findOwnIdentity) share the answer. The identity decides which tokens a
// patch is sent for, so the answer's Date is checked like the listings',
// and judged with what they said (see lookupOwners): a stored answer (a
// cache in front of the tenant) is an error, the identity is then unknown
// (every patch needs its owner) and the expiry unread.
func (e *Engine) ownTokens(ctx context.Context, inv *Inventory) ([]pat.Token, error) {
	if inv.mine != nil {
		return inv.mine.tokens, inv.mine.err
	}
	cc, date := e.followUpCheck(inv.clock), &answerDate{}
	ts, err := e.tenant.ListTokens(cc.watch(ctx, date), api.ListOptions{OwnerID: "me"})
	if err == nil {
		err = cc.check("owner-id=me", date)
	}
	if err != nil {
		ts = nil
	}
	inv.mine = &ownListing{tokens: ts, err: err}
	return ts, err
}
