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

// decide sorts the items by ranked policies and owners rather than by
// comparing their strings; the result must still be plan.Sort's order, also when
// owners share a display name, names are empty and one owner id appears with
// two names or one owner with and without a type.
func TestSortItemsIsPlanSortOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	for round := range 20 {
		n := rng.IntN(400)
		pols := make([]string, n)
		toks := make([]pat.Token, n)
		for i := range toks {
			pols[i] = pick("unused-90d", "full-access", "b", "")
			toks[i] = pat.Token{
				ID: fmt.Sprintf("id%03d-%d", rng.IntN(1000), i), Name: pick("x", "y", "z", "", "ci <x>"),
				Owner: pat.Owner{Type: pick("IDENTITY", ""), ID: pick("o1", "o2", "o3"), Name: pick("Ann", "Bob", "", "Ann ")},
			}
		}
		items := make([]plan.Item, 0, n)
		for k := range toks {
			items = append(items, itemOf(&toks[k], policy.Decision{Policy: pols[k]}))
		}
		sortItems(items)
		if len(items) != n {
			t.Fatalf("round %d: %d items for %d candidates", round, len(items), n)
		}
		if !plan.IsSorted(items) {
			t.Fatalf("round %d: candidates not in plan order", round)
		}
		sorted := slices.Clone(items)
		plan.Sort(sorted)
		for i := range items {
			if items[i].TokenID != sorted[i].TokenID {
				t.Fatalf("round %d, item %d: engine order %s, plan.Sort order %s", round, i, items[i].TokenID, sorted[i].TokenID)
			}
		}
	}
}
