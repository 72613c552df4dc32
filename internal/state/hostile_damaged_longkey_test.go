package state

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A record that does not decode fails the read naming its key; a key is the
// id as listed (pat.IDKey) up to bolt.MaxKeySize, so one a tenant chose 30
// KiB long is clipped in that error as everywhere else (untrusted.ClipID):
// the error goes to the log, the run's error and the failure alert. Both
// the walk of a bucket (forEachJSON) and the read of one record (getJSON, a
// snooze's, a disabled API client's, an owner's last delivery).
func TestHostileDamagedRecordUnderLongIDIsNamedClipped(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), newClock())
	defer func() { _ = s.Close() }()
	long := "tok-" + strings.Repeat("x", 30<<10)
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	if _, err := s.UpdateConfirmed(ctx, []Confirmed{{TokenID: long, Policy: "p", Action: "delete", RunID: "r1", Code: 204, At: at}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketConfirmed)).Put([]byte(idKey(long)), []byte("{damaged"))
	}); err != nil {
		t.Fatal(err)
	}
	cs, err := s.ConfirmedMutations(ctx)
	if err == nil {
		t.Fatalf("a damaged record read as %d records", len(cs))
	}
	msg := err.Error()
	if !strings.Contains(msg, "confirmed mutation") || !strings.Contains(msg, "tok-xxx") {
		t.Errorf("the error does not name the damaged record: %.300s", msg)
	}
	if len(msg) > 1024 {
		t.Errorf("the error carries the whole %d-byte key (%d bytes): %.300s…", len(long), len(msg), msg)
	}

	if _, err := s.PutSnooze(ctx, Snooze{TokenID: long, Until: s.Now().Add(time.Hour), Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketSnoozes)).Put([]byte(snoozeKey(long)), []byte("{damaged"))
	}); err != nil {
		t.Fatal(err)
	}
	_, found, err := s.ActiveSnooze(ctx, long)
	if err == nil {
		t.Fatalf("a damaged snooze read as found=%v", found)
	}
	msg = err.Error()
	if !strings.Contains(msg, "tok-xxx") {
		t.Errorf("the error does not name the damaged snooze: %.300s", msg)
	}
	if len(msg) > 1024 {
		t.Errorf("the snooze's error carries the whole %d-byte key (%d bytes): %.300s…", len(long), len(msg), msg)
	}
	if err := s.PutDisabled(ctx, Disabled{ClientID: long, At: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketDisabled)).Put(disabledKey(long), []byte("{damaged"))
	}); err != nil {
		t.Fatal(err)
	}
	_, found, err = s.DisabledClient(ctx, long)
	if err == nil {
		t.Fatalf("a damaged disabled record read as found=%v", found)
	}
	msg = err.Error()
	if !strings.Contains(msg, "tok-xxx") {
		t.Errorf("the error does not name the damaged disabled record: %.300s", msg)
	}
	if len(msg) > 1024 {
		t.Errorf("the disabled record's error carries the whole %d-byte key (%d bytes): %.300s…", len(long), len(msg), msg)
	}
	// An owner's last delivery: keyed by the hash of an id that long
	// (deliveryKey), the error names the owner by the id given.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketDeliveries)).Put([]byte(deliveryKey(long)), []byte("{damaged"))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LastDeliveries(ctx, []string{long}); err == nil {
		t.Fatal("a damaged delivery read without an error")
	} else if msg = err.Error(); !strings.Contains(msg, "tok-xxx") || len(msg) > 1024 {
		t.Errorf("the delivery's error does not name the owner, or carries the whole %d-byte id (%d bytes): %.300s", len(long), len(msg), msg)
	}
}
