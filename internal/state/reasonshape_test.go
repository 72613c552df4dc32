package state

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/patjanitor/patjanitor/internal/reasonshape"
)

// testdata/schema3-marks.db was written by the code of schema 3 (main at
// 757eebc, through PutMark and WarnMarks, with a clock that has nanoseconds),
// and testdata/schema3-marks.json is what its Marks returned then: reasons
// with times, a quoted name that holds something like a time that is not
// one (February 30), an owner id in the reason, an id in capitals, an owner
// id that is not hex, a grace with a fraction of a second, a deadline the
// owner was told that is later than warnedAt + grace.

// schema3Fixture returns the marks the schema-3 fixture holds.
func schema3Fixture(tb testing.TB) []Mark {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "schema3-marks.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var ms []Mark
	if err := json.Unmarshal(raw, &ms); err != nil {
		tb.Fatal(err)
	}
	return ms
}

// copySchema3 copies the schema-3 fixture to a new state dir.
func copySchema3(tb testing.TB) string {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "schema3-marks.db"))
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), FileName)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// schema3Records are the keys and values of the fixture's marks.
func schema3Records(tb testing.TB) [][2][]byte {
	tb.Helper()
	db, err := bolt.Open(copySchema3(tb), 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	var out [][2][]byte
	_ = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketMarks)).ForEach(func(k, v []byte) error {
			out = append(out, [2][]byte{append([]byte(nil), k...), append([]byte(nil), v...)})
			return nil
		})
	})
	return out
}

// markBytes is the size of the marks' keys and values, and of the reason
// shapes, as stored.
func markBytes(t *testing.T, s *Store) (marks, shapes, nShapes int) {
	t.Helper()
	_ = s.db.View(func(tx *bolt.Tx) error {
		_ = tx.Bucket([]byte(bucketMarks)).ForEach(func(k, v []byte) error {
			marks += len(k) + len(v)
			return nil
		})
		if b := tx.Bucket([]byte(bucketReasons)); b != nil {
			_ = b.ForEach(func(k, v []byte) error {
				shapes += len(k) + len(v)
				nShapes++
				return nil
			})
		}
		return nil
	})
	return marks, shapes, nShapes
}

func sameMarks(t *testing.T, stage string, got, want []Mark) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d marks, want %d", stage, len(got), len(want))
	}
	for i := range want {
		// Both in key order.
		if !sameMark(got[i], want[i]) || !got[i].MarkedAt.Equal(want[i].MarkedAt) {
			t.Errorf("%s: mark %d\n got %+v\nwant %+v", stage, i, got[i], want[i])
		}
	}
}

// A store written by the previous version (schema 3) is read as it is by a
// read-only command, and opening it migrates it to schema 4 keeping every
// mark exactly (reasons, nanoseconds, the told deadline) in less space; the
// clock rules and the commit-nothing rule hold on the migrated marks.
func TestSchema3StoreKeepsEveryMark(t *testing.T) {
	ctx := context.Background()
	want := schema3Fixture(t)
	path := copySchema3(t)
	clk := newClock()

	ro, err := Open(path, Options{Clock: clk.Now, ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open of a schema-3 store: %v", err)
	}
	got, err := ro.Marks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameMarks(t, "read-only, schema 3", got, want)
	before, _, _ := markBytes(t, ro)
	_ = ro.Close()

	s := openTest(t, path, clk)
	defer func() { _ = s.Close() }()
	if v, _ := s.testSchema(ctx); v != SchemaVersion || SchemaVersion != 4 {
		t.Fatalf("schema %d after open, want 4", v)
	}
	got, err = s.Marks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameMarks(t, "migrated", got, want)
	after, shapes, n := markBytes(t, s)
	t.Logf("%d marks: %d bytes as schema 3, %d as schema 4 and %d in %d reason shapes", len(want), before, after, shapes, n)
	if after >= before*2/3 {
		t.Errorf("marks take %d bytes after the migration, %d before: want a third less at least", after, before)
	}
	// Every reason has its own conditions here, so one shape each (in a
	// tenant, the marks of a policy share a few).
	if n != len(want) {
		t.Errorf("%d reason shapes, want %d", n, len(want))
	}

	// Refreshing the marks as they are writes nothing; the shortened grace
	// of "nightly" keeps the deadline its owner was told.
	id := txid(t, s)
	for _, m := range want {
		stored, err := s.testPutMark(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if !sameMark(stored, m) {
			t.Errorf("refresh of %s\n got %+v\nwant %+v", m.Key(), stored, m)
		}
	}
	again, _ := s.Marks(ctx)
	sameMarks(t, "refreshed", again, want)
	ch, err := s.ReconcileMarks(ctx, policiesOf(want), want)
	if err != nil || len(ch.New)+len(ch.Removed) != 0 {
		t.Fatalf("reconcile of the same marks = %+v, %v", ch, err)
	}
	if now := txid(t, s); now != id+len(want) {
		t.Errorf("%d transactions for refreshing unchanged marks, want %d (PutMark's own, nothing for the reconcile)", now-id, len(want))
	}
}

func policiesOf(ms []Mark) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range ms {
		if !seen[m.Policy] {
			seen[m.Policy] = true
			out = append(out, m.Policy)
		}
	}
	return out
}

// The marks of one policy share their reason's shape: a mark keeps only a
// number and its times. A shape no mark refers to any more is removed by the
// next reconcile, and the reasons read back exactly.
func TestReasonShapesStoredOnce(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	clk.Advance(123456789 * time.Nanosecond) // a real clock's time
	s := openTest(t, filepath.Join(t.TempDir(), FileName), clk)
	defer func() { _ = s.Close() }()
	const n = 200
	cutoff := clk.Now().Add(-90 * 24 * time.Hour)
	reason := func(i int, cut time.Time) string {
		lu := clk.Now().Add(-200*24*time.Hour - time.Duration(i)*time.Minute - time.Duration(i)*time.Millisecond)
		return fmt.Sprintf("lastUsed %s is before cutoff %s (unusedFor 90d)", lu.UTC().Format(reasonshape.TimeLayout), cut.UTC().Format(reasonshape.TimeLayout))
	}
	marks := make([]Mark, n)
	for i := range marks {
		marks[i] = Mark{
			TokenID: fmt.Sprintf("%032x", 0xabc000+i), TokenName: fmt.Sprintf("ci-deploy-%05d", i), OwnerID: fmt.Sprintf("%032x", 0xdef000+i%7),
			Policy: "unused-90d", Action: "delete", Reason: reason(i, cutoff), Grace: 14 * 24 * time.Hour,
		}
	}
	// One token matched by name: its name is cut out of the shape too.
	marks[0].Policy, marks[0].Action, marks[0].Change = "by-name", "expire", "writes /expirationDate"
	marks[0].Reason = fmt.Sprintf("name %q matches \"^ci-\" (nameMatches); owner %s is listed (ownerIds)", marks[0].TokenName, marks[0].OwnerID)
	if _, err := s.ReconcileMarks(ctx, []string{"unused-90d", "by-name"}, marks); err != nil {
		t.Fatal(err)
	}
	warnedAt := clk.Now().Add(1500 * time.Microsecond).Truncate(time.Millisecond)
	started, err := s.testWarn(ctx, []MarkKey{marks[1].Key()}, clk.Now().Add(1500*time.Microsecond))
	if err != nil || len(started) != 1 || !started[0].WarnedAt.Equal(warnedAt) {
		t.Fatalf("warn = %+v, %v: want the clock started at the millisecond", started, err)
	}
	got, err := s.Marks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[MarkKey]Mark{}
	for _, m := range got {
		byKey[m.Key()] = m
	}
	for _, m := range marks {
		g := byKey[m.Key()]
		if g.Reason != m.Reason || g.TokenName != m.TokenName || g.OwnerID != m.OwnerID || g.Action != m.Action || g.Change != m.Change {
			t.Errorf("mark %s read back as %+v, want %+v", m.Key(), g, m)
		}
		if !g.MarkedAt.Equal(clk.Now().Truncate(time.Millisecond)) {
			t.Errorf("mark %s marked at %s, want the millisecond of %s", m.Key(), g.MarkedAt, clk.Now())
		}
	}
	size, shapeBytes, shapes := markBytes(t, s)
	t.Logf("%d marks take %d bytes (%d each), %d shapes %d bytes", n, size, size/n, shapes, shapeBytes)
	if shapes != 2 {
		t.Errorf("%d reason shapes, want 2 (one per policy)", shapes)
	}
	// A mark as the benchmark's: a 32-digit token id and owner id, a name,
	// two times in its reason, warned.
	if per := size / n; per > 110 {
		t.Errorf("a mark takes %d bytes, want at most 110", per)
	}

	// The next run: a later cutoff (every reason changes, the shapes do
	// not), and the by-name token no longer matches: its shape goes.
	clk.Advance(time.Hour)
	for i := range marks {
		marks[i].Reason = reason(i, cutoff.Add(time.Hour))
	}
	ch, err := s.ReconcileMarks(ctx, []string{"unused-90d", "by-name"}, marks[1:])
	if err != nil || len(ch.Removed) != 1 {
		t.Fatalf("reconcile = %+v, %v", ch, err)
	}
	if _, _, shapes := markBytes(t, s); shapes != 1 {
		t.Errorf("%d reason shapes after the by-name mark went, want 1", shapes)
	}
	m, _, err := s.testGetMark(ctx, marks[5].Key())
	if err != nil || m.Reason != marks[5].Reason {
		t.Fatalf("mark after the next run: %+v, %v; want reason %q", m, err, marks[5].Reason)
	}
	w, _, _ := s.testGetMark(ctx, marks[1].Key())
	if w.WarnedAt == nil || !w.WarnedAt.Equal(warnedAt) {
		t.Fatalf("warned mark after the next run: %+v", w)
	}
}

// A record that refers to a reason shape the store does not hold is an
// error naming the shape, not a mark without a reason.
func TestMarkWithUnknownShapeIsAnError(t *testing.T) {
	tab, recs := fuzzTable(t)
	_, err := (&markTable{}).decode(recs[1][0], recs[1][1])
	if err == nil {
		t.Fatalf("decoded a mark whose reason shape is missing")
	}
	if want := "reason shape 2 is not in the store"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q, want it to say %q", err, want)
	}
	if _, err := tab.decode(recs[1][0], recs[1][1]); err != nil {
		t.Fatal(err)
	}
}
