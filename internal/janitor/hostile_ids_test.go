package janitor_test

import (
	"context"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
)

// A tenant that answers the owner lookup with the identity's id in other
// case than its tokens name it: the owner exists, and ownerMissing must not
// take it for a deleted user (it did, and deleted the token).
func TestHostileOwnerLookupIDCase(t *testing.T) {
	const owner = "da7eda7eda7eda7eda7eda7eda7eda7e"
	e := newEnv(t, noLimits+`owners: {lookup: true}
policies:
  - name: deleted-owner
    mode: enforce
    match: {ownerMissing: true}
    action: delete
`, envOpts{})
	e.sim.AddIdentity(idnsim.Identity{ID: strings.ToUpper(owner), Name: "Dave", Email: "dave@example.com", IdentityState: "ACTIVE"})
	e.add("tok-dave", owner, "d", 10*day, day)
	e.add("tok-gone", "0000000000000000000000000000dead", "g", 10*day, day)

	res, err := e.engine().Run(context.Background(), janitor.RunInput{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := deletedIDs(e.mutations()); len(got) != 1 || got["tok-gone"] != 1 {
		t.Fatalf("deleted %v; want only tok-gone (the owner of tok-dave exists)", got)
	}
	if !e.present("tok-dave") {
		t.Fatal("tok-dave was deleted")
	}
	for _, r := range res.Items {
		if r.Item.TokenID == "tok-dave" {
			t.Fatalf("tok-dave is a plan item: %+v", r)
		}
	}
}

// apply PLAN matches a saved item to its token without regard to case, and
// the request and the journal name the token as the tenant listed it.
func TestHostileApplyPlanIDCase(t *testing.T) {
	const id = "ab12cd34ef56ab12cd34ef56ab12cd34"
	e := newEnv(t, enforceDeleteStale, envOpts{sim: idnsim.Options{AnyCaseIDs: true}})
	e.add(id, "o1", "stale", 400*day, 200*day)
	pl, err := e.engine().Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	saved := roundTrip(t, pl.Plan)
	it := saved.Items.At(0)
	it.TokenID = strings.ToUpper(id)
	saved.Items.Set(0, it)
	if err := saved.Seal(); err != nil {
		t.Fatal(err)
	}
	res, err := e.engine().ApplyPlan(context.Background(), saved, janitor.ApplyOptions{})
	if err != nil {
		t.Fatalf("ApplyPlan: %v", err)
	}
	if len(res.Items) != 1 || res.Items[0].Outcome != janitor.OutcomeApplied {
		t.Fatalf("results %+v; want the item applied", res.Items)
	}
	muts := e.mutations()
	if len(muts) != 1 || muts[0].Path != "/v3/personal-access-tokens/"+id {
		t.Fatalf("the tenant received %+v; want one DELETE of the listed id", muts)
	}
	intents := 0
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindIntent {
			intents++
			if r.TokenID != id || r.Request.Path != "/v3/personal-access-tokens/"+id {
				t.Fatalf("journal intent names %q %q; want the listed id", r.TokenID, r.Request.Path)
			}
		}
	}
	if intents != 1 {
		t.Fatalf("%d intents", intents)
	}
}

// A saved plan that names the own credential in other case is refused for
// it, also by a tenant that would delete it under that spelling.
func TestHostileApplyPlanOwnCredentialInCapitals(t *testing.T) {
	e := newEnv(t, noLimits+`policies:
  - name: full
    mode: enforce
    match: {scopes: {any: ["sp:scopes:all"]}}
    action: delete
`, envOpts{sim: idnsim.Options{AnyCaseIDs: true}})
	e.add("other", "o1", "x", 400*day, 200*day, "sp:scopes:all")
	pl, err := e.engine().Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	saved := roundTrip(t, pl.Plan)
	forged := saved.Items.At(0)
	forged.TokenID, forged.TokenName = strings.ToUpper(e.admin.ClientID), "patjanitor"
	saved.Items.Append(forged)
	saved.Items.Sort()
	if err := saved.Seal(); err != nil {
		t.Fatal(err)
	}
	res, err := e.engine().ApplyPlan(context.Background(), saved, janitor.ApplyOptions{})
	if err != nil {
		t.Fatalf("ApplyPlan: %v", err)
	}
	if got := deletedIDs(e.mutations()); len(got) != 1 || got["other"] != 1 {
		t.Fatalf("deleted %v; want only other", got)
	}
	for _, r := range res.Items {
		if r.Item.TokenID == forged.TokenID && (r.Outcome != janitor.OutcomeDropped || !strings.Contains(r.Detail, "own-credential")) {
			t.Fatalf("forged item: %+v; want dropped as own-credential", r)
		}
	}
	if !e.present(e.admin.ClientID) {
		t.Fatal("own PAT deleted")
	}
}

// A listing that holds one token twice, under ids that differ only in case,
// is suspicious data: nothing is changed.
func TestHostileListingSameIDTwiceInCase(t *testing.T) {
	const id = "ab12cd34ef56ab12cd34ef56ab12cd34"
	e := newEnv(t, enforceDeleteStale, envOpts{})
	e.add(id, "o1", "stale", 400*day, 200*day)
	e.add(strings.ToUpper(id), "o1", "stale", 400*day, 200*day)
	res, err := e.engine().Run(context.Background(), janitor.RunInput{})
	if err == nil || !strings.Contains(err.Error(), "appears twice (also as") {
		t.Fatalf("Run error %v; want the duplicate named", err)
	}
	e.requireNoMutations()
	_ = res
}
