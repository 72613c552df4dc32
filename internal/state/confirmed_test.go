package state

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// The records of confirmed mutations round-trip, are replaced per token
// (ids compared without regard to case), dropped by id, and a token id too
// long for a key is stored under its hash with the id kept in the value.
func TestConfirmedMutationsRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), newClock())
	defer func() { _ = s.Close() }()
	if cs, err := s.ConfirmedMutations(ctx); err != nil || len(cs) != 0 {
		t.Fatalf("a new store: %v, %v", cs, err)
	}
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	long := strings.Repeat("a", 40<<10)
	put := []Confirmed{
		{TokenID: "Tok-A", OwnerID: "o1", Policy: "p", Action: "delete", RunID: "r1", Code: 204, At: at},
		{TokenID: "tok-b", Policy: "p", Action: "patch", Patch: []pat.PatchOp{pat.SetScopes([]string{"sp:scopes:default"})}, RunID: "r1", Code: 200, At: at.Add(time.Second)},
		{TokenID: long, Policy: "p", Action: "delete", RunID: "r1", Code: 204, At: at.Add(2 * time.Second)},
	}
	if n, err := s.UpdateConfirmed(ctx, put, nil); err != nil || n != 0 {
		t.Fatalf("UpdateConfirmed: %d, %v", n, err)
	}
	cs, err := s.ConfirmedMutations(ctx)
	if err != nil || len(cs) != 3 {
		t.Fatalf("read back %d records, %v", len(cs), err)
	}
	if cs[0].TokenID != "Tok-A" || cs[1].Patch[0] != put[1].Patch[0] || cs[2].TokenID != long {
		t.Fatalf("read back %+v", cs[:2])
	}
	// The same token in another case replaces its record; drop removes one.
	seen := at.Add(time.Hour)
	if _, err := s.UpdateConfirmed(ctx, []Confirmed{{TokenID: "TOK-A", Policy: "p", Action: "delete", RunID: "r2", At: seen, StillListed: &seen, Checks: 1}}, []string{long}); err != nil {
		t.Fatal(err)
	}
	cs, _ = s.ConfirmedMutations(ctx)
	if len(cs) != 2 || cs[1].RunID != "r2" || !cs[1].Unproven() {
		t.Fatalf("after replace and drop: %+v", cs)
	}
	if _, err := s.UpdateConfirmed(ctx, []Confirmed{{TokenID: "x"}}, nil); err == nil {
		t.Error("a record without a time was written")
	}
}

// The store keeps at most MaxConfirmed records: the oldest never found
// still listed go first, those found still listed stay (they are what the
// operators must hear about).
func TestConfirmedMutationsBounded(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), newClock())
	defer func() { _ = s.Close() }()
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	flagged := Confirmed{TokenID: "flagged", Action: "delete", RunID: "r0", At: at.Add(-time.Hour)}
	flagged.StillListed = &at
	put := []Confirmed{flagged}
	for i := range MaxConfirmed {
		put = append(put, Confirmed{TokenID: fmt.Sprintf("t%05d", i), Action: "delete", RunID: "r1", At: at.Add(time.Duration(i) * time.Second)})
	}
	n, err := s.UpdateConfirmed(ctx, put, nil)
	if err != nil || n != 1 {
		t.Fatalf("UpdateConfirmed: evicted %d, %v; want 1", n, err)
	}
	cs, _ := s.ConfirmedMutations(ctx)
	if len(cs) != MaxConfirmed || cs[0].TokenID != "flagged" || cs[1].TokenID != "t00001" {
		t.Fatalf("%d records, first %s, %s; want %d, the flagged one kept and t00000 evicted", len(cs), cs[0].TokenID, cs[1].TokenID, MaxConfirmed)
	}
}

// BenchmarkConfirmedMutations is the store read every Plan makes: a store
// without records (the usual case: every record is proven by the next run),
// one run's worth, and the bound.
func BenchmarkConfirmedMutations(b *testing.B) {
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	for _, n := range []int{0, 25, MaxConfirmed} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(filepath.Join(b.TempDir(), FileName), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = s.Close() }()
			var put []Confirmed
			for i := range n {
				put = append(put, Confirmed{TokenID: fmt.Sprintf("%032x", i), OwnerID: fmt.Sprintf("%032x", i/5), Policy: "unused-90d", Action: "delete", RunID: "20261126T030000Z-0a1b2c3d", Code: 204, At: at})
			}
			if _, err := s.UpdateConfirmed(ctx, put, nil); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if cs, err := s.ConfirmedMutations(ctx); err != nil || len(cs) != n {
					b.Fatal(len(cs), err)
				}
			}
		})
	}
}

// The API client records are a key space of their own: a client and a
// token with the same id keep a record each, a drop of one leaves the
// other, and the client records read back with Resource apiClients.
func TestConfirmedClientMutationsSeparateFromTokens(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), newClock())
	defer func() { _ = s.Close() }()
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	mod := at.Add(-time.Hour)
	if _, err := s.UpdateConfirmed(ctx, []Confirmed{{TokenID: "same-id", Policy: "p", Action: "delete", RunID: "r1", Code: 204, At: at}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateConfirmedClients(ctx, []Confirmed{{TokenID: "SAME-ID", Policy: "c", Action: "disable", RunID: "r1", Code: 200, At: at, Before: &Shown{Modified: &mod}}}, nil); err != nil {
		t.Fatal(err)
	}
	toks, err := s.ConfirmedMutations(ctx)
	if err != nil || len(toks) != 1 || toks[0].Action != "delete" || toks[0].Resource != "" {
		t.Fatalf("token records %+v, %v", toks, err)
	}
	cls, err := s.ConfirmedClientMutations(ctx)
	if err != nil || len(cls) != 1 || cls[0].Action != "disable" || cls[0].Resource != "apiClients" || !cls[0].Before.Modified.Equal(mod) {
		t.Fatalf("client records %+v, %v", cls, err)
	}
	if _, err := s.UpdateConfirmed(ctx, nil, []string{"same-id"}); err != nil {
		t.Fatal(err)
	}
	if cls, _ := s.ConfirmedClientMutations(ctx); len(cls) != 1 {
		t.Fatalf("dropping the token's record dropped the client's: %+v", cls)
	}
	if _, err := s.UpdateConfirmedClients(ctx, nil, []string{"same-id"}); err != nil {
		t.Fatal(err)
	}
	if cls, _ := s.ConfirmedClientMutations(ctx); len(cls) != 0 {
		t.Fatalf("client records after the drop %+v", cls)
	}
}

// PendingAcks finds exactly the records an acknowledgement waits on, in
// both buckets (each with its Resource), whatever else they hold: a
// record without one (flagged or not), an acknowledged record, one whose
// reason or id spells the ack key inside a string, and a damaged record
// that holds no ack key, which is passed over as it is not decoded. A
// damaged record that holds the key passes over its bucket only.
func TestPendingAcksFindsOnlyAcknowledgedRecords(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), newClock())
	defer func() { _ = s.Close() }()
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	seen := at.Add(time.Hour)
	ack := &Ack{Reason: `kept "ack":{} on purpose`, By: "ops", At: seen.Add(time.Hour)}
	toks := []Confirmed{
		{TokenID: "plain", Policy: "p", Action: "delete", RunID: "r1", Code: 204, At: at},
		{TokenID: "flagged", Policy: "p", Action: "delete", RunID: "r1", Code: 204, At: at, StillListed: &seen},
		{TokenID: `"ack":`, Policy: `"ack":{}`, Action: "delete", RunID: "r1", Code: 204, At: at, StillListed: &seen},
		{TokenID: "acked", Policy: "p", Action: "delete", RunID: "r1", Code: 204, At: at.Add(time.Second), StillListed: &seen, Ack: ack},
	}
	if _, err := s.UpdateConfirmed(ctx, toks, nil); err != nil {
		t.Fatal(err)
	}
	clients := []Confirmed{{TokenID: "client-1", Policy: "p", Action: "disable", RunID: "r1", Code: 200, At: at, StillListed: &seen, Ack: ack}}
	if _, err := s.UpdateConfirmedClients(ctx, clients, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketConfirmed)).Put([]byte("damaged"), []byte("{damaged"))
	}); err != nil {
		t.Fatal(err)
	}
	acks, errs := s.PendingAcks(ctx)
	if errs != nil || len(acks) != 2 || acks[0].TokenID != "acked" || acks[0].Resource != "" || acks[0].Ack.Reason != ack.Reason ||
		acks[1].TokenID != "client-1" || acks[1].Resource != "apiClients" {
		t.Fatalf("PendingAcks = %+v, %v; want the token acked and client-1", acks, errs)
	}
	if err := s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketConfirmed)).Put([]byte("damaged"), []byte(`{"ack":`))
	}); err != nil {
		t.Fatal(err)
	}
	acks, errs = s.PendingAcks(ctx)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `"damaged"`) || len(acks) != 1 || acks[0].TokenID != "client-1" {
		t.Fatalf("PendingAcks with a damaged acknowledged record = %+v, %v; want client-1 and the damage named", acks, errs)
	}
}
