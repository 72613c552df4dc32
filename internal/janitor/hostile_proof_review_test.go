package janitor_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/state"
)

// serve applies the signed plans of approved/ (ApplySigned) before its
// scheduled run. A plan whose every item was dropped at apply time (its
// tokens gone) is settled in applied/ with what became of it. While the
// delete of an unrelated token was found not in effect (the run's error
// then holds an UnprovenError), such a plan read as "nothing was executed"
// and was left in approved/ for the next run: re-applied, and journaled,
// on every run until it aged out. One undeletable token must not hold the
// reviewers' plans.
func TestHostileUnprovenDeleteDoesNotHoldApprovedPlans(t *testing.T) {
	alice, bob := newSigner(t, "alice"), newSigner(t, "bob")
	pol := approvalPolicy(t, 2, alice, bob)
	ctx := context.Background()
	p := newProofEnv(t, signedConfig)
	eng := func() *janitor.Engine { return p.engine(func(o *janitor.Options) { o.Proofs = p.st }) }
	dir := t.TempDir()
	signed := func(pl *janitor.Planned) janitor.SignedPlan {
		file, _ := savePlan(t, dir, pl.Plan, alice, bob)
		sp := janitor.SignedPlan{File: file}
		sp.Data, sp.Plan, sp.ReadErr = plan.ReadFile(file)
		return sp
	}

	// Plan 1 deletes lie-1; the proxy answers 204 and the tenant keeps it.
	p.add("lie-1", "owner-a", "old-ci", 400*day, 200*day)
	p.proxy.lie.Store(true)
	pl1, err := eng().Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s := eng().ApplySigned(ctx, janitor.RunInput{}, signed(pl1), pol); !s.Settled || s.Result != janitor.PlanApplied || s.Err != nil {
		t.Fatalf("plan 1: settlement %+v", s)
	}
	if p.proxy.fakedDeletes() != 1 || !p.present("lie-1") {
		t.Fatalf("faked %d DELETEs; want lie-1's, with the token kept", p.proxy.fakedDeletes())
	}

	// A day later lie-1 has been used (no policy deletes it any more, but
	// the listing still shows it). Plan 2 deletes stale-2, which its owner
	// deletes by hand before the plan is applied.
	tok, _ := p.sim.Token("lie-1")
	used := t0.Add(12 * time.Hour)
	tok.LastUsed = &used
	p.sim.Add(tok, "")
	p.clock.Set(t0.Add(day))
	p.add("stale-2", "owner-b", "old-ci", 400*day, 200*day)
	pl2, err := eng().Plan(ctx)
	if err != nil && !errors.As(err, new(*janitor.UnprovenError)) {
		t.Fatal(err)
	}
	if n := pl2.Plan.Items.Len(); n != 1 {
		t.Fatalf("plan 2 has %d items, want stale-2's delete", n)
	}
	sp2 := signed(pl2)
	p.sim.Remove("stale-2")

	s := eng().ApplySigned(ctx, janitor.RunInput{}, sp2, pol)
	if !s.Settled || s.Result != janitor.PlanApplied || !strings.Contains(s.Detail, "dropped 1") {
		t.Fatalf("plan 2: settlement %+v; want settled as applied (its one item dropped: the token is gone)", s)
	}
	var uerr *janitor.UnprovenError
	if !errors.As(s.Err, &uerr) || len(uerr.Unproven) != 1 || uerr.Unproven[0].Confirmed.TokenID != "lie-1" ||
		!strings.Contains(s.Detail, "1 token the tenant confirmed deleted is still listed (lie-1") {
		t.Errorf("plan 2: error %v, detail %q; want the delete of lie-1 named as not in effect", s.Err, s.Detail)
	}
	if got := withStatus(p.outcomes("lie-1"), janitor.StatusNotInEffect); len(got) != 1 {
		t.Errorf("journal outcomes for lie-1 %+v; want one %s", p.outcomes("lie-1"), janitor.StatusNotInEffect)
	}
	p.requireNoMutations() // the one DELETE was the proxy's; stale-2 was gone
	if p.proxy.fakedDeletes() != 1 {
		t.Errorf("%d DELETEs sent; want plan 1's only", p.proxy.fakedDeletes())
	}
}

// An honest tenant expires a token (bulk update, answered with the date
// sent); before the next run its owner, told of the expiry, extends it and
// uses it again. The next listing shows the owner's date: the token was
// changed after the expiry, not spared by the tenant. patjanitor judged
// the expiry "not in effect", failed the run, alarmed, and, as no policy
// expires the token any more, went on doing so on every run: records found
// not in effect end only when a listing shows the values sent. Only a
// listing that still shows the value the token had before is evidence that
// the change did not happen; one that shows a third value is not.
func TestConfirmedExpireChangedSinceByOwnerIsNoAlarm(t *testing.T) {
	p := newExpiredEnv(t)
	tok, _ := p.sim.Token("stale-1")
	if tok.ExpirationDate == nil || !tok.ExpirationDate.Equal(t0.Add(14*day)) {
		t.Fatalf("the tenant shows expirationDate %v, want %s", tok.ExpirationDate, t0.Add(14*day))
	}
	// The owner extends it by half a year and uses it.
	extended, used := t0.Add(180*day), t0.Add(2*time.Hour)
	tok.ExpirationDate, tok.LastUsed = &extended, &used
	p.sim.Add(tok, "")
	requests := len(p.sim.Requests())

	for i, at := range []time.Time{t0.Add(day), t0.Add(2 * day)} {
		p.clock.Set(at)
		res, err := p.runProof()
		if err != nil || len(res.Unproven) != 0 || len(res.Plan.Warnings) != 0 {
			t.Fatalf("run %d: %v (unproven %+v, warnings %q); want no alarm: the owner changed the token since", i+2, err, res.Unproven, res.Plan.Warnings)
		}
		if v := p.gauge("patjanitor_unproven_mutations", "action", "expire"); v != 0 {
			t.Errorf("run %d: unproven_mutations{action=expire} = %v, want 0", i+2, v)
		}
	}
	if got := withStatus(p.outcomes("stale-1"), janitor.StatusNotInEffect); len(got) != 0 {
		t.Errorf("journaled %+v: the expiry was in effect, the owner changed the date since", got)
	}
	if _, ok := p.confirmed()["stale-1"]; ok {
		t.Error("the record of the expiry is kept: the listing showed the token changed since")
	}
	if got := mutationsSince(p, requests); len(got) != 0 {
		t.Errorf("the tenant received %v after the owner's change; want nothing (no policy expires the token any more)", got)
	}
	if tok, _ := p.sim.Token("stale-1"); !tok.ExpirationDate.Equal(extended) {
		t.Errorf("expirationDate %v, want the owner's %s", tok.ExpirationDate, extended)
	}
}

// mutationsSince are the mutations the tenant received after its first n
// requests, as "METHOD path".
func mutationsSince(p *proofEnv, n int) []string {
	var out []string
	for _, r := range idnsim.Mutations(p.sim.Requests()[n:]) {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

// A record's time is the clock's when the change was confirmed. A host
// whose clock ran a year ahead (and was then corrected) left records in
// the future, and every token with one was skipped as awaiting proof
// until the clock caught up with it, a year on: "at most once per settle
// margin" became "not for a year". A confirmation later than the margin
// ahead of now says the clock went back, not that the change is recent:
// the token is acted on again (a harmless repeat, or the fix).
func TestHostileFutureConfirmationDoesNotSkipForever(t *testing.T) {
	p := newProofEnv(t, proofConfig)
	p.add("stale-1", "owner-a", "old-ci", 400*day, 200*day)
	ahead := t0.Add(365 * day)
	if _, err := p.st.UpdateConfirmed(context.Background(), []state.Confirmed{{
		TokenID: "stale-1", OwnerID: "owner-a", Policy: "unused-90d", Action: "delete", RunID: "clock-ahead", Code: 204, At: ahead,
	}}, nil); err != nil {
		t.Fatal(err)
	}
	res, err := p.runProof()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if skippedFor(res.Plan, "stale-1", string(janitor.SkipAwaitingProof)) {
		t.Errorf("stale-1 skipped as awaiting proof of a confirmation dated a year ahead")
	}
	if got := deletedIDs(p.mutations()); got["stale-1"] != 1 {
		t.Fatalf("the tenant received DELETEs %v; want stale-1's", got)
	}
	if p.present("stale-1") {
		t.Error("stale-1 is still in the tenant")
	}
	if got := withStatus(p.outcomes("stale-1"), string(janitor.OutcomeApplied)); len(got) != 1 {
		t.Errorf("journal outcomes %+v; want the delete applied", p.outcomes("stale-1"))
	}
	if c := p.confirmed()["stale-1"]; c.RunID != res.RunID || !c.At.Equal(res.Finished) {
		t.Errorf("record %+v; want this run's confirmation in place of the one from the future", c)
	}
}

// A run whose guardrail trips acts on nothing and journals nothing of its
// own, but its listing still judges the changes confirmed earlier. The
// not-in-effect outcome it journaled stood alone, under a run id with no
// run-start or run-end: `audit show` of that run printed one outcome of a
// run that, for the journal, never started, and `audit verify` did not
// count it. It is journaled inside a run-start and run-end of its own.
func TestHostileBlockedRunJournalsNotInEffectInsideItsRun(t *testing.T) {
	p := newProofEnv(t, strings.Replace(proofConfig, "maxActionsPerRun: 0", "maxActionsPerRun: 1", 1))
	p.add("lie-1", "owner-a", "old-ci", 400*day, 200*day)
	p.proxy.lie.Store(true)
	if _, err := p.runProof(); err != nil {
		t.Fatalf("run 1: %v", err)
	}
	p.addStale("more", 2, 1)
	p.clock.Set(t0.Add(day))
	res, err := p.runProof()
	var gerr *janitor.GuardrailError
	var uerr *janitor.UnprovenError
	if !errors.As(err, &gerr) || !errors.As(err, &uerr) {
		t.Fatalf("run 2: %v; want the guardrail tripped and the delete of lie-1 not in effect", err)
	}
	if p.proxy.fakedDeletes() != 1 {
		t.Errorf("%d DELETEs; want run 1's only (run 2 is blocked)", p.proxy.fakedDeletes())
	}
	p.requireNoMutations()
	var kinds []string
	for _, r := range p.journalRecords() {
		if r.RunID == res.RunID {
			kinds = append(kinds, string(r.Kind)+" "+r.TokenID)
		}
	}
	if want := []string{"run-start ", "outcome lie-1", "run-end "}; strings.Join(kinds, "|") != strings.Join(want, "|") {
		t.Errorf("run 2's journal records %q; want %q", kinds, want)
	}
	if got := withStatus(p.outcomes("lie-1"), janitor.StatusNotInEffect); len(got) != 1 || got[0].RunID != res.RunID {
		t.Errorf("journal outcomes for lie-1 %+v; want one %s in run 2", p.outcomes("lie-1"), janitor.StatusNotInEffect)
	}
}

// One token whose delete the tenant confirmed and did not make fails every
// run that lists it, but stops nothing else: the run that finds it still
// deletes the other stale tokens, journals them and tells their owners.
func TestHostileUnprovenDeleteDoesNotStopTheRest(t *testing.T) {
	p := newProofEnv(t, proofConfig)
	p.add("lie-1", "owner-a", "old-ci", 400*day, 200*day)
	p.proxy.lie.Store(true)
	if _, err := p.runProof(); err != nil {
		t.Fatalf("run 1: %v", err)
	}
	p.hook.Take()
	p.proxy.lie.Store(false)
	p.add("stale-2", "owner-b", "old-job", 400*day, 200*day)
	p.clock.Set(t0.Add(day))
	res, err := p.runProof()
	if !errors.As(err, new(*janitor.UnprovenError)) {
		t.Fatalf("run 2: %v; want the delete of lie-1 not in effect", err)
	}
	if got := deletedIDs(p.mutations()); got["stale-2"] != 1 || got["lie-1"] != 1 {
		t.Fatalf("the tenant received DELETEs %v; want stale-2's and lie-1's again", got)
	}
	if res.Count(janitor.OutcomeApplied) != 2 || len(withStatus(p.outcomes("stale-2"), string(janitor.OutcomeApplied))) != 1 {
		t.Errorf("run 2 items %+v; want both deletes applied and journaled", res.Items)
	}
	if got := noticesTo(p.hook.Take(), "owner-b"); len(got) != 1 || got[0] != "stale-2" {
		t.Errorf("notices to owner-b %v; want stale-2", got)
	}
}
