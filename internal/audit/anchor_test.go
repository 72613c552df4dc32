package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// memAnchors is an AnchorStore in memory (the state store's job in
// production), counting its writes.
type memAnchors struct {
	mu     sync.Mutex
	a      *Anchor
	writes int
	fail   error
}

func (m *memAnchors) LoadAnchor(context.Context) (Anchor, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.a == nil {
		return Anchor{}, false, nil
	}
	return *m.a, true, nil
}

func (m *memAnchors) StoreAnchor(_ context.Context, a Anchor) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.writes++
	m.a = &a
	return nil
}

func (m *memAnchors) get() Anchor {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.a == nil {
		return Anchor{}
	}
	return *m.a
}

// anchored writes a journal of two runs (10 records) with its anchor.
func anchored(t *testing.T) (path string, anchors *memAnchors, data []byte) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "journal.jsonl")
	anchors = &memAnchors{}
	j := openT(t, path, Options{Anchors: anchors})
	appendAll(t, j, append(runRecords("r1", 1), runRecords("r2", 2)...))
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if a := anchors.get(); a.Seq != 10 || a.Offset != int64(len(data)) {
		t.Fatalf("anchor after 10 records = %+v (file %d bytes)", a, len(data))
	}
	return path, anchors, data
}

// TestHostileMissingTailDetected: cutting the last one or two records off the
// journal, or emptying it, leaves a valid chain; the anchor in the state
// store detects it, in Open (nothing is appended, nothing is changed) and in
// VerifyPath, with an error that names both the anchor and the journal's end.
func TestHostileMissingTailDetected(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(data []byte) []byte
		ends string
	}{
		{"last record removed", func(d []byte) []byte { return d[:lastLineStart(d, 1)] }, "seq 9"},
		{"last two records removed", func(d []byte) []byte { return d[:lastLineStart(d, 2)] }, "seq 8"},
		{"emptied", func([]byte) []byte { return nil }, "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, anchors, data := anchored(t)
			cut := tc.cut(data)
			if err := os.WriteFile(path, cut, 0o600); err != nil {
				t.Fatal(err)
			}
			// Without the anchor the chain alone looks fine: this is
			// what the anchor is for.
			if _, err := Verify(bytes.NewReader(cut)); err != nil {
				t.Fatalf("the cut journal's chain: %v", err)
			}
			_, err := Open(path, Options{Anchors: anchors})
			var ae *AnchorError
			if !errors.As(err, &ae) {
				t.Fatalf("Open = %v, want an *AnchorError", err)
			}
			msg := err.Error()
			for _, want := range []string{path, "seq 10", tc.ends} {
				if !strings.Contains(msg, want) {
					t.Errorf("Open error %q does not name %q", msg, want)
				}
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, cut) {
				t.Fatal("Open changed the journal it refused")
			}
			a := anchors.get()
			if _, err := VerifyPath(path, VerifyOptions{Anchor: &a}); !errors.As(err, &ae) || !strings.Contains(err.Error(), "missing") {
				t.Fatalf("VerifyPath = %v, want a missing tail", err)
			}
		})
	}
}

// lastLineStart is the offset where the n-th line from the end starts.
func lastLineStart(d []byte, n int) int {
	end := len(d)
	for range n {
		end = bytes.LastIndexByte(d[:end-1], '\n') + 1
	}
	return end
}

// TestHostileJournalDeletedAnchorAhead: with the journal deleted, Open does
// not start a new chain from seq 1 behind the anchor's back: it refuses,
// names both, and leaves no new file behind.
func TestHostileJournalDeletedAnchorAhead(t *testing.T) {
	path, anchors, _ := anchored(t)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, Options{Anchors: anchors})
	var ae *AnchorError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "empty") || !strings.Contains(err.Error(), "seq 10") {
		t.Fatalf("Open = %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused Open left a file: %v", err)
	}
}

// TestHostileJournalReplacedByAnotherChain: a valid journal of the same
// length or longer, but not the anchored one, is refused.
func TestHostileJournalReplacedByAnotherChain(t *testing.T) {
	path, anchors, data := anchored(t)
	other := filepath.Join(t.TempDir(), "other.jsonl")
	j := openT(t, other, Options{})
	appendAll(t, j, append(runRecords("x1", 2), runRecords("x2", 2)...))
	_ = j.Close()
	od, _ := os.ReadFile(other)
	if len(od) < len(data) {
		t.Fatal("fixture: the other journal is shorter")
	}
	if err := os.WriteFile(path, od, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, Options{Anchors: anchors})
	var ae *AnchorError
	if !errors.As(err, &ae) {
		t.Fatalf("Open = %v, want an *AnchorError", err)
	}
	a := anchors.get()
	if _, err := VerifyPath(path, VerifyOptions{Anchor: &a}); !errors.As(err, &ae) {
		t.Fatalf("VerifyPath = %v, want an *AnchorError", err)
	}
}

// TestHostileMiddleEditedAfterCheckpoint: an edit in the middle changes the
// file's stamp, so Open verifies the whole chain again rather than only the
// tail after the checkpoint.
func TestHostileMiddleEditedAfterCheckpoint(t *testing.T) {
	path, anchors, data := anchored(t)
	edited := bytes.Replace(data, []byte(`"r1-tok0"`), []byte(`"r1-tok9"`), 1)
	if bytes.Equal(edited, data) {
		t.Fatal("fixture: nothing edited")
	}
	if err := os.WriteFile(path, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, Options{Anchors: anchors})
	var ce *ChainError
	if !errors.As(err, &ce) || !strings.Contains(ce.Reason, "hash mismatch") {
		t.Fatalf("Open = %v, want the edited record named", err)
	}
}

// TestFirstOpenWithoutAnchor: a journal with no anchor (the first run, or one
// written before anchors existed) is accepted and anchored; reopening with the
// anchor continues the chain and finds the open intents the anchor lists.
func TestFirstOpenWithoutAnchor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	j := openT(t, path, Options{})
	appendAll(t, j, append(runRecords("r1", 1), Record{Kind: KindRunStart, RunID: "r2"}, intent("r2", "a")))
	_ = j.Close()
	anchors := &memAnchors{}
	j2 := openT(t, path, Options{Anchors: anchors})
	if a := anchors.get(); a.Seq != 6 || len(a.Open) != 1 || a.Open[0].Seq != 6 {
		t.Fatalf("anchor after the first anchored open = %+v", a)
	}
	// A record after the open intent moves the anchor, which keeps the
	// intent in Open.
	appendAll(t, j2, []Record{{Kind: KindSnooze, TokenID: "z", Until: &t0}})
	_ = j2.Close()
	if a := anchors.get(); a.Seq != 7 || len(a.Open) != 1 {
		t.Fatalf("anchor = %+v", a)
	}
	j3 := openT(t, path, Options{Anchors: anchors})
	if p := j3.Pending(); len(p) != 1 || p[0].TokenID != "a" || p[0].Seq != 6 {
		t.Fatalf("Pending from the checkpoint = %+v", p)
	}
	r := appendAll(t, j3, []Record{outcome("r2", "a")})
	if r[0].Seq != 8 {
		t.Fatalf("seq after reopen = %d", r[0].Seq)
	}
	if a := anchors.get(); a.Seq != 8 || len(a.Open) != 0 {
		t.Fatalf("anchor after the outcome = %+v", a)
	}
}

// TestAnchorWrittenAfterEachRecordButIntents: the state store sees one write
// per record except intents (their outcome's write covers both).
func TestAnchorWrittenAfterEachRecordButIntents(t *testing.T) {
	anchors := &memAnchors{}
	j := openT(t, filepath.Join(t.TempDir(), "j"), Options{Anchors: anchors})
	before := anchors.writes
	appendAll(t, j, runRecords("r", 3)) // start, 3 intents, 3 outcomes, end
	if got := anchors.writes - before; got != 5 {
		t.Fatalf("%d anchor writes for 8 records (3 intents), want 5", got)
	}
	anchors.fail = errors.New("disk full")
	if _, err := j.Append(context.Background(), Record{Kind: KindRunStart, RunID: "r2"}); !errors.Is(err, ErrFailed) {
		t.Fatalf("Append with an unwritable anchor = %v, want ErrFailed", err)
	}
	anchors.fail = nil
	if _, err := j.Append(context.Background(), Record{Kind: KindRunEnd, RunID: "r2"}); !errors.Is(err, ErrFailed) {
		t.Fatalf("Append after the anchor failed = %v, want ErrFailed (sticky)", err)
	}
}

// TestHostileAttachAnchorAhead: serve's per-run check refuses a state store
// whose anchor is ahead of the journal it holds.
func TestHostileAttachAnchorAhead(t *testing.T) {
	j := openT(t, filepath.Join(t.TempDir(), "j"), Options{})
	appendAll(t, j, runRecords("r", 1))
	ahead := &memAnchors{a: &Anchor{Seq: 40, Hash: "sha256:" + strings.Repeat("ab", 32), Offset: 99999}}
	err := j.Attach(context.Background(), ahead, nil)
	var ae *AnchorError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "seq 40") || !strings.Contains(err.Error(), "seq 4") {
		t.Fatalf("Attach = %v", err)
	}
	behind := &memAnchors{}
	if err := j.Attach(context.Background(), behind, nil); err != nil {
		t.Fatal(err)
	}
	if a := behind.get(); a.Seq != 4 {
		t.Fatalf("Attach did not bring the anchor up to date: %+v", a)
	}
	j.Detach()
}

// TestHostileHeldJournalChanged: while a process holds the journal, deleting,
// truncating, replacing or editing it (even at the same size) makes Check
// and every Append fail, and nothing is written to the file any more.
func TestHostileHeldJournalChanged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, path string)
		want   string
	}{
		{"deleted", func(t *testing.T, path string) { must(t, os.Remove(path)) }, "deleted"},
		{"truncated to 0", func(t *testing.T, path string) { must(t, os.Truncate(path, 0)) }, "0 bytes"},
		{"replaced", func(t *testing.T, path string) {
			data, _ := os.ReadFile(path)
			must(t, os.WriteFile(path+".new", data, 0o600))
			must(t, os.Rename(path+".new", path))
		}, "another file"},
		{"middle record edited in place", func(t *testing.T, path string) {
			data, _ := os.ReadFile(path)
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			must(t, err)
			i := bytes.Index(data, []byte(`"applied"`))
			_, err = f.WriteAt([]byte(`"failed!"`), int64(i))
			must(t, err)
			must(t, f.Close())
		}, "modified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal.jsonl")
			j := openT(t, path, Options{})
			appendAll(t, j, runRecords("r1", 2))
			// A second descriptor sees the inode even once unlinked.
			watch, err := os.Open(path)
			must(t, err)
			defer func() { _ = watch.Close() }()
			if fi, _ := os.Stat(path); tc.want == "modified" {
				if _, _, ok := sysState(fi); !ok {
					t.Skip("no change time on this system: an edit at the same size is found by audit verify only")
				}
			}
			tc.change(t, path)
			before, _ := watch.Stat()
			err = j.Check()
			if !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want ErrChanged naming %q", err, tc.want)
			}
			if _, err := j.Append(context.Background(), intent("r2", "t")); !errors.Is(err, ErrFailed) {
				t.Fatalf("Append after the change = %v", err)
			}
			after, _ := watch.Stat()
			if after.Size() != before.Size() {
				t.Fatalf("the held file grew from %d to %d bytes after the change", before.Size(), after.Size())
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestHostileCompleteLastRecordWithoutNewlineIsKept: a last record that is
// complete and valid but lacks only its newline is not a torn write: Open
// keeps it (adding the newline) and the chain continues after it.
func TestHostileCompleteLastRecordWithoutNewlineIsKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Options{})
	appendAll(t, j, runRecords("r1", 1))
	_ = j.Close()
	data, _ := os.ReadFile(path)
	must(t, os.WriteFile(path, data[:len(data)-1], 0o600))
	s, err := verifyFile(t, path)
	if err != nil || s.Records != 4 || !s.Unterminated {
		t.Fatalf("Verify = %+v, %v", s, err)
	}
	j2 := openT(t, path, Options{})
	if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
		t.Fatalf("after Open the journal has %d bytes, want the %d of every record with the last newline added back", len(after), len(data))
	}
	if r := appendAll(t, j2, []Record{{Kind: KindRunStart, RunID: "r2"}}); r[0].Seq != 5 {
		t.Fatalf("next seq %d, want 5", r[0].Seq)
	}
	after, _ := os.ReadFile(path)
	if !bytes.HasPrefix(after, data) {
		t.Fatal("the kept record was changed")
	}
	if s, err := verifyFile(t, path); err != nil || s.Records != 5 || s.Unterminated {
		t.Fatalf("after the append: %+v, %v", s, err)
	}
}

// TestHostileForeignFileNeverTruncated: --journal naming a file that is not a
// journal (a short file starting with NUL, 1 MB of zeros, text, JSON of
// another shape, a journal-like first line that is not a record) is refused
// with an error saying so, and its bytes are left as they were.
func TestHostileForeignFileNeverTruncated(t *testing.T) {
	nul47 := append([]byte{0}, bytes.Repeat([]byte("x"), 46)...)
	for name, content := range map[string][]byte{
		"47 bytes starting with NUL": nul47,
		"1 MB of zeros":              make([]byte, 1<<20),
		"3 MB of zeros":              make([]byte, 3<<20),
		"notes":                      []byte("# notes\nmore\n"),
		"other JSON":                 []byte(`{"id":1}` + "\n" + `{"seq":2}`),
		"one unfinished line":        []byte(`{"seq":7,"time":"2026`),
	} {
		t.Run(name, func(t *testing.T) {
			for _, anchors := range []AnchorStore{nil, &memAnchors{}} {
				path := filepath.Join(t.TempDir(), "not-a-journal")
				must(t, os.WriteFile(path, content, 0o600))
				j, err := Open(path, Options{Anchors: anchors})
				if err == nil {
					_ = j.Close()
					t.Fatal("Open accepted it")
				}
				if !strings.Contains(err.Error(), "not a patjanitor journal") {
					t.Errorf("Open error %q does not say it is not a journal", err)
				}
				if after, _ := os.ReadFile(path); !bytes.Equal(after, content) {
					t.Fatalf("Open changed the file (%d bytes -> %d)", len(content), len(after))
				}
			}
		})
	}
}

// TestSegmentsRotateAndChainContinues: past SegmentBytes the journal rotates
// into journal-000001.jsonl, …; the chain continues across the files,
// VerifyPath walks them all, a reopen (with or without the anchor)
// continues, and archived (moved away) segments are not needed to open with
// the anchor.
func TestSegmentsRotateAndChainContinues(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "journal.jsonl")
	anchors := &memAnchors{}
	j := openT(t, path, Options{Anchors: anchors, SegmentBytes: 4096})
	var recs []Record
	for i := range 6 {
		recs = append(recs, runRecords(fmt.Sprintf("r%d", i), 4)...)
	}
	appendAll(t, j, recs) // 60 records of ~450 bytes: 7 files
	_ = j.Close()
	first, last, err := segments(path)
	if err != nil || first != 1 || last < 5 {
		t.Fatalf("segments %d..%d, %v", first, last, err)
	}
	for n := first; n <= last; n++ {
		fi, err := os.Stat(SegmentPath(path, n))
		if err != nil || fi.Size() > 4096 || fi.Mode().Perm() != 0o600 {
			t.Fatalf("segment %d: %v %v", n, fi, err)
		}
	}
	a := anchors.get()
	if a.Segment != last || a.Seq != 60 {
		t.Fatalf("anchor %+v, want seq 60 in segment index %d", a, last)
	}
	s, err := VerifyPath(path, VerifyOptions{Anchor: &a})
	if err != nil || s.Records != 60 || s.Segments != last+1 || !s.Anchored {
		t.Fatalf("VerifyPath = %+v, %v", s, err)
	}
	// The active file alone is not a chain from seq 1.
	if _, err := verifyFile(t, path); err == nil {
		t.Fatal("the active file verified alone")
	}
	// Reopen without the anchor walks every segment.
	j2 := openT(t, path, Options{SegmentBytes: 4096})
	if r := appendAll(t, j2, []Record{{Kind: KindRunStart, RunID: "x"}}); r[0].Seq != 61 {
		t.Fatalf("seq after reopen %d", r[0].Seq)
	}
	_ = j2.Close()
	// Tampering in a sealed segment is found by VerifyPath.
	seg2 := SegmentPath(path, 2)
	orig, _ := os.ReadFile(seg2)
	must(t, os.WriteFile(seg2, bytes.Replace(orig, []byte(`"applied"`), []byte(`"failed!"`), 1), 0o600))
	var ce *ChainError
	if _, err := VerifyPath(path, VerifyOptions{}); !errors.As(err, &ce) || ce.File != filepath.Base(seg2) {
		t.Fatalf("VerifyPath after tampering in segment 2 = %v", err)
	}
	must(t, os.WriteFile(seg2, orig, 0o600))
	// Archive segments 1 and 2: opening with the anchor does not need them;
	// VerifyPath checks from the first present record and says where.
	archive := t.TempDir()
	for n := 1; n <= 2; n++ {
		must(t, os.Rename(SegmentPath(path, n), filepath.Join(archive, filepath.Base(SegmentPath(path, n)))))
	}
	j3 := openT(t, path, Options{Anchors: anchors, SegmentBytes: 4096})
	_ = j3.Close()
	s, err = VerifyPath(path, VerifyOptions{})
	if err != nil || s.FirstSegment != 3 || s.FirstSeq <= 1 || s.LastSeq != 61 {
		t.Fatalf("VerifyPath without the archived segments = %+v, %v", s, err)
	}
	// The archive verifies on its own, and its last hash is the live
	// part's first prevHash.
	as, err := VerifyPath(filepath.Join(archive, "journal.jsonl"), VerifyOptions{})
	if err != nil || as.LastHash != s.FirstPrevHash || as.LastSeq+1 != s.FirstSeq {
		t.Fatalf("archive = %+v, %v; live starts at seq %d prevHash %s", as, err, s.FirstSeq, s.FirstPrevHash)
	}
	// Without the anchor, Open cannot start in the middle: it says so.
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "archived") {
		t.Fatalf("Open without the anchor and without segments 1-2 = %v", err)
	}
}

// TestHostileVerifyFIFORefusesAtOnce: VerifyPath on a FIFO (or a device)
// returns an error at once instead of blocking on the open.
func TestHostileVerifyFIFORefusesAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := VerifyPath(path, VerifyOptions{})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("VerifyPath(FIFO) = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("VerifyPath blocked on a FIFO")
	}
	if err := func() error { _, err := VerifyPath("/dev/null", VerifyOptions{}); return err }(); err == nil || !strings.Contains(err.Error(), "device") {
		t.Fatalf("VerifyPath(/dev/null) = %v", err)
	}
}
