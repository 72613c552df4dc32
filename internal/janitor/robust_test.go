package janitor_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
)

// Under a 429 storm and 5xx bursts every planned action completes or is
// reported failed (in the result and the journal); none is silently lost, and
// a later run finishes the job without repeating what was done.
func TestRateLimitStormAndServerErrors(t *testing.T) {
	e := newEnv(t, enforceDeleteStale, envOpts{})
	ids := e.addStale("s", 60, 1)
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, Status: 503, Times: 2}) // retried away
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpDeleteToken, Status: 429, RetryAfter: "1", Probability: 0.4, Seed: 7})
	// 20 consecutive 503s: more than 4 workers can absorb with 4 failed
	// attempts each, so at least one item exhausts its 5 attempts and must be
	// reported failed.
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpDeleteToken, Status: 503, After: 20, Times: 20})
	// Ambiguous failures: the delete happens, the answer is a 502; the retry
	// then meets a 404, which the client counts as success.
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpDeleteToken, Status: 502, Apply: true, After: 40, Times: 3})

	res, err := e.engine().Run(context.Background(), janitor.RunInput{})
	var failed *janitor.ActionsFailedError
	if err != nil && !errors.As(err, &failed) {
		t.Fatalf("Run: %v", err)
	}
	if len(res.Items) != len(ids) {
		t.Fatalf("results for %d items, want %d", len(res.Items), len(ids))
	}
	outcomes := map[string]string{}
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindOutcome {
			outcomes[r.TokenID] = r.Outcome.Status
		}
	}
	nApplied, nFailed := 0, 0
	for _, it := range res.Items {
		switch it.Outcome {
		case janitor.OutcomeApplied, janitor.OutcomeGone:
			nApplied++
			if e.present(it.Item.TokenID) {
				t.Errorf("%s reported %s but still present", it.Item.TokenID, it.Outcome)
			}
		case janitor.OutcomeFailed:
			nFailed++
		default:
			t.Errorf("%s: outcome %s, want applied or failed", it.Item.TokenID, it.Outcome)
		}
		if outcomes[it.Item.TokenID] != string(it.Outcome) {
			t.Errorf("%s: journal outcome %q, result %q", it.Item.TokenID, outcomes[it.Item.TokenID], it.Outcome)
		}
	}
	if nFailed == 0 {
		t.Error("the 503 burst exhausted no item's retries: the test exercises less than it claims")
	}
	if failed == nil || failed.Failed != nFailed {
		t.Errorf("error = %v, want %d failed", err, nFailed)
	}
	t.Logf("applied %d, failed %d, requests %d", nApplied, nFailed, len(e.sim.Requests()))

	// The failed ones are planned again and finished; nothing is repeated.
	e.sim.ClearFaults()
	before := deletedIDs(e.sim.Requests())
	res2, err := e.engine().Run(context.Background(), janitor.RunInput{})
	if err != nil {
		t.Fatalf("second Run: %v", err)
	}
	for _, it := range res2.Items {
		if before[it.Item.TokenID] > 0 {
			t.Errorf("%s deleted twice", it.Item.TokenID)
		}
	}
	for _, id := range ids {
		if e.present(id) {
			t.Errorf("%s survives two runs", id)
		}
	}
}

// A crash between an intent and its outcome: the next run resolves the
// intent against a fresh listing, repeats no completed mutation and loses
// none.
func TestRecoversInterruptedIntents(t *testing.T) {
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
	// The patched tokens are the own identity's: the only ones a real
	// tenant lets patjanitor PATCH.
	e.add("full-done", e.own(), "ci", 10*day, day, "sp:scopes:default") // the interrupted patch went through
	e.add("full-todo", e.own(), "cd", 10*day, day, pat.ScopeAll)        // the interrupted patch did not

	// What a killed run leaves: intents without outcomes. s-000's delete went
	// through; s-001's did not.
	ctx := context.Background()
	tok := func(id string) *pat.Token { t, _ := e.sim.Token(id); return &t }
	dead := "20261125T030000Z-dead0000"
	appendRec := func(r audit.Record) {
		if _, err := e.journal.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	appendRec(audit.Record{Kind: audit.KindRunStart, RunID: dead})
	for _, id := range []string{"s-000", "s-001"} {
		appendRec(audit.Record{Kind: audit.KindIntent, RunID: dead, Policy: "unused-90d", TokenID: id, Before: tok(id),
			Request: &audit.Request{Method: "DELETE", Path: api.TokenPath(pat.V3, id)}})
	}
	for _, id := range []string{"full-done", "full-todo"} {
		appendRec(audit.Record{Kind: audit.KindIntent, RunID: dead, Policy: "full-access", TokenID: id, Before: tok(id),
			Request: &audit.Request{Method: "PATCH", Path: api.TokenPath(pat.V3, id),
				Patch: []pat.PatchOp{pat.SetScopes([]string{"sp:scopes:default"})}}})
	}
	e.sim.Remove("s-000")
	e.openJournal() // a new process opens the journal
	if got := len(e.journal.Pending()); got != 4 {
		t.Fatalf("pending intents = %d, want 4", got)
	}
	e.sim.ResetRequests()

	res, err := e.engine().Run(ctx, janitor.RunInput{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	gone := map[string]bool{}
	for _, r := range res.Recovered {
		gone[r.Intent.TokenID] = r.Gone
	}
	if len(gone) != 4 || !gone["s-000"] || gone["s-001"] || gone["full-done"] || gone["full-todo"] {
		t.Errorf("recovered = %v", gone)
	}
	if !mapKeysEqual(deletedIDs(e.sim.Requests()), "s-001", "s-002") {
		t.Errorf("deleted %v, want s-001 and s-002 (s-000 was done)", deletedIDs(e.sim.Requests()))
	}
	if !mapKeysEqual(patchedIDs(e.sim.Requests()), "full-todo") {
		t.Errorf("patched %v, want only full-todo", patchedIDs(e.sim.Requests()))
	}
	e.openJournal()
	if p := e.journal.Pending(); len(p) != 0 {
		t.Errorf("after recovery %d intents are still pending", len(p))
	}
}

// stopAfter is a Tenant that cancels the run's context when the nth delete
// starts, then lets that delete run on the context it was given.
type stopAfter struct {
	janitor.Tenant
	n      int
	cancel context.CancelFunc
	mu     sync.Mutex
	calls  int
	ctxErr []error
}

func (s *stopAfter) DeleteToken(ctx context.Context, id string) error {
	s.mu.Lock()
	s.calls++
	if s.calls == s.n {
		s.cancel()
	}
	s.mu.Unlock()
	time.Sleep(time.Millisecond) // give a cancellation a chance to tear the request
	err := s.Tenant.DeleteToken(ctx, id)
	s.mu.Lock()
	s.ctxErr = append(s.ctxErr, ctx.Err())
	s.mu.Unlock()
	return err
}

// Graceful stop: when the context ends, the mutation in flight completes and
// is journaled, and no new one starts.
func TestStopFinishesTheMutationInFlight(t *testing.T) {
	e := newEnv(t, enforceDeleteStale, envOpts{})
	e.addStale("s", 10, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tenant := &stopAfter{Tenant: e.client, n: 3, cancel: cancel}
	res, err := e.engine(func(o *janitor.Options) { o.Tenant = tenant; o.Workers = 1 }).Run(ctx, janitor.RunInput{})
	var stopped *janitor.StoppedError
	if !errors.As(err, &stopped) || stopped.NotStarted != 7 {
		t.Fatalf("err = %v, want stopped with 7 not started", err)
	}
	if got := len(deletedIDs(e.sim.Requests())); got != 3 {
		t.Fatalf("deleted %d, want 3 (the third was in flight at the stop)", got)
	}
	for i, cerr := range tenant.ctxErr {
		if cerr != nil {
			t.Errorf("delete %d ran on a cancelled context: %v", i+1, cerr)
		}
	}
	if res.Count(janitor.OutcomeApplied) != 3 || res.Count(janitor.OutcomeNotStarted) != 7 {
		t.Errorf("applied %d, not started %d", res.Count(janitor.OutcomeApplied), res.Count(janitor.OutcomeNotStarted))
	}
	outcomes := 0
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindOutcome {
			outcomes++
		}
	}
	if outcomes != 3 {
		t.Errorf("journal outcomes = %d, want 3", outcomes)
	}
}

// The API client the engine is built on must satisfy the engine's interface.
var _ janitor.Tenant = (*api.Client)(nil)
