package janitor

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/state"
)

// Expire goes through the admin bulk update (PATCH
// /personal-access-tokens/v1/bulk-update): a real tenant refuses (403) a
// per-token PATCH of another owner's token, even to an org admin,
// and the bulk update is the documented route for every owner's token. One
// patch is applied to every id of a call, so expires are batched by
// identical operations (the same policy at the same run time sets the same
// date), up to api.MaxBulkIDs ids a call, each call under the client's rate
// limiter like any other request.

// units splits the work into what one worker does at a time: a delete or a
// patch alone; expires in batches of up to api.MaxBulkIDs with the same
// operations. Units keep plan order (by their first item).
func units(ws []work) [][]int {
	var out [][]int
	open := map[string]int{} // operations -> index of the unit still filling
	for i, w := range ws {
		if policy.Action(w.item.Action) != policy.ActionExpire {
			out = append(out, []int{i})
			continue
		}
		key := opsString(w.ops)
		if u, ok := open[key]; ok && len(out[u]) < api.MaxBulkIDs {
			out[u] = append(out[u], i)
			continue
		}
		open[key] = len(out)
		out = append(out, []int{i})
	}
	return out
}

// mutateBulk performs one batch of expires: an intent per token (each
// durable) before the single request, then an outcome per token. A 200 answer
// is checked token by token: an id missing from it, or answered with another
// expirationDate than the one requested, is failed with what came back (the
// tenant's answer is the only evidence of what it did). Results are written
// into results at the items' indices. The returned error is non-nil only for
// a journal failure.
func (e *Engine) mutateBulk(ctx context.Context, runID string, ws []work, u []int, results []ItemResult, pr *proofs, log *zap.Logger) error {
	log = log.With(zap.String("operation", api.OpBulkUpdateTokens))
	send := make([]int, 0, len(u))
	for _, i := range u {
		w := ws[i]
		if pat.SameID(w.item.TokenID, e.clientID) || pat.SameID(w.token.ID, e.clientID) {
			results[i] = ItemResult{Item: w.item, Outcome: OutcomeRefused, Detail: "the token is the credential patjanitor runs as; never acted on"}
			log.Error("refused to act on the own credential (a bug put it into the plan)", zap.String("token_id", w.item.TokenID))
			e.metrics.AddAction(w.item.Policy, w.item.Action, MetricSkipped)
			continue
		}
		send = append(send, i)
	}
	if len(send) == 0 {
		return nil
	}
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.mutTimeout)
	defer cancel()
	octx, ocancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeTimeout)
	defer ocancel()

	for k, i := range send {
		w := ws[i]
		before, req := w.token, e.request(w)
		if _, err := e.journal.Append(mctx, audit.Record{
			Kind: audit.KindIntent, RunID: runID, Policy: w.item.Policy, TokenID: w.item.TokenID,
			Before: &before, Request: &req,
		}); err != nil {
			detail := "not started: the journal could not record the intent of the batch: " + err.Error()
			log.Error("journal intent failed; bulk update not sent", zap.String("token_id", w.item.TokenID), zap.Error(err))
			for _, j := range send {
				results[j] = ItemResult{Item: ws[j].item, Outcome: OutcomeNotStarted, Detail: detail}
				e.metrics.AddAction(ws[j].item.Policy, ws[j].item.Action, MetricSkipped)
			}
			// Close the intents already written (best effort: the journal
			// just failed), so that no later run takes them for a request
			// that may have been sent.
			for _, j := range send[:k] {
				_, _ = e.journal.Append(octx, audit.Record{
					Kind: audit.KindOutcome, RunID: runID, Policy: ws[j].item.Policy, TokenID: ws[j].item.TokenID,
					Outcome: &audit.Outcome{Status: string(OutcomeNotStarted), Error: detail},
				})
			}
			return &JournalError{Err: fmt.Errorf("record intent for token %s: %w", w.item.TokenID, err)}
		}
	}

	ids := make([]string, len(send))
	for k, i := range send {
		ids[k] = ws[i].item.TokenID
	}
	answered, err := e.tenant.BulkUpdateTokens(mctx, ids, ws[send[0]].ops)
	status := 0
	var aerr *api.Error
	if errors.As(err, &aerr) {
		status = aerr.StatusCode
	}
	byID := make(map[string]*pat.Token, len(answered))
	if err == nil {
		status = http.StatusOK
		for j := range answered {
			k := pat.IDKey(answered[j].ID)
			if _, dup := byID[k]; !dup {
				byID[k] = &answered[j]
			}
		}
	}

	outs := make([]audit.Outcome, len(send))
	for k, i := range send {
		w := ws[i]
		it := w.item
		res := ItemResult{Item: it, Status: status}
		switch {
		case err != nil:
			res.Outcome, res.Detail = OutcomeFailed, "bulk update of "+fmt.Sprint(len(ids))+" tokens failed: "+err.Error()
		default:
			tok, ok := byID[pat.IDKey(it.TokenID)]
			switch {
			case !ok:
				res.Outcome, res.Detail = OutcomeFailed, fmt.Sprintf("the tenant answered 200 to the bulk update of %d tokens but its answer does not include this token (%d tokens answered): not counted as applied", len(ids), len(answered))
			default:
				if why := bulkMismatch(w.ops, tok); why != "" {
					res.Outcome, res.Detail = OutcomeFailed, "the tenant answered 200 but "+why+": not counted as applied"
				} else {
					res.Outcome = OutcomeApplied
				}
			}
		}
		out := audit.Outcome{Status: string(res.Outcome), Code: status, Error: res.Detail}
		tlog := log.With(zap.String("policy", it.Policy), zap.String("token_id", it.TokenID), zap.String("action", it.Action))
		if res.Outcome == OutcomeApplied {
			e.metrics.AddAction(it.Policy, it.Action, MetricApplied)
			tlog.Info("applied")
		} else {
			e.metrics.AddAction(it.Policy, it.Action, MetricFailed)
			tlog.Warn("action failed", zap.Int("status", status), zap.String("detail", res.Detail))
		}
		results[i] = res
		outs[k] = out
	}
	// The records awaiting proof of what the tenant confirmed, handed to
	// the store before the outcomes are journaled (see storeConfirmed).
	var confirmed []state.Confirmed
	for _, i := range send {
		if results[i].Outcome == OutcomeApplied {
			confirmed = append(confirmed, confirmedToken(ws[i].item, status, runID, e.now(), &ws[i].token))
		}
	}
	if len(confirmed) > 0 {
		e.storeConfirmed(octx, pr, confirmed, log)
	}
	var jerr error
	for k, i := range send {
		it := ws[i].item
		if _, werr := e.journal.Append(octx, audit.Record{
			Kind: audit.KindOutcome, RunID: runID, Policy: it.Policy, TokenID: it.TokenID, Outcome: &outs[k],
		}); werr != nil && jerr == nil {
			log.Error("journal outcome failed; stopping the run", zap.Error(werr))
			jerr = &JournalError{Err: fmt.Errorf("record outcome for token %s: %w", it.TokenID, werr)}
		}
	}
	return jerr
}

// bulkMismatch says how the answered token differs from what ops asked for
// ("" when it shows every requested value the answer carries; the bulk
// answer does not return userAwareTokenNeverExpires).
func bulkMismatch(ops []pat.PatchOp, tok *pat.Token) string {
	for _, op := range ops {
		want, ok := op.Expiration()
		if !ok {
			continue
		}
		if tok.ExpirationDate == nil {
			return "it answered expirationDate null, requested " + pat.FormatTime(want)
		}
		if !tok.ExpirationDate.Equal(want) {
			return "it answered expirationDate " + pat.FormatTime(*tok.ExpirationDate) + ", requested " + pat.FormatTime(want)
		}
	}
	return ""
}
