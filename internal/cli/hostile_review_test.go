package cli

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/idnsim"
)

// pubKeyOf returns the "keytype base64" of the allowed signers line whose
// principal is principal.
func pubKeyOf(t *testing.T, signersFile, principal string) string {
	t.Helper()
	data, err := os.ReadFile(signersFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == principal {
			return f[len(f)-2] + " " + f[len(f)-1]
		}
	}
	t.Fatalf("no key of %s in %s", principal, signersFile)
	return ""
}

// A reviewer's key is revoked (revokedKeysFile) while serve runs, after two
// reviewers signed a plan: the revocation must hold at apply time, for a plan
// moved into approved/ and for one POSTed to /approve. serve read the
// approvals files once per config generation, and only the config file's
// change reloads it, so a compromised key went on counting until someone
// also touched policies.yaml.
func TestHostileServeKeyRevokedWhileRunning(t *testing.T) {
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	e.addTokens("stale", 2, 0)
	r, signers := newReviewers(t, e.dir)
	revoked := filepath.Join(e.dir, "revoked_keys")
	if err := os.WriteFile(revoked, []byte("# none yet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(e.configYAML("@daily", servePolicy("stale", "enforce", "", "stale", true)),
		"policies:\n", "approvals:\n  allowedSignersFile: "+signers+"\n  revokedKeysFile: "+revoked+"\n  required: 2\npolicies:\n", 1)
	cfgPath := e.writeConfig(cfg)
	plans := filepath.Join(e.dir, "plans")
	p := startInProcess(t, e, cfgPath, serveFlags{plansDir: plans, applyApproved: true, enableLifecycle: true})

	planFile := filepath.Join(e.dir, "plan.json")
	for _, args := range [][]string{{"plan", "--out", planFile}, {"approve", planFile, "--key", r.alice}, {"approve", planFile, "--key", r.bob}} {
		argv := append([]string{"-c", cfgPath, "--state-dir", filepath.Join(e.dir, "reviewer-state")}, args...)
		if code := Main(t.Context(), argv, Streams{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}); code != 0 {
			t.Fatalf("%v: exit %d", args, code)
		}
	}
	// Bob's key is compromised: the admin revokes it. policies.yaml is not
	// touched (nothing in it changed).
	if err := os.WriteFile(revoked, []byte(pubKeyOf(t, signers, "bob@acme.com")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	code, body := postApprove(t, p.base, planFile)
	if code != http.StatusBadRequest || !strings.Contains(body, "revoked") {
		t.Errorf("POST /approve of a plan signed with a revoked key: %d %s", code, body)
	}

	dst := filepath.Join(plans, "approved", "reviewed.json")
	if err := os.Rename(planFile+".sig", dst+".sig"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(planFile, dst); err != nil {
		t.Fatal(err)
	}
	var settled string
	serveWait(t, "the plan dropped in approved/ settled", 20*time.Second, func() bool {
		for _, to := range []string{"rejected", "applied"} {
			if _, err := os.Stat(filepath.Join(plans, to, "reviewed.json.result")); err == nil {
				settled = to
				return true
			}
		}
		return false
	})
	if m := idnsim.Mutations(e.sim.Requests()); len(m) != 0 {
		t.Errorf("a plan with one valid signature (the other's key revoked) sent %v", m)
	}
	result, _ := os.ReadFile(filepath.Join(plans, settled, "reviewed.json.result"))
	if settled != "rejected" || !strings.Contains(string(result), "the key is revoked") {
		t.Errorf("the plan went to %s/: %s", settled, result)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	runs := journalRuns(t, p.journal)
	if len(runs) != 1 || !strings.Contains(runs[0].Plan.Refused, "revoked") {
		t.Fatalf("journal plan runs %+v, want one refused run naming the revoked key", runs)
	}
}
