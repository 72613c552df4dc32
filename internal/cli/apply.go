package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/report"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// JournalFile is the journal's name inside --state-dir.
const JournalFile = "journal.jsonl"

type applyFlags struct {
	autoApprove bool
	showAll     bool
	maxPlanAge  time.Duration
	journal     journalFlags
	// acceptGuardrails and reason: the explicit, journaled override of a
	// saved plan's tripped guardrails (one flag per guardrail).
	acceptGuardrails []string
	reason           string
	detailed         bool
}

func newApplyCmd(g *globals) *cobra.Command {
	var o applyFlags
	cmd := &cobra.Command{
		Use:   "apply [PLAN]",
		Short: "Execute the enforce-mode actions: of a saved plan, or planned now",
		Long: `With PLAN (a file saved by 'patjanitor plan --out'): check that the plan is
for this tenant, API version and config, is intact and not older than
--max-plan-age; list the tenant afresh; and execute only the plan's
enforce-mode items whose token still gets the same decision. Every item that
no longer holds is reported with the reason, and tokens that are not in the
plan are never touched.

Without PLAN: plan now and execute that plan.

Each mutation is journaled (--journal) before its request is sent and after
it; if the journal cannot be written, nothing is changed. apply asks for
confirmation on a terminal, after a summary (the policies with their counts,
the guardrails and only the items that change the tenant; --show-all shows
the whole report); without a terminal it refuses unless --auto-approve is
given.

A saved plan whose guardrail tripped acts on nothing. A reviewer who has
read it and wants it carried out anyway accepts each tripped guardrail by
name: --accept-guardrail maxActionsPerRun --reason "…" (repeat the flag for
each guardrail; saved plans only). The acceptance, the OS user who gave it
and the reason are recorded in the journal's run-start, with the approved
plan's planHash and the plan file's SHA-256. The run is still blocked if the
fresh listing wants more than the plan did.

A saved plan is executed at most once: before its first change, the state
store (--state-dir) records its planHash with the run id, and a plan on
record is refused (journaled, nothing sent): make a new plan and have it
approved. A run interrupted after that record also counts (what it did not
get to needs a new plan), unless it stopped before sending anything.
--max-plan-age is at most 720h (30 days), the time executed plans are
remembered.

Exit codes: 0 everything that was to be done was done (possibly nothing);
1 an error, a refused plan, a tripped guardrail or any failed action. With
--detailed-exitcode, 2 when a saved plan's actions were all dropped at apply
time (tokens gone or changed: nothing was done).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			planFile := ""
			if len(args) == 1 {
				planFile = args[0]
			}
			if len(o.acceptGuardrails) > 0 {
				if planFile == "" {
					return errors.New("--accept-guardrail needs a saved plan (apply PLAN): a guardrail is accepted for a plan a reviewer has read, never for one made now")
				}
				if strings.TrimSpace(o.reason) == "" {
					return errors.New(`--accept-guardrail needs --reason "…": the journal records why the guardrail was overridden`)
				}
				if err := janitor.CheckReason("apply", o.reason, ""); err != nil {
					return err
				}
			} else if o.reason != "" {
				return errors.New("--reason goes with --accept-guardrail")
			}
			return runApply(cmd.Context(), g, o, planFile)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.autoApprove, "auto-approve", false, "do not ask for confirmation")
	f.BoolVar(&o.showAll, "show-all", false, "before asking, show the whole report, not only what changes the tenant")
	f.StringArrayVar(&o.acceptGuardrails, "accept-guardrail", nil, "apply a saved plan although this guardrail tripped (repeat per guardrail; needs --reason; journaled)")
	f.StringVar(&o.reason, "reason", "", "why the guardrails are accepted (recorded in the journal; at most 4096 bytes)")
	f.BoolVar(&o.detailed, "detailed-exitcode", false, "exit 2 when every action of the saved plan was dropped at apply time")
	f.DurationVar(&o.maxPlanAge, "max-plan-age", janitor.DefaultMaxPlanAge, "refuse a saved plan older than this")
	addJournalFlags(f, &o.journal)
	return cmd
}

func (g *globals) journalPath(flag string) string {
	if flag != "" {
		return flag
	}
	return filepath.Join(g.stateDir, JournalFile)
}

func runApply(ctx context.Context, g *globals, o applyFlags, planFile string) error {
	log, err := g.logger()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	var saved *plan.Plan
	var savedBytes []byte
	if planFile != "" {
		if savedBytes, saved, err = plan.ReadFile(planFile); err != nil {
			return err
		}
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	approvals, err := loadApprovals(cfg)
	if err != nil {
		return err
	}
	conn, err := connect(cfg, nil, log)
	if err != nil {
		return err
	}

	// The state store first (it keeps the journal's anchor), then the
	// journal, before anything is listed: a run that could not journal must
	// not get as far as asking for confirmation.
	if err := g.checkStateDir(); err != nil {
		return fmt.Errorf("%w; nothing was changed", err)
	}
	st, err := g.runState(false)
	if err != nil {
		return fmt.Errorf("%w; nothing was changed", err)
	}
	defer func() { _ = st.Close() }()
	journal, pending, err := g.openJournal(o.journal, st)
	if err != nil {
		return fmt.Errorf("%w; nothing was changed", err)
	}
	defer func() { _ = journal.Close() }()
	notifiers, err := buildNotifiers(cfg, log)
	if err != nil {
		return fmt.Errorf("%w; nothing was changed", err)
	}
	if _, err := journalSnoozes(ctx, st, journal); err != nil {
		return fmt.Errorf("%w; nothing was changed", err)
	}
	if _, err := janitor.JournalAcks(ctx, st, journal); err != nil {
		return fmt.Errorf("%w; nothing was changed", err)
	}

	opts := janitor.Options{
		Config: cfg, Tenant: conn.client, TenantURL: conn.client.BaseURL(),
		APIVersion: conn.client.Version(), ClientID: conn.client.ClientID(),
		Journal: journal, Logger: log,
	}
	if err := withState(&opts, cfg, st, notifiers, nil, log); err != nil {
		return err
	}
	eng, err := janitor.New(opts)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		log.Warn("the journal holds intents without an outcome (an earlier run was interrupted); this run resolves them against a fresh listing",
			zap.Int("intents", len(pending)))
	}

	var res *janitor.Result
	var runErr error
	if saved != nil {
		ref, aerr := approvals.PlanRef(planFile, savedBytes, saved.PlanHash, time.Now())
		// A refusal this host's clock may have decided (signatures'
		// validity, the plan's age) is made on a clock the tenant confirms.
		if aerr != nil && eng.NeedsApproval(saved) != "" {
			if err := eng.ConfirmRefusal(ctx, aerr); err != nil {
				return &exitError{code: 1, err: err}
			}
		}
		if refusal, jerr := eng.RefuseUnapproved(ctx, janitor.RunInput{}, saved, ref, aerr); refusal != nil {
			return &exitError{code: 1, err: errors.Join(refusal, jerr)}
		}
		res, runErr = applySaved(ctx, g, o, eng, saved, planFile, &ref)
		// Refused before anything was listed, by its age on this host's
		// clock or by another check: a refusal that is journaled sends its
		// notice through the outbox, on a clock no listing has checked yet
		// (as ApplySigned). A foreign plan is not confirmed: nothing of it
		// is journaled.
		if res == nil && (janitor.ClockJudged(runErr) || eng.JournalsRefusal(runErr)) {
			if err := eng.ConfirmRefusal(ctx, runErr); err != nil {
				return &exitError{code: 1, err: err}
			}
		}
		if _, jerr := eng.JournalRefused(ctx, janitor.RunInput{}, ref, res, runErr); jerr != nil {
			runErr = errors.Join(runErr, jerr)
		}
	} else {
		res, runErr = applyNow(ctx, g, o, eng, cfg)
	}
	if res != nil {
		if err := printResult(g.streams.Out, res); err != nil {
			return err
		}
	}
	if runErr != nil {
		return &exitError{code: 1, err: runErr}
	}
	if allDropped(res) {
		fmt.Fprintf(g.streams.Err, "Every one of the %d approved actions was dropped at apply time (reasons above): nothing was changed.\n", len(res.Items))
	}
	if o.detailed && allDropped(res) {
		return &exitError{code: 2}
	}
	return nil
}

// allDropped reports whether a run had actions to do and dropped every one
// of them at apply time (tokens gone, used again, decided differently).
func allDropped(res *janitor.Result) bool {
	if res == nil || len(res.Items) == 0 {
		return false
	}
	return res.Count(janitor.OutcomeDropped) == len(res.Items)
}

// requester is who asks for a journaled change: --by, else the OS user.
func requester(by string) string {
	if by != "" {
		return by
	}
	return osUser()
}

// osUser names who runs this process, for the journal: the login name, or
// the uid when the user database has no entry (a container's random uid).
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return fmt.Sprintf("uid %d", os.Getuid())
}

// errDeclined ends a run the user did not confirm.
var errDeclined = errors.New("apply cancelled: nothing was changed")

func applySaved(ctx context.Context, g *globals, o applyFlags, eng *janitor.Engine, saved *plan.Plan, planFile string, ref *audit.PlanRef) (*janitor.Result, error) {
	ao := janitor.ApplyOptions{MaxAge: o.maxPlanAge, Plan: ref}
	if len(o.acceptGuardrails) > 0 {
		by := osUser()
		for _, name := range o.acceptGuardrails {
			ao.Accept = append(ao.Accept, janitor.GuardrailAcceptance{Name: name, By: by, Reason: o.reason})
		}
	}
	// The static checks first, so that a stale or foreign plan is refused
	// before anyone is asked to confirm it.
	if err := eng.CheckPlan(saved, o.maxPlanAge, ao.Accept...); err != nil {
		return nil, err
	}
	if err := eng.CheckExecuted(ctx, saved); err != nil {
		return nil, err
	}
	for _, a := range ao.Accept {
		fmt.Fprintf(g.streams.Err, "Accepting the tripped guardrail %s of %s as %s: %s (recorded in the journal)\n", a.Name, planFile, a.By, a.Reason)
	}
	pending := saved.Pending()
	held := countGrace(saved)
	heldClients := countClientGrace(saved) // apiclients.go
	clients := len(saved.PendingClients()) // API client disables and deletes
	if len(pending) == 0 && held == 0 && clients == 0 && heldClients == 0 {
		_, err := fmt.Fprintf(g.streams.Out, "The plan %s has no enforce-mode actions. Nothing to do.\n", planFile)
		return nil, err
	}
	if !o.autoApprove {
		if err := showBeforeConfirm(g, saved, o.showAll); err != nil {
			return nil, err
		}
		q := fmt.Sprintf("\npatjanitor will re-check %s and then %s against %s.", planFile, applyWhat(len(pending)+clients, held, heldClients), eng.TenantURL())
		if err := confirm(g.streams, q); err != nil {
			return nil, err
		}
	}
	return eng.ApplyPlan(ctx, saved, ao)
}

func applyNow(ctx context.Context, g *globals, o applyFlags, eng *janitor.Engine, cfg *policy.Config) (*janitor.Result, error) {
	pl, err := eng.Plan(ctx)
	if pl == nil {
		return nil, err
	}
	if action := eng.NeedsApproval(pl.Plan); action != "" {
		return nil, fmt.Errorf("approvals are required for %s (approvals.for): nothing was changed; save the plan (patjanitor plan --out plan.json), have %d reviewers sign it (patjanitor approve plan.json --key KEY) and apply it (patjanitor apply plan.json)",
			action, cfg.Approvals.Required)
	}
	// blocked: the token actions are refused (incomplete token data or a
	// tripped token guardrail). The API client actions have their own
	// blocks (clientsToDo counts only those that would run).
	blocked := pl.Err != nil
	for _, gr := range pl.Plan.Guardrails {
		blocked = blocked || gr.Tripped
	}
	clientsToDo, heldClients := 0, 0
	if pl.ClientsError() == nil && (pl.Plan.APIClients == nil || len(pl.Plan.APIClients.Tripped()) == 0) {
		clientsToDo = len(pl.Plan.PendingClients())
		heldClients = countClientGrace(pl.Plan)
	}
	if !o.autoApprove || blocked {
		// A blocked run shows what it refuses and why, also unattended.
		if rerr := showBeforeConfirm(g, pl.Plan, o.showAll); rerr != nil {
			return nil, rerr
		}
	}
	pending := pl.Plan.Pending()
	held := countGrace(pl.Plan)
	if o.autoApprove || clientsToDo == 0 && heldClients == 0 && (blocked || len(pending) == 0 && held == 0) {
		// Execute refuses a blocked plan (and says why) without asking,
		// resolves interrupted intents even when nothing is pending, and
		// sends the run's summary.
		if len(pending) == 0 && clientsToDo == 0 && !blocked {
			msg := "No enforce-mode actions. Nothing to do."
			if held > 0 {
				msg = fmt.Sprintf("No enforce-mode action is due. Marking %d tokens of policies with a grace period and warning their owners.", held)
			}
			if heldClients > 0 {
				msg = "No enforce-mode action is due. " + strings.ToUpper(applyWhat(0, held, heldClients)[:1]) + applyWhat(0, held, heldClients)[1:] + "."
			}
			if _, err := fmt.Fprintln(g.streams.Out, msg); err != nil {
				return nil, err
			}
		}
		return eng.Execute(ctx, pl)
	}
	// Marking tokens warns their owners, marking API clients the
	// notify.apiClients receivers: that is asked for like an action.
	q := fmt.Sprintf("\npatjanitor will %s against %s.", applyWhat(len(pending)+clientsToDo, held, heldClients), eng.TenantURL())
	if err := confirm(g.streams, q); err != nil {
		return nil, err
	}
	// The answer may come hours after the listing: re-verify the plan against
	// a fresh one, exactly as for a saved plan.
	return eng.ApplyPlan(ctx, pl.Plan, janitor.ApplyOptions{})
}

// showBeforeConfirm prints what a reviewer approves: by default a summary
// (the policies with their counts, the guardrails, and only the items that
// change the tenant or warn owners), with --show-all the whole report. A
// 490-line report for one delete buries the one line that matters.
func showBeforeConfirm(g *globals, p *plan.Plan, showAll bool) error {
	o := report.Options{Width: terminalWidth(g.streams.Out), ChangesOnly: !showAll}
	if err := report.RenderOptions(g.streams.Out, p, report.FormatTable, o); err != nil {
		return fmt.Errorf("render the plan: %w", err)
	}
	if showAll {
		return nil
	}
	_, err := fmt.Fprintln(g.streams.Out, "The whole report: add --show-all, or save it with 'patjanitor plan -o html --report-file plan.html'.")
	return err
}

// terminalWidth is the width of w when it is a terminal, else the reports'
// default (80 columns: a file or a pipe has no width, and 80 reads anywhere).
func terminalWidth(w io.Writer) int {
	if tw, ok := w.(interface{ Width() int }); ok { // test streams
		return tw.Width()
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if width, _, err := term.GetSize(int(f.Fd())); err == nil && width > 0 {
			return width
		}
	}
	return report.DefaultWidth
}

// terminal is implemented by test streams that pretend to be a terminal.
type terminal interface{ IsTerminal() bool }

// isTerminal reports whether the stream s (standard input or output) is an
// interactive terminal.
func isTerminal(s any) bool {
	switch f := s.(type) {
	case terminal:
		return f.IsTerminal()
	case *os.File:
		return term.IsTerminal(int(f.Fd()))
	}
	return false
}

// confirm asks on the terminal and accepts only "yes", like terraform apply.
func confirm(s Streams, question string) error {
	if !isTerminal(s.In) {
		return errors.New("refusing to apply without a terminal to confirm on: review the plan and pass --auto-approve")
	}
	if _, err := fmt.Fprintf(s.Out, "%s\nOnly 'yes' will be accepted to approve.\n\nEnter a value: ", question); err != nil {
		return err
	}
	line, err := bufio.NewReader(s.In).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read the confirmation: %w", err)
	}
	if strings.TrimSpace(line) != "yes" {
		return errDeclined
	}
	return nil
}

// printResult says what was done, item by item, then the totals.
func printResult(w io.Writer, res *janitor.Result) error {
	ew := &stickyWriter{w: w}
	fmt.Fprintf(ew, "\nRun %s\n", res.RunID)
	if n := len(res.Recovered); n > 0 {
		gone := 0
		for _, r := range res.Recovered {
			if r.Gone {
				gone++
			}
		}
		fmt.Fprintf(ew, "Resolved %d interrupted actions of an earlier run (%d tokens gone, %d still present and decided afresh).\n", n, gone, n-gone)
	}
	tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
	blocked := 0
	for _, it := range res.Items {
		detail := it.Detail
		if it.Outcome == janitor.OutcomeBlocked {
			// Every blocked item has the same reason, the run's error,
			// which is said once, at the end: not on each of 88 lines.
			blocked++
			detail = ""
		}
		// Names, ids and error details come from the tenant: escaped, one
		// row per item whatever they hold.
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", outcomeWord(it), untrusted.Terminal(it.Item.TokenID),
			untrusted.Terminal(it.Item.TokenName), untrusted.Terminal(it.Item.Policy), untrusted.Terminal(detail))
	}
	_ = tw.Flush()
	if blocked > 0 {
		fmt.Fprintf(ew, "Blocked: %s not executed; nothing was changed (the reason follows).\n", plural(blocked, "action"))
	}
	fmt.Fprintf(ew, "Applied %d, already gone %d, failed %d, dropped %d, blocked %d, not started %d.\n",
		res.Count(janitor.OutcomeApplied), res.Count(janitor.OutcomeGone), res.Count(janitor.OutcomeFailed),
		res.Count(janitor.OutcomeDropped), res.Count(janitor.OutcomeBlocked),
		res.Count(janitor.OutcomeNotStarted)+res.Count(janitor.OutcomeRefused))
	printClientResults(ew, res) // apiclients.go
	if rep := res.Notified; len(rep.Results) > 0 {
		warned := 0
		for _, r := range rep.Results {
			warned += len(r.Warned)
		}
		fmt.Fprintf(ew, "Notifications: %d sent (%d grace clocks started), %d waiting in the outbox for the next run, %d given up, %d not repeated.\n",
			rep.Count(notify.Sent), warned, rep.Count(notify.Deferred), rep.Count(notify.Failed), rep.Count(notify.Suppressed))
	}
	return ew.err
}

func outcomeWord(r janitor.ItemResult) string {
	if r.Outcome != janitor.OutcomeApplied {
		return strings.ToUpper(string(r.Outcome))
	}
	switch policy.Action(r.Item.Action) {
	case policy.ActionDelete:
		return "deleted"
	case policy.ActionExpire:
		return "expired"
	default:
		return "patched"
	}
}

// stickyWriter keeps the first write error so a report can be written without
// checking every line.
type stickyWriter struct {
	w   io.Writer
	err error
}

func (e *stickyWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// countGrace counts the plan's grace items: tokens an apply marks and whose
// owners it warns, without acting on them.
func countGrace(p *plan.Plan) int {
	n := 0
	for _, it := range p.Items.All() {
		if it.Mode == plan.ModeGrace {
			n++
		}
	}
	return n
}

// applyWhat says what an apply is about to do, for its confirmation.
func applyWhat(actions, held, heldClients int) string {
	var parts []string
	if actions > 0 {
		parts = append(parts, fmt.Sprintf("execute up to %d actions", actions))
	}
	if held > 0 {
		parts = append(parts, fmt.Sprintf("mark %d tokens of policies with a grace period and warn their owners (nothing in the tenant changes for those)", held))
	}
	if heldClients > 0 {
		parts = append(parts, fmt.Sprintf("mark %s of policies with a grace period and warn the notify.apiClients receivers (nothing in the tenant changes for those)", plural(heldClients, "API client")))
	}
	return strings.Join(parts, ", and ")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
