package janitor

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/state"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// CatchUpStore is what a catch-up writes; *state.Store implements it.
type CatchUpStore interface {
	RecordExecution(ctx context.Context, rec state.ExecutedPlan, forgetBefore time.Time) (prev state.ExecutedPlan, already bool, forgot int, err error)
	ProofStore
	ClientProofStore
	CatchUpSnoozes
}

// CatchUpSnoozes is what a catch-up reads and writes of the snoozes;
// *state.Store implements it.
type CatchUpSnoozes interface {
	Snoozes(ctx context.Context, includeExpired bool) ([]state.Snooze, error)
	RestoreSnooze(ctx context.Context, z state.Snooze) error
	SnoozeJournaled(ctx context.Context, z state.Snooze) error
}

// CatchUp rebuilds, from the journal's records after its anchor (an
// audit.Tail: the state store is older than the journal, restored from a
// backup), what the store lost whose loss opens a door:
//
//   - the saved plans executed (executed.go): a run-start naming an
//     approved plan (Plan.PlanHash, not refused) records its execution, or
//     the plan could be applied again, without approval, within its
//     maximum age. A run that stopped before its first request counts too
//     (the store would have taken it back): the safe direction.
//   - the changes the tenant confirmed (proof.go, clientproof.go): an
//     intent and its outcome "applied" (a token's delete, patch or expire,
//     an API client's delete or disable) become the record the run wrote
//     at its end, with its run, its time (that of the run's last record:
//     the run's end, which the journal does not hold, follows it) and
//     what was sent, so the next listing past SettleMargin checks them
//     and a run sooner skips them as awaiting proof, as it would have the
//     run's own; a not-in-effect outcome later in the tail marks the
//     record found not in effect, an in-effect or acknowledged one drops
//     it, as the runs (and `patjanitor acknowledge`) did. The records are
//     folded as the tail comes and kept within state.MaxConfirmed as the
//     store keeps them (fold).
//   - the snoozes (snooze.go): the last snooze record of each token
//     decides, as the last `snooze` or `unsnooze` did: the store's snooze
//     of the token becomes the record's (until its end, reason the
//     record's note), or a run would act on a token an operator exempted,
//     or spare one whose exemption an operator ended (an unsnooze journals
//     its own time as the end). Whether that end has passed is left to
//     each run's clock (Active), never judged here: the catch-up runs when
//     the journal opens, before any run has compared this host's clock
//     with the tenant's (clock.go): on a clock days ahead an end still
//     ahead would look passed, the snooze would not be put back, and the
//     first run after the clock was fixed would act on the exempted token.
//     A snooze
//     the store holds that was made after the record (while serve held
//     the journal, journaled later) is kept, and so is one that still owes
//     the record to the journal (a crash between its append and the
//     anchor: see owedJournaled).
//
// A record the store already holds is kept as it is (the store saw that
// run), so handing the same tail twice changes nothing more. What is not
// rebuilt is in docs/operations.md ("Backup and restore").
type CatchUp struct {
	st  CatchUpStore
	log *zap.Logger

	plans   []state.ExecutedPlan
	intents map[catchUpKey]audit.Record // the tail's intents awaiting their outcome
	folds   map[string]*fold            // the confirmed records, by resource ("" tokens, apiclient.Resource)
	err     error                       // the store could not be read (Done returns it)
	snoozes map[string]audit.Record     // the last snooze record of each token, by pat.IDKey
	// last is the time of each run's last record in the tail: a run
	// writes its records at its end (res.Finished, which the journal does
	// not hold), and this is the nearest the journal knows.
	last    map[string]time.Time
	rebuilt CatchUpCounts // what Done wrote
	// bound is the store's state.MaxConfirmed, the records the catch-up
	// keeps of each resource. A field so that the tests of the choice it
	// makes can show it on tens of records, not on 10,000 (seconds under
	// the race detector).
	bound int
}

type catchUpKey struct{ run, id, resource string }

// proofStep is what one outcome of the tail did to the record of its token
// or client: confirmed it (c is the record), or judged it (status
// StatusNotInEffect, StatusInEffect or StatusAcknowledged, by run c.RunID
// at c.At).
type proofStep struct {
	status string
	c      state.Confirmed
}

// NewCatchUp returns the catch-up of st (for audit.Options.Tail and
// Journal.Attach).
func NewCatchUp(st CatchUpStore, log *zap.Logger) *CatchUp {
	if log == nil {
		log = zap.NewNop()
	}
	return &CatchUp{st: st, log: log, intents: map[catchUpKey]audit.Record{}, folds: map[string]*fold{},
		snoozes: map[string]audit.Record{}, last: map[string]time.Time{}, bound: state.MaxConfirmed}
}

// Record implements audit.Tail.
func (cu *CatchUp) Record(r audit.Record) {
	key := catchUpKey{r.RunID, r.TokenID, r.Resource}
	cu.Saw(r)
	switch {
	case r.Kind == audit.KindRunStart && r.Plan != nil && r.Plan.PlanHash != "" && r.Plan.Refused == "":
		// The plan's own time is not journaled; the run's is later, so the
		// record is kept at least as long as the plan can be applied.
		cu.plans = append(cu.plans, state.ExecutedPlan{PlanHash: r.Plan.PlanHash, RunID: r.RunID, At: r.Time, GeneratedAt: r.Time, File: r.Plan.File})
	case r.Kind == audit.KindIntent:
		cu.intents[key] = r
	case r.Kind == audit.KindSnooze && r.TokenID != "" && r.Until != nil:
		cu.snoozes[pat.IDKey(r.TokenID)] = r
	case r.Kind == audit.KindOutcome && r.Outcome != nil:
		in := cu.intents[key]
		delete(cu.intents, key)
		switch status := r.Outcome.Status; status {
		case string(OutcomeApplied), string(OutcomeGone):
			// A 404 (gone) is recorded for proof like a success
			// (storeProofs): folded as one.
			if c, ok := confirmedOf(in, r); ok {
				cu.step(proofStep{status: string(OutcomeApplied), c: c})
			}
		case StatusNotInEffect, StatusInEffect, StatusAcknowledged:
			cu.step(proofStep{status: status, c: state.Confirmed{TokenID: r.TokenID, Resource: r.Resource, RunID: r.RunID, At: r.Time}})
		}
	}
}

// Saw notes the time of r for its run (last) without taking r in: a
// catch-up fed only some of the journal's records (`state repair`'s, of
// the records it moved) dates what it rebuilds by the run's last record
// all the same, as the catch-up of the whole tail does.
func (cu *CatchUp) Saw(r audit.Record) {
	if r.RunID != "" && r.Time.After(cu.last[r.RunID]) {
		cu.last[r.RunID] = r.Time
	}
}

// confirmedOf is the record of a change the tenant confirmed, as the run's
// storeProofs or storeClientProofs wrote it, from its intent and outcome
// (false: not a change whose proof is awaited).
func confirmedOf(in, out audit.Record) (state.Confirmed, bool) {
	if in.Kind != audit.KindIntent || in.Request == nil {
		return state.Confirmed{}, false
	}
	action := actionOf(in)
	c := state.Confirmed{TokenID: in.TokenID, Resource: in.Resource, Policy: in.Policy, Action: string(action),
		RunID: in.RunID, Code: out.Outcome.Code, At: out.Time}
	switch in.Resource {
	case apiclient.Resource:
		if in.Client != nil {
			c.Name = untrusted.ClipID(in.Client.Name) // names it in `patjanitor unproven`
		}
		switch action {
		case policy.ActionDelete:
		case policy.ActionDisable:
			if in.Client != nil {
				c.Before = &state.Shown{Modified: in.Client.Modified}
			}
		default:
			return state.Confirmed{}, false // an enable: not awaiting proof
		}
	case "":
		if in.Before != nil {
			c.OwnerID = untrusted.ClipID(in.Before.Owner.ID)
		}
		if action != policy.ActionDelete {
			c.Patch = provableOps(in.Request.Patch)
			if in.Before != nil {
				c.Before = shownBefore(in.Before, c.Patch)
			}
		}
	default:
		return state.Confirmed{}, false
	}
	return c, true
}

// actionOf is the action an intent's request carries out: the inverse of
// Engine.request and ClientRequest. An expire is the bulk update or, in a
// journal an earlier version wrote, a PATCH of the token setting
// /expirationDate (no patch action touches it).
func actionOf(in audit.Record) policy.Action {
	req := in.Request
	_, expires := expirationOf(req.Patch)
	switch {
	case req.Method == http.MethodDelete:
		return policy.ActionDelete
	case in.Resource == apiclient.Resource && slices.Equal(req.Patch, api.EnabledPatch(false)):
		return policy.ActionDisable
	case in.Resource == apiclient.Resource:
		return "enable"
	case req.Path == api.BulkPath || expires:
		return policy.ActionExpire
	}
	return policy.ActionPatch
}

// Done implements audit.Tail: it writes what the tail rebuilt.
func (cu *CatchUp) Done(ctx context.Context) error {
	plans := 0
	for _, p := range cu.plans {
		_, already, _, err := cu.st.RecordExecution(ctx, p, time.Time{})
		if err != nil {
			return fmt.Errorf("rebuild the execution of plan %s by run %s: %w", p.PlanHash, p.RunID, err)
		}
		if !already {
			plans++
		}
	}
	if cu.err != nil {
		return fmt.Errorf("rebuild the confirmed changes: %w", cu.err)
	}
	tokens, err := cu.write(ctx, cu.folds[""], cu.st.UpdateConfirmed, "token")
	if err != nil {
		return fmt.Errorf("rebuild the confirmed token changes: %w", err)
	}
	clients, err := cu.write(ctx, cu.folds[apiclient.Resource], cu.st.UpdateConfirmedClients, "API client")
	if err != nil {
		return fmt.Errorf("rebuild the confirmed API client changes: %w", err)
	}
	snoozes, err := cu.snoozesDone(ctx)
	if err != nil {
		return fmt.Errorf("rebuild the snoozes: %w", err)
	}
	cu.rebuilt = CatchUpCounts{Plans: plans, Tokens: tokens, Clients: clients, Snoozes: snoozes}
	if plans+tokens+clients+snoozes > 0 {
		cu.log.Warn("the state store is older than the journal (restored from a backup?): rebuilt from the journal's records after its anchor what it lost",
			zap.Int("executed_plans", plans), zap.Int("confirmed_token_changes", tokens), zap.Int("confirmed_api_client_changes", clients),
			zap.Int("snoozes", snoozes))
	}
	return nil
}

// CatchUpCounts are the records a catch-up wrote: executed plans,
// confirmed token and API client changes (written or dropped), snoozes.
type CatchUpCounts struct {
	Plans, Tokens, Clients, Snoozes int
}

// Total is the sum of the counts.
func (c CatchUpCounts) Total() int { return c.Plans + c.Tokens + c.Clients + c.Snoozes }

// Rebuilt returns what Done wrote (`state repair` reports it).
func (cu *CatchUp) Rebuilt() CatchUpCounts { return cu.rebuilt }

// snoozesDone writes the snoozes the tail's last snooze record of each
// token says (see CatchUp), ended or not: it returns how many it wrote.
func (cu *CatchUp) snoozesDone(ctx context.Context) (int, error) {
	if len(cu.snoozes) == 0 {
		return 0, nil
	}
	all, err := cu.st.Snoozes(ctx, true)
	if err != nil {
		return 0, err
	}
	stored := make(map[string]state.Snooze, len(all))
	for _, z := range all {
		stored[pat.IDKey(z.TokenID)] = z
	}
	keys := make([]string, 0, len(cu.snoozes))
	for k := range cu.snoozes {
		keys = append(keys, k)
	}
	slices.Sort(keys) // one order, whatever the map's
	n := 0
	for _, k := range keys {
		r := cu.snoozes[k]
		old, had := stored[k]
		if had {
			done, err := cu.owedJournaled(ctx, old, r)
			if err != nil {
				return n, err
			}
			if done {
				continue
			}
		}
		if had && (old.CreatedAt.After(r.Time) || old.Until.Equal(*r.Until)) {
			// Made after the record (the newer word), or the store has
			// this snooze (it saw the put).
			continue
		}
		reason := r.Note
		if reason == "" {
			reason = fmt.Sprintf("rebuilt from journal record %d", r.Seq)
		}
		z := state.Snooze{TokenID: r.TokenID, Until: r.Until.UTC(), Reason: reason, CreatedAt: r.Time}
		if err := cu.st.RestoreSnooze(ctx, z); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// owedJournaled handles a tail whose last snooze record r of a token is
// one the store's snooze z still owes to the journal (one of z.Pending, or
// z itself while flagged): a run journaling them (journalSnoozes) died
// after that append and before the anchor after it. The store is then
// ahead of the journal, not behind: z, and any owed after r, are newer
// decisions, which restoring r would overwrite unjournaled. The owed ones
// up to r are recorded as journaled (journalSnoozes appends in that order)
// and z stays; true when r was such a record.
func (cu *CatchUp) owedJournaled(ctx context.Context, z state.Snooze, r audit.Record) (bool, error) {
	owed := z.Owed()
	last := -1
	for i, y := range owed {
		if y.Until.Equal(*r.Until) && ReasonNote(y.Reason, y.By) == r.Note {
			last = i
		}
	}
	if last < 0 {
		return false, nil
	}
	for _, y := range owed[:last+1] {
		if err := cu.st.SnoozeJournaled(ctx, y); err != nil {
			return false, err
		}
	}
	return true, nil
}

// fold is the store's confirmed records of one resource with the tail's
// steps applied as they come, in journal order, as the runs applied them:
// only these records, not the steps, are held, and no more of them than
// twice state.MaxConfirmed (see evict), so a tail of months costs the
// memory of the records the store keeps, not of every change in it.
type fold struct {
	bound   int               // the records kept (CatchUp.bound)
	held    map[string]bool   // the keys the store holds
	recs    map[string]folded // by pat.IDKey
	touched map[string]string // key -> id of the records the tail changed
}

// folded is a record and, for each of its times the tail set, the run it
// comes from: a run writes its records at its end (res.Finished), which the
// journal does not hold; the nearest it knows, the run's last record, is
// known only at the end of the tail (Done), which then sets them.
type folded struct {
	c                        state.Confirmed
	atRun, stillRun, seenRun string
}

// step applies one step of the tail to the records of its resource. The
// first reads them from the store: Record has no context and no error,
// and the store is read once, only for a tail with steps; a failure waits
// for Done.
func (cu *CatchUp) step(s proofStep) {
	var read func(context.Context) ([]state.Confirmed, error)
	switch s.c.Resource {
	case "":
		read = cu.st.ConfirmedMutations
	case apiclient.Resource:
		read = cu.st.ConfirmedClientMutations
	default:
		return
	}
	f := cu.folds[s.c.Resource]
	if f == nil {
		stored, err := read(context.Background())
		if err != nil {
			if cu.err == nil {
				cu.err = err
			}
			return
		}
		f = &fold{bound: cu.bound, held: make(map[string]bool, len(stored)), recs: make(map[string]folded, len(stored)), touched: map[string]string{}}
		for _, c := range stored {
			k := pat.IDKey(c.TokenID)
			f.held[k] = true
			f.recs[k] = folded{c: c}
		}
		cu.folds[s.c.Resource] = f
	}
	f.apply(s)
	if len(f.recs) > 2*f.bound {
		f.evict(cu.last)
	}
}

// apply is what the runs did with one outcome (storeProofs,
// recordWrites, judgeProofs).
func (f *fold) apply(s proofStep) {
	k := pat.IDKey(s.c.TokenID)
	old, ok := f.recs[k]
	switch s.status {
	case string(OutcomeApplied):
		if ok && old.c.RunID == s.c.RunID {
			return // the store saw this run
		}
		n := folded{c: s.c, atRun: s.c.RunID}
		if ok && old.c.Unproven() {
			// A change sent again keeps what the listings found.
			n.c.StillListed, n.c.Checks, n.c.LastSeen, n.c.LastRun = old.c.StillListed, old.c.Checks, old.c.LastSeen, old.c.LastRun
			n.stillRun, n.seenRun = old.stillRun, old.seenRun
		}
		f.recs[k] = n
	case StatusNotInEffect:
		if !ok || old.c.LastRun == s.c.RunID {
			return
		}
		at := s.c.At
		if old.c.StillListed == nil {
			old.c.StillListed, old.stillRun = &at, s.c.RunID
		}
		old.c.Checks++
		old.c.LastSeen, old.c.LastRun, old.seenRun = &at, s.c.RunID, s.c.RunID
		f.recs[k] = old
	case StatusInEffect, StatusAcknowledged:
		if !ok {
			return
		}
		delete(f.recs, k)
	}
	f.touched[k] = s.c.TokenID
}

// write sets the times the tail left to its runs' ends, keeps the records
// within state.MaxConfirmed and writes those the tail changed; it returns
// how many.
func (cu *CatchUp) write(ctx context.Context, f *fold, update func(context.Context, []state.Confirmed, []string) (int, error), noun string) (int, error) {
	if f == nil || len(f.touched) == 0 {
		return 0, nil
	}
	for k, r := range f.recs {
		if _, ok := f.touched[k]; !ok {
			continue
		}
		r.c.At = runEnd(cu.last, r.atRun, r.c.At)
		if r.c.StillListed != nil {
			t := runEnd(cu.last, r.stillRun, *r.c.StillListed)
			r.c.StillListed = &t
		}
		if r.c.LastSeen != nil {
			t := runEnd(cu.last, r.seenRun, *r.c.LastSeen)
			r.c.LastSeen = &t
		}
		f.recs[k] = r
	}
	if n := f.evict(cu.last); n > 0 {
		cu.log.Warn("the store of confirmed changes awaiting proof is full: the oldest rebuilt from the journal were dropped unchecked",
			zap.String("of", noun), zap.Int("dropped", n), zap.Int("bound", f.bound))
	}
	var put []state.Confirmed
	var drop []string
	for k, id := range f.touched {
		if r, ok := f.recs[k]; ok {
			put = append(put, r.c)
		} else {
			drop = append(drop, id)
		}
	}
	slices.SortFunc(put, func(a, b state.Confirmed) int { return a.At.Compare(b.At) })
	if _, err := update(ctx, put, drop); err != nil {
		return 0, err
	}
	return len(f.touched), nil
}

// runEnd is when run wrote its records, as near as the tail knows: the time
// of its last record in last; t when run is none of the tail's.
func runEnd(last map[string]time.Time, run string, t time.Time) time.Time {
	if e, ok := last[run]; ok && run != "" {
		return e
	}
	return t
}

// evict keeps the records within state.MaxConfirmed, making the store's
// choice (state.UpdateConfirmed: the oldest not found not in effect go
// first) before anything is written: a tail of months (a backup that old)
// rebuilds far more records than the store keeps, and writing them all for
// the store to evict would cost minutes (200,000 deletes in one bolt
// transaction take about a minute) and the memory of them all. An evicted record
// the store holds is dropped (touched, not in recs); one it does not hold
// is not written. It returns how many it evicted.
//
// A record is dated as its run stored it, at the run's end: last holds the
// time of each run's last record seen so far, the same for all the records
// of one run, later for a later run, so that the records of one run go in
// the order of their ids, as the store evicted them, and not in that of
// their outcomes (mid-tail the times the tail set are not set yet, see
// folded). Ordered by their outcomes instead, records of one run that the
// store kept would go, and with them a later finding that one was not in
// effect.
func (f *fold) evict(last map[string]time.Time) int {
	n := len(f.recs) - f.bound
	if n <= 0 {
		return 0
	}
	keys := make([]string, 0, len(f.recs))
	for k := range f.recs {
		keys = append(keys, k)
	}
	at := func(r folded) time.Time { return runEnd(last, r.atRun, r.c.At) }
	slices.SortFunc(keys, func(a, b string) int {
		ra, rb := f.recs[a], f.recs[b]
		if ra.c.Unproven() != rb.c.Unproven() {
			if ra.c.Unproven() {
				return 1
			}
			return -1
		}
		if c := at(ra).Compare(at(rb)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	for _, k := range keys[:n] {
		if f.held[k] {
			f.touched[k] = f.recs[k].c.TokenID
		} else {
			delete(f.touched, k)
		}
		delete(f.recs, k)
	}
	return n
}
