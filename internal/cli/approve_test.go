package cli

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/patjanitor/patjanitor/internal/approval"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
)

// sshKey writes a fresh private key in OpenSSH format and returns its path
// and its allowed-signers key text.
func sshKey(t *testing.T, dir, name string, priv crypto.Signer) (keyFile, authKey string) {
	t.Helper()
	signer, err := ssh.NewSignerFromSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		t.Fatal(err)
	}
	keyFile = filepath.Join(dir, name+".key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return keyFile, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
}

type reviewers struct{ alice, bob, mallory string }

func newReviewers(t *testing.T, dir string) (reviewers, string) {
	t.Helper()
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, malPriv, _ := ed25519.GenerateKey(rand.Reader)
	var r reviewers
	var aliceKey, bobKey string
	r.alice, aliceKey = sshKey(t, dir, "alice", edPriv)
	r.bob, bobKey = sshKey(t, dir, "bob", ecPriv)
	r.mallory, _ = sshKey(t, dir, "mallory", malPriv)
	signers := filepath.Join(dir, "allowed_signers")
	content := fmt.Sprintf("alice@acme.com %s\nbob@acme.com namespaces=\"patjanitor-plan\" %s\n", aliceKey, bobKey)
	if err := os.WriteFile(signers, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return r, signers
}

const approvalPolicies = `approvals:
  allowedSignersFile: allowed_signers
  required: 2
limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 0}
policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
`

// journalRuns returns the run-start records that name a saved plan.
func journalRuns(t *testing.T, path string) []audit.Record {
	t.Helper()
	var out []audit.Record
	for _, r := range journalRecords(t, path) {
		if r.Kind == audit.KindRunStart && r.Plan != nil {
			out = append(out, r)
		}
	}
	return out
}

// The two-person rule end to end on the simulated tenant: apply without a
// plan is refused, one signature is refused (and journaled), a signature by
// a key not in allowed signers does not count, two reviewers' signatures let
// apply execute exactly the plan, and the journal names both.
func TestApprovalsTwoPersonRule(t *testing.T) {
	e := newWF(t, approvalPolicies, idnsim.Options{})
	r, _ := newReviewers(t, e.dir)
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.add("stale-2", "o2", 400*wfDay, -1)
	e.add("fresh", "o3", 10*wfDay, wfDay)
	planFile := filepath.Join(e.dir, "plan.json")
	journal := filepath.Join(e.state, JournalFile)

	if code, stdout, stderr := e.run(nil, "validate"); code != 0 || !strings.Contains(stdout, "2 distinct reviewers for delete, expire, patch, disable; 2 signers") {
		t.Fatalf("validate: %d\n%s%s", code, stdout, stderr)
	}
	code, _, stderr := e.run(nil, "apply", "--auto-approve")
	if code != 1 || !strings.Contains(stderr, "approvals are required for delete") || !strings.Contains(stderr, "patjanitor approve plan.json") {
		t.Fatalf("apply without a plan: %d %s", code, stderr)
	}
	if code, _, stderr := e.run(nil, "plan", "--out", planFile); code != 0 {
		t.Fatalf("plan: %d %s", code, stderr)
	}

	code, stdout, stderr := e.run(nil, "approve", planFile, "--key", r.alice, "--reason", "checked both deletes")
	if code != 0 || !strings.Contains(stdout, "Signed "+planFile) || !strings.Contains(stdout, "2 enforce-mode actions") || !strings.Contains(stdout, "holds 1 signature.") {
		t.Fatalf("approve: %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := e.run(nil, "approve", planFile, "--key", r.mallory); code != 0 {
		t.Fatalf("approve by mallory: %d %s", code, stderr)
	}
	code, _, stderr = e.run(nil, "apply", planFile, "--auto-approve")
	if code != 1 || !strings.Contains(stderr, "needs 2 approvals by distinct principals and has 1 valid") ||
		!strings.Contains(stderr, "signature 1 (line 1) by alice@acme.com") || !strings.Contains(stderr, "signature 2 (line ") ||
		!strings.Contains(stderr, "not in the allowed signers file") {
		t.Fatalf("apply with one valid signature: %d %s", code, stderr)
	}
	// Each signature's verdict on a line of its own, as docs/operations.md
	// shows it, not one line with a visible \n between them.
	if strings.Contains(stderr, `\n`) || !strings.Contains(stderr, "\n  signature 1 (line 1) by alice@acme.com") {
		t.Errorf("apply with one valid signature: the verdicts are not one per line:\n%s", stderr)
	}
	if m := e.mutations(); len(m) != 0 {
		t.Fatalf("a refused plan sent %v", m)
	}
	runs := journalRuns(t, journal)
	if len(runs) != 1 || runs[0].Plan.Refused == "" || len(runs[0].Plan.Approvals) != 1 || runs[0].Plan.Approvals[0].Principal != "alice@acme.com" {
		t.Fatalf("the refusal is not journaled: %+v", runs)
	}

	if code, _, stderr := e.run(nil, "approve", planFile, "--key", r.bob); code != 0 {
		t.Fatalf("approve by bob: %d %s", code, stderr)
	}
	code, stdout, stderr = e.run(nil, "apply", planFile, "--auto-approve")
	if code != 0 {
		t.Fatalf("apply with two approvals: %d\n%s%s", code, stdout, stderr)
	}
	var deleted []string
	for _, m := range e.mutations() {
		deleted = append(deleted, m.Method+" "+m.Path)
	}
	sort.Strings(deleted) // the deletes run concurrently
	if want := "DELETE /v3/personal-access-tokens/stale-1,DELETE /v3/personal-access-tokens/stale-2"; strings.Join(deleted, ",") != want {
		t.Fatalf("sent %v, want %s", deleted, want)
	}
	if !e.present("fresh") {
		t.Fatal("a token outside the plan was deleted")
	}

	runs = journalRuns(t, journal)
	if len(runs) != 2 {
		t.Fatalf("%d plan runs journaled", len(runs))
	}
	applied := runs[1].Plan
	data, _ := os.ReadFile(planFile)
	var saved struct {
		PlanHash string `json:"planHash"`
	}
	_ = json.Unmarshal(data, &saved)
	if applied.Refused != "" || applied.FileSHA256 != approval.FileDigest(data) || applied.PlanHash != saved.PlanHash || len(applied.Approvals) != 2 ||
		applied.Approvals[0].Principal != "alice@acme.com" || applied.Approvals[0].Reason != "checked both deletes" ||
		applied.Approvals[1].Principal != "bob@acme.com" || applied.Approvals[0].SignedAt == nil {
		t.Fatalf("run-start plan %+v", applied)
	}

	code, stdout, _ = e.run(nil, "audit", "verify")
	if code != 0 || !strings.Contains(stdout, "REFUSED plan") || !strings.Contains(stdout, "approved by bob@acme.com (SHA256:") ||
		!strings.Contains(stdout, "applied plan "+saved.PlanHash+", file "+planFile+" "+applied.FileSHA256) {
		t.Fatalf("audit verify: %d\n%s", code, stdout)
	}
	code, stdout, stderr = e.run(nil, "audit", "show", runs[1].RunID)
	if code != 0 || !strings.Contains(stdout, "approved by alice@acme.com") || !strings.Contains(stdout, ": checked both deletes") ||
		!regexp.MustCompile(`outcome +stale-2 +applied`).MatchString(stdout) || !strings.Contains(stdout, "intent     stale-1  DELETE /v3/personal-access-tokens/stale-1") {
		t.Fatalf("audit show: %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := e.run(nil, "audit", "show", "no-such-run"); code != 1 || !strings.Contains(stderr, "no run no-such-run") {
		t.Fatalf("audit show of an unknown run: %d %s", code, stderr)
	}
}

// A plan edited after both reviewers signed is refused, and so is one whose
// signatures were made over another plan; nothing is sent.
func TestApprovalsEditedPlanRefused(t *testing.T) {
	e := newWF(t, approvalPolicies, idnsim.Options{})
	r, _ := newReviewers(t, e.dir)
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.add("stale-2", "o2", 400*wfDay, 200*wfDay)
	planFile := filepath.Join(e.dir, "plan.json")
	if code, _, stderr := e.run(nil, "plan", "--out", planFile); code != 0 {
		t.Fatalf("plan: %d %s", code, stderr)
	}
	for _, k := range []string{r.alice, r.bob} {
		if code, _, stderr := e.run(nil, "approve", planFile, "--key", k); code != 0 {
			t.Fatalf("approve: %d %s", code, stderr)
		}
	}
	// Whitespace only: the planHash still matches, the signed bytes do not.
	data, _ := os.ReadFile(planFile)
	if err := os.WriteFile(planFile, append(data, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := e.run(nil, "apply", planFile, "--auto-approve")
	if code != 1 || strings.Count(stderr, "does not verify over this plan file") != 2 {
		t.Fatalf("apply of an edited plan: %d %s", code, stderr)
	}
	if m := e.mutations(); len(m) != 0 {
		t.Fatalf("an edited plan sent %v", m)
	}
	// A malformed signature file is a clear error too.
	if err := os.WriteFile(planFile+".sig", []byte("not a signature\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = e.run(nil, "apply", planFile, "--auto-approve")
	if code != 1 || !strings.Contains(stderr, "plan.json.sig:1: unexpected text outside a signature") {
		t.Fatalf("apply with a malformed .sig: %d %s", code, stderr)
	}
	if m := e.mutations(); len(m) != 0 {
		t.Fatalf("sent %v", m)
	}
}

// An allowed signers file with a syntax error fails validate (file:line), so
// the service's ExecStartPre stops it before it runs.
func TestApprovalsValidateSignersFile(t *testing.T) {
	e := newWF(t, approvalPolicies, idnsim.Options{})
	if err := os.WriteFile(filepath.Join(e.dir, "allowed_signers"), []byte("alice@acme.com ssh-ed25519 AAAA-broken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := e.run(nil, "validate")
	if code != 1 || !strings.Contains(stderr, "approvals.allowedSignersFile: "+filepath.Join(e.dir, "allowed_signers")+":1: key:") {
		t.Fatalf("validate: %d %s", code, stderr)
	}
}
