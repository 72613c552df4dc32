package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/patjanitor/patjanitor/internal/plan"
)

// Table layout: rows fit in tableWidth columns (a 100-column terminal). Names
// and owners are shortened with an ellipsis; token ids never are (an id is
// what a reviewer searches for), and reasons are wrapped, never cut, on their
// own indented lines under each row.
const (
	tableWidth = 100
	nameWidth  = 26
	ownerWidth = 20
	idMaxWidth = 36 // a longer id widens only its own row
	detailIn   = 6  // indent of the why/patch lines
	keyWidth   = 12 // header key column
)

func renderTable(w io.Writer, p *plan.Plan) error {
	bw := bufio.NewWriter(w)
	t := &table{w: bw, idWidth: idWidth(p)}
	t.render(p)
	// bufio.Writer keeps the first write error and returns it here.
	return bw.Flush()
}

type table struct {
	w       *bufio.Writer
	idWidth int
}

func (t *table) line(format string, args ...any) {
	fmt.Fprintf(t.w, format, args...)
	t.w.WriteByte('\n')
}

// kv prints a header line, wrapping a long value under itself.
func (t *table) kv(key, value string) {
	lines := wrap(value, tableWidth-2-keyWidth)
	t.line("  %s%s", pad(key, keyWidth), lines[0])
	for _, l := range lines[1:] {
		t.line("  %s%s", strings.Repeat(" ", keyWidth), l)
	}
}

// detail prints "label: text" indented under a row, wrapped, the text aligned.
func (t *table) detail(label, text string) {
	head := strings.Repeat(" ", detailIn) + label + ": "
	lines := wrap(text, tableWidth-utf8.RuneCountInString(head))
	t.line("%s%s", head, lines[0])
	cont := strings.Repeat(" ", utf8.RuneCountInString(head))
	for _, l := range lines[1:] {
		t.line("%s%s", cont, l)
	}
}

func (t *table) render(p *plan.Plan) {
	s := summarize(p)
	t.line("patjanitor plan for %s (API %s)", visible(p.Tenant), visible(p.APIVersion))
	t.kv("generated", timeText(p.GeneratedAt))
	if p.RunID != "" {
		t.kv("run", visible(p.RunID))
	}
	t.kv("config", visible(p.ConfigDigest))
	hash := p.PlanHash
	if hash == "" {
		hash = "(not sealed)"
	}
	t.kv("plan hash", visible(hash))
	t.kv("population", plural(p.Population, "token"))
	for _, l := range p.Listings {
		t.kv("listing", visible(listingText(l)))
	}
	t.kv("decided", s.Decided)
	t.line("")
	t.line("%s", verdictLine(s))
	if p.Error != "" {
		t.line("")
		for i, l := range wrap("INCOMPLETE DATA: "+visible(p.Error)+" Nothing will be changed.", tableWidth-3) {
			if i == 0 {
				t.line("!! %s", l)
			} else {
				t.line("   %s", l)
			}
		}
	}

	t.line("")
	t.line("POLICIES")
	if len(s.Counts.Policies) == 0 {
		t.line("  no token matched a policy")
	} else {
		t.line("  %s  %s  %s  %7s  %7s", pad("POLICY", 30), pad("MODE", 8), pad("ACTION", 7), "TOKENS", "PENDING")
		for _, pc := range s.Counts.Policies {
			t.line("  %s  %s  %s  %7d  %7d", pad(truncate(visible(pc.Policy), 30), 30), pad(visible(pc.Mode), 8),
				pad(visible(pc.Action), 7), pc.Items, pc.Pending)
		}
	}

	t.line("")
	t.line("GUARDRAILS")
	if len(p.Guardrails) == 0 {
		t.line("  none configured")
	}
	for _, g := range p.Guardrails {
		status := "ok"
		if g.Tripped {
			status = "TRIPPED: the run acts on nothing"
		}
		row := fmt.Sprintf("  %s  limit %-8s wanted %-6d %s", pad(visible(g.Name), 20), number(g.Limit), g.Wanted, status)
		t.line("%s", row)
		if g.Detail != "" {
			t.detail("detail", visible(g.Detail))
		}
	}

	for _, g := range groups(p) {
		t.line("")
		t.line("%s", groupHeading(&g))
		t.line("  %s  %s  %s  %s", pad("TOKEN", nameWidth), pad("ID", t.idWidth), pad("OWNER", ownerWidth), "LAST USED")
		for i := range g.Items {
			t.item(&g.Items[i])
		}
	}

	if len(p.Skipped) > 0 {
		t.line("")
		t.line("SKIPPED (%s matched a policy but are exempt)", plural(len(p.Skipped), "token"))
		t.line("  %s  %s  %s  %s", pad("TOKEN", nameWidth), pad("ID", t.idWidth), pad("POLICY", 18), "REASON")
		for _, sk := range p.Skipped {
			t.line("  %s  %s  %s  %s", pad(truncate(visible(sk.TokenName), nameWidth), nameWidth),
				pad(visible(sk.TokenID), t.idWidth), pad(truncate(visible(sk.Policy), 18), 18), visible(sk.Reason))
		}
	}

	t.line("")
	t.line("%s", verdictLine(s))
}

// verdictLine is the verdict, wrapped, marked when the plan is blocked.
func verdictLine(s summary) string {
	if !s.Blocked {
		return strings.Join(wrap(s.Verdict, tableWidth), "\n")
	}
	return "!! " + strings.Join(wrap(s.Verdict, tableWidth-3), "\n   ")
}

func (t *table) item(it *plan.Item) {
	t.line("  %s  %s  %s  %s",
		pad(truncate(visible(it.TokenName), nameWidth), nameWidth),
		pad(visible(it.TokenID), t.idWidth),
		pad(truncate(visible(ownerText(it)), ownerWidth), ownerWidth),
		dateText(it.LastUsed))
	t.detail("why", visible(it.Reason))
	ops, err := patchOps(it)
	if err != nil {
		t.detail("patch", "(cannot be shown: "+err.Error()+")")
	}
	for _, o := range ops {
		t.detail("patch", visible(o.String()))
	}
	if it.Deadline != nil {
		t.detail("deadline", timeText(*it.Deadline))
	}
	if len(it.AlsoMatched) > 0 {
		t.detail("also matched", visible(strings.Join(it.AlsoMatched, ", ")))
	}
}

// groupHeading names a group and says whether it changes the tenant.
func groupHeading(g *group) string {
	effect := "report only, nothing changes"
	switch {
	case g.Changes():
		effect = "CHANGES THE TENANT"
	case g.Mode == plan.ModeGrace:
		effect = "grace period: marked, owners warned, acted on after the deadline"
	}
	return groupTitle(g) + " (" + effect + ")"
}

// groupTitle names a group: "unused-90d: enforce delete, 3 tokens".
func groupTitle(g *group) string {
	return fmt.Sprintf("%s: %s %s, %s", visible(g.Policy), visible(g.Mode), visible(g.Action),
		plural(len(g.Items), "token"))
}

// idWidth is the width of the id column: the longest id, capped.
func idWidth(p *plan.Plan) int {
	n := len("ID")
	for i := range p.Items {
		n = max(n, utf8.RuneCountInString(visible(p.Items[i].TokenID)))
	}
	for _, s := range p.Skipped {
		n = max(n, utf8.RuneCountInString(visible(s.TokenID)))
	}
	return min(n, idMaxWidth)
}
