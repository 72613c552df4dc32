package cli

import (
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

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/state"
)

// statePath is the state store inside --state-dir.
func (g *globals) statePath() string { return filepath.Join(g.stateDir, state.FileName) }

// openState opens the state store, creating --state-dir if needed. A store
// held by a running `serve` waits state.DefaultLockTimeout and then says so.
func (g *globals) openState(now func() time.Time) (*state.Store, error) {
	if err := os.MkdirAll(g.stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	st, err := state.Open(g.statePath(), state.Options{Clock: now})
	if errors.Is(err, state.ErrInUse) {
		return nil, fmt.Errorf("open %s: %w (stop `patjanitor serve` or run the command where it runs, between runs)", g.statePath(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	return st, nil
}

type snoozeFlags struct {
	forText string
	reason  string
	by      string
	journal string
}

func newSnoozeCmd(g *globals) *cobra.Command {
	var o snoozeFlags
	cmd := &cobra.Command{
		Use:   "snooze TOKEN_ID --for 30d --reason TEXT",
		Short: "Exempt a token from every policy until a time, with a reason (journaled)",
		Long: `Exempt a token from every policy for a while. A snoozed token that a policy
matches is listed as skipped ("snoozed until …") and is neither marked nor acted
on. The snooze ends by itself; snoozing again replaces it. The snooze is kept in
<state-dir>/state.db and journaled (kind "snooze", with the reason and the end).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSnooze(cmd.Context(), g, o, args[0], time.Now)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.forText, "for", "", "how long, e.g. 30d, 2w, 36h (required)")
	f.StringVar(&o.reason, "reason", "", "why the token is exempt (required)")
	f.StringVar(&o.by, "by", "", "who asks for it (default the OS user)")
	f.StringVar(&o.journal, "journal", "", "journal file (default <state-dir>/"+JournalFile+")")
	return cmd
}

func runSnooze(ctx context.Context, g *globals, o snoozeFlags, tokenID string, now func() time.Time) error {
	if o.forText == "" {
		return errors.New("snooze: --for is required (e.g. --for 30d)")
	}
	d, err := policy.ParseDuration(o.forText)
	if err != nil || d <= 0 {
		return fmt.Errorf("snooze: --for %q: want a positive duration such as 30d (%v)", o.forText, err)
	}
	reason := strings.TrimSpace(o.reason)
	if reason == "" {
		return errors.New("snooze: --reason is required: a snooze is an exception someone must account for later")
	}
	by := o.by
	if by == "" {
		if u, err := user.Current(); err == nil {
			by = u.Username
		}
	}
	// The journal first, so that failing to open it leaves nothing half
	// done. A running serve holds it: then the snooze is stored flagged, and
	// that serve journals it when its next run starts (journalSnoozes),
	// before it decides anything.
	j, err := audit.Open(g.journalPath(o.journal), audit.Options{Clock: now})
	held := errors.Is(err, audit.ErrInUse)
	switch {
	case held:
	case err != nil:
		return fmt.Errorf("snooze: open journal: %w", err)
	default:
		defer func() { _ = j.Close() }()
	}
	st, err := g.openState(now)
	if err != nil {
		return fmt.Errorf("snooze: %w", err)
	}
	defer func() { _ = st.Close() }()
	z, err := st.PutSnooze(ctx, state.Snooze{TokenID: tokenID, Until: now().Add(d).UTC(), Reason: reason, By: by, Unjournaled: held})
	if err != nil {
		return fmt.Errorf("snooze: %w", err)
	}
	if held {
		_, err = fmt.Fprintf(g.streams.Out, "Snoozed %s until %s: %s\nThe journal is held by a running patjanitor serve; it journals this snooze when its next run starts.\n",
			tokenID, pat.FormatTime(z.Until), reason)
		return err
	}
	if _, err := j.Append(ctx, snoozeRecord(z)); err != nil {
		// A snooze nobody can account for must not stay in force.
		if _, derr := st.DeleteSnooze(context.WithoutCancel(ctx), tokenID); derr != nil {
			return fmt.Errorf("snooze: journal: %w (and removing the unjournaled snooze failed: %v)", err, derr)
		}
		return fmt.Errorf("snooze: journal: %w (snooze not kept)", err)
	}
	_, err = fmt.Fprintf(g.streams.Out, "Snoozed %s until %s: %s\n", tokenID, pat.FormatTime(z.Until), reason)
	return err
}

// snoozeRecord is the journal record of a snooze.
func snoozeRecord(z state.Snooze) audit.Record {
	until := z.Until
	note := z.Reason
	if z.By != "" {
		note = z.Reason + " (by " + z.By + ")"
	}
	return audit.Record{Kind: audit.KindSnooze, TokenID: z.TokenID, Until: &until, Note: note}
}

// journalSnoozes writes the journal records of the snoozes made while this
// process held the journal, and clears their flag. It returns how many it
// wrote.
func journalSnoozes(ctx context.Context, st *state.Store, j janitor.Journal) (int, error) {
	zs, err := st.UnjournaledSnoozes(ctx)
	if err != nil {
		return 0, err
	}
	for i, z := range zs {
		if _, err := j.Append(ctx, snoozeRecord(z)); err != nil {
			return i, fmt.Errorf("journal the snooze of %s: %w", z.TokenID, err)
		}
		if err := st.SnoozeJournaled(ctx, z); err != nil {
			return i + 1, err
		}
	}
	return len(zs), nil
}

func newSnoozesCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "snoozes",
		Short: "List the active snoozes (--all: expired ones too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := g.openState(time.Now)
			if err != nil {
				return fmt.Errorf("snoozes: %w", err)
			}
			defer func() { _ = st.Close() }()
			zs, err := st.Snoozes(cmd.Context(), all)
			if err != nil {
				return fmt.Errorf("snoozes: %w", err)
			}
			return printSnoozes(g.streams.Out, zs, st.Now())
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "include expired snoozes")
	return cmd
}

func printSnoozes(w io.Writer, zs []state.Snooze, now time.Time) error {
	if len(zs) == 0 {
		_, err := fmt.Fprintln(w, "No snoozes.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOKEN\tUNTIL\tSTATE\tBY\tREASON")
	for _, z := range zs {
		st := "active"
		if !z.Active(now) {
			st = "expired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", z.TokenID, pat.FormatTime(z.Until), st, z.By, strings.ReplaceAll(z.Reason, "\n", " "))
	}
	return tw.Flush()
}

// runState opens the state store for one plan or apply run. For a plan
// (readOnly) a store that does not exist yet is not created (there can be no
// snooze in it), and one held by a running serve only costs the plan its
// snoozes, with a warning on stderr; apply needs it, because acting on a
// snoozed token would break a promise.
func (g *globals) runState(readOnly bool) (*state.Store, error) {
	if readOnly {
		if _, err := os.Stat(g.statePath()); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
	}
	if !readOnly {
		return g.openState(time.Now)
	}
	// Read only: a shared lock, no migration, nothing written, so a dry run
	// never changes the state a real run depends on.
	st, err := state.Open(g.statePath(), state.Options{ReadOnly: true})
	if err != nil {
		fmt.Fprintf(g.streams.Err, "warning: %v; the plan ignores snoozes and grace marks (grace items show as newly marked)\n", err)
		return nil, nil
	}
	return st, nil
}
