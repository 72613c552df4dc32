package plan

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// A copy of Items shares its storage. The rule (see Items): copies may be
// read side by side while none changes, a copy may replace its original
// (a move), and once one copy is changed the others are not to be used
// again. Changing a stale one panics. Without the guard it went through:
// a Set through a stale copy found the decision the other copy had
// interned in the shared index and indexed past its own list (index out of
// range), a Sort reordered the other copy's rows, and an Append wrote into
// the chunk list both copies hold.
func TestItemsCopies(t *testing.T) {
	items := randomItems(rand.New(rand.NewPCG(7, 7)), 6)
	x, y, z, w := items[0], items[1], items[2], items[3]
	x.Policy, y.Policy, z.Policy, w.Policy = "px", "py", "pz", "pw" // decisions of their own

	// Read side by side: both show the same items (Plan.Hash reads a copy).
	a := NewItems(x, y)
	b := a
	sameItems(t, "the copy", b.Slice(), a.Slice())
	p := samplePlan()
	before := p.Items.Slice()
	if _, err := p.Hash(); err != nil {
		t.Fatal(err)
	}
	p.Items.Append(z) // the plan is still the one to change after Hash
	sameItems(t, "after Hash and Append", p.Items.Slice(), append(before, z))

	// A move: the copy replaces the original, which is not used again.
	moved := a
	a = Items{}
	moved.Append(z)
	a.Append(x)
	sameItems(t, "the moved items", moved.Slice(), []Item{x, y, z})
	sameItems(t, "the emptied original", a.Slice(), []Item{x})

	// Zero Items copied before their first use share nothing.
	var c Items
	d := c
	c.Append(x)
	d.Append(y)
	sameItems(t, "a zero Items", c.Slice(), []Item{x})
	sameItems(t, "its copy", d.Slice(), []Item{y})

	// Two copies both changed: the second change is refused, and the
	// first copy keeps its items.
	for _, c := range []struct {
		name   string
		change func(s *Items)
	}{
		{"Append", func(s *Items) { s.Append(z) }},
		{"Set", func(s *Items) { s.Set(0, y) }},
		{"Grow", func(s *Items) { s.Grow(1) }},
		{"Sort", func(s *Items) { s.Sort() }},
	} {
		name, change := c.name, c.change
		// The first chunk has room for a fourth row, which both copies
		// would write.
		var e Items
		e.Grow(8)
		e.Append(z)
		e.Append(x)
		e.Append(w)
		if e.IsSorted() {
			t.Fatal("want unsorted items")
		}
		f := e
		e.Append(y)
		func() {
			defer func() {
				r := recover()
				if msg, _ := r.(string); !strings.Contains(msg, "another copy has changed since") {
					t.Errorf("%s through a stale copy: recovered %v, want the copy guard's panic", name, r)
				}
			}()
			change(&f)
		}()
		sameItems(t, name+" through a stale copy: the other copy", e.Slice(), []Item{z, x, w, y})
	}
}
