package janitor

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
)

// TestSortItemsOfManyOwnersIsPlanSortOrder sorts items
// of more owners than one radix pass covers (5,000 owners: 13 bits, two
// passes; 300,000 items would make it three), with owners that share a
// name or an id (ids of the tenant's form in lower and upper case, and
// others), and compares the order with plan.Sort's.
func TestSortItemsOfManyOwnersIsPlanSortOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 63, 64, 65, 20_000} {
		var items []plan.Item
		for i := range n {
			o := rng.IntN(5000)
			tok := pat.Token{
				ID:    fmt.Sprintf("%032x", rng.Uint64()),
				Name:  []string{"ci", "deploy", "", "ci <x>"}[rng.IntN(4)],
				Owner: pat.Owner{ID: fmt.Sprintf("owner%d", o%4000), Name: fmt.Sprintf("Name %d", o%3000)},
			}
			switch o % 3 {
			case 0: // the tenant's form: the slot is found by id, then name
				tok.Owner.ID = fmt.Sprintf("%032x", o%4000)
			case 1: // the tenant's form in upper case: by name and id
				tok.Owner.ID = fmt.Sprintf("%032X", o%4000+0xabc)
			}
			if i%7 == 0 {
				tok.ID = "same-id-" + fmt.Sprint(i%3) // equal ids under other names: the name decides
			}
			items = append(items, itemOf(&tok, policy.Decision{Policy: []string{"unused-90d", "full-access", "b", "a-policy"}[rng.IntN(4)]}))
		}
		all := slices.Clone(items)
		got := items
		sortItems(got)
		plan.Sort(all)
		for i := range all {
			if got[i].TokenID != all[i].TokenID || got[i].OwnerID != all[i].OwnerID || got[i].OwnerName != all[i].OwnerName ||
				got[i].TokenName != all[i].TokenName || got[i].Policy != all[i].Policy {
				t.Fatalf("n=%d, item %d: engine order %+v, plan.Sort order %+v", n, i, got[i], all[i])
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

// TestOwnerRanksIsRanksByNameAndID ranks owners whose names and ids share
// prefixes of every length, hold NULs, are empty, longer than the prefixes
// or not ASCII, and compares with a sort by the strings.
func TestOwnerRanksIsRanksByNameAndID(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	parts := []string{"", "\x00", "a", "A", "Ann", "Ann ", "Jennifer", "Jennifer Martinez", "Jennifer Martine", "é", "\xff", "0123456789abcdef"}
	seen := map[[2]string]bool{}
	var names, ids []string
	for len(names) < 3000 {
		name := parts[rng.IntN(len(parts))] + parts[rng.IntN(len(parts))]
		id := parts[rng.IntN(len(parts))] + fmt.Sprintf("%x", rng.IntN(40))
		if seen[[2]string{name, id}] {
			continue
		}
		seen[[2]string{name, id}] = true
		names, ids = append(names, name), append(ids, id)
	}
	got := ownerRanks(len(names), func(i int) (string, string) { return names[i], ids[i] })
	want := ranks(len(names), func(a, b int32) int { return cmpStrings(names[a], names[b], ids[a], ids[b]) })
	if !slices.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("owner %q/%q: rank %d, by the strings %d", names[i], ids[i], got[i], want[i])
			}
		}
	}
}
