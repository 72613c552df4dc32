package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/patjanitor/patjanitor/internal/audit"
)

func newAuditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Inspect the journal of changes",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newAuditVerifyCmd(g))
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
	_, err = fmt.Fprintf(g.streams.Out, "%s: OK: %d records, %d runs, last seq %d, last hash %s, %d intents without an outcome\n",
		path, sum.Records, sum.Runs, sum.LastSeq, hashOrNone(sum.LastHash), sum.PendingIntents)
	return err
}

func hashOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
