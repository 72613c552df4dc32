package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/patjanitor/patjanitor/internal/plan"
)

// md makes untrusted text safe inside a Markdown table cell: hidden
// characters become visible escapes (so a newline cannot end the row), and
// the characters that start inline Markdown or HTML markup, the cell
// separator | among them, are backslash-escaped (CommonMark lets any ASCII
// punctuation be escaped). Raw HTML is therefore never passed through: < is
// \<. Block markup (#, >, -, 1.) cannot start inside a table cell.
func md(s string) string {
	s = visible(s)
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '_', '[', ']', '<', '>', '|', '~', '&':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func renderMarkdown(w io.Writer, p *plan.Plan) error {
	bw := bufio.NewWriter(w)
	line := func(format string, args ...any) {
		fmt.Fprintf(bw, format, args...)
		bw.WriteByte('\n')
	}
	row := func(cells ...string) { line("| %s |", strings.Join(cells, " | ")) }
	s := summarize(p)

	line("# patjanitor plan")
	line("")
	line("**%s**", md(s.Verdict))
	line("")
	row("", "")
	row("---", "---")
	row("Tenant", md(p.Tenant))
	row("API version", md(p.APIVersion))
	row("Generated", md(timeText(p.GeneratedAt)))
	if p.RunID != "" {
		row("Run", md(p.RunID))
	}
	row("Config digest", md(p.ConfigDigest))
	hash := p.PlanHash
	if hash == "" {
		hash = "(not sealed)"
	}
	row("Plan hash", md(hash))
	row("Population", md(plural(p.Population, "token")))
	for _, l := range p.Listings {
		row("Listing", md(listingText(l)))
	}
	for _, l := range viewLines(p) {
		row(md(strings.ToUpper(l.Label[:1])+l.Label[1:]), md(l.Value))
	}
	row("Decided", md(s.Decided))
	for _, n := range viewNotices(p) {
		line("")
		line("> **%s**", md(n))
	}
	if p.Error != "" {
		line("")
		line("> **Incomplete data:** %s. Nothing will be changed.", md(p.Error))
	}

	line("")
	line("## Policies")
	line("")
	if len(s.Counts.Policies) == 0 {
		line("No token matched a policy.")
	} else {
		row("Policy", "Mode", "Action", "Tokens", "Pending")
		row("---", "---", "---", "---:", "---:")
		for _, pc := range s.Counts.Policies {
			row(md(pc.Policy), md(pc.Mode), md(pc.Action), fmt.Sprint(pc.Items), fmt.Sprint(pc.Pending))
		}
	}

	line("")
	line("## Guardrails")
	line("")
	if len(p.Guardrails) == 0 {
		line("None configured.")
	} else {
		row("Guardrail", "Limit", "Wanted", "Status", "Detail")
		row("---", "---:", "---:", "---", "---")
		for _, g := range p.Guardrails {
			status := "ok"
			if g.Tripped {
				status = "**TRIPPED**"
			}
			row(md(g.Name), number(g.Limit), fmt.Sprint(g.Wanted), status, md(g.Detail))
		}
	}

	line("")
	line("## Items")
	if p.Items.Len() == 0 {
		line("")
		line("Nothing to do.")
	}
	for _, g := range groups(p) {
		line("")
		line("### %s", md(groupHeading(&g, s)))
		line("")
		row("Token", "ID", "Owner", "Created", "Last used", "Reason", "Patch", "Also matched")
		row("---", "---", "---", "---", "---", "---", "---", "---")
		for it := range g.All() {
			ops, err := patchOps(&it)
			if err != nil {
				return err
			}
			var patch []string
			for _, o := range ops {
				patch = append(patch, md(o.String()))
			}
			row(md(it.TokenName), md(it.TokenID), md(ownerText(&it)), md(timeText(it.Created)),
				md(lastUsedText(it.LastUsed)), md(it.Reason), strings.Join(patch, "<br>"),
				md(strings.Join(it.AlsoMatched, ", ")))
		}
	}

	line("")
	line("## Skipped")
	line("")
	if len(p.Skipped) == 0 {
		line("No token was exempt.")
	} else {
		row("Token", "ID", "Owner ID", "Policy", "Reason")
		row("---", "---", "---", "---", "---")
		for _, sk := range p.Skipped {
			row(md(sk.TokenName), md(sk.TokenID), md(sk.OwnerID), md(sk.Policy), md(sk.Reason))
		}
	}
	markdownClients(line, row, p.APIClients) // apiclients.go
	return bw.Flush()
}
