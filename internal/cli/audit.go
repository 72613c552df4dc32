package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

func newAuditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Inspect the journal of changes",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newAuditVerifyCmd(g), newAuditShowCmd(g))
	return cmd
}

func newAuditVerifyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify [JOURNAL]",
		Short: "Verify the journal's hash chain and name the first broken record",
		Long: `Read the journal (default <state-dir>/journal.jsonl) and check every record:
valid JSON, seq 1, 2, 3, ... without gaps, each prevHash the previous record's
hash, each hash the hash of its line. Prints a summary and exits 0, or names
the first broken record and exits 1. Read-only: it never repairs anything.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := g.journalPath("")
			if len(args) == 1 {
				path = args[0]
			}
			return runAuditVerify(g, path)
		},
	}
}

func runAuditVerify(g *globals, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	defer func() { _ = f.Close() }()
	sum, err := audit.Verify(f)
	var ce *audit.ChainError
	if errors.As(err, &ce) {
		msg := fmt.Sprintf("%s: BROKEN after %d good records: %v", path, sum.Records, ce)
		if ce.Torn() {
			msg += " (a torn final record: the trace of a write interrupted by a crash; the next apply removes it)"
		}
		return &exitError{code: 1, err: errors.New(msg)}
	}
	if err != nil {
		return fmt.Errorf("audit verify %s: %w", path, err)
	}
	if _, err := fmt.Fprintf(g.streams.Out, "%s: OK: %d records, %d runs, last seq %d, last hash %s, %d intents without an outcome\n",
		path, sum.Records, sum.Runs, sum.LastSeq, hashOrNone(sum.LastHash), sum.PendingIntents); err != nil {
		return err
	}
	// The verified chain vouches for what follows: each saved plan applied,
	// with its approvals, or refused.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("audit verify %s: %w", path, err)
	}
	w := &stickyWriter{w: g.streams.Out}
	err = audit.Scan(f, func(r audit.Record) error {
		if r.Kind == audit.KindRunStart && r.Plan != nil {
			writePlanRef(w, r.RunID, r.Plan)
		}
		return w.err
	})
	if err != nil {
		return fmt.Errorf("audit verify %s: %w", path, err)
	}
	return w.err
}

// writePlanRef prints the saved plan a run applied, and who approved it.
func writePlanRef(w io.Writer, runID string, p *audit.PlanRef) {
	verb := "applied"
	if p.Refused != "" {
		verb = "REFUSED"
	}
	fmt.Fprintf(w, "run %s %s plan %s", runID, verb, p.PlanHash)
	if p.File != "" {
		fmt.Fprintf(w, ", file %s %s", escapeLine(p.File), p.FileSHA256)
	}
	fmt.Fprintln(w)
	for _, a := range p.AcceptedGuardrails {
		fmt.Fprintf(w, "  accepted guardrail %s (limit %g, wanted %d) by %s: %s\n", a.Name, a.Limit, a.Wanted, escapeLine(a.By), escapeLine(a.Reason))
	}
	for _, a := range p.Approvals {
		at := "time not stated"
		if a.SignedAt != nil {
			at = "signed " + a.SignedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "  approved by %s (%s), %s", escapeLine(a.Principal), a.Fingerprint, at)
		if a.Reason != "" {
			fmt.Fprintf(w, ": %s", escapeLine(a.Reason))
		}
		fmt.Fprintln(w)
	}
	if p.Refused != "" {
		fmt.Fprintf(w, "  refused: %s\n", escapeLine(p.Refused))
	}
}

// escapeLine keeps text that others wrote (reasons, principals, file names)
// on one line and free of terminal control sequences.
func escapeLine(s string) string { return untrusted.Terminal(s) }

func newAuditShowCmd(g *globals) *cobra.Command {
	var journal string
	cmd := &cobra.Command{
		Use:   "show RUN_ID",
		Short: "Show one run of the journal: the plan it applied, its approvals and its changes",
		Long: `Print one run's records from the journal (default <state-dir>/journal.jsonl):
the saved plan it applied with the sha256 and planHash reviewers approved, each
approval (principal, key fingerprint, time, reason), then every intended change
and its outcome. Read-only. Run ids are in apply's output, the logs and
'audit verify'.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAuditShow(g, g.journalPath(journal), args[0])
		},
	}
	cmd.Flags().StringVar(&journal, "journal", "", "journal file (default <state-dir>/"+JournalFile+")")
	return cmd
}

func runAuditShow(g *globals, path, runID string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("audit show: %w", err)
	}
	defer func() { _ = f.Close() }()
	w := &stickyWriter{w: g.streams.Out}
	found := false
	err = audit.Scan(f, func(r audit.Record) error {
		if r.RunID != runID {
			return nil
		}
		found = true
		at := r.Time.UTC().Format(time.RFC3339)
		switch r.Kind {
		case audit.KindRunStart:
			fmt.Fprintf(w, "%s  #%d run-start  %s\n", at, r.Seq, escapeLine(r.Note))
			if r.Plan != nil {
				writePlanRef(w, r.RunID, r.Plan)
			}
		case audit.KindIntent:
			req := ""
			if r.Request != nil {
				req = r.Request.Method + " " + r.Request.Path
			}
			fmt.Fprintf(w, "%s  #%d intent     %s  %s  policy %s\n", at, r.Seq, escapeLine(r.TokenID), escapeLine(req), escapeLine(r.Policy))
		case audit.KindOutcome:
			status, detail := "", ""
			if r.Outcome != nil {
				status = r.Outcome.Status
				if r.Outcome.Code != 0 {
					detail = fmt.Sprintf(" (HTTP %d)", r.Outcome.Code)
				}
				if r.Outcome.Error != "" {
					detail += ": " + escapeLine(r.Outcome.Error)
				}
			}
			fmt.Fprintf(w, "%s  #%d outcome    %s  %s%s\n", at, r.Seq, escapeLine(r.TokenID), escapeLine(status), escapeLine(detail))
		default:
			fmt.Fprintf(w, "%s  #%d %-10s %s\n", at, r.Seq, r.Kind, escapeLine(r.Note))
		}
		return w.err
	})
	if err != nil {
		return fmt.Errorf("audit show %s: %w", path, err)
	}
	if !found {
		return &exitError{code: 1, err: fmt.Errorf("audit show: no run %s in %s", runID, path)}
	}
	return w.err
}

func hashOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
