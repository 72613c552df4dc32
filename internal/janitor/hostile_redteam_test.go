package janitor_test

import (
	"context"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
)

// A token that shows another owner at apply time than in the approved plan
// is not the token the reviewers approved acting on: PATs do not move
// between owners in IdentityNow, so the re-read is a lie or another token
// under the id. Acting anyway judged maxActionsPerOwner by the planned
// owners (one each, under the limit of 1) while the tenant's answer put both
// tokens on one owner, and the owner notice would name the planned owner.
// The item is dropped, naming both owners; the other one is applied.
func TestHostileApplyPlanTokenMovedOwner(t *testing.T) {
	const cfg = "limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 1}\n" + `policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
`
	e := newEnv(t, cfg, envOpts{})
	e.add("tok-a", "owner-a", "build-a", 400*day, 200*day)
	e.add("tok-b", "owner-b", "build-b", 400*day, 200*day)
	pl, err := e.engine().Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	saved := roundTrip(t, pl.Plan)
	if saved.Items.Len() != 2 {
		t.Fatalf("plan holds %d items, want 2", saved.Items.Len())
	}
	for _, g := range saved.Guardrails {
		if g.Tripped {
			t.Fatalf("plan trips %s", g.Name)
		}
	}

	// Between plan and apply the tenant answers tok-b under owner-a.
	moved, ok := e.sim.Token("tok-b")
	if !ok {
		t.Fatal("tok-b missing")
	}
	moved.Owner = pat.Owner{Type: "IDENTITY", ID: "owner-a", Name: "Owner owner-a"}
	e.sim.Add(moved, "")
	e.sim.ResetRequests()

	res, err := e.engine().ApplyPlan(context.Background(), saved, janitor.ApplyOptions{})
	if err != nil {
		t.Fatalf("ApplyPlan: %v", err)
	}
	if got := deletedIDs(e.mutations()); len(got) != 1 || got["tok-a"] != 1 {
		t.Fatalf("the tenant received DELETEs of %v; want only tok-a", got)
	}
	if !e.present("tok-b") {
		t.Fatal("tok-b was deleted")
	}
	var droppedB bool
	for _, r := range res.Items {
		switch r.Item.TokenID {
		case "tok-a":
			if r.Outcome != janitor.OutcomeApplied {
				t.Errorf("tok-a: %s %s; want applied", r.Outcome, r.Detail)
			}
		case "tok-b":
			droppedB = r.Outcome == janitor.OutcomeDropped && strings.Contains(r.Detail, "owner changed") &&
				strings.Contains(r.Detail, "owner-a") && strings.Contains(r.Detail, "owner-b")
			if !droppedB {
				t.Errorf("tok-b: %s %q; want dropped, naming both owners", r.Outcome, r.Detail)
			}
		}
	}
	if !droppedB {
		t.Errorf("no result for tok-b: %+v", res.Items)
	}
	var intents []string
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindIntent {
			intents = append(intents, r.TokenID)
		}
	}
	if len(intents) != 1 || intents[0] != "tok-a" {
		t.Fatalf("journal intents for %v; want tok-a only", intents)
	}
}
