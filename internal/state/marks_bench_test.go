package state

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkMarksReconcileUnchanged is the store's side of a grace run that
// has nothing new to do, the common run: ReconcileMarks over every mark as
// stored (each key looked up, each record encoded and compared, nothing
// committed), then Marks (each record decoded).
//
//	go test -run '^$' -bench Mark ./internal/state
func BenchmarkMarksReconcileUnchanged(b *testing.B) {
	const n = 10000
	ctx := context.Background()
	clk := newClock()
	s, err := Open(filepath.Join(b.TempDir(), FileName), Options{Clock: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	ms := make([]Mark, n)
	for i := range ms {
		ms[i] = Mark{
			TokenID: fmt.Sprintf("%032x", i*7919), OwnerID: fmt.Sprintf("%032x", i/3), Policy: "unused-90d", Action: "delete",
			Reason: fmt.Sprintf("lastUsed 2026-%02d-01T00:00:00.000Z is before cutoff 2026-08-28T03:00:00.000Z (unusedFor 90d)", i%12+1),
			Grace:  14 * 24 * time.Hour,
		}
	}
	if _, err := s.ReconcileMarks(ctx, []string{"unused-90d"}, ms); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ch, err := s.ReconcileMarks(ctx, []string{"unused-90d"}, ms)
		if err != nil || len(ch.Kept) != n {
			b.Fatalf("%d kept, %v", len(ch.Kept), err)
		}
		if got, err := s.Marks(ctx); err != nil || len(got) != n {
			b.Fatalf("%d marks, %v", len(got), err)
		}
	}
}
