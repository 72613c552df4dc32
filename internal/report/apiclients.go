package report

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
)

// renderClientsTable writes the plan's API client section (resource:
// apiClients) after the token report: every item with its reason (API
// clients are few; with changesOnly only those that change the tenant, the
// others counted), the skipped clients counted by reason, the listing
// problems and the section's own guardrails.
func renderClientsTable(w io.Writer, c *plan.Clients, changesOnly bool) {
	if c == nil {
		return
	}
	fmt.Fprintf(w, "\nAPI clients (resource: apiClients): %d listed, %d decided, %d skipped\n", c.Population, len(c.Items), len(c.Skipped))
	hidden := 0
	if c.Error != "" {
		fmt.Fprintf(w, "  INCOMPLETE DATA, no API client will be changed: %s\n", visible(c.Error))
	}
	for _, it := range c.Items {
		// A held (grace) item changes nothing in the tenant but warns the
		// notify.apiClients receivers: a confirmation shows it, as it shows
		// the tokens whose owners would be warned.
		if changesOnly && !it.Mutating() && it.Mode != plan.ModeGrace {
			hidden++
			continue
		}
		mode := it.Mode
		fmt.Fprintf(w, "  %-8s %-7s %s  %s  [%s]\n", visible(mode), visible(it.Action), visible(it.ClientID), visible(it.Name), visible(it.Policy))
		last := "never used"
		if it.LastUsed != nil {
			last = "last used " + pat.FormatTime(*it.LastUsed)
		}
		fmt.Fprintf(w, "      %s; enabled %t; scope %s\n", last, it.Enabled, scopeString(it.Scope))
		fmt.Fprintf(w, "      why: %s\n", visible(it.Reason))
	}
	if hidden > 0 {
		fmt.Fprintf(w, "  not listed here: %d report-only API client items (the whole report: -o markdown, html or json)\n", hidden)
	}
	if len(c.Skipped) > 0 {
		by := map[string]int{}
		for _, s := range c.Skipped {
			by[strings.SplitN(s.Reason, ":", 2)[0]]++
		}
		keys := make([]string, 0, len(by))
		for k := range by {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s %d", visible(k), by[k])
		}
		fmt.Fprintf(w, "  skipped (never acted on): %s\n", strings.Join(parts, ", "))
	}
	for _, g := range c.Guardrails {
		state := "ok"
		if g.Tripped {
			state = "TRIPPED"
		}
		// A saved plan is a file: its guardrail text is escaped like the
		// rest of the table.
		fmt.Fprintf(w, "  guardrail %s (API clients): %s: %s\n", visible(g.Name), state, visible(g.Detail))
	}
}

func scopeString(s pat.Scopes) string {
	if s.Null {
		return "null (sp:scopes:all)"
	}
	return visible("[" + strings.Join(s.Values, " ") + "]")
}

// markdownClients writes the API client section of the Markdown report.
func markdownClients(line func(string, ...any), row func(...string), c *plan.Clients) {
	if c == nil {
		return
	}
	line("")
	line("## API clients")
	line("")
	line("%s listed, %s decided, %s skipped (never acted on).", md(fmt.Sprint(c.Population)), md(fmt.Sprint(len(c.Items))), md(fmt.Sprint(len(c.Skipped))))
	if c.Error != "" {
		line("")
		line("**Incomplete data, no API client will be changed:** %s", md(c.Error))
	}
	if len(c.Items) > 0 {
		line("")
		row("Client", "ID", "Mode", "Action", "Policy", "Enabled", "Last used", "Scope", "Reason")
		row("---", "---", "---", "---", "---", "---", "---", "---", "---")
		for _, it := range c.Items {
			last := "never"
			if it.LastUsed != nil {
				last = pat.FormatTime(*it.LastUsed)
			}
			row(md(it.Name), md(it.ClientID), md(it.Mode), md(it.Action), md(it.Policy), fmt.Sprint(it.Enabled), md(last), md(scopeString(it.Scope)), md(it.Reason))
		}
	}
	if len(c.Skipped) > 0 {
		line("")
		row("Skipped client", "ID", "Policy", "Reason")
		row("---", "---", "---", "---")
		for _, sk := range c.Skipped {
			row(md(sk.TokenName), md(sk.TokenID), md(sk.Policy), md(sk.Reason))
		}
	}
	if len(c.Guardrails) > 0 {
		line("")
		row("API client guardrail", "Limit", "Wanted", "Tripped", "Detail")
		row("---", "---", "---", "---", "---")
		for _, g := range c.Guardrails {
			row(md(g.Name), fmt.Sprint(g.Limit), fmt.Sprint(g.Wanted), fmt.Sprint(g.Tripped), md(g.Detail))
		}
	}
}

// htmlClients is the API client section of the HTML report; every string
// has been through visible().
type htmlClients struct {
	Population int
	Error      string
	Items      []htmlClient
	Skipped    []plan.Skipped
	Guardrails []plan.Guardrail
}

type htmlClient struct {
	Name, ID, Mode, Action, Policy, LastUsed, Scope, Reason string
	Enabled                                                 bool
}

func htmlClientsOf(c *plan.Clients) *htmlClients {
	if c == nil {
		return nil
	}
	h := &htmlClients{Population: c.Population, Error: visible(c.Error), Skipped: c.Skipped, Guardrails: c.Guardrails}
	for _, it := range c.Items {
		last := "never"
		if it.LastUsed != nil {
			last = pat.FormatTime(*it.LastUsed)
		}
		h.Items = append(h.Items, htmlClient{
			Name: visible(it.Name), ID: visible(it.ClientID), Mode: it.Mode, Action: it.Action, Policy: visible(it.Policy),
			LastUsed: last, Scope: scopeString(it.Scope), Reason: visible(it.Reason), Enabled: it.Enabled,
		})
	}
	return h
}
