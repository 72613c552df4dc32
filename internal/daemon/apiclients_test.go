package daemon

import (
	"context"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
)

// The "run finished" line carries the API client counts (clients_*) of a
// run with apiClients policies, and no such field for a token-only run.
func TestRunFinishedLogsAPIClientCounts(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	h := newHarness(t, configYAML("@daily", policyYAML("a", "enforce", "")), func(o *Options) { o.Logger = zap.New(core) })
	var rep *RunReport
	h.runners.setRun(func(context.Context, *policy.Config) (*RunReport, error) { return rep, nil })
	gen := h.d.gen.Load()
	g := gen.groups[0]

	rep = &RunReport{RunID: "run-1", Plan: &plan.Plan{Version: 1}, Applied: 1,
		APIClients: &ClientCounts{Population: 7, Matched: 3, Grace: 1, Applied: 2}}
	h.d.runOnce(gen, g.Group, g.cfg, "schedule")
	rep = &RunReport{RunID: "run-2", Plan: &plan.Plan{Version: 1}}
	h.d.runOnce(gen, g.Group, g.cfg, "schedule")

	var lines []map[string]any
	for _, e := range logs.FilterMessage("run finished").AllUntimed() {
		lines = append(lines, e.ContextMap())
	}
	if len(lines) != 2 {
		t.Fatalf("%d run finished lines, want 2", len(lines))
	}
	want := map[string]int64{"applied": 1, "clients_population": 7, "clients_matched": 3, "clients_grace": 1, "clients_applied": 2, "clients_failed": 0}
	for k, v := range want {
		if lines[0][k] != v {
			t.Errorf("run 1: %s = %v, want %d (line %v)", k, lines[0][k], v, lines[0])
		}
	}
	for k := range lines[1] {
		if len(k) > 8 && k[:8] == "clients_" {
			t.Errorf("a run without API clients logs %s", k)
		}
	}
}
