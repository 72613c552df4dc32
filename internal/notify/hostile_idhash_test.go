package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// TestHostileOwnerIDSpellingAnotherOwnersHashedIDBothDelivered: a message
// id stands an owner id over 256 bytes as "sha256-<hex>". A tenant listing
// another owner whose id is that very string must not make the two owners
// share one outbox entry, where the later digest replaced the other owner's
// and that owner was never warned: both digests reach the receiver and
// start their own marks' clocks (TestHostileOwnerIDSpellsAnotherOwnersHashedDigestID
// checks the ids alone).
func TestHostileOwnerIDSpellingAnotherOwnersHashedIDBothDelivered(t *testing.T) {
	ctx := context.Background()
	env := newDispatchEnv(t)
	long := strings.Repeat("a", 300)
	sum := sha256.Sum256([]byte(pat.IDKey(long)))
	forged := "sha256-" + hex.EncodeToString(sum[:])

	dl, df := unwarnedDigest(), unwarnedDigest()
	dl.Owner.ID, dl.Owner.Email = long, "long@example.com"
	df.Owner.ID, df.Owner.Email = forged, "forged@example.com"
	for i := range df.Items {
		df.Items[i].TokenID += "-f"
	}
	if DigestID("siem", long) == DigestID("siem", forged) {
		t.Errorf("the two owners' digests share the id %s", DigestID("siem", long))
	}
	seedMarks(t, env.store, dl)
	seedMarks(t, env.store, df)
	rec := newRecorder(answer{status: 200}, answer{status: 200})
	_, url := newServer(t, rec)
	disp := env.dispatcher(t, map[string]Notifier{"siem": buildWebhook(t, url, env.clk)})
	rep, err := disp.Send(ctx, DigestMessage("siem", "run-1", t0, dl), DigestMessage("siem", "run-1", t0, df))
	if err != nil || rep.Count(Sent) != 2 {
		t.Fatalf("Send = %+v, %v; want both digests sent", rep.Results, err)
	}
	reqs := rec.requests()
	if len(reqs) != 2 {
		t.Fatalf("the receiver got %d requests, want 2", len(reqs))
	}
	for i, email := range []string{"long@example.com", "forged@example.com"} {
		if !strings.Contains(string(reqs[i].body), email) {
			t.Errorf("request %d does not name %s: %s", i, email, reqs[i].body)
		}
	}
	// Each owner's warning started its own marks' clocks.
	for _, d := range []Digest{dl, df} {
		for _, it := range d.Items {
			if m := markOf(t, env.store, it.TokenID, it.Policy); m.WarnedAt == nil {
				t.Errorf("mark %s of owner %.20s...: not warned", it.TokenID, d.Owner.ID)
			}
		}
	}
	if a, b := NoticeMessage("siem", "run-1", t0, Notice{Owner: dl.Owner}).ID, NoticeMessage("siem", "run-1", t0, Notice{Owner: df.Owner}).ID; a == b {
		t.Errorf("the two owners' notices share the id %s", a)
	}
}
