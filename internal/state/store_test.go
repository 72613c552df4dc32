package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/patjanitor/patjanitor/internal/fakeclock"
)

func newClock() *fakeclock.Clock {
	return fakeclock.New(time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC))
}

func openTest(t *testing.T, path string, clk *fakeclock.Clock) *Store {
	t.Helper()
	s, err := Open(path, Options{Clock: clk.Now, LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestPersistenceAcrossReopen(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	path := filepath.Join(t.TempDir(), "state", FileName)
	s := openTest(t, path, clk)

	m, err := s.testPutMark(ctx, Mark{TokenID: "t1", OwnerID: "o1", Policy: "unused-90d", Action: "delete", Reason: "never used", Grace: 14 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !m.MarkedAt.Equal(clk.Now()) || m.WarnedAt != nil || m.Deadline != nil {
		t.Fatalf("new mark clock fields = %+v", m)
	}
	if _, err := s.PutSnooze(ctx, Snooze{TokenID: "t2", Until: clk.Now().Add(48 * time.Hour), Reason: "migration", By: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, OutboxEntry{ID: "digest/mail/o1", Receiver: "mail", Kind: "digest", OwnerID: "o1", Fingerprint: "fp1",
		Marks: []MarkKey{m.Key()}, Payload: json.RawMessage(`{"x":1}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.testRecordDelivery(ctx, Delivery{OwnerID: "o9", Fingerprint: "old", SentAt: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode = %v, want 0600", perm)
	}

	s = openTest(t, path, clk)
	defer s.Close()
	got, ok, err := s.testGetMark(ctx, MarkKey{"t1", "unused-90d"})
	if err != nil || !ok {
		t.Fatalf("GetMark after reopen: %v %v", ok, err)
	}
	if got.Reason != "never used" || got.Grace != 14*24*time.Hour {
		t.Errorf("mark after reopen = %+v", got)
	}
	if _, ok, _ := s.ActiveSnooze(ctx, "t2"); !ok {
		t.Error("snooze lost across reopen")
	}
	ob, err := s.Outbox(ctx)
	if err != nil || len(ob) != 1 || string(ob[0].Payload) != `{"x":1}` {
		t.Fatalf("outbox after reopen = %+v, %v", ob, err)
	}
	if d, ok, _ := s.testLastDelivery(ctx, "o9"); !ok || d.Fingerprint != "old" {
		t.Errorf("delivery after reopen = %+v %v", d, ok)
	}
	if v, err := s.testSchema(ctx); err != nil || v != SchemaVersion {
		t.Errorf("Schema = %d, %v", v, err)
	}
}

func TestMigrationFromV0(t *testing.T) {
	// A v0 file: a bbolt database without the meta bucket (what a new file
	// looks like before the first migration, or one made with bbolt tools).
	path := filepath.Join(t.TempDir(), FileName)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("unrelated"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTest(t, path, newClock())
	ctx := context.Background()
	if v, err := s.testSchema(ctx); err != nil || v != SchemaVersion {
		t.Fatalf("schema after migration = %d, %v", v, err)
	}
	// Every v1 bucket exists: each accessor works on the migrated file.
	if _, err := s.Marks(ctx); err != nil {
		t.Error(err)
	}
	if _, err := s.Snoozes(ctx, true); err != nil {
		t.Error(err)
	}
	if _, err := s.Outbox(ctx); err != nil {
		t.Error(err)
	}
	if _, _, err := s.testLastDelivery(ctx, "x"); err != nil {
		t.Error(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Data the migration did not own is left alone.
	db, err = bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		if got := string(tx.Bucket([]byte("unrelated")).Get([]byte("k"))); got != "v" {
			t.Errorf("unrelated data = %q", got)
		}
		return nil
	})
}

func TestMigrationStepTransformsDataAtomically(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	path := filepath.Join(t.TempDir(), FileName)
	s := openTest(t, path, clk)
	if _, err := s.testPutMark(ctx, Mark{TokenID: "t1", OwnerID: "o1", Policy: "p", Action: "delete", Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()

	// A hypothetical v2 that rewrites every mark's reason; the first attempt
	// fails half-way and must leave the file at v1 with the data unchanged.
	rewrite := func(fail bool) func(tx *bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			t := marksOf(tx)
			m, _, err := t.get(MarkKey{"t1", "p"}.key())
			if err != nil {
				return err
			}
			m.Reason = "migrated: " + m.Reason
			if err := t.put(m.Key().key(), m); err != nil {
				return err
			}
			if fail {
				return errors.New("disk on fire")
			}
			return nil
		}
	}
	v2 := func(fail bool) []migration {
		return append(migrations(), migration{to: SchemaVersion + 1, name: "rewrite reasons", apply: rewrite(fail)})
	}
	_, err := openWith(path, Options{Clock: clk.Now}, v2(true))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("schema %d (rewrite reasons): disk on fire", SchemaVersion+1)) {
		t.Fatalf("failing migration error = %v", err)
	}
	s = openTest(t, path, clk)
	m, _, _ := s.testGetMark(ctx, MarkKey{"t1", "p"})
	v, _ := s.testSchema(ctx)
	_ = s.Close()
	if v != SchemaVersion || m.Reason != "r" {
		t.Fatalf("after failed migration: schema %d, reason %q; want 1, %q", v, m.Reason, "r")
	}

	s2, err := openWith(path, Options{Clock: clk.Now}, v2(false))
	if err != nil {
		t.Fatal(err)
	}
	m, _, _ = s2.testGetMark(ctx, MarkKey{"t1", "p"})
	v, _ = s2.testSchema(ctx)
	_ = s2.Close()
	if v != SchemaVersion+1 || m.Reason != "migrated: r" {
		t.Fatalf("after migration: schema %d, reason %q", v, m.Reason)
	}
	// This binary now refuses the newer file.
	if _, err := Open(path, Options{}); err == nil {
		t.Fatal("opened a file of a newer schema")
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucket([]byte(bucketMeta))
		return b.Put([]byte(keySchema), []byte("7"))
	})
	_ = db.Close()

	_, err = Open(path, Options{})
	var se *SchemaError
	if !errors.As(err, &se) {
		t.Fatalf("Open error = %v, want *SchemaError", err)
	}
	if se.Found != 7 || se.Supported != SchemaVersion {
		t.Errorf("SchemaError = %+v", se)
	}
	if !strings.Contains(err.Error(), "schema version 7") {
		t.Errorf("message %q does not name the version", err)
	}
	// The refused open released the lock.
	if _, err := Open(path, Options{LockTimeout: 100 * time.Millisecond}); !errors.As(err, &se) {
		t.Errorf("second open = %v, want the schema error again (not a lock error)", err)
	}
}

func TestSecondOpenFailsFastInSameProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s := openTest(t, path, newClock())
	defer s.Close()

	start := time.Now()
	_, err := Open(path, Options{LockTimeout: 150 * time.Millisecond})
	elapsed := time.Since(start)
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open = %v, want ErrInUse", err)
	}
	if !strings.Contains(err.Error(), "state dir in use by another patjanitor") {
		t.Errorf("message = %q", err)
	}
	// Bounded: not a hang. Generous upper bound for slow CI machines.
	if elapsed > 5*time.Second {
		t.Errorf("second Open took %s", elapsed)
	}
}

// TestSecondProcessGetsInUseError holds the lock in a child process (this test
// binary re-executed) and opens the store from this one.
func TestSecondProcessGetsInUseError(t *testing.T) {
	if os.Getenv("PATJANITOR_STATE_LOCK_HOLDER") != "" {
		return // the child side is TestHelperHoldLock
	}
	path := filepath.Join(t.TempDir(), FileName)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLock$")
	cmd.Env = append(os.Environ(), "PATJANITOR_STATE_LOCK_HOLDER="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = stdin.Close() // tells the child to release and exit
		_ = cmd.Wait()
	}()
	buf := make([]byte, len("locked\n"))
	if _, err := stdout.Read(buf); err != nil || string(buf) != "locked\n" {
		t.Fatalf("child did not report the lock: %q %v", buf, err)
	}

	_, err = Open(path, Options{LockTimeout: 150 * time.Millisecond})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("Open while another process holds the lock = %v, want ErrInUse", err)
	}

	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	s, err := Open(path, Options{LockTimeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("Open after the other process exited: %v", err)
	}
	_ = s.Close()
}

func TestHelperHoldLock(t *testing.T) {
	path := os.Getenv("PATJANITOR_STATE_LOCK_HOLDER")
	if path == "" {
		t.Skip("helper for TestSecondProcessGetsInUseError")
	}
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Print("locked\n")
	_, _ = os.Stdin.Read(make([]byte, 1)) // until the parent closes stdin
	_ = s.Close()
}

func TestSnoozeExpiry(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), clk)
	defer s.Close()

	if _, err := s.PutSnooze(ctx, Snooze{TokenID: "t1", Until: clk.Now().Add(-time.Second), Reason: "x"}); err == nil {
		t.Error("snooze in the past accepted")
	}
	if _, err := s.PutSnooze(ctx, Snooze{TokenID: "t1", Until: clk.Now().Add(time.Hour)}); err == nil {
		t.Error("snooze without reason accepted")
	}
	z, err := s.PutSnooze(ctx, Snooze{TokenID: "t1", Until: clk.Now().Add(30 * 24 * time.Hour), Reason: "quarter-end batch", By: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if !z.CreatedAt.Equal(clk.Now()) {
		t.Errorf("CreatedAt = %s", z.CreatedAt)
	}
	if _, err := s.PutSnooze(ctx, Snooze{TokenID: "t2", Until: clk.Now().Add(24 * time.Hour), Reason: "short"}); err != nil {
		t.Fatal(err)
	}

	active, _ := s.ActiveSnoozes(ctx)
	if len(active) != 2 {
		t.Fatalf("active = %v", active)
	}

	clk.Advance(24 * time.Hour) // t2 ends exactly now: Until is exclusive
	if _, ok, _ := s.ActiveSnooze(ctx, "t2"); ok {
		t.Error("t2 still active at its Until")
	}
	if _, ok, _ := s.ActiveSnooze(ctx, "t1"); !ok {
		t.Error("t1 no longer active")
	}
	list, _ := s.Snoozes(ctx, false)
	if len(list) != 1 || list[0].TokenID != "t1" {
		t.Errorf("active list = %+v", list)
	}
	all, _ := s.Snoozes(ctx, true)
	if len(all) != 2 {
		t.Errorf("all = %+v", all)
	}
	if ok, err := s.DeleteSnooze(ctx, "t1"); !ok || err != nil {
		t.Errorf("DeleteSnooze = %v, %v", ok, err)
	}
	if ok, _ := s.DeleteSnooze(ctx, "t1"); ok {
		t.Error("deleted twice")
	}
}

func TestReconcileMarksKeepsClocksAndUnmarks(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), clk)
	defer s.Close()
	grace := 14 * 24 * time.Hour
	mk := func(tok, pol, reason string) Mark {
		return Mark{TokenID: tok, OwnerID: "o1", Policy: pol, Action: "delete", Reason: reason, Grace: grace}
	}

	ch, err := s.ReconcileMarks(ctx, []string{"a", "b"}, []Mark{mk("t1", "a", "r1"), mk("t2", "a", "r2"), mk("t3", "b", "r3")})
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.New) != 3 || len(ch.Kept) != 0 || len(ch.Removed) != 0 {
		t.Fatalf("first reconcile = %+v", ch)
	}
	markedAt := clk.Now()

	clk.Advance(time.Hour)
	warnAt := clk.Now()
	started, err := s.testWarn(ctx, []MarkKey{{"t1", "a"}, {"t9", "a"}}, warnAt)
	if err != nil || len(started) != 1 {
		t.Fatalf("WarnMarks = %+v, %v", started, err)
	}
	clk.Advance(time.Hour)
	again, _ := s.testWarn(ctx, []MarkKey{{"t1", "a"}}, clk.Now())
	if len(again) != 0 {
		t.Error("a second warning restarted the clock")
	}

	// Next run: t1 still matches (new reason text), t2 stopped matching, a
	// mark of policy c (not in this run's scope) is left alone.
	if _, err := s.testPutMark(ctx, Mark{TokenID: "t5", OwnerID: "o2", Policy: "c", Action: "patch", Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(24 * time.Hour)
	ch, err = s.ReconcileMarks(ctx, []string{"a", "b"}, []Mark{mk("t1", "a", "r1 updated"), mk("t3", "b", "r3")})
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.New) != 0 || len(ch.Kept) != 2 || len(ch.Removed) != 1 || ch.Removed[0].TokenID != "t2" {
		t.Fatalf("second reconcile = %+v", ch)
	}
	t1, _, _ := s.testGetMark(ctx, MarkKey{"t1", "a"})
	if !t1.MarkedAt.Equal(markedAt) || t1.WarnedAt == nil || !t1.WarnedAt.Equal(warnAt) || !t1.Deadline.Equal(warnAt.Add(grace)) {
		t.Errorf("t1 clock fields not preserved: %+v", t1)
	}
	if t1.Reason != "r1 updated" {
		t.Errorf("t1 reason = %q", t1.Reason)
	}
	if _, ok, _ := s.testGetMark(ctx, MarkKey{"t5", "c"}); !ok {
		t.Error("mark of an out-of-scope policy was removed")
	}
	if _, err := s.ReconcileMarks(ctx, []string{"a"}, []Mark{mk("t3", "b", "r3")}); err == nil {
		t.Error("a mark outside the scope was accepted")
	}

	if t1.Due(warnAt.Add(grace - time.Second)) {
		t.Error("due before the deadline")
	}
	if !t1.Due(warnAt.Add(grace)) {
		t.Error("not due at the deadline")
	}
	t3, _, _ := s.testGetMark(ctx, MarkKey{"t3", "b"})
	if t3.Due(clk.Now().Add(365 * 24 * time.Hour)) {
		t.Error("an unwarned mark is due")
	}

	// A longer grace after the warning moves the deadline with it.
	t1.Grace = 30 * 24 * time.Hour
	t1, err = s.testPutMark(ctx, t1)
	if err != nil || !t1.Deadline.Equal(warnAt.Add(30*24*time.Hour)) {
		t.Errorf("deadline after grace change = %v, %v", t1.Deadline, err)
	}

	if err := s.DeleteMarks(ctx, MarkKey{"t1", "a"}, MarkKey{"nope", "a"}); err != nil {
		t.Fatal(err)
	}
	all, _ := s.Marks(ctx)
	if len(all) != 2 || all[0].TokenID != "t3" || all[1].TokenID != "t5" {
		t.Errorf("marks = %+v", all)
	}
}

func TestOutboxDeliveredIsAtomic(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), clk)
	defer s.Close()
	grace := 7 * 24 * time.Hour
	for _, tok := range []string{"t1", "t2"} {
		if _, err := s.testPutMark(ctx, Mark{TokenID: tok, OwnerID: "o1", Policy: "p", Action: "delete", Reason: "r", Grace: grace}); err != nil {
			t.Fatal(err)
		}
	}
	e := OutboxEntry{ID: "digest/mail/o1", Receiver: "mail", Kind: "digest", OwnerID: "o1", Fingerprint: "fp",
		Marks: []MarkKey{{"t1", "p"}, {"t2", "p"}}, Payload: json.RawMessage(`{}`)}
	if err := s.Enqueue(ctx, e, OutboxEntry{ID: "summary/r1/slack", Receiver: "slack", Kind: "summary", Payload: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	due, _ := s.DueOutbox(ctx, clk.Now())
	if len(due) != 2 {
		t.Fatalf("due = %+v", due)
	}

	// A failed attempt: deferred, not due until next, no clock started.
	next := clk.Now().Add(10 * time.Minute)
	if err := s.testDeferred(ctx, e.ID, 1, next, "smtp: connection refused"); err != nil {
		t.Fatal(err)
	}
	due, _ = s.DueOutbox(ctx, clk.Now())
	if len(due) != 1 || due[0].ID != "summary/r1/slack" {
		t.Fatalf("due after defer = %+v", due)
	}
	if m, _, _ := s.testGetMark(ctx, MarkKey{"t1", "p"}); m.WarnedAt != nil {
		t.Fatal("a failed delivery started the clock")
	}
	clk.Advance(10 * time.Minute)
	due, _ = s.DueOutbox(ctx, clk.Now())
	if len(due) != 2 || due[0].ID != e.ID || due[0].Attempts != 1 || due[0].LastError != "smtp: connection refused" {
		t.Fatalf("due at next attempt = %+v", due)
	}

	at := clk.Now()
	started, err := s.testDelivered(ctx, e.ID, at)
	if err != nil || len(started) != 2 {
		t.Fatalf("Delivered = %+v, %v", started, err)
	}
	for _, m := range started {
		if !m.WarnedAt.Equal(at) || !m.Deadline.Equal(at.Add(grace)) {
			t.Errorf("mark %s clock = %v %v", m.Key(), m.WarnedAt, m.Deadline)
		}
	}
	d, ok, _ := s.testLastDelivery(ctx, "o1")
	if !ok || d.Fingerprint != "fp" || !d.SentAt.Equal(at) || d.MessageID != e.ID {
		t.Errorf("delivery = %+v", d)
	}
	if !d.Suppresses("fp", at.Add(time.Hour), 24*time.Hour) || d.Suppresses("fp", at.Add(24*time.Hour), 24*time.Hour) || d.Suppresses("other", at, 24*time.Hour) {
		t.Error("Suppresses rules wrong")
	}
	ob, _ := s.Outbox(ctx)
	if len(ob) != 1 {
		t.Errorf("outbox after delivery = %+v", ob)
	}
	// Delivered twice (or for a replaced entry) changes nothing.
	if again, err := s.testDelivered(ctx, e.ID, at.Add(time.Hour)); err != nil || len(again) != 0 {
		t.Errorf("second Delivered = %+v, %v", again, err)
	}
	if err := s.Drop(ctx, "summary/r1/slack"); err != nil {
		t.Fatal(err)
	}
	if ob, _ := s.Outbox(ctx); len(ob) != 0 {
		t.Errorf("outbox after drop = %+v", ob)
	}
}

func TestEnqueueReplacesPendingMessage(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), clk)
	defer s.Close()
	if err := s.Enqueue(ctx, OutboxEntry{ID: "digest/m/o1", Payload: json.RawMessage(`{"v":1}`)}); err != nil {
		t.Fatal(err)
	}
	_ = s.testDeferred(ctx, "digest/m/o1", 3, clk.Now().Add(time.Hour), "boom")
	clk.Advance(time.Minute)
	if err := s.Enqueue(ctx, OutboxEntry{ID: "digest/m/o1", Payload: json.RawMessage(`{"v":2}`)}); err != nil {
		t.Fatal(err)
	}
	ob, _ := s.DueOutbox(ctx, clk.Now())
	if len(ob) != 1 || string(ob[0].Payload) != `{"v":2}` || ob[0].Attempts != 0 || ob[0].LastError != "" {
		t.Fatalf("replaced entry = %+v", ob)
	}
	if err := s.Enqueue(ctx, OutboxEntry{Receiver: "x"}); err == nil {
		t.Error("entry without id accepted")
	}
}

func TestCanceledContext(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), FileName), newClock())
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.testPutMark(ctx, Mark{TokenID: "t", Policy: "p"}); !errors.Is(err, context.Canceled) {
		t.Errorf("PutMark on canceled ctx = %v", err)
	}
	if _, err := s.Marks(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Marks on canceled ctx = %v", err)
	}
}

func TestMarkValidation(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), FileName), newClock())
	defer s.Close()
	ctx := context.Background()
	for _, m := range []Mark{{Policy: "p"}, {TokenID: "t"}, {TokenID: "t", Policy: "p\x00x"}, {TokenID: "t", Policy: "p", Grace: -1}} {
		if _, err := s.testPutMark(ctx, m); err == nil {
			t.Errorf("PutMark(%+v) accepted", m)
		}
	}
}

// A read-only store (plan, serve --dry-run) reads what a real run wrote,
// writes nothing, creates nothing and migrates nothing.
func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if _, err := Open(path, Options{ReadOnly: true}); err == nil {
		t.Fatal("a read-only open created a store")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the store file exists after a refused read-only open: %v", err)
	}
	s := openTest(t, path, clk)
	if _, err := s.testPutMark(ctx, Mark{TokenID: "t1", Policy: "p", Action: "delete", Grace: time.Hour}); err != nil {
		t.Fatal(err)
	}
	// While a writer holds the store, a reader waits for it, then gives up.
	if _, err := Open(path, Options{ReadOnly: true, LockTimeout: 50 * time.Millisecond}); !errors.Is(err, ErrInUse) {
		t.Fatalf("read-only open beside a writer: %v, want ErrInUse", err)
	}
	_ = s.Close()

	ro, err := Open(path, Options{ReadOnly: true, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ro.Close() }()
	ms, err := ro.Marks(ctx)
	if err != nil || len(ms) != 1 || ms[0].TokenID != "t1" {
		t.Fatalf("marks read-only: %v, %v", ms, err)
	}
	if _, err := ro.testPutMark(ctx, Mark{TokenID: "t2", Policy: "p", Action: "delete"}); err == nil {
		t.Fatal("a read-only store accepted a write")
	}
}

// A read-only open refuses a store that still needs a migration.
func TestReadOnlyRefusesAnOldSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s, err := openWith(path, Options{}, nil) // schema 0
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	_, err = Open(path, Options{ReadOnly: true})
	if err == nil || !strings.Contains(err.Error(), "needs a migration") {
		t.Fatalf("read-only open of a schema-0 store: %v", err)
	}
}

// A shorter grace after the warning never moves the deadline before the one
// the owner was told; a longer one moves it later.
func TestGraceChangeNeverAdvancesTheDeadline(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), clk)
	defer func() { _ = s.Close() }()
	m := Mark{TokenID: "t1", Policy: "p", Action: "delete", Grace: 14 * 24 * time.Hour}
	if _, err := s.testPutMark(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, err := s.testWarn(ctx, []MarkKey{m.Key()}, clk.Now()); err != nil {
		t.Fatal(err)
	}
	told := clk.Now().Add(14 * 24 * time.Hour)
	m.Grace = 24 * time.Hour
	got, err := s.testPutMark(ctx, m)
	if err != nil || !got.Deadline.Equal(told) {
		t.Fatalf("after a shorter grace: deadline %v (%v), want the told %v", got.Deadline, err, told)
	}
	m.Grace = 30 * 24 * time.Hour
	if got, _ = s.testPutMark(ctx, m); !got.Deadline.Equal(clk.Now().Add(30 * 24 * time.Hour)) {
		t.Fatalf("after a longer grace: deadline %v", got.Deadline)
	}
}
