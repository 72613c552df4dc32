package plan

import (
	"cmp"
	"slices"
	"strings"
)

// The plan's order: by policy, then by owner (name, then id, so one owner's
// tokens stay together even when two owners share a display name), then by
// token (name, then id). Token ids are unique in a plan, so the order is
// total and the same on every run. compareItems defines it; Items.Sort puts
// items in it by a faster route (compactItems.sort) that tests and a fuzz
// test hold to compareItems.

// compareItems compares field by field and stops at the first difference
// (cmp.Or would compare all five strings every time).
func compareItems(a, b *Item) int {
	if c := strings.Compare(a.Policy, b.Policy); c != 0 {
		return c
	}
	if c := strings.Compare(a.OwnerName, b.OwnerName); c != 0 {
		return c
	}
	if c := strings.Compare(a.OwnerID, b.OwnerID); c != 0 {
		return c
	}
	if c := strings.Compare(a.TokenName, b.TokenName); c != 0 {
		return c
	}
	return strings.Compare(a.TokenID, b.TokenID)
}

// radixSort sorts keys by the low width bits of ord, stably, 11 bits a
// pass (the counts fit the first-level cache), and returns them (in keys or
// in a second slice).
func radixSort[K any](keys []K, ord func(*K) uint64, width int) []K {
	const digit = 11
	if width == 0 || len(keys) < 2 {
		return keys
	}
	tmp := make([]K, len(keys))
	for shift := 0; shift < width; shift += digit {
		var count [1<<digit + 1]int
		for i := range keys {
			count[ord(&keys[i])>>shift&(1<<digit-1)+1]++
		}
		for d := 1; d < len(count); d++ {
			count[d] += count[d-1]
		}
		for i := range keys {
			d := ord(&keys[i]) >> shift & (1<<digit - 1)
			tmp[count[d]] = keys[i]
			count[d]++
		}
		keys, tmp = tmp, keys
	}
	return keys
}

// Pending returns the items executing the plan would perform: the enforce-mode
// deletes, patches and expires (see Item.Mutating), in plan order.
func (p *Plan) Pending() []Item {
	var out []Item
	for i := range p.Items.Len() {
		if p.Items.Mutating(i) {
			out = append(out, p.Items.At(i))
		}
	}
	return out
}

// Tripped returns the guardrails that tripped.
func (p *Plan) Tripped() []Guardrail {
	var out []Guardrail
	for _, g := range p.Guardrails {
		if g.Tripped {
			out = append(out, g)
		}
	}
	return out
}

// PolicyCount is how many items one policy decided, with its mode and action.
type PolicyCount struct {
	Policy string
	Mode   string
	Action string
	// Items is the number of items; Pending those of them that mutate.
	Items, Pending int
}

// Counts summarises a plan for reports and notifications.
type Counts struct {
	// Items is the number of items, Pending the mutating ones among them,
	// Skipped the number of exempt tokens.
	Items, Pending, Skipped int
	// Policies has one entry per (policy, mode, action) in the plan, and one
	// with zero counts for each policy of the run (Plan.Policies) that
	// decided no item, sorted by policy. A policy normally has one mode and one action; a forced dry run
	// or a hand-merged plan can give it more.
	Policies []PolicyCount
	// ByAction, ByMode and SkippedByReason count items by action, items by
	// mode and skipped tokens by reason.
	ByAction, ByMode, SkippedByReason map[string]int
}

// Counts returns the plan's counts per policy, action, mode and skip reason.
func (p *Plan) Counts() Counts {
	c := Counts{
		Items:           p.Items.Len(),
		Skipped:         len(p.Skipped),
		ByAction:        map[string]int{},
		ByMode:          map[string]int{},
		SkippedByReason: map[string]int{},
	}
	type key struct{ policy, mode, action string }
	index := map[key]int{}
	// Items are counted per (policy, mode, action), the rest from those
	// counts: a large plan's items are looked up once each, and mostly not
	// at all, since plan order puts a policy's items next to each other.
	var last key
	j := -1
	for i := range p.Items.Len() {
		policy, mode, action := p.Items.Decision(i)
		if k := (key{policy, mode, action}); j < 0 || k != last {
			var ok bool
			if j, ok = index[k]; !ok {
				j = len(c.Policies)
				index[k] = j
				c.Policies = append(c.Policies, PolicyCount{Policy: policy, Mode: mode, Action: action})
			}
			last = k
		}
		c.Policies[j].Items++
	}
	for j := range c.Policies {
		pc := &c.Policies[j]
		c.ByAction[pc.Action] += pc.Items
		c.ByMode[pc.Mode] += pc.Items
		if it := (Item{Mode: pc.Mode, Action: pc.Action}); it.Mutating() {
			pc.Pending = pc.Items
			c.Pending += pc.Items
		}
	}
	for _, s := range p.Skipped {
		c.SkippedByReason[s.Reason]++
	}
	// A policy of the run that decided nothing is listed too, with 0: a
	// reviewer must be able to tell "matched nothing" from "not run".
	named := make(map[string]bool, len(c.Policies))
	for _, pc := range c.Policies {
		named[pc.Policy] = true
	}
	for _, pp := range p.Policies {
		if !named[pp.Name] {
			named[pp.Name] = true
			c.Policies = append(c.Policies, PolicyCount{Policy: pp.Name, Mode: pp.Mode, Action: pp.Action})
		}
	}
	slices.SortFunc(c.Policies, func(a, b PolicyCount) int {
		return cmp.Or(cmp.Compare(a.Policy, b.Policy), cmp.Compare(a.Mode, b.Mode), cmp.Compare(a.Action, b.Action))
	})
	return c
}
