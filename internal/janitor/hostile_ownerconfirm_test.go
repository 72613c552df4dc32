package janitor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/metrics"
)

// shortPages answers public-identities requests through the simulated
// tenant and cuts the answers cut says to cut (n counts them from 1) to
// their first keep identities, keeping the JSON valid: what a tenant whose
// real page size is keep, or a proxy that truncates bodies at an identity
// boundary, answers. It is an intercept for env.behind.
func shortPages(sim http.Handler, keep int, cut func(n int) bool) func(w http.ResponseWriter, r *http.Request) bool {
	var mu sync.Mutex
	n := 0
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || r.URL.Path != "/v3/public-identities" {
			return false
		}
		mu.Lock()
		n++
		cutThis := cut(n)
		mu.Unlock()
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var page []json.RawMessage
		if cutThis && rec.Code == http.StatusOK && json.Unmarshal(body, &page) == nil && len(page) > keep {
			body, _ = json.Marshal(page[:keep])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
		return true
	}
}

// identityLookups are the public-identities requests the tenant received,
// as the id filter of each.
func (e *env) identityLookups() []string {
	var out []string
	for _, r := range e.sim.Requests() {
		if r.Operation == idnsim.OpListPublicIdentities {
			out = append(out, r.Query.Get("filters"))
		}
	}
	return out
}

// tenOwnersAndOneGone: owner-00 … owner-09 exist (their ids sort after
// patjanitor's own, 32 hex digits, so a cut answer still holds it), each
// with a token; gone is a deleted user whose token is still listed.
func tenOwnersAndOneGone(e *env) {
	for i := range 10 {
		id := fmt.Sprintf("owner-%02d", i)
		e.sim.AddIdentity(idnsim.Identity{ID: id, Name: "Owner " + id, Email: id + "@example.com", IdentityState: "ACTIVE"})
		e.add("tok-"+id, id, "build", 10*day, 1*day)
	}
	e.add("tok-gone", "gone", "left", 10*day, 1*day)
}

func ownerLookupMetrics(found, missing, failed int) string {
	return fmt.Sprintf(`
# HELP patjanitor_owner_lookups_total Owner identity lookups by outcome: found, missing, error.
# TYPE patjanitor_owner_lookups_total counter
patjanitor_owner_lookups_total{outcome="error"} %d
patjanitor_owner_lookups_total{outcome="found"} %d
patjanitor_owner_lookups_total{outcome="missing"} %d
`, failed, found, missing)
}

// An identity directory that answers a batch with a short page (the first 4
// of the 11 identities asked for that exist: patjanitor's own, owner-00 …
// owner-02) made the 7 owners past the cut
// "missing": an enforce ownerMissing policy deleted the tokens of owners who
// exist. The client takes a page shorter than the 250 it asks for as the
// last one, and cannot tell a tenant that knows no more of the ids from a
// tenant whose real page size is smaller, a proxy that truncates bodies, or
// a search index that answers in part. The ids left out are looked up again
// by themselves before any owner is taken for missing; a second answer that
// returns some of them shows the first was incomplete, and the whole lookup
// fails: nothing is deleted, not even the deleted user's token (the answers
// are not to be trusted this run), and the warning says how many owners the
// first answer left out.
func TestHostileIdentityDirectoryAnswersAShortPage(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(n int) bool
		// back is how many of the 8 ids left out the second answer holds,
		// named the first three of them as the warning names them.
		back  int
		named string
	}{
		// A lagging index or a proxy's hiccup: the second answer is whole.
		{"first answer cut", func(n int) bool { return n == 1 }, 7, "owner-03, owner-04, owner-05 and 4 more"},
		// A tenant whose real page size is 4: every answer is cut (the
		// second holds patjanitor's own identity, asked for again, and 3).
		{"every answer cut", func(int) bool { return true }, 3, "owner-03, owner-04, owner-05"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, ownerMissingDelete, envOpts{})
			tenOwnersAndOneGone(e)
			e.behind(false, shortPages(e.sim, 4, tc.cut))
			reg := prometheus.NewRegistry()
			res, err := e.engine(func(o *janitor.Options) { o.Metrics = metrics.New(reg) }).Run(context.Background(), janitor.RunInput{})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if del := deletedIDs(e.mutations()); len(del) != 0 {
				t.Fatalf("the tenant received DELETEs of %v; want none (owner-03 … owner-09 exist, and the lookup was incomplete)", del)
			}
			e.requireNoMutations()
			if res.Count(janitor.OutcomeApplied) != 0 || res.Plan.Items.Len() != 0 {
				t.Fatalf("%d applied, %d planned; want no item", res.Count(janitor.OutcomeApplied), res.Plan.Items.Len())
			}
			e.requireNoIntents()
			// The batch, then the 8 ids it left out (owner-03 … owner-09 and
			// gone) with patjanitor's own identity.
			lookups := e.identityLookups()
			if len(lookups) != 2 || strings.Contains(lookups[1], `"owner-02"`) || !strings.Contains(lookups[1], `"owner-03"`) ||
				!strings.Contains(lookups[1], `"gone"`) || !strings.Contains(lookups[1], `"`+e.own()+`"`) || strings.Count(lookups[1], `"`) != 2*9 {
				t.Fatalf("identity lookups %q; want the batch, then the 8 ids it left out and patjanitor's own", lookups)
			}
			logs := e.logs.String()
			if !strings.Contains(logs, "owner lookup failed") ||
				!strings.Contains(logs, fmt.Sprintf("the first answer left out 8 of the 12 owners asked for, and a second lookup of those 8 returned %d of them (%s)", tc.back, tc.named)) {
				t.Errorf("the log does not say the first answer left out owners that exist:\n%s", logs)
			}
			if err := testutil.GatherAndCompare(reg, strings.NewReader(ownerLookupMetrics(0, 0, 12)), "patjanitor_owner_lookups_total"); err != nil {
				t.Error(err)
			}
		})
	}

	// The warning names the owners the second answer returned as the tenant
	// lists them: the start of a long id, not all of it.
	t.Run("long owner id", func(t *testing.T) {
		e := newEnv(t, ownerMissingDelete, envOpts{})
		tenOwnersAndOneGone(e)
		long := "owner-02" + strings.Repeat("z", 2000) // sorts right after owner-02
		e.sim.AddIdentity(idnsim.Identity{ID: long, Name: "Long", IdentityState: "ACTIVE"})
		e.add("tok-long", long, "build", 10*day, 1*day)
		e.behind(false, shortPages(e.sim, 4, func(n int) bool { return n == 1 }))
		if _, err := e.engine().Run(context.Background(), janitor.RunInput{}); err != nil {
			t.Fatalf("Run: %v", err)
		}
		e.requireNoMutations()
		logs := e.logs.String()
		if !strings.Contains(logs, "returned 8 of them (owner-02zzz") {
			t.Errorf("the warning does not name the long id first:\n%.3000s", logs)
		}
		if strings.Contains(logs, strings.Repeat("z", 200)) {
			t.Errorf("the log carries the 2,008-character id whole (%d bytes of log)", len(logs))
		}
	})

	// An honest directory: the deleted user is not in the second answer
	// either, so its token is deleted, and no other. The confirmation is one
	// request more (patjanitor's own identity is asked for again in it).
	t.Run("honest, one owner deleted", func(t *testing.T) {
		e := newEnv(t, ownerMissingDelete, envOpts{})
		tenOwnersAndOneGone(e)
		reg := prometheus.NewRegistry()
		if _, err := e.engine(func(o *janitor.Options) { o.Metrics = metrics.New(reg) }).Run(context.Background(), janitor.RunInput{}); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if del := deletedIDs(e.mutations()); len(del) != 1 || del["tok-gone"] != 1 {
			t.Fatalf("the tenant received DELETEs of %v; want tok-gone only", del)
		}
		var intents []string
		for _, r := range e.journalRecords() {
			if r.Kind == audit.KindIntent {
				intents = append(intents, r.TokenID)
			}
		}
		if len(intents) != 1 || intents[0] != "tok-gone" {
			t.Fatalf("journal intents for %v; want tok-gone", intents)
		}
		if lookups := e.identityLookups(); len(lookups) != 2 || lookups[1] != `id in ("gone","`+e.own()+`")` {
			t.Fatalf("identity lookups %q; want the batch, then gone with patjanitor's own identity", lookups)
		}
		if err := testutil.GatherAndCompare(reg, strings.NewReader(ownerLookupMetrics(11, 1, 0)), "patjanitor_owner_lookups_total"); err != nil {
			t.Error(err)
		}
	})

	// A second answer that is a proxy's or a broken page's 200 [] holds none
	// of the ids left out, so it "agreed" that owner-03 … owner-09, who
	// exist, were missing, and their tokens were deleted. patjanitor's own
	// identity is asked for in the confirmation too, and an answer without
	// it is not the directory: the lookup fails, nothing is deleted.
	t.Run("second answer empty", func(t *testing.T) {
		e := newEnv(t, ownerMissingDelete, envOpts{})
		tenOwnersAndOneGone(e)
		first := shortPages(e.sim, 4, func(n int) bool { return n == 1 })
		var n atomic.Int32
		e.behind(false, func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet || r.URL.Path != "/v3/public-identities" {
				return false
			}
			if n.Add(1) == 1 {
				return first(w, r)
			}
			e.sim.ServeHTTP(httptest.NewRecorder(), r) // in the request log
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("[]"))
			return true
		})
		reg := prometheus.NewRegistry()
		if _, err := e.engine(func(o *janitor.Options) { o.Metrics = metrics.New(reg) }).Run(context.Background(), janitor.RunInput{}); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if del := deletedIDs(e.mutations()); len(del) != 0 {
			t.Fatalf("the tenant received DELETEs of %v; want none (owner-03 … owner-09 exist, and the second answer was empty)", del)
		}
		e.requireNoMutations()
		e.requireNoIntents()
		if lookups := e.identityLookups(); len(lookups) != 2 || !strings.Contains(lookups[1], `"owner-03"`) || !strings.Contains(lookups[1], `"`+e.own()+`"`) {
			t.Fatalf("identity lookups %q; want the batch, then the ids it left out with patjanitor's own", lookups)
		}
		if logs := e.logs.String(); !strings.Contains(logs, "owner lookup failed") || !strings.Contains(logs, "patjanitor's own identity") {
			t.Errorf("the log does not say the second answer left out patjanitor's own identity:\n%s", logs)
		}
		if err := testutil.GatherAndCompare(reg, strings.NewReader(ownerLookupMetrics(0, 0, 12)), "patjanitor_owner_lookups_total"); err != nil {
			t.Error(err)
		}
	})

	// A confirmation that fails is a failed lookup like any other: the
	// deleted user is not taken for missing on the first answer alone.
	t.Run("confirmation fails", func(t *testing.T) {
		e := newEnv(t, ownerMissingDelete, envOpts{})
		tenOwnersAndOneGone(e)
		e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListPublicIdentities, After: 1, Status: 400})
		reg := prometheus.NewRegistry()
		if _, err := e.engine(func(o *janitor.Options) { o.Metrics = metrics.New(reg) }).Run(context.Background(), janitor.RunInput{}); err != nil {
			t.Fatalf("Run: %v", err)
		}
		e.requireNoMutations()
		e.requireNoIntents()
		if lookups := e.identityLookups(); len(lookups) != 2 || lookups[1] != `id in ("gone","`+e.own()+`")` {
			t.Fatalf("identity lookups %q; want the batch, then gone with patjanitor's own identity", lookups)
		}
		if logs := e.logs.String(); !strings.Contains(logs, "owner lookup failed") || !strings.Contains(logs, "confirming 1 missing owners") {
			t.Errorf("the log does not say the confirmation failed:\n%s", logs)
		}
		if err := testutil.GatherAndCompare(reg, strings.NewReader(ownerLookupMetrics(0, 0, 12)), "patjanitor_owner_lookups_total"); err != nil {
			t.Error(err)
		}
	})

	// A run in which every owner is found costs no request more.
	t.Run("honest, nobody missing", func(t *testing.T) {
		e := newEnv(t, ownerMissingDelete, envOpts{})
		tenOwnersAndOneGone(e)
		e.sim.AddIdentity(idnsim.Identity{ID: "gone", Name: "Back again", IdentityState: "ACTIVE"})
		if _, err := e.engine().Run(context.Background(), janitor.RunInput{}); err != nil {
			t.Fatalf("Run: %v", err)
		}
		e.requireNoMutations()
		if lookups := e.identityLookups(); len(lookups) != 1 {
			t.Fatalf("identity lookups %q; want the batch only", lookups)
		}
	})
}

const ownerMissingGraceConfig = noLimits + `owners:
  lookup: true
  fallbackEmail: iam@acme.example
notify:
  receivers:
    - name: hook
      webhook: {urlEnv: HOOK_URL, hmacSecretEnv: HOOK_KEY}
  owners: hook
  summary: [hook]
  failures: [hook]
policies:
  - name: deleted-owner
    mode: enforce
    match: {ownerMissing: true}
    action: delete
    grace: 14d
`

// A short page in the middle of a grace period fails the lookup as any
// other failure does (Owners.Err): the deleted user's mark keeps its warning
// and deadline, and the owners the answer left out are not marked (warned of
// a deletion as deleted users). On day 14 the honest directory deletes the
// deleted user's token, and no other.
func TestHostileIdentityDirectoryAnswersAShortPageDuringTheGracePeriod(t *testing.T) {
	g := newGraceEnv(t, ownerMissingGraceConfig)
	tenOwnersAndOneGone(g.env)

	g.run()
	g.requireNoMutations()
	if ms := g.marks(); len(ms) != 1 || ms["tok-gone"].WarnedAt == nil || !ms["tok-gone"].WarnedAt.Equal(t0) {
		t.Fatalf("day 0 marks %+v; want tok-gone's, warned now", ms)
	}

	g.clock.Set(at(7))
	client, url := g.client, g.url
	g.behind(false, shortPages(g.sim, 4, func(int) bool { return true }))
	g.run()
	g.client, g.url = client, url
	g.requireNoMutations()
	ms := g.marks()
	if m, ok := ms["tok-gone"]; !ok || m.WarnedAt == nil || !m.WarnedAt.Equal(t0) || m.Deadline == nil || !m.Deadline.Equal(at(14)) {
		t.Fatalf("day 7 mark of tok-gone %+v (found %v); want day 0's, deadline day 14", m, ok)
	}
	if len(ms) != 1 {
		t.Fatalf("day 7 marks %v; want tok-gone's only (the owners left out exist)", ms)
	}

	g.clock.Set(at(14))
	g.run()
	if del := deletedIDs(g.mutations()); len(del) != 1 || del["tok-gone"] != 1 {
		t.Fatalf("day 14 deleted %v; want tok-gone only", del)
	}
}
