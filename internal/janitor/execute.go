package janitor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/state"
)

// Outcome is what happened to one enforce-mode item.
type Outcome string

// Outcomes.
const (
	// OutcomeApplied: the request succeeded.
	OutcomeApplied Outcome = "applied"
	// OutcomeGone: the tenant answered 404, the token was already gone
	// (invariant 8: recorded, not a failure).
	OutcomeGone Outcome = "gone"
	// OutcomeFailed: the request failed (after the client's retries), for
	// example a 403 on a patch of another owner's token.
	OutcomeFailed Outcome = "failed"
	// OutcomeBlocked: the run acted on nothing because its data was
	// incomplete or a guardrail tripped.
	OutcomeBlocked Outcome = "blocked"
	// OutcomeNotStarted: the run stopped before this item (shutdown, or the
	// journal could not be written).
	OutcomeNotStarted Outcome = "not-started"
	// OutcomeDropped: apply PLAN's re-verification dropped the item (the
	// token is gone, was used again, or its decision changed).
	OutcomeDropped Outcome = "dropped"
	// OutcomeRefused: the item targets the engine's own credential; refused
	// right before the request (it can only get here through a bug).
	OutcomeRefused Outcome = "refused"
	// OutcomeAwaitingApproval: approvals.for names the item's action, and
	// the run was not the apply of a signed plan; nothing was sent.
	OutcomeAwaitingApproval Outcome = "awaiting-approval"
)

// awaitsProof reports whether the tenant said the change was made: a
// success, or a 404 (the token or client gone). Either is recorded to be
// proven by a later listing, and the record is stored before the outcome is
// journaled (see storeConfirmed).
func (o Outcome) awaitsProof() bool { return o == OutcomeApplied || o == OutcomeGone }

// ItemResult is the fate of one item.
type ItemResult struct {
	Item    plan.Item
	Outcome Outcome
	// Status is the HTTP status of the request's last attempt (0 if none was
	// sent or no response arrived).
	Status int
	// Detail says why for every outcome but applied: the error, the drop
	// reason, what blocked the run.
	Detail string
}

// Recovered is an intent an interrupted run journaled without an outcome,
// resolved by this run.
type Recovered struct {
	Intent audit.Record
	// Gone reports that the token is no longer listed (the interrupted delete
	// went through, or someone else deleted it). When false the token is still
	// there and this run's fresh decision handles it like any other token.
	Gone bool
}

// Result is what a run did.
type Result struct {
	// RunID identifies the run in the journal and the logs.
	RunID string
	// Plan is the plan that was executed (for ApplyPlan: the re-verified
	// plan, holding only the items that still held).
	Plan *plan.Plan
	// Items are the enforce-mode mutations in plan order, each with its
	// outcome; for ApplyPlan also the dropped items, after them.
	Items []ItemResult
	// Clients are the API client actions with their outcomes (apiclients.go).
	Clients []ClientItemResult
	// Recovered are the interrupted intents of earlier runs this run closed.
	Recovered []Recovered
	// Unproven are the confirmed mutations not in effect after this run's
	// listing (proof.go); the run's error then holds an *UnprovenError.
	Unproven []Unproven
	// Started and Finished bracket the run (its mutations; the
	// notifications are sent after Finished).
	Started, Finished time.Time
	// Notified is what became of the run's notifications (empty without a
	// Notifier).
	Notified notify.Report
	// Awaiting is set when approvals held actions back: how many, and where
	// the plan for reviewers to sign was saved.
	Awaiting *notify.AwaitingApproval
}

// Count returns how many items had outcome o.
func (r *Result) Count(o Outcome) int {
	n := 0
	for _, it := range r.Items {
		if it.Outcome == o {
			n++
		}
	}
	return n
}

// GuardrailError reports tripped guardrails (invariant 4): the run acted on
// nothing.
type GuardrailError struct {
	Tripped []plan.Guardrail
}

func (e *GuardrailError) Error() string {
	msg := "guardrail tripped, nothing was changed:"
	for i, g := range e.Tripped {
		if i > 0 {
			msg += ";"
		}
		msg += fmt.Sprintf(" %s (limit %g, wanted %d)", g.Name, g.Limit, g.Wanted)
		if g.Detail != "" {
			msg += ": " + g.Detail
		}
	}
	return msg
}

// JournalError is a failure to write the journal (invariant 5). When it
// happens before a mutation's request, that request is not sent and the run
// stops.
type JournalError struct {
	Err error
}

func (e *JournalError) Error() string {
	return "journal: " + e.Err.Error() + " (the run stopped; no request is sent without its journal record)"
}

func (e *JournalError) Unwrap() error { return e.Err }

// ActionsFailedError reports that some requests failed; the other items ran.
type ActionsFailedError struct {
	Failed, Total int
}

func (e *ActionsFailedError) Error() string {
	return fmt.Sprintf("%d of %d actions failed", e.Failed, e.Total)
}

// StoppedError reports that the run stopped starting new mutations because
// its context ended (a shutdown); the mutations in flight completed.
type StoppedError struct {
	NotStarted int
	Cause      error
}

func (e *StoppedError) Error() string {
	return fmt.Sprintf("run stopped before %d actions: %v", e.NotStarted, e.Cause)
}

func (e *StoppedError) Unwrap() error { return e.Cause }

// Execute performs the enforce-mode mutations of a plan Plan just produced.
// It refuses (acting on nothing) when the plan's data is incomplete or a
// guardrail tripped. The returned Result is never nil; the error joins what
// went wrong (*IncompleteError, *GuardrailError, *JournalError,
// *StoppedError, *ActionsFailedError).
//
// Cancellation: ctx ending means "start no new mutation". A mutation already
// started (its intent journaled) runs to its end on a context detached from
// ctx, bounded by Options.MutationTimeout, and its outcome is journaled: a
// request torn mid-flight would leave the journal unable to say what the
// tenant did.
//
// With approvals configured, the items whose action needs approval are not
// executed: they are OutcomeAwaitingApproval, for the reviewers to sign a
// saved plan of them (ApplyPlan). The other items run as usual.
//
// Execute is bounded by the config's runTimeout (its own, when called on its
// own after Plan).
func (e *Engine) Execute(ctx context.Context, pl *Planned) (*Result, error) {
	ctx, cancel := e.runContext(ctx)
	defer cancel()
	return e.executeUnsigned(ctx, pl, e.now())
}

// executeUnsigned executes a plan no reviewer signed: the actions approvals
// name are held back (and the plan saved for reviewers), the rest run.
func (e *Engine) executeUnsigned(ctx context.Context, pl *Planned, started time.Time) (*Result, error) {
	pl, held := e.holdForApproval(pl)
	var awaiting *notify.AwaitingApproval
	if n := len(held) + clientsHeld(pl); n > 0 { // clientsHeld: apiclients.go
		awaiting = &notify.AwaitingApproval{Actions: n, Required: e.cfg.Approvals.Required}
		if e.saveForApproval != nil && pl.Err == nil && len(pl.Plan.Tripped()) == 0 {
			// A plan its own guardrails or incomplete data block would be
			// refused at apply: reviewers are not asked to sign it.
			path, err := e.saveForApproval(pl.Plan)
			if err != nil {
				e.log.Error("could not save the plan for approval", zap.Error(err))
			}
			awaiting.Plan = path
		}
	}
	return e.execute(ctx, pl, held, started, awaiting)
}

// holdForApproval takes the work that approvals.for names out of an unsigned
// run.
func (e *Engine) holdForApproval(pl *Planned) (*Planned, []ItemResult) {
	ap := e.cfg.Approvals
	if ap == nil {
		return pl, nil
	}
	pl = holdClientsForApproval(pl, ap) // apiclients.go
	var keep []work
	var held []ItemResult
	for _, w := range pl.work {
		if ap.Needs(policy.Action(w.item.Action)) {
			held = append(held, ItemResult{Item: w.item, Outcome: OutcomeAwaitingApproval,
				Detail: fmt.Sprintf("approvals.for names %s: it is carried out only from a saved plan signed by %d reviewers", w.item.Action, ap.Required)})
			continue
		}
		keep = append(keep, w)
	}
	if held == nil {
		return pl, nil
	}
	cp := *pl
	cp.work = keep
	return &cp, held
}

// JournalRefusal records an apply of a saved plan that was refused before
// anything was listed (its approvals did not suffice): a run-start naming the
// plan and the reason, and its run-end. Nothing is sent to the tenant.
func (e *Engine) JournalRefusal(ctx context.Context, in RunInput, ref audit.PlanRef, reason error) (string, error) {
	e = e.forRun(in)
	if e.journal == nil {
		return "", errors.New("janitor: no journal to record the refusal in")
	}
	runID := NewRunID(e.now())
	ref.Refused = reason.Error()
	ref.Approvals = boundedApprovals(ref.Approvals)
	jctx := context.WithoutCancel(ctx)
	if _, err := e.journal.Append(jctx, audit.Record{Kind: audit.KindRunStart, RunID: runID,
		Note: "apply of a saved plan refused: nothing was changed", Plan: &ref}); err != nil {
		return "", &JournalError{Err: err}
	}
	if _, err := e.journal.Append(jctx, audit.Record{Kind: audit.KindRunEnd, RunID: runID, Note: "refused"}); err != nil {
		return "", &JournalError{Err: err}
	}
	e.notifyRefusal(jctx, runID, ref)
	return runID, nil
}

// notifyRefusal tells the summary and failure receivers that a signed plan
// was refused: reviewers who signed it are waiting for it. A delivery that
// fails waits in the outbox like any other.
func (e *Engine) notifyRefusal(ctx context.Context, runID string, ref audit.PlanRef) {
	if e.notify == nil {
		return
	}
	at := e.now()
	f := notify.Failure{Kind: notify.FailureApprovalRefused, Tenant: e.tenantURL, At: at,
		Error: fmt.Sprintf("plan %s (%s): %s", ref.File, ref.PlanHash, ref.Refused)}
	var msgs []*notify.Message
	seen := map[string]bool{}
	for _, r := range append(slices.Clone(e.cfg.Notify.Summary), e.cfg.Notify.Failures...) {
		if !seen[r] {
			seen[r] = true
			msgs = append(msgs, notify.FailureMessage(r, runID, at, f))
		}
	}
	if len(msgs) == 0 {
		return
	}
	nctx, cancel := context.WithTimeout(ctx, e.notifyTO)
	defer cancel()
	if _, err := e.notify.Send(nctx, msgs...); err != nil {
		e.log.Error("could not queue the refusal's notifications", zap.Error(err))
	}
}

// execute runs pl's work and then the follow-up (marks, notifications).
func (e *Engine) execute(ctx context.Context, pl *Planned, dropped []ItemResult, started time.Time, awaiting *notify.AwaitingApproval) (*Result, error) {
	runID := pl.Plan.RunID
	if runID == "" {
		runID = NewRunID(started)
	}
	res := &Result{RunID: runID, Plan: pl.Plan, Started: started, Awaiting: awaiting}
	log := e.log.With(zap.String("run_id", res.RunID))
	finish := func(result string, err error) (*Result, error) {
		// The API clients after the tokens, with their own blocks (see
		// apiclients.go).
		if cerr := e.executeClients(ctx, pl, res, err, log); cerr != nil {
			err = errors.Join(err, cerr)
			if result == RunSuccess {
				result = RunFailed
			}
		}
		if cerr := e.clientFollowUp(outerContext(ctx), pl, res, log); cerr != nil { // clientgrace.go
			err = errors.Join(err, cerr)
			if result == RunSuccess {
				result = RunFailed
			}
		}
		res.Items = append(res.Items, dropped...)
		for _, d := range dropped {
			e.metrics.AddAction(d.Item.Policy, d.Item.Action, MetricSkipped)
		}
		res.Finished = e.now()
		// Before the follow-up: the failure alert names what is not in
		// effect, and no owner is told again of a change that did not
		// happen.
		if perr := e.settleProofs(context.WithoutCancel(ctx), pl, res, log); perr != nil { // proof.go
			err = errors.Join(err, perr)
			if result == RunSuccess {
				result = RunFailed
			}
		}
		if ferr := e.followUp(outerContext(ctx), pl, res, err, log); ferr != nil {
			err = errors.Join(err, ferr)
			if result == RunSuccess {
				result = RunFailed
			}
		}
		e.metrics.ObserveRun(result, res.Finished, res.Finished.Sub(res.Started))
		return res, err
	}
	block := func(outcome Outcome, detail string) {
		for _, w := range pl.work {
			res.Items = append(res.Items, ItemResult{Item: w.item, Outcome: outcome, Detail: detail})
			e.metrics.AddAction(w.item.Policy, w.item.Action, MetricSkipped)
		}
	}

	if pl.Err != nil {
		block(OutcomeBlocked, pl.Err.Error())
		log.Error("run blocked: incomplete data", zap.Error(pl.Err))
		return finish(RunFailed, pl.Err)
	}
	if pl.clients != nil && pl.clients.err != nil && len(pl.work) > 0 {
		// Incomplete data stops every mutation of the run, not only the
		// resource whose listing failed: a tenant that answers one listing
		// wrongly is not trusted with the other. Both reports stay whole.
		// executeClients reports the listing's error for the run.
		block(OutcomeBlocked, "blocked: the API client listing is incomplete, and incomplete data stops every change of the run: "+pl.clients.err.Error())
		log.Error("run blocked: the API client listing is incomplete", zap.Error(pl.clients.err))
		return finish(RunFailed, nil)
	}
	if tripped := pl.Blocking(); len(tripped) > 0 {
		for _, g := range tripped {
			e.metrics.AddGuardrailTrip(g.Name)
		}
		gerr := &GuardrailError{Tripped: tripped}
		block(OutcomeBlocked, gerr.Error())
		// The names only: the message with every detail is the run's
		// error, which the caller reports; a CLI user reads it once.
		names := make([]string, len(tripped))
		for i, g := range tripped {
			names[i] = g.Name
		}
		log.Warn("run blocked: guardrail tripped", zap.Strings("guardrails", names))
		return finish(RunBlocked, gerr)
	}
	// The apply of a signed plan is journaled also when nothing of it is
	// left to do: reviewers approved it, and the journal says what became
	// of every approval. (When API clients have work, their run-start names
	// the plan.)
	signed := pl.planRef != nil && len(pl.planRef.Approvals) > 0 && (pl.clients == nil || len(pl.clients.work) == 0)
	// A run that found changes not in effect journals them inside its own
	// run-start, also when it has nothing else to do (proof.go).
	proofNews := e.journal != nil && pl.Inventory != nil && pl.Inventory.proofs.toJournal()
	if len(pl.work) == 0 && len(pl.pending) == 0 && !proofNews && (!signed || e.journal == nil) {
		log.Info("nothing to do", zap.Int("items", pl.Plan.Items.Len()))
		return finish(RunSuccess, nil)
	}
	if e.journal == nil {
		err := errors.New("janitor: no journal: mutations are only made with a journal")
		block(OutcomeNotStarted, err.Error())
		return finish(RunFailed, err)
	}

	// From here on every record is written with a context that ignores
	// cancellation: the records are what makes a stop safe.
	jctx := context.WithoutCancel(ctx)
	if _, err := e.journal.Append(jctx, audit.Record{
		Kind: audit.KindRunStart, RunID: res.RunID,
		Note: fmt.Sprintf("%d actions; plan %s", len(pl.work), pl.Plan.PlanHash),
		Plan: pl.planRef,
	}); err != nil {
		jerr := &JournalError{Err: err}
		block(OutcomeNotStarted, jerr.Error())
		log.Error("journal unwritable, nothing changed", zap.Error(err))
		return finish(RunFailed, jerr)
	}
	if err := e.resolveInterrupted(jctx, res, pl, log); err != nil {
		jerr := &JournalError{Err: err}
		block(OutcomeNotStarted, jerr.Error())
		return finish(RunFailed, jerr)
	}
	if pl.Inventory != nil {
		if err := e.journalProofs(jctx, res.RunID, pl.Inventory.proofs); err != nil { // proof.go
			jerr := &JournalError{Err: err}
			block(OutcomeNotStarted, jerr.Error())
			return finish(RunFailed, jerr)
		}
	}

	log.Info("run started", zap.Int("actions", len(pl.work)), zap.Int("dropped", len(dropped)),
		zap.Int("recovered", len(res.Recovered)), zap.String("plan_hash", pl.Plan.PlanHash))
	var pr *proofs
	if pl.Inventory != nil {
		pr = pl.Inventory.proofs
	}
	items, runErr := e.mutateAll(ctx, res.RunID, pl.work, pr, log)
	res.Items = items

	applied, gone, failed := res.Count(OutcomeApplied), res.Count(OutcomeGone), res.Count(OutcomeFailed)
	notStarted := res.Count(OutcomeNotStarted) + res.Count(OutcomeRefused)
	var errs []error
	var jerr *JournalError
	if runErr != nil {
		errs = append(errs, runErr)
	}
	if failed > 0 {
		errs = append(errs, &ActionsFailedError{Failed: failed, Total: len(pl.work)})
	}
	endNote := fmt.Sprintf("applied %d, gone %d, failed %d, not started %d", applied, gone, failed, notStarted)
	if pl.Inventory != nil && pl.Inventory.proofs != nil && len(pl.Inventory.proofs.lies) > 0 {
		endNote += fmt.Sprintf(", confirmed earlier but not in effect %d", len(pl.Inventory.proofs.lies))
	}
	if !errors.As(runErr, &jerr) {
		if _, err := e.journal.Append(jctx, audit.Record{Kind: audit.KindRunEnd, RunID: res.RunID, Note: endNote}); err != nil {
			errs = append(errs, &JournalError{Err: err})
		}
	}
	err := errors.Join(errs...)
	result := RunSuccess
	if err != nil {
		result = RunFailed
	}
	log.Info("run finished", zap.Int("applied", applied), zap.Int("gone", gone),
		zap.Int("failed", failed), zap.Int("not_started", notStarted), zap.Int("dropped", len(dropped)))
	return finish(result, err)
}

// mutateAll runs the work with bounded concurrency, in plan order: one
// request per delete or patch, one bulk update per batch of expires (see
// units). A journal failure or ctx ending stops new mutations; the ones in
// flight finish.
func (e *Engine) mutateAll(ctx context.Context, runID string, ws []work, pr *proofs, log *zap.Logger) ([]ItemResult, error) {
	results := make([]ItemResult, len(ws))
	started := make([]bool, len(ws))
	stop, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	us := units(ws)
	next := make(chan []int)
	var wg sync.WaitGroup
	for range min(e.workers, len(us)) {
		wg.Go(func() {
			for u := range next {
				// Checked again here: the hand-off and a stop can race, and
				// no mutation may start after the stop.
				if stop.Err() != nil {
					continue
				}
				for _, i := range u {
					started[i] = true
				}
				var jerr error
				if len(u) == 1 && policy.Action(ws[u[0]].item.Action) != policy.ActionExpire {
					results[u[0]], jerr = e.mutate(ctx, runID, ws[u[0]], pr, log)
				} else {
					// stop: a journal failure of another unit stops
					// the tokens of a refused batch from being sent alone.
					jerr = e.mutateBulk(stop, runID, ws, u, results, pr, log)
				}
				if jerr != nil {
					cancel(jerr)
				}
			}
		})
	}
feed:
	for _, u := range us {
		select {
		case next <- u:
		case <-stop.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()

	cause := context.Cause(stop)
	detail := "not started: the run stopped"
	if cause != nil {
		detail = "not started: " + cause.Error()
	}
	notStarted := 0
	for i := range ws {
		if started[i] {
			continue
		}
		notStarted++
		results[i] = ItemResult{Item: ws[i].item, Outcome: OutcomeNotStarted, Detail: detail}
		e.metrics.AddAction(ws[i].item.Policy, ws[i].item.Action, MetricSkipped)
	}
	var jerr *JournalError
	switch {
	case errors.As(cause, &jerr):
		return results, jerr
	case notStarted > 0:
		log.Warn("run stopped, no new mutations", zap.Int("not_started", notStarted), zap.Error(cause))
		return results, &StoppedError{NotStarted: notStarted, Cause: cause}
	}
	return results, nil
}

// mutate performs one mutation: intent record, request, outcome record
// (and, for a change the tenant confirmed, the record awaiting its proof
// before the outcome: see storeConfirmed). The returned error is non-nil
// only for a journal failure (which must stop the run); a failed request is
// an outcome.
func (e *Engine) mutate(ctx context.Context, runID string, w work, pr *proofs, log *zap.Logger) (ItemResult, error) {
	it := w.item
	res := ItemResult{Item: it}
	log = log.With(zap.String("policy", it.Policy), zap.String("token_id", it.TokenID), zap.String("action", it.Action))

	// Defence in depth: whatever put it into the work list, the credential
	// the engine runs as is never touched.
	if pat.SameID(it.TokenID, e.clientID) || pat.SameID(w.token.ID, e.clientID) {
		res.Outcome, res.Detail = OutcomeRefused, "the token is the credential patjanitor runs as; never acted on"
		log.Error("refused to act on the own credential (a bug put it into the plan)")
		e.metrics.AddAction(it.Policy, it.Action, MetricSkipped)
		return res, nil
	}

	req := e.request(w)
	// The mutation runs detached from ctx (see Execute) but bounded.
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.mutTimeout)
	defer cancel()
	before := w.token
	if _, err := e.journal.Append(mctx, audit.Record{
		Kind: audit.KindIntent, RunID: runID, Policy: it.Policy, TokenID: it.TokenID,
		Before: &before, Request: &req,
	}); err != nil {
		res.Outcome, res.Detail = OutcomeNotStarted, "not started: the journal could not record the intent: "+err.Error()
		log.Error("journal intent failed; request not sent", zap.Error(err))
		e.metrics.AddAction(it.Policy, it.Action, MetricSkipped)
		return res, &JournalError{Err: fmt.Errorf("record intent for token %s: %w", it.TokenID, err)}
	}

	var err error
	switch policy.Action(it.Action) {
	case policy.ActionDelete:
		err = e.tenant.DeleteToken(mctx, it.TokenID)
	default:
		_, err = e.tenant.PatchToken(mctx, it.TokenID, w.ops)
	}
	var out audit.Outcome
	var metric string
	res.Outcome, res.Status, res.Detail, metric, out = mutationOutcome(it.Action, err, log)
	e.metrics.AddAction(it.Policy, it.Action, metric)
	// The outcome is written on a context of its own: a request that used up
	// the mutation's time must still get its outcome (the timeout, as a
	// failure), not leave an intent open and the run blaming the journal.
	octx, ocancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeTimeout)
	defer ocancel()
	if res.Outcome.awaitsProof() {
		e.storeConfirmed(octx, pr, []state.Confirmed{confirmedToken(it, res.Status, runID, e.now(), &w.token)}, log)
	}
	if _, jerr := e.journal.Append(octx, audit.Record{
		Kind: audit.KindOutcome, RunID: runID, Policy: it.Policy, TokenID: it.TokenID, Outcome: &out,
	}); jerr != nil {
		log.Error("journal outcome failed; stopping the run", zap.Error(jerr))
		return res, &JournalError{Err: fmt.Errorf("record outcome for token %s: %w", it.TokenID, jerr)}
	}
	return res, nil
}

// outcomeTimeout bounds the journal write of one outcome (an fsync).
const outcomeTimeout = 30 * time.Second

// mutationOutcome classifies the answer to one single-resource mutation
// (a token's or an API client's): applied, already gone (404), or failed,
// with the HTTP status, the detail, the action metric and the journal
// outcome; it logs the result. Both paths classify alike, so a 404 means
// the same in the journal and the metrics for either resource.
func mutationOutcome(action string, err error, log *zap.Logger) (o Outcome, status int, detail, metric string, out audit.Outcome) {
	var aerr *api.Error
	if errors.As(err, &aerr) {
		status = aerr.StatusCode
	}
	switch {
	case err == nil:
		o, metric = OutcomeApplied, MetricApplied
		if status == 0 {
			status = successStatus(action)
		}
		log.Info("applied")
	case errors.Is(err, api.ErrNotFound):
		o, detail, metric = OutcomeGone, "already gone (404)", MetricSkipped
		out.Error, out.AlreadyGone = detail, true
		log.Info("already gone")
	default:
		o, detail, metric = OutcomeFailed, err.Error(), MetricFailed
		out.Error = detail
		log.Warn("action failed", zap.Int("status", status), zap.Error(err))
	}
	out.Status, out.Code = string(o), status
	return o, status, detail, metric, out
}

func successStatus(action string) int {
	if policy.Action(action) == policy.ActionDelete {
		return http.StatusNoContent
	}
	return http.StatusOK
}

// request describes the HTTP request a work item sends, for the journal: an
// expire is the v1 bulk update (whose body names the token among up to 25).
func (e *Engine) request(w work) audit.Request {
	path := api.TokenPath(e.version, w.item.TokenID)
	switch policy.Action(w.item.Action) {
	case policy.ActionDelete:
		return audit.Request{Method: http.MethodDelete, Path: path}
	case policy.ActionExpire:
		return audit.Request{Method: http.MethodPatch, Path: api.BulkPath, Patch: w.ops}
	}
	return audit.Request{Method: http.MethodPatch, Path: path, Patch: w.ops}
}
