package janitor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/fakeclock"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/state"
)

// catchUpFixture is a journal written by the code before the catch-up
// existed (go test -run TestCatchUpFromJournalBeforeIt -update rewrites it
// with the code of the day): a snooze, then an approved plan's run (a
// confirmed delete, expire and patch, a failed delete, an API client
// disable), a run whose listing found the delete and the patch not in
// effect, one that found the patch in effect, a refused apply, and a
// confirmed delete acknowledged since (`patjanitor acknowledge`).
const catchUpFixture = "testdata/journal-before-catchup.jsonl"

var (
	fixtureModified = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	fixtureExpires  = time.Date(2026, 12, 10, 3, 0, 0, 0, time.UTC)
)

const (
	fixturePlan    = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	fixtureRefused = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

func writeCatchUpFixture(t *testing.T, path string) {
	clk := fakeclock.New(t0)
	j, err := audit.Open(path, audit.Options{Clock: func() time.Time { clk.Advance(time.Second); return clk.Now() }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = j.Close() }()
	tok := func(id, owner string, scope ...string) *pat.Token {
		return &pat.Token{ID: id, Name: "tok-" + id, Owner: pat.Owner{Type: "IDENTITY", ID: owner, Name: "Owner " + owner},
			Created: t0.Add(-400 * day), Scope: pat.ScopesOf(scope...)}
	}
	enabled := true
	client := &apiclient.Client{ID: "c-1", Name: "ci", Enabled: &enabled, Created: t0.Add(-400 * day), Modified: &fixtureModified}
	until := t0.Add(30 * day)
	del := func(id string) *audit.Request {
		return &audit.Request{Method: http.MethodDelete, Path: api.TokenPath(pat.V3, id)}
	}
	plan := &audit.PlanRef{PlanHash: fixturePlan, File: "plan.json", Approvals: []audit.Approval{{Principal: "alice", Fingerprint: "SHA256:a"}}}
	recs := []audit.Record{
		{Kind: audit.KindSnooze, TokenID: "keep-1", Until: &until, Note: "kept (by ops)"},
		{Kind: audit.KindRunStart, RunID: "run-a", Plan: plan, Note: "4 actions"},
		{Kind: audit.KindIntent, RunID: "run-a", Policy: "stale", TokenID: "del-1", Before: tok("del-1", "o1", "idn:a"), Request: del("del-1")},
		{Kind: audit.KindIntent, RunID: "run-a", Policy: "expire", TokenID: "exp-1", Before: tok("exp-1", "o2", "idn:a"),
			Request: &audit.Request{Method: http.MethodPatch, Path: api.BulkPath, Patch: []pat.PatchOp{pat.SetExpiration(fixtureExpires)}}},
		{Kind: audit.KindOutcome, RunID: "run-a", Policy: "stale", TokenID: "del-1", Outcome: &audit.Outcome{Status: "applied", Code: 204}},
		{Kind: audit.KindOutcome, RunID: "run-a", Policy: "expire", TokenID: "exp-1", Outcome: &audit.Outcome{Status: "applied", Code: 200}},
		{Kind: audit.KindIntent, RunID: "run-a", Policy: "narrow", TokenID: "pat-1", Before: tok("pat-1", "o3", "idn:a", "idn:b"),
			Request: &audit.Request{Method: http.MethodPatch, Path: api.TokenPath(pat.V3, "pat-1"), Patch: []pat.PatchOp{pat.SetScopes([]string{"idn:a"})}}},
		{Kind: audit.KindOutcome, RunID: "run-a", Policy: "narrow", TokenID: "pat-1", Outcome: &audit.Outcome{Status: "applied", Code: 200}},
		{Kind: audit.KindIntent, RunID: "run-a", Policy: "stale", TokenID: "fail-1", Before: tok("fail-1", "o1"), Request: del("fail-1")},
		{Kind: audit.KindOutcome, RunID: "run-a", Policy: "stale", TokenID: "fail-1", Outcome: &audit.Outcome{Status: "failed", Code: 500, Error: "HTTP 500"}},
		{Kind: audit.KindRunEnd, RunID: "run-a", Note: "applied 3, failed 1"},
		{Kind: audit.KindRunStart, RunID: "run-a", Resource: apiclient.Resource, Plan: plan, Note: "1 API client actions"},
		{Kind: audit.KindIntent, RunID: "run-a", Resource: apiclient.Resource, Policy: "idle-clients", TokenID: "c-1", Client: client,
			Request: &audit.Request{Method: http.MethodPatch, Path: api.OAuthClientPath("c-1"), Patch: api.EnabledPatch(false)}},
		{Kind: audit.KindOutcome, RunID: "run-a", Resource: apiclient.Resource, Policy: "idle-clients", TokenID: "c-1", Outcome: &audit.Outcome{Status: "applied", Code: 200}},
		{Kind: audit.KindRunEnd, RunID: "run-a", Resource: apiclient.Resource, Note: "applied 1"},
		{Kind: audit.KindRunStart, RunID: "run-b", Note: "0 actions"},
		{Kind: audit.KindOutcome, RunID: "run-b", Policy: "stale", TokenID: "del-1", Before: tok("del-1", "o1", "idn:a"),
			Outcome: &audit.Outcome{Status: janitor.StatusNotInEffect, Code: 204, Error: "the delete did not happen"}},
		{Kind: audit.KindOutcome, RunID: "run-b", Policy: "narrow", TokenID: "pat-1", Before: tok("pat-1", "o3", "idn:a", "idn:b"),
			Outcome: &audit.Outcome{Status: janitor.StatusNotInEffect, Code: 200, Error: "the patch did not happen"}},
		{Kind: audit.KindRunEnd, RunID: "run-b", Note: "acted on nothing"},
		{Kind: audit.KindRunStart, RunID: "run-c", Note: "0 actions"},
		{Kind: audit.KindOutcome, RunID: "run-c", Policy: "narrow", TokenID: "pat-1", Outcome: &audit.Outcome{Status: janitor.StatusInEffect, Code: 200}},
		{Kind: audit.KindRunEnd, RunID: "run-c", Note: "acted on nothing"},
		{Kind: audit.KindRunStart, RunID: "run-d", Plan: &audit.PlanRef{PlanHash: fixtureRefused, Refused: "1 approval, 2 required"}, Note: "refused"},
		{Kind: audit.KindRunEnd, RunID: "run-d", Note: "refused"},
		{Kind: audit.KindRunStart, RunID: "run-e", Note: "1 actions"},
		{Kind: audit.KindIntent, RunID: "run-e", Policy: "stale", TokenID: "ack-1", Before: tok("ack-1", "o4"), Request: del("ack-1")},
		{Kind: audit.KindOutcome, RunID: "run-e", Policy: "stale", TokenID: "ack-1", Outcome: &audit.Outcome{Status: "applied", Code: 204}},
		{Kind: audit.KindOutcome, RunID: "run-e", Policy: "stale", TokenID: "del-2", Before: tok("del-2", "o4"),
			Outcome: &audit.Outcome{Status: janitor.StatusNotInEffect, Code: 204, Error: "the delete did not happen"}},
		{Kind: audit.KindRunEnd, RunID: "run-e", Note: "applied 1"},
		{Kind: audit.KindOutcome, RunID: "run-f", Policy: "stale", TokenID: "ack-1", Outcome: &audit.Outcome{Status: janitor.StatusAcknowledged, Code: 204}, Note: "kept (by ops)"},
	}
	for _, r := range recs {
		if _, err := j.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
}

// fixtureLine is one record of the fixture: its seq, hash and where its
// line starts and ends.
type fixtureLine struct {
	seq        int64
	hash       string
	start, end int64
}

func fixtureLines(t *testing.T, data []byte) []fixtureLine {
	t.Helper()
	var out []fixtureLine
	off := int64(0)
	for line := range bytes.Lines(data) {
		var h struct {
			Seq  int64  `json:"seq"`
			Hash string `json:"hash"`
		}
		if err := json.Unmarshal(line, &h); err != nil {
			t.Fatal(err)
		}
		out = append(out, fixtureLine{h.Seq, h.Hash, off, off + int64(len(line))})
		off += int64(len(line))
	}
	return out
}

func anchorAt(l fixtureLine, open ...fixtureLine) audit.Anchor {
	a := audit.Anchor{Seq: l.seq, Hash: l.hash, Offset: l.end}
	for _, o := range open {
		a.Open = append(a.Open, audit.Position{Seq: o.seq, Hash: o.hash, Offset: o.start})
	}
	return a
}

func storeWithAnchor(t *testing.T, a audit.Anchor) *state.Store {
	t.Helper()
	st, err := state.Open(filepath.Join(t.TempDir(), state.FileName), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.PutJournalAnchor(context.Background(), "journal.jsonl", a); err != nil {
		t.Fatal(err)
	}
	return st
}

func confirmedByID(t *testing.T, read func(context.Context) ([]state.Confirmed, error)) map[string]state.Confirmed {
	t.Helper()
	cs, err := read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]state.Confirmed{}
	for _, c := range cs {
		out[c.TokenID] = c
	}
	return out
}

// A journal written before the catch-up existed still verifies, opens
// unchanged byte for byte, and is read by the catch-up: a store anchored at
// its first record (restored from a backup then; the file copied since, so
// Open verifies the whole chain) gets back the executed plan (not the
// refused one), the confirmed delete found not in effect since, the
// confirmed expire with what it sent and what the token showed, the API
// client disable, and not the patch proven since, the failed delete, the
// delete acknowledged since, nor a not-in-effect of a record it never had. The
// same through Attach (serve, whose per-run store was swapped), and from an
// anchor that lists an intent as open whose outcome follows it.
func TestCatchUpFromJournalBeforeIt(t *testing.T) {
	if *update {
		_ = os.Remove(catchUpFixture)
		writeCatchUpFixture(t, catchUpFixture)
	}
	data, err := os.ReadFile(catchUpFixture)
	if err != nil {
		t.Fatal(err)
	}
	lines := fixtureLines(t, data)
	if sum, err := audit.Verify(bytes.NewReader(data)); err != nil || sum.LastSeq != 30 {
		t.Fatalf("the old journal: %+v, %v; want 30 records verified", sum, err)
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	check := func(t *testing.T, st *state.Store) {
		t.Helper()
		// The journal names two plans: the one run-a executed is recorded,
		// the one run-d refused is not.
		p, found, err := st.ExecutedPlan(ctx, fixturePlan)
		if err != nil || !found || p.PlanHash != fixturePlan || p.RunID != "run-a" || p.File != "plan.json" {
			t.Errorf("executed plan %+v, %v, %v; want %s by run-a", p, found, err, fixturePlan)
		}
		if p, found, err := st.ExecutedPlan(ctx, fixtureRefused); err != nil || found {
			t.Errorf("refused plan recorded as executed: %+v, %v; want %s by run-a alone", p, err, fixturePlan)
		}
		tokens := confirmedByID(t, st.ConfirmedMutations)
		if len(tokens) != 2 {
			t.Errorf("confirmed token changes %+v; want del-1 and exp-1 (not pat-1, proven; fail-1, failed; ack-1, acknowledged; del-2, unknown)", tokens)
		}
		d := tokens["del-1"]
		if d.RunID != "run-a" || d.Action != "delete" || d.Code != 204 || d.OwnerID != "o1" || d.Policy != "stale" ||
			!d.Unproven() || d.Checks != 1 || d.LastRun != "run-b" || !d.At.Equal(t0.Add(15*time.Second)) || !d.StillListed.Equal(t0.Add(19*time.Second)) {
			// The times of run-a's and run-b's last records (a client
			// run-end, a run-end): each run wrote its records at its end.
			t.Errorf("del-1 %+v; want run-a's delete found not in effect by run-b", d)
		}
		x := tokens["exp-1"]
		if x.Action != "expire" || x.Code != 200 || !slices.Equal(x.Patch, []pat.PatchOp{pat.SetExpiration(fixtureExpires)}) ||
			x.Before == nil || x.Before.ExpirationDate != nil || x.Unproven() {
			t.Errorf("exp-1 %+v; want run-a's expire with the date sent and no date before", x)
		}
		clients := confirmedByID(t, st.ConfirmedClientMutations)
		c := clients["c-1"]
		if len(clients) != 1 || c.Action != "disable" || c.Resource != apiclient.Resource || c.Before == nil || !c.Before.Modified.Equal(fixtureModified) {
			t.Errorf("confirmed client changes %+v; want c-1's disable with its modified time", clients)
		}
	}

	t.Run("open", func(t *testing.T) {
		st := storeWithAnchor(t, anchorAt(lines[0]))
		j, err := audit.Open(path, audit.Options{Anchors: st.AnchorOf("journal.jsonl"), Tail: janitor.NewCatchUp(st, nil)})
		if err != nil {
			t.Fatal(err)
		}
		_ = j.Close()
		check(t, st)
		if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
			t.Error("opening changed the journal")
		}
		// The anchor is at the end now: the next open hands nothing.
		a, _, _ := st.JournalAnchor(ctx, "journal.jsonl")
		if a.Seq != 30 {
			t.Errorf("anchor %+v after the catch-up; want seq 30", a)
		}
	})
	t.Run("attach", func(t *testing.T) {
		held := storeWithAnchor(t, anchorAt(lines[len(lines)-1]))
		j, err := audit.Open(path, audit.Options{Anchors: held.AnchorOf("journal.jsonl")})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = j.Close() }()
		st := storeWithAnchor(t, anchorAt(lines[0]))
		if err := j.Attach(ctx, st.AnchorOf("journal.jsonl"), janitor.NewCatchUp(st, nil)); err != nil {
			t.Fatal(err)
		}
		j.Detach()
		check(t, st)
	})
	t.Run("open intent at the anchor", func(t *testing.T) {
		// Anchored after del-1's outcome (seq 5) with exp-1's intent (seq
		// 4) open: the store holds del-1's record, not exp-1's.
		st := storeWithAnchor(t, anchorAt(lines[4], lines[3]))
		j, err := audit.Open(path, audit.Options{Anchors: st.AnchorOf("journal.jsonl"), Tail: janitor.NewCatchUp(st, nil)})
		if err != nil {
			t.Fatal(err)
		}
		_ = j.Close()
		tokens := confirmedByID(t, st.ConfirmedMutations)
		if _, ok := tokens["exp-1"]; !ok || len(tokens) != 1 {
			t.Errorf("confirmed %+v; want exp-1's expire, whose intent the anchor lists as open (del-1's outcome is before the anchor)", tokens)
		}
	})
}
