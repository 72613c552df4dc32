package janitor_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/state"
)

// boundedStore is the state store, noting the largest write of confirmed
// token records.
type boundedStore struct {
	*state.Store
	maxPut int
}

func (b *boundedStore) UpdateConfirmed(ctx context.Context, put []state.Confirmed, drop []string) (int, error) {
	b.maxPut = max(b.maxPut, len(put))
	return b.Store.UpdateConfirmed(ctx, put, drop)
}

// A tail of months (the store restored from an old backup) rebuilds more
// confirmed changes than the store keeps (state.MaxConfirmed; here the
// catch-up's bound is set to a hundred, which shows the same choice). The old
// catch-up wrote them all in one transaction for the store to evict the
// excess: bolt's deletes of that transaction took a minute for 200,000
// records (quadratic in them) and held them all. Now the catch-up makes the
// store's choice before writing: it writes at most the bound records, the
// same ones the store would have kept (the one found not in effect,
// however old, and the newest others), and drops a stored record the
// choice evicts.
func TestCatchUpWritesNoMoreThanTheStoreKeeps(t *testing.T) {
	st, err := state.Open(filepath.Join(t.TempDir(), state.FileName), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	// The store holds an old record (evicted by the newer ones) and one
	// found not in effect (kept, however old).
	old := t0.Add(-10 * day)
	seen := old.Add(time.Hour)
	if _, err := st.UpdateConfirmed(ctx, []state.Confirmed{
		{TokenID: "stored-old", Policy: "stale", Action: "delete", RunID: "run-0", At: old},
		{TokenID: "stored-doubt", Policy: "stale", Action: "delete", RunID: "run-0", At: old, StillListed: &seen, Checks: 1, LastSeen: &seen, LastRun: "run-1"},
	}, nil); err != nil {
		t.Fatal(err)
	}
	bs := &boundedStore{Store: st}
	const bound = 100
	cu := janitor.NewCatchUp(bs, nil)
	cu.SetBound(bound)
	n := bound + bound/2
	seq := int64(1)
	for i := range n {
		run := fmt.Sprintf("run-%d", 10+i/10)
		id := fmt.Sprintf("tok-%06d", i)
		at := t0.Add(time.Duration(i) * time.Second)
		cu.Record(audit.Record{Seq: seq, Time: at, Kind: audit.KindIntent, RunID: run, Policy: "stale", TokenID: id,
			Before: &pat.Token{ID: id, Owner: pat.Owner{ID: "o"}}, Request: &audit.Request{Method: http.MethodDelete, Path: api.TokenPath(pat.V3, id)}})
		cu.Record(audit.Record{Seq: seq + 1, Time: at, Kind: audit.KindOutcome, RunID: run, Policy: "stale", TokenID: id,
			Outcome: &audit.Outcome{Status: "applied", Code: 204}})
		seq += 2
	}
	if err := cu.Done(ctx); err != nil {
		t.Fatal(err)
	}
	if bs.maxPut > bound {
		t.Errorf("the catch-up wrote %d records in one update; want at most %d", bs.maxPut, bound)
	}
	got := confirmedByID(t, st.ConfirmedMutations)
	if len(got) != bound {
		t.Fatalf("%d records kept; want %d", len(got), bound)
	}
	if _, ok := got["stored-doubt"]; !ok {
		t.Error("the record found not in effect was evicted")
	}
	if _, ok := got["stored-old"]; ok {
		t.Error("the oldest stored record was kept over newer ones")
	}
	// The newest bound-1 rebuilt records are kept, the older evicted.
	first := n - (bound - 1)
	for _, i := range []int{0, first - 1} {
		if _, ok := got[fmt.Sprintf("tok-%06d", i)]; ok {
			t.Errorf("tok-%06d kept; want it evicted (older than the newest %d)", i, bound-1)
		}
	}
	for _, i := range []int{first, n - 1} {
		if _, ok := got[fmt.Sprintf("tok-%06d", i)]; !ok {
			t.Errorf("tok-%06d evicted; want it kept", i)
		}
	}
}

// The snoozes of a tail, as the catch-up takes them: the last record of a
// token decides; a snooze the store holds that was made after the record
// (flagged while serve held the journal, journaled later) is kept; a
// record whose end has passed ends the store's snooze (the store keeps it,
// ended, as the record says: each run's clock judges it); the store's own
// copy of the tail's snooze is kept as it is (reason, who). Handed twice,
// the tail changes nothing more.
func TestCatchUpSnoozes(t *testing.T) {
	clk := t0
	st, err := state.Open(filepath.Join(t.TempDir(), state.FileName), state.Options{Clock: func() time.Time { return clk }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	put := func(z state.Snooze) {
		t.Helper()
		if _, err := st.PutSnooze(ctx, z); err != nil {
			t.Fatal(err)
		}
	}
	// Before the backup: a, b and c snoozed. After it (in the store only,
	// as serve's flag): d snoozed at t0+2h.
	put(state.Snooze{TokenID: "a", Until: t0.Add(5 * day), Reason: "old", By: "ops", CreatedAt: t0.Add(-day)})
	put(state.Snooze{TokenID: "b", Until: t0.Add(5 * day), Reason: "old", CreatedAt: t0.Add(-day)})
	put(state.Snooze{TokenID: "same", Until: t0.Add(9 * day), Reason: "kept", By: "alice", CreatedAt: t0.Add(-day)})
	put(state.Snooze{TokenID: "d", Until: t0.Add(3 * day), Reason: "newer", CreatedAt: t0.Add(2 * time.Hour), Unjournaled: true})
	until := func(d time.Duration) *time.Time { u := t0.Add(d); return &u }
	tail := []audit.Record{
		{Seq: 10, Time: t0, Kind: audit.KindSnooze, TokenID: "A", Until: until(30 * day), Note: "longer (by bob)"},                              // a: replaced
		{Seq: 11, Time: t0.Add(time.Minute), Kind: audit.KindSnooze, TokenID: "b", Until: until(time.Minute), Note: "unsnoozed: done (by ops)"}, // b: ended
		{Seq: 12, Time: t0.Add(time.Hour), Kind: audit.KindSnooze, TokenID: "d", Until: until(60 * day), Note: "older"},                         // d: the store's is newer
		{Seq: 13, Time: t0.Add(time.Hour), Kind: audit.KindSnooze, TokenID: "e", Until: until(10 * day), Note: "new"},                           // e: new
		{Seq: 14, Time: t0.Add(time.Hour), Kind: audit.KindSnooze, TokenID: "e", Until: until(20 * day), Note: "again"},
		{Seq: 15, Time: t0.Add(time.Hour), Kind: audit.KindSnooze, TokenID: "f", Until: until(day), Note: "short"},
		{Seq: 16, Time: t0.Add(-day), Kind: audit.KindSnooze, TokenID: "same", Until: until(9 * day), Note: "kept (by alice)"},
	}
	clk = t0.Add(3 * time.Hour)
	for range 2 {
		cu := janitor.NewCatchUp(st, nil)
		for _, r := range tail {
			cu.Record(r)
		}
		if err := cu.Done(ctx); err != nil {
			t.Fatal(err)
		}
		zs, err := st.ActiveSnoozes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"a": "longer (by bob)", "d": "newer", "e": "again", "f": "short", "same": "kept"}
		if len(zs) != len(want) {
			t.Errorf("active snoozes %+v; want %v", zs, want)
		}
		for id, reason := range want {
			if z := zs[id]; z.Reason != reason {
				t.Errorf("snooze of %s %+v; want reason %q", id, z, reason)
			}
		}
		if z := zs["a"]; !z.Until.Equal(t0.Add(30*day)) || z.TokenID != "A" || !z.CreatedAt.Equal(t0) {
			t.Errorf("snooze of a %+v; want the tail's, until %s", z, t0.Add(30*day))
		}
		if all, err := st.Snoozes(ctx, true); err != nil || len(all) != len(want)+1 {
			t.Errorf("snoozes, ended ones too: %+v, %v; want b's ended one besides the active", all, err)
		}
		if z, _, _ := st.ActiveSnooze(ctx, "b"); z.TokenID != "" {
			t.Errorf("b's snooze %+v is active; want it ended by the unsnooze", z)
		}
		if z := zs["same"]; z.By != "alice" {
			t.Errorf("snooze of same %+v; want the store's, by alice", z)
		}
	}
}
