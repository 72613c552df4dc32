package cli

import (
	"fmt"
	"os"

	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
)

// summaryTop is how many plan items a run summary lists by name.
const summaryTop = 10

// planMessages are the messages a run of this plan would send to the
// receivers of the notify section: the run summary to every summary
// receiver, and a failure alert to every failures receiver when the data was
// incomplete or a guardrail tripped. (Owner digests and notices come with
// the grace workflow, which the engine does not run yet.)
func planMessages(cfg *policy.Config, p *plan.Plan, planErr error) []*notify.Message {
	runID := p.RunID
	if runID == "" {
		runID = "plan"
	}
	at := p.GeneratedAt
	var items []notify.SummaryItem
	for _, it := range p.Items {
		items = append(items, notify.SummaryItem{TokenID: it.TokenID, TokenName: it.TokenName, OwnerID: it.OwnerID,
			Policy: it.Policy, Action: it.Action, Outcome: notify.OutcomeWouldApply, Reason: it.Reason})
	}
	for _, s := range p.Skipped {
		items = append(items, notify.SummaryItem{TokenID: s.TokenID, TokenName: s.TokenName, OwnerID: s.OwnerID,
			Policy: s.Policy, Outcome: notify.OutcomeSkipped, Reason: s.Reason})
	}
	var guards, tripped []notify.Guardrail
	for _, g := range p.Guardrails {
		ng := notify.Guardrail{Name: g.Name, Limit: g.Limit, Wanted: g.Wanted, Tripped: g.Tripped}
		guards = append(guards, ng)
		if g.Tripped {
			tripped = append(tripped, ng)
		}
	}
	rows, top, more := notify.Summarize(items, summaryTop)
	sum := notify.Summary{Tenant: p.Tenant, DryRun: true, StartedAt: at, FinishedAt: at, Population: p.Population,
		Rows: rows, Top: top, More: more, Guardrails: guards}
	var msgs []*notify.Message
	for _, r := range cfg.Notify.Summary {
		msgs = append(msgs, notify.SummaryMessage(r, runID, at, sum))
	}
	var failures []notify.Failure
	if planErr != nil {
		failures = append(failures, notify.Failure{Kind: notify.FailureRun, Tenant: p.Tenant, Error: planErr.Error(), At: at})
	}
	if len(tripped) > 0 {
		failures = append(failures, notify.Failure{Kind: notify.FailureGuardrail, Tenant: p.Tenant, Guardrails: tripped, At: at})
	}
	for _, f := range failures {
		for _, r := range cfg.Notify.Failures {
			msgs = append(msgs, notify.FailureMessage(r, runID+"-"+string(f.Kind), at, f))
		}
	}
	return msgs
}

// writePlanNotifications renders planMessages into dir, one file each, and
// sends nothing (notify.WriteDir reads no secret).
func writePlanNotifications(dir string, cfg *policy.Config, p *plan.Plan, planErr error) ([]string, error) {
	ncfg := notifyConfig(cfg.Notify)
	r, err := notify.NewRenderer(notify.RenderOptions{Templates: ncfg.Templates, Location: cfg.Location})
	if err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	paths, err := notify.WriteDir(dir, ncfg, r, planMessages(cfg, p, planErr))
	if err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	return paths, nil
}
