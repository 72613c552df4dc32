package janitor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
)

// CallerSource says who the engine's credential is, from the claims of its
// access token; *api.Client implements it. A Tenant without it is not asked
// (test doubles), and the run's view is then not judged.
type CallerSource interface {
	Caller(ctx context.Context) (api.Caller, error)
}

// IdentityProbe says whether the tenant has identities other than self;
// *api.Client implements it (one small public-identities call).
type IdentityProbe interface {
	OtherIdentities(ctx context.Context, self string) (bool, error)
}

// ViewMetrics receives what a run could see; *metrics.Metrics implements it.
// It is optional, apart from Metrics, so that test doubles of Metrics need
// not grow with it.
type ViewMetrics interface {
	// SetCredentialExpiry records when patjanitor's own PAT expires; nil
	// removes the series (it never expires, or the listing does not say).
	SetCredentialExpiry(at *time.Time)
	// SetPartialView records whether the last run saw only part of the
	// tenant.
	SetPartialView(partial bool)
}

// ErrPartialView is the cause recorded when the credential sees only part of
// the tenant: the run is incomplete data for every enforce-mode policy.
var ErrPartialView = errors.New("partial view")

// view is what one run could see of the tenant as its credential.
type view struct {
	caller  *plan.Caller
	owners  int
	expires *time.Time
	// expiryUnread: the owner-id=me listing that would show expires
	// failed or was refused for its Date. The expiry is unknown, not
	// absent: credential_expiry_timestamp_seconds keeps the last one read.
	expiryUnread bool
	partial      string
	warn         []string
}

// fill copies the view into the plan header.
func (v *view) fill(p *plan.Plan) {
	if v == nil {
		return
	}
	p.Caller, p.Owners, p.CredentialExpires, p.PartialView = v.caller, v.owners, v.expires, v.partial
	p.Warnings = append(p.Warnings, v.warn...)
}

// assessView judges what the run could see, after the listings: who the
// caller is (the access token's claims), how many owners the listing showed,
// when the engine's own PAT expires, and whether the view is partial. A
// partial view makes the inventory incomplete when any policy enforces (a
// run that would act on what it cannot fully see acts on nothing, as with
// any incomplete listing, invariant 3); a report-only run only says so.
// Only a cancelled ctx is an error.
func (e *Engine) assessView(ctx context.Context, inv *Inventory, now time.Time) error {
	v := &view{owners: inv.ownerCount}
	inv.view = v
	if inv.Err != nil {
		// The listing failed (often the credentials were refused): the run
		// changes nothing anyway, and a view judged on what did not arrive
		// would only bury the real error under a second one.
		return nil
	}
	defer func() {
		vm, ok := e.metrics.(ViewMetrics)
		if !ok {
			return
		}
		if !v.expiryUnread {
			// Unread, the gauge keeps the expiry a run read before: a
			// PAT's expiry stays true, and removing the series (as for
			// a PAT that never expires) resolved
			// PatjanitorCredentialExpiring for as long as the answer
			// could not be read (a cache storing it: until the PAT
			// expired and every run failed with 401).
			vm.SetCredentialExpiry(v.expires)
		}
		if v.caller != nil || v.partial != "" {
			vm.SetPartialView(v.partial != "")
		}
	}()
	e.log.Info("listed", zap.Int("tokens", inv.Listed), zap.Int("population", inv.Population), zap.Int("owners", v.owners))

	if err := e.credentialExpiry(ctx, inv, v, now); err != nil {
		return err
	}
	src, ok := e.tenant.(CallerSource)
	if !ok {
		return nil
	}
	caller, err := src.Caller(ctx)
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("read the caller: %w", context.Cause(ctx))
	case errors.Is(err, api.ErrNotJWT):
		v.partial = "the access token is not a JWT, so the credential's user level is unknown and the listing may hold only part of the tenant (" + err.Error() + ")"
	case err != nil:
		v.partial = "the credential's user level could not be read: " + err.Error()
	default:
		v.caller = &plan.Caller{ClientID: caller.ClientID, IdentityID: caller.IdentityID, UserName: caller.UserName, Authorities: caller.Authorities}
		if v.caller.ClientID == "" {
			v.caller.ClientID = e.clientID
		}
		v.partial, err = e.judgeView(ctx, inv, &caller)
		if err != nil {
			return err
		}
		if w := e.apiClientExpireWarning(&caller); w != "" {
			v.warn = append(v.warn, w)
			e.log.Warn("expire will be refused", zap.String("why", w))
		}
	}
	if v.partial == "" {
		return nil
	}
	e.log.Warn("partial view: this run sees only part of the tenant", zap.String("why", v.partial),
		zap.Bool("enforcing", enforces(e.cfg)))
	if enforces(e.cfg) {
		inv.addProblem("partial view: "+v.partial, ErrPartialView)
	}
	return nil
}

// apiClientExpireWarning says, when a policy expires tokens in enforce mode
// and the credential's access token names no identity, that every expire
// will be refused: a PAT's access token carries its owner's identity_id, an
// OAuth API client's has no user, and the bulk update that expire sends
// refuses API client credentials ("API OAuth client credentials are not
// permitted"; section 15). The items are still planned and sent (the claims
// are the tenant's word, not a guarantee), so the reviewer is told first
// rather than learning it from a run of 403s.
func (e *Engine) apiClientExpireWarning(c *api.Caller) string {
	if c.IdentityID != "" {
		return ""
	}
	for _, p := range e.cfg.Policies {
		if p.Action == policy.ActionExpire && p.Mode == policy.ModeEnforce {
			return fmt.Sprintf("patjanitor's credential (client id %s) names no identity in its access token: it is an OAuth API client's, not a personal access token's, and the bulk update that action: expire sends refuses API client credentials (403), so every expire (policy %s) will fail; run patjanitor with a PAT of an ORG_ADMIN identity (docs/operations.md, \"The PAT patjanitor needs\")", e.clientID, p.Name)
		}
	}
	return ""
}

// judgeView returns why the caller's view is partial ("" when it is not).
//
// Two signs, either one enough:
//   - The caller's user level is not ORG_ADMIN. Listing every owner's tokens
//     needs the right idn:all-personal-access-tokens:read, an ORG_ADMIN
//     right; what a tenant answers a caller without it is undocumented (a 403,
//     or only the caller's own tokens), so the user level decides.
//   - The listing of all tokens holds only the caller's own tokens while the
//     tenant has other identities. The claims could be wrong about the
//     rights (a custom user level, a tenant that changed the rule), so the
//     listing itself is checked too. Whether other identities exist is asked
//     of the tenant (IdentityProbe: one public-identities call of two
//     entries, made only in this case): tokens of other owners in the
//     listing would already prove it, and "owners seen in earlier runs"
//     would miss the first run and need state. A filtered listing holding
//     only the caller's tokens, or none, is normal in a clean tenant and
//     proves nothing.
func (e *Engine) judgeView(ctx context.Context, inv *Inventory, c *api.Caller) (string, error) {
	if !c.AdminLevel() {
		levels := "none"
		if len(c.Authorities) > 0 {
			levels = strings.Join(c.Authorities, ", ")
		}
		return fmt.Sprintf("the credential's user level (authorities: %s) is not %s: without the right idn:all-personal-access-tokens:read the tenant shows at most the caller's own tokens", levels, api.AuthorityOrgAdmin), nil
	}
	if !inv.Unfiltered || inv.Err != nil || c.IdentityID == "" {
		return "", nil
	}
	if inv.manyOwners || (inv.Listed > 0 && !pat.SameID(inv.soleOwner, c.IdentityID)) {
		return "", nil
	}
	probe, ok := e.tenant.(IdentityProbe)
	if !ok {
		return "", nil
	}
	others, err := probe.OtherIdentities(ctx, c.IdentityID)
	switch {
	case ctx.Err() != nil:
		return "", fmt.Errorf("probe the identities: %w", context.Cause(ctx))
	case err != nil:
		return "the listing of all tokens holds only the caller's own tokens, and whether the tenant has other identities could not be checked: " + err.Error(), nil
	case others:
		return "the listing of all tokens holds only the caller's own tokens while the tenant has other identities: the credential sees only its own tokens", nil
	}
	return "", nil
}

// credentialExpiry finds the engine's own PAT (its id is the client id) and
// its expirationDate: in the inventory, or, when the listings were filtered
// and did not return it, with the listing of the caller's own tokens
// (ownTokens: owner-id=me, at most a few tokens, its Date checked). A
// failure of that extra call is a warning, not incomplete data: it says
// nothing about other tokens.
func (e *Engine) credentialExpiry(ctx context.Context, inv *Inventory, v *view, now time.Time) error {
	own, found := inv.Token(e.clientID)
	if !found && !inv.Unfiltered {
		ts, err := e.ownTokens(ctx, inv)
		if ctx.Err() != nil {
			return fmt.Errorf("list own tokens: %w", context.Cause(ctx))
		}
		if err != nil {
			v.expiryUnread = true
			v.warn = append(v.warn, "the expiry of patjanitor's own PAT could not be read: "+err.Error())
			return nil
		}
		own, found = findToken(ts, e.clientID)
	}
	if !found || own.ExpirationDate == nil {
		return nil
	}
	at := own.ExpirationDate.UTC()
	v.expires = &at
	window := e.cfg.Tenant.CredentialExpiryWarning
	left := at.Sub(now)
	switch {
	case left <= 0:
		v.warn = append(v.warn, fmt.Sprintf("patjanitor's own PAT (client id %s) expired at %s: create a new one and rotate it (docs/operations.md, \"Rotating patjanitor's PAT\")", e.clientID, pat.FormatTime(at)))
	case window > 0 && left <= window:
		v.warn = append(v.warn, fmt.Sprintf("patjanitor's own PAT (client id %s) expires at %s, in %s (warning window %s): create a new one and rotate it (docs/operations.md, \"Rotating patjanitor's PAT\")",
			e.clientID, pat.FormatTime(at), daysText(left), policy.FormatDuration(window)))
	default:
		return nil
	}
	e.log.Warn("credential expiring", zap.String("client_id", e.clientID), zap.Time("expires", at), zap.Duration("left", left))
	return nil
}

func daysText(d time.Duration) string {
	days := int(math.Ceil(d.Hours() / 24))
	if days == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", days)
}

func findToken(ts []pat.Token, id string) (pat.Token, bool) {
	for i := range ts {
		if pat.SameID(ts[i].ID, id) {
			return ts[i], true
		}
	}
	return pat.Token{}, false
}

// enforces reports whether any policy of the config may mutate.
func enforces(c *policy.Config) bool {
	for _, p := range c.Policies {
		if p.Mode == policy.ModeEnforce && p.Action != policy.ActionReport {
			return true
		}
	}
	return false
}
