// Package idtable is a hash table keyed by the tenant's ids in their own
// form (32 hex characters), kept as 16 bytes.
//
// A million-token listing puts a million ids in a table far larger than the
// processor's caches. Go's map then costs two to three cache misses per
// lookup (a group's control word, its slot, the table of the directory),
// and regrows by rehashing at random: measured at 1,000,000 tokens, the id
// set cost 1.5–2x more per id than at 100,000. This table costs one miss
// per lookup (the key and its value share the slot and the probe is
// linear) and regrows almost in address order: a key's slot is given by
// the high bits of its hash, so a slot's keys move to the slots at twice
// its index. It earns its place only at that scale: a million inserts of
// random ids (BenchmarkInsert1M) take 152 ms against 209 ms for
// map[[16]byte] (156–254 against 210–370 ms on a loaded machine); a
// 100,000-token plan gains nothing measurable from it. The janitor's id
// set (duplicates, the ids it keeps) and the plan's sort (its owner
// ranking) use it.
package idtable

import (
	"hash/maphash"
	"math/bits"
)

// Key is an id of 32 hex characters as its 16 bytes.
type Key [16]byte

// Parse reports whether id is 32 hex characters (in any case), and its key
// and a bit per character that was upper case (bit i: character i), from
// which Spell gives the id back.
func Parse[S string | []byte](id S) (k Key, upper uint32, ok bool) {
	if len(id) != 32 {
		return k, 0, false
	}
	var bad byte
	for i := 0; i < 16; i++ {
		hi, lo := hexDigit[id[2*i]], hexDigit[id[2*i+1]]
		bad |= hi | lo
		k[i] = hi<<4 | lo&0x0f
		upper |= uint32(hi>>5&1)<<(2*i) | uint32(lo>>5&1)<<(2*i+1)
	}
	return k, upper, bad&0x80 == 0
}

// hexDigit maps a hex character to its value, with bit 5 set for an upper
// case letter; anything else has bit 7 set.
var hexDigit = func() (t [256]byte) {
	for c := range t {
		switch {
		case '0' <= c && c <= '9':
			t[c] = byte(c - '0')
		case 'a' <= c && c <= 'f':
			t[c] = byte(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			t[c] = byte(c-'A'+10) | 0x20
		default:
			t[c] = 0x80
		}
	}
	return t
}()

// Spell is the id of k with the characters upper names in upper case.
func Spell(k Key, upper uint32) string {
	const digits, upperDigits = "0123456789abcdef", "0123456789ABCDEF"
	var b [32]byte
	for i, c := range k {
		for j, v := range [2]byte{c >> 4, c & 0x0f} {
			if upper&(1<<(2*i+j)) != 0 {
				b[2*i+j] = upperDigits[v]
			} else {
				b[2*i+j] = digits[v]
			}
		}
	}
	return string(b[:])
}

// Table maps keys to values of type V. The zero key (the id of 32 zeros)
// marks an empty slot, so it is kept beside the slots. It is not safe for
// concurrent use.
type Table[V any] struct {
	slots []slot[V] // a power of two long, never more than 3/4 full
	shift uint      // 64 - log2(len(slots)): the hash's high bits index
	n     int       // keys in slots
	seed  maphash.Seed

	hasZero bool
	zero    V
}

type slot[V any] struct {
	k Key
	v V
}

// New returns a table with room for about n keys before it grows.
func New[V any](n int) *Table[V] {
	size := 8
	for size*3/4 < n {
		size *= 2
	}
	return &Table[V]{slots: make([]slot[V], size), shift: uint(64 - bits.TrailingZeros(uint(size))), seed: maphash.MakeSeed()}
}

// hash is the key's hash, seeded per table: the ids come from the tenant,
// and a hostile one could otherwise send ids that all collide.
func (t *Table[V]) hash(k *Key) uint64 {
	return maphash.Comparable(t.seed, *k)
}

// Len is the number of keys.
func (t *Table[V]) Len() int {
	if t.hasZero {
		return t.n + 1
	}
	return t.n
}

// Get returns k's value, if the table holds k. The pointer is valid until
// the next Put.
func (t *Table[V]) Get(k Key) (*V, bool) {
	if k == (Key{}) {
		return &t.zero, t.hasZero
	}
	mask := len(t.slots) - 1
	for i := int(t.hash(&k) >> t.shift); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.k == k {
			return &s.v, true
		}
		if s.k == (Key{}) {
			return nil, false
		}
	}
}

// Put returns k's value, adding k with the zero value if the table did not
// hold it (found false). The pointer is valid until the next Put.
func (t *Table[V]) Put(k Key) (v *V, found bool) {
	if k == (Key{}) {
		found, t.hasZero = t.hasZero, true
		return &t.zero, found
	}
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	mask := len(t.slots) - 1
	for i := int(t.hash(&k) >> t.shift); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.k == k {
			return &s.v, true
		}
		if s.k == (Key{}) {
			s.k = k
			t.n++
			return &s.v, false
		}
	}
}

// grow doubles the slots. The old slots are read in order and, the index
// being the hash's high bits, written nearly in order too.
func (t *Table[V]) grow() {
	old := t.slots
	t.slots = make([]slot[V], 2*len(old))
	t.shift--
	mask := len(t.slots) - 1
	for j := range old {
		o := &old[j]
		if o.k == (Key{}) {
			continue
		}
		i := int(t.hash(&o.k) >> t.shift)
		for t.slots[i].k != (Key{}) {
			i = (i + 1) & mask
		}
		t.slots[i] = *o
	}
}

// All calls fn with every key and its value, in no particular order; fn
// must not Put.
func (t *Table[V]) All(fn func(k Key, v *V)) {
	if t.hasZero {
		fn(Key{}, &t.zero)
	}
	for i := range t.slots {
		if s := &t.slots[i]; s.k != (Key{}) {
			fn(s.k, &s.v)
		}
	}
}
