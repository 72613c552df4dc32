package idtable

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
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
