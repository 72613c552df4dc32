package janitor

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/audit"
)

// Outcome statuses the engine journals for intents an interrupted run left
// without an outcome.
const (
	// StatusGoneAfterCrash: the token is no longer listed. Either the
	// interrupted request went through, or its owner deleted it; in both
	// cases there is nothing left to do.
	StatusGoneAfterCrash = "gone-after-crash"
	// StatusPresentAfterCrash: the token is still listed. Whether the
	// interrupted request reached the tenant is unknown, and does not matter:
	// this run's fresh decision is made on the token as it is now, so a
	// delete that did not happen is planned again and a patch that did
	// happen no longer matches (and one that did not, matches again).
	StatusPresentAfterCrash = "present-after-crash"
)

// resolveInterrupted closes the intents an earlier run journaled without an outcome (it
// was killed between the intent and the outcome record). Why this is safe:
//
//   - The journal is written intent-first, so every mutation that may have
//     reached the tenant has an intent; only the outcome can be missing.
//   - The inventory this run works on was listed after the crash, unfiltered
//     (Plan lists every token when intents are pending), so a token missing
//     from it is gone and a token present shows the tenant's current state.
//   - Both mutations are idempotent in effect: a delete of a gone token is a
//     404 ("already gone"); a patch replaces values computed from the token's
//     current state, so a token that was patched no longer gets the decision
//     and is not patched twice.
//
// So a second run neither repeats a completed mutation wrongly nor loses one;
// the outcome records written here only close the old intents so that the
// next scan does not report them again.
func (e *Engine) resolveInterrupted(ctx context.Context, res *Result, pl *Planned, log *zap.Logger) error {
	inv := pl.Inventory
	for _, in := range pl.pending {
		_, present := inv.Token(in.TokenID)
		if !present && !inv.Unfiltered {
			// Plan lists everything when intents are pending; if this run's
			// inventory is filtered (a plan made by another engine), absence
			// proves nothing: leave the intent open for a later run.
			continue
		}
		status := StatusPresentAfterCrash
		note := fmt.Sprintf("interrupted intent (run %s, seq %d) resolved by run %s: token still listed; decided afresh", in.RunID, in.Seq, res.RunID)
		if !present {
			status = StatusGoneAfterCrash
			note = fmt.Sprintf("interrupted intent (run %s, seq %d) resolved by run %s: token no longer listed", in.RunID, in.Seq, res.RunID)
		}
		if _, err := e.journal.Append(ctx, audit.Record{
			Kind: audit.KindOutcome, RunID: in.RunID, Policy: in.Policy, TokenID: in.TokenID,
			Outcome: &audit.Outcome{Status: status}, Note: note,
		}); err != nil {
			return fmt.Errorf("record the outcome of interrupted intent seq %d: %w", in.Seq, err)
		}
		log.Info("resolved interrupted intent", zap.String("token_id", in.TokenID),
			zap.String("interrupted_run", in.RunID), zap.String("status", status))
		res.Recovered = append(res.Recovered, Recovered{Intent: in, Gone: !present})
	}
	return nil
}

// openIntents reads the journal's open intents for a run, split by
// resource: the token recovery must not read an API client id as a deleted
// token. A journal that cannot say which intents are open fails the run
// before anything is listed: a mutation it would record could bury them.
func (e *Engine) openIntents() (tokens, clients []audit.Record, err error) {
	if e.journal == nil {
		return nil, nil, nil
	}
	recs, err := e.journal.OpenIntents()
	if err != nil {
		return nil, nil, &JournalError{Err: fmt.Errorf("read the open intents: %w", err)}
	}
	return tokenIntents(recs), clientIntents(recs), nil
}
