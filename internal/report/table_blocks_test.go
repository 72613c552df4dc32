package report

import (
	"bytes"
	"fmt"
	"regexp"
	"runtime"
	"testing"

	"github.com/patjanitor/patjanitor/internal/plan"
)

// TestTableBlocksInOrder: a group larger than a block is rendered on several
// CPUs, and the table is byte for byte the table rendered on one, every row
// in plan order.
func TestTableBlocksInOrder(t *testing.T) {
	p := fixture()
	base := p.Items
	p.Items = nil
	for i := range 3*itemBlock + 7 {
		for _, it := range base {
			it.TokenID = fmt.Sprintf("%s-%05d", it.TokenID, i)
			it.TokenName = fmt.Sprintf("%s %d", it.TokenName, i)
			p.Items = append(p.Items, it)
		}
	}
	plan.Sort(p.Items)
	renderWith := func(procs int) string {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		var b bytes.Buffer
		if err := RenderOptions(&b, p, FormatTable, Options{Width: 100}); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	one, four := renderWith(1), renderWith(4)
	if one != four {
		t.Fatalf("the table rendered on 4 CPUs (%d bytes) differs from the one rendered on 1 (%d bytes)", len(four), len(one))
	}
	// Every item's row, in plan order within its group (the groups are in
	// their own order, so the ids are checked group by group).
	at := map[string]int{}
	for _, m := range regexp.MustCompile(`[0-9a-f]{32}-[0-9]{5}`).FindAllStringIndex(four, -1) {
		if id := four[m[0]:m[1]]; at[id] == 0 {
			at[id] = m[0]
		}
	}
	for _, it := range p.Items {
		if _, ok := at[it.TokenID]; !ok {
			t.Fatalf("no row for %s", it.TokenID)
		}
	}
	for i := 1; i < len(p.Items); i++ {
		a, b := &p.Items[i-1], &p.Items[i]
		if a.Policy == b.Policy && a.Mode == b.Mode && a.Action == b.Action && at[a.TokenID] > at[b.TokenID] {
			t.Fatalf("%s is shown after %s", a.TokenID, b.TokenID)
		}
	}
}
