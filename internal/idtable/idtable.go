// Package idtable is a hash table keyed by the tenant's ids in their own
// form (32 hex characters), kept as 16 bytes.
//
// A million-token listing puts a million ids in a table far larger than the
// processor's caches. Go's map then costs two to three cache misses per
// lookup (a group's control word, its slot, the table of the directory),
// and regrows by rehashing at random: measured at 1,000,000 tokens, the id
// set cost 1.5–2x more per id than at 100,000. This table costs one miss
// per lookup (the key and its value share the slot and the probe is
// linear) and regrows almost in address order: a key's slot is its hash
// scaled to the table's length, so the keys keep their order along the
// slots when it grows. It earns its place only at that scale: a million
// inserts of random ids (BenchmarkInsert1M) take 118 ms into a set (16-byte
// slots, what a listing's ids use) and 169–184 ms with a 16-byte value
// against 201–207 ms for map[[16]byte] (at load 5–6 on 2 vCPUs; 146–155 ms
// with the value when the table doubled at 3/4, before it grew by half to
// keep less slack); a 100,000-token plan gains nothing measurable from
// its speed, but much from its size. The janitor's id sets (duplicates,
// owners, the ids it keeps) use it.
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
//
// Besides the plan's items, the id tables are most of what a plan holds
// while a million-token listing streams, so a table keeps little
// slack: it grows by half (not by doubling) when it would be more than
// loadNum/loadDen full, which holds between 1.25 and 1.9 slots per key
// (1.33 to 2.7 with doubling at 3/4). Its length is then no power of two,
// and the hash's high bits index it by a multiply-shift (the high word of
// hash × length) instead of a mask: that keeps keys in hash order along
// the slots, so growing still reads and writes nearly in address order.
type Table[V any] struct {
	slots []slot[V] // never more than loadNum/loadDen full
	n     int       // keys in slots
	seed  maphash.Seed

	hasZero bool
	zero    V
}

// The most a table is filled before it grows. Linear probing looks at
// about 13 slots to insert a new key at 4/5 full, 6 on average between
// two growths (8.5 and 3.7 when doubling at 3/4), four 16-byte slots to a
// cache line and read in order: BenchmarkInsert1M measured 4/5 as fast as
// 3/4.
const loadNum, loadDen = 4, 5

// slot is a key and its value, the value first: a value of size zero (a
// set) then takes no room, where after the key it would be padded.
type slot[V any] struct {
	v V
	k Key
}

// New returns a table with room for about n keys before it grows.
func New[V any](n int) *Table[V] {
	return &Table[V]{slots: make([]slot[V], max(8, n*loadDen/loadNum+1)), seed: maphash.MakeSeed()}
}

// hash is the key's hash, seeded per table: the ids come from the tenant,
// and a hostile one could otherwise send ids that all collide.
func (t *Table[V]) hash(k *Key) uint64 {
	return maphash.Comparable(t.seed, *k)
}

// home is the first slot to probe for a key of hash h: h's place in
// [0, len(slots)), scaled (hash order is slot order).
func home(h uint64, n int) int {
	hi, _ := bits.Mul64(h, uint64(n))
	return int(hi)
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
	for i := home(t.hash(&k), len(t.slots)); ; i++ {
		if i == len(t.slots) {
			i = 0
		}
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
// hold it (found false). The pointer is valid until the next Put. Only an
// insertion grows the table, so a Put of a key it holds never moves the
// values another Put returned.
func (t *Table[V]) Put(k Key) (v *V, found bool) {
	if k == (Key{}) {
		found, t.hasZero = t.hasZero, true
		return &t.zero, found
	}
	h := t.hash(&k)
	for i := home(h, len(t.slots)); ; i++ {
		if i == len(t.slots) {
			i = 0
		}
		s := &t.slots[i]
		if s.k == k {
			return &s.v, true
		}
		if s.k == (Key{}) {
			// Absent: the check for room comes only now, and growing
			// moves the empty slot the probe ended on.
			if (t.n+1)*loadDen > len(t.slots)*loadNum {
				t.grow()
				s = t.free(h)
			}
			s.k = k
			t.n++
			return &s.v, false
		}
	}
}

// free is the first empty slot from the home of hash h on, where a key of
// that hash that the table does not hold goes.
func (t *Table[V]) free(h uint64) *slot[V] {
	i := home(h, len(t.slots))
	for t.slots[i].k != (Key{}) {
		if i++; i == len(t.slots) {
			i = 0
		}
	}
	return &t.slots[i]
}

// grow makes the slots half as many again. The old slots are read in
// order and, a key's home being its hash scaled to the length, written
// nearly in order too.
func (t *Table[V]) grow() {
	old := t.slots
	t.slots = make([]slot[V], len(old)+len(old)/2)
	for j := range old {
		if o := &old[j]; o.k != (Key{}) {
			*t.free(t.hash(&o.k)) = *o
		}
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
