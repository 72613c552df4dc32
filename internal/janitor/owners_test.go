package janitor_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/metrics"
	"github.com/patjanitor/patjanitor/internal/pat"
)

const ownerPolicies = noLimits + `owners: {lookup: true}
policies:
  - name: inactive-owner
    mode: enforce
    match: {ownerStates: [INACTIVE_LONG_TERM]}
    action: delete
  - name: deleted-owner
    mode: enforce
    match: {ownerMissing: true}
    action: delete
`

// ownerEnv: alice is active, bob left long ago (INACTIVE_LONG_TERM), carol
// does not exist in the tenant (a deleted user).
func ownerEnv(t *testing.T, cfg string) (*env, *metrics.Metrics, *prometheus.Registry) {
	e := newEnv(t, cfg, envOpts{})
	e.sim.AddIdentity(idnsim.Identity{ID: "alice", Name: "Alice", Email: "alice@example.com", IdentityState: "ACTIVE"})
	e.sim.AddIdentity(idnsim.Identity{ID: "bob", Name: "Bob", Email: "bob@example.com", IdentityState: "INACTIVE_LONG_TERM"})
	e.add("tok-alice", "alice", "a", 10*day, 1*day)
	e.add("tok-bob", "bob", "b", 10*day, 1*day)
	e.add("tok-carol", "carol", "c", 10*day, 1*day)
	reg := prometheus.NewRegistry()
	return e, metrics.New(reg), reg
}

func planned(t *testing.T, e *env, m *metrics.Metrics) (*janitor.Planned, error) {
	t.Helper()
	eng := e.engine(func(o *janitor.Options) { o.Metrics = m })
	pl, err := eng.Plan(context.Background())
	if pl == nil {
		t.Fatalf("Plan: no plan: %v", err)
	}
	return pl, err
}

func itemPolicies(pl *janitor.Planned) map[string]string {
	out := map[string]string{}
	for _, it := range pl.Plan.Items.All() {
		out[it.TokenID] = it.Policy
	}
	return out
}

func TestOwnerConditions(t *testing.T) {
	e, m, reg := ownerEnv(t, ownerPolicies)
	pl, err := planned(t, e, m)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	got := itemPolicies(pl)
	want := map[string]string{"tok-bob": "inactive-owner", "tok-carol": "deleted-owner"}
	if len(got) != len(want) || got["tok-bob"] != want["tok-bob"] || got["tok-carol"] != want["tok-carol"] {
		t.Fatalf("items = %v, want %v", got, want)
	}
	if idn, ok := pl.Owners.Identity("bob"); !ok || idn.Email != "bob@example.com" {
		t.Fatalf("owner bob = %+v, %v", idn, ok)
	}
	if !pl.Owners.Missing["carol"] {
		t.Fatalf("carol not missing: %+v", pl.Owners)
	}
	// One lookup request for all four owners (the admin's too), cached per
	// run, and one for carol with patjanitor's own identity: the confirmation
	// that she is missing.
	var filters []string
	for _, r := range e.sim.Requests() {
		if r.Operation == idnsim.OpListPublicIdentities {
			filters = append(filters, r.Query.Get("filters"))
		}
	}
	if len(filters) != 2 || filters[1] != `id in ("carol","`+e.own()+`")` {
		t.Fatalf("identity lookups %q, want all four owners, then carol", filters)
	}
	wantMetrics := `
# HELP patjanitor_owner_lookups_total Owner identity lookups by outcome: found, missing, error.
# TYPE patjanitor_owner_lookups_total counter
patjanitor_owner_lookups_total{outcome="error"} 0
patjanitor_owner_lookups_total{outcome="found"} 3
patjanitor_owner_lookups_total{outcome="missing"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(wantMetrics), "patjanitor_owner_lookups_total"); err != nil {
		t.Fatal(err)
	}
}

// Invariant 5 on the path that decides after the owner lookup (the tokens
// are held until every owner is known, and the candidates' tokens are kept
// by a sink of their own): each delete's intent holds the token as listed,
// not an empty prior state.
func TestOwnerConditionIntentsHoldTheListedToken(t *testing.T) {
	e, m, _ := ownerEnv(t, ownerPolicies)
	listed := map[string]pat.Token{}
	for _, tk := range e.sim.Tokens() {
		listed[tk.ID] = tk
	}
	eng := e.engine(func(o *janitor.Options) { o.Metrics = m })
	if _, err := eng.Run(context.Background(), janitor.RunInput{}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if del := deletedIDs(e.mutations()); len(del) != 2 || del["tok-bob"] != 1 || del["tok-carol"] != 1 {
		t.Fatalf("the tenant received deletes of %v, want tok-bob and tok-carol once each", del)
	}
	intents := 0
	for _, r := range e.journalRecords() {
		if r.Kind != audit.KindIntent {
			continue
		}
		intents++
		tk := listed[r.TokenID]
		if r.Before == nil || r.Before.ID != tk.ID || r.Before.Owner.ID != tk.Owner.ID || !r.Before.Created.Equal(tk.Created) {
			t.Fatalf("intent %s: before %+v, want the token as listed %+v", r.TokenID, r.Before, tk)
		}
	}
	if intents != 2 {
		t.Fatalf("%d intents, want 2", intents)
	}
}

// A failed lookup is incomplete data for the owner-condition policies: they
// match nothing, so nothing is deleted on a guess, and the run still executes
// the rest.
func TestOwnerLookupFailureMatchesNothing(t *testing.T) {
	e, m, reg := ownerEnv(t, ownerPolicies)
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListPublicIdentities, Status: 400})
	eng := e.engine(func(o *janitor.Options) { o.Metrics = m })
	res, err := eng.Run(context.Background(), janitor.RunInput{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(res.Items) != 0 {
		t.Fatalf("items = %+v, want none", res.Items)
	}
	e.requireNoMutations()
	wantMetrics := `
# HELP patjanitor_owner_lookups_total Owner identity lookups by outcome: found, missing, error.
# TYPE patjanitor_owner_lookups_total counter
patjanitor_owner_lookups_total{outcome="error"} 4
patjanitor_owner_lookups_total{outcome="found"} 0
patjanitor_owner_lookups_total{outcome="missing"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(wantMetrics), "patjanitor_owner_lookups_total"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.logs.String(), "owner lookup failed") {
		t.Fatalf("no warning logged:\n%s", e.logs.String())
	}
}

// Without owner conditions only the owners of the plan's items are looked up
// (for notifications); without owners.lookup nobody is.
func TestOwnerLookupOnlyMatchedOwners(t *testing.T) {
	e, m, _ := ownerEnv(t, noLimits+`owners: {lookup: true}
policies:
  - name: bobs
    mode: report
    match: {nameMatches: "^b$"}
    action: delete
`)
	pl, err := planned(t, e, m)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if len(pl.Owners.Identities) != 1 || len(pl.Owners.Missing) != 0 {
		t.Fatalf("owners = %+v, want only bob", pl.Owners)
	}
	for _, r := range e.sim.Requests() {
		if r.Operation == idnsim.OpListPublicIdentities && strings.Contains(r.RawQuery, "alice") {
			t.Fatalf("looked up alice: %s", r.RawQuery)
		}
	}

	e2, m2, _ := ownerEnv(t, noLimits+`policies:
  - name: bobs
    mode: report
    match: {nameMatches: "^b$"}
    action: delete
`)
	pl2, err := planned(t, e2, m2)
	if err != nil || pl2.Owners != nil {
		t.Fatalf("Plan: %v, owners %+v; want no lookup", err, pl2.Owners)
	}
}
