package janitor_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/plan"
)

// ownerFirstConfig gives active owners' service tokens a 30-day warning
// before their delete, and deletes every other stale token at once: the
// same mode and action, so the first in the file wins a token both match.
const ownerFirstConfig = noLimits + `owners:
  lookup: true
  fallbackEmail: iam@acme.example
notify:
  receivers:
    - name: hook
      webhook: {urlEnv: HOOK_URL, hmacSecretEnv: HOOK_KEY}
  owners: hook
  summary: [hook]
  failures: [hook]
policies:
  - name: warn-active-owners
    mode: enforce
    match: {ownerStates: [ACTIVE], unusedFor: 90d, nameMatches: "^svc-"}
    action: delete
    grace: 30d
  - name: unused-90d-delete
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
`

// A failed owner lookup made the owner-condition policy match nothing, and
// the token fell to the next policy: with the identities endpoint failing,
// the active owner's service token, which the first policy holds in a
// 30-day grace period, was deleted at once by the policy below it. The
// token's decision cannot be known without its owner: it is skipped as
// owner-unknown, nothing is sent or journaled for it, and its mark (the
// owner's warning, the deadline) is kept. A token the first policy does not
// match whatever its owner still falls to the second.
func TestHostileOwnerLookupFailureLetsNoLowerPolicyAct(t *testing.T) {
	g := newGraceEnv(t, ownerFirstConfig)
	g.sim.AddIdentity(idnsim.Identity{ID: "alice", Name: "Alice", Email: "alice@example.com", IdentityState: "ACTIVE"})
	g.add("svc-alice", "alice", "svc-alice", 400*day, 200*day)

	// Day 0: alice is warned; nothing is deleted.
	g.run()
	g.requireNoMutations()
	m0, ok := g.marks()["svc-alice"]
	if !ok || m0.Policy != "warn-active-owners" || m0.WarnedAt == nil {
		t.Fatalf("day 0 mark %+v (found %v); want warn-active-owners, alice warned", m0, ok)
	}

	// Day 7: the identities endpoint fails, and a stale token that the
	// first policy does not match (its name) is added.
	g.clock.Set(at(7))
	g.add("ci-alice", "alice", "ci-alice", 400*day, 200*day)
	g.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListPublicIdentities, Status: 500})
	res, err := g.engine().Run(context.Background(), janitor.RunInput{})
	g.sim.ClearFaults()
	if err != nil {
		t.Logf("day 7: %v", err)
	}
	if del := deletedIDs(g.mutations()); len(del) != 1 || del["ci-alice"] != 1 {
		t.Fatalf("day 7 deleted %v; want ci-alice only: svc-alice is warn-active-owners' to decide, and its owner is unknown", del)
	}
	if res == nil || res.Plan == nil {
		t.Fatal("day 7: no plan")
	}
	var skip *plan.Skipped
	for i := range res.Plan.Skipped {
		if res.Plan.Skipped[i].TokenID == "svc-alice" {
			skip = &res.Plan.Skipped[i]
		}
	}
	if skip == nil || skip.Policy != "warn-active-owners" || !strings.HasPrefix(skip.Reason, "owner-unknown: ") {
		t.Fatalf("day 7: svc-alice skipped as %+v; want owner-unknown under warn-active-owners", skip)
	}
	for _, it := range res.Plan.Items.All() {
		if it.TokenID == "svc-alice" {
			t.Errorf("day 7: plan item for svc-alice: %+v", it)
		}
	}
	for _, r := range g.journalRecords() {
		if r.TokenID == "svc-alice" && (r.Kind == audit.KindIntent || r.Kind == audit.KindOutcome) {
			t.Errorf("day 7: journal record %d: %s for svc-alice", r.Seq, r.Kind)
		}
	}
	if m, ok := g.marks()["svc-alice"]; !ok || m.Policy != m0.Policy || !m.WarnedAt.Equal(*m0.WarnedAt) || m.Deadline == nil || !m.Deadline.Equal(*m0.Deadline) {
		t.Fatalf("day 7 mark %+v (found %v); want the one of day 0: %+v", m, ok, m0)
	}
}

// The token an owner-condition policy would judge first keeps the marks of
// the other policies too: a failed lookup does not tell that it stopped
// matching the policy below, which marked it while its owner was known to
// be inactive. Removed, the next run with a working lookup marked it anew,
// warned bob again and restarted the clock.
func TestHostileOwnerLookupFailureKeepsTheLowerPolicysMark(t *testing.T) {
	g := newGraceEnv(t, ownerFirstConfig+"    grace: 7d\n") // on unused-90d-delete
	g.sim.AddIdentity(idnsim.Identity{ID: "bob", Name: "Bob", Email: "bob@example.com", IdentityState: "INACTIVE_LONG_TERM"})
	g.add("svc-bob", "bob", "svc-bob", 400*day, 200*day)

	g.run() // day 0: marked by unused-90d-delete, bob warned
	if m, ok := g.marks()["svc-bob"]; !ok || m.Policy != "unused-90d-delete" || m.WarnedAt == nil || !m.WarnedAt.Equal(t0) {
		t.Fatalf("day 0 mark %+v (found %v); want unused-90d-delete's, bob warned now", m, ok)
	}
	g.hook.Take()

	g.clock.Set(at(3))
	g.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListPublicIdentities, Status: 500})
	if _, err := g.engine().Run(context.Background(), janitor.RunInput{}); err != nil {
		t.Logf("day 3: %v", err)
	}
	g.sim.ClearFaults()
	g.requireNoMutations()
	if m, ok := g.marks()["svc-bob"]; !ok || m.Policy != "unused-90d-delete" || m.WarnedAt == nil || !m.WarnedAt.Equal(t0) {
		t.Fatalf("day 3 mark %+v (found %v); want the one of day 0", m, ok)
	}

	g.clock.Set(at(7)) // the lookup works, the deadline has passed
	g.run()
	if del := deletedIDs(g.mutations()); len(del) != 1 || del["svc-bob"] != 1 {
		t.Fatalf("day 7 deleted %v; want svc-bob, bob warned on day 0", del)
	}
}

// apply PLAN re-decides each saved item: with the owner lookup failing, the
// saved delete of unused-90d-delete lost its token to owner-unknown (the
// policy above it needs the owner). It is not dropped (that used up the
// approved plan with nothing sent): the run is blocked as on incomplete
// data, as for the items of a policy with owner conditions, and the plan
// applies once the lookup works.
func TestHostileOwnerLookupFailureBlocksApplyOfALowerPolicy(t *testing.T) {
	ctx := context.Background()
	g := newGraceEnv(t, ownerFirstConfig)
	g.sim.AddIdentity(idnsim.Identity{ID: "bob", Name: "Bob", Email: "bob@example.com", IdentityState: "INACTIVE_LONG_TERM"})
	g.add("svc-bob", "bob", "svc-bob", 400*day, 200*day)
	eng := g.engine(func(o *janitor.Options) { o.Executed = g.st })
	pl, err := eng.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p := pl.Plan.Pending(); len(p) != 1 || p[0].Policy != "unused-90d-delete" {
		t.Fatalf("plan pending %+v; want unused-90d-delete's delete of svc-bob", p)
	}
	saved := pl.Plan

	g.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListPublicIdentities, Status: 429, Times: 1000})
	res, err := eng.ApplyPlan(ctx, saved, janitor.ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "owner lookup failed") || !strings.Contains(err.Error(), "unused-90d-delete") || res == nil || res.Count(janitor.OutcomeBlocked) != 1 {
		t.Fatalf("ApplyPlan with a failing owner lookup: %v, %+v", err, res)
	}
	g.requireNoMutations()
	if n := len(g.journalRecords()); n != 0 {
		t.Fatalf("the journal holds %d records after a run that sent nothing", n)
	}
	if rec, found, err := g.st.ExecutedPlan(ctx, saved.PlanHash); err != nil || found {
		t.Fatalf("a run that sent nothing recorded the plan as executed: %+v %v %v", rec, found, err)
	}

	g.sim.ClearFaults()
	if res, err = eng.ApplyPlan(ctx, saved, janitor.ApplyOptions{}); err != nil || res.Count(janitor.OutcomeApplied) != 1 {
		t.Fatalf("ApplyPlan with the lookup working: %v, %+v", err, res)
	}
	if del := deletedIDs(g.mutations()); len(del) != 1 || del["svc-bob"] != 1 {
		t.Fatalf("deleted %v, want svc-bob once", del)
	}
}

// A token the tenant lists without an owner id (PatOwner's fields are all
// optional) has no owner to look up, so no lookup, working or not, will ever
// tell its owner conditions: they do not hold, as before owner-unknown
// skips, and the next policy decides it. Taken for owner-unknown, the token
// was skipped on every run, with a lookup that worked, as "whose lookup
// failed this run", and no policy below an owner-condition policy could
// ever act on it.
func TestHostileOwnerlessTokenIsNotHeldAsOwnerUnknown(t *testing.T) {
	e := newEnv(t, noLimits+`owners: {lookup: true}
policies:
  - name: svc-active-owners
    mode: enforce
    match: {ownerStates: [ACTIVE], unusedFor: 90d, nameMatches: "^svc-"}
    action: delete
  - name: unused-90d-delete
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
`, envOpts{})
	e.sim.AddIdentity(idnsim.Identity{ID: "alice", Name: "Alice", Email: "alice@example.com", IdentityState: "INACTIVE_LONG_TERM"})
	e.add("svc-alice", "alice", "svc-alice", 400*day, 200*day)
	e.add("svc-ownerless", "", "svc-ownerless", 400*day, 200*day)

	res, err := e.engine().Run(context.Background(), janitor.RunInput{})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, s := range res.Plan.Skipped {
		t.Errorf("skipped: %+v", s)
	}
	if del := deletedIDs(e.mutations()); len(del) != 2 || del["svc-ownerless"] != 1 || del["svc-alice"] != 1 {
		t.Fatalf("deleted %v; want svc-alice and svc-ownerless, by unused-90d-delete", del)
	}
	outcomes := map[string]string{}
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindOutcome && r.Outcome != nil {
			outcomes[r.TokenID] += r.Policy + " " + r.Outcome.Status + ";"
		}
	}
	if want := map[string]string{"svc-alice": "unused-90d-delete applied;", "svc-ownerless": "unused-90d-delete applied;"}; !reflect.DeepEqual(outcomes, want) {
		t.Fatalf("journal outcomes %v; want %v", outcomes, want)
	}
}
