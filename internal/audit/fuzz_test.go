package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
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
