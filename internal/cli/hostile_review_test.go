package cli

import (
	"bytes"
	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/approval"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/plandir"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
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
	cfg := withApprovals(e.configYAML("@daily", servePolicy("stale", "enforce", "", "stale", true)), signers, "  revokedKeysFile: "+revoked+"\n")
	cfgPath := e.writeConfig(cfg)
	plans := filepath.Join(e.dir, "plans")
	p := startInProcess(t, e, cfgPath, serveFlags{plansDir: plans, applyApproved: true, enableLifecycle: true})

	planFile := signAndDrop(t, e, cfgPath, r.alice, r.bob)
	// Bob's key is compromised: the admin revokes it. policies.yaml is not
	// touched (nothing in it changed).
	if err := os.WriteFile(revoked, []byte(pubKeyOf(t, signers, "bob@acme.com")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	code, body := postApprove(t, p.base, planFile)
	if code != http.StatusBadRequest || !strings.Contains(body, "revoked") {
		t.Errorf("POST /approve of a plan signed with a revoked key: %d %s", code, body)
	}

	settled, result := moveApproved(t, plans, planFile, "reviewed.json")
	if m := idnsim.Mutations(e.sim.Requests()); len(m) != 0 {
		t.Errorf("a plan with one valid signature (the other's key revoked) sent %v", m)
	}
	if settled != "rejected" || !strings.Contains(result, "the key is revoked") {
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

// signAndDrop makes a plan with the reviewers' CLI, has each key sign it and
// returns the plan file (not yet in approved/).
func signAndDrop(t *testing.T, e *serveEnv, cfgPath string, keys ...string) string {
	t.Helper()
	planFile := filepath.Join(e.dir, "plan.json")
	args := [][]string{{"plan", "--out", planFile}}
	for _, k := range keys {
		args = append(args, []string{"approve", planFile, "--key", k})
	}
	for _, a := range args {
		reviewerRun(t, e, cfgPath, a...)
	}
	return planFile
}

// reviewerRun runs one command as a reviewer would: the same config, its
// own state directory.
func reviewerRun(t *testing.T, e *serveEnv, cfgPath string, args ...string) {
	t.Helper()
	var errb bytes.Buffer
	argv := append([]string{"-c", cfgPath, "--state-dir", filepath.Join(e.dir, "reviewer-state")}, args...)
	if code := Main(t.Context(), argv, Streams{In: strings.NewReader(""), Out: io.Discard, Err: &errb}); code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, errb.String())
	}
}

// withApprovals puts an approvals section (two signatures of the allowed
// signers file, and the extra lines) before cfg's policies.
func withApprovals(cfg, signers, extra string) string {
	return strings.Replace(cfg, "policies:\n", "approvals:\n  allowedSignersFile: "+signers+"\n"+extra+"  required: 2\npolicies:\n", 1)
}

// dropApproved moves a signed plan into approved/ as name, the .sig first
// (serve looks at a plan once it is there), and returns its new path.
func dropApproved(t *testing.T, plans, planFile, name string) string {
	t.Helper()
	dst := filepath.Join(plans, "approved", name)
	if err := os.Rename(planFile+".sig", dst+".sig"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(planFile, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// moveApproved moves a signed plan into approved/ as name (the .sig first)
// and waits until serve settled it; it returns where it went and the .result.
func moveApproved(t *testing.T, plans, planFile, name string) (string, string) {
	t.Helper()
	dropApproved(t, plans, planFile, name)
	return awaitSettled(t, plans, name)
}

// awaitSettled waits until serve moved the approved plan name to rejected/
// or applied/; it returns where it went and the .result.
func awaitSettled(t *testing.T, plans, name string) (string, string) {
	t.Helper()
	var settled string
	serveWait(t, name+" settled", 20*time.Second, func() bool {
		for _, to := range []string{"rejected", "applied"} {
			if _, err := os.Stat(filepath.Join(plans, to, name+".result")); err == nil {
				settled = to
				return true
			}
		}
		return false
	})
	result, _ := os.ReadFile(filepath.Join(plans, settled, name+".result"))
	return settled, string(result)
}

// A signed plan whose fresh guardrails trip at apply time (the tenant shrank
// since it was signed, so its deletes became a larger share) acts on nothing:
// serve moved it to applied/, counted it as applied and journaled nothing,
// so reviewers and auditors read "applied" for a plan that was refused.
func TestHostileServeApprovedPlanBlockedAtApply(t *testing.T) {
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	e.addTokens("stale", 2, 0)
	fresh := e.addTokens("fresh", 3, time.Hour)
	r, signers := newReviewers(t, e.dir)
	cfg := withApprovals(e.configYAML("@daily", servePolicy("stale", "enforce", "", "stale", true)), signers, "")
	cfg = strings.Replace(cfg, "maxActionsPercent: 100", "maxActionsPercent: 50", 1)
	cfgPath := e.writeConfig(cfg)
	plans := filepath.Join(e.dir, "plans")
	p := startInProcess(t, e, cfgPath, serveFlags{plansDir: plans, applyApproved: true})

	planFile := signAndDrop(t, e, cfgPath, r.alice, r.bob)
	for _, id := range fresh {
		e.sim.Remove(id)
	}
	settled, result := moveApproved(t, plans, planFile, "reviewed.json")
	if m := idnsim.Mutations(e.sim.Requests()); len(m) != 0 {
		t.Fatalf("a plan blocked by its guardrails sent %v", m)
	}
	if settled != "rejected" || !strings.Contains(result, "maxActionsPercent") {
		t.Errorf("the blocked plan went to %s/: %s", settled, result)
	}
	if v := scrape(t, p.base)[`patjanitor_approved_plans_total{reason="none",result="applied"}`]; v != 0 {
		t.Errorf("approved_plans_total applied = %v for a plan that changed nothing", v)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	runs := journalRuns(t, p.journal)
	if len(runs) != 1 || !strings.Contains(runs[0].Plan.Refused, "maxActionsPercent") || len(runs[0].Plan.Approvals) != 2 {
		t.Fatalf("journal plan runs %+v, want one refused run naming the guardrail and both approvals", runs)
	}
}

// A validly signed plan that apply PLAN refuses for another reason (here:
// older than --max-plan-age) must leave the refused attempt in the journal,
// as serve does for the same plan; the CLI journaled only refusals of the
// signatures themselves.
func TestHostileSignedPlanRefusedJournaled(t *testing.T) {
	e := newWF(t, approvalPolicies, idnsim.Options{})
	r, _ := newReviewers(t, e.dir)
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	planFile := filepath.Join(e.dir, "plan.json")
	for _, args := range [][]string{{"plan", "--out", planFile}, {"approve", planFile, "--key", r.alice}, {"approve", planFile, "--key", r.bob}} {
		if code, _, stderr := e.run(nil, args...); code != 0 {
			t.Fatalf("%v: %d %s", args, code, stderr)
		}
	}
	code, _, stderr := e.run(nil, "apply", planFile, "--auto-approve", "--max-plan-age", "1ns")
	if code != 1 || !strings.Contains(stderr, "older than the maximum") {
		t.Fatalf("apply of a stale signed plan: %d %s", code, stderr)
	}
	if m := e.mutations(); len(m) != 0 {
		t.Fatalf("a refused plan sent %v", m)
	}
	runs := journalRuns(t, filepath.Join(e.state, JournalFile))
	if len(runs) != 1 || !strings.Contains(runs[0].Plan.Refused, "older than the maximum") || len(runs[0].Plan.Approvals) != 2 {
		t.Fatalf("journal plan runs %+v, want the refused attempt with both approvals", runs)
	}
}

// Someone who can write to approved/ (every reviewer) drops a plan whose
// text fields carry terminal control sequences; a plan without actions that
// need approval is judged by apply PLAN's checks, whose refusal quotes them.
// The .result file is what reviewers read with cat: it must not carry the
// sequences (nor forge lines of its own).
func TestHostileApprovedPlanResultEscaped(t *testing.T) {
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	e.addTokens("stale", 2, 0)
	_, signers := newReviewers(t, e.dir)
	cfg := withApprovals(e.configYAML("@daily", servePolicy("stale", "report", "", "stale", true)), signers, "")
	cfgPath := e.writeConfig(cfg)
	plans := filepath.Join(e.dir, "plans")
	p := startInProcess(t, e, cfgPath, serveFlags{plansDir: plans, applyApproved: true})

	planFile := signAndDrop(t, e, cfgPath)
	data, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := plan.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	saved.ConfigDigest = "sha256:\x1b]0;owned\x07\x1b[2J\nrun 1: applied 99"
	if err := saved.Seal(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := plan.Write(&buf, saved); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(planFile, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(planFile+".sig", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	settled, result := moveApproved(t, plans, planFile, "hostile.json")
	if settled != "rejected" || !strings.Contains(result, "the plan was made with config") {
		t.Fatalf("the hostile plan went to %s/: %q", settled, result)
	}
	if strings.ContainsAny(result, "\x1b\x07") || strings.Contains(result, "\nrun 1: applied 99") {
		t.Errorf("rejected/hostile.json.result carries the plan's control text: %q", result)
	}
	if m := idnsim.Mutations(e.sim.Requests()); len(m) != 0 {
		t.Fatalf("sent %v", m)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}

// A hostile plan file lists one token twice, the second time with its id in
// another case, and is sealed again (planHash is a checksum, not a
// signature). Ids are one token however they are spelt (invariant 9): the
// plan must be refused as a plan with two actions for one token, and nothing
// sent. The reader's duplicate check compared ids with ==, and apply sent a
// request per spelling.
func TestHostilePlanRecasedDuplicateItem(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-a", "o1", 400*wfDay, 200*wfDay)
	planFile := filepath.Join(e.dir, "plan.json")
	if code, _, stderr := e.run(nil, "plan", "--out", planFile); code != 0 && code != 2 {
		t.Fatalf("plan: %d %s", code, stderr)
	}
	data, _ := os.ReadFile(planFile)
	saved, err := plan.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if saved.Items.Len() != 1 {
		t.Fatalf("plan items %+v", saved.Items.Slice())
	}
	dup := saved.Items.At(0)
	dup.TokenID = strings.ToUpper(dup.TokenID)
	saved.Items.Append(dup)
	if err := saved.Seal(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := plan.Write(&buf, saved); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(planFile, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := e.run(nil, "apply", planFile, "--auto-approve")
	if m := e.mutations(); len(m) != 0 {
		t.Errorf("a plan with one token twice sent %d requests: %v", len(m), m)
	}
	if code != 1 || !strings.Contains(stderr, "STALE-A") || !strings.Contains(stderr, "also items[0]") {
		t.Errorf("apply of a plan with one token twice: %d\n%s%s", code, stdout, stderr)
	}
	// The plan is refused as it is read: no journal is even opened.
	if _, err := os.Stat(filepath.Join(e.state, JournalFile)); err == nil {
		for _, r := range journalRecords(t, filepath.Join(e.state, JournalFile)) {
			if r.Kind == audit.KindIntent {
				t.Errorf("journaled an intent: %+v", r)
			}
		}
	}
}

// A plan path that is a FIFO (or a device, such as /dev/zero) is refused at
// once, for apply and approve alike, with nothing sent: reading it blocked
// forever (a FIFO without a writer) or without bound (/dev/zero). serve
// reads the plans reviewers drop into approved/ the same way, where one can
// be swapped for a FIFO after the directory was listed.
func TestHostilePlanFileNotRegular(t *testing.T) {
	e := newWF(t, approvalPolicies, idnsim.Options{})
	r, _ := newReviewers(t, e.dir)
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	fifo := filepath.Join(e.dir, "plan.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	files := []string{fifo}
	if _, err := os.Stat("/dev/zero"); err == nil {
		files = append(files, "/dev/zero")
	}
	for _, file := range files {
		for _, args := range [][]string{{"apply", file, "--auto-approve"}, {"approve", file, "--key", r.alice}} {
			type result struct {
				code   int
				stderr string
			}
			done := make(chan result, 1)
			go func() {
				code, _, stderr := e.run(nil, args...)
				done <- result{code, stderr}
			}()
			select {
			case res := <-done:
				if res.code != 1 || !strings.Contains(res.stderr, "not a regular file") {
					t.Errorf("%v: %d %s", args, res.code, res.stderr)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("%v: still reading the plan after 20s", args)
			}
		}
	}
	if m := e.mutations(); len(m) != 0 {
		t.Fatalf("sent %v", m)
	}
}

// A reviewer who can write to approved/ drops a plan whose .sig is a FIFO:
// reading the signatures blocked serve's run for good (and with it every
// later run of that schedule). The plan must be rejected as unreadable, the
// refusal journaled, and nothing sent.
func TestHostileApprovedSigIsFIFO(t *testing.T) {
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	e.addTokens("stale", 2, 0)
	r, signers := newReviewers(t, e.dir)
	cfg := withApprovals(e.configYAML("@daily", servePolicy("stale", "enforce", "", "stale", true)), signers, "")
	cfgPath := e.writeConfig(cfg)
	plans := filepath.Join(e.dir, "plans")
	p := startInProcess(t, e, cfgPath, serveFlags{plansDir: plans, applyApproved: true})

	planFile := signAndDrop(t, e, cfgPath, r.alice)
	if err := os.Remove(planFile + ".sig"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(planFile+".sig", 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	settled, result := moveApproved(t, plans, planFile, "fifo.json")
	if settled != "rejected" || !strings.Contains(result, "not a regular file") {
		t.Errorf("the plan with a FIFO for signatures went to %s/: %s", settled, result)
	}
	if m := idnsim.Mutations(e.sim.Requests()); len(m) != 0 {
		t.Fatalf("sent %v", m)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	runs := journalRuns(t, p.journal)
	if len(runs) != 1 || !strings.Contains(runs[0].Plan.Refused, "not a regular file") {
		t.Fatalf("journal plan runs %+v", runs)
	}
}

// A reviewer who can write to approved/ drops a plan whose .sig is a
// symbolic link. serve refuses a plan there that is a link (it would read
// any file the daemon can), but followed its .sig's link: here to valid
// signatures kept elsewhere, and the plan was applied. The .sig must be
// refused like its plan: rejected as unreadable, the refusal journaled,
// nothing sent.
func TestHostileApprovedSigIsSymlink(t *testing.T) {
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	e.addTokens("stale", 2, 0)
	r, signers := newReviewers(t, e.dir)
	cfg := withApprovals(e.configYAML("@daily", servePolicy("stale", "enforce", "", "stale", true)), signers, "")
	cfgPath := e.writeConfig(cfg)
	plans := filepath.Join(e.dir, "plans")
	p := startInProcess(t, e, cfgPath, serveFlags{plansDir: plans, applyApproved: true})

	planFile := signAndDrop(t, e, cfgPath, r.alice, r.bob)
	elsewhere := filepath.Join(e.dir, "signatures-kept-elsewhere")
	if err := os.Rename(planFile+".sig", elsewhere); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, planFile+".sig"); err != nil {
		t.Fatal(err)
	}
	settled, result := moveApproved(t, plans, planFile, "link.json")
	if settled != "rejected" || !strings.Contains(result, "link.json.sig is a symbolic link, not a regular file") {
		t.Errorf("the plan whose .sig is a symbolic link went to %s/: %s", settled, result)
	}
	if m := idnsim.Mutations(e.sim.Requests()); len(m) != 0 {
		t.Fatalf("sent %v", m)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	runs := journalRuns(t, p.journal)
	if len(runs) != 1 || !strings.Contains(runs[0].Plan.Refused, "is a symbolic link") || len(runs[0].Plan.Approvals) != 0 {
		t.Fatalf("journal plan runs %+v", runs)
	}
}

// Whoever writes the plan a reviewer signs puts "items": [] first and the
// real items after it. The planHash still verifies (it is computed over the
// parsed plan, which keeps the last key) and a reviewer reading the file
// sees a plan that does nothing; the signatures cover the bytes, not what
// the reviewer read. A plan whose JSON has a key twice has two meanings: it
// must be refused by approve and by apply, and nothing sent.
func TestHostilePlanDuplicateKeys(t *testing.T) {
	e := newWF(t, approvalPolicies, idnsim.Options{})
	r, _ := newReviewers(t, e.dir)
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	planFile := filepath.Join(e.dir, "plan.json")
	if code, _, stderr := e.run(nil, "plan", "--out", planFile); code != 0 {
		t.Fatalf("plan: %d %s", code, stderr)
	}
	data, _ := os.ReadFile(planFile)
	forged := strings.Replace(string(data), "{", `{"items": [], `, 1)
	if err := os.WriteFile(planFile, []byte(forged), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := e.run(nil, "approve", planFile, "--key", r.alice)
	if code != 1 || !strings.Contains(stderr, `duplicate key "items"`) {
		t.Errorf("approve of a plan with a key twice: %d %s", code, stderr)
	}
	// Signed anyway (ssh-keygen signs any file): apply refuses it.
	for _, k := range []string{r.alice, r.bob} {
		signFileDirect(t, planFile, k)
	}
	code, _, stderr = e.run(nil, "apply", planFile, "--auto-approve")
	if code != 1 || !strings.Contains(stderr, `duplicate key "items"`) {
		t.Errorf("apply of a plan with a key twice: %d %s", code, stderr)
	}
	if m := e.mutations(); len(m) != 0 {
		t.Fatalf("sent %v", m)
	}
}

// signFileDirect signs a file's bytes with a key as `ssh-keygen -Y sign`
// would, without patjanitor's checks of the plan.
func signFileDirect(t *testing.T, file, keyFile string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ks := approval.KeySource{}
	signer, done, err := ks.Signer(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	sig, err := approval.Sign(data, signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := approval.AppendSignature(approval.SigFile(file), sig, time.Now(), ""); err != nil {
		t.Fatal(err)
	}
}

// The forged plan of TestHostilePlanDuplicateKeys, signed by both reviewers
// and dropped into serve's approved/: rejected as unreadable, nothing sent,
// and the refused attempt journaled (serve moved an unreadable plan to
// rejected/ without a journal record, though its signatures may be valid).
func TestHostileApprovedPlanUnreadableJournaled(t *testing.T) {
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	e.addTokens("stale", 2, 0)
	r, signers := newReviewers(t, e.dir)
	cfg := withApprovals(e.configYAML("@daily", servePolicy("stale", "enforce", "", "stale", true)), signers, "")
	cfgPath := e.writeConfig(cfg)
	plans := filepath.Join(e.dir, "plans")

	planFile := signAndDrop(t, e, cfgPath)
	data, _ := os.ReadFile(planFile)
	if err := os.WriteFile(planFile, []byte(strings.Replace(string(data), "{", `{"ITEMS": [], `, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{r.alice, r.bob} {
		signFileDirect(t, planFile, k)
	}
	// The plans directory exists once serve made it; the plan is judged by
	// the run on start (the poll of --apply-approved-immediately announces
	// only plans it can read, to start their schedule's run).
	if err := (plandir.Dir{Root: plans}).Init(); err != nil {
		t.Fatal(err)
	}
	dropApproved(t, plans, planFile, "forged.json")
	p := startInProcess(t, e, cfgPath, serveFlags{plansDir: plans, runOnStart: true})
	settled, result := awaitSettled(t, plans, "forged.json")
	if settled != "rejected" || !strings.Contains(result, "duplicate key") {
		t.Errorf("the forged plan went to %s/: %s", settled, result)
	}
	if m := idnsim.Mutations(e.sim.Requests()); len(m) != 0 {
		t.Fatalf("sent %v", m)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	runs := journalRuns(t, p.journal)
	if len(runs) != 1 || !strings.Contains(runs[0].Plan.Refused, "duplicate key") || !strings.HasSuffix(runs[0].Plan.File, "forged.json") {
		t.Fatalf("journal plan runs %+v", runs)
	}
}

// A signed plan all of whose items are dropped at apply time (the token was
// used again after the reviewers signed) changes nothing, but the approved
// apply happened: the journal must name the plan and its approvals, as for
// any apply of a signed plan. It recorded nothing.
func TestHostileSignedPlanAllDroppedJournaled(t *testing.T) {
	e := newWF(t, approvalPolicies, idnsim.Options{})
	r, _ := newReviewers(t, e.dir)
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	planFile := filepath.Join(e.dir, "plan.json")
	for _, args := range [][]string{{"plan", "--out", planFile}, {"approve", planFile, "--key", r.alice}, {"approve", planFile, "--key", r.bob}} {
		if code, _, stderr := e.run(nil, args...); code != 0 {
			t.Fatalf("%v: %d %s", args, code, stderr)
		}
	}
	e.sim.Touch("stale-1", time.Now())
	code, stdout, stderr := e.run(nil, "apply", planFile, "--auto-approve")
	if code != 0 || !strings.Contains(stdout, "DROPPED") {
		t.Fatalf("apply: %d\n%s%s", code, stdout, stderr)
	}
	if m := e.mutations(); len(m) != 0 {
		t.Fatalf("sent %v", m)
	}
	runs := journalRuns(t, filepath.Join(e.state, JournalFile))
	if len(runs) != 1 || runs[0].Plan.Refused != "" || len(runs[0].Plan.Approvals) != 2 {
		t.Fatalf("journal plan runs %+v, want the approved apply with both approvals", runs)
	}
}

// A signed plan whose only actions are API client ones: the client is
// disabled, and the journal holds one run-start naming the plan and both
// approvals (the API clients' own), which audit verify and audit show read.
func TestHostileSignedClientOnlyPlanJournalsApprovals(t *testing.T) {
	e := newWF(t, "approvals:\n  allowedSignersFile: allowed_signers\n  required: 2\n"+wfClientPolicies, idnsim.Options{})
	r, _ := newReviewers(t, e.dir)
	e.sim.AddOAuthClient(apiclient.Client{ID: wfClient, Name: "legacy", Internal: apiclient.Bool(false), Enabled: apiclient.Bool(true),
		Scope: pat.Scopes{Null: true}, Created: time.Now().Add(-400 * wfDay)}, "")
	planFile := filepath.Join(e.dir, "plan.json")
	for _, args := range [][]string{{"plan", "--out", planFile}, {"approve", planFile, "--key", r.alice}, {"approve", planFile, "--key", r.bob}} {
		if code, _, stderr := e.run(nil, args...); code != 0 && !(args[0] == "plan" && code == 2) {
			t.Fatalf("%v: %d %s", args, code, stderr)
		}
	}
	if code, stdout, stderr := e.run(nil, "apply", planFile, "--auto-approve"); code != 0 {
		t.Fatalf("apply: %d\n%s%s", code, stdout, stderr)
	}
	if c, _ := e.sim.OAuthClient(wfClient); c.IsEnabled() {
		t.Fatal("the signed disable was not carried out")
	}
	runs := journalRuns(t, filepath.Join(e.state, JournalFile))
	if len(runs) != 1 || len(runs[0].Plan.Approvals) != 2 {
		t.Fatalf("journal plan runs %+v, want the signed apply with both approvals", runs)
	}
	if code, stdout, stderr := e.run(nil, "audit", "verify"); code != 0 || !strings.Contains(stdout, "approved by bob@acme.com") {
		t.Fatalf("audit verify: %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := e.run(nil, "audit", "show", runs[0].RunID); code != 0 || !strings.Contains(stdout, "approved by alice@acme.com") || !strings.Contains(stdout, wfClient) {
		t.Fatalf("audit show: %d\n%s%s", code, stdout, stderr)
	}
}

// TestHostilePlanRecasedDuplicateItem for the API clients section: one
// client listed twice in two spellings is refused, nothing sent (the
// section's duplicate check compared ids with ==, and apply sent one PATCH
// per spelling).
func TestHostilePlanRecasedDuplicateClientItem(t *testing.T) {
	e := newWF(t, wfClientPolicies, idnsim.Options{})
	e.sim.AddOAuthClient(apiclient.Client{ID: wfClient, Name: "legacy", Internal: apiclient.Bool(false), Enabled: apiclient.Bool(true),
		Scope: pat.Scopes{Null: true}, Created: time.Now().Add(-400 * wfDay)}, "")
	planFile := filepath.Join(e.dir, "plan.json")
	if code, _, stderr := e.run(nil, "plan", "--out", planFile); code != 0 && code != 2 {
		t.Fatalf("plan: %d %s", code, stderr)
	}
	data, _ := os.ReadFile(planFile)
	saved, err := plan.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if saved.APIClients == nil || len(saved.APIClients.Items) != 1 {
		t.Fatalf("plan clients %+v", saved.APIClients)
	}
	dup := saved.APIClients.Items[0]
	dup.ClientID = strings.ToUpper(dup.ClientID)
	saved.APIClients.Items = append(saved.APIClients.Items, dup)
	if err := saved.Seal(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := plan.Write(&buf, saved); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(planFile, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := e.run(nil, "apply", planFile, "--auto-approve")
	if m := clientMutations(e.sim.Requests()); len(m) != 0 {
		t.Errorf("a plan with one client twice sent %d requests: %v", len(m), m)
	}
	if code != 1 || !strings.Contains(stderr, "has two items") {
		t.Errorf("apply of a plan with one client twice: %d\n%s%s", code, stdout, stderr)
	}
}

// A signed plan whose only actions are API client ones, in a config whose
// API client policy runs on another schedule than the token policies, is
// POSTed to /approve with --apply-approved-immediately: the run of its own
// schedule must start and carry it out. serve matched plans to schedules by
// their token items only: no run was started for it, and the first run of
// any schedule would take it, drop the client action ("no policy acts on it
// now": that run's config holds no API client policy) and move the plan to
// applied/ (the reviewers' approval spent, the client never disabled).
func TestHostileServeSignedClientPlanOtherSchedule(t *testing.T) {
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	e.sim.AddOAuthClient(apiclient.Client{ID: wfClient, Name: "legacy", Internal: apiclient.Bool(false), Enabled: apiclient.Bool(true),
		Scope: pat.Scopes{Null: true}, Created: time.Now().Add(-400 * wfDay)}, "")
	r, signers := newReviewers(t, e.dir)
	clients := `  - name: clients-unused
    resource: apiClients
    schedule: "@weekly"
    mode: enforce
    match: {unusedFor: 90d, scopes: {any: ["sp:scopes:all"]}}
    action: delete
    disabledFor: 14d
`
	cfg := withApprovals(e.configYAML("@daily", servePolicy("stale", "enforce", "", "stale", true), clients), signers, "")
	cfgPath := e.writeConfig(cfg)
	plans := filepath.Join(e.dir, "plans")
	p := startInProcess(t, e, cfgPath, serveFlags{plansDir: plans, enableLifecycle: true, applyApproved: true})
	planFile := signAndDrop(t, e, cfgPath, r.alice, r.bob)
	if code, body := postApprove(t, p.base, planFile); code != http.StatusAccepted || !strings.Contains(body, "applied now") {
		t.Fatalf("POST /approve: %d %s", code, body)
	}
	serveWait(t, "the signed API client plan applied", 20*time.Second, func() bool {
		files, _ := filepath.Glob(filepath.Join(plans, "*", "*.result"))
		return len(files) > 0
	})
	files, _ := filepath.Glob(filepath.Join(plans, "*", "*.result"))
	result, _ := os.ReadFile(files[0])
	if c, _ := e.sim.OAuthClient(wfClient); c.IsEnabled() || !strings.Contains(files[0], "applied") || !strings.Contains(string(result), "API clients: applied 1") {
		t.Errorf("the signed disable was not carried out (%s: %s)", files[0], result)
	}
	if m := clientMutations(e.sim.Requests()); len(m) != 1 || m[0].Method != http.MethodPatch {
		t.Errorf("API client requests %v, want the one PATCH of the plan", m)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}

// apply PLAN while the tenant's listing fails: nothing is sent, and the
// blocked items still name their tokens (the re-check replaced each item's
// id with the listed token's, which an incomplete listing does not hold:
// the result table showed blank ids).
func TestHostileApplyPlanListingFailsNamesTokens(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-a", "o1", 400*wfDay, 200*wfDay)
	planFile := filepath.Join(e.dir, "plan.json")
	if code, _, stderr := e.run(nil, "plan", "--out", planFile); code != 0 && code != 2 {
		t.Fatalf("plan: %d %s", code, stderr)
	}
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, Status: http.StatusBadRequest})
	code, stdout, stderr := e.run(nil, "apply", planFile, "--auto-approve")
	if m := e.mutations(); len(m) != 0 {
		t.Fatalf("sent %v", m)
	}
	if code != 1 || !regexp.MustCompile(`BLOCKED +stale-a`).MatchString(stdout) {
		t.Errorf("apply with a failing listing: %d\n%s%s", code, stdout, stderr)
	}
}
