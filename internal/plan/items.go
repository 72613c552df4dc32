package plan

import (
	"iter"
	"time"
	"unsafe"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// Items are a plan's items, in Sort order once the plan is built. They are
// reached through methods, not as a slice, so that the plan is free to hold
// them in whatever form costs the least memory: a large tenant's plan has
// hundreds of thousands of them, and they are held compactly (compact.go).
// An Item read from Items is a copy; changing it changes nothing until it
// is stored back with Set.
//
// The zero value is empty and ready to use. A copy of Items shares its
// storage (the rows' chunks, the interned values, the arena): copies may be
// read side by side as long as none is changed (Plan.Hash reads a copy of
// the plan), and a copy may take the original's place when the original is
// not used again (a move: the engine hands its items to the plan so). Once
// one copy is changed (Append, Grow, Set, Sort), the others must not be
// used again: their changes would write over the same rows and interned
// numbers. Changing such a stale copy panics (see changing); reading it is
// not checked, and may show the other copy's changes.
type Items struct {
	c compactItems
	// guard is what changing checks.
	guard copyGuard
}

// NewItems returns Items holding a copy of items, in the order given.
func NewItems(items ...Item) Items {
	var s Items
	s.Grow(len(items))
	s.Append(items...)
	return s
}

// Len returns the number of items.
func (s *Items) Len() int { return s.c.len() }

// At returns item i (0 <= i < Len()).
func (s *Items) At(i int) Item {
	if i < 0 || i >= s.c.len() {
		panic("plan: Items.At: index out of range")
	}
	return s.c.at(i)
}

// All yields every item with its index, in order.
func (s *Items) All() iter.Seq2[int, Item] {
	return func(yield func(int, Item) bool) {
		for i := range s.c.len() {
			if !yield(i, s.c.at(i)) {
				return
			}
		}
	}
}

// Append adds items at the end.
func (s *Items) Append(items ...Item) {
	s.guard.changing()
	for i := range items {
		s.c.append(&items[i])
	}
}

// Grow makes room for n more items, for a caller that knows how many it
// will append (a plan being read): they then take no more memory than
// they need.
func (s *Items) Grow(n int) {
	s.guard.changing()
	s.c.grow(n)
}

// Set replaces item i.
func (s *Items) Set(i int, it Item) {
	if i < 0 || i >= s.c.len() {
		panic("plan: Items.Set: index out of range")
	}
	s.guard.changing()
	s.c.set(i, &it)
}

// Slice returns a copy of every item, for callers that hold few of them
// (tests, small plans); a large plan's items are better read with At or
// All.
func (s *Items) Slice() []Item {
	if s.c.len() == 0 {
		return nil
	}
	out := make([]Item, s.c.len())
	for i := range out {
		out[i] = s.c.at(i)
	}
	return out
}

// Sort puts the items in plan order (see Sort).
func (s *Items) Sort() {
	if !s.c.isSorted() {
		s.guard.changing()
		s.c.sort()
	}
}

// IsSorted reports whether the items are in plan order.
func (s *Items) IsSorted() bool { return s.c.isSorted() }

// Decision returns the policy, mode and action of item i without making
// the whole item: counting and filtering a large plan's items by what was
// decided need nothing else.
func (s *Items) Decision(i int) (policy, mode, action string) {
	if i < 0 || i >= s.c.len() {
		panic("plan: Items.Decision: index out of range")
	}
	return s.c.decision(i)
}

// Mutating reports whether item i mutates the tenant (Item.Mutating).
func (s *Items) Mutating(i int) bool {
	_, mode, action := s.Decision(i)
	it := Item{Mode: mode, Action: action}
	return it.Mutating()
}

// TokenID returns the token id of item i without making the whole item.
func (s *Items) TokenID(i int) string {
	if i < 0 || i >= s.c.len() {
		panic("plan: Items.TokenID: index out of range")
	}
	r := s.c.row(i)
	return s.c.id(&r.tokenID, r.flags>>flagTokenID&3)
}

// TokenName returns the token name of item i without making the whole item.
func (s *Items) TokenName(i int) string {
	if i < 0 || i >= s.c.len() {
		panic("plan: Items.TokenName: index out of range")
	}
	return s.c.strs.s[s.c.row(i).tokenName]
}

// OwnerName returns the owner name of item i without making the whole item.
func (s *Items) OwnerName(i int) string {
	if i < 0 || i >= s.c.len() {
		panic("plan: Items.OwnerName: index out of range")
	}
	return s.c.strs.s[s.c.row(i).ownerName]
}

// AppendTokenID appends the token id of item i to dst: TokenID without a
// string of its own, for a caller that only looks at it.
func (s *Items) AppendTokenID(dst []byte, i int) []byte {
	if i < 0 || i >= s.c.len() {
		panic("plan: Items.AppendTokenID: index out of range")
	}
	r := s.c.row(i)
	return s.c.appendID(dst, &r.tokenID, r.flags>>flagTokenID&3)
}

// AppendOwnerID appends the owner id of item i to dst.
func (s *Items) AppendOwnerID(dst []byte, i int) []byte {
	if i < 0 || i >= s.c.len() {
		panic("plan: Items.AppendOwnerID: index out of range")
	}
	r := s.c.row(i)
	return s.c.appendID(dst, &r.ownerID, r.flags>>flagOwnerID&3)
}

// A Brief is what a table of a plan's items shows of one item: the row
// (names, ids, last use) and the lines under it (reason, patch, deadline,
// other policies). Items.Brief reads it from the compact form without
// making the whole Item, which a table of a large plan would make once per
// row only to print these fields: no other times, no copies of the lists,
// no allocation per item. Each field equals the Item's (At).
//
// A Brief is reused from item to item; its strings stay valid after (they
// are never overwritten), its Patch and AlsoMatched are the plan's own and
// must not be changed. Reuse one Brief, not a copy of a used one: a copy
// shares its buffer, and filling it would overwrite strings the original
// returned. The zero value is ready to use.
type Brief struct {
	TokenID, TokenName, OwnerID, OwnerName string
	// LastUsed is *Item.LastUsed when HasLastUsed (the item's is not nil).
	LastUsed    time.Time
	HasLastUsed bool
	Reason      string
	// Patch and AlsoMatched are shared with the Items: read only.
	Patch       []pat.PatchOp
	AlsoMatched []string
	// Deadline is *Item.Deadline when HasDeadline.
	Deadline    time.Time
	HasDeadline bool

	// scratch is where an item's ids and reason are written, then kept in
	// text, which is only appended to (a new array when full): the strings
	// made over it never change.
	scratch, text []byte
	times         []int64
}

// The arrays a Brief keeps its strings in start small and double up to
// briefChunk: a table of a few items allocates little, a large one once
// per some hundred items rather than per item.
const (
	briefFirst = 512
	briefChunk = 32 << 10
)

// keep returns a string of s's bytes, copied into b.text.
func (b *Brief) keep(s []byte) string {
	if len(s) == 0 {
		return ""
	}
	if cap(b.text)-len(b.text) < len(s) {
		b.text = make([]byte, 0, max(min(2*cap(b.text), briefChunk), briefFirst, len(s)))
	}
	n := len(b.text)
	b.text = append(b.text, s...)
	return unsafe.String(&b.text[n], len(s))
}

// Brief fills b with what a table shows of item i (see Brief).
func (s *Items) Brief(i int, b *Brief) {
	if i < 0 || i >= s.c.len() {
		panic("plan: Items.Brief: index out of range")
	}
	s.c.brief(i, b)
}
