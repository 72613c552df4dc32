package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/plan"
)

// enforceOverlay is the shipped enforce overlay, relative to this package.
const enforceOverlay = "../../deploy/kubernetes/overlays/enforce"

// overlayPolicies builds the overlay with kustomize (the library kubectl
// uses) and returns the policies.yaml its ConfigMap carries: exactly what a
// pod deployed from the overlay runs with.
func overlayPolicies(t *testing.T, dir string) []byte {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	for _, r := range rm.Resources() {
		if r.GetKind() != "ConfigMap" || r.GetName() != "patjanitor-policies" {
			continue
		}
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		var cm struct {
			Data map[string]string `yaml:"data"`
		}
		if err := yaml.Unmarshal(b, &cm); err != nil {
			t.Fatal(err)
		}
		if cm.Data["policies.yaml"] == "" {
			t.Fatalf("%s: the ConfigMap has no policies.yaml", dir)
		}
		return []byte(cm.Data["policies.yaml"])
	}
	t.Fatalf("%s: no ConfigMap patjanitor-policies", dir)
	return nil
}

// useOverlayConfig points e at the enforce overlay's policies, unchanged:
// the tenant URL and client id come from the environment, as they do for a
// pod (the Secret's env), and the secret from PATJANITOR_CLIENT_SECRET.
func useOverlayConfig(t *testing.T, e *wfEnv) {
	t.Helper()
	e.cfgPath = filepath.Join(e.dir, "policies.yaml")
	if err := os.WriteFile(e.cfgPath, overlayPolicies(t, enforceOverlay), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATJANITOR_TENANT_URL", e.url)
	t.Setenv("PATJANITOR_CLIENT_ID", e.admin.ClientID)
}

// TestEnforceOverlayEnforcesNeverUsed30d: with the shipped enforce overlay,
// the enforce-mode never-used-30d wins the never-used tokens that the
// report-mode unused-90d (listed first, also a delete) matches too, and apply
// deletes them. Before the precedence rule put enforce mode first, unused-90d
// won them all and apply deleted nothing.
func TestEnforceOverlayEnforcesNeverUsed30d(t *testing.T) {
	e := newWF(t, "", idnsim.Options{})
	useOverlayConfig(t, e)
	// Three never-used tokens older than 90 days (both delete policies
	// match), one never used for 40 days (only never-used-30d), one used
	// 100 days ago (only unused-90d, report), and enough recently used
	// tokens that the overlay's 1% limit allows four actions.
	never := []string{"never-a", "never-b", "never-c"}
	for i, id := range never {
		e.add(id, fmt.Sprintf("owner-%d", i), 120*wfDay, -1)
	}
	e.add("never-40d", "owner-9", 40*wfDay, -1)
	e.add("stale-used", "owner-8", 400*wfDay, 100*wfDay)
	for i := range 400 {
		e.add(fmt.Sprintf("busy-%03d", i), fmt.Sprintf("busy-owner-%d", i%50), 200*wfDay, wfDay)
	}

	code, stdout, stderr := e.run(nil, "plan", "-o", "json", "--detailed-exitcode")
	if code != 2 {
		t.Fatalf("plan: exit %d, want 2 (enforce actions pending)\n%s", code, stderr)
	}
	p, err := plan.Read(strings.NewReader(stdout))
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]plan.Item{}
	for _, it := range p.Items {
		byID[it.TokenID] = it
	}
	for _, id := range never {
		it := byID[id]
		if it.Policy != "never-used-30d" || it.Mode != plan.ModeEnforce || it.Action != "delete" || !slices.Equal(it.AlsoMatched, []string{"unused-90d"}) {
			t.Errorf("%s: policy %s mode %s action %s alsoMatched %v; want never-used-30d enforce delete, also matched [unused-90d]",
				id, it.Policy, it.Mode, it.Action, it.AlsoMatched)
		}
	}
	if it := byID["never-40d"]; it.Policy != "never-used-30d" || len(it.AlsoMatched) != 0 {
		t.Errorf("never-40d: %+v", it)
	}
	if it := byID["stale-used"]; it.Policy != "unused-90d" || it.Mode != plan.ModeReport {
		t.Errorf("stale-used: %+v", it)
	}
	for _, g := range p.Guardrails {
		if g.Tripped {
			t.Fatalf("guardrail %s tripped: %+v", g.Name, g)
		}
	}

	code, stdout, stderr = e.run(nil, "apply", "--auto-approve")
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, stdout, stderr)
	}
	want := append(slices.Clone(never), "never-40d")
	slices.Sort(want)
	if got := deletedIDs(e.sim.Requests()); !slices.Equal(got, want) {
		t.Fatalf("the tenant received deletes of %v, want %v", got, want)
	}
	if m := e.mutations(); len(m) != len(want) {
		t.Errorf("%d mutations, want %d", len(m), len(want))
	}
	if !e.present("stale-used") {
		t.Error("the report-mode unused-90d deleted stale-used")
	}
	kinds := journalKinds(t, filepath.Join(e.state, JournalFile))
	if kinds["intent"] != len(want) || kinds["outcome"] != len(want) {
		t.Errorf("journal: %v", kinds)
	}
}
