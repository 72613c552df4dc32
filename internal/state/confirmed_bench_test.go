package state

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// A bucket at MaxConfirmed, none of its records acknowledged: what a
// serve run reads twice (PendingAcks, then the run's ConfirmedMutations).
func fullConfirmed(b *testing.B) *Store {
	ctx := context.Background()
	st, err := Open(filepath.Join(b.TempDir(), "s.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	var put []Confirmed
	for i := 0; i < MaxConfirmed; i++ {
		exp := now.Add(time.Hour)
		put = append(put, Confirmed{TokenID: fmt.Sprintf("%032x", i), OwnerID: fmt.Sprintf("%032x", i), Policy: "stale", Action: "expire",
			Patch: []pat.PatchOp{pat.SetExpiration(exp)}, RunID: "20261206T000000Z-abcd", Code: 200, At: now, StillListed: &now, Checks: 3, LastSeen: &now, LastRun: "20261206T000000Z-abcd"})
	}
	if _, err := st.UpdateConfirmed(ctx, put, nil); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	return st
}

func BenchmarkConfirmedMutationsFull(b *testing.B) {
	st := fullConfirmed(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cs, err := st.ConfirmedMutations(context.Background())
		if err != nil || len(cs) != MaxConfirmed {
			b.Fatal(err, len(cs))
		}
	}
}

func BenchmarkPendingAcksFull(b *testing.B) {
	st := fullConfirmed(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if acks, errs := st.PendingAcks(context.Background()); len(acks) != 0 || errs != nil {
			b.Fatal(acks, errs)
		}
	}
}
