package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/patjanitor/patjanitor/internal/daemon"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// printClientPolicies adds the resource: apiClients policies to validate's
// summary: what they match, what they do, when, and the API client listing
// calls a run makes.
func printClientPolicies(w *errWriter, cfg *policy.Config, now time.Time) error {
	if len(cfg.ClientPolicies) == 0 {
		return nil
	}
	w.printf("\nAPI client policies (resource: apiClients, %d):\n", len(cfg.ClientPolicies))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  NAME\tMODE\tACTION\tSCHEDULE\tNEXT RUNS (%s)\n", cfg.Timezone)
	for _, p := range cfg.ClientPolicies {
		runs, err := cfg.NextRuns(p.Schedule, now, validateRuns)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", p.Name, p.Mode, p.Action, p.Schedule, runsString(runs))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range cfg.ClientPolicies {
		w.printf("\n  %s", p.Name)
		if p.Description != "" {
			w.printf(": %s", p.Description)
		}
		w.printf("\n    match   %s\n", policy.ClientMatchString(&p.Match))
		if p.Action == policy.ActionDelete {
			w.printf("    delete  disable first; delete once patjanitor has kept the client disabled for %s\n", policy.FormatDuration(p.DisabledFor))
		}
		if p.Grace > 0 {
			w.printf("    grace   %s after the warning to notify.apiClients (%s) is delivered\n", policy.FormatDuration(p.Grace), strings.Join(cfg.Notify.APIClients, ", "))
		}
	}
	w.printf("\nAPI client listing calls (cutoffs as of %s): %s\n", pat.FormatTime(now), strings.ReplaceAll(listingsString(cfg.ClientListings(now)), "all tokens", "all API clients"))
	w.printf("  (internal clients, clients listed without internal or enabled, and the client patjanitor runs as are never acted on)\n")
	return w.err
}

// clientCountsOf condenses the API client part of a run for serve's "run
// finished" log line; nil for a run without an API client section.
func clientCountsOf(res *janitor.Result) *daemon.ClientCounts {
	if res.Plan == nil || res.Plan.APIClients == nil {
		return nil
	}
	s := res.Plan.APIClients
	c := &daemon.ClientCounts{Population: s.Population, Matched: len(s.Items)}
	for i := range s.Items {
		switch it := &s.Items[i]; {
		case it.Mode == plan.ModeGrace:
			c.Grace++
		case !it.Mutating():
			c.WouldApply++
		}
	}
	for _, r := range res.Clients {
		switch r.Outcome {
		case janitor.OutcomeApplied:
			c.Applied++
		case janitor.OutcomeGone:
			c.Gone++
		case janitor.OutcomeFailed:
			c.Failed++
		case janitor.OutcomeBlocked:
			c.Blocked++
		case janitor.OutcomeNotStarted, janitor.OutcomeRefused:
			c.NotStarted++
		}
	}
	return c
}

// countClientGrace counts the plan's held API client items: clients an apply
// marks, warning the notify.apiClients receivers.
func countClientGrace(p *plan.Plan) int {
	if p.APIClients == nil {
		return 0
	}
	n := 0
	for i := range p.APIClients.Items {
		if p.APIClients.Items[i].Mode == plan.ModeGrace {
			n++
		}
	}
	return n
}

// printClientResults lists the API client actions of a run after the token
// results: each client with what became of it, then the totals.
func printClientResults(w io.Writer, res *janitor.Result) {
	if len(res.Clients) == 0 {
		return
	}
	fmt.Fprintf(w, "API clients:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	n := map[janitor.Outcome]int{}
	for _, r := range res.Clients {
		n[r.Outcome]++
		word := strings.ToUpper(string(r.Outcome))
		if r.Outcome == janitor.OutcomeApplied {
			word = r.Item.Action + "d" // disabled, deleted
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", word, untrusted.Terminal(r.Item.ClientID), untrusted.Terminal(r.Item.Name), r.Item.Policy, untrusted.Terminal(r.Detail))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "API clients: applied %d, already gone %d, failed %d, dropped %d, blocked %d, awaiting approval %d, not started %d.\n",
		n[janitor.OutcomeApplied], n[janitor.OutcomeGone], n[janitor.OutcomeFailed], n[janitor.OutcomeDropped],
		n[janitor.OutcomeBlocked], n[janitor.OutcomeAwaitingApproval], n[janitor.OutcomeNotStarted]+n[janitor.OutcomeRefused])
}
