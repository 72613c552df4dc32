package janitor_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/state"
)

// An acknowledgement kept before the bounds, while serve held the journal,
// with a reason and a name too big for a journal record, is journaled with
// both clipped, saying so, and its record dropped: whole, it failed
// JournalAcks at every run (apply refused to start). On the old code
// JournalAcks failed: the record is larger than 1048576 bytes.
func TestHostileJournalAcksClipsAnOversizedPendingAcknowledgement(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := state.Open(filepath.Join(dir, state.FileName), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	seen := at.Add(time.Hour)
	reason, by := "kept "+strings.Repeat("\x01", 128<<10-5), strings.Repeat("\x02", 128<<10)
	c := state.Confirmed{TokenID: "tok-1", Policy: "p", Action: "delete", RunID: "r1", Code: 204, At: at, StillListed: &seen, Checks: 1,
		Ack: &state.Ack{Reason: reason, By: by, At: seen.Add(time.Hour)}}
	if _, err := st.UpdateConfirmed(ctx, []state.Confirmed{c}, nil); err != nil {
		t.Fatal(err)
	}
	jpath := filepath.Join(dir, "journal.jsonl")
	j, err := audit.Open(jpath, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := janitor.JournalAcks(ctx, st, j); n != 1 || err != nil {
		t.Fatalf("JournalAcks = %d, %v; want the acknowledgement journaled", n, err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	var notes []string
	if _, err := audit.VerifyPath(jpath, audit.VerifyOptions{Each: func(r audit.Record) error {
		if r.Outcome != nil && r.Outcome.Status == janitor.StatusAcknowledged && r.TokenID == "tok-1" {
			notes = append(notes, r.Note)
		}
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	want := "… (reason clipped from 131072 bytes) (by " + strings.Repeat("\x02", janitor.MaxBy) + "… (name clipped from 131072 bytes)); the delete confirmed in run r1"
	if len(notes) != 1 || !strings.HasPrefix(notes[0], "kept \x01") || !strings.Contains(notes[0], want) {
		t.Fatalf("acknowledged outcomes: %d, want one clipped", len(notes))
	}
	if cs, err := st.ConfirmedMutations(ctx); err != nil || len(cs) != 0 {
		t.Fatalf("records %d, %v; want the acknowledged one dropped", len(cs), err)
	}
}

// ReasonNote keeps a reason and a name within the bounds as they are.
func TestReasonNote(t *testing.T) {
	for _, c := range []struct{ reason, by, want string }{
		{"kept", "", "kept"},
		{"kept", "ops", "kept (by ops)"},
		{strings.Repeat("r", janitor.MaxReason), strings.Repeat("b", janitor.MaxBy), strings.Repeat("r", janitor.MaxReason) + " (by " + strings.Repeat("b", janitor.MaxBy) + ")"},
		{strings.Repeat("r", janitor.MaxReason+1), "ops", strings.Repeat("r", janitor.MaxReason) + "… (reason clipped from 4097 bytes) (by ops)"},
	} {
		if got := janitor.ReasonNote(c.reason, c.by); got != c.want {
			t.Errorf("ReasonNote(%.20q, %.20q) = %.60q…", c.reason, c.by, got)
		}
	}
}
