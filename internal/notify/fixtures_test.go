package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/fakeclock"
)

// t0 is the fixed "now" of every test.
var t0 = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)

func newClock() *fakeclock.Clock { return fakeclock.New(t0) }

// sleeper records requested sleeps and returns at once (or ctx's error), so
// backoff is checked without waiting on wall time.
type sleeper struct {
	mu     sync.Mutex
	sleeps []time.Duration
	clock  *fakeclock.Clock
}

func (s *sleeper) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.sleeps = append(s.sleeps, d)
	s.mu.Unlock()
	if s.clock != nil {
		s.clock.Advance(d)
	}
	return nil
}

func (s *sleeper) Sleeps() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.sleeps...)
}

const grace14d = Duration(14 * 24 * time.Hour)

func sampleSummary() Summary {
	items := []SummaryItem{
		{TokenID: "2c9180835d2e5168015d32f890ca1581", TokenName: "ci-deploy", OwnerID: "o-alice", OwnerName: "Alice Example", Policy: "full-access", Action: "patch", Outcome: OutcomeFailed, Reason: "scope sp:scopes:all is in [sp:scopes:all]"},
		{TokenID: "2c9180835d2e5168015d32f890ca1582", TokenName: "old-report", OwnerID: "o-alice", OwnerName: "Alice Example", Policy: "unused-90d", Action: "delete", Outcome: OutcomePending, Reason: "never used; created 2026-01-02T10:00:00.000Z is before cutoff 2026-08-28T03:00:00.000Z"},
		{TokenID: "2c9180835d2e5168015d32f890ca1583", TokenName: "<!channel> & friends", OwnerID: "o-bob", OwnerName: "Bob", Policy: "unused-90d", Action: "delete", Outcome: OutcomeApplied, Reason: "lastUsed 2026-05-01T10:00:00.000Z is before cutoff 2026-08-28T03:00:00.000Z (unusedFor 90d)"},
	}
	rows, top, more := Summarize(items, 2)
	return Summary{
		Tenant: "https://acme.api.identitynow.com", StartedAt: t0, FinishedAt: t0.Add(42 * time.Second), Population: 1234,
		Rows: rows, Top: top, More: more,
		Guardrails: []Guardrail{{Name: "maxActionsPerRun", Limit: 25, Wanted: 3}, {Name: "maxActionsPerOwner", Limit: 5, Wanted: 2}},
	}
}

func sampleDigest() Digest {
	warned := t0.Add(-24 * time.Hour).Add(14 * 24 * time.Hour)
	return Digest{
		Tenant:  "https://acme.api.identitynow.com",
		Owner:   Owner{ID: "o-alice", Name: "Alice Example", Email: "alice@acme.example"},
		Contact: "iam-team@acme.example",
		Items: []DigestItem{
			{TokenID: "2c9180835d2e5168015d32f890ca1582", TokenName: "old-report", Policy: "unused-90d", Action: "delete",
				Reason: "never used; created 2026-01-02T10:00:00.000Z is before cutoff 2026-08-28T03:00:00.000Z", MarkedAt: t0.Add(-24 * time.Hour), Grace: grace14d, Deadline: &warned},
			{TokenID: "2c9180835d2e5168015d32f890ca1584", TokenName: "nightly-sync", Policy: "unused-90d", Action: "delete",
				Reason: "lastUsed 2026-05-01T10:00:00.000Z is before cutoff 2026-08-28T03:00:00.000Z (unusedFor 90d)", MarkedAt: t0, Grace: grace14d},
		},
	}
}

func sampleNotice() Notice {
	return Notice{
		Tenant:  "https://acme.api.identitynow.com",
		Owner:   Owner{ID: "o-bob", Name: "Bob", Email: "iam-team@acme.example", Fallback: true},
		Contact: "iam-team@acme.example",
		Items: []NoticeItem{
			{TokenID: "2c9180835d2e5168015d32f890ca1583", TokenName: "legacy", Policy: "unused-90d", Action: "delete", Outcome: OutcomeApplied,
				Reason: "lastUsed 2026-05-01T10:00:00.000Z is before cutoff 2026-08-28T03:00:00.000Z (unusedFor 90d)", At: t0.Add(time.Minute)},
			{TokenID: "2c9180835d2e5168015d32f890ca1585", TokenName: "admin-script", Policy: "full-access", Action: "patch", Outcome: OutcomeApplied,
				Reason: "scope sp:scopes:all is in [sp:scopes:all]", Detail: "removed sp:scopes:all, added sp:scopes:default", At: t0.Add(2 * time.Minute)},
		},
	}
}

func sampleFailure() Failure {
	return Failure{
		Kind: FailureGuardrail, Tenant: "https://acme.api.identitynow.com", At: t0,
		Error:      "limits: maxActionsPerRun 25 < 40 wanted",
		Guardrails: []Guardrail{{Name: "maxActionsPerRun", Limit: 25, Wanted: 40, Tripped: true}},
	}
}

// sampleMessages returns one message of each kind for receiver.
func sampleMessages(receiver string) []*Message {
	return []*Message{
		SummaryMessage(receiver, "run-1", t0, sampleSummary()),
		DigestMessage(receiver, "run-1", t0, sampleDigest()),
		NoticeMessage(receiver, "run-1", t0, sampleNotice()),
		FailureMessage(receiver, "run-1", t0, sampleFailure()),
		TestMessage(receiver, t0),
	}
}

func newTestRenderer(t *testing.T, clk *fakeclock.Clock) *Renderer {
	t.Helper()
	r, err := NewRenderer(RenderOptions{Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkGolden compares got (JSON) with testdata/name semantically; with
// PATJANITOR_UPDATE_GOLDEN=1 it rewrites the file instead (review the diff).
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("PATJANITOR_UPDATE_GOLDEN") == "1" {
		var buf bytes.Buffer
		if err := json.Indent(&buf, got, "", "  "); err != nil {
			t.Fatal(err)
		}
		buf.WriteByte('\n')
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden %s: %v (run with PATJANITOR_UPDATE_GOLDEN=1 to create it)", path, err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("payload is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("golden %s is not JSON: %v", path, err)
	}
	if !reflect.DeepEqual(g, w) {
		var buf bytes.Buffer
		_ = json.Indent(&buf, got, "", "  ")
		t.Errorf("payload differs from %s; got:\n%s", path, buf.String())
	}
}
