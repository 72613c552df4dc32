package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/plan"
)

// replayPolicies: an expire under approvals. An expire is what a replay
// hurts: the delete of a token already gone is dropped, but an expire
// re-matches the same token and sets its expirationDate back.
const replayPolicies = `approvals:
  allowedSignersFile: allowed_signers
  required: 2
limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 0}
policies:
  - name: expire-stale
    mode: enforce
    match: {unusedFor: 90d}
    action: expire
    expireIn: 14d
`

// bulkUpdates are the bulk updates (expires) the tenant received.
func bulkUpdates(reqs []idnsim.Request) []idnsim.Request {
	return idnsim.ByOperation(idnsim.Mutations(reqs), idnsim.OpBulkUpdateTokens)
}

// extendExpiration sets a token's expirationDate, out of band: its owner had
// the expiration legitimately extended after patjanitor expired it.
func extendExpiration(t *testing.T, sim *idnsim.Sim, id string, to time.Time) {
	t.Helper()
	tok, ok := sim.Token(id)
	if !ok {
		t.Fatalf("token %s is gone", id)
	}
	tok.ExpirationDate = &to
	sim.Add(tok, "")
}

func expirationOf(t *testing.T, sim *idnsim.Sim, id string) time.Time {
	t.Helper()
	tok, ok := sim.Token(id)
	if !ok || tok.ExpirationDate == nil {
		t.Fatalf("token %s: present %v, no expirationDate", id, ok)
	}
	return *tok.ExpirationDate
}

// A signed plan that expires a token is applied; the token's owner then has
// the expiration extended, legitimately. Applying the same signed plan again
// (apply PLAN run twice, or a copy of the plan file with its signatures)
// must not send anything: the old code re-verified the item against the
// fresh listing, found the token still matching, and set its expirationDate
// back to the planned one with no new approval. The refusal names the plan
// hash, the run that executed it and what to do, exits 1, and is journaled
// (audit show shows it).
func TestHostileSignedPlanAppliedTwice(t *testing.T) {
	e := newWF(t, replayPolicies, idnsim.Options{})
	r, _ := newReviewers(t, e.dir)
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	planFile := filepath.Join(e.dir, "plan.json")
	for _, args := range [][]string{{"plan", "--out", planFile}, {"approve", planFile, "--key", r.alice}, {"approve", planFile, "--key", r.bob}} {
		if code, _, stderr := e.run(nil, args...); code != 0 {
			t.Fatalf("%v: %d %s", args, code, stderr)
		}
	}
	_, saved, err := plan.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := e.run(nil, "apply", planFile, "--auto-approve"); code != 0 {
		t.Fatalf("first apply: %d\n%s%s", code, stdout, stderr)
	}
	if n := len(bulkUpdates(e.sim.Requests())); n != 1 {
		t.Fatalf("first apply sent %d bulk updates, want 1", n)
	}
	planned := expirationOf(t, e.sim, "stale-1")
	// An hour later: the CLI runs on the wall clock, and a token whose
	// change the tenant confirmed is left alone for janitor.SettleMargin
	// (30 minutes), until a listing can show the change in effect. A replay
	// an hour later is not.
	backdateConfirmed(t, e.state, time.Hour)
	extended := time.Now().Add(365 * wfDay).UTC().Truncate(time.Millisecond)
	extendExpiration(t, e.sim, "stale-1", extended)
	journal := filepath.Join(e.state, JournalFile)
	first := journalRuns(t, journal)
	if len(first) != 1 || first[0].Plan.Refused != "" {
		t.Fatalf("journal after the first apply: %+v", first)
	}

	// The same file again, and a copy of it with its signatures (another
	// file name, the same plan).
	copyFile := filepath.Join(e.dir, "copy.json")
	for _, f := range []string{planFile, planFile + ".sig"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(strings.Replace(f, planFile, copyFile, 1), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{planFile, copyFile} {
		code, stdout, stderr := e.run(nil, "apply", f, "--auto-approve")
		if n := len(bulkUpdates(e.sim.Requests())); n != 1 {
			t.Fatalf("apply %s again re-sent the expire (%d bulk updates); expirationDate now %s, the owner's extension was %s",
				f, n, expirationOf(t, e.sim, "stale-1"), extended)
		}
		if code != 1 || !strings.Contains(stderr, "plan "+saved.PlanHash+" was already executed, by run "+first[0].RunID+" at ") ||
			!strings.Contains(stderr, "make a new plan and have it approved") {
			t.Fatalf("apply %s again: %d\n%s%s", f, code, stdout, stderr)
		}
	}
	if n := len(bulkUpdates(e.sim.Requests())); n != 1 {
		t.Fatalf("the applies of an executed plan sent %d more bulk updates", n-1)
	}
	if m := idnsim.Mutations(e.sim.Requests()); len(m) != 1 {
		t.Fatalf("%d mutations, want the first apply's one", len(m))
	}
	if got := expirationOf(t, e.sim, "stale-1"); !got.Equal(extended) || got.Equal(planned) {
		t.Fatalf("expirationDate %s, want the extended %s kept (the plan set %s)", got, extended, planned)
	}

	// Asked to sign the executed plan again, approve refuses.
	if code, _, stderr := e.run(nil, "approve", planFile, "--key", r.mallory); code != 1 || !strings.Contains(stderr, "was already executed, by run "+first[0].RunID) || !strings.Contains(stderr, "not signed") {
		t.Fatalf("approve of the executed plan: %d %s", code, stderr)
	}
	runs := journalRuns(t, journal)
	if len(runs) != 3 {
		t.Fatalf("journal plan runs %+v, want the execution and two refusals", runs)
	}
	for _, run := range runs[1:] {
		if !strings.Contains(run.Plan.Refused, "already executed, by run "+first[0].RunID) || run.Plan.PlanHash != saved.PlanHash || len(run.Plan.Approvals) != 2 {
			t.Fatalf("refused run %+v", run.Plan)
		}
	}
	code, stdout, stderr := e.run(nil, "audit", "show", runs[2].RunID)
	if code != 0 || !strings.Contains(stdout, "already executed") || !strings.Contains(stdout, copyFile) {
		t.Fatalf("audit show of the refusal: %d\n%s%s", code, stdout, stderr)
	}
}

// Without approvals, a saved plan is executed once too, and the refusal is
// journaled (a refused apply PLAN is otherwise journaled only under
// approvals).
func TestHostileSavedPlanAppliedTwiceWithoutApprovals(t *testing.T) {
	e := newWF(t, "limits:"+strings.SplitN(replayPolicies, "limits:", 2)[1], idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	planFile := filepath.Join(e.dir, "plan.json")
	if code, _, stderr := e.run(nil, "plan", "--out", planFile); code != 0 {
		t.Fatalf("plan: %d %s", code, stderr)
	}
	if code, stdout, stderr := e.run(nil, "apply", planFile, "--auto-approve"); code != 0 {
		t.Fatalf("first apply: %d\n%s%s", code, stdout, stderr)
	}
	backdateConfirmed(t, e.state, time.Hour) // past janitor.SettleMargin
	extendExpiration(t, e.sim, "stale-1", time.Now().Add(365*wfDay))
	code, stdout, stderr := e.run(nil, "apply", planFile, "--auto-approve")
	if n := len(bulkUpdates(e.sim.Requests())); n != 1 {
		t.Fatalf("the second apply re-sent the expire: %d bulk updates, want 1", n)
	}
	if code != 1 || !strings.Contains(stderr, "was already executed") {
		t.Fatalf("second apply: %d\n%s%s", code, stdout, stderr)
	}
	runs := journalRuns(t, filepath.Join(e.state, JournalFile))
	if len(runs) != 2 || runs[0].Plan.Refused != "" || !strings.Contains(runs[1].Plan.Refused, "already executed") {
		t.Fatalf("journal plan runs %+v", runs)
	}
}

// A --max-plan-age longer than patjanitor remembers executed plans is
// refused: an older plan could otherwise run twice.
func TestApplyMaxPlanAgeBounded(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	planFile := filepath.Join(e.dir, "plan.json")
	if code, _, stderr := e.run(nil, "plan", "--out", planFile); code != 0 {
		t.Fatalf("plan: %d %s", code, stderr)
	}
	code, _, stderr := e.run(nil, "apply", planFile, "--auto-approve", "--max-plan-age", "721h")
	if code != 1 || !strings.Contains(stderr, "longer than the 720h0m0s patjanitor remembers which plans were executed") {
		t.Fatalf("apply --max-plan-age 721h: %d %s", code, stderr)
	}
	if m := e.mutations(); len(m) != 0 {
		t.Fatalf("sent %v", m)
	}
}

// serve applies a signed plan dropped into approved/ but cannot move it out
// (applied/ and rejected/ are not writable directories: a read-only volume,
// a full disk). The old code applied the plan again at every schedule until
// it aged out: each run re-sent its expires, undoing the owners' extensions
// in between, and journaled another execution. Now the second and third
// schedules refuse it as executed (journaled), send nothing, and the plan,
// which still cannot be moved, is never applied again.
func TestHostileServeReappliesWhenSettleFails(t *testing.T) {
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	stale := e.addTokens("stale", 2, 0)
	r, signers := newReviewers(t, e.dir)
	pol := "  - name: stale\n    mode: enforce\n    match:\n      nameMatches: \"^stale-\"\n      neverUsed: true\n    action: expire\n    expireIn: 14d\n"
	// Every minute: a schedule loop sleeps at most a minute at a time (it reads
	// the wall clock again on each wake), so a tick is a run only for a
	// schedule of a minute or less.
	cfgPath := e.writeConfig(withApprovals(e.configYAML("@every 1m", pol), signers, ""))
	plans := filepath.Join(e.dir, "plans")
	p := startInProcess(t, e, cfgPath, serveFlags{plansDir: plans})

	planFile := signAndDrop(t, e, cfgPath, r.alice, r.bob)
	_, saved, err := plan.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	// Settle cannot write there any more.
	for _, sub := range []string{"applied", "rejected"} {
		dir := filepath.Join(plans, sub)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir, []byte("not a directory\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dropped := dropApproved(t, plans, planFile, "reviewed.json")

	p.tick(1)
	if n := len(bulkUpdates(e.sim.Requests())); n != 1 {
		t.Fatalf("the first schedule sent %d bulk updates, want the plan's 1", n)
	}
	if _, err := os.Stat(dropped); err != nil {
		t.Fatalf("the plan left approved/ although settling cannot work: %v", err)
	}
	// A minute on: the plan stays well within its maximum age of 24 h, and the
	// next schedule's listing (after janitor.SettleMargin: the engine runs
	// on the wall clock, backdateConfirmed) proves the expires in effect. Then the
	// owners have the expirations extended.
	backdateConfirmed(t, filepath.Join(e.dir, "state"), time.Hour)
	p.tick(1)
	if n := len(bulkUpdates(e.sim.Requests())); n != 1 {
		t.Fatalf("the plan stuck in approved/ was applied again at the second schedule: %d bulk updates", n)
	}
	extended := time.Now().Add(365 * 24 * time.Hour).UTC().Truncate(time.Millisecond)
	for _, id := range stale {
		extendExpiration(t, e.sim, id, extended)
	}
	p.tick(1)
	if n := len(bulkUpdates(e.sim.Requests())); n != 1 {
		t.Fatalf("the plan stuck in approved/ was applied again: %d bulk updates; %s's expirationDate now %s, the owner's extension was %s",
			n, stale[0], expirationOf(t, e.sim, stale[0]), extended)
	}
	if m := idnsim.Mutations(e.sim.Requests()); len(m) != 1 {
		t.Fatalf("%d mutations, want the first schedule's 1", len(m))
	}
	for _, id := range stale {
		if got := expirationOf(t, e.sim, id); !got.Equal(extended) {
			t.Fatalf("%s: expirationDate %s, want the extended %s kept", id, got, extended)
		}
	}
	if _, err := os.Stat(dropped); err != nil {
		t.Fatalf("the plan is gone from approved/: %v", err)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	runs := journalRuns(t, p.journal)
	if len(runs) != 3 || runs[0].Plan.Refused != "" {
		t.Fatalf("journal plan runs %+v, want the execution and two refusals", runs)
	}
	for _, run := range runs[1:] {
		if !strings.Contains(run.Plan.Refused, "plan "+saved.PlanHash+" was already executed, by run "+runs[0].RunID) || len(run.Plan.Approvals) != 2 {
			t.Fatalf("refused run %+v", run.Plan)
		}
	}
}
