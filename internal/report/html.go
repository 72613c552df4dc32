package report

import (
	_ "embed"
	"html/template"
	"io"
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
}

type htmlGroup struct {
	Heading string
	Changes bool
	Items   []htmlItem
}

type htmlItem struct {
	Name, ID, Owner, OwnerID, Created, LastUsed, Scope, Reason, Deadline, AlsoMatched string
	Patch                                                                             []string
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
	}
	if v.PlanHash == "" {
		v.PlanHash = "(not sealed)"
	}
	v.Policies = v.Summary.Counts.Policies
	for _, l := range p.Listings {
		v.Listings = append(v.Listings, visible(listingText(l)))
	}
	for _, g := range groups(p) {
		hg := htmlGroup{Heading: groupTitle(&g), Changes: g.Changes()}
		for i := range g.Items {
			it := &g.Items[i]
			ops, err := patchOps(it)
			if err != nil {
				return err
			}
			hi := htmlItem{
				Name: visible(it.TokenName), ID: visible(it.TokenID), Owner: visible(ownerText(it)),
				OwnerID: visible(it.OwnerID), Created: timeText(it.Created), LastUsed: lastUsedText(it.LastUsed),
				Scope: visible(scopeText(it.Scope)), Reason: visible(it.Reason),
				AlsoMatched: visible(strings.Join(it.AlsoMatched, ", ")),
			}
			if it.Deadline != nil {
				hi.Deadline = timeText(*it.Deadline)
			}
			for _, o := range ops {
				hi.Patch = append(hi.Patch, visible(o.String()))
			}
			hg.Items = append(hg.Items, hi)
		}
		v.Groups = append(v.Groups, hg)
	}
	return tmpl.Execute(w, v)
}
