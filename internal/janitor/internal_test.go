package janitor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
)

// recordingTenant is a Tenant that records calls and answers from a list.
type recordingTenant struct {
	mu      sync.Mutex
	tokens  []pat.Token
	listErr error
	calls   []string
}

func (r *recordingTenant) ListTokens(_ context.Context, o api.ListOptions) ([]pat.Token, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "list "+o.Filters)
	return r.tokens, r.listErr
}

func (r *recordingTenant) DeleteToken(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "delete "+id)
	return nil
}

func (r *recordingTenant) PatchToken(_ context.Context, id string, _ []pat.PatchOp) (pat.Token, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "patch "+id)
	return pat.Token{}, nil
}

func (r *recordingTenant) BulkUpdateTokens(_ context.Context, ids []string, _ []pat.PatchOp) ([]pat.Token, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "bulk "+strings.Join(ids, ","))
	return nil, nil
}

type memJournal struct {
	mu   sync.Mutex
	recs []audit.Record
}

func (m *memJournal) Append(_ context.Context, r audit.Record) (audit.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r.Seq = int64(len(m.recs) + 1)
	m.recs = append(m.recs, r)
	return r, nil
}

// OpenIntents returns the intents no later outcome of the same run and
// token closed (as audit.Journal keys them).
func (m *memJournal) OpenIntents() ([]audit.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var open []audit.Record
	for _, r := range m.recs {
		switch r.Kind {
		case audit.KindIntent:
			open = append(open, r)
		case audit.KindOutcome:
			open = slices.DeleteFunc(open, func(in audit.Record) bool {
				return in.RunID == r.RunID && in.TokenID == r.TokenID
			})
		}
	}
	return open, nil
}

var now = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)

func testConfig(t *testing.T, body string) *policy.Config {
	t.Helper()
	cfg, err := policy.Parse("t.yaml", []byte("tenant: {url: 'https://acme.api.identitynow.com', clientId: me}\n"+body))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Defence in depth: a work item for the engine's own credential (which only a
// bug could produce) is refused right before the request.
func TestOwnCredentialRefusedBeforeTheRequest(t *testing.T) {
	cfg := testConfig(t, "limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 0}\npolicies: [{name: all, mode: enforce, match: {nameMatches: '.*'}, action: delete}]\n")
	ten := &recordingTenant{}
	j := &memJournal{}
	e, err := New(Options{Config: cfg, Tenant: ten, TenantURL: "https://acme.api.identitynow.com", ClientID: "me", Journal: j, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	own := pat.Token{ID: "me", Name: "patjanitor", Created: now.Add(-time.Hour)}
	other := pat.Token{ID: "other", Name: "x", Created: now.Add(-time.Hour)}
	it := func(tk pat.Token) plan.Item {
		return plan.Item{TokenID: tk.ID, TokenName: tk.Name, Policy: "all", Mode: "enforce", Action: "delete"}
	}
	p := &plan.Plan{Version: plan.Version, Items: plan.NewItems(it(own), it(other))}
	pl := &Planned{Plan: p, Inventory: &Inventory{}, work: []work{{item: it(own), token: own}, {item: it(other), token: other}}}
	res, err := e.Execute(context.Background(), pl)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if res.Items[0].Outcome != OutcomeRefused || res.Items[1].Outcome != OutcomeApplied {
		t.Fatalf("outcomes = %s, %s; want refused, applied", res.Items[0].Outcome, res.Items[1].Outcome)
	}
	if len(ten.calls) != 1 || ten.calls[0] != "delete other" {
		t.Fatalf("calls = %v, want only the delete of the other token", ten.calls)
	}
	for _, r := range j.recs {
		if r.TokenID == "me" {
			t.Fatalf("journaled an intent for the own credential: %+v", r)
		}
	}

	// And evaluation never puts it into a plan in the first place.
	ten.tokens = []pat.Token{own, other}
	planned, err := e.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if planned.Plan.Items.Len() != 1 || planned.Plan.Items.At(0).TokenID != "other" {
		t.Fatalf("items = %+v", planned.Plan.Items.Slice())
	}
}

func TestPercentGuardrailRoundsDown(t *testing.T) {
	cfg := testConfig(t, "limits: {maxActionsPerRun: 0, maxActionsPercent: 10, maxActionsPerOwner: 0}\npolicies: [{name: stale, mode: enforce, match: {neverUsed: true}, action: delete}]\n")
	ten := &recordingTenant{}
	for i := range 15 {
		tk := pat.Token{ID: string(rune('a' + i)), Created: now}
		ten.tokens = append(ten.tokens, tk)
	}
	ten.tokens[0].ID, ten.tokens[1].ID = "x1", "x2" // 2 of 15 > 10% (1.5 -> 1)
	lu := now.Add(-time.Hour)
	for i := 2; i < 15; i++ {
		ten.tokens[i].LastUsed = &lu
	}
	e, _ := New(Options{Config: cfg, Tenant: ten, TenantURL: "https://acme.api.identitynow.com", ClientID: "me", Now: func() time.Time { return now }})
	pl, err := e.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	g := pl.Plan.Guardrails[0]
	if !g.Tripped || g.Wanted != 2 || pl.Plan.Population != 15 {
		t.Fatalf("guardrail = %+v, population %d", g, pl.Plan.Population)
	}
	if len(ten.calls) != 1 || ten.calls[0] != "list " {
		t.Fatalf("calls = %v, want one unfiltered listing (maxActionsPercent needs the population)", ten.calls)
	}
}

func TestDuplicateAndConflictingListings(t *testing.T) {
	cfg := testConfig(t, "limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 0}\npolicies: [{name: stale, mode: enforce, match: {neverUsed: true}, action: delete}]\n")
	dup := &recordingTenant{tokens: []pat.Token{{ID: "a", Created: now}, {ID: "a", Created: now}}}
	e, _ := New(Options{Config: cfg, Tenant: dup, TenantURL: "https://acme.api.identitynow.com", ClientID: "me", Now: func() time.Time { return now }})
	_, err := e.Plan(context.Background())
	var inc *IncompleteError
	if !errors.As(err, &inc) {
		t.Fatalf("err = %v, want incomplete (duplicate id)", err)
	}
}

func TestNormalizeTenantURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://Acme.API.identitynow.com/":    "https://acme.api.identitynow.com",
		"https://acme.api.identitynow.com:443": "https://acme.api.identitynow.com",
		"http://127.0.0.1:8975":                "http://127.0.0.1:8975",
		"HTTP://localhost:80/":                 "http://localhost",
	} {
		got, err := NormalizeTenantURL(in)
		if err != nil || got != want {
			t.Errorf("NormalizeTenantURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := NormalizeTenantURL("acme"); err == nil {
		t.Error("a URL without scheme must be refused")
	}
}

func TestSameOps(t *testing.T) {
	saved := []pat.PatchOp{pat.SetExpiration(now.Add(14 * 24 * time.Hour))}
	fresh := []pat.PatchOp{pat.SetExpiration(now.Add(14*24*time.Hour + 2*time.Hour))}
	if !sameOps(policy.ActionExpire, saved, fresh) {
		t.Error("expire: the date differs by construction and must not count")
	}
	if sameOps(policy.ActionPatch, saved, fresh) {
		t.Error("patch: different values must count")
	}
	// A saved plan's operation read back from its JSON and a fresh
	// decision's compare equal.
	var a []pat.PatchOp
	if err := json.Unmarshal([]byte(`[{"op":"replace","path":"/scope","value":["sp:scopes:default"]}]`), &a); err != nil {
		t.Fatal(err)
	}
	b := []pat.PatchOp{pat.SetScopes([]string{"sp:scopes:default"})}
	if !sameOps(policy.ActionPatch, a, b) {
		t.Error("a saved plan's operation and a fresh decision's must compare equal")
	}
	if sameOps(policy.ActionExpire, []pat.PatchOp{pat.SetExpiration(now), pat.SetNeverExpires(false)}, []pat.PatchOp{pat.SetExpiration(now), pat.SetNeverExpires(true)}) {
		t.Error("expire: only the date is left out")
	}
}

func TestNewRunIDUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewRunID(now)
		if seen[id] {
			t.Fatalf("duplicate run id %s", id)
		}
		seen[id] = true
	}
}

// The plan of a large tenant is byte for byte the same on one CPU and on
// four (the listings' results are merged in listing order and sorted on
// unique keys). 4,096 tokens are 16 of the inventory pipe's batches of 256,
// four times its buffers, so batches are handed over and their buffers
// reused as with any larger tenant; 16,384 showed nothing more and cost a
// second more of CPU under -race.
func TestParallelDecideEqualsSequential(t *testing.T) {
	cfg := testConfig(t, `exclude: {names: ["keep-*"]}
policies:
  - {name: unused, mode: enforce, match: {unusedFor: 90d}, action: delete}
  - {name: wide, match: {scopes: {any: ["sp:scopes:all"]}}, action: patch, patch: {setScopes: ["sp:scopes:default"]}}
  - {name: ci, match: {nameMatches: "^ci-"}, action: report}
`)
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 16 * pipeBatchSize
	toks := make([]pat.Token, n)
	for i := range toks {
		lu := now.Add(-time.Duration(rng.IntN(400)) * 24 * time.Hour)
		name := []string{"ci-", "keep-", "svc-", ""}[rng.IntN(4)] + fmt.Sprint(i)
		toks[i] = pat.Token{
			ID: fmt.Sprintf("%032x", i), Name: name, Created: now.Add(-500 * 24 * time.Hour), LastUsed: &lu,
			Owner: pat.Owner{ID: fmt.Sprintf("o%d", rng.IntN(300)), Name: fmt.Sprintf("Owner %d", rng.IntN(50))},
			Scope: pat.Scopes{Null: rng.IntN(5) == 0, Values: []string{"idn:sources:read"}},
		}
		if toks[i].Scope.Null {
			toks[i].Scope.Values = nil
		}
	}
	e, err := New(Options{Config: cfg, Tenant: &recordingTenant{tokens: toks}, TenantURL: "https://acme.api.identitynow.com", ClientID: "me",
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	decided := func(procs int) []byte {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		pl, err := e.Plan(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if pl.Plan.Items.Len() < n/4 || len(pl.Plan.Skipped) == 0 {
			t.Fatalf("the population decides too little: %d items, %d skipped", pl.Plan.Items.Len(), len(pl.Plan.Skipped))
		}
		b, err := json.Marshal(struct {
			I []plan.Item
			S []plan.Skipped
			G []plan.Guardrail
		}{pl.Plan.Items.Slice(), pl.Plan.Skipped, pl.Plan.Guardrails})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if seq, par := decided(1), decided(4); !bytes.Equal(seq, par) {
		t.Fatalf("the parallel decision differs from the sequential one (%d vs %d bytes)", len(par), len(seq))
	}
}

// BenchmarkDecide100k plans a synthetic 100,000-token tenant from memory (no
// HTTP): the streamed evaluation, the sort of the items, the seal.
//
//	go test -run '^$' -bench Decide100k -benchtime 10x ./internal/janitor
func BenchmarkDecide100k(b *testing.B) {
	cfg, err := policy.Parse("t.yaml", []byte(`tenant: {url: 'https://acme.api.identitynow.com', clientId: me}
policies:
  - {name: unused, mode: enforce, match: {unusedFor: 90d}, action: delete}
  - {name: wide, match: {scopes: {any: ["sp:scopes:all"]}}, action: patch, patch: {setScopes: ["sp:scopes:default"]}}
  - {name: ci, match: {nameMatches: "^ci-"}, action: report}
  - {name: old, match: {createdOlderThan: 365d}, action: report}
`))
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	toks := make([]pat.Token, 0, 100_000)
	for i := range 100_000 {
		lu := now.Add(-time.Duration(rng.IntN(400)) * 24 * time.Hour)
		o := rng.IntN(3000)
		toks = append(toks, pat.Token{
			ID: fmt.Sprintf("%032x", i), Name: []string{"ci-", "svc-", ""}[rng.IntN(3)] + fmt.Sprint(i),
			Created: now.Add(-time.Duration(rng.IntN(800)) * 24 * time.Hour), LastUsed: &lu,
			Owner: pat.Owner{ID: fmt.Sprintf("2c9180%026x", o), Name: fmt.Sprintf("Owner %d", o)},
			Scope: pat.Scopes{Null: rng.IntN(5) == 0},
		})
	}
	e, err := New(Options{Config: cfg, Tenant: &recordingTenant{tokens: toks}, TenantURL: "https://acme.api.identitynow.com", ClientID: "me",
		Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if pl, _ := e.Plan(context.Background()); pl == nil || pl.Plan.Items.Len() == 0 {
			b.Fatal("nothing decided")
		}
	}
}

// byFilterTenant answers each listing by its filters text.
type byFilterTenant struct {
	recordingTenant
	byFilter map[string][]pat.Token
}

func (b *byFilterTenant) ListTokens(_ context.Context, o api.ListOptions) ([]pat.Token, error) {
	return b.byFilter[o.Filters], nil
}

// A token that the `lastUsed isnull` listing returns although it was used is
// a filter the tenant did not apply, also when the other listing returned the
// same token (it is merged, and must still be checked).
func TestFilterIgnoredOnATokenBothListingsReturned(t *testing.T) {
	cfg := testConfig(t, "limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 0}\npolicies: [{name: u, mode: enforce, match: {unusedFor: 90d}, action: delete}]\n")
	listings := cfg.Listings(now)
	if len(listings) != 2 {
		t.Fatalf("listings %+v, want le and isnull", listings)
	}
	lu := now.Add(-200 * 24 * time.Hour)
	stale := pat.Token{ID: "s1", Name: "s1", Owner: pat.Owner{ID: "o"}, Created: now.Add(-400 * 24 * time.Hour), LastUsed: &lu}
	ten := &byFilterTenant{byFilter: map[string][]pat.Token{}}
	for _, l := range listings {
		ten.byFilter[api.Filter(l)] = []pat.Token{stale}
	}
	e, err := New(Options{Config: cfg, Tenant: ten, TenantURL: "https://acme.api.identitynow.com", ClientID: "me", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Plan(context.Background())
	var inc *IncompleteError
	if !errors.As(err, &inc) || !strings.Contains(err.Error(), "did not apply the filter") {
		t.Fatalf("Plan: %v, want incomplete data (the isnull listing returned a used token)", err)
	}
}

// The same defence for expires, which go through the bulk update: the own
// credential spelt in another case (ids are compared without regard to case,
// invariant 9) is refused before the batch, journaled nowhere, and the batch
// carries only the other token. The bulk path compared the ids with ==.
func TestHostileOwnCredentialRecasedInBulkExpire(t *testing.T) {
	cfg := testConfig(t, "limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 0}\npolicies: [{name: all, mode: enforce, match: {nameMatches: '.*'}, action: expire, expireIn: 14d}]\n")
	ten := &recordingTenant{}
	j := &memJournal{}
	e, err := New(Options{Config: cfg, Tenant: ten, TenantURL: "https://acme.api.identitynow.com", ClientID: "me", Journal: j, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ops := []pat.PatchOp{pat.SetExpiration(now.Add(14 * 24 * time.Hour))}
	own := pat.Token{ID: "ME", Name: "patjanitor", Created: now.Add(-time.Hour)}
	other := pat.Token{ID: "other", Name: "x", Created: now.Add(-time.Hour)}
	it := func(tk pat.Token) plan.Item {
		return plan.Item{TokenID: tk.ID, TokenName: tk.Name, Policy: "all", Mode: "enforce", Action: "expire", Patch: ops}
	}
	p := &plan.Plan{Version: plan.Version, Items: plan.NewItems(it(own), it(other))}
	pl := &Planned{Plan: p, Inventory: &Inventory{}, work: []work{{item: it(own), token: own, ops: ops}, {item: it(other), token: other, ops: ops}}}
	res, _ := e.Execute(context.Background(), pl)
	if res.Items[0].Outcome != OutcomeRefused {
		t.Fatalf("the own credential's outcome = %s, want refused", res.Items[0].Outcome)
	}
	for _, c := range ten.calls {
		if strings.Contains(strings.ToLower(c), "me") {
			t.Fatalf("calls = %v: the own credential was sent", ten.calls)
		}
	}
	for _, r := range j.recs {
		if pat.SameID(r.TokenID, "me") {
			t.Fatalf("journaled an intent for the own credential: %+v", r)
		}
	}
}

// needsOwner tells patjanitor's own tokens from others' by pat.SameID, the
// project's one rule for ids (invariant 9). strings.EqualFold folds more:
// an owner id with "ſ" (U+017F) was taken for the own identity's "s", so a
// PATCH would have been planned for a token patjanitor does not own instead
// of asking its owner. (The Kelvin sign lower-cases to "k": the same id
// under both rules.)
func TestNeedsOwnerComparesIDsByIDKey(t *testing.T) {
	inv := &Inventory{OwnIdentity: "owner-sk"}
	for _, tc := range []struct {
		owner string
		mine  bool
	}{
		{"owner-sk", true},
		{"OWNER-SK", true},
		{"owner-\u017fk", false}, // ſ folds to s under EqualFold, not under IDKey
		{"owner-s\u212a", true},  // the Kelvin sign lower-cases to k: IDKey agrees
	} {
		it := plan.Item{OwnerID: tc.owner, Mode: plan.ModeEnforce, Action: plan.ActionPatch, Reason: "r"}
		changed := needsOwner(&it, inv)
		if tc.mine && (changed || it.Mode != plan.ModeEnforce) {
			t.Errorf("owner %q, own identity %q: made %s (%q); want the patch kept", tc.owner, inv.OwnIdentity, it.Mode, it.Reason)
		}
		if !tc.mine && it.Mode != plan.ModeNeedsOwner {
			t.Errorf("owner %q, own identity %q: mode %s; want %s (not patjanitor's token)", tc.owner, inv.OwnIdentity, it.Mode, plan.ModeNeedsOwner)
		}
	}
}
