package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

// recTail is a Tail that keeps the seqs handed to it.
type recTail struct {
	seqs []int64
	done int
	fail error
}

func (r *recTail) Record(rec Record) { r.seqs = append(r.seqs, rec.Seq) }

func (r *recTail) Done(context.Context) error {
	r.done++
	return r.fail
}

// anchorEndingAt is the anchor of the record that ends at end in data.
func anchorEndingAt(t *testing.T, data []byte, end int64) Anchor {
	t.Helper()
	line, err := lineEndingAt(bytes.NewReader(data), end)
	if err != nil {
		t.Fatal(err)
	}
	hv, _ := lineHash(line)
	h, ok := fastHead(line, string(hv.stored))
	if !ok {
		t.Fatal("not a record")
	}
	return Anchor{Seq: h.Seq, Hash: h.Hash, Offset: end}
}

// A state store restored from a backup holds an anchor behind the journal:
// Open hands the records after it, and only those (also when the copied
// file makes it verify the whole chain), then Done, before the anchor
// moves to the end; the next open hands nothing. A Done that fails fails
// the open and leaves the journal and the anchor as they were, so the next
// open hands the same records again. A store that is up to date hands
// nothing and costs no Done.
func TestTailAfterTheAnchorOnly(t *testing.T) {
	path, anchors, data := anchored(t)
	behind := anchorEndingAt(t, data, int64(lastLineStart(data, 6))) // after run r1
	if behind.Seq != 4 {
		t.Fatalf("anchor %+v, want seq 4", behind)
	}
	want := []int64{5, 6, 7, 8, 9, 10}

	fresh := &recTail{}
	_ = openT(t, path, Options{Anchors: anchors, Tail: fresh}).Close()
	if len(fresh.seqs) != 0 || fresh.done != 0 {
		t.Fatalf("a store up to date was handed %v (Done %d times)", fresh.seqs, fresh.done)
	}

	restored := &memAnchors{a: &behind}
	failing := &recTail{fail: errors.New("disk full")}
	_, err := Open(path, Options{Anchors: restored, Tail: failing})
	if err == nil || !strings.Contains(err.Error(), "seq 5 to 10") || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Open with a failing catch-up: %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) || restored.get().Seq != 4 {
		t.Fatalf("a failed catch-up moved the anchor to %+v or changed the journal", restored.get())
	}

	tail := &recTail{}
	_ = openT(t, path, Options{Anchors: restored, Tail: tail}).Close()
	if !slices.Equal(tail.seqs, want) || tail.done != 1 || restored.get().Seq != 10 {
		t.Fatalf("handed %v, Done %d times, anchor %+v; want %v, once, then the anchor at seq 10", tail.seqs, tail.done, restored.get(), want)
	}
	again := &recTail{}
	_ = openT(t, path, Options{Anchors: restored, Tail: again}).Close()
	if len(again.seqs) != 0 || again.done != 0 {
		t.Fatalf("the next open handed %v again", again.seqs)
	}

	// serve holds the journal; the store of a run is an older copy.
	j := openT(t, path, Options{Anchors: anchors})
	swapped := &memAnchors{a: &behind}
	attached := &recTail{}
	if err := j.Attach(context.Background(), swapped, attached); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(attached.seqs, want) || attached.done != 1 || swapped.get().Seq != 10 {
		t.Fatalf("Attach handed %v, Done %d times, anchor %+v", attached.seqs, attached.done, swapped.get())
	}
}

// A tail that does not verify (a record after the anchor changed) fails the
// open before Done: the catch-up writes nothing from records that may have
// been forged, and the journal and the anchor stay as they were.
func TestTailThatDoesNotVerifyIsNotTakenIn(t *testing.T) {
	path, _, data := anchored(t)
	behind := anchorEndingAt(t, data, int64(lastLineStart(data, 6)))
	at := bytes.LastIndex(data, []byte(`"run-end"`))
	if at < int(behind.Offset) {
		t.Fatal("the test needs a run-end after the anchor")
	}
	forged := slices.Concat(data[:at], []byte(`"run-enD"`), data[at+len(`"run-end"`):])
	if err := os.WriteFile(path, forged, 0o600); err != nil {
		t.Fatal(err)
	}
	restored := &memAnchors{a: &behind}
	tail := &recTail{}
	if _, err := Open(path, Options{Anchors: restored, Tail: tail}); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("Open of a forged tail: %v", err)
	}
	if tail.done != 0 || restored.get().Seq != behind.Seq {
		t.Fatalf("Done called %d times, anchor %+v; want no Done and the anchor at seq %d", tail.done, restored.get(), behind.Seq)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, forged) {
		t.Fatal("the open changed the journal")
	}
}
