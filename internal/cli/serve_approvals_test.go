package cli

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/metrics"
)

// serve with approvals: the scheduled runs change nothing and save their
// plan for review; a plan signed by one reviewer is rejected (journaled,
// nothing sent); a plan signed by two is applied exactly, and the journal
// names both principals.
func TestServeApprovals(t *testing.T) {
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	stale := e.addTokens("stale", 3, 0)
	e.addTokens("fresh", 2, time.Hour)
	r, signers := newReviewers(t, e.dir)
	cfg := withApprovals(e.configYAML("@every 1s", servePolicy("stale", "enforce", "", "stale", true)), signers, "")
	cfgPath := e.writeConfig(cfg)
	plans := filepath.Join(e.dir, "plans")
	p := startInProcess(t, e, cfgPath, serveFlags{plansDir: plans})

	pendingPlan := func() string {
		files, _ := filepath.Glob(filepath.Join(plans, "pending", "*.json"))
		sort.Strings(files)
		if len(files) == 0 {
			return ""
		}
		return files[len(files)-1]
	}
	p.tickUntil("a plan saved for approval", 1, func() bool { return pendingPlan() != "" })
	serveWait(t, "plans_awaiting_approval", 10*time.Second, func() bool { return scrape(t, p.base)["patjanitor_plans_awaiting_approval"] >= 1 })
	if m := idnsim.Mutations(e.sim.Requests()); len(m) != 0 {
		t.Fatalf("a scheduled run under approvals sent %v", m)
	}

	// approve signs in pending/; the reviewer moves the .sig, then the plan.
	submit := func(signers ...string) string {
		t.Helper()
		src := pendingPlan()
		for _, k := range signers {
			if code := Main(t.Context(), []string{"approve", src, "--key", k}, Streams{In: strings.NewReader(""), Out: os.Stderr, Err: os.Stderr}); code != 0 {
				t.Fatalf("approve exited %d", code)
			}
		}
		dropApproved(t, plans, src, filepath.Base(src))
		return filepath.Base(src)
	}

	one := submit(r.alice)
	p.tickUntil("the plan with one signature rejected", 1, func() bool {
		_, err := os.Stat(filepath.Join(plans, "rejected", one+".result"))
		return err == nil
	})
	result, _ := os.ReadFile(filepath.Join(plans, "rejected", one+".result"))
	if !strings.Contains(string(result), "needs 2 approvals by distinct principals and has 1 valid") {
		t.Fatalf("rejected/%s.result: %s", one, result)
	}
	if _, err := os.Stat(filepath.Join(plans, "rejected", one+".sig")); err != nil {
		t.Fatalf("the signature file did not move with the plan: %v", err)
	}
	if m := idnsim.Mutations(e.sim.Requests()); len(m) != 0 {
		t.Fatalf("a plan with one signature sent %v", m)
	}
	if v := scrape(t, p.base)[`patjanitor_approved_plans_total{reason="signatures",result="rejected"}`]; v != 1 {
		t.Fatalf("approved_plans_total rejected/signatures = %v", v)
	}

	p.tickUntil("a new plan saved for approval", 1, func() bool { return pendingPlan() != "" })
	two := submit(r.alice, r.bob)
	p.tickUntil("the plan with two signatures applied", 1, func() bool {
		_, err := os.Stat(filepath.Join(plans, "applied", two+".result"))
		return err == nil
	})
	wantDeleted(t, e, stale)
	if v := scrape(t, p.base)[`patjanitor_approved_plans_total{reason="none",result="applied"}`]; v != 1 {
		t.Fatalf("approved_plans_total applied = %v", v)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}

	runs := journalRuns(t, p.journal)
	if len(runs) != 2 || runs[0].Plan.Refused == "" || runs[1].Plan.Refused != "" {
		t.Fatalf("journal plan runs %+v", runs)
	}
	var principals []string
	for _, a := range runs[1].Plan.Approvals {
		principals = append(principals, a.Principal)
	}
	if strings.Join(principals, ",") != "alice@acme.com,bob@acme.com" || !strings.HasSuffix(runs[1].Plan.File, two) {
		t.Fatalf("the applied run names %v for %s", principals, runs[1].Plan.File)
	}
	var outcomes int
	if _, err := audit.VerifyPath(p.journal, audit.VerifyOptions{Kinds: []audit.Kind{audit.KindOutcome}, Each: func(rec audit.Record) error {
		if rec.RunID == runs[1].RunID && rec.Outcome.Status == "applied" {
			outcomes++
		}
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	if outcomes != len(stale) {
		t.Fatalf("%d applied outcomes journaled for the approved run, want %d", outcomes, len(stale))
	}
}

// wantDeleted: the tenant received exactly one DELETE of each of ids (the
// plan's) and no other change.
func wantDeleted(t *testing.T, e *serveEnv, ids []string) {
	t.Helper()
	reqs := e.sim.Requests()
	if deleted := deletedIDs(reqs); len(idnsim.Mutations(reqs)) != len(ids) || strings.Join(deleted, ",") != strings.Join(ids, ",") {
		t.Fatalf("deleted %v (of %d changes), want exactly the plan's %v", deleted, len(idnsim.Mutations(reqs)), ids)
	}
}

// postApprove sends a plan and its signature file to POST /approve as curl
// -F plan=@PLAN -F sig=@PLAN.sig would.
func postApprove(t *testing.T, base, planFile string) (int, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for field, file := range map[string]string{"plan": planFile, "sig": planFile + ".sig"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		fw, _ := mw.CreateFormFile(field, filepath.Base(file))
		_, _ = fw.Write(data)
	}
	_ = mw.Close()
	resp, err := http.Post(base+"/approve", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// serve --apply-approved-immediately with POST /approve: a plan a reviewer
// saved with `plan --out` and two reviewers signed is applied at once, not
// at the (daily) schedule; with one signature it is refused at the door and
// nothing is stored; without --web.enable-lifecycle the endpoint is 403.
func TestServeApproveEndpoint(t *testing.T) {
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	stale := e.addTokens("stale", 3, 0)
	r, signers := newReviewers(t, e.dir)
	cfg := withApprovals(e.configYAML("@daily", servePolicy("stale", "enforce", "", "stale", true)), signers, "")
	cfgPath := e.writeConfig(cfg)
	plans := filepath.Join(e.dir, "plans")

	closed := startInProcess(t, e, cfgPath, serveFlags{plansDir: plans})
	junk := filepath.Join(e.dir, "junk.json")
	_ = os.WriteFile(junk, []byte("{}"), 0o600)
	_ = os.WriteFile(junk+".sig", []byte(""), 0o600)
	if code, body := postApprove(t, closed.base, junk); code != http.StatusForbidden || !strings.Contains(body, "--web.enable-lifecycle") {
		t.Fatalf("POST /approve without the lifecycle flag: %d %s", code, body)
	}
	if err := closed.stop(t); err != nil {
		t.Fatal(err)
	}

	p := startInProcess(t, e, cfgPath, serveFlags{plansDir: plans, enableLifecycle: true, applyApproved: true})
	planFile := filepath.Join(e.dir, "plan.json")
	reviewerRun(t, e, cfgPath, "plan", "--out", planFile)
	reviewerRun(t, e, cfgPath, "approve", planFile, "--key", r.alice)
	code, body := postApprove(t, p.base, planFile)
	if code != http.StatusBadRequest || !strings.Contains(body, "needs 2 approvals by distinct principals and has 1 valid") {
		t.Fatalf("POST /approve with one signature: %d %s", code, body)
	}
	if files, _ := filepath.Glob(filepath.Join(plans, "approved", "*")); len(files) != 0 {
		t.Fatalf("a refused submission stored %v", files)
	}

	reviewerRun(t, e, cfgPath, "approve", planFile, "--key", r.bob)
	code, body = postApprove(t, p.base, planFile)
	if code != http.StatusAccepted || !strings.Contains(body, "it is applied now") {
		t.Fatalf("POST /approve with two signatures: %d %s", code, body)
	}
	serveWait(t, "the POSTed plan applied", 20*time.Second, func() bool {
		files, _ := filepath.Glob(filepath.Join(plans, "applied", "*.result"))
		return len(files) == 1
	})
	wantDeleted(t, e, stale)
	// A second POST of the same plan is refused: it was applied already
	// (and is no longer waiting), and its tokens are gone.
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	runs := journalRuns(t, p.journal)
	if len(runs) != 1 || len(runs[0].Plan.Approvals) != 2 {
		t.Fatalf("journal plan runs %+v", runs)
	}
}

// serve --apply-approved-immediately also applies a plan that a reviewer
// moved into approved/ by hand, without waiting for the schedule.
func TestServeApplyApprovedImmediatelyFromDirectory(t *testing.T) {
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	stale := e.addTokens("stale", 2, 0)
	r, signers := newReviewers(t, e.dir)
	cfg := withApprovals(e.configYAML("@daily", servePolicy("stale", "enforce", "", "stale", true)), signers, "")
	cfgPath := e.writeConfig(cfg)
	plans := filepath.Join(e.dir, "plans")
	p := startInProcess(t, e, cfgPath, serveFlags{plansDir: plans, applyApproved: true})

	planFile := signAndDrop(t, e, cfgPath, r.alice, r.bob)
	if settled, result := moveApproved(t, plans, planFile, "reviewed.json"); settled != "applied" {
		t.Fatalf("the plan dropped in approved/ went to %s/: %s", settled, result)
	}
	wantDeleted(t, e, stale)
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}

// The engine's verdicts on a signed plan are the label values of
// plans_approved_total that dashboards and alerts select on: serve passes
// them through, so the two packages must spell them alike.
func TestApprovedPlanVerdictsAreTheMetricLabels(t *testing.T) {
	for engine, label := range map[string]string{
		janitor.PlanApplied: metrics.PlanApplied, janitor.PlanRejected: metrics.PlanRejected,
		janitor.PlanReasonNone: metrics.PlanReasonNone, janitor.PlanReasonSignatures: metrics.PlanReasonSignatures,
		janitor.PlanReasonPlan: metrics.PlanReasonPlan, janitor.PlanReasonUnreadable: metrics.PlanReasonUnreadable,
	} {
		if engine != label {
			t.Errorf("engine verdict %q, metric label %q", engine, label)
		}
	}
}
