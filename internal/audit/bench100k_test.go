package audit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// journal100k builds (once per process) a journal of 100,000 records shaped
// like a real one: runs of intents and outcomes on tokens as listed.
var journal100k = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "patjanitor-bench")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	path := filepath.Join(dir, "journal.jsonl")
	c := &fakeClock{}
	j, err := Open(path, Options{Clock: c.now, SegmentBytes: -1, wrap: func(f appendFile) appendFile { return noSync{f} }})
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	for n := 0; n < 100_000; {
		run := fmt.Sprintf("run-%d", n)
		for _, r := range runRecords(run, 24) {
			if n == 100_000 {
				break
			}
			if _, err := j.Append(ctx, r); err != nil {
				return nil, err
			}
			n++
		}
	}
	if err := j.Close(); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
})

// BenchmarkVerify100k measures `audit verify` on a 100,000-record journal:
// "legacy" is the verifier before the checkpoint work (json.Unmarshal of
// each record's head), "current" the one in use; both in one run, so the
// ratio is measured on the same machine at the same time.
//
//	go test -run '^$' -bench 'Verify100k' -benchtime 5x ./internal/audit/
func BenchmarkVerify100k(b *testing.B) {
	data, err := journal100k()
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name   string
		verify func(*bytes.Reader) (Summary, error)
	}{
		{"legacy", func(r *bytes.Reader) (Summary, error) { return legacyVerify(r) }},
		{"current", func(r *bytes.Reader) (Summary, error) { return Verify(r) }},
	} {
		b.Run(v.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			startCPU := cpuTime()
			for b.Loop() {
				s, err := v.verify(bytes.NewReader(data))
				if err != nil || s.Records != 100_000 {
					b.Fatalf("%+v %v", s, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100_000, "ns/record")
			// CPU time, which a busy machine does not inflate the way it
			// inflates wall time: the ratio of the two verifiers.
			if cpu := cpuTime() - startCPU; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/100_000, "cpu-ns/record")
			}
		})
	}
}

// BenchmarkOpen100k measures opening a 100,000-record journal for appending
// (what apply, snooze and serve do at start): "full" without an anchor (the
// whole chain is verified, as before anchors existed), "checkpoint" with the
// anchor of an untouched file (only the anchored record and what follows it
// are read), and "checkpoint+tail" as the commands open it, with a catch-up
// for the records after the anchor (none: the store is up to date).
//
//	go test -run '^$' -bench 'Open100k' -benchtime 5x ./internal/audit/
func BenchmarkOpen100k(b *testing.B) {
	data, err := journal100k()
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "journal.jsonl")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	anchors := &memAnchors{}
	j, err := Open(path, Options{Anchors: anchors})
	if err != nil {
		b.Fatal(err)
	}
	_ = j.Close()
	for _, v := range []struct {
		name    string
		anchors AnchorStore
		tail    Tail
	}{{"full", nil, nil}, {"checkpoint", anchors, nil}, {"checkpoint+tail", anchors, &recTail{}}} {
		b.Run(v.name, func(b *testing.B) {
			for b.Loop() {
				j, err := Open(path, Options{Anchors: v.anchors, Tail: v.tail})
				if err != nil {
					b.Fatal(err)
				}
				_ = j.Close()
			}
		})
	}
}
