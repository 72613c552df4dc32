package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestHostileLongTokenIDMarkRoundTrips: a mark of a token id too long for
// a store key (or holding a NUL) is stored under a hash of it, and
// everything that reads it back gets the id as listed: Marks, a warning's
// clock, the next reconciliation (kept, clock preserved), and the one after
// the token left the listing (removed). Ids of real tenants keep their keys,
// and an id spelling the hash shares nothing with the long one.
func TestHostileLongTokenIDMarkRoundTrips(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), clk)
	defer func() { _ = s.Close() }()

	long := "Long-" + strings.Repeat("x", 40000-5)
	nul := "tok\x00p"
	sum := sha256.Sum256([]byte(strings.ToLower(long)))
	spellsHash := "sha256-" + hex.EncodeToString(sum[:]) // as pat.IDKey lists it
	canonical := "2c9180835d2e5168015d32f890ca1581"
	mark := func(id string) Mark {
		return Mark{TokenID: id, OwnerID: "owner-of-" + id[:3], Policy: "p", Action: "delete", Reason: "unused", Grace: 14 * 24 * time.Hour}
	}
	all := []Mark{mark(long), mark(nul), mark(spellsHash), mark(canonical)}
	ch, err := s.ReconcileMarks(ctx, []string{"p"}, all)
	if err != nil {
		t.Fatalf("ReconcileMarks: %.300v", err)
	}
	if len(ch.New) != len(all) || len(ch.Kept) != 0 || len(ch.Removed) != 0 {
		t.Fatalf("first reconcile: %d new %d kept %d removed, want %d new", len(ch.New), len(ch.Kept), len(ch.Removed), len(all))
	}
	// The keys: canonical ids as they always were, the others bounded.
	err = s.view(ctx, func(tx *bolt.Tx) error {
		return bucket(tx, bucketMarks).ForEach(func(k, _ []byte) error {
			if len(k) > len(hashedKey(""))+1+len("p") {
				t.Errorf("a mark key of %d bytes", len(k))
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{canonical: canonical + "\x00p", spellsHash: spellsHash + "\x00p"} {
		if got := KeyOf(id, "p").key(); got != want {
			t.Errorf("the key of %q is %q, want %q (unchanged)", id, got, want)
		}
	}
	byID := func() map[string]Mark {
		t.Helper()
		ms, err := s.Marks(ctx)
		if err != nil {
			t.Fatalf("Marks: %.300v", err)
		}
		out := map[string]Mark{}
		for _, m := range ms {
			out[m.TokenID] = m
		}
		return out
	}
	got := byID()
	for _, m := range all {
		g, ok := got[m.TokenID]
		if !ok || g.OwnerID != m.OwnerID || g.Reason != m.Reason || g.Grace != m.Grace {
			t.Fatalf("the mark of %.40q read back as %.200v (found %v)", m.TokenID, g, ok)
		}
	}
	if len(got) != len(all) {
		t.Fatalf("%d marks read back, want %d", len(got), len(all))
	}

	// A delivered warning starts the long id's clock (and only its own).
	at := clk.Now().Add(time.Hour)
	started, err := s.testWarn(ctx, []MarkKey{KeyOf(long, "p"), KeyOf(nul, "p")}, at)
	if err != nil || len(started) != 2 {
		t.Fatalf("warn: %d started, %v; want 2", len(started), err)
	}
	got = byID()
	for _, id := range []string{long, nul} {
		if m := got[id]; m.WarnedAt == nil || !m.WarnedAt.Equal(at) {
			t.Errorf("the clock of %.40q: %v, want %v", id, m.WarnedAt, at)
		}
	}
	if m := got[spellsHash]; m.WarnedAt != nil {
		t.Errorf("the warning of the long id started the clock of the id spelling its hash")
	}

	// The next run lists the same tokens: all kept, clocks as they were.
	clk.Advance(24 * time.Hour)
	ch, err = s.ReconcileMarks(ctx, []string{"p"}, all)
	if err != nil || len(ch.Kept) != len(all) || len(ch.New) != 0 || len(ch.Removed) != 0 {
		t.Fatalf("second reconcile: %d new %d kept %d removed, %.300v; want %d kept", len(ch.New), len(ch.Kept), len(ch.Removed), err, len(all))
	}
	for _, m := range ch.Kept {
		if (m.TokenID == long || m.TokenID == nul) && (m.WarnedAt == nil || !m.WarnedAt.Equal(at)) {
			t.Errorf("kept %.40q with clock %v, want %v", m.TokenID, m.WarnedAt, at)
		}
	}

	// The long token and the NUL one leave the listing: removed, named by
	// their ids.
	ch, err = s.ReconcileMarks(ctx, []string{"p"}, []Mark{mark(spellsHash), mark(canonical)})
	if err != nil || len(ch.Removed) != 2 {
		t.Fatalf("third reconcile: %d removed, %.300v; want 2", len(ch.Removed), err)
	}
	for _, m := range ch.Removed {
		if m.TokenID != long && m.TokenID != nul {
			t.Errorf("removed %.40q", m.TokenID)
		}
	}
	if got := byID(); len(got) != 2 || got[spellsHash].TokenID == "" || got[canonical].TokenID == "" {
		t.Fatalf("left %d marks, want the id spelling the hash and the canonical one", len(got))
	}
}

// TestHashedMarkKeyMustNameItsToken: a record under a hashed key whose
// token id does not hash to it (a state.db edited, or the id field lost)
// is malformed, not a mark of a token named like the hash (which a tenant
// may list, and whose owner was never warned).
func TestHashedMarkKeyMustNameItsToken(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), newClock())
	defer func() { _ = s.Close() }()
	key := KeyOf(strings.Repeat("y", 40000), "p").key()
	err := s.update(ctx, func(tx *bolt.Tx) error {
		tb := marksOf(tx)
		// Encoded for a token whose id is the key's own id part: the
		// record leaves the id field out.
		tok, _, _ := strings.Cut(key, "\x00")
		return tb.put(key, Mark{TokenID: tok, Policy: "p", Action: "delete", MarkedAt: time.Unix(1, 0)})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Marks(ctx); !errors.Is(err, errMarkRecord) {
		t.Fatalf("Marks = %v, want a malformed record", err)
	}
}

// TestHostileLongClientIDDisabledRecord: the record of a disabled API client
// whose id is too long for a store key is kept under its hash and found by
// every reader: by id, in the map the engine reads (by lowercase id), and
// by the delete that forgets it.
func TestHostileLongClientIDDisabledRecord(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), newClock())
	defer func() { _ = s.Close() }()
	long := "Long-" + strings.Repeat("c", 40000-5)
	short := "0F1E2D3C-0000-4000-8000-000000000001"
	for _, id := range []string{long, short} {
		if err := s.PutDisabled(ctx, Disabled{ClientID: id, At: time.Unix(1, 0).UTC(), Policy: "p"}); err != nil {
			t.Fatalf("PutDisabled(%.40q): %.300v", id, err)
		}
	}
	all, err := s.DisabledClients(ctx)
	if err != nil || len(all) != 2 || all[strings.ToLower(long)].ClientID != long || all[strings.ToLower(short)].ClientID != short {
		t.Fatalf("DisabledClients: %d records, %v; want both by lowercase id", len(all), err)
	}
	if d, ok, err := s.DisabledClient(ctx, strings.ToUpper(long)); err != nil || !ok || d.ClientID != long {
		t.Fatalf("DisabledClient(long) = %.40q, %v, %v", d.ClientID, ok, err)
	}
	if ok, err := s.DeleteDisabled(ctx, long); err != nil || !ok {
		t.Fatalf("DeleteDisabled(long) = %v, %v", ok, err)
	}
	if _, ok, err := s.DisabledClient(ctx, long); err != nil || ok {
		t.Fatalf("the long client's record outlived its delete: %v, %v", ok, err)
	}
}

// TestLongTokenIDSnooze: a snooze of a token whose id is too long for a
// store key (an operator snoozing the hostile token a plan showed) is
// kept under its hash and found by every reader, as typed in any case.
func TestLongTokenIDSnooze(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), clk)
	defer func() { _ = s.Close() }()
	long := "Long-" + strings.Repeat("z", 40000-5)
	if _, err := s.PutSnooze(ctx, Snooze{TokenID: long, Until: clk.Now().Add(time.Hour), Reason: "r"}); err != nil {
		t.Fatalf("PutSnooze: %.300v", err)
	}
	if z, ok, err := s.ActiveSnooze(ctx, strings.ToUpper(long)); err != nil || !ok || z.TokenID != long {
		t.Fatalf("ActiveSnooze = %.40q, %v, %v", z.TokenID, ok, err)
	}
	all, err := s.ActiveSnoozes(ctx)
	if err != nil || len(all) != 1 || all[strings.ToLower(long)].TokenID != long {
		t.Fatalf("ActiveSnoozes: %d, %v; want the long one by its lowercase id", len(all), err)
	}
	if ok, err := s.DeleteSnooze(ctx, long); err != nil || !ok {
		t.Fatalf("DeleteSnooze = %v, %v", ok, err)
	}
}
