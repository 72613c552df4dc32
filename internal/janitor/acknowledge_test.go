package janitor_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

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

// A token's acknowledgement kept while serve held the journal is journaled,
// and its record dropped, though the API client records cannot be read:
// the damage is the client run's to report, not a reason to keep the alarm
// of a token an operator acknowledged.
func TestJournalAcksPassesOverADamagedBucket(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, state.FileName)
	st, err := state.Open(path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	seen := at.Add(time.Hour)
	if _, err := st.UpdateConfirmed(ctx, []state.Confirmed{{TokenID: "tok-1", Policy: "p", Action: "delete", RunID: "r1", Code: 204, At: at, StillListed: &seen, Checks: 1}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := janitor.Acknowledge(ctx, st, nil, janitor.AckRequest{ID: "tok-1", Reason: "kept", By: "ops", Now: seen.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("confirmed-client-mutations"))
		if err != nil {
			return err
		}
		return b.Put([]byte("client-x"), []byte("{damaged"))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if st, err = state.Open(path, state.Options{}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	j, err := audit.Open(filepath.Join(dir, "journal.jsonl"), audit.Options{SegmentBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = j.Close() }()
	if n, err := janitor.JournalAcks(ctx, st, j); n != 1 || err != nil {
		t.Fatalf("JournalAcks = %d, %v; want the token's acknowledgement journaled", n, err)
	}
	if cs, err := st.ConfirmedMutations(ctx); err != nil || len(cs) != 0 {
		t.Fatalf("token records %+v, %v; want none", cs, err)
	}
	var acks []audit.Record
	if _, err := audit.VerifyPath(filepath.Join(dir, "journal.jsonl"), audit.VerifyOptions{Each: func(r audit.Record) error {
		if r.Outcome != nil && r.Outcome.Status == janitor.StatusAcknowledged {
			acks = append(acks, r)
		}
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	if len(acks) != 1 || acks[0].TokenID != "tok-1" || !strings.HasPrefix(acks[0].Note, "kept (by ops); the delete confirmed in run r1") {
		t.Fatalf("acknowledged outcomes %+v", acks)
	}
}
