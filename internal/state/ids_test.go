package state

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

const (
	upperID = "AB12CD34EF56AB12CD34EF56AB12CD34"
	lowerID = "ab12cd34ef56ab12cd34ef56ab12cd34"
)

// A snooze and a mark are found however the token id is spelled: the tenant
// takes ids in any case.
func TestIDsComparedWithoutCase(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), clk)
	defer func() { _ = s.Close() }()

	if _, err := s.PutSnooze(ctx, Snooze{TokenID: upperID, Until: clk.Now().Add(time.Hour), Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.ActiveSnooze(ctx, lowerID); err != nil || !ok {
		t.Fatalf("ActiveSnooze(lower) after snoozing upper: %v %v", ok, err)
	}
	zs, _ := s.ActiveSnoozes(ctx)
	if z, ok := zs[lowerID]; !ok || z.TokenID != upperID {
		t.Fatalf("ActiveSnoozes = %v: want the snooze by its lowercase key, with the id as given", zs)
	}
	// A second snooze in another case replaces the first: one per token.
	if _, err := s.PutSnooze(ctx, Snooze{TokenID: lowerID, Until: clk.Now().Add(2 * time.Hour), Reason: "r2"}); err != nil {
		t.Fatal(err)
	}
	if all, _ := s.Snoozes(ctx, true); len(all) != 1 || all[0].Reason != "r2" {
		t.Fatalf("snoozes = %+v, want one", all)
	}
	if ok, err := s.DeleteSnooze(ctx, upperID); err != nil || !ok {
		t.Fatalf("DeleteSnooze(upper) = %v, %v", ok, err)
	}

	if _, err := s.testPutMark(ctx, Mark{TokenID: upperID, OwnerID: "o", Policy: "p", Action: "delete", Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.testGetMark(ctx, MarkKey{TokenID: lowerID, Policy: "p"}); !ok {
		t.Fatal("GetMark(lower) did not find the mark put as upper")
	}
	if started, _ := s.testWarn(ctx, []MarkKey{{TokenID: lowerID, Policy: "p"}}, clk.Now()); len(started) != 1 {
		t.Fatalf("WarnMarks(lower) started %d clocks", len(started))
	}
	if KeyOf(upperID, "p") != (Mark{TokenID: lowerID, Policy: "p"}).Key() {
		t.Fatal("KeyOf differs by case")
	}
}

// A schema-1 store holds keys as spelled; the migration to 2 lowers them,
// merging entries of one token into the one that protects more, and a
// read-only open reads the old store correctly without migrating it.
func TestMigrationLowersIDKeys(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	path := filepath.Join(t.TempDir(), FileName)
	s, err := openWith(path, Options{Clock: clk.Now}, migrations()[:1])
	if err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	warned, deadline := now.Add(-time.Hour), now.Add(10*24*time.Hour)
	put := func(b, k string, v any) {
		raw, _ := json.Marshal(v)
		if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(b)).Put([]byte(k), raw) }); err != nil {
			t.Fatal(err)
		}
	}
	// Two snoozes of one token: the longer one stays.
	put(bucketSnoozes, upperID, Snooze{TokenID: upperID, Until: now.Add(48 * time.Hour), Reason: "long", CreatedAt: now})
	put(bucketSnoozes, lowerID, Snooze{TokenID: lowerID, Until: now.Add(time.Hour), Reason: "short", CreatedAt: now})
	// Two marks of one token and policy: the warned one stays.
	put(bucketMarks, upperID+"\x00p", Mark{TokenID: upperID, OwnerID: "o", Policy: "p", Action: "delete", MarkedAt: now, WarnedAt: &warned, Deadline: &deadline})
	put(bucketMarks, lowerID+"\x00p", Mark{TokenID: lowerID, OwnerID: "o", Policy: "p", Action: "delete", MarkedAt: now.Add(-time.Hour)})
	put(bucketMarks, upperID+"\x00Other-Policy", Mark{TokenID: upperID, OwnerID: "o", Policy: "Other-Policy", Action: "delete", MarkedAt: now})
	put(bucketDeliveries, "OWNER1", Delivery{OwnerID: "OWNER1", SentAt: now})
	_ = s.Close()

	ro, err := Open(path, Options{Clock: clk.Now, ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open of a schema-1 store: %v", err)
	}
	zs, err := ro.ActiveSnoozes(ctx)
	if _, ok := zs[lowerID]; !ok || err != nil {
		t.Fatalf("read-only ActiveSnoozes of schema 1 = %v, %v", zs, err)
	}
	_ = ro.Close()

	s = openTest(t, path, clk)
	defer func() { _ = s.Close() }()
	if v, _ := s.testSchema(ctx); v != SchemaVersion {
		t.Fatalf("schema %d", v)
	}
	all, _ := s.Snoozes(ctx, true)
	if len(all) != 1 || all[0].Reason != "long" {
		t.Fatalf("snoozes after migration = %+v, want the longer one only", all)
	}
	ms, _ := s.Marks(ctx)
	var keys []string
	for _, m := range ms {
		keys = append(keys, m.Key().String())
	}
	if !slices.Equal(keys, []string{lowerID + "/Other-Policy", lowerID + "/p"}) {
		t.Fatalf("marks after migration: %v", keys)
	}
	if m, ok, _ := s.testGetMark(ctx, KeyOf(lowerID, "p")); !ok || m.WarnedAt == nil || !m.Deadline.Equal(deadline) {
		t.Fatalf("merged mark = %+v, want the warned one", m)
	}
	if _, ok, _ := s.testLastDelivery(ctx, "owner1"); !ok {
		t.Fatal("delivery not found by lowercase owner id")
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		for _, b := range []string{bucketSnoozes, bucketMarks, bucketDeliveries} {
			_ = tx.Bucket([]byte(b)).ForEach(func(k, _ []byte) error {
				if string(k) != string(markKeyLower(k)) && string(k) != string(lower(k)) {
					t.Errorf("%s key %q not lowered", b, k)
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
