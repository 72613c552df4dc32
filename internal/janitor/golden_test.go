package janitor_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const goldenScenario = "../idnsim/testdata/golden.yaml"

// goldenTenant replaces the simulator's random loopback URL in the golden plan.
const goldenTenant = "http://127.0.0.1:1"

// The plan of the golden scenario is exactly testdata/golden-plan.json, and
// executing it against the simulator in its default (real-tenant) mode
// deletes exactly the expected tokens, expires the never-expiring one through
// the v1 bulk update, and sends no PATCH for the other owner's over-scoped
// token (needs-owner): a real tenant refuses it.
func TestGoldenPlanAndApply(t *testing.T) {
	body, err := os.ReadFile("testdata/golden-policies.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, string(body), envOpts{scenario: goldenScenario})
	pl, err := e.engine(func(o *janitor.Options) { o.TenantURL = goldenTenant }).Plan(context.Background())
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	// The run id is random by design; everything else is a function of the
	// scenario, the policies and the clock.
	got := *pl.Plan
	got.RunID = "golden"
	got.ConfigDigest = "sha256:golden-policies"
	if err := got.Seal(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := plan.Write(&buf, &got); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "golden-plan.json")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("plan differs from %s (run go test -run TestGoldenPlan -update and review the diff):\n%s", golden, buf.String())
	}
	// Two plans of the same data are the same document.
	pl2, _ := e.engine(func(o *janitor.Options) { o.TenantURL = goldenTenant }).Plan(context.Background())
	again := *pl2.Plan
	again.RunID, again.ConfigDigest = "golden", "sha256:golden-policies"
	_ = again.Seal()
	if again.PlanHash != got.PlanHash {
		t.Fatal("planning twice gave different plans")
	}
	e.requireNoMutations()

	res, err := e.engine().Execute(context.Background(), pl)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	wantDeleted := []string{
		"0000000000000000000000000000de01", // ghost-sync: stale
		"a1100000000000000000000000000101", // jenkins-prod: stale
		"a1100000000000000000000000000103", // old-script: never used, a year old
		"ca700000000000000000000000000302", // reporting-etl: stale
		"da7e0000000000000000000000000402", // local-dev: never used, 60 days old
		"da7e0000000000000000000000000403", // airflow-dag: lastUsed exactly at the cutoff
	}
	wantExpired := []string{
		"b0b00000000000000000000000000202", // legacy-integration: null scope, never expires -> expire wins
	}
	const needsOwnerID = "a1100000000000000000000000000102" // ci-deploy: full access, another owner's
	deleted := deletedIDs(e.sim.Requests())
	if !mapKeysEqual(deleted, wantDeleted...) {
		t.Errorf("deleted %v, want %v", keys(deleted), wantDeleted)
	}
	if p := patchedIDs(e.sim.Requests()); len(p) != 0 {
		t.Errorf("per-token PATCHes %v, want none (the only patch is another owner's token)", keys(p))
	}
	if b := bulkIDs(t, e.sim.Requests()); !mapKeysEqual(b, wantExpired...) {
		t.Errorf("bulk-updated %v, want %v", keys(b), wantExpired)
	}
	if len(e.mutations()) != len(wantDeleted)+1 {
		t.Errorf("mutations = %d, want %d deletes and one bulk update", len(e.mutations()), len(wantDeleted))
	}
	if res.Count(janitor.OutcomeApplied) != len(wantDeleted)+len(wantExpired) {
		t.Errorf("applied = %d", res.Count(janitor.OutcomeApplied))
	}
	ci, _ := e.sim.Token(needsOwnerID)
	if !slices.Equal(ci.Scope.Values, []string{pat.ScopeAll}) {
		t.Errorf("ci-deploy scope = %v, want it unchanged", ci.Scope)
	}
	legacy, _ := e.sim.Token("b0b00000000000000000000000000202")
	if legacy.ExpirationDate == nil || !legacy.ExpirationDate.Equal(t0.AddDate(0, 0, 30)) {
		t.Errorf("legacy-integration expirationDate = %v, want now+30d", legacy.ExpirationDate)
	}

	// A second run repeats nothing and sends nothing: what is left are the
	// full-access patches of two other owners' tokens (legacy-integration's
	// lost to the expire last time), which need their owners.
	e.sim.ResetRequests()
	res2, err := e.engine().Run(context.Background(), janitor.RunInput{})
	if err != nil {
		t.Fatalf("second Run: %v", err)
	}
	e.requireNoMutations()
	if len(res2.Items) != 0 {
		t.Fatalf("second run executed %+v, want nothing", res2.Items)
	}
	var held []string
	for _, it := range res2.Plan.Items.All() {
		if it.Mode == plan.ModeNeedsOwner {
			held = append(held, it.TokenID)
		}
	}
	if !slices.Equal(held, []string{needsOwnerID, "b0b00000000000000000000000000202"}) && !slices.Equal(held, []string{"b0b00000000000000000000000000202", needsOwnerID}) {
		t.Fatalf("second run needs-owner items %v", held)
	}
}

func keys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
