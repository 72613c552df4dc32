package janitor

import (
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/state"
)

// Wants picks, for a repair's catch-up over the whole journal, exactly the
// records that speak of a quarantined record: ids and plan hashes compared
// as the store keys them (without regard to case), tokens and API clients
// apart (their records are in buckets of their own).
func TestQuarantinedKeysWants(t *testing.T) {
	q := QuarantinedKeys{}
	for _, k := range []struct{ bucket, key string }{
		{state.BucketExecuted, "sha256:abc"},
		{state.BucketConfirmed, "tok-1"},
		{state.BucketConfirmedClients, "client-1"},
		{state.BucketSnoozes, "tok-2"},
	} {
		if !q.Add(k.bucket, []byte(k.key)) {
			t.Fatalf("Add(%s) = false, want a bucket the journal rebuilds", k.bucket)
		}
	}
	if q.Add(state.BucketMarks, []byte("tok-1\x00p")) || q.Add(state.BucketOutbox, []byte("m")) {
		t.Fatal("marks and the outbox are not rebuilt from the journal")
	}
	until := time.Now()
	for _, c := range []struct {
		r    audit.Record
		want bool
	}{
		{audit.Record{Kind: audit.KindRunStart, Plan: &audit.PlanRef{PlanHash: "SHA256:ABC"}}, true},
		{audit.Record{Kind: audit.KindRunStart, Plan: &audit.PlanRef{PlanHash: "sha256:other"}}, false},
		{audit.Record{Kind: audit.KindRunStart}, false},
		{audit.Record{Kind: audit.KindIntent, TokenID: "TOK-1"}, true},
		{audit.Record{Kind: audit.KindOutcome, TokenID: "tok-1"}, true},
		{audit.Record{Kind: audit.KindOutcome, TokenID: "tok-1", Resource: apiclient.Resource}, false},
		{audit.Record{Kind: audit.KindIntent, TokenID: "client-1", Resource: apiclient.Resource}, true},
		{audit.Record{Kind: audit.KindIntent, TokenID: "client-1"}, false},
		{audit.Record{Kind: audit.KindSnooze, TokenID: "Tok-2", Until: &until}, true},
		{audit.Record{Kind: audit.KindSnooze, TokenID: "tok-1", Until: &until}, false},
		{audit.Record{Kind: audit.KindRunEnd, TokenID: "tok-1"}, false},
	} {
		if got := q.Wants(c.r); got != c.want {
			t.Errorf("Wants(%s %s %q) = %v, want %v", c.r.Kind, c.r.Resource, c.r.TokenID, got, c.want)
		}
	}
}

// AddEvery picks every record of its bucket, and only of its bucket.
func TestQuarantinedKeysWantsEvery(t *testing.T) {
	var q QuarantinedKeys
	if !q.AddEvery(state.BucketExecuted) || !q.AddEvery(state.BucketSnoozes) || q.AddEvery(state.BucketMarks) {
		t.Fatal("AddEvery: want the executed plans and the snoozes taken, the marks refused")
	}
	until := time.Now()
	for _, c := range []struct {
		r    audit.Record
		want bool
	}{
		{audit.Record{Kind: audit.KindRunStart, Plan: &audit.PlanRef{PlanHash: "sha256:any"}}, true},
		{audit.Record{Kind: audit.KindRunStart}, false},
		{audit.Record{Kind: audit.KindSnooze, TokenID: "tok-9", Until: &until}, true},
		{audit.Record{Kind: audit.KindIntent, TokenID: "tok-9"}, false},
		{audit.Record{Kind: audit.KindOutcome, TokenID: "tok-9"}, false},
	} {
		if got := q.Wants(c.r); got != c.want {
			t.Errorf("Wants(%s %q) = %v, want %v", c.r.Kind, c.r.TokenID, got, c.want)
		}
	}
}
