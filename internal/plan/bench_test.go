package plan

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// bigPlan is a plan of n items, the size of a large tenant's report.
func bigPlan(n int) *Plan {
	p := samplePlan()
	items := make([]Item, n)
	for i := range items {
		items[i] = Item{
			TokenID: fmt.Sprintf("2c9180835d2e5168015d32f8%08x", i), TokenName: fmt.Sprintf("token-%d", i),
			OwnerID: fmt.Sprintf("2c9180867624cbd7017642d6%08x", i%500), OwnerName: fmt.Sprintf("Owner %d", i%500),
			Created: t0.AddDate(-1, 0, 0), LastUsed: tp(t0.AddDate(0, -4, 0)), Scope: pat.ScopesOf("sp:scopes:all"),
			Policy: "unused-90d", Mode: ModeEnforce, Action: ActionDelete,
			Reason: "lastUsed 2026-07-26T03:00:00.000Z is before cutoff 2026-08-28T03:00:00.000Z (unusedFor 90d)",
		}
	}
	p.Items = NewItems(items...)
	p.Items.Sort()
	return p
}

func BenchmarkSeal10k(b *testing.B) {
	p := bigPlan(10000)
	for b.Loop() {
		if err := p.Seal(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteRead10k(b *testing.B) {
	p := bigPlan(10000)
	if err := p.Seal(); err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, p); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	for b.Loop() {
		buf.Reset()
		if err := Write(&buf, p); err != nil {
			b.Fatal(err)
		}
		if _, err := Read(&buf); err != nil {
			b.Fatal(err)
		}
	}
}
