package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// tornJournal writes a journal of one run (4 records) and appends the first
// 40 bytes of a fifth record, as a crash in the middle of Append leaves it.
// It returns the durable bytes and the torn ones.
func tornJournal(t *testing.T, path string) (durable, torn []byte) {
	t.Helper()
	j := openT(t, path, Options{})
	appendAll(t, j, runRecords("r1", 1))
	_ = j.Close()
	line, _, err := encode(&Record{Seq: 5, Time: t0, Kind: KindIntent, RunID: "r2", TokenID: "b", Before: token("b"),
		Request: &Request{Method: "DELETE", Path: "/v3/personal-access-tokens/b"}})
	if err != nil {
		t.Fatal(err)
	}
	durable, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	torn = line[:40]
	must(t, os.WriteFile(path, append(slices.Clone(durable), torn...), 0o600))
	return durable, torn
}

// TestOpenSavesTornRecordBeforeRemovingIt: the bytes Open removes from a
// torn journal are kept, exactly, in a file beside it, and Repairs says
// what was removed, where, and where it went.
func TestOpenSavesTornRecordBeforeRemovingIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	durable, torn := tornJournal(t, path)
	at := t0.Add(time.Hour)
	j := openT(t, path, Options{Clock: func() time.Time { return at }})

	if after, _ := os.ReadFile(path); !bytes.Equal(after, durable) {
		t.Fatalf("the journal has %d bytes after Open, want the %d before the torn record", len(after), len(durable))
	}
	side := TornPath(path, at, 5)
	want := []Repair{{Kind: RepairTorn, File: path, Line: 5, Offset: int64(len(durable)), Removed: int64(len(torn)), SavedTo: side}}
	if got := j.Repairs(); !slices.Equal(got, want) {
		t.Fatalf("Repairs() = %+v, want %+v", got, want)
	}
	saved, err := os.ReadFile(side)
	if err != nil {
		t.Fatalf("the torn bytes were not saved: %v", err)
	}
	if !bytes.Equal(saved, torn) {
		t.Fatalf("%s holds %q, want exactly the removed bytes %q", side, saved, torn)
	}
	if fi, err := os.Stat(side); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: mode %v, %v; want 0600 (it is journal content)", side, fi.Mode(), err)
	}
	// The side file is no segment: the journal still opens, verifies and
	// continues after the last good record.
	if r := appendAll(t, j, []Record{{Kind: KindRunStart, RunID: "r3"}}); r[0].Seq != 5 {
		t.Fatalf("next seq %d, want 5", r[0].Seq)
	}
	_ = j.Close()
	j2 := openT(t, path, Options{})
	if r := j2.Repairs(); len(r) != 0 {
		t.Fatalf("an intact journal reports repairs %+v", r)
	}
	if s, err := VerifyPath(path, VerifyOptions{}); err != nil || s.Records != 5 {
		t.Fatalf("VerifyPath = %+v, %v", s, err)
	}
}

// TestOpenRefusesWhenTornBytesCannotBeSaved: when the removed bytes cannot be
// kept, nothing is removed: Open fails naming the file it could not write,
// and the journal (and whatever was at that name) is unchanged byte for byte.
func TestOpenRefusesWhenTornBytesCannotBeSaved(t *testing.T) {
	at := t0.Add(time.Hour)
	for _, tc := range []struct {
		name  string
		block func(t *testing.T, side string) (check func())
	}{
		{"an earlier copy at that name", func(t *testing.T, side string) func() {
			must(t, os.WriteFile(side, []byte("earlier evidence"), 0o600))
			return func() {
				if b, _ := os.ReadFile(side); string(b) != "earlier evidence" {
					t.Fatalf("the existing %s was overwritten: %q", side, b)
				}
			}
		}},
		{"a symlink at that name", func(t *testing.T, side string) func() {
			target := filepath.Join(t.TempDir(), "elsewhere")
			must(t, os.WriteFile(target, []byte("keep"), 0o600))
			must(t, os.Symlink(target, side))
			return func() {
				if b, _ := os.ReadFile(target); string(b) != "keep" {
					t.Fatalf("the write followed the symlink: %q", b)
				}
			}
		}},
		{"a directory at that name", func(t *testing.T, side string) func() {
			must(t, os.Mkdir(side, 0o700))
			return func() {}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal.jsonl")
			durable, torn := tornJournal(t, path)
			data := append(slices.Clone(durable), torn...)
			side := TornPath(path, at, 5)
			check := tc.block(t, side)

			j, err := Open(path, Options{Clock: func() time.Time { return at }})
			if err == nil {
				_ = j.Close()
				t.Fatal("Open repaired the journal without keeping the removed bytes")
			}
			if !strings.Contains(err.Error(), side) || !strings.Contains(err.Error(), "line 5") {
				t.Fatalf("Open error %q does not name %s and line 5", err, side)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
				t.Fatalf("the journal changed (%d bytes, was %d) though its torn bytes were not saved", len(after), len(data))
			}
			check()
			// Once the name is free, the repair goes through.
			must(t, os.RemoveAll(side))
			j = openT(t, path, Options{Clock: func() time.Time { return at }})
			if r := j.Repairs(); len(r) != 1 || r[0].SavedTo != side {
				t.Fatalf("Repairs() = %+v", r)
			}
		})
	}
}

// TestOpenReportsAddedNewline: the other repair, a newline added after a
// complete last record, is reported too (nothing is removed or saved).
func TestOpenReportsAddedNewline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Options{})
	appendAll(t, j, runRecords("r1", 1))
	_ = j.Close()
	data, _ := os.ReadFile(path)
	must(t, os.WriteFile(path, data[:len(data)-1], 0o600))
	j2 := openT(t, path, Options{})
	want := []Repair{{Kind: RepairNewline, File: path, Line: 4, Offset: int64(len(data) - 1)}}
	if got := j2.Repairs(); !slices.Equal(got, want) {
		t.Fatalf("Repairs() = %+v, want %+v", got, want)
	}
	if m, _ := filepath.Glob(path + ".torn-*"); len(m) != 0 {
		t.Fatalf("a newline repair saved %v", m)
	}
}

// TestTornFilesByNameNotPattern: TornFiles lists exactly the files TornPath
// names beside the journal, also in a directory whose name is glob syntax,
// and nothing else there (the journal, its segments, look-alikes).
func TestTornFilesByNameNotPattern(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pats[1]*?")
	must(t, os.Mkdir(dir, 0o700))
	path := filepath.Join(dir, "journal.jsonl")
	at := t0.Add(time.Hour)
	want := []string{TornPath(path, at, 5), TornPath(path, at.Add(time.Second), 9)}
	for _, f := range append([]string{path, SegmentPath(path, 1), path + ".tornado", filepath.Join(dir, "other.jsonl.torn-1-line1")}, want...) {
		must(t, os.WriteFile(f, nil, 0o600))
	}
	got, err := TornFiles(path)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("TornFiles = %q, %v; want %q", got, err, want)
	}
	// ParseTornPath gives back what TornPath put in the name, and nothing
	// for a name TornPath does not make.
	if at2, line, ok := ParseTornPath(path, want[1]); !ok || !at2.Equal(at.Add(time.Second)) || line != 9 {
		t.Errorf("ParseTornPath(%s) = %v, %d, %v", want[1], at2, line, ok)
	}
	for _, f := range []string{path + ".tornado", path + ".torn-1-line0", path + ".torn-+5-line1", path + ".torn-5-line01", path + ".torn-x-line1", filepath.Join(dir, "other.jsonl.torn-1-line1")} {
		if _, _, ok := ParseTornPath(path, f); ok {
			t.Errorf("ParseTornPath(%s) read a name TornPath does not make", f)
		}
	}
}
