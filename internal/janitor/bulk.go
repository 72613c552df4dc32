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
// tenant's answer is the only evidence of what it did). A batch the tenant
// refuses as a whole is sent again token by token (sendEachAlone). Results
// are written into results at the items' indices. The returned error is
// non-nil only for a journal failure.
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
	ops := ws[send[0]].ops
	answered, err := e.tenant.BulkUpdateTokens(mctx, ids, ops)
	res := make([]ItemResult, len(send))
	judgeBulk(ws, send, res, answered, err)
	if splitBulk(err, len(send)) {
		e.sendEachAlone(ctx, ws, send, res, ops, err, log)
	}
	return e.bulkOutcomes(ctx, runID, ws, send, res, results, pr, log)
}

// sendEachAlone sends again, each on its own, the tokens of a batch the
// tenant refused with refused (see splitBulk), and judges res from each
// answer.
//
// The bulk update is all or nothing: one id the tenant does not have (a
// token deleted since the listing, or listed and not there) is a 400 for
// the whole batch, which left every other token of it unexpired, run after
// run while that id was listed. Each token is sent alone, under the intent
// already journaled (it names the bulk path and these operations, not the
// batch). They share one mutation's time: a stalling tenant cannot hold the
// run for 25 of them.
func (e *Engine) sendEachAlone(ctx context.Context, ws []work, send []int, res []ItemResult, ops []pat.PatchOp, refused error, log *zap.Logger) {
	log.Warn("bulk update refused; sending each token alone", zap.Int("tokens", len(send)), zap.Error(refused))
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), e.mutTimeout)
	defer scancel()
	for k, i := range send {
		// Each request alone is a new change to the tenant: none starts
		// once the run is stopped (as mutateAll starts no unit then); the
		// rest keep the batch's failure.
		if ctx.Err() != nil {
			for j := k; j < len(send); j++ {
				res[j].Detail += "; not sent alone: the run stopped (" + context.Cause(ctx).Error() + ")"
			}
			return
		}
		one, oerr := e.tenant.BulkUpdateTokens(sctx, []string{ws[i].item.TokenID}, ops)
		judgeBulk(ws, send[k:k+1], res[k:k+1], one, oerr)
		if oerr != nil {
			res[k].Detail = "bulk update of the token alone (after the batch of " + fmt.Sprint(len(send)) + " was refused: " + refused.Error() + ") failed: " + oerr.Error()
		}
	}
}

// bulkOutcomes records the results res of the tokens send names (ws
// indices): into results, the metrics and the log; then the records
// awaiting proof of what the tenant confirmed, handed to the store before
// the outcomes are journaled (see storeConfirmed); then the outcomes. The
// returned error is non-nil only for a journal failure.
func (e *Engine) bulkOutcomes(ctx context.Context, runID string, ws []work, send []int, res, results []ItemResult, pr *proofs, log *zap.Logger) error {
	// The outcomes get their own time, after the requests (see mutate).
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeTimeout)
	defer rcancel()
	var confirmed []state.Confirmed
	for k, i := range send {
		it := ws[i].item
		results[i] = res[k]
		tlog := log.With(zap.String("policy", it.Policy), zap.String("token_id", it.TokenID), zap.String("action", it.Action))
		if res[k].Outcome == OutcomeApplied {
			e.metrics.AddAction(it.Policy, it.Action, MetricApplied)
			tlog.Info("applied")
			confirmed = append(confirmed, confirmedToken(it, res[k].Status, runID, e.now(), &ws[i].token))
		} else {
			e.metrics.AddAction(it.Policy, it.Action, MetricFailed)
			tlog.Warn("action failed", zap.Int("status", res[k].Status), zap.String("detail", res[k].Detail))
		}
	}
	if len(confirmed) > 0 {
		e.storeConfirmed(rctx, pr, confirmed, log)
	}
	var jerr error
	for k, i := range send {
		it := ws[i].item
		out := audit.Outcome{Status: string(res[k].Outcome), Code: res[k].Status, Error: res[k].Detail}
		if _, werr := e.journal.Append(rctx, audit.Record{
			Kind: audit.KindOutcome, RunID: runID, Policy: it.Policy, TokenID: it.TokenID, Outcome: &out,
		}); werr != nil && jerr == nil {
			log.Error("journal outcome failed; stopping the run", zap.Error(werr))
			jerr = &JournalError{Err: fmt.Errorf("record outcome for token %s: %w", it.TokenID, werr)}
		}
	}
	return jerr
}

// judgeBulk sets the results of the tokens send names (ws indices) from
// one bulk update's answer: err fails each; a 200 is checked token by token
// (an id missing from it, or answered with another expirationDate than the
// one requested, is failed with what came back).
func judgeBulk(ws []work, send []int, res []ItemResult, answered []pat.Token, err error) {
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
	for k, i := range send {
		w := ws[i]
		r := ItemResult{Item: w.item, Status: status}
		tok, ok := byID[pat.IDKey(w.item.TokenID)]
		switch {
		case err != nil:
			r.Outcome, r.Detail = OutcomeFailed, "bulk update of "+fmt.Sprint(len(send))+" tokens failed: "+err.Error()
		case !ok:
			r.Outcome, r.Detail = OutcomeFailed, fmt.Sprintf("the tenant answered 200 to the bulk update of %d tokens but its answer does not include this token (%d tokens answered): not counted as applied", len(send), len(answered))
		default:
			if why := bulkMismatch(w.ops, tok); why != "" {
				r.Outcome, r.Detail = OutcomeFailed, "the tenant answered 200 but "+why+": not counted as applied"
			} else {
				r.Outcome = OutcomeApplied
			}
		}
		res[k] = r
	}
}

// splitBulk reports whether a bulk update of n tokens that failed with err
// is worth sending again token by token: the tenant refused the request
// itself (400, or a 404 some tenant may give for an unknown id) and it named
// more than one token. Other failures (403, 401, 429 and 5xx after the
// client's retries, a timeout) would fail each token alike.
func splitBulk(err error, n int) bool {
	var aerr *api.Error
	return n > 1 && errors.As(err, &aerr) && (aerr.StatusCode == http.StatusBadRequest || aerr.StatusCode == http.StatusNotFound)
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
