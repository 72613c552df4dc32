package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/policy"
)

// validateRuns is how many upcoming runs validate shows per schedule.
const validateRuns = 3

type validateFlags struct {
	now        string // hidden: a fixed "now" for reproducible output (tests, docs)
	syntaxOnly bool
	format     string
}

func newValidateCmd(g *globals) *cobra.Command {
	var o validateFlags
	cmd := &cobra.Command{
		Use:   "validate [FILE]",
		Short: "Check the config and everything it names, offline, and print a summary",
		Long: `Load the config (FILE, or -c, default policies.yaml) strictly, as serve, plan
and apply do, and everything else those commands load before they contact
the tenant: the client secret (PATJANITOR_CLIENT_SECRET or
tenant.clientSecretFile: the file must exist, be readable and not be empty),
the notify receivers with their secret files and the notification templates,
and the state directory (--state-dir: it must be a writable directory, or
creatable). Then print what the config says: the tenant, the guardrails, the
exclusions, each policy with its mode, action, schedule and next runs in the
configured time zone, the listing calls a run will make and the request each
action sends. Exit 0. Warnings (an enforce-mode patch policy that can match
other owners' tokens, which a real tenant does not let patjanitor patch) go
to stderr.

If anything is wrong, print every problem (with file, line, policy and field
for the config itself) and exit 1: a config that validate passes does not
fail to start serve, plan or notify test for a reason validate could see.

--syntax-only checks the file alone (like promtool check config
--syntax-only): for a config written on one machine and deployed on another.

validate never contacts the tenant, never prints a secret, and never creates
or changes a file. The PATJANITOR_TENANT_URL and PATJANITOR_CLIENT_ID
overrides are applied (and shown), so that it checks what a run would use.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				// promtool/amtool habit: the file as an argument.
				if f := cmd.Flags().Lookup("config"); f != nil && f.Changed && f.Value.String() != args[0] {
					return fmt.Errorf("validate: the file is given twice (%s and -c %s): give one", args[0], f.Value.String())
				}
				g.config = args[0]
			}
			return runValidate(g, o, os.Getenv)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.now, "now", "", "evaluate schedules and cutoffs at this RFC 3339 time instead of now")
	_ = f.MarkHidden("now")
	f.BoolVar(&o.syntaxOnly, "syntax-only", false, "check the config file only, not the files and directories it names")
	f.StringVarP(&o.format, "output", "o", "text", "output format: text or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runValidate(g *globals, o validateFlags, getenv func(string) string) error {
	if o.format == "" {
		o.format = "text"
	}
	if o.format != "text" && o.format != "json" {
		return fmt.Errorf("-o %q: want text or json", o.format)
	}
	now := time.Now()
	if o.now != "" {
		t, err := pat.ParseTime(o.now)
		if err != nil {
			return fmt.Errorf("--now: %w", err)
		}
		now = t
	}
	cfg, err := policy.Load(g.config)
	var problems policy.Errors
	if errors.As(err, &problems) {
		if o.format == "json" {
			if err := writeValidateJSON(g.streams.Out, g.config, nil, problems, nil); err != nil {
				return err
			}
		} else {
			for _, p := range problems {
				if _, werr := fmt.Fprintln(g.streams.Err, p.Error()); werr != nil {
					return werr
				}
			}
		}
		noun := "problems"
		if len(problems) == 1 {
			noun = "problem"
		}
		return &exitError{code: 1, err: fmt.Errorf("%s: %d %s", g.config, len(problems), noun)}
	}
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	fileURL, fileID := cfg.Tenant.URL, cfg.Tenant.ClientID
	if err := cfg.ApplyEnv(getenv); err != nil {
		return &exitError{code: 1, err: err}
	}
	var depErrs []error
	if !o.syntaxOnly {
		depErrs = checkDependencies(cfg, g.stateDir)
	}
	if o.format == "json" {
		if err := writeValidateJSON(g.streams.Out, g.config, cfg, nil, depErrs); err != nil {
			return err
		}
	}
	if len(depErrs) > 0 {
		if o.format != "json" {
			for _, e := range depErrs {
				if _, werr := fmt.Fprintln(g.streams.Err, e.Error()); werr != nil {
					return werr
				}
			}
		}
		noun := "problems"
		if len(depErrs) == 1 {
			noun = "problem"
		}
		return &exitError{code: 1, err: fmt.Errorf("%s: %d %s with what it names (serve and apply would fail the same way)", g.config, len(depErrs), noun)}
	}
	if o.format == "json" {
		return nil
	}
	return printValidateSummary(g, cfg, fileURL, fileID, now, o.syntaxOnly)
}

// printValidateSummary prints what a valid config says; fileURL and fileID
// are the tenant settings as the file has them (before the environment).
func printValidateSummary(g *globals, cfg *policy.Config, fileURL, fileID string, now time.Time, syntaxOnly bool) error {
	origin := func(v, fileV, env string) string {
		switch {
		case v == "":
			return "(not set: set it in the file or " + env + ")"
		case v != fileV:
			return v + " (from " + env + ")"
		}
		return v
	}
	if err := printConfigWarnings(g.streams.Err, cfg, fileID); err != nil {
		return err
	}
	w := &errWriter{w: g.streams.Out}
	w.printf("%s is valid (%s)\n\n", cfg.File, cfg.Digest)
	if msg := policy.TenantHostWarning(cfg.Tenant.URL); msg != "" {
		if _, err := fmt.Fprintln(g.streams.Err, "warning: "+msg); err != nil {
			return err
		}
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	t := cfg.Tenant
	row("tenant", origin(t.URL, fileURL, policy.EnvTenantURL))
	row("apiVersion", string(t.APIVersion))
	row("clientId", origin(t.ClientID, fileID, policy.EnvClientID))
	switch src := cfg.ClientSecretSource(); src {
	case "":
		row("clientSecret", "(not set: set tenant.clientSecretFile or "+policy.EnvClientSecret+")")
	case policy.EnvClientSecret:
		row("clientSecret", "from "+src+" (not shown)")
	default:
		if syntaxOnly {
			row("clientSecret", "from file "+src+" (not checked: --syntax-only)")
		} else {
			row("clientSecret", "from file "+src+" (read; not shown)")
		}
	}
	if t.RateLimit.Requests < 0 {
		row("rateLimit", "none (client side)")
	} else {
		row("rateLimit", fmt.Sprintf("%d requests per %s", t.RateLimit.Requests, policy.FormatDuration(t.RateLimit.Per)))
	}
	if t.TokenURL != "" {
		row("tokenUrl", t.TokenURL)
	} else {
		row("tokenUrl", "{url}/oauth/token (on 404: tokenEndpoint of {url}/oauth/info, same registrable domain only)")
	}
	if t.CredentialExpiryWarning > 0 {
		row("expiryWarn", policy.FormatDuration(t.CredentialExpiryWarning)+" before patjanitor's own PAT expires (tenant.credentialExpiryWarning)")
	} else {
		row("expiryWarn", "off (tenant.credentialExpiryWarning: 0)")
	}
	if t.Unpaged {
		row("unpaged", "yes: a listing of exactly 250 tokens is trusted")
	} else {
		row("unpaged", "no: a listing of exactly 250 tokens is asked again with limit=250&offset=250; a capped page stops the run")
	}
	row("listings", "at most "+t.MaxListingBytes.String()+" per run (tenant.maxListingBytes)")
	row("runTimeout", policy.FormatDuration(cfg.RunTimeout))
	row("schedule", cfg.Schedule+" (policies without their own)")
	row("timezone", cfg.Timezone)
	l := cfg.Limits
	row("limits", fmt.Sprintf("maxActionsPerRun %s, maxActionsPercent %s, maxActionsPerOwner %s",
		limitString(float64(l.MaxActionsPerRun), ""), limitString(l.MaxActionsPercent, "%"), limitString(float64(l.MaxActionsPerOwner), "")))
	ex := cfg.Exclude
	row("exclude", fmt.Sprintf("tokenIds %s; ownerIds %s; names %s", listString(ex.TokenIDs), listString(ex.OwnerIDs), listString(ex.Names)))
	if cfg.Owners.Lookup {
		row("owners", "lookup on, fallbackEmail "+orNone(cfg.Owners.FallbackEmail))
	} else {
		row("owners", "lookup off")
	}
	row("notify", notifySummary(&cfg.Notify))
	switch a := cfg.Approvals; {
	case a == nil:
		row("approvals", "none: enforce-mode policies act without signed plans")
	case syntaxOnly:
		row("approvals", fmt.Sprintf("%d distinct reviewers for %s (files not read: --syntax-only)", a.Required, actionList(a.For)))
	default:
		// checkDependencies loaded the files already; a failure stopped validate there.
		if pol, err := loadApprovals(cfg); err == nil {
			row("approvals", fmt.Sprintf("%d distinct reviewers for %s; %d signers in %s", pol.Required,
				actionList(a.For), len(pol.Signers.Signers), pol.Signers.File))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	w.printf("\npolicies (%d):\n", len(cfg.Policies))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  NAME\tMODE\tACTION\tSCHEDULE\tNEXT RUNS (%s)\n", cfg.Timezone)
	for _, p := range cfg.Policies {
		runs, err := cfg.NextRuns(p.Schedule, now, validateRuns)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", p.Name, p.Mode, p.Action, p.Schedule, runsString(runs))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range cfg.Policies {
		w.printf("\n  %s", p.Name)
		if p.Description != "" {
			w.printf(": %s", p.Description)
		}
		w.printf("\n    match   %s\n", p.Match.String())
		switch p.Action {
		case policy.ActionPatch:
			w.printf("    patch   %s\n", p.Patch.String())
		case policy.ActionExpire:
			w.printf("    expire  expirationDate = run time + %s\n", policy.FormatDuration(p.ExpireIn))
		}
		if p.Grace > 0 {
			w.printf("    grace   %s after the owner's warning is delivered\n", policy.FormatDuration(p.Grace))
		}
	}

	groups, err := cfg.ScheduleGroups()
	if err != nil {
		return err
	}
	w.printf("\nlisting calls (cutoffs as of %s):\n", pat.FormatTime(now))
	if len(groups) > 1 {
		w.printf("  plan, apply (all policies): %s\n", listingsString(cfg.Listings(now)))
		for _, gr := range groups {
			w.printf("  schedule %q (%s): %s\n", gr.Spec, strings.Join(gr.Policies, ", "), listingsString(cfg.Only(gr.Policies...).Listings(now)))
		}
	} else {
		w.printf("  every run: %s\n", listingsString(cfg.Listings(now)))
	}
	if cfg.Limits.MaxActionsPercent > 0 {
		w.printf("  (one unfiltered listing because maxActionsPercent is a share of the whole population)\n")
	}
	if calls := actionCalls(cfg); len(calls) > 0 {
		w.printf("\nrequests per action (enforce mode):\n")
		for _, c := range calls {
			w.printf("  %s\n", c)
		}
	}
	for _, warn := range patchWarnings(cfg) {
		if _, err := fmt.Fprintln(g.streams.Err, warn); err != nil {
			return err
		}
	}
	if err := printClientPolicies(w, cfg, now); err != nil { // apiclients.go
		return err
	}
	return w.err
}

func limitString(v float64, unit string) string {
	if v == 0 {
		return "off"
	}
	return fmt.Sprintf("%g%s", v, unit)
}

func listString(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func notifySummary(n *policy.Notify) string {
	if len(n.Receivers) == 0 {
		return "no receivers"
	}
	var rs []string
	for _, r := range n.Receivers {
		ch := "?"
		switch {
		case r.Slack != nil:
			ch = "slack"
		case r.Webhook != nil:
			ch = "webhook"
		case r.Email != nil:
			ch = "email"
		}
		rs = append(rs, r.Name+" ("+ch+")")
	}
	out := fmt.Sprintf("receivers %s; summary %s; owners %s; failures %s",
		strings.Join(rs, ", "), listString(n.Summary), orNone(n.Owners), listString(n.Failures))
	// Only when routed: a config without API client policies reads as before.
	if len(n.APIClients) > 0 {
		out += "; apiClients " + listString(n.APIClients)
	}
	return out
}

func runsString(runs []time.Time) string {
	s := make([]string, len(runs))
	for i, r := range runs {
		s[i] = r.Format("Mon 2006-01-02 15:04")
	}
	if len(s) == 0 {
		return "never"
	}
	return strings.Join(s, ", ")
}

// listingsString renders the listing calls as the filters they send.
func listingsString(ls []pat.Listing) string {
	if len(ls) == 0 {
		return "none (no policy)"
	}
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = l.String()
		if l.Kind != pat.ListAll {
			s[i] = "filters=" + s[i]
		}
	}
	return strings.Join(s, " + ")
}

// errWriter remembers the first write error so that a long summary can be
// printed without checking every line.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) {
	_, _ = fmt.Fprintf(e, format, args...)
}

func actionList(actions []policy.Action) string {
	s := make([]string, len(actions))
	for i, a := range actions {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// printConfigWarnings prints the problems that do not make the config
// invalid (ids not in the tenant's form), one per line with file, line and
// field, and the same about PATJANITOR_CLIENT_ID when it replaced the file's
// clientId (fileID).
func printConfigWarnings(w io.Writer, cfg *policy.Config, fileID string) error {
	for _, p := range cfg.Warnings {
		if _, err := fmt.Fprintln(w, "warning: "+p.Error()); err != nil {
			return err
		}
	}
	if id := cfg.Tenant.ClientID; id != fileID && !pat.CanonicalID(id) {
		if _, err := fmt.Fprintf(w, "warning: %s: %s\n", policy.EnvClientID, policy.IDWarning(id)); err != nil {
			return err
		}
	}
	return nil
}
