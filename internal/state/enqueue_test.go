package state

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// Enqueue writes its entries in batches (enqueueBatch to a transaction):
// what the outbox holds afterwards is what one transaction stored, also for
// an ID given twice in different batches (the later one wins, attempts
// reset) and for a pending entry the call replaces. An entry without an ID
// anywhere in the call stores nothing, not the batches before it.
func TestEnqueueInBatchesStoresEveryEntryInOrder(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), clk)
	defer s.Close()
	if err := s.Enqueue(ctx, OutboxEntry{ID: "digest/m/o0002", Receiver: "m", Payload: json.RawMessage(`{"v":"old"}`)}); err != nil {
		t.Fatal(err)
	}
	_ = s.testDeferred(ctx, "digest/m/o0002", 4, clk.Now().Add(time.Hour), "receiver down")
	clk.Advance(time.Minute)

	n := 2*enqueueBatch + 7
	var entries []OutboxEntry
	for i := range n {
		entries = append(entries, OutboxEntry{
			ID: fmt.Sprintf("digest/m/o%04d", i), Receiver: "m", Kind: "digest", OwnerID: fmt.Sprintf("o%04d", i),
			Fingerprint: fmt.Sprintf("fp%d", i), Marks: []MarkKey{KeyOf(fmt.Sprintf("t%d", i), "p")},
			Payload: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)),
		})
	}
	// o0003 again in the last batch: the later entry replaces the first.
	entries = append(entries, OutboxEntry{ID: "digest/m/o0003", Receiver: "m", Kind: "digest", OwnerID: "o0003",
		Fingerprint: "fp3-again", Payload: json.RawMessage(`{"i":"3 again"}`)})
	if err := s.Enqueue(ctx, entries...); err != nil {
		t.Fatal(err)
	}
	ob, err := s.DueOutbox(ctx, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(ob) != n {
		t.Fatalf("the outbox holds %d entries, want %d", len(ob), n)
	}
	for i, e := range ob {
		want := fmt.Sprintf(`{"i":%d}`, i)
		fp := fmt.Sprintf("fp%d", i)
		if i == 3 {
			want, fp = `{"i":"3 again"}`, "fp3-again"
		}
		if e.ID != fmt.Sprintf("digest/m/o%04d", i) || string(e.Payload) != want || e.Fingerprint != fp ||
			e.Attempts != 0 || e.LastError != "" || !e.CreatedAt.Equal(clk.Now()) || !e.NextAttempt.Equal(clk.Now()) {
			t.Fatalf("outbox entry %d = %+v", i, e)
		}
		if i != 3 && (len(e.Marks) != 1 || e.Marks[0] != KeyOf(fmt.Sprintf("t%d", i), "p")) {
			t.Fatalf("outbox entry %d marks = %v", i, e.Marks)
		}
	}

	bad := append(append([]OutboxEntry(nil), entries[:enqueueBatch+1]...), OutboxEntry{Receiver: "slack"})
	for i := range bad {
		bad[i].ID = strings.Replace(bad[i].ID, "digest/m/", "digest/other/", 1)
	}
	err = s.Enqueue(ctx, bad...)
	if err == nil || !strings.Contains(err.Error(), `receiver "slack": empty id`) {
		t.Fatalf("an entry without id: err = %v", err)
	}
	if all, _ := s.Outbox(ctx); len(all) != n {
		t.Errorf("a call with an entry without id stored %d entries", len(all)-n)
	}
}

// A run at the listing cap queues 44,000 owner digests at once. One bbolt
// transaction for all of them held every value written and every page to
// write until it committed; in batches the store holds one batch at a time.
// The heap's reserved size only grows, so its growth during Enqueue bounds
// what Enqueue held at its peak.
//
// 3,000 entries of 8 KiB are six batches: Enqueue in batches grew the heap
// by 7-19 MB (with and without -race), one transaction for all of them by
// 56-71 MB. (It queued 6,000 before, at twice the CPU, bounded at 40 MB:
// 7-24 MB batched, 108-123 MB in one transaction.)
func TestEnqueueHoldsOneBatchAtATime(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), newClock())
	defer s.Close()
	const n, size = 3000, 8 << 10 // 23 MiB of payloads
	entries := make([]OutboxEntry, n)
	for i := range entries {
		p := fmt.Sprintf(`{"owner":%d,"items":"%s"}`, i, strings.Repeat("x", size))
		entries[i] = OutboxEntry{ID: fmt.Sprintf("digest/hook/%032x", i*7919), Receiver: "hook", Kind: "digest",
			OwnerID: fmt.Sprint(i), Payload: json.RawMessage(p)}
	}
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := s.Enqueue(ctx, entries...); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	// HeapSys can shrink meanwhile (the runtime returns a freed span's
	// address space): unsigned, the difference wrapped round to 16 EB and
	// failed the test now and then.
	var grew uint64
	if after.HeapSys > before.HeapSys {
		grew = after.HeapSys - before.HeapSys
	}
	t.Logf("enqueueing %d entries of %d KB grew the heap by %d MB", n, size>>10, grew>>20)
	if grew > 32<<20 {
		t.Errorf("enqueueing %d entries (%d MB) grew the heap by %d MB: the store holds them all until it commits", n, n*size>>20, grew>>20)
	}
	runtime.KeepAlive(entries)
	if ob, _ := s.Outbox(ctx); len(ob) != n {
		t.Errorf("the outbox holds %d entries, want %d", len(ob), n)
	}
}
