package janitor_test

import (
	"encoding/json"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/notify/notifytest"
	"github.com/patjanitor/patjanitor/internal/plan"
)

// TestHostileStateFileDeadlineWithoutWarning: the state file holds a mark
// whose deadline has passed but that records no warning (written by hand
// or by another version: the store itself never writes one). Its owner
// was never told, so nothing is acted on: the item is held, the owner is
// warned, and the clock starts on that delivery, the grace period counted
// from it.
func TestHostileStateFileDeadlineWithoutWarning(t *testing.T) {
	g := newGraceEnv(t, graceConfig)
	g.addStale("d", 1, 1) // d-000 of d-owner-0

	// A mark as schema 2 wrote them (JSON; every reader takes it), put in
	// the file with the store closed, as an editor would.
	_ = g.st.Close()
	db, err := bolt.Open(g.stPath, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	mark, err := json.Marshal(map[string]any{
		"tokenId": "d-000", "ownerId": "d-owner-0", "policy": "unused-90d", "action": "delete",
		"reason": "unused", "grace": int64(14 * day), "markedAt": t0.Add(-30 * day), "deadline": t0.Add(-day),
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("marks")).Put([]byte("d-000\x00unused-90d"), mark)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	g.st = nil
	g.openStore()

	res := g.run()
	g.requireNoMutations()
	if res.Plan.Items.Len() != 1 {
		t.Fatalf("%d plan items, want d-000", res.Plan.Items.Len())
	}
	for _, it := range res.Plan.Items.All() {
		if it.TokenID != "d-000" || it.Mode != plan.ModeGrace || it.Deadline != nil {
			t.Fatalf("item %s: mode %s deadline %v, want d-000 held in grace without a deadline", it.TokenID, it.Mode, it.Deadline)
		}
		// The stored mark was read (its mark time is kept), not ignored.
		if it.Marked == nil || !it.Marked.Equal(t0.Add(-30*day)) {
			t.Fatalf("item marked %v, want the stored mark's %v", it.Marked, t0.Add(-30*day))
		}
	}
	digests := notifytest.OfKind(g.hook.Take(), notify.KindDigest)
	if len(digests) != 1 || digests[0].Digest.Owner.ID != "d-owner-0" || !slices.Equal(digestTokens(digests[0].Digest), []string{"d-000"}) {
		t.Fatalf("digests %+v, want one to d-owner-0 naming d-000", digests)
	}
	m := g.marks()["d-000"]
	if m.WarnedAt == nil || !m.WarnedAt.Equal(t0) || m.Deadline == nil || !m.Deadline.Equal(at(14)) {
		t.Fatalf("mark %+v, want warned now, deadline in 14 days", m)
	}
	for _, r := range g.journalRecords() {
		if r.Kind == "intent" {
			t.Fatalf("journal intent: %+v", r)
		}
	}

	// Not before the grace period counted from that warning.
	g.clock.Set(at(13))
	g.run()
	g.requireNoMutations()
	g.clock.Set(at(14))
	g.run()
	if del := deletedIDs(g.mutations()); len(del) != 1 || del["d-000"] != 1 {
		t.Fatalf("day 14 deleted %v, want d-000 once", del)
	}
}
