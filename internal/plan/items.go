package plan

import (
	"iter"
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
