package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/pat"
)

func TestAPIClientPolicyValidation(t *testing.T) {
	for _, tc := range []struct{ name, pol, want string }{
		{"owner condition", "resource: apiClients\n    match: {ownerIds: [a]}\n    action: report", "match.ownerIds: does not exist for resource: apiClients"},
		{"neverExpires", "resource: apiClients\n    match: {neverExpires: true}\n    action: report", "match.neverExpires: does not exist for resource: apiClients"},
		{"patch action", "resource: apiClients\n    match: {neverUsed: true}\n    action: patch", `unknown action "patch" for resource: apiClients`},
		{"delete needs disabledFor", "resource: apiClients\n    match: {neverUsed: true}\n    action: delete", "disabledFor is required"},
		{"grace without receivers", "resource: apiClients\n    match: {neverUsed: true}\n    action: disable\n    grace: 7d", "grace: needs notify.apiClients"},
		{"grace on report", "resource: apiClients\n    match: {neverUsed: true}\n    action: report\n    grace: 7d", "grace: has no meaning for action: report"},
		{"grace zero", "resource: apiClients\n    match: {neverUsed: true}\n    action: disable\n    grace: 0s", "grace: must be greater than 0"},
		{"enabled with delete", "resource: apiClients\n    match: {enabled: true}\n    action: delete\n    disabledFor: 1d", "contradicts action: delete"},
		{"bad type", "resource: apiClients\n    match: {type: SECRET}\n    action: report", `unknown type "SECRET"`},
		{"bad grant", "resource: apiClients\n    match: {grantTypes: {any: [PASSWORD]}}\n    action: report", `unknown grant type "PASSWORD"`},
		{"token with client condition", "match: {enabled: false}\n    action: report", "match.enabled: exists only for resource: apiClients"},
		{"token disable", "match: {neverUsed: true}\n    action: disable", "disable is an action of resource: apiClients"},
		{"bad resource", "resource: roles\n    match: {neverUsed: true}\n    action: report", `unknown resource "roles"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte("policies:\n  - name: p1\n    "+tc.pol+"\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "p1") {
				t.Fatalf("err = %v, want it to name policy p1 and say %q", err, tc.want)
			}
		})
	}
}

func TestAPIClientPoliciesAreKeptApart(t *testing.T) {
	cfg, err := Parse("p.yaml", []byte(`policies:
  - name: tokens
    match: {unusedFor: 90d}
    action: delete
  - name: clients
    resource: apiClients
    match: {neverUsed: true, grantTypes: {any: [CLIENT_CREDENTIALS]}}
    action: delete
    disabledFor: 14d
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Policies) != 1 || cfg.Policies[0].Name != "tokens" || len(cfg.ClientPolicies) != 1 || cfg.ClientPolicies[0].Name != "clients" {
		t.Fatalf("policies %v, client policies %v", cfg.Policies, cfg.ClientPolicies)
	}
	if got := cfg.Only("clients"); len(got.Policies) != 0 || len(got.ClientPolicies) != 1 {
		t.Fatalf("Only(clients) = %v / %v", got.Policies, got.ClientPolicies)
	}
	if got := cfg.ForceReport(); got.ClientPolicies[0].Mode != ModeReport {
		t.Fatal("ForceReport left an apiClients policy in enforce")
	}
}

func TestNotifyAPIClientsNamesReceivers(t *testing.T) {
	_, err := Parse("p.yaml", []byte(`notify:
  receivers:
    - name: iam
      webhook: {urlEnv: U, hmacSecretEnv: K}
  apiClients: [iam, nobody]
policies:
  - name: p1
    resource: apiClients
    match: {neverUsed: true}
    action: disable
`))
	if err == nil || !strings.Contains(err.Error(), `notify.apiClients[1]: no receiver named "nobody"`) {
		t.Fatalf("err = %v", err)
	}
}

// A config (or a schedule's part of it) without token policies needs no
// token listing, also with maxActionsPercent; the API client listing still
// is one unfiltered call for the percentage.
func TestListingsWithoutTokenPolicies(t *testing.T) {
	cfg, err := Parse("p.yaml", []byte(`limits: {maxActionsPercent: 10}
notify:
  receivers:
    - name: iam
      webhook: {urlEnv: U, hmacSecretEnv: K}
  apiClients: [iam]
policies:
  - name: tokens
    match: {unusedFor: 90d}
    action: delete
    schedule: "@weekly"
  - name: clients
    resource: apiClients
    match: {neverUsed: true}
    action: disable
    grace: 7d
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientPolicies[0].Grace != 7*Day {
		t.Fatalf("grace = %v", cfg.ClientPolicies[0].Grace)
	}
	only := cfg.Only("clients")
	if got := only.Listings(testNow); got != nil {
		t.Fatalf("token listings of a clients-only config = %v, want none", got)
	}
	if got := only.ClientListings(testNow); len(got) != 1 || got[0].Kind != pat.ListAll {
		t.Fatalf("client listings = %v, want one unfiltered", got)
	}
	if got := cfg.Only("tokens").Listings(testNow); len(got) != 1 || got[0].Kind != pat.ListAll {
		t.Fatalf("token listings with maxActionsPercent = %v, want one unfiltered", got)
	}
	if !slices.Equal(only.FileClientPolicies(), []string{"clients"}) {
		t.Fatalf("FileClientPolicies = %v", only.FileClientPolicies())
	}
}
