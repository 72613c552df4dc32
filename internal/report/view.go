package report

import (
	"strings"

	"github.com/patjanitor/patjanitor/internal/plan"
)

// headerLine is one label and value of the plan header about what the run
// could see.
type headerLine struct{ Label, Value string }

// viewLines are the header lines about the run's credential: who it is, how
// many owners it saw and when it expires. Every value has been through
// visible().
func viewLines(p *plan.Plan) []headerLine {
	var out []headerLine
	if c := p.Caller; c != nil {
		who := c.ClientID
		if c.UserName != "" {
			who += " (" + c.UserName + ")"
		}
		if c.IdentityID != "" {
			who += ", identity " + c.IdentityID
		}
		levels := "none"
		if len(c.Authorities) > 0 {
			levels = strings.Join(c.Authorities, ", ")
		}
		out = append(out, headerLine{"caller", visible(who + "; authorities: " + levels)})
	}
	if p.Caller != nil || p.Owners > 0 {
		out = append(out, headerLine{"owners", plural(p.Owners, "owner") + " in the listings"})
	}
	if p.CredentialExpires != nil {
		out = append(out, headerLine{"own PAT", "expires " + timeText(*p.CredentialExpires)})
	}
	return out
}

// viewNotices are the header's warnings, each a sentence: a partial view
// first, then the plan's warnings.
func viewNotices(p *plan.Plan) []string {
	var out []string
	if p.PartialView != "" {
		out = append(out, "PARTIAL VIEW: "+visible(p.PartialView)+". This plan covers only part of the tenant; enforce-mode actions are not carried out.")
	}
	for _, w := range p.Warnings {
		out = append(out, "WARNING: "+visible(w))
	}
	return out
}
