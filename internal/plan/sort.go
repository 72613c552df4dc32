package plan

import (
	"cmp"
	"slices"
	"strings"
)

// Sort orders items the way the plan lists them: by policy, then by owner
// (name, then id, so one owner's tokens stay together even when two owners
// share a display name), then by token (name, then id). Token ids are unique
// in a plan, so the order is total and the same on every run.
func Sort(items []Item) {
	slices.SortFunc(items, compareItems)
}

// IsSorted reports whether items are in Sort order. It is much cheaper than
// sorting items that are already in order (an engine builds them in order and
// only confirms it).
func IsSorted(items []Item) bool {
	for i := 1; i < len(items); i++ {
		if compareItemPtrs(&items[i-1], &items[i]) > 0 {
			return false
		}
	}
	return true
}

func compareItems(a, b Item) int { return compareItemPtrs(&a, &b) }

// compareItemPtrs compares field by field and stops at the first
// difference (cmp.Or would compare all five strings every time).
func compareItemPtrs(a, b *Item) int {
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

// Pending returns the items executing the plan would perform: the enforce-mode
// deletes, patches and expires (see Item.Mutating), in plan order.
func (p *Plan) Pending() []Item {
	var out []Item
	for i := range p.Items {
		if p.Items[i].Mutating() {
			out = append(out, p.Items[i])
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
		Items:           len(p.Items),
		Skipped:         len(p.Skipped),
		ByAction:        map[string]int{},
		ByMode:          map[string]int{},
		SkippedByReason: map[string]int{},
	}
	type key struct{ policy, mode, action string }
	index := map[key]int{}
	for i := range p.Items {
		it := &p.Items[i]
		c.ByAction[it.Action]++
		c.ByMode[it.Mode]++
		k := key{it.Policy, it.Mode, it.Action}
		j, ok := index[k]
		if !ok {
			j = len(c.Policies)
			index[k] = j
			c.Policies = append(c.Policies, PolicyCount{Policy: it.Policy, Mode: it.Mode, Action: it.Action})
		}
		c.Policies[j].Items++
		if it.Mutating() {
			c.Policies[j].Pending++
			c.Pending++
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
