package janitor_test

import (
	"context"
	"errors"
	"testing"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/janitor"
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
