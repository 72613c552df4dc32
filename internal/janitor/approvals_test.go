package janitor_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/notify/notifytest"
)

// With approvals configured, the engine itself holds back the actions they
// name: a scheduled run (Execute) sends none of them and reports them as
// awaiting approval, while actions approvals do not name still run; and
// ApplyPlan refuses a saved plan that carries fewer approvals than required,
// whatever its caller forgot to check.
func TestApprovalsEngineGuard(t *testing.T) {
	cfg := noLimits + `approvals:
  allowedSignersFile: /nonexistent/allowed_signers
  required: 2
  for: [delete]
policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
`
	e := newEnv(t, cfg, envOpts{})
	e.addStale("stale", 3, 1)
	ctx := context.Background()

	pl, err := e.engine().Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.engine().Execute(ctx, pl)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	e.requireNoMutations()
	if n := res.Count(janitor.OutcomeAwaitingApproval); n != 3 {
		t.Fatalf("%d items awaiting approval, want 3: %+v", n, res.Items)
	}

	for _, ref := range []*audit.PlanRef{nil, {FileSHA256: "sha256:x", PlanHash: pl.Plan.PlanHash,
		Approvals: []audit.Approval{{Principal: "alice", Fingerprint: "SHA256:a"}}}} {
		_, err := e.engine().ApplyPlan(ctx, pl.Plan, janitor.ApplyOptions{Plan: ref})
		if !errors.Is(err, janitor.ErrPlanRejected) {
			t.Fatalf("ApplyPlan with %+v: %v", ref, err)
		}
	}
	e.requireNoMutations()

	ref := &audit.PlanRef{FileSHA256: "sha256:x", PlanHash: pl.Plan.PlanHash, Approvals: []audit.Approval{
		{Principal: "alice", Fingerprint: "SHA256:a"}, {Principal: "bob", Fingerprint: "SHA256:b"}}}
	res, err = e.engine().ApplyPlan(ctx, pl.Plan, janitor.ApplyOptions{Plan: ref})
	if err != nil || res.Count(janitor.OutcomeApplied) != 3 {
		t.Fatalf("ApplyPlan with two approvals: %v %+v", err, res)
	}
	var start *audit.Record
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindRunStart {
			start = &r
		}
	}
	if start == nil || start.Plan == nil || len(start.Plan.Approvals) != 2 || start.Plan.PlanHash != pl.Plan.PlanHash {
		t.Fatalf("run-start %+v", start)
	}
}

// The receivers hear of signed plans: a run that applied one says which and
// who approved it in its summary; a refused one is announced to the summary
// and failure receivers (once to a receiver that is both), with the reason.
func TestApprovalsNotified(t *testing.T) {
	cfg := strings.Replace(graceConfig, "policies:\n", `approvals:
  allowedSignersFile: /nonexistent/allowed_signers
  required: 2
  for: [delete]
policies:
`, 1)
	cfg = strings.Replace(cfg, "    grace: 14d\n", "", 1)
	g := newGraceEnv(t, cfg)
	g.addStale("stale", 2, 1)
	ctx := context.Background()
	pl, err := g.engine().Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}

	ref := audit.PlanRef{File: "plan.json", FileSHA256: "sha256:x", PlanHash: pl.Plan.PlanHash,
		Approvals: []audit.Approval{{Principal: "alice", Fingerprint: "SHA256:a"}}}
	if _, err := g.engine().JournalRefusal(ctx, janitor.RunInput{}, ref, errors.New("the plan needs 2 approvals by distinct principals and has 1 valid")); err != nil {
		t.Fatal(err)
	}
	f := notifytest.OfKind(g.hook.Take(), notify.KindFailure)
	if len(f) != 1 || f[0].Failure.Kind != notify.FailureApprovalRefused || !strings.Contains(f[0].Failure.Error, "plan plan.json ("+pl.Plan.PlanHash+"): the plan needs 2 approvals") {
		t.Fatalf("refusal notifications %+v", f)
	}
	g.requireNoMutations()

	ref.Approvals = append(ref.Approvals, audit.Approval{Principal: "bob", Fingerprint: "SHA256:b"})
	if _, err := g.engine().ApplyPlan(ctx, pl.Plan, janitor.ApplyOptions{Plan: &ref}); err != nil {
		t.Fatal(err)
	}
	s := notifytest.OfKind(g.hook.Take(), notify.KindSummary)
	if len(s) != 1 || s[0].Summary.Approved == nil || s[0].Summary.Approved.File != "plan.json" ||
		strings.Join(s[0].Summary.Approved.Principals, ",") != "alice,bob" {
		t.Fatalf("summary %+v", s)
	}
}
