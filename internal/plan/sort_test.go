package plan

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// sortRef sorts items by compareItems, the definition of the plan order
// that Items.Sort reaches by a faster route.
func sortRef(items []Item) {
	slices.SortFunc(items, func(a, b Item) int { return compareItems(&a, &b) })
}

// TestSortItemsOfManyOwnersIsPlanSortOrder sorts (Items.Sort) items
// of more owners than one radix pass covers (5,000 owners: 13 bits, two
// passes; 300,000 items would make it three), with owners that share a
// name or an id (ids of the tenant's form in lower and upper case, and
// others), and compares the order with compareItems'.
func TestSortItemsOfManyOwnersIsPlanSortOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 63, 64, 65, 20_000} {
		var items []Item
		for i := range n {
			o := rng.IntN(5000)
			it := Item{
				TokenID:   fmt.Sprintf("%032x", rng.Uint64()),
				TokenName: []string{"ci", "deploy", "", "ci <x>"}[rng.IntN(4)],
				OwnerID:   fmt.Sprintf("owner%d", o%4000),
				OwnerName: fmt.Sprintf("Name %d", o%3000),
				Policy:    []string{"unused-90d", "full-access", "b", "a-policy"}[rng.IntN(4)],
			}
			switch o % 3 {
			case 0: // the tenant's form: the slot is found by id, then name
				it.OwnerID = fmt.Sprintf("%032x", o%4000)
			case 1: // the tenant's form in upper case: by name and id
				it.OwnerID = fmt.Sprintf("%032X", o%4000+0xabc)
			}
			if i%7 == 0 {
				it.TokenID = "same-id-" + fmt.Sprint(i%3) // equal ids under other names: the name decides
			}
			items = append(items, it)
		}
		all := slices.Clone(items)
		s := NewItems(items...)
		s.Sort()
		got := s.Slice()
		sortRef(all)
		for i := range all {
			if got[i].TokenID != all[i].TokenID || got[i].OwnerID != all[i].OwnerID || got[i].OwnerName != all[i].OwnerName ||
				got[i].TokenName != all[i].TokenName || got[i].Policy != all[i].Policy {
				t.Fatalf("n=%d, item %d: Items.Sort order %+v, compareItems order %+v", n, i, got[i], all[i])
			}
		}
	}
}

// TestRadixSortIsStableAndOrdered sorts keys of every width up to 64 bits.
func TestRadixSortIsStableAndOrdered(t *testing.T) {
	type kv struct {
		ord uint64
		at  int
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for width := 0; width <= 64; width += 5 {
		keys := make([]kv, 3000)
		for i := range keys {
			keys[i] = kv{ord: rng.Uint64() & (1<<width - 1) & ^uint64(rng.IntN(2)), at: i}
			if width == 64 {
				keys[i].ord = rng.Uint64()
			}
		}
		want := slices.Clone(keys)
		slices.SortStableFunc(want, func(a, b kv) int {
			switch {
			case a.ord < b.ord:
				return -1
			case a.ord > b.ord:
				return 1
			}
			return 0
		})
		got := radixSort(keys, func(k *kv) uint64 { return k.ord }, width)
		if !slices.Equal(got, want) {
			t.Fatalf("width %d: radix order differs from a stable sort", width)
		}
	}
}

// Items.Sort ranks policies and owners rather than comparing their strings;
// the result must still be compareItems' order, also when owners share a
// display name, names are empty and one owner id appears with two names.
func TestSortItemsIsPlanSortOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	for round := range 20 {
		n := rng.IntN(400)
		var items Items
		for i := range n {
			items.Append(Item{
				Policy:  pick("unused-90d", "full-access", "b", ""),
				TokenID: fmt.Sprintf("id%03d-%d", rng.IntN(1000), i), TokenName: pick("x", "y", "z", "", "ci <x>"),
				OwnerID: pick("o1", "o2", "o3"), OwnerName: pick("Ann", "Bob", "", "Ann "),
			})
		}
		want := items.Slice()
		sortRef(want)
		items.Sort()
		if items.Len() != n {
			t.Fatalf("round %d: %d items for %d candidates", round, items.Len(), n)
		}
		if !items.IsSorted() {
			t.Fatalf("round %d: candidates not in plan order", round)
		}
		for i, it := range items.All() {
			if it.TokenID != want[i].TokenID {
				t.Fatalf("round %d, item %d: Items.Sort order %s, compareItems order %s", round, i, it.TokenID, want[i].TokenID)
			}
		}
	}
}
