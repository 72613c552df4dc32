package plan

import (
	"iter"
	"slices"
)

// Items are a plan's items, in Sort order once the plan is built. They are
// reached through methods, not as a slice, so that the plan is free to hold
// them in whatever form costs the least memory: a large tenant's plan has
// hundreds of thousands of them. An Item read from Items is a copy; changing
// it changes nothing until it is stored back with Set.
//
// The zero value is empty and ready to use. Items must not be copied after
// first use (copies would share storage).
type Items struct {
	s []Item
}

// NewItems returns Items holding a copy of items, in the order given.
func NewItems(items ...Item) Items {
	var s Items
	s.Grow(len(items))
	s.Append(items...)
	return s
}

// Len returns the number of items.
func (s *Items) Len() int { return len(s.s) }

// At returns item i (0 <= i < Len()).
func (s *Items) At(i int) Item { return s.s[i] }

// All yields every item with its index, in order.
func (s *Items) All() iter.Seq2[int, Item] {
	return func(yield func(int, Item) bool) {
		for i := range s.s {
			if !yield(i, s.s[i]) {
				return
			}
		}
	}
}

// Append adds items at the end.
func (s *Items) Append(items ...Item) {
	if len(s.s)+len(items) > cap(s.s) {
		// Doubled by hand: append grows a large slice by a quarter at a
		// time, which allocated five times the items' final size (115 MB
		// for the 64,000 items of a 100,000-token tenant, appended one by
		// one as the listing streams in) and made the collector run
		// again and again.
		s.s = slices.Grow(s.s, max(len(items), cap(s.s), 1024))
	}
	s.s = append(s.s, items...)
}

// Grow makes room for n more items, for a caller that knows how many it
// will append (a plan being read): they then take no more memory than
// they need.
func (s *Items) Grow(n int) { s.s = slices.Grow(s.s, n) }

// Set replaces item i.
func (s *Items) Set(i int, it Item) { s.s[i] = it }

// Slice returns a copy of every item, for callers that hold few of them
// (tests, small plans); a large plan's items are better read with At or
// All.
func (s *Items) Slice() []Item { return slices.Clone(s.s) }

// Sort puts the items in plan order (see compareItems). Items an engine
// or a reader already holds in order are only confirmed.
func (s *Items) Sort() {
	if !s.IsSorted() {
		sortItems(s.s)
	}
}

// IsSorted reports whether the items are in plan order. It is much cheaper
// than sorting items that are already in order.
func (s *Items) IsSorted() bool {
	for i := 1; i < len(s.s); i++ {
		if compareItems(&s.s[i-1], &s.s[i]) > 0 {
			return false
		}
	}
	return true
}
