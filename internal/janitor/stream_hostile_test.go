package janitor

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
)

// updateHostile rewrites testdata/stream-hostile-*.json (made with the engine
// before streaming, main at 757eebc).
var updateHostile = os.Getenv("PATJANITOR_UPDATE_STREAM_GOLDEN") != ""

// Listings a tenant should never send: the same token twice in one listing
// (also spelt in another case, with ids of the tenant's form and others), a
// token outside its listing's filter, the same token in both filtered
// listings (once the same, once changed between the calls). The streaming
// inventory finds each of them as the buffered one did, with the same
// problems in the same order, and keeps the first copy of each token: the
// plan documents are those of the engine before streaming, byte for byte.
func TestHostileStreamedListingsPlanAsBefore(t *testing.T) {
	day := 24 * time.Hour
	stale := now.Add(-200 * day)
	recent := now.Add(-5 * day)
	tok := func(id, owner string, lastUsed *time.Time) pat.Token {
		return pat.Token{ID: id, Name: "n-" + strings.ToLower(id), Owner: pat.Owner{Type: "IDENTITY", ID: owner, Name: "Owner " + owner},
			Created: now.Add(-400 * day), LastUsed: lastUsed, Scope: pat.ScopesOf("idn:sources:read"), Managed: false}
	}
	changed := tok("c0ffee00000000000000000000000005", "o2", nil)
	changed.Name = "renamed between the calls"
	le := []pat.Token{
		tok("a0000000000000000000000000000001", "o1", &stale),
		tok("a0000000000000000000000000000002", "o1", &stale),
		tok("a0000000000000000000000000000001", "o1", &stale), // twice
		tok("A00000000000000000000000000000Bc", "o2", &stale),
		tok("a00000000000000000000000000000bC", "o2", &stale), // twice, another case
		tok("svc-Token-1", "o3", &stale),
		tok("SVC-token-1", "o3", &stale),                   // twice, not hex
		tok("b0000000000000000000000000000003", "o3", nil), // never used: outside "lastUsed le"
		tok("c0ffee00000000000000000000000004", "o4", nil), // also in isnull: outside, and in both
		tok("c0ffee00000000000000000000000005", "o2", nil), // in both, changed
	}
	isnull := []pat.Token{
		tok("d0000000000000000000000000000001", "o1", nil),
		tok("c0ffee00000000000000000000000004", "o4", nil),
		changed,
		tok("d0000000000000000000000000000002", "o5", &recent), // used: outside "isnull"
		tok("d0000000000000000000000000000003", "o5", nil),
		tok("D0000000000000000000000000000003", "o5", nil), // twice, another case
	}
	for _, tc := range []struct {
		name   string
		config string
		tenant Tenant
	}{
		{"filtered", "limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 0}\npolicies: [{name: u, mode: enforce, match: {unusedFor: 90d}, action: delete}, {name: r, match: {unusedFor: 30d}, action: report}]\n",
			nil},
		{"unfiltered", "limits: {maxActionsPerRun: 0, maxActionsPercent: 50, maxActionsPerOwner: 0}\npolicies: [{name: u, mode: enforce, match: {unusedFor: 90d}, action: delete}, {name: r, match: {nameMatches: '^n-'}, action: report}]\n",
			&recordingTenant{tokens: append(append([]pat.Token{}, le...), isnull...)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, tc.config)
			ten := tc.tenant
			rec, _ := ten.(*recordingTenant)
			if ten == nil {
				bf := &byFilterTenant{byFilter: map[string][]pat.Token{}}
				for _, l := range cfg.Listings(now) {
					switch l.Kind {
					case pat.ListLastUsedBefore:
						bf.byFilter[api.Filter(l)] = le
					case pat.ListNeverUsed:
						bf.byFilter[api.Filter(l)] = isnull
					}
				}
				if len(bf.byFilter) != 2 {
					t.Fatalf("listings %+v, want le and isnull", cfg.Listings(now))
				}
				ten, rec = bf, &bf.recordingTenant
			}
			e, err := New(Options{Config: cfg, Tenant: ten, TenantURL: "https://acme.api.identitynow.com", ClientID: "me", Journal: &memJournal{},
				Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			pl, err := e.Plan(context.Background())
			if err == nil || pl == nil || pl.Err == nil {
				t.Fatalf("Plan: %v: want incomplete data", err)
			}
			p := *pl.Plan
			p.RunID = "hostile"
			if err := p.Seal(); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := plan.Write(&buf, &p); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "stream-hostile-"+tc.name+".json")
			if updateHostile {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("plan differs from %s:\n%s", golden, buf.String())
			}
			// Nothing is mutated on such a listing.
			if _, err := e.Execute(context.Background(), pl); err == nil {
				t.Fatal("Execute of an incomplete plan succeeded")
			}
			for _, c := range rec.calls {
				if !strings.HasPrefix(c, "list") {
					t.Fatalf("calls %v: a mutation on incomplete data", rec.calls)
				}
			}
		})
	}
}
