package janitor

import (
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
)

// actionOf reads back the action of every request the engine journals (a
// new kind of request must be taught to the catch-up, or its confirmation
// would be rebuilt as another action).
func TestActionOfReadsBackEveryRequest(t *testing.T) {
	when := time.Date(2026, 12, 10, 3, 0, 0, 0, time.UTC)
	ops := map[policy.Action][]pat.PatchOp{
		policy.ActionPatch:  {pat.SetScopes([]string{"idn:a"}), pat.Rename("x")},
		policy.ActionExpire: {pat.SetExpiration(when)},
	}
	for _, v := range []pat.APIVersion{pat.V3, pat.V2025, pat.V1} {
		e := &Engine{version: v}
		for _, a := range []policy.Action{policy.ActionDelete, policy.ActionPatch, policy.ActionExpire} {
			req := e.request(work{item: plan.Item{TokenID: "t-1", Action: string(a)}, ops: ops[a]})
			if got := actionOf(audit.Record{Request: &req}); got != a {
				t.Errorf("%s %s: read back as %s", v, a, got)
			}
		}
	}
	for _, a := range []policy.Action{policy.ActionDelete, policy.ActionDisable, "enable"} {
		req := ClientRequest(a, "c-1")
		if got := actionOf(audit.Record{Resource: apiclient.Resource, Request: &req}); got != a {
			t.Errorf("API client %s: read back as %s", a, got)
		}
	}
}
