package janitor

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/state"
)

// actionOf reads back the action of every request the engine journals (a
// new kind of request must be taught to the catch-up, or its confirmation
// would be rebuilt as another action).
func TestActionOfReadsBackEveryRequest(t *testing.T) {
	when := time.Date(2026, 12, 10, 3, 0, 0, 0, time.UTC)
	ops := map[policy.Action][]pat.PatchOp{
		policy.ActionPatch:  {pat.SetScopes([]string{"idn:a"}), pat.Rename("x")},
		policy.ActionExpire: {pat.SetExpiration(when)},
	}
	for _, v := range []pat.APIVersion{pat.V3, pat.V2025, pat.V1} {
		e := &Engine{version: v}
		for _, a := range []policy.Action{policy.ActionDelete, policy.ActionPatch, policy.ActionExpire} {
			req := e.request(work{item: plan.Item{TokenID: "t-1", Action: string(a)}, ops: ops[a]})
			if got := actionOf(audit.Record{Request: &req}); got != a {
				t.Errorf("%s %s: read back as %s", v, a, got)
			}
		}
	}
	for _, a := range []policy.Action{policy.ActionDelete, policy.ActionDisable, "enable"} {
		req := ClientRequest(a, "c-1")
		if got := actionOf(audit.Record{Resource: apiclient.Resource, Request: &req}); got != a {
			t.Errorf("API client %s: read back as %s", a, got)
		}
	}
}

// The catch-up holds the records, not the tail's steps: a tail of three
// times state.MaxConfirmed confirmed deletes (a backup months old; a
// million records cost the old catch-up a gigabyte of memory during the
// open) never holds more than twice MaxConfirmed records, and writes the
// newest MaxConfirmed.
func TestCatchUpHoldsNoMoreThanTwiceWhatTheStoreKeeps(t *testing.T) {
	st, err := state.Open(filepath.Join(t.TempDir(), state.FileName), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cu := NewCatchUp(st, nil)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	most := 0
	n := 3 * state.MaxConfirmed
	for i := range n {
		id, run := fmt.Sprintf("tok-%06d", i), fmt.Sprintf("run-%d", i/1000)
		at := t0.Add(time.Duration(i) * time.Second)
		cu.Record(audit.Record{Time: at, Kind: audit.KindIntent, RunID: run, Policy: "stale", TokenID: id,
			Request: &audit.Request{Method: http.MethodDelete, Path: api.TokenPath(pat.V3, id)}})
		cu.Record(audit.Record{Time: at, Kind: audit.KindOutcome, RunID: run, Policy: "stale", TokenID: id,
			Outcome: &audit.Outcome{Status: string(OutcomeApplied), Code: 204}})
		if f := cu.folds[""]; f != nil {
			most = max(most, len(f.recs), len(f.touched))
		}
	}
	if most > 2*state.MaxConfirmed+1 {
		t.Errorf("the catch-up held %d records; want at most %d", most, 2*state.MaxConfirmed+1)
	}
	if err := cu.Done(context.Background()); err != nil {
		t.Fatal(err)
	}
	cs, err := st.ConfirmedMutations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != state.MaxConfirmed || cs[0].TokenID != fmt.Sprintf("tok-%06d", n-state.MaxConfirmed) {
		t.Fatalf("%d records kept, the oldest %+v; want the newest %d", len(cs), cs[0], state.MaxConfirmed)
	}
}
