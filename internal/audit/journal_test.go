package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

var t0 = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)

// fakeClock advances by a second per reading.
type fakeClock struct{ n atomic.Int64 }

func (c *fakeClock) now() time.Time { return t0.Add(time.Duration(c.n.Add(1)) * time.Second) }

func openT(t *testing.T, path string, opts Options) *Journal {
	t.Helper()
	if opts.Clock == nil {
		c := &fakeClock{}
		opts.Clock = c.now
	}
	j, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

func token(id string) *pat.Token {
	lu := t0.AddDate(0, -5, 0)
	return &pat.Token{ID: id, Name: "ci <" + id + ">", Scope: pat.Scopes{Null: true},
		Owner: pat.Owner{Type: "IDENTITY", ID: "o1", Name: "Ann"}, Created: t0.AddDate(-1, 0, 0), LastUsed: &lu}
}

func intent(run, id string) Record {
	return Record{Kind: KindIntent, RunID: run, Policy: "unused-90d", TokenID: id, Before: token(id),
		Request: &Request{Method: "PATCH", Path: "/v3/personal-access-tokens/" + id,
			Patch: []pat.PatchOp{pat.SetScopes([]string{"sp:scopes:default"})}}}
}

func outcome(run, id string) Record {
	return Record{Kind: KindOutcome, RunID: run, Policy: "unused-90d", TokenID: id,
		Outcome: &Outcome{Status: "applied", Code: 200}}
}

// runRecords is one complete run with n mutations.
func runRecords(run string, n int) []Record {
	recs := []Record{{Kind: KindRunStart, RunID: run, Note: "start"}}
	for i := range n {
		id := fmt.Sprintf("%s-tok%d", run, i)
		recs = append(recs, intent(run, id), outcome(run, id))
	}
	return append(recs, Record{Kind: KindRunEnd, RunID: run, Note: "done"})
}

func appendAll(t *testing.T, j *Journal, recs []Record) []Record {
	t.Helper()
	var out []Record
	for _, r := range recs {
		got, err := j.Append(context.Background(), r)
		if err != nil {
			t.Fatalf("Append %s: %v", r.Kind, err)
		}
		out = append(out, got)
	}
	return out
}

func verifyFile(t *testing.T, path string) (Summary, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	return Verify(f)
}

func TestAppendChainVerifies(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "deep")
	path := filepath.Join(dir, "journal.jsonl")
	j := openT(t, path, Options{})
	got := appendAll(t, j, runRecords("r1", 2))
	for i, r := range got {
		if r.Seq != int64(i+1) || !strings.HasPrefix(r.Hash, "sha256:") || r.Time.IsZero() {
			t.Fatalf("record %d: %+v", i, r)
		}
		if i == 0 && r.PrevHash != GenesisHash {
			t.Fatalf("first prevHash %q", r.PrevHash)
		}
		if i > 0 && r.PrevHash != got[i-1].Hash {
			t.Fatalf("record %d prevHash %s, previous hash %s", i, r.PrevHash, got[i-1].Hash)
		}
	}
	if !got[0].Time.Equal(t0.Add(time.Second)) || got[0].Time.Location() != time.UTC {
		t.Fatalf("time %v not from the clock", got[0].Time)
	}
	s, err := verifyFile(t, path)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Summary{Records: 6, LastSeq: 6, LastHash: got[5].Hash, Runs: 1, Segments: 1, Size: fi.Size()}
	if s != want {
		t.Fatalf("Summary = %+v, want %+v", s, want)
	}
	for p, mode := range map[string]os.FileMode{path: 0o600, dir: 0o700, filepath.Dir(dir): 0o700} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s mode %v, want %v", p, fi.Mode().Perm(), mode)
		}
	}
	// Scan yields the records as Append returned them.
	f, _ := os.Open(path)
	defer func() { _ = f.Close() }()
	var scanned []Record
	if err := Scan(f, func(r Record) error { scanned = append(scanned, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(scanned) != len(got) {
		t.Fatalf("Scan gave %d records", len(scanned))
	}
	for i := range got {
		if scanned[i].Hash != got[i].Hash || !scanned[i].Time.Equal(got[i].Time) || scanned[i].Kind != got[i].Kind {
			t.Fatalf("scanned %d = %+v, appended %+v", i, scanned[i], got[i])
		}
	}
	if scanned[1].Before == nil || !scanned[1].Before.Scope.Null || scanned[1].Request.Patch[0] != pat.SetScopes([]string{"sp:scopes:default"}) {
		t.Fatalf("intent lost detail: %+v", scanned[1])
	}
}

// TestHashRecipe checks the documented recipe, as another tool would apply it
// to the raw bytes: replace the final hash value with "" and hash.
func TestHashRecipe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Options{})
	appendAll(t, j, runRecords("r1", 1))
	data, _ := os.ReadFile(path)
	prev := ""
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		k := strings.LastIndex(line, `"hash":"`)
		stored := line[k+len(`"hash":"`) : len(line)-2]
		sum := sha256.Sum256([]byte(line[:k] + `"hash":""}`))
		if want := "sha256:" + hex.EncodeToString(sum[:]); stored != want {
			t.Fatalf("line %d: stored %s, recipe gives %s", i+1, stored, want)
		}
		if !strings.Contains(line, `"prevHash":"`+prev+`"`) {
			t.Fatalf("line %d does not chain to %q", i+1, prev)
		}
		prev = stored
	}
}

func TestReopenContinuesAndFindsPending(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	j := openT(t, path, Options{})
	appendAll(t, j, runRecords("r1", 1))
	// r2 crashes after two intents; one got its outcome.
	appendAll(t, j, []Record{{Kind: KindRunStart, RunID: "r2"}, intent("r2", "a"), intent("r2", "b"), outcome("r2", "a")})
	if len(j.Pending()) != 0 {
		t.Fatal("Pending is a snapshot of Open")
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append(context.Background(), Record{Kind: KindRunStart, RunID: "x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	j2 := openT(t, path, Options{})
	p := j2.Pending()
	if len(p) != 1 || p[0].TokenID != "b" || p[0].RunID != "r2" || p[0].Seq != 7 || p[0].Before == nil {
		t.Fatalf("Pending = %+v", p)
	}
	r, err := j2.Append(context.Background(), outcome("r2", "b"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Seq != 9 {
		t.Fatalf("seq after reopen %d, want 9", r.Seq)
	}
	s, err := verifyFile(t, path)
	if err != nil || s.Records != 9 || s.Runs != 2 || s.PendingIntents != 0 {
		t.Fatalf("Verify = %+v, %v", s, err)
	}
	f, _ := os.Open(path)
	defer func() { _ = f.Close() }()
	if p, err := PendingIntents(f); err != nil || len(p) != 0 {
		t.Fatalf("PendingIntents = %v, %v", p, err)
	}
}

// journalLines writes a valid journal and returns its lines (with newlines).
func journalLines(t *testing.T) [][]byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Options{})
	appendAll(t, j, runRecords("r1", 2)) // 6 records
	_ = j.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(data, []byte("\n"))[:6]
}

// rehash recomputes a line's own hash after an edit (what a careful forger
// does); the next record's prevHash still gives it away.
func rehash(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	prefix := line[:len(line)-hashValueLen]
	return []byte(string(prefix) + `"` + sum(prefix) + "\"}\n")
}

func TestTamperDetected(t *testing.T) {
	type tc struct {
		name       string
		edit       func(ls [][]byte) [][]byte
		line       int
		reason     string
		openRepair bool // Open repairs it (a torn tail) instead of refusing
	}
	replace := func(i int, old, new string) func(ls [][]byte) [][]byte {
		return func(ls [][]byte) [][]byte {
			ls[i] = bytes.Replace(ls[i], []byte(old), []byte(new), 1)
			return ls
		}
	}
	tests := []tc{
		{"content changed", replace(2, `"code":200`, `"code":201`), 3, "hash mismatch", false},
		{"policy changed", replace(1, `"policy":"unused-90d"`, `"policy":"unused-91d"`), 2, "hash mismatch", false},
		{"hash changed", func(ls [][]byte) [][]byte {
			i := bytes.LastIndex(ls[3], []byte(`"sha256:`)) + len(`"sha256:`)
			if ls[3][i] == '0' {
				ls[3][i] = '1'
			} else {
				ls[3][i] = '0'
			}
			return ls
		}, 4, "hash mismatch", false},
		{"edited and rehashed", func(ls [][]byte) [][]byte {
			ls[2] = rehash(bytes.Replace(ls[2], []byte(`"applied"`), []byte(`"failed!"`), 1))
			return ls
		}, 4, "prevHash", false},
		{"record removed", func(ls [][]byte) [][]byte { return slices.Delete(ls, 2, 3) }, 3, "seq 4 follows seq 2", false},
		{"first record removed", func(ls [][]byte) [][]byte { return ls[1:] }, 1, "first record has seq 2", false},
		{"records swapped", func(ls [][]byte) [][]byte { ls[2], ls[3] = ls[3], ls[2]; return ls }, 3, "seq 4 follows seq 2", false},
		{"record duplicated", func(ls [][]byte) [][]byte { return slices.Insert(ls, 3, ls[2]) }, 4, "seq 3 follows seq 3", false},
		{"bad JSON in the middle", replace(2, `{"seq"`, `{"seq`), 3, "not a JSON record", false},
		{"blank line in the middle", func(ls [][]byte) [][]byte { return slices.Insert(ls, 2, []byte("\n")) }, 3, "not a JSON record", false},
		{"key renamed", replace(4, `"prevHash"`, `"prevHash2"`), 5, "hash mismatch", false},
		{"no hash", func(ls [][]byte) [][]byte {
			ls[1] = append(ls[1][:len(ls[1])-1-hashValueLen], "\"\"}\n"...)
			return ls
		}, 2, "does not end with", false},
		{"torn tail", func(ls [][]byte) [][]byte { ls[5] = ls[5][:len(ls[5])/2]; return ls }, 6, "torn final record", true},
		{"zero-filled tail", func(ls [][]byte) [][]byte {
			ls[5] = append(make([]byte, len(ls[5])-1), '\n')
			return ls
		}, 6, "not a JSON record", true},
		{"tail cut before its newline", func(ls [][]byte) [][]byte { ls[5] = ls[5][:len(ls[5])-2]; return ls }, 6, "torn final record", true},
	}
	journalLinesCache = journalLines(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ls := make([][]byte, len(journalLinesCache))
			for i := range ls {
				ls[i] = slices.Clone(journalLinesCache[i])
			}
			data := bytes.Join(tc.edit(ls), nil)
			_, err := Verify(bytes.NewReader(data))
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("Verify = %v, want a *ChainError", err)
			}
			if ce.Line != tc.line || !strings.Contains(ce.Reason, tc.reason) {
				t.Fatalf("ChainError line %d %q, want line %d containing %q", ce.Line, ce.Reason, tc.line, tc.reason)
			}
			if ce.Torn() != tc.openRepair {
				t.Fatalf("Torn() = %v", ce.Torn())
			}
			if err := Scan(bytes.NewReader(data), func(Record) error { return nil }); !errors.As(err, &ce) || ce.Line != tc.line {
				t.Fatalf("Scan = %v", err)
			}
			path := filepath.Join(t.TempDir(), "j")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			j, err := Open(path, Options{})
			if !tc.openRepair {
				if err == nil {
					_ = j.Close()
					t.Fatal("Open accepted a broken journal")
				}
				if !errors.As(err, &ce) || ce.Line != tc.line {
					t.Fatalf("Open error %v does not name line %d", err, tc.line)
				}
				after, _ := os.ReadFile(path)
				if !bytes.Equal(after, data) {
					t.Fatal("Open changed a broken journal")
				}
				return
			}
			if err != nil {
				t.Fatalf("Open of a torn journal: %v", err)
			}
			defer func() { _ = j.Close() }()
			if after, _ := os.ReadFile(path); len(after) >= len(data) || !bytes.HasPrefix(data, after) {
				t.Fatalf("Open left %d of %d bytes: want the torn final record removed and the rest kept", len(after), len(data))
			}
			r, err := j.Append(context.Background(), Record{Kind: KindRunEnd, RunID: "r1"})
			if err != nil || r.Seq != 6 {
				t.Fatalf("Append after repair: seq %d, %v", r.Seq, err)
			}
			if s, err := verifyFile(t, path); err != nil || s.Records != 6 {
				t.Fatalf("after repair: %+v %v", s, err)
			}
		})
	}
}

var journalLinesCache [][]byte

// TestOpenNeverTruncatesAForeignFile: a path that names some other file is
// refused, never "repaired".
func TestOpenNeverTruncatesAForeignFile(t *testing.T) {
	for _, content := range []string{"hello world", "hello world\n", "# notes\nmore notes", `{"id":1}` + "\n"} {
		path := filepath.Join(t.TempDir(), "notes.txt")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		j, err := Open(path, Options{})
		if err == nil {
			_ = j.Close()
			t.Fatalf("Open accepted %q", content)
		}
		var ce *ChainError
		if !errors.As(err, &ce) || ce.Line != 1 {
			t.Errorf("Open(%q) = %v, want a ChainError at line 1", content, err)
		}
		if after, _ := os.ReadFile(path); string(after) != content {
			t.Fatalf("Open changed %q to %q", content, after)
		}
	}
}

func TestTornIntentIsNotPending(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Options{})
	appendAll(t, j, []Record{{Kind: KindRunStart, RunID: "r"}, intent("r", "a")})
	_ = j.Close()
	// A second intent torn mid-write: its request was never sent.
	line, _, err := encode(&Record{Seq: 3, Time: t0, Kind: KindIntent, RunID: "r", TokenID: "b", Before: token("b"),
		Request: &Request{Method: "DELETE", Path: "/v3/personal-access-tokens/b"}})
	if err != nil {
		t.Fatal(err)
	}
	durable, _ := os.ReadFile(path)
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	_, _ = f.Write(line[:40])
	_ = f.Close()
	j2 := openT(t, path, Options{})
	if p := j2.Pending(); len(p) != 1 || p[0].TokenID != "a" {
		t.Fatalf("Pending = %+v, want only the durable intent a", p)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, durable) {
		t.Fatalf("after Open the journal has %d bytes, want the %d before the torn record", len(after), len(durable))
	}
}

func TestConcurrentAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Options{})
	const workers, each = 8, 25
	var wg sync.WaitGroup
	seqs := make(chan int64, workers*each)
	for w := range workers {
		wg.Go(func() {
			run := fmt.Sprintf("r%d", w)
			for i := range each {
				r, err := j.Append(context.Background(), intent(run, fmt.Sprint(i)))
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- r.Seq
			}
		})
	}
	wg.Wait()
	close(seqs)
	var all []int64
	for s := range seqs {
		all = append(all, s)
	}
	slices.Sort(all)
	for i, s := range all {
		if s != int64(i+1) {
			t.Fatalf("seqs not 1..%d: %v", workers*each, all)
		}
	}
	s, err := verifyFile(t, path)
	if err != nil || s.Records != workers*each || s.PendingIntents != workers*each {
		t.Fatalf("Verify = %+v, %v", s, err)
	}
}

func TestOpenUnwritable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// The journal's directory would have to be a regular file.
	if _, err := Open(filepath.Join(file, "journal.jsonl"), Options{}); err == nil {
		t.Fatal("Open under a regular file succeeded")
	}
	// The journal path is a directory.
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("Open of a directory succeeded")
	}
	if _, err := Open("", Options{}); err == nil {
		t.Fatal("Open of an empty path succeeded")
	}
	if os.Geteuid() == 0 {
		t.Log("running as root: permission bits do not stop root, skipping the read-only cases")
		return
	}
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(ro, "journal.jsonl"), Options{}); err == nil {
		t.Fatal("Open in a read-only directory succeeded")
	}
	rof := filepath.Join(dir, "ro.jsonl")
	if err := os.WriteFile(rof, nil, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(rof, Options{}); err == nil {
		t.Fatal("Open of a read-only file succeeded")
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Options{})
	if j2, err := Open(path, Options{}); err == nil {
		_ = j2.Close()
		t.Fatal("a second Open of an open journal succeeded")
	} else if !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: %v", err)
	}
	_ = j.Close()
	j3 := openT(t, path, Options{})
	_ = j3.Close()
}

// recFile records the calls Append makes on the file, and can fail them.
type recFile struct {
	appendFile
	mu        sync.Mutex
	events    []string
	failWrite error
	failSync  error
	halfWrite bool
}

func (f *recFile) log(e string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
}

func (f *recFile) Write(p []byte) (int, error) {
	f.log("write")
	if f.failWrite != nil {
		n := 0
		if f.halfWrite {
			n, _ = f.appendFile.Write(p[:len(p)/2])
		}
		return n, f.failWrite
	}
	return f.appendFile.Write(p)
}

func (f *recFile) Sync() error {
	f.log("sync")
	if f.failSync != nil {
		return f.failSync
	}
	return f.appendFile.Sync()
}

func (f *recFile) Truncate(n int64) error {
	f.log("truncate")
	return f.appendFile.Truncate(n)
}

func TestFsyncBeforeAppendReturns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	rf := &recFile{}
	j := openT(t, path, Options{wrap: func(f appendFile) appendFile { rf.appendFile = f; return rf }})
	for i := range 3 {
		if _, err := j.Append(context.Background(), Record{Kind: KindRunStart, RunID: "r"}); err != nil {
			t.Fatal(err)
		}
		rf.log("returned")
		// Another handle sees the complete line as soon as Append returned.
		s, err := verifyFile(t, path)
		if err != nil || s.Records != i+1 {
			t.Fatalf("after Append %d: %+v %v", i, s, err)
		}
	}
	want := []string{"write", "sync", "returned", "write", "sync", "returned", "write", "sync", "returned"}
	if !slices.Equal(rf.events, want) {
		t.Fatalf("events %v, want %v", rf.events, want)
	}
}

func TestWriteFailureIsSticky(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(f *recFile)
	}{
		{"short write", func(f *recFile) { f.failWrite, f.halfWrite = errors.New("disk full"), true }},
		{"write error", func(f *recFile) { f.failWrite = errors.New("EIO") }},
		{"fsync error", func(f *recFile) { f.failSync = errors.New("EIO on fsync") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j")
			rf := &recFile{}
			j := openT(t, path, Options{wrap: func(f appendFile) appendFile { rf.appendFile = f; return rf }})
			appendAll(t, j, []Record{{Kind: KindRunStart, RunID: "r"}})
			tc.set(rf)
			if _, err := j.Append(context.Background(), intent("r", "a")); !errors.Is(err, ErrFailed) {
				t.Fatalf("failing Append = %v, want ErrFailed", err)
			}
			rf.failWrite, rf.failSync = nil, nil
			_, err := j.Append(context.Background(), intent("r", "b"))
			if !errors.Is(err, ErrFailed) {
				t.Fatalf("Append after a failure = %v, want ErrFailed", err)
			}
			_ = j.Close()
			// The failed record was removed: the journal holds exactly the
			// record whose Append succeeded.
			s, err := verifyFile(t, path)
			if err != nil || s.Records != 1 {
				t.Fatalf("after failure: %+v %v", s, err)
			}
		})
	}
}

func TestAppendRefusesIncompleteRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Options{})
	ctx := context.Background()
	bad := []Record{
		{Kind: "mutation", RunID: "r"},
		{Kind: KindRunStart},
		{Kind: KindIntent, RunID: "r", TokenID: "a", Request: &Request{Method: "DELETE", Path: "/x"}},
		{Kind: KindIntent, RunID: "r", TokenID: "a", Before: token("a")},
		{Kind: KindIntent, RunID: "r", TokenID: "a", Before: token("b"), Request: &Request{Method: "DELETE", Path: "/x"}},
		{Kind: KindOutcome, RunID: "r", TokenID: "a"},
		{Kind: KindSnooze, TokenID: "a"},
		{Kind: KindRunEnd, RunID: "r", Note: strings.Repeat("x", MaxRecordSize)},
	}
	for _, r := range bad {
		if _, err := j.Append(ctx, r); err == nil {
			t.Errorf("Append accepted %+v", r.Kind)
		} else if errors.Is(err, ErrFailed) {
			t.Errorf("a refused record failed the journal: %v", err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := j.Append(cctx, Record{Kind: KindRunStart, RunID: "r"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context = %v", err)
	}
	until := t0.AddDate(0, 0, 30)
	if _, err := j.Append(ctx, Record{Kind: KindSnooze, TokenID: "a", Until: &until, Note: "vacation"}); err != nil {
		t.Fatalf("the journal is still usable: %v", err)
	}
	if s, err := verifyFile(t, path); err != nil || s.Records != 1 {
		t.Fatalf("%+v %v", s, err)
	}
}

func TestNoSecretsInRecordTypes(t *testing.T) {
	// The record carries no field a credential could go into: the token
	// state is the listing's (which has no secret), the request has no
	// headers. A guard against someone adding one.
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Options{})
	appendAll(t, j, runRecords("r", 1))
	data, _ := os.ReadFile(path)
	for _, w := range []string{"secret", "authorization", "bearer", "password", "access_token"} {
		if bytes.Contains(bytes.ToLower(data), []byte(w)) {
			t.Errorf("journal contains %q", w)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	path := filepath.Join(b.TempDir(), "j")
	j, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = j.Close() }()
	rec := intent("r", "2c9180835d2e5168015d32f890ca1581")
	ctx := context.Background()
	for b.Loop() {
		if _, err := j.Append(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	path := filepath.Join(b.TempDir(), "j")
	j, err := Open(path, Options{wrap: func(f appendFile) appendFile { return noSync{f} }})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 10000 {
		if _, err := j.Append(context.Background(), intent("r", fmt.Sprint(i))); err != nil {
			b.Fatal(err)
		}
	}
	_ = j.Close()
	data, _ := os.ReadFile(path)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Verify(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// noSync skips fsync to build large fixtures quickly.
type noSync struct{ appendFile }

func (noSync) Sync() error { return nil }
