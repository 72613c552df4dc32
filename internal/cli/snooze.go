package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/state"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// statePath is the state store inside --state-dir.
func (g *globals) statePath() string { return filepath.Join(g.stateDir, state.FileName) }

// openState opens the state store, creating --state-dir if needed. A store
// held by a running `serve` waits state.DefaultLockTimeout and then says so.
func (g *globals) openState(now func() time.Time) (*state.Store, error) {
	return g.openStateWith(state.Options{Clock: now})
}

// openStateWith is openState with the store's options.
func (g *globals) openStateWith(opts state.Options) (*state.Store, error) {
	if err := g.checkStateDir(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(g.stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	st, err := state.Open(g.statePath(), opts)
	if errors.Is(err, state.ErrInUse) {
		return nil, fmt.Errorf("open %s: %w (stop `patjanitor serve` or run the command where it runs, between runs)", g.statePath(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	return st, nil
}

// openStateReadOnly opens the state store with a shared lock, for a command
// that only reads it: no migration, nothing written, and a store that does
// not exist is not created (nil, nil: it holds nothing).
func (g *globals) openStateReadOnly() (*state.Store, error) {
	if _, err := os.Stat(g.statePath()); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return state.Open(g.statePath(), state.Options{ReadOnly: true})
}

type snoozeFlags struct {
	forText string
	reason  string
	by      string
	journal journalFlags
	offline bool
}

func newSnoozeCmd(g *globals) *cobra.Command {
	var o snoozeFlags
	cmd := &cobra.Command{
		Use:   "snooze TOKEN_ID --for 30d --reason TEXT",
		Short: "Exempt a token from every policy until a time, with a reason (journaled)",
		Long: `Exempt a token from every policy for a while. A snoozed token that a policy
matches is listed as skipped ("snoozed until …") and is neither marked nor acted
on. The snooze ends by itself; snoozing again replaces it. The snooze is kept in
<state-dir>/state.db and journaled (kind "snooze", with the reason and the end).
While a running serve holds the journal, the snooze is journaled when its next
run starts, after the ones it replaced since (every snooze made is journaled,
in order); at most 16 snoozes of one token may wait so.

The token must exist in the tenant (the config's, -c): snooze lists the
tenant and refuses an id it does not find, so that a typo does not leave the
real token unprotected. --offline skips that check (with a warning), for a
token the tenant cannot be asked about now.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSnooze(cmd.Context(), g, o, args[0], time.Now)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.offline, "offline", false, "do not check that the token exists in the tenant")
	f.StringVar(&o.forText, "for", "", "how long, e.g. 30d, 2w, 36h (required)")
	f.StringVar(&o.reason, "reason", "", "why the token is exempt (required, at most 4096 bytes)")
	f.StringVar(&o.by, "by", "", "who asks for it (default the OS user)")
	addJournalFlags(f, &o.journal)
	return cmd
}

func runSnooze(ctx context.Context, g *globals, o snoozeFlags, tokenID string, now func() time.Time) error {
	if o.forText == "" {
		return errors.New("snooze: --for is required (e.g. --for 30d)")
	}
	d, err := policy.ParseDuration(o.forText)
	switch {
	case err != nil:
		return fmt.Errorf("snooze: --for %q: want a positive duration such as 30d: %w", o.forText, err)
	case d <= 0:
		return fmt.Errorf("snooze: --for %q: want a positive duration such as 30d", o.forText)
	}
	reason := strings.TrimSpace(o.reason)
	if reason == "" {
		return errors.New("snooze: --reason is required: a snooze is an exception someone must account for later")
	}
	by := requester(o.by)
	if err := janitor.CheckReason("snooze", reason, by); err != nil {
		return err
	}
	what := tokenID
	if o.offline {
		fmt.Fprintf(g.streams.Err, "warning: --offline: %s was not looked up in the tenant; if the id is wrong, the snooze protects nothing\n", tokenID)
	} else {
		tok, err := findToken(ctx, g, tokenID)
		if err != nil {
			return fmt.Errorf("snooze: %w; nothing was snoozed", err)
		}
		// The id as the tenant spells it: ids are compared without regard
		// to case, the journal keeps the tenant's spelling.
		tokenID = tok.ID
		what = fmt.Sprintf("%s (%q, owner %s)", tok.ID, tok.Name, ownerString(tok.Owner))
	}
	if err := g.checkStateDir(); err != nil {
		return fmt.Errorf("snooze: %w", err)
	}
	// A running serve holds the journal: then the snooze is stored
	// flagged, and that serve journals it when its next run starts
	// (journalSnoozes), before it decides anything.
	st, j, closeAll, err := g.openForChange(o.journal, now)
	if err != nil {
		return fmt.Errorf("snooze: %w", err)
	}
	defer closeAll()
	held := j == nil
	if !held {
		// A snooze made while serve held the journal is owed to the
		// journal: journaled before this one replaces it.
		if _, err := journalSnoozes(ctx, st, j); err != nil {
			return fmt.Errorf("snooze: %w; nothing was snoozed", err)
		}
	}
	z, err := st.PutSnooze(ctx, state.Snooze{TokenID: tokenID, Until: now().Add(d).UTC(), Reason: reason, By: by, Unjournaled: held})
	if err != nil {
		return fmt.Errorf("snooze: %w", err)
	}
	if held {
		_, err = fmt.Fprintf(g.streams.Out, "Snoozed %s until %s: %s\nThe journal is held by a running patjanitor serve; it journals this snooze when its next run starts.\n",
			untrusted.Terminal(what), pat.FormatTime(z.Until), untrusted.Terminal(reason))
		return err
	}
	if _, err := j.Append(ctx, snoozeRecord(z)); err != nil {
		// A snooze nobody can account for must not stay in force.
		if _, derr := st.DeleteSnooze(context.WithoutCancel(ctx), tokenID); derr != nil {
			return fmt.Errorf("snooze: journal: %w (and removing the unjournaled snooze failed: %v)", err, derr)
		}
		return fmt.Errorf("snooze: journal: %w (snooze not kept)", err)
	}
	_, err = fmt.Fprintf(g.streams.Out, "Snoozed %s until %s: %s\n", untrusted.Terminal(what), pat.FormatTime(z.Until), untrusted.Terminal(reason))
	return err
}

// findToken looks a token up in the config's tenant: one listing of every
// token (the API documents no filter on id), the id compared without regard
// to case (invariant 9).
func findToken(ctx context.Context, g *globals, tokenID string) (pat.Token, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return pat.Token{}, err
	}
	conn, err := connect(cfg, nil, nil)
	if err != nil {
		return pat.Token{}, err
	}
	toks, err := conn.client.ListTokens(ctx, api.ListOptions{
		Budget: api.NewBudget(int64(cfg.Tenant.MaxListingBytes), "tenant.maxListingBytes")})
	if err != nil {
		return pat.Token{}, fmt.Errorf("look %s up in %s (--offline skips the check): %w", tokenID, conn.client.BaseURL(), err)
	}
	for _, t := range toks {
		if strings.EqualFold(t.ID, tokenID) {
			return t, nil
		}
	}
	return pat.Token{}, fmt.Errorf("no token %s in %s (%d tokens listed); check the id (patjanitor plan lists them)", tokenID, conn.client.BaseURL(), len(toks))
}

func ownerString(o pat.Owner) string {
	if o.Name != "" {
		return o.Name + " (" + o.ID + ")"
	}
	return o.ID
}

// reasonFlags are the flags of a journaled change that needs a reason
// (unsnooze, acknowledge).
type reasonFlags struct {
	reason  string
	by      string
	journal journalFlags
}

func newUnsnoozeCmd(g *globals) *cobra.Command {
	var o reasonFlags
	cmd := &cobra.Command{
		Use:   "unsnooze TOKEN_ID --reason TEXT",
		Short: "End a token's snooze now, with a reason (journaled)",
		Long: `Remove the snooze of a token: from the next run on, the policies decide it
again. The removal is journaled as a snooze record whose end is now, with
the reason and who asked (kind "snooze", note "unsnoozed: …").

The journal is written first: while a running serve holds it, unsnooze
refuses (run it where serve runs, or stop serve), because a removal nobody
can account for later must not happen.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUnsnooze(cmd.Context(), g, o, args[0], time.Now)
		},
		ValidArgsFunction: completeFirstArg(func(cmd *cobra.Command) []string { return snoozedTokens(cmd, g) }),
	}
	f := cmd.Flags()
	f.StringVar(&o.reason, "reason", "", "why the snooze ends early (required, at most 4096 bytes)")
	f.StringVar(&o.by, "by", "", "who asks for it (default the OS user)")
	addJournalFlags(f, &o.journal)
	return cmd
}

func runUnsnooze(ctx context.Context, g *globals, o reasonFlags, tokenID string, now func() time.Time) error {
	reason := strings.TrimSpace(o.reason)
	if reason == "" {
		return errors.New("unsnooze: --reason is required: the journal records why a snooze ended early")
	}
	by := requester(o.by)
	if err := janitor.CheckReason("unsnooze", reason, by); err != nil {
		return err
	}
	if _, err := os.Stat(g.statePath()); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unsnooze: no snooze of %s (there is no state in %s)", tokenID, g.stateDir)
	}
	// The state store (it keeps the journal's anchor), then the journal.
	st, err := g.openState(now)
	if err != nil {
		return fmt.Errorf("unsnooze: %w", err)
	}
	defer func() { _ = st.Close() }()
	o.journal.clock = now
	j, _, err := g.openJournal(o.journal, st)
	if errors.Is(err, audit.ErrInUse) {
		return fmt.Errorf("unsnooze: %w: a running patjanitor serve holds the journal; run unsnooze where it runs, between runs, or stop it (nothing was changed)", err)
	}
	if err != nil {
		return fmt.Errorf("unsnooze: open journal: %w", err)
	}
	defer func() { _ = j.Close() }()
	// A snooze made while serve held the journal is journaled before its
	// end is.
	if _, err := journalSnoozes(ctx, st, j); err != nil {
		return fmt.Errorf("unsnooze: %w (the snooze stays)", err)
	}
	z, ok, err := st.ActiveSnooze(ctx, tokenID)
	if err != nil {
		return fmt.Errorf("unsnooze: %w", err)
	}
	if !ok {
		return fmt.Errorf("unsnooze: %s has no active snooze (patjanitor snoozes lists them)", tokenID)
	}
	// Journal, then remove: a removal that cannot be journaled does not
	// happen. A crash between the two leaves a journaled end and a snooze
	// still in force, which the next unsnooze ends (and journals again).
	end := now().UTC()
	rec := audit.Record{Kind: audit.KindSnooze, TokenID: z.TokenID, Until: &end, Note: "unsnoozed: " + janitor.ReasonNote(reason, by)}
	if _, err := j.Append(ctx, rec); err != nil {
		return fmt.Errorf("unsnooze: journal: %w (the snooze stays)", err)
	}
	if _, err := st.DeleteSnooze(context.WithoutCancel(ctx), z.TokenID); err != nil {
		return fmt.Errorf("unsnooze: %w", err)
	}
	// The id, the reasons: typed by whoever snoozed (the id as the tenant
	// spells it), shown escaped as snoozes shows them.
	_, err = fmt.Fprintf(g.streams.Out, "Unsnoozed %s (was snoozed until %s: %s): %s\n", untrusted.Terminal(z.TokenID), pat.FormatTime(z.Until),
		untrusted.Terminal(z.Reason), untrusted.Terminal(reason))
	return err
}

// snoozedTokens are the active snoozes' token ids, for shell completion; no
// store, no completion (and nothing created). Only completable ids (the
// others are in snoozes -o json), each with the start of its reason,
// escaped: the shell shows the description raw.
func snoozedTokens(cmd *cobra.Command, g *globals) []string {
	st, err := g.openStateReadOnly()
	if st == nil || err != nil {
		return nil
	}
	defer func() { _ = st.Close() }()
	zs, err := st.Snoozes(cmd.Context(), false)
	if err != nil {
		return nil
	}
	ids := make([]string, 0, len(zs))
	for _, z := range zs {
		if completable(z.TokenID) {
			ids = append(ids, z.TokenID+"\t"+untrusted.Terminal(untrusted.Clip(z.Reason, completionReason)))
		}
	}
	return ids
}

// completionReason is how much of a reason a completion candidate shows: a
// description is one line beside the id.
const completionReason = 80

// snoozeRecord is the journal record of a snooze. A reason or a name over
// the bounds, kept by an older version while serve held the journal, is
// clipped: whole, it made every run that owed it to the journal fail.
func snoozeRecord(z state.Snooze) audit.Record {
	until := z.Until
	return audit.Record{Kind: audit.KindSnooze, TokenID: z.TokenID, Until: &until, Note: janitor.ReasonNote(z.Reason, z.By)}
}

// journalSnoozes writes the journal records of the snoozes made while this
// process held the journal, those replaced meanwhile too, and clears their
// flag. It returns how many records it wrote.
func journalSnoozes(ctx context.Context, st *state.Store, j janitor.Journal) (int, error) {
	zs, err := st.UnjournaledSnoozes(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, z := range zs {
		// The snoozes z replaced first, oldest first: the journal tells
		// the decisions in the order they were made. Each is recorded as
		// journaled once written, so a crash repeats at most one record.
		for _, y := range append(z.Pending, z) {
			if _, err := j.Append(ctx, snoozeRecord(y)); err != nil {
				return n, fmt.Errorf("journal the snooze of %s: %w", y.TokenID, err)
			}
			n++
			if err := st.SnoozeJournaled(ctx, y); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func newSnoozesCmd(g *globals) *cobra.Command {
	var all bool
	var format string
	cmd := &cobra.Command{
		Use:   "snoozes",
		Short: "List the active snoozes (--all: expired ones too)",
		Long: `List the snoozes of the state store (<state-dir>/state.db). Read-only: it
never creates the state directory or the store (no store: no snoozes). A run
of serve holds the store while it runs: snoozes then waits up to 2 seconds
and fails; try again after the run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("-o %q: want table or json", format)
			}
			var zs []state.Snooze
			now := time.Now()
			if _, err := os.Stat(g.statePath()); err == nil {
				st, err := state.Open(g.statePath(), state.Options{ReadOnly: true})
				if err != nil {
					return fmt.Errorf("snoozes: %w", err)
				}
				defer func() { _ = st.Close() }()
				if zs, err = st.Snoozes(cmd.Context(), all); err != nil {
					return fmt.Errorf("snoozes: %w", err)
				}
				now = st.Now()
			} else if !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("snoozes: %w", err)
			}
			if format == "json" {
				return printSnoozesJSON(g.streams.Out, zs, now)
			}
			return printSnoozes(g.streams.Out, zs, now)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "include expired snoozes")
	cmd.Flags().StringVarP(&format, "output", "o", "table", "output format: table or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// snoozeJSON is one snooze in snoozes -o json.
type snoozeJSON struct {
	TokenID   string `json:"tokenId"`
	Until     string `json:"until"`
	Active    bool   `json:"active"`
	By        string `json:"by"`
	Reason    string `json:"reason"`
	CreatedAt string `json:"createdAt"`
}

func printSnoozesJSON(w io.Writer, zs []state.Snooze, now time.Time) error {
	out := make([]snoozeJSON, 0, len(zs))
	for _, z := range zs {
		out = append(out, snoozeJSON{TokenID: z.TokenID, Until: pat.FormatTime(z.Until), Active: z.Active(now), By: z.By, Reason: z.Reason, CreatedAt: pat.FormatTime(z.CreatedAt)})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
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
		// The id, the name and the reason were typed by whoever snoozed.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", untrusted.Terminal(z.TokenID), pat.FormatTime(z.Until), st,
			untrusted.Terminal(z.By), untrusted.Terminal(z.Reason))
	}
	return tw.Flush()
}

// runState opens the state store for one plan or apply run. For a plan
// (readOnly) a store that does not exist yet is not created (there can be no
// snooze in it), and one held by a running serve only costs the plan its
// snoozes, with a warning on stderr; apply needs it, because acting on a
// snoozed token would break a promise.
func (g *globals) runState(readOnly bool) (*state.Store, error) {
	if err := g.checkStateDir(); err != nil {
		return nil, err
	}
	if !readOnly {
		return g.openState(time.Now)
	}
	// Read only, so that a dry run never changes the state a real run
	// depends on.
	st, err := g.openStateReadOnly()
	if err != nil {
		fmt.Fprintf(g.streams.Err, "warning: %s; the plan ignores snoozes and grace marks (grace items show as newly marked)\n", untrusted.Terminal(err.Error()))
		return nil, nil
	}
	return st, nil
}
