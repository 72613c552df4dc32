package janitor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/state"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// Acknowledging a change found not in effect (`patjanitor acknowledge`).
//
// A record found not in effect keeps every run failing until a listing
// proves the change (proof.go). An operator who checked the credential and
// decided to keep it (exempted it, or the patch is no longer wanted) would
// otherwise have no way to end the alarm, and a run that fails forever
// teaches people to ignore the failure alert. Acknowledging journals an
// outcome StatusAcknowledged (the reason, who, the confirming run) and
// drops the record: the next run no longer fails for it. Nothing else
// changes: a policy that still acts on the credential sends the change
// again, a new record is kept, and the proof starts over.
//
// Only records a listing has found not in effect can be acknowledged. One
// still awaiting proof is refused: dropping it would blind the check that
// the settle margin and the next complete listing make.

// StatusAcknowledged is the outcome journaled for an acknowledged record.
const StatusAcknowledged = "acknowledged"

// AckStore is the state store of the confirmed records; *state.Store
// implements it.
type AckStore interface {
	ProofStore
	ClientProofStore
}

// AckJournal appends the acknowledgement's record; *audit.Journal
// implements it.
type AckJournal interface {
	Append(ctx context.Context, r audit.Record) (audit.Record, error)
}

// AckRequest asks to acknowledge the records of one token or API client id.
type AckRequest struct {
	ID     string
	Reason string // required: it is journaled
	By     string
	Now    time.Time
}

// Acked is a record Acknowledge acknowledged (its Ack the new
// acknowledgement).
type Acked struct {
	state.Confirmed
	// Earlier is an acknowledgement made while serve held the journal,
	// still pending: journaled just before this one (nil: none).
	Earlier *state.Ack
}

// Acknowledge acknowledges the records of req.ID found not in effect (a
// token's and an API client's, when both have that id) and returns them;
// on an error, those it acknowledged before it.
// With a journal it journals each and drops it. Without one (a running
// serve holds the journal) it keeps the acknowledgement on the record, for
// JournalAcks in that serve's next run: a record is never dropped before
// its acknowledgement is journaled.
func Acknowledge(ctx context.Context, st AckStore, j AckJournal, req AckRequest) ([]Acked, error) {
	reason := strings.TrimSpace(req.Reason)
	if reason == "" {
		return nil, errors.New("acknowledge: a reason is required (it is journaled)")
	}
	if err := CheckReason("acknowledge", reason, req.By); err != nil {
		return nil, err
	}
	found, awaiting, err := recordsOf(ctx, st, req.ID)
	if err != nil {
		return nil, fmt.Errorf("acknowledge: %w", err)
	}
	id := untrusted.ClipID(req.ID)
	switch {
	case len(found) == 0 && len(awaiting) == 0:
		return nil, fmt.Errorf("acknowledge: no confirmed change of %s is kept (patjanitor unproven lists them); nothing was changed", id)
	case len(found) == 0:
		c := awaiting[0]
		return nil, fmt.Errorf("acknowledge: the %s of %s %s confirmed in run %s at %s awaits proof: a complete listing from %s on shows whether it took effect, and acknowledging it now would blind that check; nothing was changed",
			c.Action, RecordNoun(c.Resource), id, c.RunID, pat.FormatTime(c.At), pat.FormatTime(c.At.Add(SettleMargin)))
	}
	// An acknowledgement made while serve held the journal is owed to it:
	// its maker was told that serve journals it. Another one must not
	// write over it. Without the journal it is refused; with it, the
	// pending one is journaled first, then this one.
	for _, c := range found {
		if c.Ack != nil && j == nil {
			return nil, fmt.Errorf("acknowledge: the %s of %s %s was already acknowledged by %s at %s, while serve held the journal; serve's next run (or the next apply) journals it and drops the record; nothing was changed",
				c.Action, RecordNoun(c.Resource), untrusted.ClipID(c.TokenID), ackBy(c.Ack), pat.FormatTime(c.Ack.At))
		}
	}
	ack := state.Ack{Reason: reason, By: req.By, At: req.Now.UTC()}
	acked := make([]Acked, 0, len(found))
	for _, c := range found {
		a := Acked{Confirmed: c}
		if j != nil && c.Ack != nil {
			if _, err := j.Append(context.WithoutCancel(ctx), ackRecord(c)); err != nil {
				return acked, fmt.Errorf("acknowledge: journal the pending acknowledgement of %s %s by %s: %w (the record stays)",
					RecordNoun(c.Resource), untrusted.ClipID(c.TokenID), ackBy(c.Ack), err)
			}
			a.Earlier = c.Ack
		}
		a.Ack = &ack
		var err error
		if j == nil {
			err = putRecord(ctx, st, a.Confirmed) // for JournalAcks in serve's next run
		} else {
			err = journalAck(ctx, st, j, a.Confirmed)
		}
		if err != nil {
			return acked, fmt.Errorf("acknowledge: %w", err)
		}
		acked = append(acked, a)
	}
	return acked, nil
}

// recordsOf are the confirmed records of id, a token's and an API
// client's: those a listing found not in effect, and those still awaiting
// proof.
func recordsOf(ctx context.Context, st AckStore, id string) (found, awaiting []state.Confirmed, err error) {
	toks, err := st.ConfirmedMutations(ctx)
	if err != nil {
		return nil, nil, err
	}
	clients, err := st.ConfirmedClientMutations(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, c := range append(toks, clients...) {
		switch {
		case !pat.SameID(c.TokenID, id):
		case c.Unproven():
			found = append(found, c)
		default:
			awaiting = append(awaiting, c)
		}
	}
	return found, awaiting, nil
}

// PendingAckStore is what JournalAcks reads and writes; *state.Store
// implements it.
type PendingAckStore interface {
	AckStore
	// PendingAcks returns the records with an acknowledgement still to be
	// journaled, and an error for each bucket it could not read.
	PendingAcks(ctx context.Context) ([]state.Confirmed, []error)
}

// JournalAcks journals the acknowledgements made while this process held
// the journal and drops their records; it returns how many. A run calls it
// before it reads the records, so that they no longer fail it. It reads
// only the records that hold an acknowledgement (PendingAcks): every serve
// run calls it, and the run reads all the records once more. A bucket of
// records that cannot be read is passed over: the run's own read of it
// reports the damage where it matters (a token run's inventory, a client
// run's section), and a run that does not read it, a token run without an
// apiClients policy, is not stopped by the client records. Only a failure
// to journal or to drop is an error.
func JournalAcks(ctx context.Context, st PendingAckStore, j AckJournal) (int, error) {
	all, _ := st.PendingAcks(ctx)
	n := 0
	for _, c := range all {
		if err := journalAck(ctx, st, j, c); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// journalAck journals c's acknowledgement, then drops c: a record that
// cannot be journaled stays. A crash between the two leaves the record,
// which acknowledging again journals again.
func journalAck(ctx context.Context, st AckStore, j AckJournal, c state.Confirmed) error {
	noun := RecordNoun(c.Resource)
	jctx := context.WithoutCancel(ctx)
	if _, err := j.Append(jctx, ackRecord(c)); err != nil {
		return fmt.Errorf("journal the acknowledgement of %s %s: %w (the record stays)", noun, untrusted.ClipID(c.TokenID), err)
	}
	if _, err := updateOf(st, c.Resource)(jctx, nil, []string{c.TokenID}); err != nil {
		return fmt.Errorf("drop the acknowledged record of %s %s (journaled; acknowledge it again): %w", noun, untrusted.ClipID(c.TokenID), err)
	}
	return nil
}

// ackRecord is the journal record of c's acknowledgement (c.Ack).
func ackRecord(c state.Confirmed) audit.Record {
	a := c.Ack
	return audit.Record{
		Kind: audit.KindOutcome, RunID: NewRunID(a.At), Resource: c.Resource, Policy: c.Policy, TokenID: c.TokenID,
		Outcome: &audit.Outcome{Status: StatusAcknowledged, Code: c.Code},
		Note: fmt.Sprintf("%s; the %s confirmed in run %s at %s, not in effect since %s: alarm ended, record dropped (a policy that still acts on the %s sends it again)",
			ReasonNote(a.Reason, a.By), c.Action, c.RunID, pat.FormatTime(c.At), pat.FormatTime(*c.StillListed), RecordNoun(c.Resource)),
	}
}

// ackBy names who made an acknowledgement.
func ackBy(a *state.Ack) string {
	if a.By == "" {
		return "someone"
	}
	return untrusted.ClipID(a.By)
}

// putRecord writes c over the stored record of its token or API client.
func putRecord(ctx context.Context, st AckStore, c state.Confirmed) error {
	_, err := updateOf(st, c.Resource)(ctx, []state.Confirmed{c}, nil)
	return err
}

// updateOf is st's update of the confirmed records of resource (""
// tokens, apiclient.Resource API clients).
func updateOf(st AckStore, resource string) func(ctx context.Context, put []state.Confirmed, drop []string) (int, error) {
	if resource == apiclient.Resource {
		return st.UpdateConfirmedClients
	}
	return st.UpdateConfirmed
}
