package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// A part over maxIDPart stands in a message id as "sha256-<hex>". An owner id
// of the tenant that spells exactly that (a short id, kept as it is) gave two
// owners one digest id, and the later digest replaced the earlier in the
// outbox: one owner was never warned. A part with the hash's prefix is
// hashed too, so the two ids differ.
func TestHostileOwnerIDSpellsAnotherOwnersHashedDigestID(t *testing.T) {
	long := strings.Repeat("a", 40_000)
	sum := sha256.Sum256([]byte(pat.IDKey(long)))
	spelled := "sha256-" + hex.EncodeToString(sum[:])
	if a, b := DigestID("slack", long), DigestID("slack", spelled); a == b {
		t.Fatalf("owners %q… and %q share the digest id %q", long[:8], spelled, a)
	}
	if a, b := DigestID("slack", long), DigestID("slack", long); a != b {
		t.Errorf("a long owner's digest id changes from call to call: %q, %q", a, b)
	}
	if got, want := DigestID("slack", "0a5ab0be4fb66dc874710726f669e4e2"), "digest/slack/0a5ab0be4fb66dc874710726f669e4e2"; got != want {
		t.Errorf("a real owner's digest id = %q, want %q (unchanged)", got, want)
	}
	for _, id := range []string{DigestID("slack", long), DigestID("slack", spelled)} {
		if len(id) > 2*maxIDPart {
			t.Errorf("digest id of %d bytes, want a short one", len(id))
		}
	}
}
