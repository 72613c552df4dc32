package janitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/state"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// Proof of confirmed mutations.
//
// A 204 to a DELETE (a 200 to a PATCH showing the values) is the tenant's
// word, and a tenant, or a proxy in front of it, may give it without doing
// the change. Taken at its word, patjanitor would journal the token as
// deleted, tell its owner so, and find it again on the next run, forever,
// while the credential stays alive. So every confirmed mutation is kept in
// the state store (state.Confirmed) until a later listing proves it: the
// deleted token no longer listed, the patched one showing the change. A
// listing that still shows it is journaled (an outcome "not-in-effect" in
// the run that found it), logged as an error, counted in
// patjanitor_unproven_mutations, written into the plan's warnings and made
// the run's error (UnprovenError), and the owner is not told again that the
// token was changed.
//
// Only a listing that can prove anything judges: complete (no incomplete
// data), unfiltered (absence from a filtered listing says nothing), of the
// whole tenant (not a partial view), and taken at least SettleMargin after
// the confirmation. Plan lists unfiltered when a record is due, as it does
// for interrupted intents.
//
// A token found still listed is decided afresh: when a policy still acts on
// it, the request is sent again (to a lying tenant a harmless repeat; to one
// that failed once, the fix), at most once per SettleMargin, because a token
// with a confirmation younger than the margin is skipped (SkipAwaitingProof):
// a run soon after another must neither judge nor repeat it. Records found
// still listed never expire: the alarm stops only when a listing proves the
// change (the token gone, or showing the patch), or an operator deletes the
// token. Records not yet judged wait for a complete listing; the store keeps
// at most state.MaxConfirmed.

// SettleMargin is how long after a confirmed mutation a listing is taken as
// evidence of it. Nothing documents how soon a deleted PAT leaves the
// tenant's listing (ref/identitynow-pat-api.md has no evidence either way),
// so a listing right after the 204 may lag and prove nothing. The one
// propagation delay documented for PATs is that a scope change takes up to
// 20 minutes to show in new bearer tokens (section 9): thirty minutes is
// beyond it, and below the interval of any schedule that acts (daily,
// hourly), so the next scheduled run judges. It is not configurable: a
// shorter margin would raise false alarms on a slow tenant, a longer one
// would only delay a true alarm (the credential is alive either way), and
// no deployment needs another.
const SettleMargin = 30 * time.Minute

// SkipAwaitingProof is the plan.Skipped reason of a token a policy would act
// on whose last confirmed mutation is younger than SettleMargin: the reason
// text goes on with what was confirmed and when.
const SkipAwaitingProof policy.SkipReason = "awaiting-proof"

// Outcome statuses journaled when a listing judges a confirmed mutation that
// is not in effect, and when a listing later proves one that had been found
// not in effect (the alarm's end). A proof of a mutation that was never in
// doubt is not journaled: the confirmed outcome already says it.
const (
	StatusNotInEffect = "not-in-effect"
	StatusInEffect    = "in-effect"
)

// ProofStore keeps the confirmed mutations awaiting proof; *state.Store
// implements it.
type ProofStore interface {
	ConfirmedMutations(ctx context.Context) ([]state.Confirmed, error)
	UpdateConfirmed(ctx context.Context, put []state.Confirmed, drop []string) (int, error)
}

// ProofMetrics receives the patjanitor_unproven_mutations gauge;
// *metrics.Metrics implements it. Optional, as ViewMetrics.
type ProofMetrics interface {
	// SetUnprovenMutations records, by action, the confirmed mutations a
	// listing showed not in effect and none has proven since.
	SetUnprovenMutations(perAction map[string]int)
}

// Unproven is a confirmed mutation a listing showed not in effect.
type Unproven struct {
	// Confirmed is the record as it was before this run: what was
	// confirmed, by which run, when, with which status code.
	Confirmed state.Confirmed
	// Judged is set when this run's listing showed it (Listed and Detail
	// then say how); otherwise an earlier listing did and this run's
	// could not tell (incomplete, or the change was sent again less than
	// SettleMargin ago).
	Judged bool
	Listed pat.Token
	// Client is the API client as listed, for a record of one (Judged).
	Client apiclient.Client
	Detail string
}

// proofs are the confirmed mutations of one run: read before the listing,
// judged after it, and written by Execute.
type proofs struct {
	records map[string]state.Confirmed // by pat.IDKey of the token id
	err     error                      // the store could not be read
	// judged: this run's listing could prove (complete, unfiltered, whole
	// tenant). proven are the records it proved; lies those it showed not
	// in effect; unproven every record not in effect after this run (lies
	// and earlier ones this run did not judge).
	judged    bool
	proven    []state.Confirmed
	lies      []Unproven
	unproven  []Unproven
	journaled bool
	// gone are the keys of the proven records whose token (or client) the
	// listing no longer shows: a patch or disable proven by absence.
	gone map[string]bool
}

func (pr *proofs) markGone(k string) {
	if pr.gone == nil {
		pr.gone = map[string]bool{}
	}
	pr.gone[k] = true
}

// readProofs reads the confirmed mutations for a run (nil without a store).
// A store that cannot be read is recorded, for survey to make the inventory
// incomplete: a run that cannot tell which of its changes are in doubt acts
// on nothing. Only a cancelled ctx is an error.
func (e *Engine) readProofs(ctx context.Context) (*proofs, error) {
	if e.proofs == nil {
		return nil, nil
	}
	return loadProofs(ctx, e.proofs.ConfirmedMutations, "")
}

// loadProofs reads the records with read and indexes them by id; the token
// and the API client proofs differ only in the store's method and in the
// resource the records are stamped with (resource "" keeps what the store
// says). A store that cannot be read is recorded in the proofs, for the
// caller to make its part of the inventory incomplete; only a cancelled ctx
// is an error.
func loadProofs(ctx context.Context, read func(context.Context) ([]state.Confirmed, error), resource string) (*proofs, error) {
	cs, err := read(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return &proofs{err: err}, nil
	}
	pr := &proofs{records: make(map[string]state.Confirmed, len(cs))}
	for _, c := range cs {
		if resource != "" {
			c.Resource = resource
		}
		pr.records[pat.IDKey(c.TokenID)] = c
	}
	return pr, nil
}

// due reports whether a listing at now may judge a record.
func (pr *proofs) due(now time.Time) bool {
	if pr == nil {
		return false
	}
	for _, c := range pr.records {
		if now.Sub(c.At) >= SettleMargin {
			return true
		}
	}
	return false
}

// ids are the token ids of the records (for the inventory to keep whole).
func (pr *proofs) ids() []string {
	if pr == nil {
		return nil
	}
	out := make([]string, 0, len(pr.records))
	for _, c := range pr.records {
		out = append(out, c.TokenID)
	}
	return out
}

// settling returns the record of a token (or an API client) whose confirmed
// mutation is younger than SettleMargin at now. A confirmation more than the
// margin in the future says the clock went back since (it ran ahead when the
// record was written), not that the change is recent: without this, the
// token would be skipped until the clock caught up with it.
func (pr *proofs) settling(id string, now time.Time) (state.Confirmed, bool) {
	if pr == nil || len(pr.records) == 0 {
		return state.Confirmed{}, false
	}
	c, ok := pr.records[pat.IDKey(id)]
	age := now.Sub(c.At)
	return c, ok && age < SettleMargin && age > -SettleMargin
}

func awaitingProofOf(t *pat.Token, d policy.Decision, c state.Confirmed) plan.Skipped {
	sk := skippedOf(t, d)
	sk.Reason = fmt.Sprintf("%s: the tenant confirmed a %s of this token at %s (run %s); a listing from %s on shows whether it took effect",
		SkipAwaitingProof, c.Action, pat.FormatTime(c.At), c.RunID, pat.FormatTime(c.At.Add(SettleMargin)))
	return sk
}

// judgeProofs checks the records against the run's inventory (see the
// comment at the top of this file) and sets the gauge.
func (e *Engine) judgeProofs(inv *Inventory, now time.Time) {
	pr := inv.proofs
	if pr == nil || pr.err != nil {
		return
	}
	pr.judged = inv.Err == nil && inv.Unfiltered && (inv.view == nil || inv.view.partial == "")
	for _, k := range pr.oldestFirst() {
		c := pr.records[k]
		if !pr.judged || now.Sub(c.At) < SettleMargin {
			pr.undecided(c)
			continue
		}
		tok, listed := inv.Token(c.TokenID)
		detail := ""
		switch {
		case !listed:
			// Gone: a deleted token is proven; a patched one is moot.
			pr.markGone(k)
		case policy.Action(c.Action) == policy.ActionDelete:
			detail = "still listed"
		default:
			undone, changed := patchVerdict(&c, &tok)
			if len(undone) > 0 {
				detail = "listed with " + strings.Join(undone, ", ")
			} else if len(changed) > 0 {
				// Neither the values sent nor those before: changed since
				// by someone else (an owner extending an expiry), which is
				// no evidence against the tenant. The record goes; a
				// policy that still matches acts on the token afresh.
				e.log.Info("a token the tenant confirmed changed was changed again since: no verdict on the tenant",
					zap.String("token_id", untrusted.ClipID(c.TokenID)), zap.String("action", c.Action),
					zap.String("confirmed_run", c.RunID), zap.String("listing", strings.Join(changed, ", ")))
			}
		}
		if detail == "" {
			pr.proven = append(pr.proven, c)
			continue
		}
		u := Unproven{Confirmed: c, Judged: true, Listed: tok, Detail: detail}
		pr.notInEffect(u)
		e.log.Error("the tenant confirmed a change that a later listing does not show: it did not happen",
			zap.String("token_id", untrusted.ClipID(c.TokenID)), zap.String("owner_id", untrusted.ClipID(c.OwnerID)), zap.String("action", c.Action),
			zap.String("policy", c.Policy), zap.String("confirmed_run", c.RunID), zap.Time("confirmed_at", c.At),
			zap.Int("status", c.Code), zap.String("listing", detail))
	}
	if len(pr.records) > 0 {
		e.log.Info("confirmed changes checked against the listing", zap.Bool("listing_proves", pr.judged),
			zap.Int("records", len(pr.records)), zap.Int("proven", len(pr.proven)), zap.Int("not_in_effect", len(pr.unproven)))
	}
	if pm, ok := e.metrics.(ProofMetrics); ok {
		pm.SetUnprovenMutations(pr.unprovenPerAction())
	}
}

// undecided keeps c, a record this run's listing does not judge (too young,
// or the listing cannot prove): one found not in effect before stays among
// the unproven, in the gauge and the alerts, until a listing proves it.
func (pr *proofs) undecided(c state.Confirmed) {
	if c.Unproven() {
		pr.unproven = append(pr.unproven, Unproven{Confirmed: c})
	}
}

// notInEffect records u, a confirmed change the listing does not show:
// among this run's findings (lies) and among the unproven.
func (pr *proofs) notInEffect(u Unproven) {
	pr.lies = append(pr.lies, u)
	pr.unproven = append(pr.unproven, u)
}

// oldestFirst are the keys of the records, the oldest confirmation first:
// the order in which a listing judges them and logs what it found.
func (pr *proofs) oldestFirst() []string {
	keys := make([]string, 0, len(pr.records))
	for k := range pr.records {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return pr.records[a].At.Compare(pr.records[b].At)
	})
	return keys
}

// unprovenPerAction counts the records not in effect by action, for the
// patjanitor_unproven_mutations gauge.
func (pr *proofs) unprovenPerAction() map[string]int {
	per := map[string]int{}
	for _, u := range pr.unproven {
		per[u.Confirmed.Action]++
	}
	return per
}

// patchVerdict compares a listed token with a confirmed patch or expire:
// undone are the operations whose field still shows the value from before
// the change (the change not made), changed those whose field shows
// neither that value nor the one sent. A record without the values from
// before (written before they were kept), or one already found not in
// effect, counts every value not shown as undone.
func patchVerdict(c *state.Confirmed, listed *pat.Token) (undone, changed []string) {
	for _, op := range c.Patch {
		diffs := api.PatchNotShown([]pat.PatchOp{op}, listed)
		if len(diffs) == 0 {
			continue
		}
		if c.Before == nil || c.Unproven() || showsBefore(op, c.Before, listed) {
			undone = append(undone, diffs...)
		} else {
			changed = append(changed, diffs...)
		}
	}
	return undone, changed
}

// showsBefore reports whether the listed token shows, in the field op
// changes, what it showed before: the same meaning, whatever the form (a
// null scope is sp:scopes:all, scopes in any order, a date in any zone).
func showsBefore(op pat.PatchOp, before *state.Shown, listed *pat.Token) bool {
	switch op.Path() {
	case pat.PathName:
		return listed.Name == before.Name
	case pat.PathScope:
		if before.Scope == nil {
			return true // not kept: as strict as without it
		}
		a, b := slices.Clone(before.Scope.Effective()), slices.Clone(listed.Scope.Effective())
		slices.Sort(a)
		slices.Sort(b)
		return slices.Equal(slices.Compact(a), slices.Compact(b))
	case pat.PathExpirationDate:
		if before.ExpirationDate == nil || listed.ExpirationDate == nil {
			return before.ExpirationDate == nil && listed.ExpirationDate == nil
		}
		return before.ExpirationDate.Equal(*listed.ExpirationDate)
	case pat.PathUserAwareTokenNeverExpires:
		return before.NeverExpires != nil && listed.UserAwareTokenNeverExpires != nil &&
			*before.NeverExpires == *listed.UserAwareTokenNeverExpires
	}
	return true // an operation of no known field: as strict as before
}

// shownBefore is what the token showed of the fields ops change when the
// request was sent: as the run listed it (apply PLAN's items hold the
// saved plan's values, which may be older).
func shownBefore(tok *pat.Token, ops []pat.PatchOp) *state.Shown {
	sh := &state.Shown{}
	for _, op := range ops {
		switch op.Path() {
		case pat.PathName:
			sh.Name = tok.Name // shorter than the rename's value, which provableOps bounds
		case pat.PathScope:
			// Bounded as the values sent are: a longer list is not kept.
			if b, err := json.Marshal(tok.Scope); err == nil && len(b) <= maxProvenValue {
				sc := tok.Scope
				sh.Scope = &sc
			}
		case pat.PathExpirationDate:
			sh.ExpirationDate = tok.ExpirationDate
		case pat.PathUserAwareTokenNeverExpires:
			sh.NeverExpires = tok.UserAwareTokenNeverExpires
		}
	}
	return sh
}

// Unproven returns the confirmed mutations not in effect after this plan's
// listing (nil when none, or without a state store).
func (pl *Planned) Unproven() []Unproven {
	if pl == nil {
		return nil
	}
	var out []Unproven
	if pl.Inventory != nil && pl.Inventory.proofs != nil {
		out = append(out, pl.Inventory.proofs.unproven...)
	}
	if pl.clients != nil && pl.clients.proofs != nil {
		out = append(out, pl.clients.proofs.unproven...) // clientproof.go
	}
	return out
}

// UnprovenError reports confirmed mutations that a listing showed not in
// effect: the tenant, or a proxy in front of it, answered success and did
// not do the change.
type UnprovenError struct {
	Unproven []Unproven
}

func (e *UnprovenError) Error() string {
	return strings.Join(unprovenSentences(e.Unproven), "; ")
}

// withoutUnproven returns err without its *UnprovenError (nil when that
// was all): what went wrong with the run's own work. A change found not in
// effect is reported on every run until a listing proves it, whatever the
// run did.
func withoutUnproven(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var rest []error
		for _, e := range j.Unwrap() {
			if r := withoutUnproven(e); r != nil {
				rest = append(rest, r)
			}
		}
		return errors.Join(rest...)
	}
	if u, ok := err.(*UnprovenError); ok && u != nil {
		return nil
	}
	return err
}

// unprovenListed is how many tokens a sentence names; the journal, the log
// and the state store name them all.
const unprovenListed = 10

// unprovenSentences says what is not in effect, one sentence per kind of
// change, for the plan's warnings and the run's error.
func unprovenSentences(us []Unproven) []string {
	if len(us) == 0 {
		return nil
	}
	var deletes, patches, clientDeletes, clientDisables []Unproven
	for _, u := range us {
		del := policy.Action(u.Confirmed.Action) == policy.ActionDelete
		switch {
		case u.Confirmed.Resource == apiclient.Resource && del:
			clientDeletes = append(clientDeletes, u)
		case u.Confirmed.Resource == apiclient.Resource:
			clientDisables = append(clientDisables, u)
		case del:
			deletes = append(deletes, u)
		default:
			patches = append(patches, u)
		}
	}
	const advice = ": the tenant or a proxy in front of it answered success without doing it; check these tokens in the SailPoint UI (docs/operations.md, \"Confirmed changes that did not happen\")"
	const clientAdvice = ": the tenant or a proxy in front of it answered success without doing it, and their secrets still work; check these API clients in the SailPoint UI (docs/operations.md, \"Confirmed changes that did not happen\")"
	kinds := []struct {
		us            []Unproven
		noun, confirm string
		one, many     string // the verb and what the listing shows
		advice        string
	}{
		{deletes, "token", "deleted", "is still listed", "are still listed", advice},
		{patches, "token", "patched or expired", "does not show the change", "do not show the change", advice},
		{clientDeletes, "API client", "deleted", "is still listed", "are still listed", clientAdvice},
		{clientDisables, "API client", "disabled", "is still listed enabled", "are still listed enabled", clientAdvice},
	}
	var out []string
	for _, k := range kinds {
		n := len(k.us)
		if n == 0 {
			continue
		}
		shows := k.many
		if n == 1 {
			shows = k.one
		}
		out = append(out, fmt.Sprintf("%s the tenant confirmed %s %s (%s)%s", plural(n, k.noun), k.confirm, shows, unprovenList(k.us), k.advice))
	}
	return out
}

func unprovenList(us []Unproven) string {
	parts := make([]string, 0, min(len(us), unprovenListed)+1)
	for i, u := range us {
		if i == unprovenListed {
			parts = append(parts, fmt.Sprintf("and %d more", len(us)-unprovenListed))
			break
		}
		c := u.Confirmed
		owner := ""
		if c.Resource == "" {
			owner = " of owner " + untrusted.ClipID(c.OwnerID)
		}
		s := fmt.Sprintf("%s%s, %s by policy %s in run %s at %s (HTTP %d)", untrusted.ClipID(c.TokenID), owner, pastTense(c.Action), c.Policy, c.RunID, pat.FormatTime(c.At), c.Code)
		switch {
		case u.Judged && u.Detail != "still listed" && !(c.Resource != "" && u.Detail == "listed enabled"):
			s += ", " + u.Detail
		case !u.Judged && c.LastSeen != nil:
			s += ", still so at the last complete listing, " + pat.FormatTime(*c.LastSeen)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func pastTense(action string) string {
	switch policy.Action(action) {
	case policy.ActionDelete:
		return "deleted"
	case policy.ActionExpire:
		return "expired"
	case policy.ActionDisable:
		return "disabled"
	}
	return "patched"
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// warnings are the plan's sentences about changes not in effect.
func (pr *proofs) warnings() []string {
	if pr == nil {
		return nil
	}
	return unprovenSentences(pr.unproven)
}

// toJournal reports whether this run has proof records to journal.
func (pr *proofs) toJournal() bool {
	if pr == nil || pr.journaled {
		return false
	}
	if len(pr.lies) > 0 {
		return true
	}
	for _, c := range pr.proven {
		if c.Unproven() {
			return true
		}
	}
	return false
}

// journalProofs journals what this run's listing showed of the changes in
// doubt: each one not in effect (outcome not-in-effect, with the token as
// listed), and each one found not in effect before and proven now (outcome
// in-effect). The records carry this run's id: `audit show` of the run
// that found it shows it, and the note names the run that was confirmed.
// The outcome of the original intent stays as written.
func (e *Engine) journalProofs(ctx context.Context, runID string, pr *proofs) error {
	if pr == nil || pr.journaled || e.journal == nil {
		return nil
	}
	pr.journaled = true
	for _, u := range pr.lies {
		c := u.Confirmed
		noun := RecordNoun(c.Resource)
		msg := fmt.Sprintf("the tenant confirmed the %s (HTTP %d) in run %s at %s, but this run's listing, taken at least %s later, shows the %s %s: the %s did not happen",
			c.Action, c.Code, c.RunID, pat.FormatTime(c.At), SettleMargin, noun, u.Detail, c.Action)
		r := audit.Record{
			Kind: audit.KindOutcome, RunID: runID, Resource: c.Resource, Policy: c.Policy, TokenID: c.TokenID,
			Outcome: &audit.Outcome{Status: StatusNotInEffect, Code: c.Code, Error: msg},
			Note:    fmt.Sprintf("confirmed %s of run %s at %s not in effect", c.Action, c.RunID, pat.FormatTime(c.At)),
		}
		if c.Resource == apiclient.Resource {
			cl := u.Client
			r.Client = &cl
		} else {
			listed := u.Listed
			r.Before = &listed
		}
		if _, err := e.journal.Append(ctx, r); err != nil {
			return fmt.Errorf("record that the %s of %s %s is not in effect: %w", c.Action, noun, untrusted.ClipID(c.TokenID), err)
		}
	}
	for _, c := range pr.proven {
		if !c.Unproven() {
			continue
		}
		noun := RecordNoun(c.Resource)
		// A patch or a disable of a token or client no longer listed is
		// not shown in effect: it is moot. The note says so rather than
		// that the change took effect.
		now := "is in effect now"
		if pr.gone[pat.IDKey(c.TokenID)] && policy.Action(c.Action) != policy.ActionDelete {
			now = "is moot now: " + noun + " no longer listed"
		}
		if _, err := e.journal.Append(ctx, audit.Record{
			Kind: audit.KindOutcome, RunID: runID, Resource: c.Resource, Policy: c.Policy, TokenID: c.TokenID,
			Outcome: &audit.Outcome{Status: StatusInEffect, Code: c.Code},
			Note: fmt.Sprintf("the %s confirmed in run %s at %s %s (found not in effect since %s, by %s)",
				c.Action, c.RunID, pat.FormatTime(c.At), now, pat.FormatTime(*c.StillListed), plural(c.Checks, "listing")),
		}); err != nil {
			return fmt.Errorf("record that the %s of %s %s is in effect: %w", c.Action, noun, untrusted.ClipID(c.TokenID), err)
		}
	}
	return nil
}

// RecordNoun names what a confirmed record of resource is about ("token",
// "API client"), for the journal's and the commands' sentences.
func RecordNoun(resource string) string {
	if resource == apiclient.Resource {
		return "API client"
	}
	return "token"
}

// journalProofsAlone journals what the listing showed for a run that did
// not journal it inside its own run-start (it acted on nothing: a tripped
// guardrail, an incomplete API client listing), within a run-start and a
// run-end of its own: an outcome of a run the journal never started would
// stand alone in `audit show` and `audit verify`.
func (e *Engine) journalProofsAlone(ctx context.Context, runID string, pr *proofs, resource string) error {
	if e.journal == nil || !pr.toJournal() {
		return nil
	}
	if _, err := e.journal.Append(ctx, audit.Record{Kind: audit.KindRunStart, RunID: runID, Resource: resource,
		Note: "0 actions: the run acted on nothing; its listing judged changes the tenant confirmed earlier"}); err != nil {
		return err
	}
	if err := e.journalProofs(ctx, runID, pr); err != nil {
		return err
	}
	_, err := e.journal.Append(ctx, audit.Record{Kind: audit.KindRunEnd, RunID: runID, Resource: resource,
		Note: fmt.Sprintf("acted on nothing; confirmed earlier but not in effect %d", len(pr.lies))})
	return err
}

// settleProofs runs at the end of every Execute: it journals what the
// listing showed (unless the run already did, inside its run-start), and
// writes the state store in one transaction: the proven records dropped,
// those not in effect updated, and a record for every mutation this run had
// confirmed. It returns the store's failure (the run fails: a confirmed
// mutation without its record would never be checked) joined with an
// *UnprovenError while any change is not in effect. Only a run that
// journals writes the store: a dry run reads it.
func (e *Engine) settleProofs(ctx context.Context, pl *Planned, res *Result, log *zap.Logger) error {
	var pr *proofs
	if pl.Inventory != nil {
		pr = pl.Inventory.proofs
	}
	var errs []error
	if pr != nil {
		if err := e.journalProofsAlone(ctx, res.RunID, pr, ""); err != nil {
			log.Error("could not journal the check of the confirmed changes", zap.Error(err))
			errs = append(errs, &JournalError{Err: err})
		}
	}
	if e.proofs != nil && e.journal != nil && (pr == nil || pr.err == nil) {
		if err := e.storeProofs(ctx, pl, pr, res, log); err != nil {
			log.Error("could not record the confirmed changes awaiting proof", zap.Error(err))
			errs = append(errs, fmt.Errorf("confirmed changes: %w", err))
		}
	}
	var unproven []Unproven
	if pr != nil {
		unproven = append(unproven, pr.unproven...)
	}
	cu, cerr := e.settleClientProofs(ctx, pl, res, log) // clientproof.go
	if cerr != nil {
		errs = append(errs, cerr)
	}
	unproven = append(unproven, cu...)
	res.Unproven = unproven
	if len(unproven) > 0 {
		errs = append(errs, &UnprovenError{Unproven: unproven})
	}
	return errors.Join(errs...)
}

// storeProofs writes the records (see settleProofs).
func (e *Engine) storeProofs(ctx context.Context, pl *Planned, pr *proofs, res *Result, log *zap.Logger) error {
	sent := make(map[string]*pat.Token, len(pl.work))
	for i := range pl.work {
		sent[pat.IDKey(pl.work[i].item.TokenID)] = &pl.work[i].token
	}
	w := newRecordWrites(pr, res)
	if pr != nil {
		for _, c := range pr.proven {
			w.drop = append(w.drop, c.TokenID)
		}
	}
	for _, r := range res.Items {
		switch policy.Action(r.Item.Action) {
		case policy.ActionDelete, policy.ActionPatch, policy.ActionExpire:
		default:
			continue
		}
		// A 404 (gone) is the tenant's word too, that the token no longer
		// exists: a token it answers 404 for and still lists was recorded
		// gone, its owner told so, on every run, while it stayed alive.
		if !r.Outcome.awaitsProof() {
			continue
		}
		w.confirmed(confirmedToken(r.Item, r.Status, res.RunID, res.Finished, sent[pat.IDKey(r.Item.TokenID)]))
	}
	return w.write(ctx, e.proofs.UpdateConfirmed, "confirmed changes", log)
}

// confirmedToken is the record of a token change the tenant confirmed with
// status at at, awaiting its proof; tok is the token as listed when the
// request was sent (nil: not known).
func confirmedToken(it plan.Item, status int, runID string, at time.Time, tok *pat.Token) state.Confirmed {
	// The owner id only names the token in messages: clipped, as there.
	c := state.Confirmed{TokenID: it.TokenID, OwnerID: untrusted.ClipID(it.OwnerID), Policy: it.Policy, Action: it.Action,
		RunID: runID, Code: status, At: at}
	if policy.Action(it.Action) != policy.ActionDelete {
		c.Patch = provableOps(it.Patch)
		if tok != nil {
			c.Before = shownBefore(tok, c.Patch)
		}
	}
	return c
}

// storeConfirmed stores the records of changes the tenant has just
// confirmed, before their outcomes are journaled. The outcome's append
// moves the journal's anchor past it, and the catch-up at the next open
// rebuilds records only from what lies after the anchor: a process that
// died between that append and the end of its run (storeProofs) lost the
// records, and with them the next listing's check of a tenant that
// confirms changes it does not make. A store that stages records
// (*state.Store: StageConfirmed) writes them in the transaction of the
// anchor that follows the outcome, which costs no transaction more; any
// other writes them now. The run's end writes them again with its time
// (storeProofs); a write that fails here is logged, and that one still
// stands (it fails the run if it fails too).
func (e *Engine) storeConfirmed(ctx context.Context, pr *proofs, cs []state.Confirmed, log *zap.Logger) {
	if e.proofs == nil || (pr != nil && pr.err != nil) {
		return // as storeProofs: no store, or one whose records could not be read
	}
	var stage func([]state.Confirmed) error
	if st, ok := e.proofs.(interface{ StageConfirmed([]state.Confirmed) error }); ok {
		stage = st.StageConfirmed
	}
	writeConfirmed(ctx, pr, cs, stage, e.proofs.UpdateConfirmed, "confirmed changes", log)
}

// writeConfirmed stages cs (stage, when not nil) or writes them (update),
// each merged as storeProofs merges it with what earlier listings found.
func writeConfirmed(ctx context.Context, pr *proofs, cs []state.Confirmed, stage func([]state.Confirmed) error,
	update func(context.Context, []state.Confirmed, []string) (int, error), what string, log *zap.Logger) {
	w := &recordWrites{pr: pr, put: map[string]state.Confirmed{}}
	for _, c := range cs {
		w.confirmed(c)
	}
	var err error
	if stage != nil {
		err = stage(slices.Collect(maps.Values(w.put)))
	} else {
		err = w.write(ctx, update, what, log)
	}
	if err != nil {
		log.Error("could not record a confirmed change before journaling its outcome; the run's end tries again", zap.String("records", what), zap.Error(err))
	}
}

// recordWrites gathers what a run writes to a bucket of confirmed records
// (tokens' or API clients'): the records to put, by pat.IDKey, and the ids
// to drop.
type recordWrites struct {
	pr   *proofs
	put  map[string]state.Confirmed
	drop []string
}

// newRecordWrites starts with the records the run's listing found not in
// effect (pr's lies), marked as seen so by this run.
func newRecordWrites(pr *proofs, res *Result) *recordWrites {
	w := &recordWrites{pr: pr, put: map[string]state.Confirmed{}}
	if pr == nil {
		return w
	}
	for _, u := range pr.lies {
		c := u.Confirmed
		seen := res.Finished
		if c.StillListed == nil {
			c.StillListed = &seen
		}
		c.Checks++
		c.LastSeen, c.LastRun = &seen, res.RunID
		w.put[pat.IDKey(c.TokenID)] = c
	}
	return w
}

// confirmed puts the record of a change the tenant confirmed in this run.
// A change sent again keeps what the earlier listings found.
func (w *recordWrites) confirmed(c state.Confirmed) {
	k := pat.IDKey(c.TokenID)
	old, ok := w.put[k]
	if !ok && w.pr != nil {
		old, ok = w.pr.records[k]
	}
	if ok && old.Unproven() {
		c.StillListed, c.Checks, c.LastSeen, c.LastRun = old.StillListed, old.Checks, old.LastSeen, old.LastRun
	}
	w.put[k] = c
}

// write hands the records to update (UpdateConfirmed or
// UpdateConfirmedClients) in id order; what names them in the warning that
// the store's bound evicted some. Nothing to write writes nothing.
func (w *recordWrites) write(ctx context.Context, update func(context.Context, []state.Confirmed, []string) (int, error), what string, log *zap.Logger) error {
	if len(w.put) == 0 && len(w.drop) == 0 {
		return nil
	}
	list := make([]state.Confirmed, 0, len(w.put))
	for _, c := range w.put {
		list = append(list, c)
	}
	slices.SortFunc(list, func(a, b state.Confirmed) int { return strings.Compare(a.TokenID, b.TokenID) })
	evicted, err := update(ctx, list, w.drop)
	if err != nil {
		return err
	}
	if evicted > 0 {
		log.Warn("the store of "+what+" awaiting proof is full: the oldest were dropped unchecked",
			zap.Int("dropped", evicted), zap.Int("bound", state.MaxConfirmed))
	}
	return nil
}

// maxProvenValue bounds the value of an operation a record keeps to prove:
// a rename's value is built from the listed name (up to 64 KiB), and the
// store holds up to state.MaxConfirmed records. Scopes and dates are far
// shorter; a longer value is left unproven (the other operations of the
// patch are still checked).
const maxProvenValue = 1024

func provableOps(ops []pat.PatchOp) []pat.PatchOp {
	out := make([]pat.PatchOp, 0, len(ops))
	for _, op := range ops {
		if len(op.Value()) <= maxProvenValue {
			out = append(out, op)
		}
	}
	return out
}
