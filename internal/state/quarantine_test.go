package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/patjanitor/patjanitor/internal/audit"
)

// putRawTest writes value under key in bucket (created if needed), as a
// damaged disk leaves it.
func putRawTest(t *testing.T, s *Store, bucket, key string, value []byte) {
	t.Helper()
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(bucket))
		if err != nil {
			return err
		}
		return b.Put([]byte(key), value)
	}); err != nil {
		t.Fatal(err)
	}
}

// storeWithOneOfEach is a store holding a sound record in every bucket a
// repair scans, so that a scan must tell the damaged from the sound.
func storeWithOneOfEach(t *testing.T) *Store {
	t.Helper()
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), newClock())
	t.Cleanup(func() { _ = s.Close() })
	at := s.Now()
	steps := []error{
		func() error {
			_, _, _, err := s.RecordExecution(ctx, ExecutedPlan{PlanHash: "sha256:good", RunID: "r1", At: at, GeneratedAt: at}, time.Time{})
			return err
		}(),
		func() error {
			_, err := s.UpdateConfirmed(ctx, []Confirmed{{TokenID: "tok-good", Policy: "p", Action: "delete", RunID: "r1", At: at}}, nil)
			return err
		}(),
		func() error {
			_, err := s.UpdateConfirmedClients(ctx, []Confirmed{{TokenID: "client-good", Policy: "p", Action: "disable", RunID: "r1", At: at}}, nil)
			return err
		}(),
		func() error {
			_, err := s.PutSnooze(ctx, Snooze{TokenID: "tok-good", Until: at.Add(time.Hour), Reason: "r"})
			return err
		}(),
		func() error {
			_, err := s.ReconcileMarks(ctx, []string{"p"}, []Mark{{TokenID: "tok-good", OwnerID: "o1", Policy: "p", Action: "delete", Reason: "lastUsed 2026-01-01T00:00:00Z is old", Grace: time.Hour}})
			return err
		}(),
		func() error {
			_, err := s.ReconcileClientMarks(ctx, []string{"cp"}, []ClientMark{{ClientID: "client-good", Policy: "cp", Action: "disable", Reason: "r"}})
			return err
		}(),
		s.PutDisabled(ctx, Disabled{ClientID: "client-good", At: at, Policy: "cp"}),
		s.Enqueue(ctx, OutboxEntry{ID: "msg-good", Receiver: "hook", Kind: "digest", OwnerID: "o1", Fingerprint: "fp", Payload: []byte(`{}`)}),
		s.PutJournalAnchor(ctx, "journal.jsonl", audit.Anchor{Seq: 1, Hash: "sha256:x", Offset: 10}),
	}
	if err := errors.Join(steps...); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Settle(ctx, Settlement{ID: "msg-good", DeliveredAt: at}); err != nil {
		t.Fatal(err)
	}
	return s
}

var damaged = []byte("{damaged")

// Undecodable finds the damaged record of every bucket and only those:
// the sound record beside each is left alone.
func TestUndecodableFindsEveryDamagedRecord(t *testing.T) {
	s := storeWithOneOfEach(t)
	want := map[string]string{
		bucketExecuted:         "sha256:bad",
		bucketConfirmed:        "tok-bad",
		bucketConfirmedClients: "client-bad",
		bucketSnoozes:          "tok-bad",
		bucketMarks:            "tok-bad\x00p",
		bucketClientMarks:      "client-bad\x00cp",
		bucketDisabled:         "client-bad",
		bucketOutbox:           "msg-bad",
		bucketDeliveries:       "o-bad",
		bucketMeta:             keyAnchorPrefix + "other.jsonl",
	}
	for b, k := range want {
		putRawTest(t, s, b, k, damaged)
	}
	bad, err := s.Undecodable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	sum := sha256.Sum256(damaged)
	for _, r := range bad {
		if _, dup := got[r.Bucket]; dup {
			t.Errorf("two records of bucket %s reported", r.Bucket)
		}
		got[r.Bucket] = string(r.Key)
		if string(r.Value) != string(damaged) || r.SHA256 != hex.EncodeToString(sum[:]) || r.Err == "" {
			t.Errorf("%s: %+v, want the bytes, their sha256 and why", r.Bucket, r)
		}
	}
	for b, k := range want {
		if got[b] != k {
			t.Errorf("bucket %s: reported %q, want %q", b, got[b], k)
		}
	}
	if len(got) != len(want) {
		t.Errorf("reported %v, want %v", got, want)
	}
}

// A reason shape that does not decode takes the marks that refer to it
// with it: neither can be read.
func TestUndecodableReasonShapeTakesItsMarks(t *testing.T) {
	s := storeWithOneOfEach(t)
	var shapeKey []byte
	if err := s.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket([]byte(bucketReasons)).Cursor().First()
		shapeKey = slices.Clone(k)
		return nil
	}); err != nil || shapeKey == nil {
		t.Fatalf("no reason shape stored (%v)", err)
	}
	putRawTest(t, s, bucketReasons, string(shapeKey), []byte{0xff, 0xff})
	bad, err := s.Undecodable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range bad {
		got = append(got, r.Bucket)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{bucketMarks, bucketReasons}) {
		t.Fatalf("reported %v, want the shape and the mark that refers to it", got)
	}
}

// Every reader that meets a damaged record fails with an
// *UndecodableError naming the store's file, the bucket and the key, and
// its message names the way out.
func TestReadersNameTheUndecodableRecord(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		bucket, key string
		read        func(s *Store) error
	}{
		{bucketExecuted, "sha256:bad", func(s *Store) error { _, _, err := s.ExecutedPlan(ctx, "SHA256:BAD"); return err }},
		{bucketConfirmed, "tok-bad", func(s *Store) error { _, err := s.ConfirmedMutations(ctx); return err }},
		{bucketConfirmedClients, "client-bad", func(s *Store) error { _, err := s.ConfirmedClientMutations(ctx); return err }},
		{bucketSnoozes, "tok-bad", func(s *Store) error { _, err := s.Snoozes(ctx, true); return err }},
		{bucketSnoozes, "tok-bad", func(s *Store) error { _, _, err := s.ActiveSnooze(ctx, "TOK-bad"); return err }},
		{bucketMarks, "tok-bad\x00p", func(s *Store) error { _, err := s.Marks(ctx); return err }},
		{bucketClientMarks, "client-bad\x00cp", func(s *Store) error { _, err := s.ClientMarks(ctx); return err }},
		{bucketDisabled, "client-bad", func(s *Store) error { _, err := s.DisabledClients(ctx); return err }},
		{bucketDisabled, "client-bad", func(s *Store) error { _, _, err := s.DisabledClient(ctx, "client-bad"); return err }},
		{bucketOutbox, "msg-bad", func(s *Store) error { _, err := s.Outbox(ctx); return err }},
		{bucketDeliveries, "o-bad", func(s *Store) error { _, err := s.LastDeliveries(ctx, []string{"o-bad"}); return err }},
		{bucketMeta, keyAnchorPrefix + "journal.jsonl", func(s *Store) error { _, _, err := s.JournalAnchor(ctx, "journal.jsonl"); return err }},
	} {
		s := storeWithOneOfEach(t)
		putRawTest(t, s, c.bucket, c.key, damaged)
		err := c.read(s)
		var ue *UndecodableError
		if !errors.As(err, &ue) || ue.Path != s.Path() || ue.Bucket != c.bucket || string(ue.Key) != c.key {
			t.Errorf("%s/%q: error %v, want an *UndecodableError naming the file, bucket and key", c.bucket, c.key, err)
			continue
		}
		if !strings.Contains(err.Error(), RepairCommand) {
			t.Errorf("%s: the error names no way out: %v", c.bucket, err)
		}
	}
}

// A damaged record that still parses as JSON can fail its decoder with an
// error quoting what it holds (a patch op's path, 200 KiB of it): the
// error every reader returns, which every command prints, serve logs each
// run and a failure notification carries, stays short. On the old code it
// carried the decoder's message whole.
func TestUndecodableErrorIsBounded(t *testing.T) {
	ctx := context.Background()
	s := storeWithOneOfEach(t)
	huge := `{"tokenId":"tok-bad","patch":[{"op":"replace","path":"` + strings.Repeat(`\u001bA`, 100_000) + `","value":null}]}`
	putRawTest(t, s, bucketConfirmed, "tok-bad", []byte(huge))
	_, err := s.ConfirmedMutations(ctx)
	var ue *UndecodableError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v, want an *UndecodableError", err)
	}
	if n := len(err.Error()); n > 2048 || !strings.Contains(err.Error(), RepairCommand) || !strings.Contains(err.Error(), `"tok-bad"`) {
		t.Fatalf("the error is %d bytes (at most 2048), naming the key and the way out: %.600q", n, err.Error())
	}
	bad, err := s.Undecodable(ctx)
	if err != nil || len(bad) != 1 || len(bad[0].Describe()) > 2048 {
		t.Fatalf("Undecodable: %v, %d records", err, len(bad))
	}
}

// Quarantine moves the records whole, one transaction, and leaves the
// repair pending: every open but a repair's refuses the store until
// EndRepair. A record changed since the scan moves nothing.
func TestQuarantineMovesWholeAndHoldsTheStoreUntilTheRepairEnds(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	path := filepath.Join(t.TempDir(), FileName)
	s := openTest(t, path, clk)
	putRawTest(t, s, bucketSnoozes, "tok-1", damaged)
	putRawTest(t, s, bucketOutbox, "msg-1", []byte("[1]"))
	bad, err := s.Undecodable(ctx)
	if err != nil || len(bad) != 2 {
		t.Fatalf("Undecodable: %d, %v", len(bad), err)
	}

	putRawTest(t, s, bucketOutbox, "msg-1", []byte("[2]")) // changed since the scan
	if _, err := s.Quarantine(ctx, bad, QuarantineNote{Reason: "r"}); err == nil || !strings.Contains(err.Error(), "changed since it was read") {
		t.Fatalf("Quarantine of a changed record: %v", err)
	}
	if qs, _, _ := s.QuarantinedSince(ctx, RepairMark{}); len(qs) != 0 {
		t.Fatalf("the refused quarantine moved %d records", len(qs))
	}
	if _, pending, _ := s.RepairPending(ctx); pending {
		t.Fatal("the refused quarantine left a repair pending")
	}

	if bad, err = s.Undecodable(ctx); err != nil {
		t.Fatal(err)
	}
	moved, err := s.Quarantine(ctx, bad, QuarantineNote{Reason: "INC-1", By: "ops", JournalSeq: []int64{7, 8}})
	if err != nil || len(moved) != 2 {
		t.Fatalf("Quarantine: %d moved, %v", len(moved), err)
	}
	if left, _ := s.Undecodable(ctx); len(left) != 0 {
		t.Fatalf("%d undecodable records left", len(left))
	}
	qs, _, err := s.QuarantinedSince(ctx, RepairMark{})
	if err != nil || len(qs) != 2 {
		t.Fatalf("quarantine %+v, %v", qs, err)
	}
	for i, q := range qs {
		if q.Bucket != bad[i].Bucket || string(q.Key) != string(bad[i].Key) || string(q.Value) != string(bad[i].Value) ||
			q.SHA256 != bad[i].SHA256 || q.Reason != "INC-1" || q.By != "ops" || q.JournalSeq != int64(7+i) || !q.At.Equal(clk.Now()) {
			t.Errorf("quarantined %+v, want %+v whole with the note", q, bad[i])
		}
	}
	_ = s.Close()

	var pe *RepairPendingError
	for _, ro := range []bool{false, true} {
		if _, err := Open(path, Options{ReadOnly: ro}); !errors.As(err, &pe) || !strings.Contains(err.Error(), RepairCommand) {
			t.Fatalf("Open (read-only %v) with a repair pending: %v", ro, err)
		}
	}
	s, err = Open(path, Options{Repairing: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EndRepair(ctx); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("Open after the repair ended: %v", err)
	}
	_ = s.Close()
}

// An executed plan whose record was quarantined is still executed, also
// when nothing rebuilt it (the journal's run-start archived): the plan
// must not run twice.
func TestQuarantinedExecutionStillCounts(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), newClock())
	defer func() { _ = s.Close() }()
	putRawTest(t, s, bucketExecuted, "sha256:abc", damaged)
	if _, _, err := s.ExecutedPlan(ctx, "sha256:abc"); err == nil {
		t.Fatal("a damaged execution record read as none")
	}
	bad, _ := s.Undecodable(ctx)
	if _, err := s.Quarantine(ctx, bad, QuarantineNote{Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	rec, done, err := s.ExecutedPlan(ctx, "SHA256:ABC")
	if err != nil || !done || !strings.Contains(rec.RunID, "quarantined") {
		t.Fatalf("ExecutedPlan after the quarantine: %+v, %v, %v; want it executed", rec, done, err)
	}
	if _, done, _ := s.ExecutedPlan(ctx, "sha256:other"); done {
		t.Fatal("another plan reads as executed")
	}
	// The rebuild from the journal writes the real record over it.
	at := s.Now()
	if _, already, _, err := s.RecordExecution(ctx, ExecutedPlan{PlanHash: "sha256:abc", RunID: "r9", At: at, GeneratedAt: at}, time.Time{}); err != nil || already {
		t.Fatalf("RecordExecution: already %v, %v", already, err)
	}
	if rec, _, _ := s.ExecutedPlan(ctx, "sha256:abc"); rec.RunID != "r9" {
		t.Fatalf("record %+v, want run r9's", rec)
	}
}

// A nested bucket at an executed plan's key (a hand edit with a bbolt tool)
// reads as no record (bbolt's Get), and recording the execution over it
// failed with bbolt's bare "incompatible value", naming neither the store
// nor the way out. The apply is refused either way (the record comes before
// any request); now the error says what is there and names state repair.
func TestNestedBucketAtAnExecutedPlansKeyNamesTheWayOut(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	s := openTest(t, path, newClock())
	defer func() { _ = s.Close() }()
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(bucketExecuted))
		if err == nil {
			_, err = b.CreateBucket([]byte("sha256:abc"))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	at := s.Now()
	_, _, _, err := s.RecordExecution(ctx, ExecutedPlan{PlanHash: "sha256:abc", RunID: "r1", At: at, GeneratedAt: at}, time.Time{})
	if err == nil || !errors.Is(err, bolterrors.ErrIncompatibleValue) || !strings.Contains(err.Error(), RepairCommand) || !strings.Contains(err.Error(), path) {
		t.Fatalf("RecordExecution over a nested bucket: %v; want bbolt's error, the store and %q", err, RepairCommand)
	}
}
