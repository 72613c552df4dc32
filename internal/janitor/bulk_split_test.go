package janitor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
)

// TestBulkUpdateOneVanishedTokenDoesNotFailTheBatch: the bulk update is
// all or nothing ("All IDs must reference personal access tokens that exist
// in the current tenant": an unknown id is a 400 for the whole request). A
// token its owner deletes between the listing and the expire (or one a
// tenant lists and does not have) made the whole batch of up to 25 fail:
// every other token of the batch was left unexpired and failed, run after
// run for a token listed that way each time. After a 400 (or 404) to a batch
// of several tokens, each is now sent alone under the intent already
// journaled: the others are expired, the vanished one alone fails.
func TestBulkUpdateOneVanishedTokenDoesNotFailTheBatch(t *testing.T) {
	e := newEnv(t, expireStale, envOpts{})
	ids := e.addStale("v", 4, 1)
	eng := e.engine()
	pl, err := eng.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	gone := ids[1]
	e.sim.Remove(gone) // its owner deletes it after the listing
	e.sim.ResetRequests()

	res, err := eng.Execute(context.Background(), pl)
	requireActionsFailed(t, err, 1)
	want := t0.Add(14 * day)
	for _, r := range res.Items {
		switch {
		case r.Item.TokenID == gone:
			if r.Outcome != janitor.OutcomeFailed || r.Status != http.StatusBadRequest {
				t.Errorf("%s (gone): %+v, want failed with the 400", gone, r)
			}
		case r.Outcome != janitor.OutcomeApplied:
			t.Errorf("%s: %+v, want applied", r.Item.TokenID, r)
		}
	}
	for _, id := range ids {
		if id == gone {
			continue
		}
		if tok, ok := e.sim.Token(id); !ok || tok.ExpirationDate == nil || !tok.ExpirationDate.Equal(want) {
			t.Errorf("%s in the tenant: %+v, want expirationDate %s", id, tok.ExpirationDate, pat.FormatTime(want))
		}
	}
	// What the tenant received: the batch of four (400), then each alone.
	var calls [][]string
	var codes []int
	for _, r := range idnsim.Mutations(e.sim.Requests()) {
		if r.Operation != idnsim.OpBulkUpdateTokens {
			t.Fatalf("unexpected mutation %s %s", r.Method, r.Path)
		}
		var body struct{ IDs []string }
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		calls, codes = append(calls, body.IDs), append(codes, r.Status)
	}
	if len(calls) != 5 || len(calls[0]) != 4 || codes[0] != http.StatusBadRequest {
		t.Fatalf("bulk updates %v answered %v; want the batch of 4 (400), then each token alone", calls, codes)
	}
	for i, id := range ids {
		if c := calls[i+1]; len(c) != 1 || c[0] != id {
			t.Errorf("call %d named %v, want %s alone", i+1, c, id)
		}
	}
	// The journal: one intent per token before the batch, one outcome each.
	intents, outcomes := map[string]int{}, map[string]audit.Outcome{}
	for _, r := range e.journalRecords() {
		switch r.Kind {
		case audit.KindIntent:
			intents[r.TokenID]++
		case audit.KindOutcome:
			outcomes[r.TokenID] = *r.Outcome
		}
	}
	for _, id := range ids {
		o := outcomes[id]
		switch {
		case intents[id] != 1:
			t.Errorf("%s: %d intents, want 1", id, intents[id])
		case id == gone && (o.Status != "failed" || o.Code != http.StatusBadRequest || !strings.Contains(o.Error, "not found")):
			t.Errorf("journal outcome of %s (gone): %+v", id, o)
		case id != gone && (o.Status != "applied" || o.Code != http.StatusOK):
			t.Errorf("journal outcome of %s: %+v", id, o)
		}
	}
}

// TestHostileBulkSplitStopsWhenTheRunStops: a run stopped (SIGTERM, its
// time limit, a journal failure elsewhere) while a batch of expires is in
// flight lets that request finish, and starts no other mutation. The
// token-by-token resend after a refused batch is new requests, each one a
// change to the tenant: it sent all of them (up to 25, for up to a whole
// mutation timeout) after the stop. Now the run's stop is checked before
// each; the tokens not sent alone keep the batch's failure, with why.
func TestHostileBulkSplitStopsWhenTheRunStops(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var once sync.Once
	onRequest := func(r idnsim.Request) {
		if r.Operation == idnsim.OpBulkUpdateTokens {
			once.Do(stop) // stopped while the tenant answers the batch
		}
	}
	e := newEnv(t, expireStale, envOpts{sim: idnsim.Options{OnRequest: onRequest}})
	ids := e.addStale("v", 4, 1)
	eng := e.engine()
	pl, err := eng.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	gone := ids[1]
	e.sim.Remove(gone) // the batch is refused 400
	e.sim.ResetRequests()

	res, err := eng.Execute(ctx, pl)
	if err == nil {
		t.Fatal("Execute: no error, want the run to report its failed actions")
	}
	// What the tenant received: the batch, nothing after the stop.
	muts := e.mutations()
	if len(muts) != 1 || muts[0].Operation != idnsim.OpBulkUpdateTokens || muts[0].Status != http.StatusBadRequest {
		var got []string
		for _, r := range muts {
			got = append(got, fmt.Sprintf("%s %s -> %d %s", r.Method, r.Path, r.Status, r.Body))
		}
		t.Fatalf("the tenant received %d mutations after the stop, want only the refused batch:\n%s", len(muts), strings.Join(got, "\n"))
	}
	for _, id := range ids {
		if tok, ok := e.sim.Token(id); ok && tok.ExpirationDate != nil {
			t.Errorf("%s expired (%s) after the run stopped", id, pat.FormatTime(*tok.ExpirationDate))
		}
	}
	for _, r := range res.Items {
		if r.Outcome != janitor.OutcomeFailed || r.Status != http.StatusBadRequest || !strings.Contains(r.Detail, "the run stopped") {
			t.Errorf("%s: %+v, want failed with the batch's 400 and that the run stopped", r.Item.TokenID, r)
		}
	}
	// The journal: one intent and one failed outcome per token.
	intents, outcomes := map[string]int{}, map[string][]audit.Outcome{}
	for _, r := range e.journalRecords() {
		switch r.Kind {
		case audit.KindIntent:
			intents[r.TokenID]++
		case audit.KindOutcome:
			outcomes[r.TokenID] = append(outcomes[r.TokenID], *r.Outcome)
		}
	}
	for _, id := range ids {
		if o := outcomes[id]; intents[id] != 1 || len(o) != 1 || o[0].Status != "failed" || o[0].Code != http.StatusBadRequest {
			t.Errorf("journal of %s: %d intents, outcomes %+v; want one intent and one failed outcome (400)", id, intents[id], o)
		}
	}
}
