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

// testBound is the records the catch-up keeps in the tests of its choice
// (CatchUp.bound; state.MaxConfirmed, 10,000, outside them): the choice is
// the same on a hundred records, and 10,000 took seconds under the race
// detector.
const testBound = 100

// The catch-up holds the records, not the tail's steps: a tail of three
// times the bound (state.MaxConfirmed) confirmed deletes (a backup months
// old; a million records cost the old catch-up a gigabyte of memory during
// the open) never holds more than twice the bound records, and writes the
// newest the bound keeps.
func TestCatchUpHoldsNoMoreThanTwiceWhatTheStoreKeeps(t *testing.T) {
	st, err := state.Open(filepath.Join(t.TempDir(), state.FileName), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cu := NewCatchUp(st, nil)
	cu.bound = testBound
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	most := 0
	n := 3 * testBound
	for i := range n {
		id, run := fmt.Sprintf("tok-%06d", i), fmt.Sprintf("run-%d", i/10)
		at := t0.Add(time.Duration(i) * time.Second)
		cu.Record(audit.Record{Time: at, Kind: audit.KindIntent, RunID: run, Policy: "stale", TokenID: id,
			Request: &audit.Request{Method: http.MethodDelete, Path: api.TokenPath(pat.V3, id)}})
		cu.Record(audit.Record{Time: at, Kind: audit.KindOutcome, RunID: run, Policy: "stale", TokenID: id,
			Outcome: &audit.Outcome{Status: string(OutcomeApplied), Code: 204}})
		if f := cu.folds[""]; f != nil {
			most = max(most, len(f.recs), len(f.touched))
		}
	}
	if most > 2*testBound+1 {
		t.Errorf("the catch-up held %d records; want at most %d", most, 2*testBound+1)
	}
	if err := cu.Done(context.Background()); err != nil {
		t.Fatal(err)
	}
	cs, err := st.ConfirmedMutations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != testBound || cs[0].TokenID != fmt.Sprintf("tok-%06d", n-testBound) {
		t.Fatalf("%d records kept, the oldest %+v; want the newest %d", len(cs), cs[0], testBound)
	}
}

// The fold's eviction while the tail comes (over twice the bound)
// must choose as the runs' stores did, or it drops a record the runs kept
// and later found not in effect, and the lie is lost. A run stores its
// records at its end, one time for all (res.Finished; the catch-up dates
// them at the run's last record), so the store evicted the records of one
// run by id; the old fold evicted mid-tail by the outcomes' times. Here run
// 1 confirms 1.5 times the bound deletes (the later an outcome, the lower
// its id), its store keeps the highest ids; run 2 confirms 0.6 times more,
// the store keeps run 2's and run 1's 0.4 times highest ids; run 3 finds
// the delete of run 1's highest id (its first outcome) not in effect. The
// old fold had evicted that record mid-tail (the earliest outcome), and
// the store caught up from an empty backup never learnt of the lie.
func TestHostileCatchUpEvictsAsTheRunsDid(t *testing.T) {
	st, err := state.Open(filepath.Join(t.TempDir(), state.FileName), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cu := NewCatchUp(st, nil)
	cu.bound = testBound
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	at := t0
	del := func(run, id string) {
		at = at.Add(time.Second)
		cu.Record(audit.Record{Time: at, Kind: audit.KindIntent, RunID: run, Policy: "stale", TokenID: id,
			Request: &audit.Request{Method: http.MethodDelete, Path: api.TokenPath(pat.V3, id)}})
		cu.Record(audit.Record{Time: at, Kind: audit.KindOutcome, RunID: run, Policy: "stale", TokenID: id,
			Outcome: &audit.Outcome{Status: string(OutcomeApplied), Code: 204}})
	}
	n1, n2 := 3*testBound/2, 3*testBound/5
	for i := range n1 {
		del("run-1", fmt.Sprintf("a%06d", n1-1-i))
	}
	for i := range n2 {
		del("run-2", fmt.Sprintf("b%06d", i))
	}
	liar := fmt.Sprintf("a%06d", n1-1)
	at = at.Add(time.Hour)
	cu.Record(audit.Record{Time: at, Kind: audit.KindOutcome, RunID: "run-3", TokenID: liar,
		Outcome: &audit.Outcome{Status: StatusNotInEffect}})
	if err := cu.Done(context.Background()); err != nil {
		t.Fatal(err)
	}
	cs, err := st.ConfirmedMutations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// What the runs' stores kept: run 1's highest 40 ids, run 2's all.
	want := map[string]bool{}
	for i := range testBound - n2 {
		want[fmt.Sprintf("a%06d", n1-1-i)] = true
	}
	for i := range n2 {
		want[fmt.Sprintf("b%06d", i)] = true
	}
	got, extra := 0, []string{}
	for _, c := range cs {
		if want[c.TokenID] {
			got++
		} else if len(extra) < 5 {
			extra = append(extra, c.TokenID)
		}
		if c.TokenID == liar && (c.Checks != 1 || c.StillListed == nil || c.LastRun != "run-3") {
			t.Errorf("the record of %s %+v; want it found not in effect by run 3", liar, c)
		}
	}
	if len(cs) != len(want) || got != len(want) {
		t.Errorf("kept %d records, %d of those the runs kept (of %d), others e.g. %v", len(cs), got, len(want), extra)
	}
	found := false
	for _, c := range cs {
		found = found || c.TokenID == liar
	}
	if !found {
		t.Errorf("the record of %s, which run 3 found not in effect, was evicted", liar)
	}
}
