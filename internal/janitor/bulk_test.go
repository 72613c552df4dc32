package janitor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/notify/notifytest"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
)

const expireStale = noLimits + `policies:
  - name: expire-stale
    mode: enforce
    match: {unusedFor: 90d}
    action: expire
    expireIn: 14d
`

// The simulator in its default (real-tenant) mode refuses a PATCH of another
// owner's token. An enforce run that expires 60 tokens of 12 other owners,
// with the listing on v3, makes three bulk updates of at most 25 ids on the
// v1 path and no per-token PATCH; each token is expired; the journal holds
// one intent (written, and durable, before its batch reached the tenant) and
// one applied outcome per token.
func TestRealTenantExpireGoesThroughBulkUpdate(t *testing.T) {
	var (
		mu       sync.Mutex
		jpath    string
		problems []string
	)
	// When a bulk update arrives, every token it names must already have its
	// intent in the journal file.
	onRequest := func(r idnsim.Request) {
		if r.Operation != idnsim.OpBulkUpdateTokens {
			return
		}
		var body struct{ IDs []string }
		_ = json.Unmarshal(r.Body, &body)
		mu.Lock()
		defer mu.Unlock()
		intents := map[string]bool{}
		if _, err := audit.VerifyPath(jpath, audit.VerifyOptions{Kinds: []audit.Kind{audit.KindIntent}, Each: func(rec audit.Record) error {
			intents[rec.TokenID] = true
			return nil
		}}); err != nil {
			problems = append(problems, err.Error())
			return
		}
		for _, id := range body.IDs {
			if !intents[id] {
				problems = append(problems, "bulk update sent before the intent of "+id)
			}
		}
	}
	e := newEnv(t, expireStale, envOpts{sim: idnsim.Options{OnRequest: onRequest}})
	mu.Lock()
	jpath = e.jpath
	mu.Unlock()
	ids := e.addStale("x", 60, 5)

	res, err := e.engine().Run(context.Background(), janitor.RunInput{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	reqs := e.sim.Requests()
	if p := patchedIDs(reqs); len(p) != 0 {
		t.Fatalf("per-token PATCHes %v: a real tenant refuses them", keys(p))
	}
	calls := 0
	for _, r := range idnsim.Mutations(reqs) {
		if r.Operation != idnsim.OpBulkUpdateTokens || r.Path != api.BulkPath || r.ContentType != "application/json" {
			t.Fatalf("unexpected mutation %s %s (%s)", r.Method, r.Path, r.ContentType)
		}
		calls++
	}
	bulk := bulkIDs(t, reqs) // fails on a call of more than 25 ids
	if calls != 3 || !mapKeysEqual(bulk, ids...) {
		t.Fatalf("%d bulk updates covering %d tokens, want 3 covering each of the 60 once", calls, len(bulk))
	}
	mu.Lock()
	if len(problems) > 0 {
		t.Fatalf("journal before the request: %v", problems)
	}
	mu.Unlock()
	want := t0.Add(14 * day)
	for _, id := range ids {
		tok, _ := e.sim.Token(id)
		if tok.ExpirationDate == nil || !tok.ExpirationDate.Equal(want) {
			t.Errorf("%s expires %v, want %v", id, tok.ExpirationDate, want)
		}
	}
	if res.Count(janitor.OutcomeApplied) != 60 {
		t.Errorf("applied %d, want 60", res.Count(janitor.OutcomeApplied))
	}
	intents, outcomes := map[string]int{}, map[string]int{}
	for _, r := range e.journalRecords() {
		switch r.Kind {
		case audit.KindIntent:
			intents[r.TokenID]++
			if r.Request.Path != api.BulkPath || r.Request.Method != "PATCH" || len(r.Request.Patch) != 1 {
				t.Errorf("intent request %+v", r.Request)
			}
		case audit.KindOutcome:
			outcomes[r.TokenID]++
			if r.Outcome.Status != "applied" || r.Outcome.Code != 200 {
				t.Errorf("outcome of %s: %+v", r.TokenID, r.Outcome)
			}
		}
	}
	if !mapKeysEqual(intents, ids...) || !mapKeysEqual(outcomes, ids...) {
		t.Errorf("journal: %d intents, %d outcomes, want one of each per token", len(intents), len(outcomes))
	}
}

// A bulk update answered 200 with one token missing and another with a date
// it was not asked for: each token is judged on its own; only the one shown
// with the requested date counts as applied, the others are failed with what
// came back, in the result and in the journal.
func TestHostileBulkUpdatePartialAnswer(t *testing.T) {
	e := newEnv(t, expireStale, envOpts{})
	ids := e.addStale("p", 3, 1)
	eng := e.engine()
	pl, err := eng.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := pat.FormatTime(t0.Add(14 * day))
	tok := func(id, exp string) string {
		return fmt.Sprintf(`{"id":%q,"name":"n","scope":["idn:sources:read"],"owner":{"type":"IDENTITY","id":"o","name":"O"},"created":"2025-10-22T03:00:00.000Z","lastUsed":null,"managed":false,"accessTokenValiditySeconds":43200,"expirationDate":%q}`, id, exp)
	}
	body := "[" + tok(ids[0], want) + "," + tok(ids[1], "2030-01-01T00:00:00.000Z") + "]"
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpBulkUpdateTokens, Status: 200, Body: body, Apply: true})

	res, err := eng.Execute(context.Background(), pl)
	requireActionsFailed(t, err, 2)
	byID := map[string]janitor.ItemResult{}
	for _, r := range res.Items {
		byID[r.Item.TokenID] = r
	}
	if r := byID[ids[0]]; r.Outcome != janitor.OutcomeApplied {
		t.Errorf("%s: %+v, want applied", ids[0], r)
	}
	if r := byID[ids[1]]; r.Outcome != janitor.OutcomeFailed || !strings.Contains(r.Detail, "answered expirationDate 2030-01-01T00:00:00.000Z, requested "+want) {
		t.Errorf("%s: %+v, want failed with the answered date", ids[1], r)
	}
	if r := byID[ids[2]]; r.Outcome != janitor.OutcomeFailed || !strings.Contains(r.Detail, "does not include this token") {
		t.Errorf("%s: %+v, want failed: missing from the answer", ids[2], r)
	}
	if n := len(idnsim.Mutations(e.sim.Requests())); n != 1 {
		t.Errorf("%d mutating requests, want one bulk update", n)
	}
	outcomes := map[string]audit.Outcome{}
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindOutcome {
			outcomes[r.TokenID] = *r.Outcome
		}
	}
	if o := outcomes[ids[1]]; o.Status != "failed" || o.Code != 200 || !strings.Contains(o.Error, "2030-01-01") {
		t.Errorf("journal outcome of %s: %+v", ids[1], o)
	}
	if o := outcomes[ids[2]]; o.Status != "failed" || !strings.Contains(o.Error, "does not include") {
		t.Errorf("journal outcome of %s: %+v", ids[2], o)
	}
	if o := outcomes[ids[0]]; o.Status != "applied" {
		t.Errorf("journal outcome of %s: %+v", ids[0], o)
	}
}

// A bulk update the tenant refuses (403: the caller is no org admin) fails
// every token of the batch, each with its outcome.
func TestHostileBulkUpdateRefused(t *testing.T) {
	e := newEnv(t, expireStale, envOpts{})
	ids := e.addStale("r", 2, 1)
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpBulkUpdateTokens, Status: 403})
	res, err := e.engine().Run(context.Background(), janitor.RunInput{})
	requireActionsFailed(t, err, 2)
	for _, r := range res.Items {
		if r.Outcome != janitor.OutcomeFailed || r.Status != 403 {
			t.Errorf("%+v", r)
		}
	}
	n := 0
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindOutcome && r.Outcome.Code == 403 {
			n++
		}
	}
	if n != len(ids) {
		t.Errorf("%d outcomes with the 403, want %d", n, len(ids))
	}
}

// An enforce patch policy in the simulator's default (real-tenant) mode:
// other owners' tokens are needs-owner (no request, no journal record, the
// reason says why); the own identity's token is patched.
func TestRealTenantPatchNeedsOwner(t *testing.T) {
	e := newEnv(t, noLimits+`policies:
  - name: full-access
    mode: enforce
    match: {scopes: {any: ["sp:scopes:all"]}}
    action: patch
    patch: {setScopes: ["sp:scopes:default"]}
`, envOpts{})
	for i := range 3 {
		e.add(fmt.Sprintf("other-%d", i), fmt.Sprintf("owner-%d", i), fmt.Sprintf("ci-%d", i), 10*day, day, pat.ScopeAll)
	}
	e.add("mine", e.own(), "mine", 10*day, day, pat.ScopeAll)

	res, err := e.engine().Run(context.Background(), janitor.RunInput{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if p := patchedIDs(e.sim.Requests()); !mapKeysEqual(p, "mine") {
		t.Fatalf("patched %v, want only the own identity's token", keys(p))
	}
	if m := e.mutations(); len(m) != 1 {
		t.Fatalf("%d mutating requests, want 1", len(m))
	}
	modes := map[string]string{}
	for _, it := range res.Plan.Items.All() {
		modes[it.TokenID] = it.Mode
		if it.Mode == plan.ModeNeedsOwner && !strings.Contains(it.Reason, janitor.ReasonNeedsOwner) {
			t.Errorf("%s: reason %q lacks %q", it.TokenID, it.Reason, janitor.ReasonNeedsOwner)
		}
	}
	for i := range 3 {
		id := fmt.Sprintf("other-%d", i)
		if modes[id] != plan.ModeNeedsOwner {
			t.Errorf("%s: mode %q, want needs-owner", id, modes[id])
		}
		if tok, _ := e.sim.Token(id); !tok.Scope.Has(pat.ScopeAll) {
			t.Errorf("%s was changed: %v", id, tok.Scope)
		}
	}
	if modes["mine"] != plan.ModeEnforce {
		t.Errorf("mine: mode %q, want enforce", modes["mine"])
	}
	if tok, _ := e.sim.Token("mine"); tok.Scope.Has(pat.ScopeAll) {
		t.Errorf("the own identity's token was not patched: %v", tok.Scope)
	}
	for _, r := range e.journalRecords() {
		if strings.HasPrefix(r.TokenID, "other-") {
			t.Errorf("journal record for %s: %+v", r.TokenID, r)
		}
	}
}

// With a filtered listing the own PAT is not listed: the own identity comes
// from owner-id=me, and an identity that cannot be found makes every patch
// item needs-owner (never a guess).
func TestPatchOwnIdentityFromOwnerIDMe(t *testing.T) {
	cfg := noLimits + `policies:
  - name: rename-stale
    mode: enforce
    match: {unusedFor: 90d}
    action: patch
    patch: {namePrefix: "stale-"}
`
	e := newEnv(t, cfg, envOpts{})
	e.add("mine", e.own(), "mine", 400*day, 200*day)
	e.add("theirs", "someone", "theirs", 400*day, 200*day)
	if _, err := e.engine().Run(context.Background(), janitor.RunInput{}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if p := patchedIDs(e.sim.Requests()); !mapKeysEqual(p, "mine") {
		t.Fatalf("patched %v, want only mine", keys(p))
	}
	me := false
	for _, r := range e.sim.Requests() {
		if r.Operation == idnsim.OpListTokens && r.Query.Get("owner-id") == "me" {
			me = true
		}
	}
	if !me {
		t.Fatal("no owner-id=me listing: where did the own identity come from?")
	}

	// That listing fails: nothing is patched, both items need their owner.
	e2 := newEnv(t, cfg, envOpts{})
	e2.add("mine", e2.own(), "mine", 400*day, 200*day)
	e2.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, After: 2, Status: 500})
	res, err := e2.engine().Run(context.Background(), janitor.RunInput{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	e2.requireNoMutations()
	if res.Plan.Items.Len() != 1 || res.Plan.Items.At(0).Mode != plan.ModeNeedsOwner || !strings.Contains(res.Plan.Items.At(0).Reason, "own identity is unknown") {
		t.Fatalf("items %+v", res.Plan.Items.Slice())
	}
}

// With owner notifications, a patch policy's needs-owner items reach their
// owners: the digest says exactly what to change, and nothing is sent to the
// tenant for them; the own identity's token is patched as usual.
func TestNeedsOwnerDigestTellsTheOwnerWhatToChange(t *testing.T) {
	cfg := strings.Replace(graceConfig, `  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
    grace: 14d
`, `  - name: full-access
    mode: enforce
    match: {scopes: {any: ["sp:scopes:all"]}}
    action: patch
    patch: {setScopes: ["sp:scopes:default"]}
`, 1)
	g := newGraceEnv(t, cfg)
	g.add("theirs", "otto", "otto-ci", 10*day, day, pat.ScopeAll)
	g.add("mine", g.own(), "mine", 10*day, day, pat.ScopeAll)
	res := g.run()
	if p := patchedIDs(g.sim.Requests()); !mapKeysEqual(p, "mine") {
		t.Fatalf("patched %v, want only mine", keys(p))
	}
	if res.Count(janitor.OutcomeApplied) != 1 {
		t.Fatalf("items %+v", res.Items)
	}
	ds := notifytest.OfKind(g.hook.Take(), notify.KindDigest)
	if len(ds) != 1 || ds[0].Digest.Owner.ID != "otto" || len(ds[0].Digest.Items) != 1 {
		t.Fatalf("digests %+v, want one to otto", ds)
	}
	it := ds[0].Digest.Items[0]
	if !it.NeedsOwner || it.TokenID != "theirs" || it.Change != "set the scope to [sp:scopes:default]" || it.Deadline != nil {
		t.Fatalf("digest item %+v", it)
	}
}

// Invariant 5 for a batch: when the journal fails on the second intent of a
// batch, the bulk update is not sent at all; the intent already written is
// closed with a not-started outcome (if the journal still takes it) so that
// no later run takes it for a request that may have been sent.
func TestBulkUpdateJournalFirst(t *testing.T) {
	e := newEnv(t, expireStale, envOpts{})
	e.addStale("j", 3, 1)
	fj := newFailingJournal(e.journal, 2) // run-start and one intent
	res, err := e.engine(func(o *janitor.Options) { o.Journal = fj }).Run(context.Background(), janitor.RunInput{})
	var jerr *janitor.JournalError
	if !errors.As(err, &jerr) {
		t.Fatalf("err = %v, want *JournalError", err)
	}
	e.requireNoMutations()
	if n := res.Count(janitor.OutcomeNotStarted); n != 3 {
		t.Fatalf("not started = %d, want 3: %+v", n, res.Items)
	}
	if len(fj.intent) != 1 {
		t.Fatalf("intents written: %v, want the first only", fj.intent)
	}
}
