package plan

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// realisticPlan is the plan the engine makes from the shipped policies.yaml
// for the simulator's 100,000-token tenant (seed 1): 61,816 items and 6,574
// skipped tokens, the policies' shares, scopes, alsoMatched and patch
// operations in its proportions (a 44 MB document).
func realisticPlan() *Plan { return realisticPlanOf(61816, 6574) }

// realisticPlanOf draws items and skipped tokens as realisticPlan does, in
// the same proportions.
func realisticPlanOf(items, skipped int) *Plan {
	rng := rand.New(rand.NewPCG(1, 100000))
	now := time.Date(2026, 12, 5, 16, 24, 52, 214e6, time.UTC)
	hex := func() string { return fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64()) }
	names := []string{"temp", "grafana", "ansible", "migration-2024", "backup-job", "data-export", "qa-automation", "powershell-scripts"}
	first := []string{"Aiko", "Ravi", "Yusuf", "Zanele", "Maria", "Chen", "Olu", "Sven"}
	last := []string{"Brown", "Tanaka", "Martin", "Ferguson", "Garcia", "Li", "Okafor", "Berg"}
	scopes := [][]string{{"sp:scopes:all"}, nil, {"sp:scopes:default"}, {"idn:access-request:manage"},
		{"idn:sources-admin:manage", "idn:sources:aggregate"}, {"idn:identity:read", "idn:identity-profile:read"}}
	owners := make([][2]string, 26405)
	for i := range owners {
		owners[i] = [2]string{hex(), first[rng.IntN(len(first))] + " " + last[rng.IntN(len(last))]}
	}
	at := func(days int) time.Time {
		return now.Add(-time.Duration(rng.Int64N(int64(days) * 24 * int64(time.Hour))))
	}
	p := samplePlan()
	p.Policies = []Policy{{"unused-90d", ModeReport, ActionDelete}, {"never-used-30d", ModeReport, ActionDelete},
		{"full-access", ModeReport, ActionExpire}, {"idle-write-access", ModeReport, ActionReport}, {"managed-unused-180d", ModeReport, ActionReport}}
	all := make([]Item, items)
	for i := range all {
		o := owners[rng.IntN(len(owners))]
		sc := scopes[rng.IntN(len(scopes))]
		it := Item{TokenID: hex(), TokenName: names[rng.IntN(len(names))], OwnerID: o[0], OwnerName: o[1],
			Created: at(900), Scope: pat.ScopesOf(sc...), Mode: ModeReport, Patch: []pat.PatchOp{}}
		if sc == nil {
			it.Scope = pat.Scopes{Null: true}
		}
		if rng.IntN(3) > 0 {
			it.LastUsed = new(at(300))
		}
		if rng.IntN(3) > 0 {
			it.ExpirationDate = new(now.Add(time.Duration(rng.Int64N(int64(700 * 24 * time.Hour)))))
		}
		switch r := rng.IntN(100); {
		case r < 70:
			it.Policy, it.Action = "unused-90d", ActionDelete
			it.Reason = "lastUsed " + pat.FormatTime(it.Created) + " is before cutoff 2026-09-06T16:24:52.214Z (unusedFor 90d)"
			it.AlsoMatched = []string{"full-access", "never-used-30d", "managed-unused-180d"}[:rng.IntN(4)]
		case r < 92:
			it.Policy, it.Action = "full-access", ActionExpire
			it.Reason = "holds sp:scopes:all (scopes.any)"
			it.Patch = []pat.PatchOp{pat.SetExpiration(now.AddDate(0, 0, 30))}
		case r < 98:
			it.Policy, it.Action = "managed-unused-180d", ActionReport
			it.Reason = "never used; created " + pat.FormatTime(it.Created) + " is before cutoff 2026-06-08T16:24:52.214Z (unusedFor 180d)"
		default:
			it.Policy, it.Action = "never-used-30d", ActionDelete
			it.Reason = "never used; created " + pat.FormatTime(it.Created) + " is before cutoff 2026-11-05T16:24:52.214Z (createdOlderThan 30d)"
		}
		if it.AlsoMatched == nil {
			it.AlsoMatched = []string{}
		}
		all[i] = it
	}
	p.Items = NewItems(all...)
	p.Items.Sort()
	p.Skipped = make([]Skipped, skipped)
	for i := range p.Skipped {
		o := owners[rng.IntN(len(owners))]
		p.Skipped[i] = Skipped{TokenID: hex(), TokenName: "break-glass-" + names[rng.IntN(len(names))], OwnerID: o[0], Policy: "full-access", Reason: "excluded-name"}
	}
	return p
}

// cpuTime is the process's CPU time (user and system) so far: on a shared
// machine it varies less than the wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sealAndWrite is the work of a plan run on the document: Seal, then Write.
// items are p's items as a slice, for the forms that take one (made once,
// outside the timed loop).
type sealAndWrite func(p *Plan, items []Item, w io.Writer) error

// handForm is the package's own Seal and Write.
func handForm(p *Plan, _ []Item, w io.Writer) error {
	if err := p.Seal(); err != nil {
		return err
	}
	return Write(w, p)
}

// itemsOnce: each item encoded once (compact) by enc, hashed, and re-indented
// into w by indent; the rest of the document as handForm does it. The
// compact encodings are kept between the hash and the file (the header,
// with the hash, comes first).
func itemsOnce(enc func(dst []byte, it *Item) ([]byte, error), indent func(dst, compact []byte) ([]byte, error)) sealAndWrite {
	return func(p *Plan, items []Item, w io.Writer) error {
		h := sha256.New()
		compact := make([][]byte, len(items))
		var err error
		for i := range items {
			if compact[i], err = enc(nil, &items[i]); err != nil {
				return err
			}
			h.Write(compact[i])
		}
		var buf []byte
		for i := range compact {
			if buf, err = indent(buf[:0], compact[i]); err != nil {
				return err
			}
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		return writeRest(p, h, w)
	}
}

// itemsTwice: items encoded compact into the hash, then again indented into w.
func itemsTwice(seal func(h hash.Hash, items []Item) error, write func(w io.Writer, items []Item) error) sealAndWrite {
	return func(p *Plan, items []Item, w io.Writer) error {
		h := sha256.New()
		if err := seal(h, items); err != nil {
			return err
		}
		if err := write(w, items); err != nil {
			return err
		}
		return writeRest(p, h, w)
	}
}

// writeRest: the document without items, sealed and written by hand (the
// same for every form, a small part of the work).
func writeRest(p *Plan, h hash.Hash, w io.Writer) error {
	q := *p
	q.Items = Items{}
	if err := newEncoder(h, false).plan(&q); err != nil {
		return err
	}
	q.PlanHash = fmt.Sprintf("sha256:%x", h.Sum(nil))
	return newEncoder(w, true).plan(&q)
}

var v2Compact = jsonv2.JoinOptions(jsontext.EscapeForHTML(true), jsontext.EscapeForJS(true), jsontext.AllowInvalidUTF8(true),
	jsonv2.Deterministic(true))
var v2Indented = jsonv2.JoinOptions(v2Compact, jsontext.WithIndent("  "), jsontext.WithIndentPrefix("    "))

func BenchmarkEncodeForms(b *testing.B) {
	p := realisticPlan()
	var doc bytes.Buffer
	items := p.Items.Slice()
	if err := handForm(p, items, &doc); err != nil {
		b.Fatal(err)
	}
	handItem := func(dst []byte, it *Item) ([]byte, error) {
		e := encoder{buf: dst}
		err := e.item(it)
		return e.buf, err
	}
	v1Item := func(dst []byte, it *Item) ([]byte, error) {
		w, _ := refWire(it)
		b, err := json.Marshal(w)
		return append(dst, b...), err
	}
	v2Item := func(dst []byte, it *Item) ([]byte, error) {
		w, _ := refWire(it)
		return jsonv2.Marshal(w, v2Compact)
	}
	jsonIndent := func(dst, compact []byte) ([]byte, error) {
		var buf bytes.Buffer
		err := json.Indent(&buf, compact, "    ", "  ")
		return append(dst, buf.Bytes()...), err
	}
	v2Indent := func(dst, compact []byte) ([]byte, error) {
		return jsontext.AppendFormat(dst, compact, v2Compact, jsontext.WithIndent("  "), jsontext.WithIndentPrefix("    "))
	}
	forms := []struct {
		name string
		f    sealAndWrite
	}{
		{"hand", handForm},
		{"hand-once-jsonIndent", itemsOnce(handItem, jsonIndent)},
		{"v1-twice", itemsTwice(func(h hash.Hash, items []Item) error {
			for i := range items {
				b, err := v1Item(nil, &items[i])
				if err != nil {
					return err
				}
				h.Write(b)
			}
			return nil
		}, func(w io.Writer, items []Item) error {
			for i := range items {
				b, err := v1Item(nil, &items[i])
				if err != nil {
					return err
				}
				if b, err = jsonIndent(nil, b); err != nil {
					return err
				}
				w.Write(b)
			}
			return nil
		})},
		{"v1-once", itemsOnce(v1Item, jsonIndent)},
		{"v2-twice", itemsTwice(func(h hash.Hash, items []Item) error {
			enc := jsontext.NewEncoder(h, v2Compact)
			for i := range items {
				w, _ := refWire(&items[i])
				if err := jsonv2.MarshalEncode(enc, w); err != nil {
					return err
				}
			}
			return nil
		}, func(w io.Writer, items []Item) error {
			enc := jsontext.NewEncoder(w, v2Indented)
			for i := range items {
				w, _ := refWire(&items[i])
				if err := jsonv2.MarshalEncode(enc, w); err != nil {
					return err
				}
			}
			return nil
		})},
		{"v2-once", itemsOnce(v2Item, v2Indent)},
		{"v2tokens-twice", itemsTwice(func(h hash.Hash, items []Item) error {
			return v2TokensItems(jsontext.NewEncoder(h, v2Compact), items)
		}, func(w io.Writer, items []Item) error {
			return v2TokensItems(jsontext.NewEncoder(w, v2Indented), items)
		})},
	}
	for round := range 2 {
		for _, f := range forms {
			b.Run(fmt.Sprintf("%s/%d", f.name, round), func(b *testing.B) {
				b.SetBytes(int64(doc.Len()))
				b.ReportAllocs()
				cpu := cpuTime()
				for b.Loop() {
					if err := f.f(p, items, io.Discard); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64((cpuTime()-cpu).Milliseconds())/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

// v2TokensItems writes items through jsontext.Encoder token by token: the
// library escapes strings and lays out the document; the fields are listed
// here, as in encode.go.
func v2TokensItems(enc *jsontext.Encoder, items []Item) error {
	var tb []byte
	str := func(k, v string) {
		enc.WriteToken(jsontext.String(k))
		enc.WriteToken(jsontext.String(v))
	}
	tm := func(k string, t time.Time) {
		enc.WriteToken(jsontext.String(k))
		tb = append(append(append(tb[:0], '"'), pat.FormatTime(t)...), '"')
		enc.WriteValue(tb)
	}
	strs := func(ss []string) {
		enc.WriteToken(jsontext.BeginArray)
		for _, s := range ss {
			enc.WriteToken(jsontext.String(s))
		}
		enc.WriteToken(jsontext.EndArray)
	}
	for i := range items {
		it := &items[i]
		enc.WriteToken(jsontext.BeginObject)
		str("tokenId", it.TokenID)
		str("tokenName", it.TokenName)
		str("ownerId", it.OwnerID)
		str("ownerName", it.OwnerName)
		tm("created", it.Created)
		if it.LastUsed != nil {
			tm("lastUsed", *it.LastUsed)
		} else {
			enc.WriteToken(jsontext.String("lastUsed"))
			enc.WriteToken(jsontext.Null)
		}
		if it.ExpirationDate != nil {
			tm("expirationDate", *it.ExpirationDate)
		}
		enc.WriteToken(jsontext.String("scope"))
		if it.Scope.Null {
			enc.WriteToken(jsontext.Null)
		} else {
			strs(it.Scope.Values)
		}
		enc.WriteToken(jsontext.String("managed"))
		enc.WriteToken(jsontext.Bool(it.Managed))
		str("policy", it.Policy)
		str("mode", it.Mode)
		str("action", it.Action)
		str("reason", it.Reason)
		enc.WriteToken(jsontext.String("patch"))
		enc.WriteToken(jsontext.BeginArray)
		for _, op := range it.Patch {
			enc.WriteToken(jsontext.BeginObject)
			str("op", op.Op())
			str("path", op.Path())
			enc.WriteToken(jsontext.String("value"))
			enc.WriteValue(op.Value())
			enc.WriteToken(jsontext.EndObject)
		}
		enc.WriteToken(jsontext.EndArray)
		enc.WriteToken(jsontext.String("alsoMatched"))
		strs(it.AlsoMatched)
		if it.Marked != nil {
			tm("marked", *it.Marked)
		}
		if it.Deadline != nil {
			tm("deadline", *it.Deadline)
		}
		if err := enc.WriteToken(jsontext.EndObject); err != nil {
			return err
		}
	}
	return nil
}

// TestEncodeFormsAgree: the production encoder, compact and indented, writes
// what json/v2 writes for 3,000 realistic items. They are drawn alone, not
// taken from the head of the sorted 61,816 (drawing those took a second of
// CPU under -race), so that every policy's items are among them, not only
// the first policy's.
func TestEncodeFormsAgree(t *testing.T) {
	p := realisticPlanOf(3000, 0)
	policies := map[string]bool{}
	items := p.Items.Slice()
	for i := range items {
		policies[items[i].Policy] = true
	}
	if len(policies) < 4 {
		t.Fatalf("the sample has items of %d policies, want all 4 the generator draws", len(policies))
	}
	for i := range items {
		it := &items[i]
		e := encoder{}
		_ = e.item(it)
		w, _ := refWire(it)
		v2, err := jsonv2.Marshal(w, v2Compact)
		if err != nil || !bytes.Equal(v2, e.buf) {
			t.Fatalf("v2 %d:\n%s\n%s", i, v2, e.buf)
		}
		ind := encoder{indent: true, depth: 2}
		_ = ind.item(it)
		v2i, err := jsontext.AppendFormat(nil, v2, jsontext.WithIndent("  "), jsontext.WithIndentPrefix("    "))
		if err != nil || !bytes.Equal(v2i, ind.buf) {
			t.Fatalf("v2 indent %d:\n%s\n%s", i, v2i, ind.buf)
		}
		var buf bytes.Buffer
		enc := jsontext.NewEncoder(&buf, v2Compact)
		if err := v2TokensItems(enc, items[i:i+1]); err != nil || !bytes.Equal(bytes.TrimSpace(buf.Bytes()), e.buf) {
			t.Fatalf("v2 tokens %d: %v\n%s\n%s", i, err, buf.Bytes(), e.buf)
		}
	}
}

// BenchmarkSealWrite100k: Seal and Write of the realistic plan, apart.
func BenchmarkSealWrite100k(b *testing.B) {
	p := realisticPlan()
	b.Run("seal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := p.Seal(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("write", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := Write(io.Discard, p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
