package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzVerify: Verify never panics; a *ChainError names a line that exists;
// what Verify accepts, Scan and PendingIntents accept too, with the same count.
func FuzzVerify(f *testing.F) {
	path := filepath.Join(f.TempDir(), "j")
	c := &fakeClock{}
	j, err := Open(path, Options{Clock: c.now, wrap: func(a appendFile) appendFile { return noSync{a} }})
	if err != nil {
		f.Fatal(err)
	}
	for _, r := range append(runRecords("r1", 2), Record{Kind: KindRunStart, RunID: "r2"}, intent("r2", "x")) {
		if _, err := j.Append(context.Background(), r); err != nil {
			f.Fatal(err)
		}
	}
	_ = j.Close()
	good, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-7])
	f.Add(bytes.Replace(good, []byte(`"seq":3`), []byte(`"seq":4`), 1))
	f.Add([]byte{})
	f.Add([]byte("\n"))
	f.Add([]byte(`{"seq":1,"time":"2026-01-01T00:00:00Z","kind":"run-start","prevHash":"","hash":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Verify(bytes.NewReader(data))
		if err != nil {
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("Verify error %v is not a *ChainError", err)
			}
			if lines := bytes.Count(data, []byte("\n")) + 1; ce.Line < 1 || ce.Line > lines {
				t.Fatalf("ChainError line %d outside 1..%d", ce.Line, lines)
			}
			return
		}
		if s.LastSeq != int64(s.Records) {
			t.Fatalf("summary %+v", s)
		}
		n := 0
		if err := Scan(bytes.NewReader(data), func(Record) error { n++; return nil }); err != nil {
			// Scan decodes whole records: a line whose head is fine but
			// whose body does not decode is an error there, and only there.
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("Scan error %v is not a *ChainError", err)
			}
			return
		}
		if n != s.Records {
			t.Fatalf("Scan saw %d records, Verify %d", n, s.Records)
		}
		if _, err := PendingIntents(bytes.NewReader(data)); err != nil {
			var ce *ChainError
			if !errors.As(err, &ce) && s.PendingIntents == 0 {
				t.Fatalf("PendingIntents: %v", err)
			}
		}
	})
}

// FuzzFastHead: whenever the fast reader of a line's keys answers, it answers
// what encoding/json reads from the same line (for lines without a repeated
// key, the only lines encoding/json writes).
func FuzzFastHead(f *testing.F) {
	for _, r := range append(runRecords("r1", 1), Record{Kind: KindSnooze, TokenID: "z", Until: &t0, Note: `a "seq" b`}) {
		r.Seq, r.Time, r.PrevHash = 3, t0, "sha256:"+strings.Repeat("0a", 32)
		line, _, err := encode(&r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(line[:len(line)-1])
	}
	f.Add([]byte(`{"seq":1,"time":"2026-01-01T00:00:00Z","kind":"run-start","prevHash":"","hash":"sha256:` + strings.Repeat("0", 64) + `"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		hv, ok := lineHash(line)
		if !ok {
			return
		}
		fast, ok := fastHead(line, string(hv.stored))
		if !ok || !json.Valid(line) || repeatsKey(line) {
			return
		}
		var slow head
		if err := json.Unmarshal(line, &slow); err != nil {
			t.Fatalf("fastHead read %+v from a line encoding/json refuses: %v", fast, err)
		}
		if slow.Kind != KindIntent && slow.Kind != KindOutcome {
			slow.RunID, slow.TokenID = "", "" // read only where the chain pairs records
		}
		if fast.Seq != slow.Seq || !fast.Time.Equal(slow.Time) || fast.RunID != slow.RunID || fast.Kind != slow.Kind ||
			fast.TokenID != slow.TokenID || fast.prevHash() != slow.PrevHash || fast.Hash != slow.Hash {
			t.Fatalf("fastHead %+v, encoding/json %+v", fast, slow)
		}
	})
}

// repeatsKey reports whether a JSON object repeats a top-level key.
func repeatsKey(line []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(line, &m) != nil {
		return true
	}
	// Count the top-level keys as they appear; the map keeps one of each.
	keys := 0
	dec := json.NewDecoder(bytes.NewReader(line))
	if _, err := dec.Token(); err != nil {
		return true
	}
	for dec.More() {
		if _, err := dec.Token(); err != nil {
			return true
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return true
		}
		keys++
	}
	return keys != len(m)
}
