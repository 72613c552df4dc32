package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/regfile"
	"github.com/patjanitor/patjanitor/internal/state"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

func newAuditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Inspect the journal of changes",
		Args:  cobra.NoArgs,
	}
	// reanchor opens the journal for writing, which logs what the open
	// repaired: its help offers the log flags, verify's and show's do not.
	cmd.AddCommand(newAuditVerifyCmd(g), newAuditShowCmd(g), uses(newAuditReanchorCmd(g), useState, useLog))
	return cmd
}

func newAuditReanchorCmd(g *globals) *cobra.Command {
	var (
		reason string
		jf     journalFlags
	)
	cmd := &cobra.Command{
		Use:   "reanchor --reason TEXT",
		Short: "Accept the journal as it is when it no longer matches its anchor (journaled)",
		Long: `When the journal does not match its anchor in the state store (records cut
off its end, the file lost or replaced), every command that writes to it
refuses, and serve's runs fail. After investigating (and restoring what can be
restored from backups), an operator accepts the journal as it now is: its
whole chain is verified, the anchor is reset to its end, and a record of kind
"anchor-reset" with the old anchor and the reason is appended. Stop serve
first: it holds the journal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAuditReanchor(cmd.Context(), g, jf, reason)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the journal is accepted as it is (required, at most 4096 bytes; journaled)")
	addJournalFlags(cmd.Flags(), &jf)
	return cmd
}

func runAuditReanchor(ctx context.Context, g *globals, jf journalFlags, reason string) error {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return errors.New("audit reanchor: --reason is required: resetting the anchor is an exception someone must account for later")
	}
	if err := janitor.CheckReason("audit reanchor", reason, ""); err != nil {
		return err
	}
	path := g.journalPath(jf.path)
	if _, err := os.Stat(path); err == nil {
		// The chain itself must hold: reanchoring accepts a missing tail,
		// never a changed record. A torn final record is accepted: a
		// journal cut at an arbitrary byte (what most often leaves it
		// short of its anchor) ends in one, and the open below removes
		// it, keeping its bytes, as every open does; refused, no command
		// could ever use that journal again.
		var ce *audit.ChainError
		if _, err := audit.VerifyPath(path, audit.VerifyOptions{}); err != nil && !(errors.As(err, &ce) && ce.Torn()) {
			return fmt.Errorf("audit reanchor: %s: %w (only a journal whose chain verifies can be reanchored)", path, err)
		}
	}
	// A store with a repair pending is taken: reanchor acts on no token,
	// and `state repair` refuses a journal short of its anchor until it
	// is reanchored (each refusing would close the store for good).
	st, err := g.openStateWith(state.Options{Clock: time.Now, Repairing: true})
	if err != nil {
		return fmt.Errorf("audit reanchor: %w", err)
	}
	defer func() { _ = st.Close() }()
	key := g.journalKey(path)
	old, had, err := st.JournalAnchor(ctx, key)
	if err != nil {
		return fmt.Errorf("audit reanchor: %w", err)
	}
	var repairs []audit.Repair // what the opens repaired, for the record
	if had {
		if repairs, err = g.catchUpAtAnchor(jf, st); err != nil {
			return fmt.Errorf("audit reanchor: %w", err)
		}
	}
	if err := st.DeleteJournalAnchor(ctx, key); err != nil {
		return fmt.Errorf("audit reanchor: %w", err)
	}
	j, _, err := g.openJournal(jf, st)
	if err != nil {
		if had {
			// Put the old anchor back: nothing was accepted.
			if perr := st.PutJournalAnchor(context.WithoutCancel(ctx), key, old); perr != nil {
				return fmt.Errorf("audit reanchor: %w (and restoring the old anchor failed: %v)", err, perr)
			}
		}
		return fmt.Errorf("audit reanchor: %w", err)
	}
	defer func() { _ = j.Close() }()
	note := "anchor reset by `patjanitor audit reanchor`: " + reason
	if had {
		note += fmt.Sprintf(" (the old anchor: seq %d, hash %s, byte %d of segment %d)", old.Seq, hashOrNone(old.Hash), old.Offset, old.Segment)
	}
	for _, r := range append(repairs, j.Repairs()...) {
		note += "; " + repairText(r)
	}
	rec, err := j.Append(ctx, audit.Record{Kind: audit.KindAnchorReset, Note: note})
	if err != nil {
		return fmt.Errorf("audit reanchor: %w", err)
	}
	_, err = fmt.Fprintf(g.streams.Out, "%s: anchored at seq %d (%s); the reset is journaled\n", path, rec.Seq, rec.Hash)
	return err
}

// catchUpAtAnchor opens the journal once at the anchor st holds, before
// reanchor resets it, and returns what that open repaired. A journal that
// goes on past its anchor (the store restored from a backup) matches it:
// opened at that anchor, it hands the records after it to the catch-up,
// which rebuilds what the store lost; anchored afresh at once, it would
// never hand them again. A journal that does not match (what reanchor is
// for) is not an error: it has nothing to hand.
func (g *globals) catchUpAtAnchor(jf journalFlags, st *state.Store) ([]audit.Repair, error) {
	j, _, err := g.openJournal(jf, st)
	var ae *audit.AnchorError
	switch {
	case errors.As(err, &ae):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("%w; nothing was changed", err)
	}
	repairs := j.Repairs()
	return repairs, j.Close()
}

func newAuditVerifyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify [JOURNAL]",
		Short: "Verify the journal's hash chain against its anchor and name the first broken record",
		Long: `Read the journal (default <state-dir>/journal.jsonl) and its sealed segments
(journal-000001.jsonl, …, oldest first) and check every record: valid JSON,
seq 1, 2, 3, ... without gaps across the segments, each prevHash the previous
record's hash, each hash the hash of its line. Then compare the end with the
anchor kept in <state-dir>/state.db: a journal that ends before its anchor (a
missing tail: records cut off the end, the file emptied or replaced) is an
error that names both. Prints a summary and exits 0, or names the first
problem and exits 1.

Read-only: it never repairs, creates or locks anything, and refuses a FIFO or
a device at once.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := g.journalPath("")
			if len(args) == 1 {
				path = args[0]
			}
			return runAuditVerify(cmd.Context(), g, path)
		},
	}
}

func runAuditVerify(ctx context.Context, g *globals, path string) error {
	anchor, anchorNote := g.readAnchor(ctx, path)
	// The run-starts that name a saved plan are decoded on the way and
	// printed once the whole chain verified: the chain vouches for them.
	var refs []audit.Record
	sum, err := audit.VerifyPath(path, audit.VerifyOptions{Anchor: anchor, Kinds: []audit.Kind{audit.KindRunStart},
		Each: func(r audit.Record) error {
			if r.Plan != nil {
				refs = append(refs, r)
			}
			return nil
		}})
	var (
		ce *audit.ChainError
		ae *audit.AnchorError
	)
	switch {
	case errors.As(err, &ce):
		msg := fmt.Sprintf("%s: BROKEN after %d good records: %v", path, sum.Records, ce)
		if ce.Torn() {
			msg += " (a torn final record: the trace of a write interrupted by a crash; the next command that writes to the journal removes it, keeping its bytes in " + path + ".torn-<unix-ms>-line<N>)"
		}
		return &exitError{code: 1, err: errors.New(msg)}
	case errors.As(err, &ae):
		return &exitError{code: 1, err: fmt.Errorf("%s: MISSING TAIL OR REPLACED after %d good records: %w", path, sum.Records, ae)}
	case err != nil:
		return &exitError{code: 1, err: fmt.Errorf("audit verify %s: %w", path, err)}
	}
	if anchor != nil && anchor.Seq > 0 && !sum.Anchored {
		// The anchored record is before the segments beside the journal:
		// its file is archived, and every open starts there (the store
		// is older than them: restored from a backup). Not OK: every
		// command that opens the journal refuses it.
		name := filepath.Base(audit.SegmentPath(path, anchor.Segment+1))
		return &exitError{code: 1, err: fmt.Errorf("%s: ANCHOR IN ARCHIVED SEGMENTS after %d good records: the state store's anchor (seq %d, segment %d) is in %s, which is not beside the journal (archived?): every command that opens the journal refuses it; the state store is older than the segments beside it (restored from a backup?): bring the archived segments back beside the journal, from %s on, then run the command again",
			path, sum.Records, anchor.Seq, anchor.Segment, name, name)}
	}
	var extra []string
	if sum.LastSegment > 0 {
		extra = append(extra, fmt.Sprintf("%d files (segments %06d to %06d and the active file)", sum.Segments, sum.FirstSegment, sum.LastSegment))
	}
	if sum.FirstSegment > 1 {
		extra = append(extra, fmt.Sprintf("segments before %06d are not here (archived): checked from seq %d, whose prevHash %s is the archive's last hash",
			sum.FirstSegment, sum.FirstSeq, hashOrNone(sum.FirstPrevHash)))
	}
	if sum.Unterminated {
		extra = append(extra, "the last record lacks its final newline (the next command that writes to the journal adds it)")
	}
	if kept, _ := audit.TornFiles(path); len(kept) > 0 {
		// Not part of the chain, but evidence an auditor should see: the
		// bytes of torn records an earlier open removed. patjanitor never
		// removes or rotates them (evidence is not its to discard; they
		// are a record's bytes each, one per crash): with their size and
		// when they were made, the operator sees what to archive.
		for i, f := range kept {
			kept[i] = describeTorn(path, f)
		}
		extra = append(extra, fmt.Sprintf("%d torn record(s) removed after crashes, their bytes kept in %s (patjanitor never removes or rotates these files: archive them with the journal)",
			len(kept), strings.Join(kept, ", ")))
	}
	switch {
	case anchor == nil:
		extra = append(extra, "anchor: "+anchorNote)
	default:
		extra = append(extra, fmt.Sprintf("anchor: seq %d reached", anchor.Seq))
	}
	w := &stickyWriter{w: g.streams.Out}
	fmt.Fprintf(w, "%s: OK: %s, %s, last seq %d, last hash %s, %d intents without an outcome; %s\n",
		path, plural(sum.Records, "record"), plural(sum.Runs, "run"), sum.LastSeq, hashOrNone(sum.LastHash), sum.PendingIntents, strings.Join(extra, "; "))
	// Each saved plan applied, with its approvals, or refused.
	for _, r := range refs {
		writePlanRef(w, r.RunID, r.Plan)
	}
	return w.err
}

// describeTorn names a file that keeps a torn record's bytes with its size
// and when and where the record was removed (from its name, see
// audit.TornPath): "F (80 bytes, removed 2026-12-01T03:00:00.123Z from line
// 5)". It only looks at the file (lstat), never opens it.
func describeTorn(path, file string) string {
	var what []string
	switch fi, err := os.Lstat(file); {
	case err != nil:
		what = append(what, "unreadable: "+err.Error())
	case fi.Mode().IsRegular():
		what = append(what, fmt.Sprintf("%d bytes", fi.Size()))
	default:
		what = append(what, regfile.Kind(fi.Mode())+", not a regular file")
	}
	if at, line, ok := audit.ParseTornPath(path, file); ok {
		what = append(what, fmt.Sprintf("removed %s from line %d", at.Format("2006-01-02T15:04:05.000Z07:00"), line))
	}
	return file + " (" + strings.Join(what, ", ") + ")"
}

// readAnchor reads the journal's anchor from the state store, read-only and
// only if the store exists. Without one the chain is still verified; the
// note says why the end could not be checked.
func (g *globals) readAnchor(ctx context.Context, path string) (*audit.Anchor, string) {
	if _, err := os.Stat(g.statePath()); err != nil {
		return nil, fmt.Sprintf("none (no state store at %s): the end of the journal is not checked", g.statePath())
	}
	st, err := state.Open(g.statePath(), state.Options{ReadOnly: true, LockTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintf(g.streams.Err, "warning: %v; the end of the journal is not checked against its anchor\n", err)
		return nil, "not checked (state store unreadable)"
	}
	defer func() { _ = st.Close() }()
	a, ok, err := st.JournalAnchor(ctx, g.journalKey(path))
	if err != nil {
		fmt.Fprintf(g.streams.Err, "warning: %v; the end of the journal is not checked against its anchor\n", err)
		return nil, "not checked (state store unreadable)"
	}
	if !ok {
		return nil, "none in the state store (no patjanitor command has written this journal since anchors exist)"
	}
	return &a, ""
}

// writePlanRef prints the saved plan a run applied, and who approved it.
func writePlanRef(w io.Writer, runID string, p *audit.PlanRef) {
	verb := "applied"
	if p.Refused != "" {
		verb = "REFUSED"
	}
	fmt.Fprintf(w, "run %s %s plan %s", runID, verb, p.PlanHash)
	if p.File != "" {
		fmt.Fprintf(w, ", file %s %s", untrusted.Terminal(p.File), p.FileSHA256)
	}
	fmt.Fprintln(w)
	for _, a := range p.AcceptedGuardrails {
		fmt.Fprintf(w, "  accepted guardrail %s (limit %g, wanted %d) by %s: %s\n", a.Name, a.Limit, a.Wanted, untrusted.Terminal(a.By), untrusted.Terminal(a.Reason))
	}
	for _, a := range p.Approvals {
		at := "time not stated"
		if a.SignedAt != nil {
			at = "signed " + a.SignedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "  approved by %s (%s), %s", untrusted.Terminal(a.Principal), a.Fingerprint, at)
		if a.Reason != "" {
			fmt.Fprintf(w, ": %s", untrusted.Terminal(a.Reason))
		}
		fmt.Fprintln(w)
	}
	if p.Refused != "" {
		fmt.Fprintf(w, "  refused: %s\n", untrusted.Terminal(p.Refused))
	}
}

func newAuditShowCmd(g *globals) *cobra.Command {
	var journal string
	cmd := &cobra.Command{
		Use:   "show RUN_ID",
		Short: "Show one run of the journal: the plan it applied, its approvals and its changes",
		Long: `Print one run's records from the journal (default <state-dir>/journal.jsonl):
the saved plan it applied with the sha256 and planHash reviewers approved, each
approval (principal, key fingerprint, time, reason), then every intended change
and its outcome, with the outcome's note (for a confirmed change a later listing
found not in effect, or in effect at last: which run it was confirmed in, and
when). Read-only. Run ids are in apply's output, the logs and
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
	w := &stickyWriter{w: g.streams.Out}
	found := false
	// Across the segments, oldest first, verifying the chain on the way.
	_, err := audit.VerifyPath(path, audit.VerifyOptions{Each: func(r audit.Record) error {
		if r.RunID != runID {
			return nil
		}
		found = true
		at := r.Time.UTC().Format(time.RFC3339)
		switch r.Kind {
		case audit.KindRunStart:
			fmt.Fprintf(w, "%s  #%d run-start  %s\n", at, r.Seq, untrusted.Terminal(r.Note))
			if r.Plan != nil {
				writePlanRef(w, r.RunID, r.Plan)
			}
		case audit.KindIntent:
			req := ""
			if r.Request != nil {
				req = r.Request.Method + " " + r.Request.Path
			}
			fmt.Fprintf(w, "%s  #%d intent     %s  %s  policy %s\n", at, r.Seq, untrusted.Terminal(r.TokenID), untrusted.Terminal(req), untrusted.Terminal(r.Policy))
		case audit.KindOutcome:
			status, detail := "", ""
			if r.Outcome != nil {
				status = r.Outcome.Status
				if r.Outcome.Code != 0 {
					detail = fmt.Sprintf(" (HTTP %d)", r.Outcome.Code)
				}
				if r.Outcome.Error != "" {
					detail += ": " + untrusted.Terminal(r.Outcome.Error)
				}
			}
			fmt.Fprintf(w, "%s  #%d outcome    %s  %s%s\n", at, r.Seq, untrusted.Terminal(r.TokenID), untrusted.Terminal(status), untrusted.Terminal(detail))
			// The note says what an outcome written by a later run is
			// about: which run's change a listing found not in effect (or
			// in effect at last) and when it was confirmed, or which run
			// resolved an interrupted intent. The outcome line alone does
			// not name it.
			if r.Note != "" {
				fmt.Fprintf(w, "%s  #%d   note     %s\n", at, r.Seq, untrusted.Terminal(r.Note))
			}
		default:
			fmt.Fprintf(w, "%s  #%d %-10s %s\n", at, r.Seq, r.Kind, untrusted.Terminal(r.Note))
		}
		return w.err
	}})
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
