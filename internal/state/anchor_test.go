package state

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/patjanitor/patjanitor/internal/audit"
)

// TestJournalAnchorPersists: an anchor survives a reopen, is kept per journal,
// and a read-only store reads it.
func TestJournalAnchorPersists(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	s := openTest(t, path, newClock())
	if _, ok, err := s.JournalAnchor(ctx, "journal.jsonl"); ok || err != nil {
		t.Fatalf("fresh store: anchor %v, %v", ok, err)
	}
	want := audit.Anchor{Seq: 85, Hash: "sha256:ab", Segment: 2, Offset: 4096,
		Open: []audit.Position{{Seq: 84, Hash: "sha256:cd", Segment: 2, Offset: 3500}}}
	if err := s.AnchorOf("journal.jsonl").StoreAnchor(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := s.PutJournalAnchor(ctx, "/elsewhere/j.jsonl", audit.Anchor{Seq: 1, Hash: "sha256:ef", Offset: 10}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ro.Close() }()
	got, ok, err := ro.AnchorOf("journal.jsonl").LoadAnchor(ctx)
	if err != nil || !ok || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("anchor after reopen = %+v %v %v, want %+v", got, ok, err, want)
	}
	if other, _, _ := ro.JournalAnchor(ctx, "/elsewhere/j.jsonl"); other.Seq != 1 {
		t.Fatalf("second journal's anchor = %+v", other)
	}
}

// BenchmarkPutJournalAnchor is the cost the anchor adds to each journal
// append: one small bbolt transaction, fsynced on commit (compare
// BenchmarkAppend in internal/audit: one write and one fsync).
//
//	go test -run '^$' -bench PutJournalAnchor ./internal/state/
func BenchmarkPutJournalAnchor(b *testing.B) {
	dir, err := os.MkdirTemp(".", ".bench-anchor-") // the disk, not a tmpfs
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	s, err := Open(filepath.Join(dir, FileName), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	ctx := context.Background()
	a := audit.Anchor{Hash: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	for b.Loop() {
		a.Seq++
		a.Offset += 600
		if err := s.PutJournalAnchor(ctx, "journal.jsonl", a); err != nil {
			b.Fatal(err)
		}
	}
}
