package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/patjanitor/patjanitor/internal/reasonshape"
)

// schema2Marks are marks as a schema-2 store holds them (JSON under the
// lowercase key), in every shape the clock rules make: new, warned, warned
// with a deadline the owner was told that is later than warnedAt + grace (the
// grace was shortened), a token id in capitals, an owner id that is not hex.
func schema2Marks(now time.Time) []Mark {
	warned := now.Add(-time.Hour)
	dl := warned.Add(14 * 24 * time.Hour)
	told := warned.Add(30 * 24 * time.Hour)
	return []Mark{
		{TokenID: "2c9180835d2e5168015d32f890ca1581", TokenName: "ci-deploy", OwnerID: "2c9180835d2e5168015d32f890ca1582",
			Policy: "unused-90d", Action: "delete", Reason: "never used", Grace: 14 * 24 * time.Hour, MarkedAt: now.Add(-2 * time.Hour)},
		{TokenID: "2c9180835d2e5168015d32f890ca1583", TokenName: "nightly", OwnerID: "2c9180835d2e5168015d32f890ca1582",
			Policy: "unused-90d", Action: "delete", Reason: "lastUsed 2026-05-10T03:00:00.000Z is before cutoff 2026-08-28T03:00:00.000Z (unusedFor 90d)",
			Grace: 14 * 24 * time.Hour, MarkedAt: now.Add(-2 * time.Hour), WarnedAt: &warned, Deadline: &dl},
		{TokenID: upperID, TokenName: "Ünïcode name", OwnerID: "Owner-Not-Hex", Policy: "narrow-scopes", Action: "patch",
			Change: "scope set to [sp:scopes:default]", Reason: "scopes", Grace: 7*24*time.Hour + 1500*time.Millisecond,
			MarkedAt: time.Date(2026, 10, 1, 3, 4, 5, 123456789, time.UTC), WarnedAt: &warned, Deadline: &told},
	}
}

// A schema-2 store (JSON marks) is read as it is by a read-only command, and
// the migration to 3 rewrites every mark in the compact record without
// changing what it says, in a fraction of the space.
func TestMigrationToCompactMarks(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	path := filepath.Join(t.TempDir(), FileName)
	s, err := openWith(path, Options{Clock: clk.Now}, migrations()[:2])
	if err != nil {
		t.Fatal(err)
	}
	want := schema2Marks(clk.Now())
	jsonBytes := 0
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, m := range want {
			raw, _ := json.Marshal(m)
			jsonBytes += len(raw)
			if err := tx.Bucket([]byte(bucketMarks)).Put([]byte(m.Key().key()), raw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()

	byKey := func(ms []Mark) map[MarkKey]Mark {
		out := map[MarkKey]Mark{}
		for _, m := range ms {
			out[m.Key()] = m
		}
		return out
	}
	same := func(stage string, got []Mark) {
		t.Helper()
		g := byKey(got)
		if len(g) != len(want) {
			t.Fatalf("%s: %d marks, want %d", stage, len(g), len(want))
		}
		for _, w := range want {
			if !sameMark(g[w.Key()], w) {
				t.Errorf("%s: mark %s\n got %+v\nwant %+v", stage, w.Key(), g[w.Key()], w)
			}
		}
	}

	ro, err := Open(path, Options{Clock: clk.Now, ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open of a schema-2 store: %v", err)
	}
	got, err := ro.Marks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	same("read-only, schema 2", got)
	_ = ro.Close()

	s = openTest(t, path, clk)
	defer func() { _ = s.Close() }()
	if v, _ := s.testSchema(ctx); v != SchemaVersion {
		t.Fatalf("schema %d after open, want %d", v, SchemaVersion)
	}
	got, err = s.Marks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	same("after migration", got)
	compact := 0
	_ = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketMarks)).ForEach(func(k, v []byte) error {
			if v[0] != markFormat {
				t.Errorf("mark %q not rewritten: %q", k, v)
			}
			compact += len(v)
			return nil
		})
	})
	if compact*2 > jsonBytes {
		t.Errorf("compact marks take %d bytes, JSON %d: want less than half", compact, jsonBytes)
	}
	// The clock rules hold on migrated marks: a refresh keeps the told
	// deadline and writes nothing when nothing changed.
	m := want[2]
	m.Grace = 7 * 24 * time.Hour
	stored, err := s.testPutMark(ctx, m)
	if err != nil || !stored.Deadline.Equal(*want[2].Deadline) {
		t.Fatalf("refresh of a migrated mark: deadline %v, %v; want the told %v", stored.Deadline, err, want[2].Deadline)
	}
}

// sameMark compares marks by what they say (times by instant).
func sameMark(a, b Mark) bool {
	eqp := func(x, y *time.Time) bool { return (x == nil) == (y == nil) && (x == nil || x.Equal(*y)) }
	if !a.MarkedAt.Equal(b.MarkedAt) || !eqp(a.WarnedAt, b.WarnedAt) || !eqp(a.Deadline, b.Deadline) {
		return false
	}
	a.MarkedAt, a.WarnedAt, a.Deadline = time.Time{}, nil, nil
	b.MarkedAt, b.WarnedAt, b.Deadline = time.Time{}, nil, nil
	return reflect.DeepEqual(a, b)
}

// txid is the id of the last committed transaction of the store.
func txid(t *testing.T, s *Store) int {
	t.Helper()
	var id int
	if err := s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// A reconcile, a drop or a settle that finds nothing to change commits
// nothing: a run with nothing new must not pay an fdatasync per step.
func TestNothingChangedCommitsNothing(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	path := filepath.Join(t.TempDir(), FileName)
	s := openTest(t, path, clk)
	defer func() { _ = s.Close() }()
	marks := schema2Marks(clk.Now())
	for i := range marks {
		marks[i].Policy = "p"
	}
	if _, err := s.ReconcileMarks(ctx, []string{"p"}, marks); err != nil {
		t.Fatal(err)
	}
	warnAt := clk.Now()
	if _, err := s.testWarn(ctx, []MarkKey{marks[0].Key()}, warnAt); err != nil {
		t.Fatal(err)
	}
	before := txid(t, s)
	clk.Advance(time.Hour)
	ch, err := s.ReconcileMarks(ctx, []string{"p"}, marks)
	if err != nil || len(ch.Kept) != len(marks) || len(ch.New)+len(ch.Removed) != 0 {
		t.Fatalf("reconcile again = %+v, %v", ch, err)
	}
	if err := s.Drop(ctx, "digest/hook/nobody", "digest/hook/none"); err != nil {
		t.Fatal(err)
	}
	if started, err := s.Settle(ctx, Settlement{ID: "gone", DeliveredAt: clk.Now()}, Settlement{ID: "gone2", Drop: true}); err != nil || started != nil {
		t.Fatalf("settle of absent entries = %v, %v", started, err)
	}
	// Opening a store of the current schema (every command does) writes
	// nothing either.
	_ = s.Close()
	s = openTest(t, path, clk)
	if after := txid(t, s); after != before {
		t.Fatalf("%d transactions committed with nothing to change", after-before)
	}
	// A change still commits, and only what changed is rewritten.
	marks[1].Reason = "new reason"
	if _, err := s.ReconcileMarks(ctx, []string{"p"}, marks); err != nil {
		t.Fatal(err)
	}
	if after := txid(t, s); after != before+1 {
		t.Fatalf("a changed reason committed %d transactions, want 1", after-before)
	}
	m, _, _ := s.testGetMark(ctx, marks[1].Key())
	w, _, _ := s.testGetMark(ctx, marks[0].Key())
	if m.Reason != "new reason" || w.WarnedAt == nil || !w.WarnedAt.Equal(warnAt) {
		t.Fatalf("after refresh: %+v, %+v", m, w)
	}
}

// Settle applies deliveries, drops and deferrals of one dispatch in one
// transaction; each delivery starts the clocks of its own marks at its own
// time.
func TestSettleBatch(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), clk)
	defer func() { _ = s.Close() }()
	grace := 7 * 24 * time.Hour
	for _, tok := range []string{"t1", "t2", "t3"} {
		if _, err := s.testPutMark(ctx, Mark{TokenID: tok, OwnerID: "o" + tok, Policy: "p", Action: "delete", Reason: "r", Grace: grace}); err != nil {
			t.Fatal(err)
		}
	}
	digest := func(tok string) OutboxEntry {
		return OutboxEntry{ID: "digest/m/o" + tok, Receiver: "m", Kind: "digest", OwnerID: "o" + tok, Fingerprint: "fp" + tok,
			Marks: []MarkKey{KeyOf(tok, "p")}, Payload: json.RawMessage(`{}`)}
	}
	if err := s.Enqueue(ctx, digest("t1"), digest("t2"), digest("t3")); err != nil {
		t.Fatal(err)
	}
	before := txid(t, s)
	at1, at2 := clk.Now().Add(time.Second), clk.Now().Add(2*time.Second)
	next := clk.Now().Add(time.Hour)
	started, err := s.Settle(ctx,
		Settlement{ID: "digest/m/ot1", DeliveredAt: at1},
		Settlement{ID: "digest/m/ot2", DeliveredAt: at2},
		Settlement{ID: "digest/m/ot3", Attempts: 3, NextAttempt: next, LastError: "503"},
		Settlement{ID: "digest/m/gone", Drop: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	if after := txid(t, s); after != before+1 {
		t.Fatalf("settle committed %d transactions, want 1", after-before)
	}
	if len(started) != 2 || len(started["digest/m/ot1"]) != 1 || !started["digest/m/ot2"][0].WarnedAt.Equal(at2) {
		t.Fatalf("started = %+v", started)
	}
	for tok, at := range map[string]time.Time{"t1": at1, "t2": at2} {
		m, _, _ := s.testGetMark(ctx, KeyOf(tok, "p"))
		if m.WarnedAt == nil || !m.WarnedAt.Equal(at) || !m.Deadline.Equal(at.Add(grace)) {
			t.Errorf("mark %s = %+v, want warned at %s", tok, m, at)
		}
		if d, ok, _ := s.testLastDelivery(ctx, "o"+tok); !ok || !d.SentAt.Equal(at) || d.Fingerprint != "fp"+tok {
			t.Errorf("delivery of o%s = %+v, %v", tok, d, ok)
		}
	}
	if m, _, _ := s.testGetMark(ctx, KeyOf("t3", "p")); m.WarnedAt != nil {
		t.Errorf("a deferred digest started a clock: %+v", m)
	}
	ob, _ := s.Outbox(ctx)
	if len(ob) != 1 || ob[0].ID != "digest/m/ot3" || ob[0].Attempts != 3 || !ob[0].NextAttempt.Equal(next) || ob[0].LastError != "503" {
		t.Fatalf("outbox = %+v", ob)
	}
	ds, err := s.LastDeliveries(ctx, []string{"OT1", "ot3"})
	if err != nil || len(ds) != 1 || !ds["ot1"].SentAt.Equal(at1) {
		t.Fatalf("LastDeliveries = %+v, %v", ds, err)
	}
}

// fuzzTable is a mark table without a store whose reason shapes are those
// of schema2Marks (numbered from 1), and their records.
func fuzzTable(tb testing.TB) (*markTable, [][2][]byte) {
	tab := &markTable{}
	var recs [][2][]byte
	for _, m := range schema2Marks(newClock().Now()) {
		k := m.Key().key()
		enc, err := tab.encode(k, m)
		if err != nil {
			tb.Fatal(err)
		}
		recs = append(recs, [2][]byte{[]byte(k), enc})
	}
	return tab, recs
}

// FuzzDecodeMark: no input makes the decoder panic, what it decodes encodes
// to a record that decodes to the same mark, and encoding that mark again
// gives the same bytes (an unchanged mark is not rewritten). The seeds are
// records of this version, the JSON of schema 2 and the records of schema 3
// in testdata/schema3-marks.db (written by the code of schema 3).
func FuzzDecodeMark(f *testing.F) {
	_, recs := fuzzTable(f)
	for _, r := range recs {
		f.Add(r[0], r[1])
	}
	for _, m := range schema2Marks(newClock().Now()) {
		raw, _ := json.Marshal(m)
		f.Add([]byte(m.Key().key()), raw)
	}
	for _, r := range schema3Records(f) {
		f.Add(r[0], r[1])
	}
	f.Add([]byte("t\x00p"), []byte{markFormat, 0x52, 0xff})
	f.Add([]byte("t\x00p"), []byte{markFormat, 0x90, 0x01, 0x07, 0x98, 0x01, 0x02, 0x02, 0x02})
	f.Fuzz(func(t *testing.T, key, raw []byte) {
		tab, _ := fuzzTable(t)
		m, err := tab.decode(key, raw)
		if err != nil || m.validate() != nil {
			return // upsertMark stores only valid marks
		}
		k := m.Key().key()
		enc, err := tab.encode(k, m)
		if err != nil {
			t.Fatalf("encode %+v: %v", m, err)
		}
		again, err := tab.decode([]byte(k), enc)
		if err != nil {
			t.Fatalf("re-decode of %+v: %v", m, err)
		}
		if !sameMark(again, m) {
			t.Fatalf("round trip changed the mark:\n got %+v\nwant %+v", again, m)
		}
		if enc2, _ := tab.encode(k, again); !bytes.Equal(enc2, enc) {
			t.Fatalf("the same mark encodes differently:\n%x\n%x", enc, enc2)
		}
	})
}

// FuzzReasonShape: any reason, name and owner cut into a shape render back
// to the same reason, the shape reads back as it was written, and no stored
// shape makes the decoder panic.
func FuzzReasonShape(f *testing.F) {
	for _, m := range schema3Fixture(f) {
		f.Add(m.Reason, m.TokenName, m.OwnerID, []byte(nil))
	}
	f.Add("created 2026-02-29T10:00:00.000Z, 2028-02-29T24:00:00.000Z, 9999-12-31T23:59:59.999Z0000-01-01T00:00:00.000Z", `a"b`, "", []byte{0x0a, 0x01, 'x', 0x10, 0x01})
	f.Fuzz(func(t *testing.T, reason, name, owner string, raw []byte) {
		if sh, err := reasonshape.Decode(raw); err == nil {
			_, _ = sh.Render([]int64{0, -1, 1 << 50}, name, owner)
		}
		enc, times := reasonshape.AppendCut(nil, nil, reason, name, owner)
		sh, err := reasonshape.Decode(enc)
		if err != nil {
			t.Fatalf("reason %q: shape %x: %v", reason, enc, err)
		}
		got, err := sh.Render(times, name, owner)
		if err != nil || got != reason {
			t.Fatalf("reason %q: shape %+v times %v renders %q, %v", reason, sh, times, got, err)
		}
		if again := sh.Encode(); !bytes.Equal(again, enc) {
			t.Fatalf("shape %+v encodes as %x, was %x", sh, again, enc)
		}
	})
}

// Every grace policies.yaml accepts (any time.Duration, up to about 292
// years) is stored and read back as it was; schema 4 refused to read a grace
// above 2^33 seconds (272 years) that it had written, and a schema-3 store
// holding one could not be migrated. Beyond time.Duration is malformed.
func TestEveryGraceReadsBack(t *testing.T) {
	tab, _ := fuzzTable(t)
	now := newClock().Now()
	for _, g := range []time.Duration{time.Nanosecond, 14 * 24 * time.Hour, (1<<33+1)*time.Second + 5,
		100000 * 24 * time.Hour, math.MaxInt64} {
		warned := now.Add(time.Hour)
		dl := warned.Add(g)
		m := Mark{TokenID: "t", OwnerID: "o", Policy: "p", Action: "delete", Reason: "r", Grace: g, MarkedAt: now, WarnedAt: &warned, Deadline: &dl}
		k := m.Key().key()
		enc, err := tab.encode(k, m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tab.decode([]byte(k), enc)
		if err != nil || !sameMark(got, m) {
			t.Fatalf("grace %v: read back %+v, %v", g, got, err)
		}
	}
	rec := func(sec, nsec int64) []byte {
		b := []byte{markFormat}
		for _, f := range []struct {
			n protowire.Number
			v int64
		}{{fGraceSec, sec}, {fGraceNsec, nsec}} {
			b = protowire.AppendTag(b, f.n, protowire.VarintType)
			b = protowire.AppendVarint(b, protowire.EncodeZigZag(f.v))
		}
		return b
	}
	top := int64(math.MaxInt64)
	if m, err := tab.decode([]byte("t\x00p"), rec(top/1e9, top%1e9)); err != nil || m.Grace != math.MaxInt64 {
		t.Fatalf("the longest grace: %v, %v", m.Grace, err)
	}
	for _, r := range [][2]int64{{top/1e9 + 1, 0}, {top / 1e9, top%1e9 + 1}, {-1, 0}, {0, 1e9}} {
		if _, err := tab.decode([]byte("t\x00p"), rec(r[0], r[1])); !errors.Is(err, errMarkRecord) {
			t.Fatalf("grace %d s + %d ns: %v, want a malformed record", r[0], r[1], err)
		}
	}
}

// FuzzMarkRoundTrip: every valid mark upsertMark could be given (times of a
// real clock, any grace a time.Duration holds, any text) is read back as it
// was written. FuzzDecodeMark starts from stored bytes; this one from the
// mark, the direction in which a grace of more than 272 years was lost.
func FuzzMarkRoundTrip(f *testing.F) {
	f.Add("2c9180835d2e5168015d32f890ca1581", "p", "delete", "lastUsed 2026-05-10T03:00:00.000Z is before", `n"1`, "2c9180835d2e5168015d32f890ca1582", "", int64(14*24*time.Hour), int64(1e12), int64(3600e3), int64(-1), uint8(0))
	f.Add("T", "p", "patch", "", "", "o", "scope set", int64(math.MaxInt64), int64(-1e12), int64(0), int64(5), uint8(3))
	// Ids the key hashes (markKey): one with a NUL, one too long for a key.
	f.Add("Tok\x00p", "p", "delete", "r", "n", "o", "", int64(time.Hour), int64(1e12), int64(0), int64(0), uint8(1))
	f.Add(strings.Repeat("L", 40000), "p", "expire", "r", "", "o", "writes expirationDate", int64(time.Hour), int64(1e12), int64(5), int64(0), uint8(1))
	f.Fuzz(func(t *testing.T, id, pol, action, reason, name, owner, change string, grace, markedMs, warnedAfterMs, toldAfterMs int64, sub uint8) {
		// A real clock's times: within 139 years of 1970.
		const span = int64(1) << 42
		if grace < 0 || markedMs < -span || markedMs > span || warnedAfterMs < -span || warnedAfterMs > span {
			return
		}
		m := Mark{TokenID: id, Policy: pol, Action: action, Reason: reason, TokenName: name, OwnerID: owner, Change: change,
			Grace: time.Duration(grace), MarkedAt: time.UnixMilli(markedMs).Add(time.Duration(sub)).UTC()}
		if m.validate() != nil {
			return
		}
		if sub&1 == 1 {
			w := m.MarkedAt.Add(time.Duration(warnedAfterMs) * time.Millisecond)
			d := DeadlineAfter(w, m.Grace, nil)
			if toldAfterMs >= 0 && toldAfterMs < span {
				told := d.Add(time.Duration(toldAfterMs) * time.Microsecond)
				d = DeadlineAfter(w, m.Grace, &told)
			}
			m.WarnedAt, m.Deadline = &w, &d
		}
		tab, _ := fuzzTable(t)
		k := m.Key().key()
		enc, err := tab.encode(k, m)
		if err != nil {
			t.Fatalf("encode %+v: %v", m, err)
		}
		got, err := tab.decode([]byte(k), enc)
		if err != nil {
			t.Fatalf("decode of %+v: %v", m, err)
		}
		if !sameMark(got, m) {
			t.Fatalf("round trip changed the mark:\n got %+v\nwant %+v", got, m)
		}
	})
}

// A field stored with another wire type than its own is a malformed record,
// not a zero: a warning time written as bytes (a disk that returned other
// bytes, a record written by hand) read as "warned at the mark's time", and
// a mark whose owner was never warned could fall due. shapeRef already
// skipped a shape number of the wrong type; decode now agrees with it.
func TestMarkFieldOfAnotherWireTypeIsMalformed(t *testing.T) {
	tab, _ := fuzzTable(t)
	now := newClock().Now()
	m := Mark{TokenID: "t", OwnerID: "o", Policy: "p", Action: "delete", Reason: "r", Grace: time.Hour, MarkedAt: now}
	k := m.Key().key()
	enc, err := tab.encode(k, m)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tab.decode([]byte(k), enc); err != nil || got.WarnedAt != nil {
		t.Fatalf("the mark as encoded: %+v, %v", got, err)
	}
	for _, c := range []struct {
		name   string
		format byte
		n      protowire.Number
		typ    protowire.Type
	}{
		{"warned ms as bytes", markFormat, fWarnedMs, protowire.BytesType},
		{"token id as varint", markFormat, fTokenID, protowire.VarintType},
		{"reason shape as bytes", markFormat, fReasonShape, protowire.BytesType},
		{"reason times as varint", markFormat, fReasonTimes, protowire.VarintType},
		{"schema 3 warned seconds as bytes", markFormat3, f3WarnedSec, protowire.BytesType},
		{"schema 3 reason as varint", markFormat3, f3Reason, protowire.VarintType},
	} {
		raw := []byte{c.format}
		if c.format == markFormat {
			raw = append([]byte(nil), enc...)
		}
		raw = protowire.AppendTag(raw, c.n, c.typ)
		if c.typ == protowire.BytesType {
			raw = protowire.AppendBytes(raw, nil)
		} else {
			raw = protowire.AppendVarint(raw, 0)
		}
		if got, err := tab.decode([]byte(k), raw); !errors.Is(err, errMarkRecord) {
			t.Errorf("%s: decoded as %+v, %v; want a malformed record", c.name, got, err)
		}
	}
}
