package cli

import (
	"fmt"
	"strings"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/policy"
)

// actionCalls says, for each action the config's policies use, which request
// a run sends for one token (validate prints it under the listing calls).
func actionCalls(cfg *policy.Config) []string {
	used := map[policy.Action]bool{}
	for _, p := range cfg.Policies {
		used[p.Action] = true
	}
	tokenPath := api.TokensPath(cfg.Tenant.APIVersion) + "/{id}"
	var out []string
	if used[policy.ActionDelete] {
		out = append(out, fmt.Sprintf("delete  DELETE %s, one per token, any owner's", tokenPath))
	}
	if used[policy.ActionExpire] {
		out = append(out, fmt.Sprintf("expire  PATCH %s (tenant.bulkApiVersion %s), up to %d tokens per request, any owner's",
			api.BulkPath, cfg.Tenant.BulkAPIVersion, api.MaxBulkIDs))
	}
	if used[policy.ActionPatch] {
		out = append(out,
			fmt.Sprintf("patch   PATCH %s, one per token, only for tokens of patjanitor's own identity (the owner of its PAT,", tokenPath),
			"        from the listing or GET ?owner-id=me); other owners' tokens are needs-owner: no request, the owner is told")
	}
	if used[policy.ActionReport] {
		out = append(out, "report  no request")
	}
	return out
}

// patchWarnings warns about each enforce-mode patch policy that can match
// tokens of other owners: on those, a real tenant refuses the PATCH, so they
// end up needs-owner and the policy does not do what its author expects.
//
// validate is offline and cannot know patjanitor's own identity (the owner
// of the PAT in the tenant; the config has only the PAT's id), so the only
// evidence that a policy is limited to that identity is match.ownerIds with
// exactly one id. Without ownerIds the policy matches every owner; with
// several ids at most one of them is the own identity.
func patchWarnings(cfg *policy.Config) []string {
	var out []string
	for i, p := range cfg.Policies {
		if p.Action != policy.ActionPatch || p.Mode != policy.ModeEnforce || len(p.Match.OwnerIDs) == 1 {
			continue
		}
		scope := "matches tokens of every owner"
		if len(p.Match.OwnerIDs) > 1 {
			scope = fmt.Sprintf("matches tokens of %d owners (ownerIds %s), at most one of them patjanitor's own identity", len(p.Match.OwnerIDs), strings.Join(p.Match.OwnerIDs, ", "))
		}
		out = append(out, fmt.Sprintf("warning: %s: policies[%d] %q: enforce-mode patch %s: %s, so on other owners' tokens the item is needs-owner and no request is sent. "+
			"Restrict it with match.ownerIds to patjanitor's own identity, or use action: expire, or grace with action: delete (docs/policies.md, \"Least privilege\")",
			cfg.File, i, p.Name, scope, janitor.ReasonNeedsOwner))
	}
	return out
}
