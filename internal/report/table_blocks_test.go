package report

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
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
	for _, it := range p.Items {
		i := strings.Index(four, "  "+it.TokenID+" ")
		if i < 0 {
			t.Fatalf("no row for %s", it.TokenID)
		}
		at[it.TokenID] = i
	}
	for i := 1; i < len(p.Items); i++ {
		a, b := &p.Items[i-1], &p.Items[i]
		if a.Policy == b.Policy && a.Mode == b.Mode && a.Action == b.Action && at[a.TokenID] > at[b.TokenID] {
			t.Fatalf("%s is shown after %s", a.TokenID, b.TokenID)
		}
	}
}
