package state

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/patjanitor/patjanitor/internal/audit"
)

// txID is the id of the store's last committed transaction.
func (s *Store) txID(t *testing.T) int {
	t.Helper()
	var id int
	if err := s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// A staged record is written by the journal anchor's transaction, not
// before it and at no transaction of its own; a record staged and then put
// by UpdateConfirmed ends as the put says (the run's end is the newer
// word); nothing stays staged once written.
func TestStagedConfirmedGoWithTheAnchor(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), clk)
	defer s.Close()
	records := func() map[string]Confirmed {
		t.Helper()
		cs, err := s.ConfirmedMutations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cc, err := s.ConfirmedClientMutations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]Confirmed{}
		for _, c := range append(cs, cc...) {
			out[c.Resource+c.TokenID] = c
		}
		return out
	}
	at := clk.Now()
	if err := s.StageConfirmed([]Confirmed{{TokenID: "t1", Policy: "p", Action: "delete", RunID: "r1", Code: 204, At: at}}); err != nil {
		t.Fatal(err)
	}
	if err := s.StageConfirmedClients([]Confirmed{{TokenID: "c1", Policy: "p", Action: "disable", RunID: "r1", Code: 200, At: at}}); err != nil {
		t.Fatal(err)
	}
	if err := s.StageConfirmed([]Confirmed{{TokenID: "", At: at}}); err == nil {
		t.Fatal("a record without a token id was staged")
	}
	if got := records(); len(got) != 0 {
		t.Fatalf("staged records written before the anchor: %+v", got)
	}
	before := s.txID(t)
	if err := s.PutJournalAnchor(ctx, "journal.jsonl", audit.Anchor{Seq: 2, Hash: "h", Offset: 10}); err != nil {
		t.Fatal(err)
	}
	if n := s.txID(t) - before; n != 1 {
		t.Fatalf("the anchor and the staged records took %d transactions, want 1", n)
	}
	got := records()
	if c := got["t1"]; c.RunID != "r1" || c.Code != 204 || len(got) != 2 || got["apiClientsc1"].Action != "disable" {
		t.Fatalf("records after the anchor: %+v", got)
	}

	// Staged, then put by the run's end with its later time: the put wins;
	// the next anchor writes nothing staged again.
	if err := s.StageConfirmed([]Confirmed{{TokenID: "t2", Policy: "p", Action: "delete", RunID: "r2", Code: 204, At: at}}); err != nil {
		t.Fatal(err)
	}
	end := at.Add(time.Minute)
	if _, err := s.UpdateConfirmed(ctx, []Confirmed{{TokenID: "t2", Policy: "p", Action: "delete", RunID: "r2", Code: 204, At: end}}, []string{"t1"}); err != nil {
		t.Fatal(err)
	}
	if c := records()["t2"]; !c.At.Equal(end) {
		t.Fatalf("t2 at %s, want the run end's %s (the put after the staged record)", c.At, end)
	}
	if _, err := s.UpdateConfirmed(ctx, nil, []string{"t2"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutJournalAnchor(ctx, "journal.jsonl", audit.Anchor{Seq: 3, Hash: "h3", Offset: 20}); err != nil {
		t.Fatal(err)
	}
	if got := records(); len(got) != 1 || got["apiClientsc1"].RunID != "r1" {
		t.Fatalf("records %+v; want only c1 (t1 and t2 dropped, nothing staged written again)", got)
	}
}

// bbolt runs a transaction's commit handlers after it lets the next writer
// in. Here transaction A writes the staged record t1 and commits; before
// A's handler runs, t2 is staged and transaction B writes both and
// commits. Dropping by count then cut the list short twice (a slice bound
// panic, or a record dropped that no transaction wrote); by number, A's
// late handler drops nothing more, and a record staged after B stays
// staged until a transaction writes it.
func TestStagedConfirmedSurviveALateCommitHandler(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), clk)
	defer s.Close()
	rec := func(id string) []Confirmed {
		return []Confirmed{{TokenID: id, Policy: "p", Action: "delete", RunID: "r1", Code: 204, At: clk.Now()}}
	}
	if err := s.StageConfirmed(rec("t1")); err != nil {
		t.Fatal(err)
	}
	txA, err := s.db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	// Registered before writeStaged's own: it runs first, after A has
	// released the write lock, and holds A's staged handler back.
	txA.OnCommit(func() {
		if err := s.StageConfirmed(rec("t2")); err != nil {
			t.Error(err)
		}
		if err := s.PutJournalAnchor(ctx, "journal.jsonl", audit.Anchor{Seq: 2, Hash: "h2", Offset: 20}); err != nil { // transaction B
			t.Error(err)
		}
		if err := s.StageConfirmed(rec("t3")); err != nil {
			t.Error(err)
		}
	})
	if err := s.writeStaged(txA); err != nil {
		t.Fatal(err)
	}
	if err := txA.Commit(); err != nil {
		t.Fatal(err)
	}
	cs, err := s.ConfirmedMutations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].TokenID != "t1" || cs[1].TokenID != "t2" {
		t.Fatalf("stored %+v; want t1 (A) and t2 (B)", cs)
	}
	// t3 is still staged: the next write stores it.
	if err := s.PutJournalAnchor(ctx, "journal.jsonl", audit.Anchor{Seq: 3, Hash: "h3", Offset: 30}); err != nil {
		t.Fatal(err)
	}
	if cs, err = s.ConfirmedMutations(ctx); err != nil || len(cs) != 3 {
		t.Fatalf("stored %+v (%v); want t1, t2 and t3, still staged after A's late handler", cs, err)
	}
}
