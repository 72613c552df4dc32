package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
)

// A needs-owner item is shown as such in the human formats: its group says
// that nothing is sent and why, and the verdict counts it apart.
func TestNeedsOwnerRendered(t *testing.T) {
	p := &plan.Plan{Version: plan.Version, Tenant: "https://acme.api.identitynow.com", APIVersion: "v3", GeneratedAt: t0, Population: 3,
		Items: plan.NewItems(plan.Item{
			TokenID: "t1", TokenName: "ci", OwnerID: "o1", OwnerName: "Otto", Created: t0, Scope: pat.ScopesOf(pat.ScopeAll),
			Policy: "full-access", Mode: plan.ModeNeedsOwner, Action: plan.ActionPatch,
			Reason: "holds sp:scopes:all (scopes.any); needs-owner: the API lets only a token's owner change its scopes",
			Patch:  []pat.PatchOp{pat.SetScopes([]string{"sp:scopes:default"})}, AlsoMatched: []string{},
		}), Skipped: []plan.Skipped{}, Guardrails: []plan.Guardrail{}}
	if err := p.Seal(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"table", "markdown"} {
		var b bytes.Buffer
		if err := Render(&b, p, f); err != nil {
			t.Fatal(err)
		}
		out := strings.Join(strings.Fields(b.String()), " ") // undo the wrapping
		for _, want := range []string{"full-access: needs-owner patch, 1 token (needs the owner: the API lets only a token's owner change its scopes; nothing is sent)",
			"1 token of enforce-mode patch policies need their owners"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s lacks %q:\n%s", f, want, out)
			}
		}
	}
}
