package cli

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/approval"
	"github.com/patjanitor/patjanitor/internal/idnsim"
)

// The reasons of approve, apply --accept-guardrail and audit reanchor are
// journaled as those of acknowledge and snooze are, and were unbounded: a
// reason of 128 KiB of '<' (an argument's most, which JSON writes six-fold
// as \u003c) in each of two reviewers' signatures made the run-start of the
// plan larger than a journal record, and the approved plan could never be
// applied ("record of … bytes is larger than 1048576"), with an error that
// named no reason. Now each command refuses a reason over 4096 bytes,
// nothing written; and a reason over the bound already in a signature file
// (an older approve, a hand-written or POSTed file: the reason is not
// signed) is journaled clipped, saying so, and the plan applies.
func TestHostileOversizedApprovalReasonIsBounded(t *testing.T) {
	e := newWF(t, approvalPolicies, idnsim.Options{})
	r, _ := newReviewers(t, e.dir)
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	planFile := filepath.Join(e.dir, "plan.json")
	if code, _, stderr := e.run(nil, "plan", "--out", planFile); code != 0 {
		t.Fatalf("plan: %d %s", code, stderr)
	}
	big := strings.Repeat("<", 4097)
	code, _, stderr := e.run(nil, "approve", planFile, "--key", r.alice, "--reason", big)
	if code != 1 || !strings.Contains(stderr, "approve: the reason (--reason) is 4097 bytes long, at most 4096") {
		t.Fatalf("approve with a reason of 4097 bytes: %d %s", code, stderr)
	}
	if _, err := os.Stat(approval.SigFile(planFile)); !os.IsNotExist(err) {
		t.Fatalf("the refused approve wrote a signature file (stat: %v)", err)
	}
	code, _, stderr = e.run(nil, "apply", planFile, "--auto-approve", "--accept-guardrail", "maxActionsPerRun", "--reason", big)
	if code != 1 || !strings.Contains(stderr, "apply: the reason (--reason) is 4097 bytes long, at most 4096") {
		t.Fatalf("apply --accept-guardrail with a reason of 4097 bytes: %d %s", code, stderr)
	}
	code, _, stderr = e.run(nil, "audit", "reanchor", "--reason", big)
	if code != 1 || !strings.Contains(stderr, "audit reanchor: the reason (--reason) is 4097 bytes long, at most 4096") {
		t.Fatalf("audit reanchor with a reason of 4097 bytes: %d %s", code, stderr)
	}
	if m := e.mutations(); len(m) != 0 {
		t.Fatalf("the refused commands sent %v", m)
	}

	// Two signatures whose reasons an older version kept whole.
	for _, k := range []string{r.alice, r.bob} {
		if code, _, stderr := e.run(nil, "approve", planFile, "--key", k, "--reason", "MARK"); code != 0 {
			t.Fatalf("approve: %d %s", code, stderr)
		}
	}
	sig := approval.SigFile(planFile)
	data, err := os.ReadFile(sig)
	if err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("<", 128<<10)
	data = bytes.ReplaceAll(data, []byte(`"reason":"MARK"`), []byte(`"reason":"`+huge+`"`))
	if err := os.WriteFile(sig, data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := e.run(nil, "apply", planFile, "--auto-approve")
	if code != 0 || e.present("stale-1") {
		t.Fatalf("apply of the plan approved with oversized reasons: %d\n%s%s", code, stdout, stderr)
	}
	runs := journalRuns(t, filepath.Join(e.state, JournalFile))
	if len(runs) != 1 || len(runs[0].Plan.Approvals) != 2 {
		t.Fatalf("run-starts %+v; want the apply's, with both approvals", runs)
	}
	for _, a := range runs[0].Plan.Approvals {
		if !strings.HasPrefix(a.Reason, strings.Repeat("<", 4096)+"…") || !strings.HasSuffix(a.Reason, "(reason clipped from 131072 bytes)") {
			t.Errorf("approval of %s journaled with a reason of %d bytes ending %q; want it clipped, saying so", a.Principal, len(a.Reason), a.Reason[max(0, len(a.Reason)-60):])
		}
	}
}

// A signature file is read whole up to 1 MiB (the daemon refuses a larger
// one as unreadable), but POST /approve parsed and stored the one it was
// sent whatever its size: two valid signatures whose reasons (not signed)
// were padded to 600 KiB each made a 1.2 MiB file that serve accepted (202,
// "it is applied now") and then, at the run, refused as unreadable: the
// approval spent, the plan rejected, the reviewers told it was stored. Now
// the POST is refused at the door (400, the limit named), nothing stored,
// nothing sent, nothing journaled.
func TestHostileApproveEndpointSignatureFileOverTheLimit(t *testing.T) {
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	stale := e.addTokens("stale", 2, 0)
	r, signers := newReviewers(t, e.dir)
	cfg := withApprovals(e.configYAML("@daily", servePolicy("stale", "enforce", "", "stale", true)), signers, "")
	cfgPath := e.writeConfig(cfg)
	plans := filepath.Join(e.dir, "plans")
	p := startInProcess(t, e, cfgPath, serveFlags{plansDir: plans, enableLifecycle: true, applyApproved: true})

	planFile := filepath.Join(e.dir, "plan.json")
	reviewerRun(t, e, cfgPath, "plan", "--out", planFile)
	reviewerRun(t, e, cfgPath, "approve", planFile, "--key", r.alice, "--reason", "MARK")
	reviewerRun(t, e, cfgPath, "approve", planFile, "--key", r.bob, "--reason", "MARK")
	sig := approval.SigFile(planFile)
	data, err := os.ReadFile(sig)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.ReplaceAll(data, []byte(`"reason":"MARK"`), []byte(`"reason":"`+strings.Repeat("x", 600<<10)+`"`))
	if err := os.WriteFile(sig, data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, body := postApprove(t, p.base, planFile)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "the sig part is larger than 1 MiB") {
		t.Fatalf("POST /approve of a %d-byte signature file: %d %s", len(data), code, body)
	}
	if files, _ := filepath.Glob(filepath.Join(plans, "*", "*")); len(files) != 0 {
		t.Fatalf("a refused submission left %v", files)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	if m := idnsim.Mutations(e.sim.Requests()); len(m) != 0 {
		t.Fatalf("the refused submission sent %v", m)
	}
	for _, id := range stale {
		if _, ok := e.sim.Token(id); !ok {
			t.Fatalf("token %s gone", id)
		}
	}
	if runs := journalRuns(t, p.journal); len(runs) != 0 {
		t.Fatalf("journal plan runs %+v; want none", runs)
	}
}

// A signature file of 1 MiB can hold 18,000 signature blocks that do not
// parse (58 bytes each), and a refusal names every signature and why it did
// not count: 2 MB of text, which the refusal's run-start journals whole. It
// was larger than a journal record, so the refusal could not be journaled
// and the operator was handed 2 MB of verdicts. The refusal names the first
// signatures and says how many more there are.
func TestHostileSignatureFileOfManyBlocksIsRefusedJournaled(t *testing.T) {
	e := newWF(t, approvalPolicies, idnsim.Options{})
	r, _ := newReviewers(t, e.dir)
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	planFile := filepath.Join(e.dir, "plan.json")
	if code, _, stderr := e.run(nil, "plan", "--out", planFile); code != 0 {
		t.Fatalf("plan: %d %s", code, stderr)
	}
	if code, _, stderr := e.run(nil, "approve", planFile, "--key", r.alice); code != 0 {
		t.Fatalf("approve: %d %s", code, stderr)
	}
	sig := approval.SigFile(planFile)
	data, err := os.ReadFile(sig)
	if err != nil {
		t.Fatal(err)
	}
	block := "-----BEGIN SSH SIGNATURE-----\n-----END SSH SIGNATURE-----\n"
	blocks := (1<<20 - len(data)) / len(block)
	data = append(data, strings.Repeat(block, blocks)...)
	if err := os.WriteFile(sig, data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := e.run(nil, "apply", planFile, "--auto-approve")
	if code != 1 || !strings.Contains(stderr, "has 1 valid") || !strings.Contains(stderr, "signature 1 (line 1) by alice@acme.com") ||
		!strings.Contains(stderr, fmt.Sprintf("and %d more signatures that did not count", blocks-20)) || len(stderr) > 64<<10 {
		t.Fatalf("apply of a plan whose signature file holds %d bytes of blocks: exit %d, %d bytes of output\n%.2000s...%s", len(data), code, len(stdout)+len(stderr), stdout+stderr, (stdout + stderr)[max(0, len(stdout)+len(stderr)-600):])
	}
	if m := e.mutations(); len(m) != 0 {
		t.Fatalf("the refused plan sent %v", m)
	}
	runs := journalRuns(t, filepath.Join(e.state, JournalFile))
	if len(runs) != 1 || !strings.Contains(runs[0].Plan.Refused, "has 1 valid") || len(runs[0].Plan.Refused) > 64<<10 {
		t.Fatalf("run-starts %d; want the refusal journaled, bounded", len(runs))
	}
}
