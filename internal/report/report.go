// Package report renders a plan for the people and tools that review it:
// table (a terminal), json (the plan document itself), markdown (a pull
// request or ticket), csv (a spreadsheet) and html (one self-contained file to
// attach to a change ticket).
//
// Every format carries every item with its reason (the fields and cutoffs that
// decided it), the skipped tokens with theirs, the guardrails, and the
// summary counts.
//
// Order. The JSON and CSV list items in plan order (policy, owner, token), the
// order tools diff. The table, Markdown and HTML group items by policy and show
// first the groups that will change the tenant (enforce-mode delete, patch,
// expire), then the report-only groups, each group in plan order: a reviewer
// reads what will happen before what is merely reported, and within a group
// an owner's tokens stay together.
//
// Untrusted text. Token and owner names come from the tenant, and anyone who
// can create a token chooses its name. The human formats therefore show
// control, format and bidirectional-override characters as visible escapes
// (\n, \x1b, \u202e) so that a name cannot rewrite a terminal, hide a row or
// reorder what a reviewer reads; Markdown escapes its markup characters and
// HTML is escaped by html/template; CSV cells are protected against formula
// injection (see csvCell).
package report

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"

	"github.com/patjanitor/patjanitor/internal/plan"
)

// The formats RenderOptions knows.
const (
	FormatTable    = "table"
	FormatJSON     = "json"
	FormatMarkdown = "markdown"
	FormatCSV      = "csv"
	FormatHTML     = "html"
)

// ErrUnknownFormat is wrapped by RenderOptions for a format it does not know.
var ErrUnknownFormat = errors.New("unknown report format")

// Formats returns the format names RenderOptions accepts, for flag help and
// validation.
func Formats() []string {
	return []string{FormatTable, FormatJSON, FormatMarkdown, FormatCSV, FormatHTML}
}

// RenderOptions writes p to w in format (one of Formats), laid out as o says.
// The plan is not modified.
func RenderOptions(w io.Writer, p *plan.Plan, format string, o Options) error {
	if p == nil {
		return errors.New("report: no plan")
	}
	var err error
	switch format {
	case FormatTable:
		err = renderTable(w, p, o)
	case FormatJSON:
		err = plan.Write(w, p)
	case FormatMarkdown:
		err = renderMarkdown(w, p)
	case FormatCSV:
		err = renderCSV(w, p)
	case FormatHTML:
		err = renderHTML(w, p)
	default:
		return fmt.Errorf("%w %q (want one of %v)", ErrUnknownFormat, format, Formats())
	}
	if err != nil {
		return fmt.Errorf("report: %s: %w", format, err)
	}
	return nil
}

// group is the items of one (policy, mode, action), as the human formats show
// them. It holds the items' indices in the plan: a 100,000-item plan is not
// copied to be rendered.
type group struct {
	plan.PolicyCount
	items *plan.Items
	at    []int // the plan's indices of the group's items, in plan order
}

// Len returns the number of items in the group.
func (g *group) Len() int { return len(g.at) }

// Brief reads what the table shows of the group's item k into b (see
// plan.Brief).
func (g *group) Brief(k int, b *plan.Brief) { g.items.Brief(g.at[k], b) }

// All yields the group's items in plan order.
func (g *group) All() iter.Seq[plan.Item] {
	return func(yield func(plan.Item) bool) {
		for _, i := range g.at {
			if !yield(g.items.At(i)) {
				return
			}
		}
	}
}

// Changes reports whether executing the group changes the tenant.
func (g *group) Changes() bool { return g.Pending > 0 }

// groups splits the plan's items by policy, mode and action: the groups that
// change the tenant first, then the report-only ones, each set by policy name;
// items keep plan order. A policy that decided nothing has no group (the
// policy counts list it).
func groups(p *plan.Plan) []group {
	c := p.Counts()
	index := make(map[[3]string]int, len(c.Policies))
	out := make([]group, 0, len(c.Policies))
	for _, pc := range c.Policies {
		if pc.Items == 0 {
			continue
		}
		index[[3]string{pc.Policy, pc.Mode, pc.Action}] = len(out)
		out = append(out, group{PolicyCount: pc, items: &p.Items, at: make([]int, 0, pc.Items)})
	}
	var last [3]string
	j := -1
	for i := range p.Items.Len() {
		policy, mode, action := p.Items.Decision(i) // not the whole item
		// Plan order puts a group's items mostly next to each other.
		if k := [3]string{policy, mode, action}; j < 0 || k != last {
			j, last = index[k], k
		}
		out[j].at = append(out[j].at, i)
	}
	slices.SortStableFunc(out, func(a, b group) int {
		switch {
		case a.Changes() && !b.Changes():
			return -1
		case b.Changes() && !a.Changes():
			return 1
		}
		return 0
	})
	return out
}
