package janitor_test

import (
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/notify/notifytest"
)

// storeTxID closes the state store, reads the id of its last committed
// transaction with bbolt (each commit fdatasyncs the file twice), the file's
// size, its marks and the bytes they take (keys and values), and reopens it.
func (g *graceEnv) storeTxID(tb testing.TB) (txid uint64, size int64, marks int, markBytes int64) {
	tb.Helper()
	_ = g.st.Close()
	g.st = nil
	db, err := bolt.Open(g.stPath, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		txid, size = uint64(tx.ID()), tx.Size()
		if mb := tx.Bucket([]byte("marks")); mb != nil {
			return mb.ForEach(func(k, v []byte) error {
				marks++
				markBytes += int64(len(k) + len(v))
				return nil
			})
		}
		return nil
	})
	_ = db.Close()
	if err != nil {
		tb.Fatal(err)
	}
	g.openStore()
	return txid, size, marks, markBytes
}

// A run with nothing new to do (every owner already has the digest it
// would get) commits a handful of store transactions, not one per owner;
// a reminder run (the digest interval passed) and the first run settle
// their deliveries in a few too. The workflow is unchanged: nothing is
// deleted, the clocks keep the first delivery's time.
func TestGraceRunWithNothingNewCommitsAHandful(t *testing.T) {
	const owners = 20
	g := newGraceEnv(t, graceConfig)
	g.addStale("g", 2*owners, 2)
	start, _, _, _ := g.storeTxID(t)

	g.run()
	if n := len(notifytest.OfKind(g.hook.Take(), notify.KindDigest)); n != owners {
		t.Fatalf("first run: %d digests, want %d", n, owners)
	}
	first, _, marks, _ := g.storeTxID(t)
	if marks != 2*owners {
		t.Fatalf("%d marks, want %d", marks, 2*owners)
	}
	if c := first - start; c > 6 {
		t.Errorf("the first run committed %d transactions for %d digests, want a handful", c, owners)
	}
	warned := g.marks()

	g.clock.Advance(time.Hour)
	g.run()
	msgs := g.hook.Take()
	if n := len(notifytest.OfKind(msgs, notify.KindDigest)); n != 0 {
		t.Fatalf("a run with nothing new sent %d digests", n)
	}
	if n := len(notifytest.OfKind(msgs, notify.KindSummary)); n != 1 {
		t.Fatalf("a run with nothing new sent %d summaries, want 1", n)
	}
	again, _, _, _ := g.storeTxID(t)
	if c := again - first; c > 5 {
		t.Errorf("a run with nothing new committed %d transactions for %d owners, want at most 5", c, owners)
	}

	g.clock.Advance(notify.DefaultDigestInterval)
	g.run()
	if n := len(notifytest.OfKind(g.hook.Take(), notify.KindDigest)); n != owners {
		t.Fatalf("reminder run: %d digests, want %d", n, owners)
	}
	reminded, _, _, _ := g.storeTxID(t)
	if c := reminded - again; c > 6 {
		t.Errorf("a reminder run committed %d transactions for %d digests, want a handful", c, owners)
	}
	g.requireNoMutations()
	for id, m := range g.marks() {
		if w := warned[id]; m.WarnedAt == nil || w.WarnedAt == nil || !m.WarnedAt.Equal(*w.WarnedAt) {
			t.Errorf("mark %s: warned %v, want the first delivery's %v", id, m.WarnedAt, w.WarnedAt)
		}
	}
}
