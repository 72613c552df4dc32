package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/patjanitor/patjanitor/internal/audit"
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
	for _, it := range p.Items.All() {
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

// journalRecords reads every record of the journal (verifying the chain).
func journalRecords(t *testing.T, path string) []audit.Record {
	t.Helper()
	var recs []audit.Record
	if _, err := audit.VerifyPath(path, audit.VerifyOptions{Each: func(r audit.Record) error { recs = append(recs, r); return nil }}); err != nil {
		t.Fatalf("audit verify %s: %v", path, err)
	}
	return recs
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestApplyAcceptGuardrail is the PatjanitorGuardrailTripped runbook: a saved
// plan whose maxActionsPerRun tripped is refused (naming the way forward);
// the override needs a saved plan, a guardrail that tripped, and a reason;
// with it, apply deletes exactly the plan's tokens and the journal's
// run-start records the approved planHash, the file's SHA-256, the accepted
// guardrail, the OS user and the reason, which audit verify shows.
func TestApplyAcceptGuardrail(t *testing.T) {
	e := newWF(t, `limits: {maxActionsPerRun: 2, maxActionsPercent: 0, maxActionsPerOwner: 5}
policies:
  - {name: unused-90d, mode: enforce, match: {unusedFor: 90d}, action: delete}
`, idnsim.Options{})
	stale := []string{"stale-1", "stale-2", "stale-3", "stale-4"}
	for i, id := range stale {
		e.add(id, fmt.Sprintf("o%d", i), 400*wfDay, 200*wfDay)
	}
	e.add("fresh", "o9", 10*wfDay, wfDay)
	planPath := filepath.Join(e.dir, "plan.json")
	if code, _, stderr := e.run(nil, "plan", "--out", planPath); code != 0 {
		t.Fatalf("plan: exit %d: %s", code, stderr)
	}
	_, saved, err := plan.ReadFile(planPath)
	if err != nil {
		t.Fatal(err)
	}

	refusals := []struct {
		args []string
		want string
	}{
		{[]string{"apply", planPath, "--auto-approve"}, "--accept-guardrail maxActionsPerRun"},
		{[]string{"apply", planPath, "--auto-approve", "--accept-guardrail", "maxActionsPerRun"}, "needs --reason"},
		{[]string{"apply", "--auto-approve", "--accept-guardrail", "maxActionsPerRun", "--reason", "x"}, "needs a saved plan"},
		{[]string{"apply", planPath, "--auto-approve", "--accept-guardrail", "maxActionsPerOwner", "--reason", "x"}, "did not trip"},
		{[]string{"apply", planPath, "--auto-approve", "--accept-guardrail", "maxActions", "--reason", "x"}, `no guardrail "maxActions"`},
		{[]string{"apply", planPath, "--auto-approve", "--reason", "x"}, "--reason goes with --accept-guardrail"},
	}
	for _, r := range refusals {
		code, stdout, stderr := e.run(nil, r.args...)
		if code != 1 || !strings.Contains(stderr, r.want) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q\n%s", r.args[2:], code, stderr, r.want, stdout)
		}
	}
	if m := e.mutations(); len(m) != 0 {
		t.Fatalf("a refused apply sent %d mutations", len(m))
	}

	const reason = "reviewed in CHG-1234: the four stale CI tokens"
	code, stdout, stderr := e.run(nil, "apply", planPath, "--auto-approve", "--accept-guardrail", "maxActionsPerRun", "--reason", reason)
	if code != 0 {
		t.Fatalf("apply with the accepted guardrail: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if got := deletedIDs(e.sim.Requests()); !slices.Equal(got, stale) {
		t.Fatalf("deleted %v, want %v", got, stale)
	}
	if !e.present("fresh") {
		t.Fatal("a token outside the plan was deleted")
	}
	jpath := filepath.Join(e.state, JournalFile)
	var start *audit.Record
	for _, r := range journalRecords(t, jpath) {
		if r.Kind == audit.KindRunStart {
			start = &r
		}
	}
	if start == nil || start.Plan == nil {
		t.Fatalf("no run-start with the approved plan: %+v", start)
	}
	want := audit.PlanRef{
		PlanHash: saved.PlanHash, File: planPath, FileSHA256: fileSHA256(t, planPath),
		AcceptedGuardrails: []audit.AcceptedGuardrail{{Name: "maxActionsPerRun", Limit: 2, Wanted: 4, By: osUser(), Reason: reason}},
	}
	if !reflect.DeepEqual(*start.Plan, want) {
		t.Errorf("run-start plan\n got %+v\nwant %+v", *start.Plan, want)
	}
	code, stdout, stderr = e.run(nil, "audit", "verify")
	if code != 0 {
		t.Fatalf("audit verify: exit %d: %s", code, stderr)
	}
	for _, s := range []string{saved.PlanHash, want.FileSHA256, "accepted guardrail maxActionsPerRun (limit 2, wanted 4) by " + osUser() + ": " + reason} {
		if !strings.Contains(stdout, s) {
			t.Errorf("audit verify output lacks %q:\n%s", s, stdout)
		}
	}
}

// TestApplyPlanRecordsApprovedPlanHash: a plain apply PLAN (no guardrail)
// records the approved planHash, which apply's re-sealed plan does not
// carry, so that grep of the approved hash finds the run.
func TestApplyPlanRecordsApprovedPlanHash(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	planPath := filepath.Join(e.dir, "plan.json")
	if code, _, stderr := e.run(nil, "plan", "--out", planPath); code != 0 {
		t.Fatal(stderr)
	}
	_, saved, err := plan.ReadFile(planPath)
	if err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := e.run(nil, "apply", planPath, "--auto-approve"); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	journal, err := os.ReadFile(filepath.Join(e.state, JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(journal, []byte(`"planHash":"`+saved.PlanHash+`"`)) {
		t.Errorf("the journal does not record the approved planHash %s:\n%s", saved.PlanHash, journal)
	}
	if !bytes.Contains(journal, []byte(`"fileSha256":"`+fileSHA256(t, planPath)+`"`)) {
		t.Errorf("the journal does not record the plan file's sha256")
	}
}

// TestPlanAuthFailure: with a wrong client secret, plan exits 1 with an
// error that leads with the authentication failure and its likely causes,
// and --out writes no plan document (a failed plan is never something to
// apply).
func TestPlanAuthFailure(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	t.Setenv("PATJANITOR_CLIENT_SECRET", "wrong-secret-value")
	out := filepath.Join(e.dir, "plan.json")
	code, stdout, stderr := e.run(nil, "plan", "--out", out)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	if !strings.HasPrefix(stderr, "The plan failed: nothing was written to "+out) {
		t.Errorf("stderr does not say --out was not written:\n%s", stderr)
	}
	if !strings.Contains(stderr, "patjanitor: authentication failed: the tenant refused patjanitor's credentials") ||
		!strings.Contains(stderr, "client secret is wrong") {
		t.Errorf("the error does not lead with the authentication failure:\n%s", stderr)
	}
	if strings.Contains(stderr+stdout, "wrong-secret-value") {
		t.Error("the secret was printed")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed plan was saved to --out: %v", err)
	}
	if m := e.mutations(); len(m) != 0 {
		t.Errorf("%d mutations", len(m))
	}
}

// TestApplyAllDroppedDetailedExitcode: apply PLAN whose every item was
// dropped (the token gone, another used again) exits 2 with
// --detailed-exitcode (0 without), and says which were dropped and why.
func TestApplyAllDroppedDetailedExitcode(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.add("stale-2", "o2", 400*wfDay, 200*wfDay)
	// Two plans: a saved plan is executed once, also when all of it was
	// dropped.
	var planPaths []string
	for _, name := range []string{"plan.json", "plan2.json"} {
		planPath := filepath.Join(e.dir, name)
		if code, _, stderr := e.run(nil, "plan", "--out", planPath); code != 0 {
			t.Fatal(stderr)
		}
		planPaths = append(planPaths, planPath)
	}
	e.sim.Remove("stale-1")
	e.add("stale-2", "o2", 400*wfDay, wfDay) // used yesterday
	for i, c := range []struct {
		args []string
		code int
	}{{[]string{"--detailed-exitcode"}, 2}, {nil, 0}} {
		code, stdout, stderr := e.run(nil, append([]string{"apply", planPaths[i], "--auto-approve"}, c.args...)...)
		if code != c.code {
			t.Fatalf("%v: exit %d, want %d\n%s%s", c.args, code, c.code, stdout, stderr)
		}
		for _, want := range []string{"DROPPED  stale-1", "gone: the token no longer exists", "DROPPED  stale-2", "used again"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("output lacks %q:\n%s", want, stdout)
			}
		}
		if !strings.Contains(stderr, "Every one of the 2 approved actions was dropped") {
			t.Errorf("stderr: %s", stderr)
		}
	}
	if m := e.mutations(); len(m) != 0 {
		t.Errorf("%d mutations", len(m))
	}
}
