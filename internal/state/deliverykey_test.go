package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// TestHostileOwnerIDNamedAfterAnotherOwnersDeliveryKey: the last delivery
// of an owner id too long for a store key is kept under a hash of it. A
// tenant may list another owner whose id spells that hash: the two owners'
// records must stay apart, neither read as nor written over the other's.
func TestHostileOwnerIDNamedAfterAnotherOwnersDeliveryKey(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), clk)
	defer func() { _ = s.Close() }()

	long := strings.Repeat("o", 40<<10)
	sum := sha256.Sum256([]byte(pat.IDKey(long)))
	short := "sha256-" + hex.EncodeToString(sum[:])

	at := clk.Now()
	if err := s.Enqueue(ctx,
		OutboxEntry{ID: "long", Receiver: "r", OwnerID: long, Fingerprint: "sha256:long", Payload: []byte(`{}`)},
		OutboxEntry{ID: "short", Receiver: "r", OwnerID: short, Fingerprint: "sha256:short", Payload: []byte(`{}`)},
	); err != nil {
		t.Fatal(err)
	}
	if _, err := s.testDelivered(ctx, "long", at); err != nil {
		t.Fatal(err)
	}
	if d, ok, err := s.testLastDelivery(ctx, short); err != nil || ok {
		t.Fatalf("last delivery of %s before any = (owner %.20s..., fingerprint %s), %v, %v; want none", short, d.OwnerID, d.Fingerprint, ok, err)
	}
	if _, err := s.testDelivered(ctx, "short", at); err != nil {
		t.Fatal(err)
	}
	d, ok, err := s.testLastDelivery(ctx, long)
	if err != nil || !ok || d.OwnerID != long || d.Fingerprint != "sha256:long" {
		t.Fatalf("last delivery of the long owner = %.60s..., %v, %v; want its own (fingerprint sha256:long)", d.OwnerID, ok, err)
	}
	d, ok, err = s.testLastDelivery(ctx, short)
	if err != nil || !ok || d.OwnerID != short || d.Fingerprint != "sha256:short" {
		t.Fatalf("last delivery of %s = (owner %.20s..., fingerprint %s), %v, %v; want its own", short, d.OwnerID, d.Fingerprint, ok, err)
	}
}
