package janitor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/secret"
)

const noLimits = "limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 0}\n"

const enforceDeleteStale = noLimits + `policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
`

// Invariant 1: plan and report-mode policies send no mutating request.
func TestInvariant1_PlanAndReportModeSendNoMutation(t *testing.T) {
	cfg := noLimits + `policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
  - name: full-access
    mode: report
    match: {scopes: {any: ["sp:scopes:all"]}}
    action: patch
    patch: {setScopes: ["sp:scopes:default"]}
`
	e := newEnv(t, cfg, envOpts{})
	e.addStale("stale", 5, 1)
	e.add("full-1", "o1", "ci", 10*day, 1*day, pat.ScopeAll)

	// plan: read-only even with an enforce-mode policy.
	pl, err := e.engine().Plan(context.Background())
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if got := len(pl.Plan.Pending()); got != 5 {
		t.Fatalf("pending = %d, want 5", got)
	}
	e.requireNoMutations()
	if len(e.journalRecords()) != 0 {
		t.Fatal("plan wrote to the journal")
	}

	// A run whose only matching policies are in report mode.
	e.cfg = e.parseConfig(strings.Replace(cfg, "mode: enforce", "mode: report", 1))
	res, err := e.engine().Run(context.Background(), janitor.RunInput{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Plan.Items.Len() != 6 || len(res.Items) != 0 {
		t.Fatalf("items = %d, executed = %d; want 6 reported and 0 executed", res.Plan.Items.Len(), len(res.Items))
	}
	e.requireNoMutations()

	// ForceReport (serve --dry-run) of the enforce config.
	e.cfg = e.parseConfig(cfg).ForceReport()
	if _, err := e.engine().Run(context.Background(), janitor.RunInput{}); err != nil {
		t.Fatalf("Run (ForceReport): %v", err)
	}
	e.requireNoMutations()
}

// Invariant 2: the own credential and managed tokens survive an enforce-mode
// policy that matches every token.
func TestInvariant2_OwnCredentialAndManagedSurvive(t *testing.T) {
	e := newEnv(t, noLimits+`policies:
  - name: delete-everything
    mode: enforce
    match: {nameMatches: ".*"}
    action: delete
`, envOpts{})
	e.addStale("plain", 3, 1)
	e.sim.Add(pat.Token{ID: "managed-1", Name: "workflow-x", Owner: pat.Owner{ID: "o9"}, Managed: true,
		Scope: pat.ScopesOf(pat.ScopeAll), Created: t0.Add(-400 * day)}, "")

	res, err := e.engine().Run(context.Background(), janitor.RunInput{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !e.present(e.admin.ClientID) {
		t.Fatal("the own credential was deleted")
	}
	if !e.present("managed-1") {
		t.Fatal("the managed token was deleted")
	}
	for _, id := range []string{"plain-000", "plain-001", "plain-002"} {
		if e.present(id) {
			t.Errorf("%s survives, want deleted", id)
		}
	}
	if got := len(e.mutations()); got != 3 {
		t.Errorf("mutations = %d, want 3", got)
	}
	skips := map[string]string{}
	for _, s := range res.Plan.Skipped {
		skips[s.TokenID] = s.Reason
	}
	if skips[e.admin.ClientID] != "own-credential" || skips["managed-1"] != "managed" {
		t.Errorf("skipped = %v, want own-credential and managed", skips)
	}
}

// Invariant 3: a failed or suspicious listing leaves the tenant untouched.
func TestInvariant3_IncompleteDataIsFatal(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(e *env)
		tokens int
		opts   envOpts
		want   string
	}{
		{
			name:   "listing 500 after retries",
			setup:  func(e *env) { e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, Status: 500}) },
			tokens: 5, want: "500",
		},
		{
			name:   "truncated body",
			setup:  func(e *env) { e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, Truncate: true}) },
			tokens: 5, want: "listing",
		},
		{
			name:   "silently capped listing",
			tokens: 300,
			opts:   envOpts{sim: idnsim.Options{PageCap: 250}},
			want:   "exactly 250",
		},
		{
			name:   "paging tenant",
			tokens: 300,
			opts:   envOpts{sim: idnsim.Options{Paging: true}},
			want:   "returned 51 other tokens: the tenant pages this listing",
		},
		{
			name:   "exactly 250 items and the probe fails",
			tokens: 249, // plus the admin PAT: an unfiltered listing of 250
			setup: func(e *env) {
				e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, After: 1, Status: 500})
			},
			want: "cannot be told from a complete listing",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// maxActionsPercent makes the run list every token (one unfiltered call).
			e := newEnv(t, `limits: {maxActionsPerRun: 0, maxActionsPercent: 100, maxActionsPerOwner: 0}
policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
`, tc.opts)
			e.addStale("s", tc.tokens, 10)
			if tc.setup != nil {
				tc.setup(e)
			}
			res, err := e.engine().Run(context.Background(), janitor.RunInput{})
			var inc *janitor.IncompleteError
			if !errors.As(err, &inc) {
				t.Fatalf("err = %v, want *IncompleteError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to mention %q", err, tc.want)
			}
			if res == nil || res.Plan.Error == "" {
				t.Fatalf("the plan must carry the error; res = %+v", res)
			}
			if res.Count(janitor.OutcomeBlocked) != len(res.Items) {
				t.Errorf("items not all blocked: %+v", res.Items)
			}
			e.requireNoMutations()
			if n := len(e.journalRecords()); n != 0 {
				t.Errorf("journal has %d records, want none", n)
			}
		})
	}

	t.Run("250 items on a tenant declared unpaged", func(t *testing.T) {
		e := newEnv(t, `tenant:
  url: http://127.0.0.1:1
  clientId: x
  unpaged: true
limits: {maxActionsPerRun: 0, maxActionsPercent: 100, maxActionsPerOwner: 0}
policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
`, envOpts{})
		e.addStale("s", 249, 10)
		if _, err := e.engine().Run(context.Background(), janitor.RunInput{}); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got := len(deletedIDs(e.sim.Requests())); got != 249 {
			t.Fatalf("deleted %d, want 249", got)
		}
		for _, r := range e.sim.Requests() {
			if r.Query.Has("offset") {
				t.Fatalf("probed a tenant declared unpaged: %s?%s", r.Path, r.RawQuery)
			}
		}
	})

	// Exactly 250 tokens: the listing is asked once more with
	// limit=250&offset=250, and the answer decides.
	for _, tc := range []struct {
		name string
		opts idnsim.Options
	}{
		// The faithful tenant ignores limit and offset (no version declares
		// them): the same 250 come back, the listing is complete.
		{name: "a tenant that does not page answers the same 250", opts: idnsim.Options{}},
		// A paging tenant's second page is empty: nothing beyond 250.
		{name: "a paging tenant answers an empty second page", opts: idnsim.Options{Paging: true}},
	} {
		t.Run("exactly 250 items: "+tc.name, func(t *testing.T) {
			e := newEnv(t, `limits: {maxActionsPerRun: 0, maxActionsPercent: 100, maxActionsPerOwner: 0}
policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
`, envOpts{sim: tc.opts})
			e.addStale("s", 249, 10) // plus the admin PAT: an unfiltered listing of 250
			res, err := e.engine().Run(context.Background(), janitor.RunInput{})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got := len(deletedIDs(e.sim.Requests())); got != 249 {
				t.Fatalf("deleted %d, want 249", got)
			}
			var lists []string
			for _, r := range e.sim.Requests() {
				if r.Operation == idnsim.OpListTokens {
					lists = append(lists, r.RawQuery)
				}
			}
			if len(lists) != 2 || lists[0] != "" || lists[1] != "limit=250&offset=250" {
				t.Fatalf("listing calls %q, want the listing and one probe", lists)
			}
			if res.Plan.Error != "" || !strings.Contains(e.logs.String(), "complete") {
				t.Fatalf("plan error %q; the probe's finding is not logged", res.Plan.Error)
			}
		})
	}

	t.Run("filter ignored by the tenant", func(t *testing.T) {
		e := newEnv(t, enforceDeleteStale, envOpts{})
		e.addStale("s", 3, 1)
		e.add("fresh", "o", "fresh", 10*day, day)
		e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, Status: 200,
			Body: `[{"id":"fresh","name":"fresh","scope":null,"owner":{"id":"o"},"created":"2026-11-01T00:00:00.000Z","lastUsed":"2026-11-25T00:00:00.000Z"}]`})
		_, err := e.engine().Run(context.Background(), janitor.RunInput{})
		var inc *janitor.IncompleteError
		if !errors.As(err, &inc) || !strings.Contains(err.Error(), "did not apply the filter") {
			t.Fatalf("err = %v, want incomplete data (filter ignored)", err)
		}
		e.requireNoMutations()
	})
}

// Invariant 4: a tripped limit leaves the tenant untouched, and the report
// says which limit, the limit and what was wanted.
func TestInvariant4_GuardrailsTripBeforeTheFirstMutation(t *testing.T) {
	cases := []struct {
		limits string
		guard  string
		limit  float64
		wanted int
	}{
		{"{maxActionsPerRun: 5, maxActionsPercent: 0, maxActionsPerOwner: 0}", "maxActionsPerRun", 5, 6},
		// 6 of 7 tokens (the admin PAT counts) is 85.7% > 50%.
		{"{maxActionsPerRun: 0, maxActionsPercent: 50, maxActionsPerOwner: 0}", "maxActionsPercent", 50, 6},
		{"{maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 2}", "maxActionsPerOwner", 2, 3},
	}
	for _, tc := range cases {
		t.Run(tc.guard, func(t *testing.T) {
			e := newEnv(t, "limits: "+tc.limits+`
policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
  - name: report-only
    mode: report
    match: {unusedFor: 90d}
    action: delete
`, envOpts{})
			e.addStale("s", 6, 3)
			res, err := e.engine().Run(context.Background(), janitor.RunInput{})
			var gerr *janitor.GuardrailError
			if !errors.As(err, &gerr) {
				t.Fatalf("err = %v, want *GuardrailError", err)
			}
			e.requireNoMutations()
			if n := len(e.journalRecords()); n != 0 {
				t.Errorf("journal has %d records, want none", n)
			}
			var g plan.Guardrail
			for _, x := range res.Plan.Guardrails {
				if x.Name == tc.guard {
					g = x
				}
			}
			if !g.Tripped || g.Limit != tc.limit || g.Wanted != tc.wanted {
				t.Errorf("guardrail = %+v, want %s tripped with limit %g wanted %d", g, tc.guard, tc.limit, tc.wanted)
			}
			if len(res.Plan.Guardrails) != 1 {
				t.Errorf("guardrails = %+v, want only the configured one", res.Plan.Guardrails)
			}
			// The owner is named for the reviewer, with the id (names
			// are not unique).
			if want := "on the tokens of owner Owner s-owner-0 (s-owner-0)"; tc.guard == "maxActionsPerOwner" && !strings.Contains(g.Detail, want) {
				t.Errorf("detail %q lacks %q", g.Detail, want)
			}
			if res.Count(janitor.OutcomeBlocked) != 6 {
				t.Errorf("blocked = %d, want 6", res.Count(janitor.OutcomeBlocked))
			}
		})
	}

	t.Run("at the limit does not trip", func(t *testing.T) {
		e := newEnv(t, `limits: {maxActionsPerRun: 6, maxActionsPercent: 0, maxActionsPerOwner: 3}
policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
`, envOpts{})
		e.addStale("s", 6, 3)
		if _, err := e.engine().Run(context.Background(), janitor.RunInput{}); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got := len(deletedIDs(e.sim.Requests())); got != 6 {
			t.Fatalf("deleted %d, want 6", got)
		}
	})

	// The tokens of one owner count together however the tenant spells the
	// owner's id, and the reviewer is shown the owner by name and by the id
	// as the tenant spells it (not its lower-case key, which the tenant
	// never sent, and without the name).
	t.Run("an owner id in upper case is named", func(t *testing.T) {
		e := newEnv(t, `limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 2}
policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
`, envOpts{})
		for i := range 3 {
			id := fmt.Sprintf("u-%03d", i)
			e.add(id, "OWNER-A", "tok-"+id, 400*day, 200*day)
		}
		res, err := e.engine().Run(context.Background(), janitor.RunInput{})
		var gerr *janitor.GuardrailError
		if !errors.As(err, &gerr) {
			t.Fatalf("err = %v, want *GuardrailError", err)
		}
		e.requireNoMutations()
		g := res.Plan.Guardrails[0]
		if want := "3 actions wanted on the tokens of owner Owner OWNER-A (OWNER-A), at most 2 per owner"; g.Detail != want {
			t.Errorf("detail %q, want %q", g.Detail, want)
		}
	})
}

// failingJournal wraps a real journal and fails every Append after the
// first ok ones.
type failingJournal struct {
	j      janitor.Journal
	ok     int
	calls  int
	mu     chan struct{}
	intent []string // token ids of the intents that were written
}

func newFailingJournal(j janitor.Journal, ok int) *failingJournal {
	return &failingJournal{j: j, ok: ok, mu: make(chan struct{}, 1)}
}

func (f *failingJournal) Append(ctx context.Context, r audit.Record) (audit.Record, error) {
	f.mu <- struct{}{}
	defer func() { <-f.mu }()
	f.calls++
	if f.calls > f.ok {
		return audit.Record{}, errors.New("disk full")
	}
	if r.Kind == audit.KindIntent {
		f.intent = append(f.intent, r.TokenID)
	}
	return f.j.Append(ctx, r)
}

func (f *failingJournal) OpenIntents() ([]audit.Record, error) { return f.j.OpenIntents() }

// Invariant 5: an unwritable journal leaves the tenant untouched, and a
// journal failure mid-run stops further mutations.
func TestInvariant5_JournalFirst(t *testing.T) {
	t.Run("unwritable from the start", func(t *testing.T) {
		e := newEnv(t, enforceDeleteStale, envOpts{})
		e.addStale("s", 4, 1)
		fj := newFailingJournal(e.journal, 0)
		res, err := e.engine(func(o *janitor.Options) { o.Journal = fj }).Run(context.Background(), janitor.RunInput{})
		var jerr *janitor.JournalError
		if !errors.As(err, &jerr) {
			t.Fatalf("err = %v, want *JournalError", err)
		}
		e.requireNoMutations()
		if res.Count(janitor.OutcomeNotStarted) != 4 {
			t.Errorf("not started = %d, want 4", res.Count(janitor.OutcomeNotStarted))
		}
	})

	t.Run("fails mid-run", func(t *testing.T) {
		e := newEnv(t, enforceDeleteStale, envOpts{})
		e.addStale("s", 20, 1)
		// run-start, then 3 intent/outcome pairs, then failure.
		fj := newFailingJournal(e.journal, 7)
		res, err := e.engine(func(o *janitor.Options) { o.Journal = fj }).Run(context.Background(), janitor.RunInput{})
		var jerr *janitor.JournalError
		if !errors.As(err, &jerr) {
			t.Fatalf("err = %v, want *JournalError", err)
		}
		// Every mutation the tenant saw had its intent journaled first.
		deleted := deletedIDs(e.sim.Requests())
		for id := range deleted {
			if !slices.Contains(fj.intent, id) {
				t.Errorf("token %s deleted without a journaled intent", id)
			}
		}
		if len(e.mutations()) != len(fj.intent) {
			t.Errorf("mutations = %d, journaled intents = %d", len(e.mutations()), len(fj.intent))
		}
		if len(e.mutations()) >= 20 || len(e.mutations()) < 3 {
			t.Errorf("mutations = %d, want the run stopped after about 3", len(e.mutations()))
		}
		if res.Count(janitor.OutcomeNotStarted) == 0 {
			t.Errorf("no item reported as not started: %+v", res.Items)
		}
	})
}

// Invariant 6: apply PLAN executes only the items whose token still gets the
// same decision; new tokens are never touched.
func TestInvariant6_ApplyPlanReverifies(t *testing.T) {
	cfg := noLimits + `policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
  - name: full-access
    mode: enforce
    match: {scopes: {any: ["sp:scopes:all"]}}
    action: patch
    patch: {removeScopes: ["sp:scopes:all"], addScopes: ["sp:scopes:default"]}
`
	// The patched tokens are patjanitor's own identity's: the only ones a
	// real tenant lets it PATCH.
	e := newEnv(t, cfg, envOpts{})
	e.addStale("s", 4, 1)
	e.add("full-1", e.own(), "ci", 10*day, 1*day, pat.ScopeAll)
	e.add("full-2", e.own(), "cd", 10*day, 1*day, pat.ScopeAll)

	pl, err := e.engine().Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	saved := roundTrip(t, pl.Plan)

	// The tenant changes between plan and apply.
	e.clock.Set(t0.Add(2 * time.Hour))
	e.sim.Touch("s-000", t0.Add(time.Hour))             // used again
	e.sim.Remove("s-001")                               // deleted by its owner
	e.add("s-new", "o5", "new-stale", 300*day, 200*day) // a new stale token
	e.sim.Add(pat.Token{ID: "full-2", Name: "cd", Owner: pat.Owner{ID: e.own(), Name: "Owner " + e.own()},
		Created: t0.Add(-10 * day), Scope: pat.ScopesOf(pat.ScopeAll, "idn:sources:read")}, "") // scope changed: different patch
	e.sim.ResetRequests()

	res, err := e.engine().ApplyPlan(context.Background(), saved, janitor.ApplyOptions{})
	if err != nil {
		t.Fatalf("ApplyPlan: %v", err)
	}
	deleted, patched := deletedIDs(e.sim.Requests()), patchedIDs(e.sim.Requests())
	if !mapKeysEqual(deleted, "s-002", "s-003") {
		t.Errorf("deleted = %v, want s-002 s-003", deleted)
	}
	if !mapKeysEqual(patched, "full-1") {
		t.Errorf("patched = %v, want full-1", patched)
	}
	if !e.present("s-new") {
		t.Error("the new token, not in the plan, was deleted")
	}
	reasons := map[string]string{}
	for _, it := range res.Items {
		if it.Outcome == janitor.OutcomeDropped {
			reasons[it.Item.TokenID] = it.Detail
		}
	}
	for id, want := range map[string]string{"s-000": "used again", "s-001": "gone", "full-2": "patch would now be"} {
		if !strings.Contains(reasons[id], want) {
			t.Errorf("drop reason of %s = %q, want %q", id, reasons[id], want)
		}
	}
	if len(reasons) != 3 {
		t.Errorf("dropped = %v, want 3", reasons)
	}
}

func TestApplyPlanRejects(t *testing.T) {
	e := newEnv(t, enforceDeleteStale, envOpts{})
	e.addStale("s", 2, 1)
	pl, err := e.engine().Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	good := roundTrip(t, pl.Plan)
	reseal := func(mod func(p *plan.Plan)) *plan.Plan {
		p := roundTrip(t, good)
		mod(p)
		if err := p.Seal(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name string
		plan *plan.Plan
		eng  func(*janitor.Options)
		now  time.Time
		want string
	}{
		{"another tenant", reseal(func(p *plan.Plan) { p.Tenant = "https://other.api.identitynow.com" }), nil, t0, "is for tenant"},
		{"another API version", reseal(func(p *plan.Plan) { p.APIVersion = "v2025" }), nil, t0, "API version"},
		{"too old", good, nil, t0.Add(25 * time.Hour), "older than the maximum"},
		{"from the future", good, nil, t0.Add(-time.Hour), "in the future"},
		{"edited", func() *plan.Plan {
			p := roundTrip(t, good)
			it := p.Items.At(0)
			it.TokenID = "s-999"
			p.Items.Set(0, it)
			return p
		}(), nil, t0, "planHash"},
		{"another config", good, func(o *janitor.Options) {
			o.Config = e.parseConfig(enforceDeleteStale + "# a comment changes the digest\n")
		}, t0, "config"},
		{"incomplete data", reseal(func(p *plan.Plan) { p.Error = "listing failed" }), nil, t0, "incomplete"},
		{"tripped guardrail", reseal(func(p *plan.Plan) {
			p.Guardrails = []plan.Guardrail{{Name: "maxActionsPerRun", Limit: 1, Wanted: 2, Tripped: true}}
		}), nil, t0, "tripped"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.clock.Set(tc.now)
			defer e.clock.Set(t0)
			mods := []func(*janitor.Options){}
			if tc.eng != nil {
				mods = append(mods, tc.eng)
			}
			e.sim.ResetRequests()
			_, err := e.engine(mods...).ApplyPlan(context.Background(), tc.plan, janitor.ApplyOptions{})
			if !errors.Is(err, janitor.ErrPlanRejected) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a rejection mentioning %q", err, tc.want)
			}
			if len(e.sim.Requests()) != 0 {
				t.Errorf("a rejected plan sent %d requests", len(e.sim.Requests()))
			}
		})
	}
	t.Run("normalised tenant URL is the same tenant", func(t *testing.T) {
		p := reseal(func(p *plan.Plan) { p.Tenant = strings.ToUpper(e.url) + "/" })
		if err := e.engine().CheckPlan(p, 0); err != nil {
			t.Fatalf("CheckPlan: %v", err)
		}
	})
}

// Invariant 7: no secret in the plan, the journal, the logs or the errors.
func TestInvariant7_NoSecrets(t *testing.T) {
	e := newEnv(t, enforceDeleteStale, envOpts{})
	e.addStale("s", 3, 1)
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpDeleteToken, Status: 500, Times: 100, After: 2})
	res, err := e.engine().Run(context.Background(), janitor.RunInput{})
	if err == nil {
		t.Fatal("want the failed delete reported")
	}
	planJSON, _ := json.Marshal(res.Plan)
	journal, _ := os.ReadFile(e.jpath)
	haystacks := map[string]string{"plan": string(planJSON), "journal": string(journal), "logs": e.logs.String(), "error": err.Error()}
	for _, it := range res.Items {
		haystacks["item "+it.Item.TokenID] = it.Detail
	}

	// An authentication failure's error names the client id, not the secret.
	bad, _ := api.New(api.Config{BaseURL: e.url, ClientID: e.admin.ClientID,
		ClientSecret: secret.New("wrong-" + e.admin.ClientSecret), RateLimit: api.RateLimit{Requests: -1}, Sleep: noSleep, Now: e.clock.Now})
	_, aerr := e.engine(func(o *janitor.Options) { o.Tenant = bad }).Plan(context.Background())
	if aerr == nil {
		t.Fatal("a wrong secret must fail")
	}
	haystacks["auth error"] = aerr.Error()
	haystacks["logs"] = e.logs.String()

	for where, s := range haystacks {
		if strings.Contains(s, e.admin.ClientSecret) {
			t.Errorf("the client secret appears in the %s", where)
		}
	}
	if !strings.Contains(e.logs.String(), "unused-90d") {
		t.Error("the logs are empty: the test would prove nothing")
	}
}

// Invariant 8: 404 on delete is "already gone"; 403 on patch (of the own
// identity's token: a tenant whose network or geography rules refuse the
// call) is recorded with its reason and the other items continue.
func TestInvariant8_GoneAndForbidden(t *testing.T) {
	e := newEnv(t, noLimits+`policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
  - name: full-access
    mode: enforce
    match: {scopes: {any: ["sp:scopes:all"]}}
    action: patch
    patch: {setScopes: ["sp:scopes:default"]}
`, envOpts{})
	e.addStale("s", 3, 1)
	e.add("full-1", e.own(), "ci", 10*day, 1*day, pat.ScopeAll)
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpPatchToken, Status: http.StatusForbidden})
	eng := e.engine()
	pl, err := eng.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.sim.Remove("s-001") // gone between listing and delete: the DELETE meets a 404

	res, err := eng.Execute(context.Background(), pl)
	var failed *janitor.ActionsFailedError
	if !errors.As(err, &failed) || failed.Failed != 1 {
		t.Fatalf("err = %v, want exactly one failed action", err)
	}
	byID := map[string]janitor.ItemResult{}
	for _, it := range res.Items {
		byID[it.Item.TokenID] = it
	}
	if r := byID["s-001"]; r.Outcome != janitor.OutcomeGone || r.Status != 404 {
		t.Errorf("s-001: %+v, want gone (404)", r)
	}
	if r := byID["full-1"]; r.Outcome != janitor.OutcomeFailed || r.Status != 403 || !strings.Contains(r.Detail, "403") {
		t.Errorf("full-1: %+v, want failed with the 403", r)
	}
	for _, id := range []string{"s-000", "s-002"} {
		if byID[id].Outcome != janitor.OutcomeApplied || e.present(id) {
			t.Errorf("%s: %+v, want applied", id, byID[id])
		}
	}
	// The journal has every intent with its outcome.
	outcomes := map[string]audit.Outcome{}
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindOutcome {
			outcomes[r.TokenID] = *r.Outcome
		}
	}
	if o := outcomes["s-001"]; !o.AlreadyGone || o.Code != 404 {
		t.Errorf("journal outcome of s-001 = %+v, want already gone", o)
	}
	if o := outcomes["full-1"]; o.Status != "failed" || o.Code != 403 || o.Error == "" {
		t.Errorf("journal outcome of full-1 = %+v, want failed with the reason", o)
	}
	if len(outcomes) != 4 {
		t.Errorf("journal outcomes = %d, want 4", len(outcomes))
	}
}

func roundTrip(t *testing.T, p *plan.Plan) *plan.Plan {
	t.Helper()
	var b strings.Builder
	if err := plan.Write(&b, p); err != nil {
		t.Fatal(err)
	}
	q, err := plan.Read(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func mapKeysEqual(m map[string]int, keys ...string) bool {
	if len(m) != len(keys) {
		return false
	}
	for _, k := range keys {
		if m[k] != 1 {
			return false
		}
	}
	return true
}

const expireNeverExpiringCfg = `tenant:
  url: http://127.0.0.1:1
  apiVersion: v2025
  clientId: ad000000000000000000000000000c1d
limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 0}
policies:
  - name: expire-never
    mode: enforce
    match: {neverExpires: true}
    action: expire
    expireIn: 30d
`

// Invariant 6: a saved plan whose expirationDate was edited and sealed again
// (the planHash is a checksum, not a signature) is not applied with the
// edited date: only the policy's own date for the plan's time is accepted.
func TestInvariant6_EditedExpireDateIsDropped(t *testing.T) {
	e := newEnv(t, expireNeverExpiringCfg, envOpts{scenario: goldenScenario})
	pl, err := e.engine().Plan(context.Background())
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	p := roundTrip(t, pl.Plan)
	var target string
	far := pat.SetExpiration(time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC))
	for i, it := range p.Items.All() {
		if it.Action == "expire" && it.Mode == "enforce" {
			it.Patch = slices.Clone(it.Patch)
			for j := range it.Patch {
				if it.Patch[j].Path() == pat.PathExpirationDate {
					it.Patch[j] = far
					target = it.TokenID
				}
			}
			p.Items.Set(i, it)
		}
	}
	if target == "" {
		t.Fatal("no expire item in the plan")
	}
	if err := p.Seal(); err != nil {
		t.Fatal(err)
	}
	res, err := e.engine().ApplyPlan(context.Background(), p, janitor.ApplyOptions{})
	if err != nil {
		t.Fatalf("ApplyPlan: %v", err)
	}
	tok, _ := e.sim.Token(target)
	if tok.ExpirationDate != nil && tok.ExpirationDate.Year() == 2999 {
		t.Fatalf("token %s now expires %s: the edited date was sent", target, pat.FormatTime(*tok.ExpirationDate))
	}
	dropped := false
	for _, it := range res.Items {
		if it.Item.TokenID == target {
			dropped = it.Outcome == janitor.OutcomeDropped && strings.Contains(it.Detail, "is not the policy's")
		}
	}
	if !dropped {
		t.Fatalf("the edited item was not dropped with its reason: %+v", res.Items)
	}
}

// Invariant 5: a mutation that outlives MutationTimeout still gets its
// outcome (a failure naming the timeout), and the run does not blame the
// journal.
func TestInvariant5_TimedOutMutationGetsItsOutcome(t *testing.T) {
	e := newEnv(t, enforceDeleteStale, envOpts{})
	e.addStale("s", 1, 1)
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpDeleteToken, Latency: 2 * time.Second})
	// Wall time, but with a wide margin: the request takes 2 s, the
	// mutation may take 300 ms.
	_, err := e.engine(func(o *janitor.Options) { o.MutationTimeout = 300 * time.Millisecond }).Run(context.Background(), janitor.RunInput{})
	var intents, outcomes int
	for _, r := range e.journalRecords() {
		switch r.Kind {
		case audit.KindIntent:
			intents++
		case audit.KindOutcome:
			outcomes++
		}
	}
	var jerr *janitor.JournalError
	if errors.As(err, &jerr) {
		t.Errorf("run reported a journal failure for a request timeout: %v", jerr)
	}
	if intents != outcomes {
		t.Fatalf("journal has %d intents but %d outcomes: the timed-out request's outcome was lost", intents, outcomes)
	}
}

// Invariants 5 and 8: a DELETE answered 200 with an HTML page (a proxy, a
// sign-in interstitial) is not a deletion: the item fails with the status
// the tenant really sent.
func TestInvariant8_Delete200WithAPageIsNotApplied(t *testing.T) {
	e := newEnv(t, enforceDeleteStale, envOpts{})
	e.addStale("s", 1, 1)
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpDeleteToken, Status: 200, Body: "<html><body>Please sign in</body></html>"})
	res, err := e.engine().Run(context.Background(), janitor.RunInput{})
	if err == nil {
		t.Fatal("Run succeeded")
	}
	if len(res.Items) != 1 || res.Items[0].Outcome != janitor.OutcomeFailed || res.Items[0].Status != 200 {
		t.Fatalf("items %+v, want s-000 failed with status 200", res.Items)
	}
	if !e.present("s-000") {
		t.Fatal("s-000 is gone")
	}
}
