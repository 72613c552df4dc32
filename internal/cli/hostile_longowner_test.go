package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/notify/notifytest"
)

// An owner id may be up to 64 KiB (the listing's field limit), longer than
// the 32 KiB a key of the state store may be. The owner's digest was queued
// under an id made of the owner id, so queueing failed: no owner of the run
// was warned (or, since the outbox is written in batches, none after that
// owner), no clock started, run after run. A long owner id now makes a
// digest id of fixed length, and the owner's last delivery a key of fixed
// length (that key too was refused, failing the settling of a batch of
// deliveries): every owner is warned once.
//
// Five owners, the long one in the middle, are enough: the refused key
// fails the one batch they share, so on the old code nothing is queued, and
// with only the message id fixed the 6 messages are sent and no clock
// starts (apply exits 1 either way). The test warned 1,201 owners before,
// 2.9 s of CPU under -race; that every owner of a run larger than the
// outbox's batches of 500 is warned once is
// TestGraceApplyDigestsMoreOwnersThanOneOutboxBatch's.
func TestHostileOwnerIDLongerThanAStoreKey(t *testing.T) {
	h := notifytest.NewReceiver(t, "/hooks/"+gcHookPathSecret, gcHookKey, nil)
	e := newGraceWF(t, h)
	const owners = 5
	long := strings.Repeat("b", 40000)
	ownerOf := func(i int) string {
		if i == 2 {
			return long
		}
		return fmt.Sprintf("own%04d", i)
	}
	for i := range owners {
		e.add(fmt.Sprintf("tok%04d", i), ownerOf(i), 400*wfDay, 200*wfDay)
	}
	before := time.Now()
	code, stdout, stderr := e.run(nil, "apply", "--auto-approve")
	after := time.Now()
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%.3000s", code, stdout, stderr)
	}
	digests := gcDigests(t, h.Take())
	if len(digests) != owners {
		t.Errorf("%d owners got a digest, want %d", len(digests), owners)
	}
	for i := range owners {
		if got := digests[ownerOf(i)]; len(got) != 1 || got[0] != fmt.Sprintf("tok%04d", i) {
			t.Fatalf("the digest of owner %d names %v", i, got)
		}
	}
	marks := gcMarks(t, e.state)
	if len(marks) != owners {
		t.Errorf("%d marks, want %d", len(marks), owners)
	}
	for id, m := range marks {
		gcWarned(t, id, m, true, before, after)
	}
	if ob := gcOutbox(t, e.state); len(ob) != 0 {
		t.Errorf("%d entries left in the outbox", len(ob))
	}
	// The deliveries were recorded: the next run repeats no digest.
	if code, stdout, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("second apply: exit %d\n%s\n%.3000s", code, stdout, stderr)
	}
	if d := gcDigests(t, h.Take()); len(d) != 0 {
		t.Errorf("the second run sent %d digests again", len(d))
	}
	if m := e.mutations(); len(m) != 0 {
		t.Fatalf("apply sent %d mutating requests during the grace period", len(m))
	}
}
