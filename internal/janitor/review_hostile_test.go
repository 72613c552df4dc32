package janitor_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
)

// A listing whose connection breaks mid-body is asked for again, and the
// tenant answers the second time with a DIFFERENT listing (it changed
// between the attempts): the first attempt's 350-odd tokens (more than a
// batch of the pipe, so some were decided before the break) must leave no
// trace. The run acts on exactly the second listing: the tenant receives
// deletes of its stale tokens only, and the journal's intents hold them as
// the second listing had them.
func TestHostileRetryReturnsAnotherListing(t *testing.T) {
	e := newEnv(t, `limits: {maxActionsPerRun: 0, maxActionsPercent: 90, maxActionsPerOwner: 0}
policies:
  - {name: unused-90d, mode: enforce, match: {unusedFor: 90d}, action: delete}
`, envOpts{})
	keep := e.addStale("b", 40, 4)
	for i := range 20 {
		e.add(fmt.Sprintf("fresh-%02d", i), "b-owner-0", "fresh", 400*day, day)
	}
	// The first attempt: 700 stale tokens the tenant no longer has, and the
	// second listing's tokens spelt in capitals (a stale copy counted twice
	// would be a duplicate, and a fresh one, decided stale here, a delete).
	var first []pat.Token
	lu := t0.Add(-300 * day)
	for i := range 700 {
		first = append(first, pat.Token{ID: fmt.Sprintf("gone-%03d", i), Name: "gone", Created: t0.Add(-400 * day), LastUsed: &lu,
			Owner: pat.Owner{Type: "IDENTITY", ID: "gone-owner", Name: "G"}, Scope: pat.ScopesOf("idn:sources:read")})
	}
	for _, tk := range e.sim.Tokens() {
		tk.ID = strings.ToUpper(tk.ID)
		tk.LastUsed = &lu
		first = append([]pat.Token{tk}, first...)
	}
	before := map[string]pat.Token{}
	for _, tk := range e.sim.Tokens() {
		before[tk.ID] = tk
	}
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, Status: 200, Body: listingJSON(t, first), Truncate: true, Times: 1})
	res, err := e.engine().Run(context.Background(), janitor.RunInput{})
	if err != nil {
		t.Fatalf("run after a retried listing: %v", err)
	}
	if got := len(idnsim.ByOperation(e.sim.Requests(), idnsim.OpListTokens)); got != 2 {
		t.Fatalf("%d listing calls, want 2 (the cut one and its retry)", got)
	}
	if res.Plan.Population != len(keep)+20+1 || res.Plan.Items.Len() != len(keep) {
		t.Fatalf("population %d, %d items; want %d, %d", res.Plan.Population, res.Plan.Items.Len(), len(keep)+21, len(keep))
	}
	del := deletedIDs(e.mutations())
	var got []string
	for id, n := range del {
		if n != 1 {
			t.Fatalf("token %s deleted %d times", id, n)
		}
		got = append(got, id)
	}
	sort.Strings(got)
	if fmt.Sprint(got) != fmt.Sprint(keep) {
		t.Fatalf("the tenant received deletes of %v, want %v", got, keep)
	}
	intents := 0
	for _, r := range e.journalRecords() {
		if r.Kind != "intent" {
			continue
		}
		intents++
		tk, ok := before[r.TokenID]
		if r.Before == nil || !ok || r.Before.ID != tk.ID || !r.Before.LastUsed.Equal(*tk.LastUsed) {
			t.Fatalf("intent %s: before %+v, want the token as the second listing had it", r.TokenID, r.Before)
		}
	}
	if intents != len(keep) {
		t.Fatalf("%d intents, want %d", intents, len(keep))
	}
}

// A grace period the config accepts must be one the store can read back.
// policies.yaml takes durations up to about 292 years (time.Duration); the
// compact marks of schema 4 refused, when reading, a grace of more than 2^33
// seconds (272 years): a policy with `grace: 100000d` (274 years) stored its
// marks in the first run, and every run after that failed to read them, as
// incomplete data, for good (nothing could be acted on any more, and the
// store had to be repaired by hand).
func TestGraceOfAnyAcceptedLengthIsReadBack(t *testing.T) {
	g := newGraceEnv(t, strings.Replace(graceConfig, "grace: 14d", "grace: 100000d", 1))
	g.addStale("b", 2, 1)
	first := g.run() // marks b-000 and b-001, warns their owners
	if n := first.Plan.Items.Len(); n != 2 {
		t.Fatalf("first run: %d items, want 2", n)
	}
	marks := g.marks()
	if len(marks) != 2 || marks["b-000"].Grace != 100000*day || marks["b-000"].Deadline == nil {
		t.Fatalf("marks after the first run: %+v", marks)
	}
	g.clock.Set(at(30))
	res := g.run() // reads the marks again: still held, nothing due
	if len(res.Items) != 0 || res.Plan.Items.Len() != 2 || res.Plan.Items.At(0).Mode != plan.ModeGrace {
		t.Fatalf("second run: %d results, items %+v; want the two tokens held in grace", len(res.Items), res.Plan.Items.Slice())
	}
	g.requireNoMutations()
	for _, r := range g.journalRecords() {
		if r.Kind == "intent" {
			t.Fatalf("journaled an intent while the grace runs: %+v", r)
		}
	}
}

// An interrupted intent on a token that is in use again (so outside the
// filtered listings a stale-token policy makes): the run lists every token
// unfiltered, finds it still there and closes the intent as
// present-after-crash; it is neither taken for gone nor acted on. Only the
// interrupted stale token, now gone, is closed as gone.
func TestHostileOpenIntentOutsideTheFilteredListings(t *testing.T) {
	e := newEnv(t, noLimits+`policies:
  - {name: unused-90d, mode: enforce, match: {unusedFor: 90d}, action: delete}
`, envOpts{})
	e.addStale("s", 2, 1)
	e.add("busy", "o-busy", "busy", 400*day, day) // used yesterday
	ctx := context.Background()
	dead := "20261125T030000Z-dead0000"
	for _, r := range []audit.Record{{Kind: audit.KindRunStart, RunID: dead}} {
		if _, err := e.journal.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"busy", "s-000"} {
		tok, _ := e.sim.Token(id)
		if _, err := e.journal.Append(ctx, audit.Record{Kind: audit.KindIntent, RunID: dead, Policy: "unused-90d", TokenID: id,
			Before: &tok, Request: &audit.Request{Method: "DELETE", Path: api.TokenPath(pat.V3, id)}}); err != nil {
			t.Fatal(err)
		}
	}
	e.sim.Remove("s-000") // its delete went through
	e.openJournal()
	e.sim.ResetRequests()

	res, err := e.engine().Run(ctx, janitor.RunInput{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, r := range idnsim.ByOperation(e.sim.Requests(), idnsim.OpListTokens) {
		if r.Query.Get("filters") != "" {
			t.Fatalf("listing with filters %q while intents were open: absence from it proves nothing", r.Query.Get("filters"))
		}
	}
	gone := map[string]bool{}
	for _, r := range res.Recovered {
		gone[r.Intent.TokenID] = r.Gone
	}
	if len(gone) != 2 || gone["busy"] || !gone["s-000"] {
		t.Fatalf("recovered %v, want busy present and s-000 gone", gone)
	}
	if d := deletedIDs(e.mutations()); len(d) != 1 || d["s-001"] != 1 {
		t.Fatalf("deleted %v, want s-001 only", d)
	}
	status := map[string]string{}
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindOutcome && r.RunID == dead {
			status[r.TokenID] = r.Outcome.Status
		}
	}
	if status["busy"] != janitor.StatusPresentAfterCrash || status["s-000"] != janitor.StatusGoneAfterCrash {
		t.Fatalf("journaled outcomes of the interrupted run %v", status)
	}
	if !e.present("busy") {
		t.Fatal("busy was removed")
	}
}
