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
// confirmed changes than the store keeps (state.MaxConfirmed). The old
// catch-up wrote them all in one transaction for the store to evict the
// excess: bolt's deletes of that transaction took a minute for 200,000
// records (quadratic in them) and held them all. Now the catch-up makes the
// store's choice before writing: it writes at most MaxConfirmed records, the
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
	cu := janitor.NewCatchUp(bs, nil)
	n := state.MaxConfirmed + 500
	seq := int64(1)
	for i := range n {
		run := fmt.Sprintf("run-%d", 10+i/1000)
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
	if bs.maxPut > state.MaxConfirmed {
		t.Errorf("the catch-up wrote %d records in one update; want at most %d", bs.maxPut, state.MaxConfirmed)
	}
	got := confirmedByID(t, st.ConfirmedMutations)
	if len(got) != state.MaxConfirmed {
		t.Fatalf("%d records kept; want %d", len(got), state.MaxConfirmed)
	}
	if _, ok := got["stored-doubt"]; !ok {
		t.Error("the record found not in effect was evicted")
	}
	if _, ok := got["stored-old"]; ok {
		t.Error("the oldest stored record was kept over newer ones")
	}
	// The newest MaxConfirmed-1 rebuilt records are kept, the older evicted.
	first := n - (state.MaxConfirmed - 1)
	for _, i := range []int{0, first - 1} {
		if _, ok := got[fmt.Sprintf("tok-%06d", i)]; ok {
			t.Errorf("tok-%06d kept; want it evicted (older than the newest %d)", i, state.MaxConfirmed-1)
		}
	}
	for _, i := range []int{first, n - 1} {
		if _, ok := got[fmt.Sprintf("tok-%06d", i)]; !ok {
			t.Errorf("tok-%06d evicted; want it kept", i)
		}
	}
}
