package janitor_test

import (
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/notify/notifytest"
)

// storeStats is what storeTxID reads from the state file.
type storeStats struct {
	txid  uint64 // the id of the last committed transaction
	size  int64  // of the file
	marks int
	// markBytes are the keys and values of the marks and of the reason
	// shapes they refer to (schema 4); pageInuse the part of bbolt's pages
	// they fill, with its page and element headers, and pageAlloc the
	// pages, with the room left in them.
	markBytes, pageInuse, pageAlloc int64
}

// storeTxID closes the state store, reads the id of its last committed
// transaction with bbolt (each commit fdatasyncs the file twice), the file's
// size, its marks and the bytes they take, and reopens it.
func (g *graceEnv) storeTxID(tb testing.TB) storeStats {
	tb.Helper()
	_ = g.st.Close()
	g.st = nil
	db, err := bolt.Open(g.stPath, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	var st storeStats
	err = db.View(func(tx *bolt.Tx) error {
		st.txid, st.size = uint64(tx.ID()), tx.Size()
		for _, name := range []string{"marks", "reasons"} {
			b := tx.Bucket([]byte(name))
			if b == nil {
				continue
			}
			bs := b.Stats()
			st.pageInuse += int64(bs.LeafInuse + bs.BranchInuse)
			st.pageAlloc += int64(bs.LeafAlloc + bs.BranchAlloc)
			err := b.ForEach(func(k, v []byte) error {
				if name == "marks" {
					st.marks++
				}
				st.markBytes += int64(len(k) + len(v))
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	_ = db.Close()
	if err != nil {
		tb.Fatal(err)
	}
	g.openStore()
	return st
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
	start := g.storeTxID(t).txid

	g.run()
	if n := len(notifytest.OfKind(g.hook.Take(), notify.KindDigest)); n != owners {
		t.Fatalf("first run: %d digests, want %d", n, owners)
	}
	st := g.storeTxID(t)
	first, marks := st.txid, st.marks
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
	again := g.storeTxID(t).txid
	if c := again - first; c > 5 {
		t.Errorf("a run with nothing new committed %d transactions for %d owners, want at most 5", c, owners)
	}

	g.clock.Advance(notify.DefaultDigestInterval)
	g.run()
	if n := len(notifytest.OfKind(g.hook.Take(), notify.KindDigest)); n != owners {
		t.Fatalf("reminder run: %d digests, want %d", n, owners)
	}
	reminded := g.storeTxID(t).txid
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
