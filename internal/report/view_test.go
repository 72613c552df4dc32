package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/plan"
)

// The header says who the plan was made as, how many owners the listings
// showed, when patjanitor's PAT expires, and, first of all, that the view
// is partial; in every human format.
func TestHeaderShowsCallerExpiryAndPartialView(t *testing.T) {
	p := fixture()
	p.Caller = &plan.Caller{ClientID: "0123abcd", IdentityID: "2c91808a", UserName: "plain.user", Authorities: []string{"USER"}}
	p.Owners = 1
	p.CredentialExpires = tp(t0.AddDate(0, 0, 20))
	p.PartialView = "the credential's user level (authorities: USER) is not ORG_ADMIN"
	p.Warnings = []string{"patjanitor's own PAT (client id 0123abcd) expires at 2026-12-16T03:00:00.000Z, in 20 days"}
	for _, format := range []string{"table", "markdown", "html"} {
		var buf bytes.Buffer
		if err := Render(&buf, p, format); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		out := strings.Join(strings.Fields(buf.String()), " ") // undo wrapping
		for _, want := range []string{
			"0123abcd (plain.user), identity 2c91808a; authorities: USER",
			"1 owner in the listings",
			"expires 2026-12-16T03:00:00.000Z",
			"PARTIAL VIEW: the credential",
			"This plan covers only part of the tenant",
			"WARNING: patjanitor",
		} {
			if format == "html" {
				want = strings.ReplaceAll(want, "'", "&#39;")
			}
			if format == "markdown" {
				continue
			}
			if !strings.Contains(out, want) {
				t.Errorf("%s lacks %q:\n%s", format, want, out)
			}
		}
		if format == "markdown" && (!strings.Contains(out, "PARTIAL VIEW") || !strings.Contains(out, "Own PAT")) {
			t.Errorf("markdown lacks the view:\n%s", out)
		}
	}
}
