package plan

import (
	"cmp"
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/patjanitor/patjanitor/internal/idtable"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/reasonshape"
)

// compactItems hold a plan's items in about 100 bytes each instead of an
// Item's 272 plus its strings (a 100,000-token tenant's plan has 61,816
// items with the shipped policies; a 1,000,000-token one ten times as
// many, and the plan must fit in 50 and 250 MB of memory).
//
// What makes them small:
//   - a row per item: fixed-size and free of pointers, so the collector
//     never scans the rows, in chunks of rowChunk rows, so that growing
//     never copies the whole plan (and never needs it twice);
//   - ids of 32 hexadecimal digits, what the tenant sends, as their 16
//     bytes (lower or upper case, recorded), any other spelling as text;
//   - each distinct name, scope list, reason shape and decision (policy,
//     mode, action, patch, also-matched) kept once and numbered: a plan has
//     hundreds of names and a handful of the others;
//   - a reason as its shape (reasonshape: the prose, kept once) and the
//     times cut out of it, which is all that differs between most reasons
//     of a policy;
//   - times as nanoseconds since 1970 when that is exact (UTC, no
//     monotonic reading, years 1678 to 2261), any other time kept as it is.
//
// Everything an Item holds comes back exactly (deep-equal, nil apart from
// empty, invalid UTF-8 and all); compact_test.go checks it differentially.
//
// The zero value is empty and ready to use.
type compactItems struct {
	chunks [][]row
	n      int
	// bytes holds what does not fit a row: the reasons' times and ids
	// that are not 32 hexadecimal digits.
	bytes arena
	// odd are the times that are not packed (see packTime).
	odd []time.Time
	// The interned values, numbered in the order first seen.
	strs      strTable
	scopes    []pat.Scopes
	scopeIdx  map[string]uint32
	decisions []decision
	decIdx    map[string]uint32
	shapes    []shape
	shapeIdx  map[string]uint32
	// Scratch space of add.
	key   []byte
	times []int64
}

// rowChunk is the number of rows in each chunk but the first, which grows
// up to it (a small plan stays small).
const (
	rowChunkBits = 12
	rowChunk     = 1 << rowChunkBits
)

// row is one item. Ids are idWords; times packed (packTime); the uint32s
// number interned values.
type row struct {
	tokenID, ownerID idWord
	created          int64
	lastUsed         int64
	expires          int64
	// times is where the reason's times are in the arena (when its shape
	// has any), followed by the grace times (marked and deadline) when
	// flagGrace is set: few items have them, and two times in every row
	// were 16 of its 104 bytes.
	times     uint64
	tokenName uint32 // strs
	ownerName uint32 // strs
	shape     uint32 // shapes
	scope     uint32 // scopes
	decision  uint32 // decisions
	flags     uint32
}

// An idWord is an id of 32 hexadecimal digits as its 16 bytes, or else
// (idText) where its text is in the arena.
type idWord [16]byte

// The spelling of an id: two bits of row.flags each, the token's at
// flagTokenID and the owner's at flagOwnerID.
const (
	idLower = 0 // 32 digits of 0-9a-f (or digits only)
	idUpper = 1 // 32 digits of 0-9A-F, with at least one letter
	idText  = 2 // anything else, as text in the arena

	flagTokenID = 0
	flagOwnerID = 2
	flagManaged = 1 << 4
	flagGrace   = 1 << 5 // the arena holds Marked and Deadline after the reason's times
)

// A packed time is nanoseconds since 1970 (UTC), or one of these.
const (
	timeNil  = math.MinInt64     // a nil pointer
	timeZero = math.MinInt64 + 1 // time.Time{}
	timeOdd  = math.MinInt64 + 2 // + i: odd[i]
	// packedMin keeps the codes above apart from real times (this one is
	// in 1677, which no packed time reaches: see packTime).
	packedMin = math.MinInt64 + 1<<40
)

// decision is what the policy decided, shared by many items.
type decision struct {
	policy, mode, action uint32 // strs
	patch                []pat.PatchOp
	alsoMatched          []string
}

// shape is an interned reason shape.
type shape struct {
	sh reasonshape.Shape
	// times is the number of times it renders; owner whether it renders
	// the owner id (which a packed id must be spelled out for).
	times int
	owner bool
}

func (c *compactItems) len() int { return c.n }

func (c *compactItems) row(i int) *row {
	return &c.chunks[i>>rowChunkBits][i&(rowChunk-1)]
}

// append adds an item at the end.
func (c *compactItems) append(it *Item) {
	r := c.encode(it)
	k := c.n >> rowChunkBits
	if k == len(c.chunks) {
		// The first chunk grows as appends do; the others are made
		// whole, so that no append copies more than one chunk.
		var fresh []row
		if k > 0 {
			fresh = make([]row, 0, rowChunk)
		}
		c.chunks = append(c.chunks, fresh)
	}
	c.chunks[k] = append(c.chunks[k], r)
	c.n++
}

// grow makes room for n more items: in the first chunk, the only one
// that grows, when they fit it (the others are made whole).
func (c *compactItems) grow(n int) {
	if len(c.chunks) == 0 && n > 0 {
		c.chunks = append(c.chunks, make([]row, 0, min(n, rowChunk)))
	} else if len(c.chunks) == 1 {
		c.chunks[0] = slices.Grow(c.chunks[0], min(c.n+n, rowChunk)-c.n)
	}
}

// set replaces item i. What the old row held in the arena stays there
// (unreachable): Set is for the few items a plan changes after deciding
// them.
func (c *compactItems) set(i int, it *Item) { *c.row(i) = c.encode(it) }

// encode makes the row of an item, interning what it shares with others.
func (c *compactItems) encode(it *Item) row {
	var r row
	var f uint32
	r.tokenID, f = c.packID(it.TokenID)
	r.flags |= f << flagTokenID
	r.ownerID, f = c.packID(it.OwnerID)
	r.flags |= f << flagOwnerID
	if it.Managed {
		r.flags |= flagManaged
	}
	r.tokenName = c.strs.id(it.TokenName)
	r.ownerName = c.strs.id(it.OwnerName)
	r.created = c.packTime(&it.Created)
	r.lastUsed = c.packTimePtr(it.LastUsed)
	r.expires = c.packTimePtr(it.ExpirationDate)
	r.scope = c.scopeID(it.Scope)
	r.decision = c.decisionID(it)
	var grace []int64
	if it.Marked != nil || it.Deadline != nil {
		grace = []int64{c.packTimePtr(it.Marked), c.packTimePtr(it.Deadline)}
		r.flags |= flagGrace
	}
	r.shape, r.times = c.reason(it, grace)
	return r
}

// grace returns the packed Marked and Deadline of a row (timeNil when
// not set).
func (c *compactItems) grace(r *row) (marked, deadline int64) {
	if r.flags&flagGrace == 0 {
		return timeNil, timeNil
	}
	b := c.bytes.get(r.times)
	for range c.shapes[r.shape].times + 2 {
		v, n := protowire.ConsumeVarint(b)
		marked, deadline = deadline, protowire.DecodeZigZag(v)
		b = b[n:]
	}
	return marked, deadline
}

// packID stores an id: as its 16 bytes when it is 32 hexadecimal digits
// of one case (idtable.Parse reads them), else as text in the arena.
func (c *compactItems) packID(id string) (idWord, uint32) {
	if k, upper, ok := idtable.Parse(id); ok {
		switch upper {
		case 0:
			return idWord(k), idLower
		case letters(&k):
			return idWord(k), idUpper
		}
	}
	var w idWord
	binary.LittleEndian.PutUint64(w[:8], c.bytes.add([]byte(id)))
	return w, idText
}

// letters has a bit for each digit of k that is a letter, as Parse's upper
// has for each that was an upper-case one.
func letters(k *idtable.Key) uint32 {
	var m uint32
	for i, b := range k {
		if b>>4 >= 10 {
			m |= 1 << (2 * i)
		}
		if b&0xf >= 10 {
			m |= 1 << (2*i + 1)
		}
	}
	return m
}

// appendID appends the id a row holds, as it was given.
func (c *compactItems) appendID(dst []byte, w *idWord, form uint32) []byte {
	digits := "0123456789abcdef"
	switch form {
	case idUpper:
		digits = "0123456789ABCDEF"
	case idText:
		return append(dst, c.bytes.get(binary.LittleEndian.Uint64(w[:8]))...)
	}
	for _, b := range w {
		dst = append(dst, digits[b>>4], digits[b&0xf])
	}
	return dst
}

func (c *compactItems) id(w *idWord, form uint32) string {
	if form == idText {
		return c.bytes.str(binary.LittleEndian.Uint64(w[:8]))
	}
	var b [32]byte
	return string(c.appendID(b[:0], w, form))
}

// packTime packs t as nanoseconds since 1970 when that gives back exactly
// t (== compares the wall clock, monotonic reading and location, as a
// deep comparison does): the plan's times are UTC, parsed from the
// listing. Any other time is kept as it is in odd.
func (c *compactItems) packTime(t *time.Time) int64 {
	if t.IsZero() && *t == (time.Time{}) {
		return timeZero
	}
	if ns := t.UnixNano(); ns >= packedMin && time.Unix(0, ns).UTC() == *t {
		return ns
	}
	c.odd = append(c.odd, *t)
	return timeOdd + int64(len(c.odd)-1)
}

func (c *compactItems) packTimePtr(t *time.Time) int64 {
	if t == nil {
		return timeNil
	}
	return c.packTime(t)
}

// time unpacks a time (not timeNil).
func (c *compactItems) time(v int64) time.Time {
	switch {
	case v == timeZero:
		return time.Time{}
	case v < packedMin:
		return c.odd[v-timeOdd]
	}
	return time.Unix(0, v).UTC()
}

// scopeID interns a scope list (null, empty and nil values kept apart).
func (c *compactItems) scopeID(s pat.Scopes) uint32 {
	k := c.key[:0]
	if s.Null {
		k = append(k, 1)
	} else {
		k = append(k, 0)
	}
	k = appendListKey(k, s.Values)
	c.key = k
	if i, ok := c.scopeIdx[string(k)]; ok {
		return i
	}
	if c.scopeIdx == nil {
		c.scopeIdx = map[string]uint32{}
	}
	i := uint32(len(c.scopes))
	c.scopes = append(c.scopes, pat.Scopes{Null: s.Null, Values: cloneStrings(s.Values)})
	c.scopeIdx[string(k)] = i
	return i
}

// decisionID interns an item's policy, mode, action, patch and
// also-matched policies.
func (c *compactItems) decisionID(it *Item) uint32 {
	k := appendStrKey(c.key[:0], it.Policy)
	k = appendStrKey(k, it.Mode)
	k = appendStrKey(k, it.Action)
	k = appendListKey(k, it.AlsoMatched)
	if it.Patch == nil {
		k = append(k, 0)
	} else {
		k = append(k, 1)
		k = protowire.AppendVarint(k, uint64(len(it.Patch)))
		for _, op := range it.Patch {
			k = appendStrKey(k, op.Path())
			k = appendStrKey(k, string(op.Value()))
		}
	}
	c.key = k
	if i, ok := c.decIdx[string(k)]; ok {
		// The key names a patch by its path and JSON value; the
		// operations themselves are compared too, so that two that
		// encode alike never become one.
		if d := &c.decisions[i]; slices.Equal(d.patch, it.Patch) {
			return i
		}
	}
	if c.decIdx == nil {
		c.decIdx = map[string]uint32{}
	}
	i := uint32(len(c.decisions))
	d := decision{
		policy:      c.strs.id(it.Policy),
		mode:        c.strs.id(it.Mode),
		action:      c.strs.id(it.Action),
		alsoMatched: cloneStrings(it.AlsoMatched),
	}
	if it.Patch != nil {
		d.patch = slices.Clone(it.Patch)[:len(it.Patch):len(it.Patch)]
	}
	c.decisions = append(c.decisions, d)
	if _, taken := c.decIdx[string(k)]; !taken {
		c.decIdx[string(k)] = i
	}
	return i
}

// reason interns the shape of an item's reason and stores its times.
func (c *compactItems) reason(it *Item, grace []int64) (uint32, uint64) {
	var k []byte
	k, c.times = reasonshape.AppendCut(c.key[:0], c.times[:0], it.Reason, it.TokenName, it.OwnerID)
	c.key = k
	i, ok := c.shapeIdx[string(k)]
	if !ok {
		sh, err := reasonshape.Decode(k)
		if err != nil { // AppendCut writes what Decode reads
			panic("plan: " + err.Error())
		}
		if c.shapeIdx == nil {
			c.shapeIdx = map[string]uint32{}
		}
		i = uint32(len(c.shapes))
		c.shapes = append(c.shapes, shape{sh: sh, times: sh.Times(), owner: sh.HasOwner()})
		c.shapeIdx[string(k)] = i
	}
	if len(c.times) == 0 && grace == nil {
		return i, 0
	}
	// The times as zigzag varints: a few bytes each; then the grace
	// times, when the item has them.
	var b [10 * binary.MaxVarintLen64]byte
	tb := b[:0]
	for _, ms := range c.times {
		tb = protowire.AppendVarint(tb, protowire.EncodeZigZag(ms))
	}
	for _, v := range grace {
		tb = protowire.AppendVarint(tb, protowire.EncodeZigZag(v))
	}
	return i, c.bytes.add(tb)
}

// appendReason appends the reason of r, as it was given; ownerID is the
// row's owner id when the caller has it spelled out, else "".
func (c *compactItems) appendReason(dst []byte, r *row, times []int64, ownerID string) ([]byte, []int64) {
	sh := &c.shapes[r.shape]
	times = times[:0]
	if sh.times > 0 {
		b := c.bytes.get(r.times)
		for range sh.times {
			v, n := protowire.ConsumeVarint(b)
			times = append(times, protowire.DecodeZigZag(v))
			b = b[n:]
		}
	}
	if sh.owner && ownerID == "" {
		ownerID = c.id(&r.ownerID, r.flags>>flagOwnerID&3)
	}
	dst, err := sh.sh.Append(dst, times, c.strs.s[r.tokenName], ownerID)
	if err != nil { // the count is the shape's own
		panic("plan: " + err.Error())
	}
	return dst, times
}

// at returns item i as it was given. It allocates little (a large plan's
// items are read one by one, more than once): the ids and the reason
// share one string, the scope values and the also-matched policies one
// array, the four time pointers one array.
func (c *compactItems) at(i int) Item {
	r := c.row(i)
	d := &c.decisions[r.decision]
	sc := &c.scopes[r.scope]
	tokenForm, ownerForm := r.flags>>flagTokenID&3, r.flags>>flagOwnerID&3
	var stack [256]byte
	b := c.appendID(stack[:0], &r.tokenID, tokenForm)
	nt := len(b)
	b = c.appendID(b, &r.ownerID, ownerForm)
	no := len(b)
	owner := ""
	if c.shapes[r.shape].owner && no > nt {
		// Over b: appending the reason never writes the id's bytes.
		owner = unsafe.String(&b[nt], no-nt)
	}
	var times [8]int64
	b, _ = c.appendReason(b, r, times[:0], owner)
	text := string(b)
	it := Item{
		TokenID:   text[:nt],
		TokenName: c.strs.s[r.tokenName],
		OwnerID:   text[nt:no],
		OwnerName: c.strs.s[r.ownerName],
		Created:   c.time(r.created),
		Scope:     pat.Scopes{Null: sc.Null},
		Managed:   r.flags&flagManaged != 0,
		Policy:    c.strs.s[d.policy],
		Mode:      c.strs.s[d.mode],
		Action:    c.strs.s[d.action],
		Reason:    text[no:],
	}
	if sc.Values != nil || d.alsoMatched != nil {
		n, m := len(sc.Values), len(d.alsoMatched)
		lists := make([]string, n+m)
		copy(lists, sc.Values)
		copy(lists[n:], d.alsoMatched)
		// Full slice expressions: appending to one never writes the other.
		if sc.Values != nil {
			it.Scope.Values = lists[:n:n]
		}
		if d.alsoMatched != nil {
			it.AlsoMatched = lists[n : n+m : n+m]
		}
	}
	if d.patch != nil {
		it.Patch = slices.Clone(d.patch)
	}
	var ts *[4]time.Time
	ptr := func(v int64, k int) *time.Time {
		if v == timeNil {
			return nil
		}
		if ts == nil {
			ts = new([4]time.Time)
		}
		ts[k] = c.time(v)
		return &ts[k]
	}
	it.LastUsed = ptr(r.lastUsed, 0)
	it.ExpirationDate = ptr(r.expires, 1)
	marked, deadline := c.grace(r)
	it.Marked = ptr(marked, 2)
	it.Deadline = ptr(deadline, 3)
	return it
}

// decision returns the policy, mode and action of item i.
func (c *compactItems) decision(i int) (policy, mode, action string) {
	d := &c.decisions[c.row(i).decision]
	return c.strs.s[d.policy], c.strs.s[d.mode], c.strs.s[d.action]
}

// compare orders rows i and j as compareItemPtrs orders their items.
func (c *compactItems) compare(a, b *row) int {
	if a.decision != b.decision {
		if x := strings.Compare(c.strs.s[c.decisions[a.decision].policy], c.strs.s[c.decisions[b.decision].policy]); x != 0 {
			return x
		}
	}
	if a.ownerName != b.ownerName {
		if x := strings.Compare(c.strs.s[a.ownerName], c.strs.s[b.ownerName]); x != 0 {
			return x
		}
	}
	if x := c.compareIDs(&a.ownerID, &b.ownerID, a.flags>>flagOwnerID&3, b.flags>>flagOwnerID&3); x != 0 {
		return x
	}
	if a.tokenName != b.tokenName {
		if x := strings.Compare(c.strs.s[a.tokenName], c.strs.s[b.tokenName]); x != 0 {
			return x
		}
	}
	return c.compareIDs(&a.tokenID, &b.tokenID, a.flags>>flagTokenID&3, b.flags>>flagTokenID&3)
}

// compareIDs compares two ids as strings. Two of the same packed case
// compare as their bytes: a digit's character sorts below a letter's, as
// its value does.
func (c *compactItems) compareIDs(a, b *idWord, fa, fb uint32) int {
	if fa == fb && fa != idText {
		return bytesCompare(a[:], b[:])
	}
	var x, y [32]byte
	return strings.Compare(string(c.appendID(x[:0], a, fa)), string(c.appendID(y[:0], b, fb)))
}

func bytesCompare(a, b []byte) int {
	return strings.Compare(unsafe.String(unsafe.SliceData(a), len(a)), unsafe.String(unsafe.SliceData(b), len(b)))
}

func (c *compactItems) isSorted() bool {
	for i := 1; i < c.n; i++ {
		if c.compare(c.row(i-1), c.row(i)) > 0 {
			return false
		}
	}
	return true
}

// sort puts the rows in plan order. The strings are ranked once (a plan
// has few distinct policies and owner names), the rows sorted by their
// ranks as a permutation, and the rows then moved into place along the
// permutation's cycles, without a second copy of the plan.
func (c *compactItems) sort() {
	order := make([]uint32, len(c.strs.s))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return strings.Compare(c.strs.s[a], c.strs.s[b]) })
	rank := make([]uint32, len(order))
	for r, i := range order {
		rank[i] = uint32(r)
	}
	// Each item's place by policy and owner name first, in linear time (a
	// radix sort of 16-byte keys); then each run of one policy and owner
	// name by the owner id and the token, with keys made for that run
	// only: the sort's memory is 16 bytes an item, and then a run's.
	type key struct {
		hi uint64 // the policy's rank, then the owner name's
		i  int32  // the row; -1 once moved into place
	}
	keys := make([]key, c.n)
	for i := range keys {
		r := c.row(i)
		keys[i] = key{hi: uint64(rank[c.decisions[r.decision].policy])<<32 | uint64(rank[r.ownerName]), i: int32(i)}
	}
	keys = radixSort(keys, func(k *key) uint64 { return k.hi }, 32+bits.Len(uint(len(rank))))
	type runKey struct {
		// The owner id's 16 bytes (big-endian halves) when it is spelled
		// in lower case: then they compare as the id does.
		o0, o1 uint64
		tok    uint32 // the token name's rank; the top bit: not lower case
		i      int32
	}
	const notLower = 1 << 31
	cmpRun := func(x, y runKey) int {
		// Most comparisons end at the keys; only the items of one owner,
		// and owners whose ids are not in lower case, read their rows.
		if (x.tok|y.tok)&notLower == 0 {
			if x.o0 != y.o0 {
				return cmp.Compare(x.o0, y.o0)
			}
			if x.o1 != y.o1 {
				return cmp.Compare(x.o1, y.o1)
			}
		} else {
			a, b := c.row(int(x.i)), c.row(int(y.i))
			if v := c.compareIDs(&a.ownerID, &b.ownerID, a.flags>>flagOwnerID&3, b.flags>>flagOwnerID&3); v != 0 {
				return v
			}
		}
		if xt, yt := x.tok&^notLower, y.tok&^notLower; xt != yt {
			return cmp.Compare(xt, yt)
		}
		a, b := c.row(int(x.i)), c.row(int(y.i))
		return c.compareIDs(&a.tokenID, &b.tokenID, a.flags>>flagTokenID&3, b.flags>>flagTokenID&3)
	}
	var run []runKey
	for lo := 0; lo < len(keys); {
		hi := lo + 1
		for hi < len(keys) && keys[hi].hi == keys[lo].hi {
			hi++
		}
		if hi-lo > 1 {
			run = run[:0]
			for _, k := range keys[lo:hi] {
				r := c.row(int(k.i))
				rk := runKey{tok: rank[r.tokenName], i: k.i}
				if r.flags>>flagOwnerID&3 == idLower {
					rk.o0, rk.o1 = binary.BigEndian.Uint64(r.ownerID[:8]), binary.BigEndian.Uint64(r.ownerID[8:])
				} else {
					rk.tok |= notLower
				}
				run = append(run, rk)
			}
			slices.SortFunc(run, cmpRun)
			for j, rk := range run {
				keys[lo+j].i = rk.i
			}
		}
		lo = hi
	}
	// keys[j].i is the row that goes to position j: the rows move along
	// the permutation's cycles.
	for i := range keys {
		if keys[i].i < 0 {
			continue
		}
		tmp := *c.row(i)
		j := i
		for {
			k := int(keys[j].i)
			keys[j].i = -1
			if k == i {
				*c.row(j) = tmp
				break
			}
			*c.row(j) = *c.row(k)
			j = k
		}
	}
}

// strTable interns strings (names, policies, modes and actions).
type strTable struct {
	s   []string
	idx map[string]uint32
}

func (t *strTable) id(s string) uint32 {
	if i, ok := t.idx[s]; ok {
		return i
	}
	if t.idx == nil {
		t.idx = map[string]uint32{}
	}
	// A copy: s may be part of a larger string (the listing's) that the
	// plan must not keep.
	s = strings.Clone(s)
	i := uint32(len(t.s))
	t.s = append(t.s, s)
	t.idx[s] = i
	return i
}

// arena holds byte strings, each after its length (a varint), in chunks
// of about arenaChunk bytes, and names each by its chunk and offset.
//
// Strings made over the arena (str) are safe because bytes once written
// are never written again: add only appends, and when an append moves a
// chunk to a larger array, the old array keeps its bytes unchanged for the
// strings that still point into it.
type arena struct {
	chunks [][]byte
}

const arenaChunk = 64 << 10

func (a *arena) add(s []byte) uint64 {
	need := protowire.SizeVarint(uint64(len(s))) + len(s)
	k := len(a.chunks) - 1
	if k < 0 || len(a.chunks[k]) > 0 && len(a.chunks[k])+need > arenaChunk {
		var fresh []byte
		if need > arenaChunk {
			fresh = make([]byte, 0, need)
		}
		a.chunks = append(a.chunks, fresh)
		k++
	}
	off := len(a.chunks[k])
	a.chunks[k] = protowire.AppendVarint(a.chunks[k], uint64(len(s)))
	a.chunks[k] = append(a.chunks[k], s...)
	return uint64(k)<<32 | uint64(off)
}

// get returns the bytes stored at ref; they must not be changed.
func (a *arena) get(ref uint64) []byte {
	b := a.chunks[ref>>32][uint32(ref):]
	n, l := protowire.ConsumeVarint(b)
	return b[l : l+int(n) : l+int(n)]
}

func (a *arena) str(ref uint64) string {
	b := a.get(ref)
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// appendStrKey appends s to an interning key, after its length, so that
// the key's parts cannot run into each other.
func appendStrKey(k []byte, s string) []byte {
	k = protowire.AppendVarint(k, uint64(len(s)))
	return append(k, s...)
}

// appendListKey appends a list to an interning key: nil, or its length
// and strings.
func appendListKey(k []byte, ss []string) []byte {
	if ss == nil {
		return append(k, 0)
	}
	k = append(k, 1)
	k = protowire.AppendVarint(k, uint64(len(ss)))
	for _, s := range ss {
		k = appendStrKey(k, s)
	}
	return k
}

// cloneStrings copies a list (nil stays nil, empty stays empty) with
// strings of its own.
func cloneStrings(ss []string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.Clone(s)
	}
	return out
}

// brief fills b with what a table shows of item i (Items.Brief), as at
// would give it, without the rest: the ids and the reason are written
// into b's own bytes, the lists are the interned ones.
func (c *compactItems) brief(i int, b *Brief) {
	r := c.row(i)
	d := &c.decisions[r.decision]
	s := c.appendID(b.scratch[:0], &r.tokenID, r.flags>>flagTokenID&3)
	nt := len(s)
	s = c.appendID(s, &r.ownerID, r.flags>>flagOwnerID&3)
	no := len(s)
	owner := ""
	if c.shapes[r.shape].owner && no > nt {
		// Over s: appending the reason never writes the id's bytes.
		owner = unsafe.String(&s[nt], no-nt)
	}
	s, b.times = c.appendReason(s, r, b.times[:0], owner)
	b.scratch = s
	text := b.keep(s)
	b.TokenID, b.OwnerID, b.Reason = text[:nt], text[nt:no], text[no:]
	b.TokenName, b.OwnerName = c.strs.s[r.tokenName], c.strs.s[r.ownerName]
	b.Patch, b.AlsoMatched = d.patch, d.alsoMatched
	b.LastUsed, b.HasLastUsed = time.Time{}, r.lastUsed != timeNil
	if b.HasLastUsed {
		b.LastUsed = c.time(r.lastUsed)
	}
	_, deadline := c.grace(r)
	b.Deadline, b.HasDeadline = time.Time{}, deadline != timeNil
	if b.HasDeadline {
		b.Deadline = c.time(deadline)
	}
}
