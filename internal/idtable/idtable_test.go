package idtable

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"
)

func randomIDs(n int, r *rand.Rand) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64())
	}
	return ids
}

// TestTableAgreesWithAMap puts and gets the same keys in a Table and a map,
// across many growths, with the zero key and keys that share their first
// bytes, and compares every answer.
func TestTableAgreesWithAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ids := randomIDs(20000, r)
	ids = append(ids, strings.Repeat("0", 32), strings.Repeat("0", 31)+"1", "ffffffffffffffffffffffffffffffff")
	for i := range 500 { // keys alike but for their last byte
		ids = append(ids, fmt.Sprintf("abababababababababababababab%04x", i))
	}
	tab := New[int](0)
	want := map[Key]int{}
	for i, id := range append(ids, ids[:5000]...) { // some twice
		k, _, ok := Parse(id)
		if !ok {
			t.Fatalf("Parse(%q) not ok", id)
		}
		v, found := tab.Put(k)
		_, had := want[k]
		if found != had {
			t.Fatalf("Put(%s) found=%v, map had=%v", id, found, had)
		}
		if !found {
			*v = i
			want[k] = i
		}
		if tab.Len() != len(want) {
			t.Fatalf("Len %d, map %d", tab.Len(), len(want))
		}
	}
	for _, id := range append(ids, randomIDs(1000, r)...) {
		k, _, _ := Parse(id)
		v, ok := tab.Get(k)
		w, had := want[k]
		if ok != had || (ok && *v != w) {
			t.Fatalf("Get(%s) = %v, %v; map %v, %v", id, v, ok, w, had)
		}
	}
	seen := 0
	tab.All(func(k Key, v *int) {
		if w, ok := want[k]; !ok || w != *v {
			t.Fatalf("All gave %x=%d, map %d, %v", k, *v, w, ok)
		}
		seen++
	})
	if seen != len(want) {
		t.Fatalf("All gave %d keys, want %d", seen, len(want))
	}
}

// Small tables, each with its own seed, grow from 8 slots and wrap their
// probes around the end often (a key's home is its hash scaled to a length
// that is no power of two); they agree with a map too, never fill past
// loadNum/loadDen, and a set's slots are the key alone.
func TestSmallTablesWrapAndGrowByHalf(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	// 500 tables (2,000 until the race suite's CPU diet) of 1 to 40 ids,
	// each with its own seed: every size about 12 times, every growth from
	// 8 slots up to the size that holds 40 keys, and some 15,000 Puts, the
	// probes of some of which wrap around the end of the slots.
	for range 500 {
		tab := New[struct{}](0)
		want := map[Key]bool{}
		ids := randomIDs(1+r.IntN(40), r)
		for _, id := range append(ids, ids[:len(ids)/2]...) {
			k, _, _ := Parse(id)
			if _, found := tab.Put(k); found != want[k] {
				t.Fatalf("Put(%s) found=%v, map had=%v", id, found, want[k])
			}
			want[k] = true
			if tab.n*loadDen > len(tab.slots)*loadNum {
				t.Fatalf("%d keys in %d slots", tab.n, len(tab.slots))
			}
		}
		for _, id := range append(ids, randomIDs(20, r)...) {
			k, _, _ := Parse(id)
			if _, ok := tab.Get(k); ok != want[k] {
				t.Fatalf("Get(%s) = %v, map %v", id, ok, want[k])
			}
		}
		if tab.Len() != len(want) {
			t.Fatalf("Len %d, map %d", tab.Len(), len(want))
		}
	}
	if size := unsafe.Sizeof(slot[struct{}]{}); size != 16 {
		t.Errorf("a set's slot takes %d bytes, want 16", size)
	}
}

// A Put of a key the table holds adds nothing, so it must not grow the
// table: it grew by half when the table was at its growth threshold,
// whether the key was new or not (a set of a listing's ids that sees a
// duplicate id there took half as many slots again for nothing).
func TestPutOfAPresentKeyNeverGrows(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tab := New[int](0)
	var keys []Key
	for _, id := range randomIDs(1000, r) {
		k, _, _ := Parse(id)
		if (tab.n+1)*loadDen > len(tab.slots)*loadNum {
			break // at the threshold: the next insertion grows
		}
		*must(tab.Put(k)) = len(keys)
		keys = append(keys, k)
	}
	slots := len(tab.slots)
	for i, k := range keys {
		v, found := tab.Put(k)
		if !found || *v != i {
			t.Fatalf("Put of key %d: found %v, value %d", i, found, *v)
		}
		if len(tab.slots) != slots || tab.Len() != len(keys) {
			t.Fatalf("Put of present key %d: %d slots and %d keys, want %d and %d", i, len(tab.slots), tab.Len(), slots, len(keys))
		}
	}
	k, _, _ := Parse(strings.Repeat("f", 32))
	if _, found := tab.Put(k); found || len(tab.slots) <= slots || tab.Len() != len(keys)+1 {
		t.Fatalf("Put of a new key at the threshold: found %v, %d slots (had %d), %d keys", found, len(tab.slots), slots, tab.Len())
	}
	for i, k := range keys {
		if v, ok := tab.Get(k); !ok || *v != i {
			t.Fatalf("after growing, key %d is lost", i)
		}
	}
}

func must(v *int, _ bool) *int { return v }

func TestParseAndSpell(t *testing.T) {
	for _, id := range []string{"0123456789abcdef0123456789ABCDEF", "AbCdEf0123456789aBcDeF0123456789", strings.Repeat("0", 32)} {
		k, upper, ok := Parse(id)
		if !ok || Spell(k, upper) != id {
			t.Errorf("Spell(Parse(%q)) = %q, %v", id, Spell(k, upper), ok)
		}
		if kb, ub, okb := Parse([]byte(id)); kb != k || ub != upper || !okb {
			t.Errorf("Parse of bytes differs for %q", id)
		}
		lower, _, _ := Parse(strings.ToLower(id))
		if lower != k {
			t.Errorf("%q and its lower case have different keys", id)
		}
	}
	for _, id := range []string{"", "0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdeg", "0123456789abcdef0123456789abcde\x00", "0123456789abcdef0123456789abcdef0"} {
		if _, _, ok := Parse(id); ok {
			t.Errorf("Parse(%q) ok", id)
		}
	}
}

var sink int

// BenchmarkInsert1M compares a Table with Go's map on what a 1,000,000-token
// listing does: a million inserts of random ids, from an empty table.
func BenchmarkInsert1M(b *testing.B) {
	ids := randomIDs(1_000_000, rand.New(rand.NewPCG(1, 2)))
	keys := make([]Key, len(ids))
	for i, id := range ids {
		keys[i], _, _ = Parse(id)
	}
	type entry struct {
		upper, pos uint32
		hash       uint64
	}
	b.Run("table", func(b *testing.B) {
		for range b.N {
			t := New[entry](1024)
			for i, k := range keys {
				v, _ := t.Put(k)
				*v = entry{pos: uint32(i), upper: uint32(k[0]), hash: uint64(i)}
			}
			sink += t.Len()
		}
	})
	// A set (a value of size zero): 16-byte slots, the listing's ids.
	b.Run("set", func(b *testing.B) {
		for range b.N {
			t := New[struct{}](1024)
			for _, k := range keys {
				t.Put(k)
			}
			sink += t.Len()
		}
	})
	b.Run("map", func(b *testing.B) {
		for range b.N {
			m := make(map[Key]entry, 1024)
			for i, k := range keys {
				if _, ok := m[k]; !ok {
					m[k] = entry{pos: uint32(i), upper: uint32(k[0]), hash: uint64(i)}
				}
			}
			sink += len(m)
		}
	})
}

func BenchmarkInsert1MPresized(b *testing.B) {
	ids := randomIDs(1_000_000, rand.New(rand.NewPCG(1, 2)))
	keys := make([]Key, len(ids))
	for i, id := range ids {
		keys[i], _, _ = Parse(id)
	}
	for range b.N {
		t := New[[16]byte](1_000_000)
		for _, k := range keys {
			t.Put(k)
		}
		sink += t.Len()
	}
}
