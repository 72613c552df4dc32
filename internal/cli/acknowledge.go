package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/state"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

func newAcknowledgeCmd(g *globals) *cobra.Command {
	var o reasonFlags
	cmd := &cobra.Command{
		Use:   "acknowledge ID --reason TEXT",
		Short: "End the alarm of a change the tenant confirmed but a listing found not in effect (journaled)",
		Long: `Acknowledge a token or API client change that the tenant confirmed and a
later listing found not in effect (patjanitor unproven lists them), after you
checked the credential and decided what to do with it. The record is dropped
and the acknowledgement journaled (an outcome "acknowledged", with the reason,
who, the action and the confirming run): the next run no longer fails for it
and patjanitor_unproven_mutations drops.

Nothing else changes: if a policy still acts on the credential, the next run
sends the change again, keeps a new record, and the proof starts over (the
alarm comes back if the tenant confirms and does not do it again). Exempt the
credential first (exclude, snooze) if it is to stay.

A change still awaiting proof (confirmed less than 30 minutes ago, or not yet
judged by a complete listing) is refused: that listing decides it.

While a running serve holds the journal, the acknowledgement is kept in the
state store and that serve journals it, and drops the record, when its next
run starts; meanwhile another acknowledgement of that record is refused.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAcknowledge(cmd.Context(), g, o, args[0], time.Now)
		},
		ValidArgsFunction: completeFirstArg(func(cmd *cobra.Command) []string { return notInEffect(cmd, g) }),
	}
	f := cmd.Flags()
	f.StringVar(&o.reason, "reason", "", "what was checked and decided (required, at most 4096 bytes)")
	f.StringVar(&o.by, "by", "", "who acknowledges (default the OS user)")
	addJournalFlags(f, &o.journal)
	return cmd
}

func runAcknowledge(ctx context.Context, g *globals, o reasonFlags, id string, now func() time.Time) error {
	if strings.TrimSpace(o.reason) == "" {
		return errors.New("acknowledge: --reason is required: the journal records why the alarm was ended")
	}
	by := requester(o.by)
	if _, err := os.Stat(g.statePath()); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("acknowledge: no confirmed change of %s is kept (there is no state in %s)", untrusted.ClipID(id), g.stateDir)
	}
	// A running serve holds the journal: the acknowledgement then waits
	// in the store for its next run (janitor.JournalAcks).
	st, j, closeAll, err := g.openForChange(o.journal, now)
	if err != nil {
		return fmt.Errorf("acknowledge: %w", err)
	}
	defer closeAll()
	held := j == nil
	var aj janitor.AckJournal
	if !held {
		aj = j // not a nil *audit.Journal in a non-nil interface
	}
	// What was acknowledged is printed also when a later record of the id
	// failed: its alarm is over, and the operator must not take it for
	// still standing.
	acked, err := janitor.Acknowledge(ctx, st, aj, janitor.AckRequest{ID: id, Reason: o.reason, By: by, Now: now()})
	for _, a := range acked {
		c := a.Confirmed
		fmt.Fprintf(g.streams.Out, "Acknowledged the %s of %s %s confirmed in run %s, not in effect since %s: %s\n",
			c.Action, janitor.RecordNoun(c.Resource), untrusted.Terminal(untrusted.ClipID(c.TokenID)), untrusted.Terminal(c.RunID),
			pat.FormatTime(*c.StillListed), untrusted.Terminal(strings.TrimSpace(o.reason)))
		if a.Earlier != nil {
			fmt.Fprintf(g.streams.Out, "It was already acknowledged by %s at %s while serve held the journal (%s): journaled first.\n",
				untrusted.Terminal(untrusted.ClipID(a.Earlier.By)), pat.FormatTime(a.Earlier.At), untrusted.Terminal(untrusted.Clip(a.Earlier.Reason, 200)))
		}
	}
	if held && len(acked) > 0 {
		fmt.Fprintln(g.streams.Out, "The journal is held by a running patjanitor serve; it journals this acknowledgement, and drops the record, when its next run starts.")
	}
	return err
}

// notInEffect are the ids of the records acknowledge accepts, for shell
// completion; no store, no completion (and nothing created). Only
// completable ids: the others are in unproven -o json.
func notInEffect(cmd *cobra.Command, g *globals) []string {
	cs, err := readUnproven(cmd.Context(), g)
	if err != nil {
		return nil
	}
	var ids []string
	for _, c := range cs {
		if c.Unproven() && c.Ack == nil && completable(c.TokenID) {
			ids = append(ids, c.TokenID+"\t"+janitor.RecordNoun(c.Resource)+" "+c.Action)
		}
	}
	return ids
}

// completable reports whether shell completion may offer id: only an id a
// terminal shows as it is. The shell prints candidates raw (a tenant's
// escape sequence would reach the terminal, a bidi override reorder the
// line), cobra cuts a candidate at a newline (offering another id) and
// takes a tab for the start of its description.
func completable(id string) bool { return untrusted.Terminal(id) == id }

func newUnprovenCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "unproven",
		Short: "List the changes the tenant confirmed that no listing has proven yet",
		Long: `List the token and API client changes the tenant confirmed (a 204 to a
DELETE, a 200 to a PATCH) that a listing has not proven yet: those awaiting
proof, and those a listing found not in effect (the
PatjanitorUnprovenMutations alert; patjanitor acknowledge ends it). Read-only:
it never creates the state store. A run of serve holds the store while it
runs: unproven then waits up to 2 seconds and fails; try again after the run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("-o %q: want table or json", format)
			}
			cs, err := readUnproven(cmd.Context(), g)
			if err != nil {
				return fmt.Errorf("unproven: %w", err)
			}
			if format == "json" {
				return printUnprovenJSON(g.streams.Out, cs)
			}
			return printUnproven(g.streams.Out, cs)
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "table", "output format: table or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// readUnproven reads the token and API client records, tokens first (no
// store: none).
func readUnproven(ctx context.Context, g *globals) ([]state.Confirmed, error) {
	st, err := g.openStateReadOnly()
	if st == nil || err != nil {
		return nil, err
	}
	defer func() { _ = st.Close() }()
	toks, err := st.ConfirmedMutations(ctx)
	if err != nil {
		return nil, err
	}
	clients, err := st.ConfirmedClientMutations(ctx)
	return append(toks, clients...), err
}

// unprovenState says where a record stands, and since when.
func unprovenState(c state.Confirmed) (string, time.Time) {
	switch {
	case c.Ack != nil:
		return "acknowledged, to be journaled by serve's next run", c.Ack.At
	case c.Unproven():
		return janitor.StatusNotInEffect, *c.StillListed
	}
	return string(janitor.SkipAwaitingProof), c.At
}

// unprovenJSON is one record in unproven -o json.
type unprovenJSON struct {
	ID           string     `json:"id"`
	Resource     string     `json:"resource"`
	OwnerID      string     `json:"ownerId,omitempty"`
	Name         string     `json:"name,omitempty"`
	Action       string     `json:"action"`
	Policy       string     `json:"policy"`
	ConfirmedRun string     `json:"confirmedRun"`
	ConfirmedAt  string     `json:"confirmedAt"`
	Code         int        `json:"code,omitempty"`
	State        string     `json:"state"`
	Since        string     `json:"since"`
	Checks       int        `json:"checks,omitempty"`
	Ack          *state.Ack `json:"acknowledged,omitempty"`
}

func printUnprovenJSON(w io.Writer, cs []state.Confirmed) error {
	out := make([]unprovenJSON, 0, len(cs))
	for _, c := range cs {
		res := string(policy.ResourcePATs)
		if c.Resource != "" {
			res = c.Resource
		}
		s, since := unprovenState(c)
		out = append(out, unprovenJSON{ID: c.TokenID, Resource: res, OwnerID: c.OwnerID, Name: c.Name, Action: c.Action,
			Policy: c.Policy, ConfirmedRun: c.RunID, ConfirmedAt: pat.FormatTime(c.At), Code: c.Code,
			State: s, Since: pat.FormatTime(since), Checks: c.Checks, Ack: c.Ack})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func printUnproven(w io.Writer, cs []state.Confirmed) error {
	if len(cs) == 0 {
		_, err := fmt.Fprintln(w, "No confirmed changes awaiting proof or found not in effect.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tOWNER/NAME\tACTION\tCONFIRMED\tSTATE\tSINCE")
	for _, c := range cs {
		who := c.OwnerID
		if c.Resource == apiclient.Resource {
			who = c.Name
		}
		if who == "" {
			who = "-"
		}
		s, since := unprovenState(c)
		// Ids, owners and names are the tenant's: clipped and made safe.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\trun %s at %s\t%s\t%s\n", untrusted.Terminal(untrusted.ClipID(c.TokenID)), janitor.RecordNoun(c.Resource),
			untrusted.Terminal(untrusted.ClipID(who)), c.Action, untrusted.Terminal(c.RunID), pat.FormatTime(c.At), s, pat.FormatTime(since))
	}
	return tw.Flush()
}
