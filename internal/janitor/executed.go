package janitor

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/state"
)

// MaxPlanAgeLimit is the longest --max-plan-age apply accepts. The record
// that a plan was executed is kept this long after the plan was generated
// (ExecutedPlans): a longer maximum age would let a plan outlive the record
// that stops it from running twice.
const MaxPlanAgeLimit = 30 * 24 * time.Hour

// ExecutedPlans remembers which saved plans were executed, by planHash (the
// state store). An approval is for one execution: a plan executed once is
// refused afterwards, however it is put forward again (apply PLAN run twice,
// the file copied back into serve's approved/, or serve failing to move an
// applied plan out of approved/). Between a first execution and a replay the
// tenant may have changed back (an owner had a token's expiration or scopes
// restored), and the replay would undo that without any new approval.
type ExecutedPlans interface {
	ExecutedPlan(ctx context.Context, planHash string) (state.ExecutedPlan, bool, error)
	RecordExecution(ctx context.Context, rec state.ExecutedPlan, forgetBefore time.Time) (prev state.ExecutedPlan, already bool, forgot int, err error)
	ForgetExecution(ctx context.Context, planHash, runID string) (bool, error)
}

// ExecutedError refuses a saved plan that a run executed before. It wraps
// ErrPlanRejected: it is a refusal of the plan, journaled as one.
type ExecutedError struct {
	PlanHash string
	// Earlier is the execution on record.
	Earlier state.ExecutedPlan
}

func (e *ExecutedError) Error() string {
	when := "at an unknown time"
	if !e.Earlier.At.IsZero() {
		when = "at " + pat.FormatTime(e.Earlier.At)
	}
	return fmt.Sprintf("%v: plan %s was already executed, by run %s %s: a saved plan is executed at most once (its approval was for that run), nothing was sent; make a new plan and have it approved",
		ErrPlanRejected, e.PlanHash, e.Earlier.RunID, when)
}

func (e *ExecutedError) Unwrap() error { return ErrPlanRejected }

// CheckExecuted refuses (with an *ExecutedError) a saved plan the engine's
// store records as executed. Without a store it checks nothing: every
// command that applies a saved plan opens one (cli), and the engine alone
// (tests, a library caller) keeps no state.
func (e *Engine) CheckExecuted(ctx context.Context, p *plan.Plan) error {
	if e.executed == nil {
		return nil
	}
	rec, done, err := e.executed.ExecutedPlan(ctx, p.PlanHash)
	if err != nil {
		return fmt.Errorf("janitor: check whether the plan was executed before: %w; nothing was changed", err)
	}
	if done {
		return &ExecutedError{PlanHash: p.PlanHash, Earlier: rec}
	}
	return nil
}

// executes reports whether execute will carry pl out rather than refuse
// it: its data complete, no guardrail blocking, a journal to write. Only
// such a run consumes a saved plan: a run blocked by a failed listing or a
// tripped guardrail sends nothing and leaves the plan to be tried again
// (serve retries it at its next run; apply --accept-guardrail accepts the
// guardrail). A run that executes it consumes it also when every item was
// dropped: the reviewers' approval was for that run, and a dropped item may
// hold again later (a token's expiration set back), which no reviewer
// approved again.
func (e *Engine) executes(pl *Planned) bool {
	if e.journal == nil || pl.Err != nil || len(pl.Blocking()) > 0 {
		return false
	}
	if pl.clients == nil {
		return true
	}
	// The API clients' own guardrails block only the API client actions
	// (executeClients): with token work the run still sends.
	return pl.clients.err == nil && (len(pl.work) > 0 || len(pl.blockingClientGuardrails()) == 0)
}

// recordExecution records, before the run's first mutation (and before its
// run-start), that saved is being executed by pl's run. The record is
// durable when it returns (a bbolt commit): a crash after it leaves the plan
// executed, and what the run did not get to needs a new plan (the
// interrupted intents are resolved by the next run against a fresh
// listing). A plan that another run recorded in between is refused here
// too. A failure to write the record stops the run: nothing was sent.
// recorded reports whether this run wrote the record (releaseExecution may
// take it back).
func (e *Engine) recordExecution(ctx context.Context, saved *plan.Plan, pl *Planned, ref *audit.PlanRef) (recorded bool, err error) {
	if e.executed == nil || !e.executes(pl) {
		return false, nil
	}
	now := e.now()
	rec := state.ExecutedPlan{PlanHash: saved.PlanHash, RunID: pl.Plan.RunID, At: now.UTC(), GeneratedAt: saved.GeneratedAt.UTC()}
	if ref != nil {
		rec.File = ref.File
	}
	// A plan generated before the horizon is refused by its age whatever
	// --max-plan-age says (checkPlan caps it at MaxPlanAgeLimit), so its
	// record is no longer needed.
	forget := now.Add(-MaxPlanAgeLimit - maxClockSkew)
	prev, already, _, err := e.executed.RecordExecution(context.WithoutCancel(ctx), rec, forget)
	if err != nil {
		return false, fmt.Errorf("janitor: record that the plan is executed, in the state store: %w; nothing was changed", err)
	}
	if already {
		return false, &ExecutedError{PlanHash: saved.PlanHash, Earlier: prev}
	}
	return true, nil
}

// releaseExecution takes back the record of a run that stopped before it
// sent anything (its journal refused the run-start or an intent, it was
// stopped before its first mutation): that run did not execute the plan,
// and keeping the record would have the reviewers approve it again for
// nothing (serve keeps such a plan in approved/ for its next run). A run
// that sent one mutation, or that had nothing left to send (every item
// dropped), keeps it. A failure to take it back leaves the plan recorded,
// the safe direction, and is logged.
func (e *Engine) releaseExecution(ctx context.Context, saved *plan.Plan, res *Result) {
	if res == nil || !res.NothingSent() || !res.stoppedBeforeSending() {
		return
	}
	if _, err := e.executed.ForgetExecution(context.WithoutCancel(ctx), saved.PlanHash, res.RunID); err != nil {
		e.log.Error("the run sent nothing, but the record that it executed the plan could not be taken back: the plan is refused as executed",
			zap.String("run_id", res.RunID), zap.String("plan_hash", saved.PlanHash), zap.Error(err))
	}
}

// stoppedBeforeSending reports whether an item of the run, of a token or an
// API client, was not started: the run had something to send and stopped.
func (r *Result) stoppedBeforeSending() bool {
	if r.Count(OutcomeNotStarted) > 0 {
		return true
	}
	for _, c := range r.Clients {
		if c.Outcome == OutcomeNotStarted {
			return true
		}
	}
	return false
}
