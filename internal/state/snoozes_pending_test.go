package state

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A snooze stored by the code before Pending existed (its JSON exactly as
// that code wrote it, flagged for serve to journal) is read as it is, and
// snoozing the token again while serve holds the journal keeps it owed,
// first: no migration, nothing lost. Two snoozes made within one clock
// tick (same CreatedAt) are still told apart when journaled.
func TestSnoozeOfTheOldFormatReplacedWhileHeldStaysOwed(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), clk)
	defer s.Close()
	old := `{"tokenId":"T1","until":"2026-12-26T03:00:00Z","reason":"vendor migration","by":"alice","createdAt":"2026-11-26T03:00:00Z","unjournaled":true}`
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketSnoozes)).Put([]byte(snoozeKey("T1")), []byte(old))
	}); err != nil {
		t.Fatal(err)
	}
	owed, err := s.UnjournaledSnoozes(ctx)
	if err != nil || len(owed) != 1 || owed[0].Reason != "vendor migration" || len(owed[0].Pending) != 0 {
		t.Fatalf("owed = %+v, %v; want alice's snooze as written", owed, err)
	}
	until := clk.Now().Add(60 * 24 * time.Hour)
	for _, by := range []string{"bob", "carol"} {
		if _, err := s.PutSnooze(ctx, Snooze{TokenID: "t1", Until: until, Reason: "migration late", By: by, Unjournaled: true}); err != nil {
			t.Fatal(err)
		}
	}
	// The journal is free again: a caller that holds it journals the owed
	// ones before it replaces them; a snooze not flagged now is refused.
	if _, err := s.PutSnooze(ctx, Snooze{TokenID: "t1", Until: until, Reason: "x", By: "dave"}); err == nil {
		t.Fatal("an unflagged snooze replaced owed ones")
	}
	owed, err = s.UnjournaledSnoozes(ctx)
	if err != nil || len(owed) != 1 {
		t.Fatalf("owed = %+v, %v", owed, err)
	}
	z := owed[0]
	var order []string
	for _, y := range append(z.Pending, z) {
		order = append(order, y.By)
		// Twice: a repeated call (a retry after a crash) changes nothing.
		for range 2 {
			if err := s.SnoozeJournaled(ctx, y); err != nil {
				t.Fatal(err)
			}
		}
	}
	if want := "alice bob carol"; strings.Join(order, " ") != want {
		t.Fatalf("journal order %q, want %q", strings.Join(order, " "), want)
	}
	if owed, err := s.UnjournaledSnoozes(ctx); err != nil || len(owed) != 0 {
		t.Fatalf("still owed after journaling: %+v, %v", owed, err)
	}
	if got, ok, _ := s.ActiveSnooze(ctx, "T1"); !ok || got.By != "carol" || got.Unjournaled || got.Pending != nil {
		t.Fatalf("snooze in force = %+v (%v); want carol's, journaled", got, ok)
	}
}
