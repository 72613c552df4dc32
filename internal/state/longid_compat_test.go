package state

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestHostileLongIDRecordsOfTheEarlierStore: the previous version keyed
// marks, API client marks, snoozes and disabled-client records by the id
// itself whenever the key fit in bbolt (up to 32 KiB), so a state.db it
// wrote may hold such keys for ids of a few KiB. They must still be found:
// kept with their clocks, removed when their token leaves the listing,
// deleted when asked. Keyed anew under a hash, the old record could no
// longer be removed (the stale sweep deleted the hashed key, the new one,
// and left the old record): a token that stopped matching kept its old
// mark, warned clock and passed deadline, and was acted on without a new
// warning the day it matched again.
func TestHostileLongIDRecordsOfTheEarlierStore(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), clk)
	defer func() { _ = s.Close() }()

	// Lower case as the earlier keys were (the key lowered the id).
	long := "tok-" + strings.Repeat("x", 3000)
	client := "client-" + strings.Repeat("y", 3000)
	warned := clk.Now().Add(-20 * 24 * time.Hour)
	deadline := warned.Add(14 * 24 * time.Hour)
	grace := 14 * 24 * time.Hour
	mark := Mark{TokenID: long, OwnerID: "owner-1", Policy: "p", Action: "delete", Reason: "unused", Grace: grace,
		MarkedAt: warned, WarnedAt: &warned, Deadline: &deadline}
	cmark := ClientMark{ClientID: client, Policy: "c", Action: "disable", Reason: "unused", Grace: grace,
		MarkedAt: warned, WarnedAt: &warned, Deadline: &deadline}
	snooze := Snooze{TokenID: long, Until: clk.Now().Add(24 * time.Hour), Reason: "kept", CreatedAt: warned}
	disabled := Disabled{ClientID: client, At: warned, Policy: "c"}

	// The earlier version's keys: the id as pat.IDKey (strings.ToLower),
	// then NUL and the policy for the marks.
	err := s.update(ctx, func(tx *bolt.Tx) error {
		if err := marksOf(tx).put(long+"\x00p", mark); err != nil {
			return err
		}
		for name, kv := range map[string]struct {
			key string
			v   any
		}{
			bucketClientMarks: {client + "\x00c", cmark},
			bucketSnoozes:     {long, snooze},
			bucketDisabled:    {client, disabled},
		} {
			b, err := tx.CreateBucketIfNotExists([]byte(name))
			if err != nil {
				return err
			}
			raw, err := json.Marshal(kv.v)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(kv.key), raw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The token still matches: its mark is kept, clock and all.
	fresh := mark
	fresh.MarkedAt, fresh.WarnedAt, fresh.Deadline = time.Time{}, nil, nil
	ch, err := s.ReconcileMarks(ctx, []string{"p"}, []Mark{fresh})
	if err != nil || len(ch.Kept) != 1 || len(ch.New) != 0 || len(ch.Removed) != 0 {
		t.Fatalf("reconcile: %d new %d kept %d removed, %.200v; want the mark kept", len(ch.New), len(ch.Kept), len(ch.Removed), err)
	}
	if k := ch.Kept[0]; k.WarnedAt == nil || !k.WarnedAt.Equal(warned) {
		t.Errorf("kept with warning %v, want %v", k.WarnedAt, warned)
	}
	// It stops matching: the mark is gone, not left to act on later.
	if ch, err = s.ReconcileMarks(ctx, []string{"p"}, nil); err != nil || len(ch.Removed) != 1 {
		t.Fatalf("reconcile without the token: %d removed, %.200v; want 1", len(ch.Removed), err)
	}
	if ms, err := s.Marks(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("after the token left: %d marks (%.200v), want none", len(ms), err)
	}

	// The same for the API client's mark.
	cfresh := cmark
	cfresh.MarkedAt, cfresh.WarnedAt, cfresh.Deadline = time.Time{}, nil, nil
	cch, err := s.ReconcileClientMarks(ctx, []string{"c"}, []ClientMark{cfresh})
	if err != nil || len(cch.Kept) != 1 || len(cch.New) != 0 || len(cch.Removed) != 0 {
		t.Fatalf("reconcile client marks: %d new %d kept %d removed, %.200v; want the mark kept", len(cch.New), len(cch.Kept), len(cch.Removed), err)
	}
	if k := cch.Kept[0]; k.WarnedAt == nil || !k.WarnedAt.Equal(warned) {
		t.Errorf("client mark kept with warning %v, want %v", k.WarnedAt, warned)
	}
	if cch, err = s.ReconcileClientMarks(ctx, []string{"c"}, nil); err != nil || len(cch.Removed) != 1 {
		t.Fatalf("reconcile client marks without the client: %d removed, %.200v; want 1", len(cch.Removed), err)
	}
	if ms, err := s.ClientMarks(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("after the client left: %d client marks (%.200v), want none", len(ms), err)
	}

	// The snooze protects its token and can be ended.
	if _, ok, err := s.ActiveSnooze(ctx, long); err != nil || !ok {
		t.Fatalf("ActiveSnooze: found %v, %.200v; want the snooze", ok, err)
	}
	if existed, err := s.DeleteSnooze(ctx, long); err != nil || !existed {
		t.Fatalf("DeleteSnooze: existed %v, %.200v", existed, err)
	}
	if zs, err := s.Snoozes(ctx, true); err != nil || len(zs) != 0 {
		t.Fatalf("after DeleteSnooze: %d snoozes (%.200v), want none", len(zs), err)
	}

	// The disabled record is found and forgotten.
	if _, ok, err := s.DisabledClient(ctx, client); err != nil || !ok {
		t.Fatalf("DisabledClient: found %v, %.200v; want the record", ok, err)
	}
	if existed, err := s.DeleteDisabled(ctx, client); err != nil || !existed {
		t.Fatalf("DeleteDisabled: existed %v, %.200v", existed, err)
	}
	if ds, err := s.DisabledClients(ctx); err != nil || len(ds) != 0 {
		t.Fatalf("after DeleteDisabled: %d records (%.200v), want none", len(ds), err)
	}
}

// TestHostileLongTokenIDInMarkErrors: a mark's key names its token in the
// store's error texts (MarkKey.String), which reach the run's error, the
// log and the failures receivers. A listed id may be 64 KiB: the text
// carries the start of it, not all of it.
func TestHostileLongTokenIDInMarkErrors(t *testing.T) {
	long := "Long-" + strings.Repeat("x", 40000)
	s := KeyOf(long, "unused-90d").String()
	if len(s) > 300 || !strings.HasPrefix(s, "long-xxx") || !strings.HasSuffix(s, "/unused-90d") {
		t.Fatalf("MarkKey.String() of a 40,000-character id: %d bytes, %.100q…; want the id's start and the policy, clipped", len(s), s)
	}
	if got := KeyOf("2c9180835d2e5168015d32f890ca1581", "p").String(); got != "2c9180835d2e5168015d32f890ca1581/p" {
		t.Errorf("MarkKey.String() of a real id = %q, want it whole", got)
	}
	err := Mark{TokenID: long, Policy: "p", Action: "delete", Grace: -1}.validate()
	if err == nil || len(err.Error()) > 400 {
		t.Fatalf("validate: %d bytes: %.100v", len(fmt.Sprint(err)), err)
	}
}
