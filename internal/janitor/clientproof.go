package janitor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/state"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// Proof of confirmed API client mutations: proof.go's discipline for the
// disables (200 to PATCH /enabled) and deletes (204) of OAuth API clients.
// A client secret is a credential like a PAT, and a disable the tenant
// confirms without making also starts the quarantine clock (disabledFor)
// from a disable that never happened.
//
// The records live in a bucket of their own (state's
// confirmed-client-mutations, Resource "apiClients"), are judged by the
// run's API client listing when it is complete (the listing's own error,
// cr.err, is nil: no failed call, no page cap, no duplicate, no filter
// ignored) and one of its calls is unfiltered, and at least SettleMargin
// after the confirmation. A deleted client still listed, or a disabled one
// still listed enabled and not modified since the disable was sent, is not
// in effect: journaled (not-in-effect, with the client as listed), logged,
// counted in patjanitor_unproven_mutations{action="disable-client" or
// "delete-client"}, written into the plan's warnings and made the run's
// error; the notify.apiClients receivers are not told again of it.
//
// The quarantine: a disable found not in effect gives no disabledFor. The
// client is listed enabled, so forgetReenabled drops its disabled record
// and the delete policy disables it again first; and while the record is
// in doubt, DisabledAt reports no disable at all. A disable proven only
// after it had been found not in effect counts disabledFor from the
// listing that proved it, not from the confirmation the tenant gave.

// ClientProofStore keeps the confirmed API client mutations awaiting proof;
// *state.Store implements it. The engine finds it on Options.Proofs.
type ClientProofStore interface {
	ConfirmedClientMutations(ctx context.Context) ([]state.Confirmed, error)
	UpdateConfirmedClients(ctx context.Context, put []state.Confirmed, drop []string) (int, error)
}

// ClientProofMetrics receives the API client values of
// patjanitor_unproven_mutations; *metrics.Metrics implements it.
type ClientProofMetrics interface {
	// SetUnprovenClientMutations records, by client action (disable,
	// delete), the confirmed mutations a listing showed not in effect.
	SetUnprovenClientMutations(perAction map[string]int)
}

func (e *Engine) clientProofStore() (ClientProofStore, bool) {
	if e.proofs == nil {
		return nil, false
	}
	ps, ok := e.proofs.(ClientProofStore)
	return ps, ok
}

// readClientProofs reads the confirmed API client mutations (nil without a
// store). Only a cancelled ctx is an error; a store that cannot be read is
// recorded in the proofs, and planClients makes the client part incomplete.
func (e *Engine) readClientProofs(ctx context.Context) (*proofs, error) {
	ps, ok := e.clientProofStore()
	if !ok {
		return nil, nil
	}
	return loadProofs(ctx, ps.ConfirmedClientMutations, apiclient.Resource)
}

// judgeClientProofs checks the client records against the run's client
// listing (see the top of this file) and sets the gauge.
func (e *Engine) judgeClientProofs(cr *clientRun, now time.Time) {
	pr := cr.proofs
	if pr == nil || pr.err != nil {
		return
	}
	pr.judged = cr.err == nil && slices.ContainsFunc(cr.section.Listings, func(l plan.Listing) bool { return l.Filter == "" })
	for _, k := range pr.oldestFirst() {
		c := pr.records[k]
		if !pr.judged || now.Sub(c.At) < SettleMargin {
			pr.undecided(c)
			continue
		}
		cl, listed := cr.byID[k]
		detail := ""
		switch {
		case !listed:
			// Gone: a deleted client is proven, a disabled one moot.
			pr.markGone(k)
		case policy.Action(c.Action) == policy.ActionDelete:
			detail = "still listed"
		case cl.Enabled == nil:
			// The listing does not say: no verdict either way; the record
			// waits for a listing that does.
			pr.undecided(c)
			continue
		case !*cl.Enabled:
			// Disabled: in effect.
		case changedSince(&c, &cl):
			// Enabled, but modified since the disable was sent: someone
			// re-enabled it (the tenant did disable it); no evidence
			// against the tenant. forgetReenabled forgets the disable.
			e.log.Info("an API client the tenant confirmed disabled was modified since and is enabled: no verdict on the tenant",
				zap.String("client_id", untrusted.ClipID(c.TokenID)), zap.String("confirmed_run", c.RunID))
		default:
			detail = "listed enabled"
		}
		if detail == "" {
			pr.proven = append(pr.proven, c)
			continue
		}
		u := Unproven{Confirmed: c, Judged: true, Client: cl, Detail: detail}
		pr.notInEffect(u)
		e.log.Error("the tenant confirmed an API client change that a later listing does not show: it did not happen",
			zap.String("client_id", untrusted.ClipID(c.TokenID)), zap.String("action", c.Action),
			zap.String("policy", c.Policy), zap.String("confirmed_run", c.RunID), zap.Time("confirmed_at", c.At),
			zap.Int("status", c.Code), zap.String("listing", detail))
	}
	cr.indexClientProofs()
	if len(pr.records) > 0 {
		e.log.Info("confirmed API client changes checked against the listing", zap.Bool("listing_proves", pr.judged),
			zap.Int("records", len(pr.records)), zap.Int("proven", len(pr.proven)), zap.Int("not_in_effect", len(pr.unproven)))
	}
	if pm, ok := e.metrics.(ClientProofMetrics); ok {
		pm.SetUnprovenClientMutations(pr.unprovenPerAction())
	}
}

// changedSince reports whether a client listed enabled was modified since
// the disable was sent (its modified time is not the one it had then): the
// tenant made the disable and someone undid it. A proxy that answers the
// PATCH without forwarding it leaves modified as it was. A record without
// the time from before, or one already found not in effect, is strict.
func changedSince(c *state.Confirmed, listed *apiclient.Client) bool {
	if c.Unproven() || c.Before == nil || c.Before.Modified == nil || listed.Modified == nil {
		return false
	}
	return !listed.Modified.Equal(*c.Before.Modified)
}

// provesClients reports whether confirmed API client mutations are recorded
// to be proven.
func (e *Engine) provesClients() bool {
	_, ok := e.clientProofStore()
	return ok
}

// indexClientProofs indexes what judgeClientProofs found by pat.IDKey, for
// doubt and reclocked. They are asked once per listed client (DisabledAt of
// every disabled client a delete policy matches, clientInDoubt of every
// client result), and a scan of the records for each would be O(clients x
// records): a tenant that lies about every disable keeps its records not in
// effect, up to state.MaxConfirmed (10,000), and an unpaged tenant lists as
// many clients as it likes. 10,000 clients each looked up among 10,000
// records take 2.3 s to scan for, 1.3 ms with maps built in one pass.
func (cr *clientRun) indexClientProofs() {
	pr := cr.proofs
	cr.doubted = make(map[string]state.Confirmed, len(pr.unproven))
	for _, u := range pr.unproven {
		cr.doubted[pat.IDKey(u.Confirmed.TokenID)] = u.Confirmed
	}
	cr.reclocks = map[string]bool{}
	for _, c := range pr.proven {
		if c.Unproven() && policy.Action(c.Action) == policy.ActionDisable {
			cr.reclocks[pat.IDKey(c.TokenID)] = true
		}
	}
}

// doubt returns the record of a client whose disable or delete this run's
// listing left in doubt (found not in effect, now or before).
func (cr *clientRun) doubt(id string) (state.Confirmed, bool) {
	if cr == nil {
		return state.Confirmed{}, false
	}
	c, ok := cr.doubted[pat.IDKey(id)]
	return c, ok
}

// clientInDoubt reports whether a client's disable or delete is in doubt.
func (cr *clientRun) clientInDoubt(id string) bool {
	_, ok := cr.doubt(id)
	return ok
}

// reclocked reports whether this run's listing proved a disable of the
// client that an earlier listing had found not in effect: disabledFor
// starts from this listing.
func (cr *clientRun) reclocked(id string) bool {
	return cr != nil && cr.reclocks[pat.IDKey(id)]
}

// clientDisabledAt is the DisabledAt of the client decisions: the disabled
// record, unless the disable is in doubt (none), or proven only now after
// doubt (now). A delete in doubt keeps the record of the disable before it
// (mutateClient keeps it until the delete is proven): the delete is due
// again, and sent again.
func (cr *clientRun) clientDisabledAt(id string, now time.Time) (time.Time, bool) {
	d, ok := cr.disabled[pat.IDKey(id)]
	c, doubted := cr.doubt(id)
	switch {
	case !ok:
		return time.Time{}, false
	case doubted && policy.Action(c.Action) == policy.ActionDisable:
		return time.Time{}, false
	case cr.reclocked(id):
		return now, true
	}
	return d.At, true
}

func clientAwaitingProof(it *plan.ClientItem, c state.Confirmed) plan.Skipped {
	return plan.Skipped{TokenID: it.ClientID, TokenName: it.Name, Policy: it.Policy,
		Reason: fmt.Sprintf("%s: the tenant confirmed a %s of this API client at %s (run %s); a listing from %s on shows whether it took effect",
			SkipAwaitingProof, c.Action, pat.FormatTime(c.At), c.RunID, pat.FormatTime(c.At.Add(SettleMargin)))}
}

// settleClientProofs is settleProofs for the API clients: it journals what
// the client listing showed (unless executeClients did, inside its
// run-start), then writes the client records. It returns the client records
// not in effect (for the run's UnprovenError) and the failures.
func (e *Engine) settleClientProofs(ctx context.Context, pl *Planned, res *Result, log *zap.Logger) ([]Unproven, error) {
	cr := pl.clients
	if cr == nil || cr.proofs == nil {
		return nil, nil
	}
	pr := cr.proofs
	var errs []error
	if err := e.journalProofsAlone(ctx, res.RunID, pr, apiclient.Resource); err != nil {
		log.Error("could not journal the check of the confirmed API client changes", zap.Error(err))
		errs = append(errs, &JournalError{Err: err})
	}
	if ps, ok := e.clientProofStore(); ok && e.journal != nil && pr.err == nil {
		if err := e.storeClientProofs(ctx, ps, cr, res, log); err != nil {
			log.Error("could not record the confirmed API client changes awaiting proof", zap.Error(err))
			errs = append(errs, fmt.Errorf("confirmed API client changes: %w", err))
		}
	}
	return pr.unproven, errors.Join(errs...)
}

// storeClientProofs writes the client records: the proven dropped, those
// not in effect updated, one for every disable and delete this run had
// confirmed; and a disable proven after doubt restarts its disabledFor.
func (e *Engine) storeClientProofs(ctx context.Context, ps ClientProofStore, cr *clientRun, res *Result, log *zap.Logger) error {
	pr := cr.proofs
	sent := make(map[string]*apiclient.Client, len(cr.work))
	for i := range cr.work {
		sent[pat.IDKey(cr.work[i].item.ClientID)] = &cr.work[i].client
	}
	w := newRecordWrites(pr, res)
	for _, c := range pr.proven {
		w.drop = append(w.drop, c.TokenID)
		if e.clientState == nil {
			continue
		}
		if policy.Action(c.Action) == policy.ActionDelete {
			// The disable's record, kept until the delete was proven.
			if _, err := e.clientState.DeleteDisabled(ctx, c.TokenID); err != nil {
				return fmt.Errorf("forget the disable of the deleted API client %s: %w", untrusted.ClipID(c.TokenID), err)
			}
			continue
		}
		if !c.Unproven() {
			continue
		}
		if d, ok := cr.disabled[pat.IDKey(c.TokenID)]; ok {
			d.At = res.Finished.UTC()
			if err := e.clientState.PutDisabled(ctx, d); err != nil {
				return fmt.Errorf("restart disabledFor of API client %s: %w", untrusted.ClipID(c.TokenID), err)
			}
			log.Info("a disable found not in effect earlier is in effect now: disabledFor counts from this listing",
				zap.String("client_id", untrusted.ClipID(c.TokenID)), zap.Time("disabled_at", d.At))
		}
	}
	for _, r := range res.Clients {
		switch policy.Action(r.Item.Action) {
		case policy.ActionDelete, policy.ActionDisable:
		default:
			continue
		}
		// A 404 (gone) is proven like a success: see storeProofs.
		if !r.Outcome.awaitsProof() {
			continue
		}
		w.confirmed(confirmedClient(r.Item, r.Status, res.RunID, res.Finished, sent[pat.IDKey(r.Item.ClientID)]))
	}
	return w.write(ctx, ps.UpdateConfirmedClients, "confirmed API client changes", log)
}

// confirmedClient is the record of an API client's delete or disable the
// tenant confirmed with status at at, awaiting its proof; cl is the client
// as listed when the request was sent (nil: not known).
func confirmedClient(it plan.ClientItem, status int, runID string, at time.Time, cl *apiclient.Client) state.Confirmed {
	c := state.Confirmed{TokenID: it.ClientID, Resource: apiclient.Resource, Name: untrusted.ClipID(it.Name), Policy: it.Policy,
		Action: it.Action, RunID: runID, Code: status, At: at}
	if cl != nil && policy.Action(it.Action) == policy.ActionDisable {
		c.Before = &state.Shown{Modified: cl.Modified}
	}
	return c
}

// storeConfirmedClient is storeConfirmed for an API client's delete or
// disable: its record is stored before its outcome is journaled.
func (e *Engine) storeConfirmedClient(ctx context.Context, pr *proofs, c state.Confirmed, log *zap.Logger) {
	ps, ok := e.clientProofStore()
	if !ok || (pr != nil && pr.err != nil) {
		return // as storeClientProofs
	}
	var stage func([]state.Confirmed) error
	if st, ok := ps.(interface {
		StageConfirmedClients([]state.Confirmed) error
	}); ok {
		stage = st.StageConfirmedClients
	}
	writeConfirmed(ctx, pr, []state.Confirmed{c}, stage, ps.UpdateConfirmedClients, "confirmed API client changes", log)
}
