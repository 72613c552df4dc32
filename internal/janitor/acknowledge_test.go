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

// A record whose acknowledgement cannot be journaled stays, and so does
// the alarm: an acknowledgement nobody can account for does not happen.
func TestAcknowledgeKeepsTheRecordWhenTheJournalFails(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := state.Open(filepath.Join(dir, state.FileName), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	seen := at.Add(time.Hour)
	if _, err := st.UpdateConfirmed(ctx, []state.Confirmed{{TokenID: "tok-1", Policy: "p", Action: "delete", RunID: "r1", Code: 204, At: at, StillListed: &seen, Checks: 1}}, nil); err != nil {
		t.Fatal(err)
	}
	j, err := audit.Open(filepath.Join(dir, "journal.jsonl"), audit.Options{SegmentBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = janitor.Acknowledge(ctx, st, j, janitor.AckRequest{ID: "TOK-1", Reason: "kept", By: "ops", Now: seen.Add(time.Hour)})
	if err == nil || !strings.Contains(err.Error(), "journal the acknowledgement of token tok-1") || !strings.Contains(err.Error(), "the record stays") {
		t.Fatalf("err = %v; want the journal's failure, record kept", err)
	}
	cs, err := st.ConfirmedMutations(ctx)
	if err != nil || len(cs) != 1 || cs[0].Ack != nil || !cs[0].Unproven() {
		t.Fatalf("records %+v, %v; want the record as it was", cs, err)
	}
}
