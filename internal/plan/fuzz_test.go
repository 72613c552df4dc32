package plan

import (
	"bytes"
	"testing"
	"time"
)

// FuzzRead: Read never panics, and whatever it accepts is a fixed point of
// Write/Read: written and read again it hashes the same and writes the same
// bytes (so a plan that verified once verifies after any number of saves).
func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	if err := Write(&buf, sealedForFuzz()); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	cp := clientPlan() // with an apiClients section
	_ = cp.Seal()
	var cbuf bytes.Buffer
	if err := Write(&cbuf, cp); err != nil {
		f.Fatal(err)
	}
	f.Add(cbuf.Bytes())
	gp := clientPlan() // a held (grace) and a due API client item
	marked := gp.GeneratedAt.Add(-7 * 24 * time.Hour)
	deadline := gp.GeneratedAt.Add(-time.Hour)
	gp.APIClients.Items[0].Mode, gp.APIClients.Items[0].Marked = ModeGrace, &marked
	gp.APIClients.Items[1].Marked, gp.APIClients.Items[1].Deadline = &marked, &deadline
	_ = gp.Seal()
	var gbuf bytes.Buffer
	if err := Write(&gbuf, gp); err != nil {
		f.Fatal(err)
	}
	f.Add(gbuf.Bytes())
	f.Add([]byte(`{"version":1,"tenant":"t","apiVersion":"v3","generatedAt":"2026-01-01T00:00:00Z","configDigest":"","planHash":"","population":0,"items":[]}`))
	f.Add([]byte(`{"version":1,"tenant":"t","apiVersion":"v1","generatedAt":"2026-01-01T00:00Z","configDigest":"d","planHash":"","population":3,"items":[{"tokenId":"a","created":"2026-01-01T00:00:00Z","lastUsed":null,"scope":null,"policy":"p","mode":"enforce","action":"patch","reason":"r","patch":[{"op":"replace","path":"/scope","value":{"b":1e400,"a":[null,1.50]}}]}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"version":1,"items":[{}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		h1, err := p.Hash()
		if err != nil {
			// Accepted but unencodable is a Read bug: apply could not
			// check such a plan.
			t.Fatalf("Read accepted a plan it cannot hash: %v", err)
		}
		var w1 bytes.Buffer
		if err := Write(&w1, p); err != nil {
			t.Fatalf("Write of a read plan: %v", err)
		}
		q, err := Read(bytes.NewReader(w1.Bytes()))
		if err != nil {
			t.Fatalf("Read of a written plan: %v\n%s", err, w1.Bytes())
		}
		h2, err := q.Hash()
		if err != nil || h1 != h2 {
			t.Fatalf("hash changed across Write/Read: %s -> %s (%v)", h1, h2, err)
		}
		var w2 bytes.Buffer
		if err := Write(&w2, q); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(w1.Bytes(), w2.Bytes()) {
			t.Fatalf("Write is not a fixed point:\n%s\n---\n%s", w1.Bytes(), w2.Bytes())
		}
	})
}

func sealedForFuzz() *Plan {
	p := samplePlan()
	_ = p.Seal()
	return p
}
