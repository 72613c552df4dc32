package report

import (
	_ "embed"
	"html/template"
	"io"
	"iter"
	"strings"

	"github.com/patjanitor/patjanitor/internal/plan"
)

// planTemplate is the HTML report: one file with inline CSS, no scripts and no
// external resources, so that it can be attached to a ticket and opened
// offline. A Content-Security-Policy meta tag forbids scripts and any fetch
// as a second line of defence behind html/template's escaping.
//
//go:embed plan.html.tmpl
var planTemplate string

// htmlView is the data the template renders. Every string from the plan has
// been through visible(); html/template escapes it for its context.
type htmlView struct {
	Tenant, APIVersion, Generated, RunID, ConfigDigest, PlanHash string
	Population                                                   int
	Listings                                                     []string
	Error                                                        string
	Summary                                                      summary
	Policies                                                     []plan.PolicyCount
	Guardrails                                                   []plan.Guardrail
	Groups                                                       []htmlGroup
	Skipped                                                      []plan.Skipped
	View                                                         []headerLine
	Notices                                                      []string
	// Clients is the API client section (nil without one; apiclients.go).
	Clients *htmlClients
}

type htmlGroup struct {
	Heading string
	// Badge is the group's effect: "changes" (CHANGES THE TENANT),
	// "blocked" (would, but the plan is blocked), "grace" or "reportonly".
	Badge string
	// Items yields the group's items while the template writes them: a
	// slice of them all held the whole report's text at once (a plan at
	// the default listing cap peaked at 161 MiB instead of 62;
	// docs/operations.md, "Memory").
	Items iter.Seq[htmlItem]
}

// htmlItem is one item: a row of short values (never broken inside a word)
// and a full-width row under it for the long ones, so that the table fits a
// narrow window without squeezing any column below its longest word.
type htmlItem struct {
	Name, ID, Owner, OwnerName, OwnerID, Created, LastUsed, CreatedDay, LastUsedDay string
	Scope, Reason, Deadline, AlsoMatched                                            string
	Patch                                                                           []string
}

func renderHTML(w io.Writer, p *plan.Plan) error {
	tmpl, err := template.New("plan").Funcs(template.FuncMap{
		"v":      visible,
		"number": number,
	}).Parse(planTemplate)
	if err != nil {
		return err
	}
	v := htmlView{
		Tenant: visible(p.Tenant), APIVersion: visible(p.APIVersion), Generated: timeText(p.GeneratedAt),
		RunID: visible(p.RunID), ConfigDigest: visible(p.ConfigDigest), PlanHash: visible(p.PlanHash),
		Population: p.Population, Error: visible(p.Error), Summary: summarize(p),
		Guardrails: p.Guardrails, Skipped: p.Skipped,
		View: viewLines(p), Notices: viewNotices(p),
	}
	if v.PlanHash == "" {
		v.PlanHash = "(not sealed)"
	}
	v.Clients = htmlClientsOf(p.APIClients) // apiclients.go
	v.Policies = v.Summary.Counts.Policies
	for _, l := range p.Listings {
		v.Listings = append(v.Listings, visible(listingText(l)))
	}
	for _, g := range groups(p) {
		hg := htmlGroup{Heading: groupTitle(&g), Badge: "reportonly"}
		switch {
		case (g.Changes() || g.Mode == plan.ModeGrace) && v.Summary.Blocked:
			hg.Badge = "blocked"
		case g.Changes():
			hg.Badge = "changes"
		case g.Mode == plan.ModeGrace:
			hg.Badge = "grace"
		}
		hg.Items = htmlItems(&g, &err)
		v.Groups = append(v.Groups, hg)
	}
	if xerr := tmpl.Execute(w, v); xerr != nil {
		return xerr
	}
	// A patch that cannot be shown stops the items (htmlItems); the
	// report written so far is incomplete.
	return err
}

// htmlItems yields the items of g as the template shows them, one at a
// time. The first error (a patch value that is not JSON, which a decoded
// plan does not hold) is kept in *err, and then no item of any group is
// yielded.
func htmlItems(g *group, err *error) iter.Seq[htmlItem] {
	return func(yield func(htmlItem) bool) {
		for it := range g.All() {
			if *err != nil {
				return
			}
			ops, oerr := patchOps(&it)
			if oerr != nil {
				*err = oerr
				return
			}
			hi := htmlItem{
				Name: visible(it.TokenName), ID: visible(it.TokenID), Owner: visible(ownerText(&it)), OwnerName: visible(it.OwnerName),
				OwnerID: visible(it.OwnerID), Created: timeText(it.Created), LastUsed: lastUsedText(it.LastUsed),
				CreatedDay: dateText(&it.Created), LastUsedDay: dateText(it.LastUsed),
				Scope: visible(scopeText(it.Scope)), Reason: visible(it.Reason),
				AlsoMatched: visible(strings.Join(it.AlsoMatched, ", ")),
			}
			if it.Deadline != nil {
				hi.Deadline = timeText(*it.Deadline)
			}
			for _, o := range ops {
				hi.Patch = append(hi.Patch, visible(o.String()))
			}
			if !yield(hi) {
				return
			}
		}
	}
}
