package plan

import (
	"bytes"
	"os"
	"testing"
)

// A plan written by the code before the compact items (3ad4596, items as
// []Item: testdata/plan-before-compact-items.json) with ids of every
// spelling the compact form tells apart (lower, upper, mixed case, digits
// only, with a zero-width space, short), owner ids and token names inside
// reasons, reason times of other layouts and outside the packed years,
// scopes null, [] and [""], every typed patch operation and a grace item
// still reads, verifies, is in plan order, writes back byte for byte and
// seals to the same hash: a plan approved before the change still applies.
func TestPlanBeforeCompactItemsReadsAndResealsAlike(t *testing.T) {
	old, err := os.ReadFile("testdata/plan-before-compact-items.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Read(bytes.NewReader(old))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if err := p.VerifyHash(); err != nil {
		t.Fatalf("VerifyHash: %v", err)
	}
	if !p.Items.IsSorted() {
		t.Error("the items, sorted by the old code, are not in plan order")
	}
	var buf bytes.Buffer
	if err := Write(&buf, p); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), old) {
		t.Fatalf("written back differently:\n%s", buf.Bytes())
	}
	sealed := p.PlanHash
	if err := p.Seal(); err != nil || p.PlanHash != sealed {
		t.Fatalf("sealed again: %s, %v; the file says %s", p.PlanHash, err, sealed)
	}
	// The items read back hold what was read, and encode alike from the
	// rows and from the items.
	items := p.Items.Slice()
	again := NewItems(items...)
	sameItems(t, "NewItems of the items read", again.Slice(), items)
	sameEncoding(t, &again, items)
}
