package state

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// The client marks keep the token marks' clock rules in their own bucket:
// a delivered digest starts the clocks it lists (and only those), in the
// transaction that removes it from the outbox; re-reconciling keeps the
// clock; another action starts over; a shorter grace never brings the
// deadline before the one told; marks of other policies are untouched; a
// store without the bucket reads as no marks.
func TestClientMarksClock(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), clk)
	defer func() { _ = s.Close() }()
	if ms, err := s.ClientMarks(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("fresh store: %v %v", ms, err)
	}
	week := 7 * 24 * time.Hour
	a := ClientMark{ClientID: "C-1", Policy: "p", Action: "disable", Grace: week}
	b := ClientMark{ClientID: "c-2", Policy: "p", Action: "disable", Grace: week}
	other := ClientMark{ClientID: "c-3", Policy: "q", Action: "disable", Grace: week}
	if _, err := s.ReconcileClientMarks(ctx, []string{"p", "q"}, []ClientMark{a, b, other}); err != nil {
		t.Fatal(err)
	}
	// A digest that lists a (spelled in lower case) only, delivered later.
	err := s.Enqueue(ctx, OutboxEntry{ID: "digest/x", Receiver: "x", Kind: "digest", ClientMarks: []ClientMarkKey{{ClientID: "c-1", Policy: "p"}}, Payload: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	delivered := clk.Now()
	if _, err := s.testDelivered(ctx, "digest/x", delivered); err != nil {
		t.Fatal(err)
	}
	got := byClient(t, s)
	if w := got["C-1"].WarnedAt; w == nil || !w.Equal(delivered) || !got["C-1"].Deadline.Equal(delivered.Add(week)) {
		t.Fatalf("listed mark = %+v", got["C-1"])
	}
	if got["c-2"].WarnedAt != nil {
		t.Fatalf("a mark the digest did not list started its clock: %+v", got["c-2"])
	}
	// Reconciled again (another run): the clock stays; a shorter grace
	// keeps the deadline told; another action starts over; scope p only
	// leaves q's mark alone; b dropped from current is removed.
	clk.Advance(24 * time.Hour)
	a.Grace = 24 * time.Hour
	bDelete := b
	bDelete.Action = "delete"
	ch, err := s.ReconcileClientMarks(ctx, []string{"p"}, []ClientMark{a})
	if err != nil || len(ch.Kept) != 1 || len(ch.Removed) != 1 || ch.Removed[0].ClientID != "c-2" {
		t.Fatalf("reconcile: %+v %v", ch, err)
	}
	got = byClient(t, s)
	if !got["C-1"].WarnedAt.Equal(delivered) || !got["C-1"].Deadline.Equal(delivered.Add(week)) {
		t.Fatalf("kept mark = %+v: the clock moved", got["C-1"])
	}
	if _, ok := got["c-3"]; !ok {
		t.Fatal("a mark of a policy outside the scope was removed")
	}
	a.Action = "delete"
	if ch, err := s.ReconcileClientMarks(ctx, []string{"p"}, []ClientMark{a}); err != nil || len(ch.New) != 1 {
		t.Fatalf("reconcile with another action: %+v %v", ch, err)
	}
	if m := byClient(t, s)["C-1"]; m.WarnedAt != nil || !m.MarkedAt.Equal(clk.Now()) {
		t.Fatalf("a mark for another action kept the old warning: %+v", m)
	}
	if _, err := s.ReconcileClientMarks(ctx, []string{"p"}, []ClientMark{other}); err == nil {
		t.Fatal("a mark of a policy outside the scope was accepted")
	}
	if _, err := s.ReconcileClientMarks(ctx, []string{"p"}, []ClientMark{{ClientID: "", Policy: "p"}}); err == nil {
		t.Fatal("a mark without a client id was accepted")
	}
}

func byClient(t *testing.T, s *Store) map[string]ClientMark {
	t.Helper()
	ms, err := s.ClientMarks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]ClientMark{}
	for _, m := range ms {
		out[m.ClientID] = m
	}
	return out
}
