package janitor_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/notify/notifytest"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/state"
)

// A saved plan is recorded as executed only by a run that executes it: an
// apply whose listing fails sends nothing and leaves the plan usable (serve
// retries it at its next run). The apply that executes it records it with
// its run id; a further apply is refused before anything is listed (the
// tenant receives no request at all) with an *ExecutedError. 31 days later
// a new plan's record drops the old one, which is refused by its age.
func TestExecutedPlanRecordedOnlyWhenItRuns(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, enforceDeleteStale, envOpts{})
	e.addStale("s", 2, 1)
	st, err := state.Open(filepath.Join(t.TempDir(), state.FileName), state.Options{Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	eng := e.engine(func(o *janitor.Options) { o.Executed = st })
	pl, err := eng.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	saved := pl.Plan

	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, Status: 500, Times: 100})
	if _, err := eng.ApplyPlan(ctx, saved, janitor.ApplyOptions{}); err == nil {
		t.Fatal("ApplyPlan with a failing listing succeeded")
	}
	e.sim.ClearFaults()
	if _, found, err := st.ExecutedPlan(ctx, saved.PlanHash); err != nil || found {
		t.Fatalf("a run that listed nothing recorded the plan: %v %v", found, err)
	}
	if m := e.mutations(); len(m) != 0 {
		t.Fatalf("sent %v", m)
	}

	res, err := eng.ApplyPlan(ctx, saved, janitor.ApplyOptions{})
	if err != nil || res.Count(janitor.OutcomeApplied) != 2 {
		t.Fatalf("ApplyPlan: %v, %+v", err, res)
	}
	rec, found, err := st.ExecutedPlan(ctx, saved.PlanHash)
	if err != nil || !found || rec.RunID != res.RunID || !rec.At.Equal(e.clock.Now()) || !rec.GeneratedAt.Equal(saved.GeneratedAt) {
		t.Fatalf("record %+v %v %v, want run %s", rec, found, err, res.RunID)
	}

	before := len(e.sim.Requests())
	_, err = eng.ApplyPlan(ctx, saved, janitor.ApplyOptions{})
	var xerr *janitor.ExecutedError
	if !errors.As(err, &xerr) || !errors.Is(err, janitor.ErrPlanRejected) || xerr.Earlier.RunID != res.RunID ||
		!strings.Contains(err.Error(), "make a new plan and have it approved") {
		t.Fatalf("second ApplyPlan: %v", err)
	}
	if n := len(e.sim.Requests()); n != before {
		t.Fatalf("the refused plan sent %d requests", n-before)
	}

	e.clock.Advance(31 * day)
	e.addStale("t", 1, 1)
	eng = e.engine(func(o *janitor.Options) { o.Executed = st })
	next, err := eng.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.ApplyPlan(ctx, next.Plan, janitor.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := st.ExecutedPlan(ctx, saved.PlanHash); found {
		t.Fatal("the record of a plan older than any accepted age was kept")
	}
	_, err = eng.ApplyPlan(ctx, saved, janitor.ApplyOptions{MaxAge: janitor.MaxPlanAgeLimit})
	if !errors.Is(err, janitor.ErrPlanRejected) || !strings.Contains(err.Error(), "older than the maximum") {
		t.Fatalf("the forgotten plan: %v, want refused by its age", err)
	}
	_, err = eng.ApplyPlan(ctx, saved, janitor.ApplyOptions{MaxAge: janitor.MaxPlanAgeLimit + 1})
	if !errors.Is(err, janitor.ErrPlanRejected) || !strings.Contains(err.Error(), "remembers which plans were executed") {
		t.Fatalf("a maximum age beyond the records: %v", err)
	}
}

// A run blocked by a guardrail that trips against the fresh listing (the
// tenant shrank: the plan's deletes became a larger share) sends nothing
// and does not consume the plan.
func TestExecutedPlanNotRecordedWhenBlocked(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, strings.Replace(enforceDeleteStale, noLimits, "limits: {maxActionsPerRun: 0, maxActionsPercent: 50, maxActionsPerOwner: 0}\n", 1), envOpts{})
	e.addStale("s", 2, 1)
	e.add("fresh-1", "o1", "fresh-1", 10*day, day)
	e.add("fresh-2", "o2", "fresh-2", 10*day, day)
	st, err := state.Open(filepath.Join(t.TempDir(), state.FileName), state.Options{Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	eng := e.engine(func(o *janitor.Options) { o.Executed = st })
	pl, err := eng.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.sim.Remove("fresh-1")
	e.sim.Remove("fresh-2")
	if _, err := eng.ApplyPlan(ctx, pl.Plan, janitor.ApplyOptions{}); !janitor.IsRefusal(err) {
		t.Fatalf("ApplyPlan: %v, want the guardrail", err)
	}
	if m := e.mutations(); len(m) != 0 {
		t.Fatalf("sent %v", m)
	}
	if _, found, err := st.ExecutedPlan(ctx, pl.Plan.PlanHash); err != nil || found {
		t.Fatalf("a blocked run recorded the plan: %v %v", found, err)
	}
}

// A run that recorded the plan and then sent nothing (its journal refused
// the run-start: a full disk) did not execute it: the record is taken back,
// and the plan applies once the journal works, without a new approval (serve
// keeps such a plan in approved/ for its next run, which must not refuse it
// as executed). The first attempt sends no mutation and journals nothing;
// the second deletes both tokens, journals them and records its own run.
func TestExecutedPlanNotConsumedWhenNothingWasSent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, enforceDeleteStale, envOpts{})
	ids := e.addStale("s", 2, 1)
	st, err := state.Open(filepath.Join(t.TempDir(), state.FileName), state.Options{Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	pl, err := e.engine(func(o *janitor.Options) { o.Executed = st }).Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	saved := pl.Plan

	full := newFailingJournal(e.journal, 0)
	res, err := e.engine(func(o *janitor.Options) { o.Executed = st; o.Journal = full }).ApplyPlan(ctx, saved, janitor.ApplyOptions{})
	var jerr *janitor.JournalError
	if !errors.As(err, &jerr) || res == nil || res.Count(janitor.OutcomeNotStarted) != 2 {
		t.Fatalf("ApplyPlan with an unwritable journal: %v, %+v", err, res)
	}
	e.requireNoMutations()
	if n := len(e.journalRecords()); n != 0 {
		t.Fatalf("the journal holds %d records after a run it refused", n)
	}
	if rec, found, err := st.ExecutedPlan(ctx, saved.PlanHash); err != nil || found {
		t.Fatalf("a run that sent nothing left the plan recorded as executed: %+v %v %v", rec, found, err)
	}

	res, err = e.engine(func(o *janitor.Options) { o.Executed = st }).ApplyPlan(ctx, saved, janitor.ApplyOptions{})
	if err != nil || res.Count(janitor.OutcomeApplied) != 2 {
		t.Fatalf("ApplyPlan once the journal works: %v, %+v", err, res)
	}
	if got := deletedIDs(e.sim.Requests()); len(got) != 2 || got[ids[0]] != 1 || got[ids[1]] != 1 {
		t.Fatalf("deletes %v, want %v once each", got, ids)
	}
	out := map[string]string{}
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindOutcome && r.RunID == res.RunID {
			out[r.TokenID] = r.Outcome.Status
		}
	}
	if len(out) != 2 || out[ids[0]] != string(janitor.OutcomeApplied) || out[ids[1]] != string(janitor.OutcomeApplied) {
		t.Fatalf("journal outcomes of run %s: %v", res.RunID, out)
	}
	if rec, found, err := st.ExecutedPlan(ctx, saved.PlanHash); err != nil || !found || rec.RunID != res.RunID {
		t.Fatalf("the executing run's record: %+v %v %v", rec, found, err)
	}
}

// The owner lookup fails at apply time (the identities endpoint answers 429
// until the client gives up): a policy with owner conditions matches nothing
// then, and the plan's deletes of tokens whose owner left were dropped as
// "no policy matches the token now", the plan recorded as executed with
// nothing sent, and its next apply refused: the reviewers had to approve it
// again for a transient error. Now the run is blocked as on incomplete
// data: nothing sent, nothing journaled, the plan not recorded; with the
// lookup working again it deletes the token once, journals it and records
// the plan.
func TestHostileOwnerLookupFailureDoesNotConsumePlan(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, noLimits+`owners: {lookup: true}
policies:
  - name: deleted-owner
    mode: enforce
    match: {ownerMissing: true}
    action: delete
`, envOpts{})
	const owner = "da7eda7eda7eda7eda7eda7eda7eda7e"
	e.sim.AddIdentity(idnsim.Identity{ID: owner, Name: "Dave", Email: "dave@example.com", IdentityState: "ACTIVE"})
	e.add("tok-dave", owner, "d", 10*day, day)
	e.add("tok-gone", "0000000000000000000000000000dead", "g", 10*day, day)
	st, err := state.Open(filepath.Join(t.TempDir(), state.FileName), state.Options{Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	eng := e.engine(func(o *janitor.Options) { o.Executed = st })
	pl, err := eng.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(pl.Plan.Pending()); n != 1 {
		t.Fatalf("plan of %d pending items, want the delete of tok-gone", n)
	}
	saved := pl.Plan

	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListPublicIdentities, Status: 429, Times: 1000})
	res, err := eng.ApplyPlan(ctx, saved, janitor.ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "owner lookup failed") || res == nil || res.Count(janitor.OutcomeBlocked) != 1 {
		t.Fatalf("ApplyPlan with a failing owner lookup: %v, %+v", err, res)
	}
	e.requireNoMutations()
	if n := len(e.journalRecords()); n != 0 {
		t.Fatalf("the journal holds %d records after a run that sent nothing", n)
	}
	if rec, found, err := st.ExecutedPlan(ctx, saved.PlanHash); err != nil || found {
		t.Fatalf("a run that sent nothing recorded the plan as executed: %+v %v %v", rec, found, err)
	}

	e.sim.ClearFaults()
	res, err = eng.ApplyPlan(ctx, saved, janitor.ApplyOptions{})
	if err != nil || res.Count(janitor.OutcomeApplied) != 1 {
		t.Fatalf("ApplyPlan with the lookup working: %v, %+v", err, res)
	}
	if got := deletedIDs(e.sim.Requests()); len(got) != 1 || got["tok-gone"] != 1 {
		t.Fatalf("deleted %v, want tok-gone once", got)
	}
	var outcomes []string
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindOutcome {
			outcomes = append(outcomes, r.RunID+" "+r.TokenID+" "+r.Outcome.Status)
		}
	}
	if want := res.RunID + " tok-gone " + string(janitor.OutcomeApplied); len(outcomes) != 1 || outcomes[0] != want {
		t.Fatalf("journal outcomes %v, want %q", outcomes, want)
	}
	if rec, found, err := st.ExecutedPlan(ctx, saved.PlanHash); err != nil || !found || rec.RunID != res.RunID {
		t.Fatalf("the executing run's record: %+v %v %v", rec, found, err)
	}
}

// The same for a plan of grace items only (a policy with owner conditions
// and a grace period: the plan marks the tokens and warns their owners).
// With the owner lookup failing, the fresh decision of that policy matches
// nothing, and the plan's held items were left out without a word: the run
// had nothing left, journaled the signed plan as executed, recorded it, and
// nobody was warned; serve settled it as applied with nothing done. Now the
// run is blocked as on incomplete data: no mark, no warning, no journal
// record, the plan not recorded; with the lookup working again it marks the
// token, warns its owner and records the plan.
func TestHostileOwnerLookupFailureDoesNotConsumeGracePlan(t *testing.T) {
	ctx := context.Background()
	g := newGraceEnv(t, ownerGraceConfig)
	g.sim.AddIdentity(idnsim.Identity{ID: "bob", Name: "Bob", Email: "bob@example.com", IdentityState: "INACTIVE_LONG_TERM"})
	g.add("tok-bob", "bob", "b", 10*day, day)
	eng := g.engine(func(o *janitor.Options) { o.Executed = g.st })
	pl, err := eng.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := pl.Plan.Items.Len(); n != 1 || pl.Plan.Items.At(0).Mode != plan.ModeGrace {
		t.Fatalf("plan of %d items, want tok-bob held in grace", n)
	}
	saved := pl.Plan
	// As serve applies a signed plan: the run-start names it and its approvals.
	ref := &audit.PlanRef{File: "grace.plan.json", PlanHash: saved.PlanHash, Approvals: []audit.Approval{{Principal: "alice", Fingerprint: "SHA256:a"}}}

	g.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListPublicIdentities, Status: 429, Times: 1000})
	res, err := eng.ApplyPlan(ctx, saved, janitor.ApplyOptions{Plan: ref})
	if err == nil || !strings.Contains(err.Error(), "owner lookup failed") || !strings.Contains(err.Error(), "inactive-owner") || res == nil || !res.NothingSent() {
		t.Fatalf("ApplyPlan with a failing owner lookup: %v, %+v", err, res)
	}
	g.requireNoMutations()
	if n := len(g.journalRecords()); n != 0 {
		t.Fatalf("the journal holds %d records after a run that did nothing", n)
	}
	if rec, found, err := g.st.ExecutedPlan(ctx, saved.PlanHash); err != nil || found {
		t.Fatalf("a run that did nothing recorded the plan as executed: %+v %v %v", rec, found, err)
	}
	if m := g.marks(); len(m) != 0 {
		t.Fatalf("marks %v after a blocked run", m)
	}
	if d := notifytest.OfKind(g.hook.Take(), notify.KindDigest); len(d) != 0 {
		t.Fatalf("%d digests after a blocked run", len(d))
	}

	g.sim.ClearFaults()
	res, err = eng.ApplyPlan(ctx, saved, janitor.ApplyOptions{Plan: ref})
	if err != nil {
		t.Fatalf("ApplyPlan with the lookup working: %v", err)
	}
	g.requireNoMutations()
	if m, ok := g.marks()["tok-bob"]; !ok || m.WarnedAt == nil {
		t.Fatalf("mark %+v (found %v), want tok-bob marked and bob warned", m, ok)
	}
	if d := notifytest.OfKind(g.hook.Take(), notify.KindDigest); len(d) != 1 {
		t.Fatalf("%d digests, want bob's", len(d))
	}
	var starts []string
	for _, r := range g.journalRecords() {
		if r.Kind == audit.KindRunStart && r.Plan != nil {
			starts = append(starts, r.RunID+" "+r.Plan.PlanHash)
		}
	}
	if want := res.RunID + " " + saved.PlanHash; len(starts) != 1 || starts[0] != want {
		t.Fatalf("journal run-starts %v, want %q", starts, want)
	}
	if rec, found, err := g.st.ExecutedPlan(ctx, saved.PlanHash); err != nil || !found || rec.RunID != res.RunID {
		t.Fatalf("the executing run's record: %+v %v %v", rec, found, err)
	}
}
