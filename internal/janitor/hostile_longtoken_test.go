package janitor_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/notify/notifytest"
	"github.com/patjanitor/patjanitor/internal/pat"
)

// A listed token id may be up to 64 KiB (api.MaxFieldBytes), longer than
// the 32 KiB a key of the state store may be. A grace policy's mark was
// stored under a key made of the token id, so ReconcileMarks failed on that
// one token: no mark stored, no owner of the run warned, run after run. A
// long token id now makes a mark key of fixed length, its value keeps the
// id as listed, and the action, once due, goes to that id.
//
// A token id holding a NUL (JSON's \u0000) failed the same way: a mark's key
// is "id NUL policy", so such ids were refused. Their keys are hashed too.
func TestHostileTokenIDLongerThanAStoreKey(t *testing.T) {
	// Capitals too: the key lowers the id, the DELETE must not.
	t.Run("40000 characters", func(t *testing.T) { hostileMarkedTokenID(t, "Long-"+strings.Repeat("x", 40000-5)) })
	t.Run("NUL", func(t *testing.T) { hostileMarkedTokenID(t, "Tok-\x00unused-90d") })
}

// hostileMarkedTokenID runs the grace workflow over owners with a stale
// token each, one of them with the id long, from the first warning to the
// action.
//
// Five owners, the long id in the middle (30 before): the refused key
// failed ReconcileMarks, and with it the run, so no owner was warned, those
// before and after the long id as well as its own; five show that as 30
// did. Each owner costs a webhook delivery and a DELETE under the race
// detector.
func hostileMarkedTokenID(t *testing.T, long string) {
	g := newGraceEnv(t, graceConfig)
	const owners = 5
	idOf := func(i int) string {
		if i == owners/2 {
			return long
		}
		return fmt.Sprintf("tok-%03d", i)
	}
	for i := range owners {
		// The simulator serves any id it is given; the listing's decoder
		// takes strings up to 64 KiB, so this one reaches the engine.
		g.add(idOf(i), fmt.Sprintf("owner-%03d", i), fmt.Sprintf("name-%03d", i), 400*day, 200*day)
	}

	// Day 0: every owner gets exactly one digest naming their token, and
	// every clock starts on delivery.
	g.run()
	g.requireNoMutations()
	digests := notifytest.OfKind(g.hook.Take(), notify.KindDigest)
	got := map[string][]string{}
	for _, d := range digests {
		got[d.Digest.Owner.ID] = append(got[d.Digest.Owner.ID], digestTokens(d.Digest)...)
	}
	if len(digests) != owners || len(got) != owners {
		t.Errorf("%d digests to %d owners, want one to each of %d", len(digests), len(got), owners)
	}
	for i := range owners {
		if ids := got[fmt.Sprintf("owner-%03d", i)]; len(ids) != 1 || ids[0] != idOf(i) {
			t.Fatalf("the digest of owner %d names %.60q, want %.60q", i, ids, idOf(i))
		}
	}
	marks := g.marks()
	if len(marks) != owners {
		t.Fatalf("%d marks, want %d", len(marks), owners)
	}
	for i := range owners {
		m, ok := marks[idOf(i)]
		if !ok || m.WarnedAt == nil || !m.WarnedAt.Equal(t0) || m.Deadline == nil || !m.Deadline.Equal(at(14)) {
			t.Fatalf("the mark of %.60q = %.200v (found %v), want warned on day 0, deadline day 14", idOf(i), m, ok)
		}
	}
	if ob := g.outbox(); len(ob) != 0 {
		t.Errorf("%d entries left in the outbox", len(ob))
	}
	for _, r := range g.journalRecords() {
		if r.Kind == "intent" {
			t.Fatalf("journal intent during the grace period: %.200v", r)
		}
	}

	// The same day again: nothing new, nothing repeated.
	g.run()
	g.requireNoMutations()
	if d := notifytest.OfKind(g.hook.Take(), notify.KindDigest); len(d) != 0 {
		t.Errorf("the second run sent %d digests again", len(d))
	}

	// Day 14: the deadline passed; the long token is deleted by its id as
	// listed, once, through the journal.
	g.clock.Set(at(14))
	g.run()
	del := deletedIDs(g.mutations())
	if len(del) != owners {
		t.Errorf("day 14: %d tokens deleted, want %d", len(del), owners)
	}
	if del[long] != 1 {
		t.Fatalf("day 14: the long token was deleted %d times, want once", del[long])
	}
	if g.present(long) {
		t.Fatal("the long token is still in the tenant")
	}
	intents := map[string]int{}
	for _, r := range g.journalRecords() {
		if r.Kind == "intent" {
			intents[r.TokenID]++
		}
	}
	if len(intents) != owners || intents[long] != 1 {
		t.Fatalf("journal intents for %d tokens (the long one: %d), want %d, the long one once", len(intents), intents[long], owners)
	}
	if len(g.marks()) != 0 {
		t.Errorf("%d marks left after the actions", len(g.marks()))
	}
}

// TestHostileAPIClientIDLongerThanAStoreKey: the same for an apiClients
// grace policy. A client id too long for a store key (or holding a NUL)
// failed ReconcileClientMarks, so no client was ever warned or acted on;
// and the record of a disabled client, keyed by its id, could not be
// written either (the disable done, the clock of disabledFor never started).
func TestHostileAPIClientIDLongerThanAStoreKey(t *testing.T) {
	for name, long := range map[string]string{
		"40000 characters": "Long-" + strings.Repeat("c", 40000-5),
		"NUL":              "Cli-\x00clients-unused",
	} {
		t.Run(name, func(t *testing.T) {
			g := newClientGraceEnv(t, "enforce")
			yes, no := apiclient.Bool(true), apiclient.Bool(false)
			g.sim.AddOAuthClient(apiclient.Client{ID: long, Name: "long", Internal: no, Enabled: yes, Scope: pat.Scopes{Null: true}, Created: t0.Add(-400 * day)}, "")

			g.runAt(t0)
			if m := clientMutations(g.sim.Requests()); len(m) != 0 {
				t.Fatalf("run 1 sent %d mutations: a grace policy must warn first", len(m))
			}
			ds := g.clientDigests()
			if len(ds) != 1 {
				t.Fatalf("%d client digests, want 1", len(ds))
			}
			named := map[string]bool{}
			for _, it := range ds[0].Items {
				named[it.TokenID] = true
			}
			if len(named) != 2 || !named[cTarget] || !named[long] {
				t.Fatalf("the digest names %d clients, want %s and the long one", len(named), cTarget)
			}
			marks := g.clientMarks()
			for _, id := range []string{cTarget, long} {
				if m, ok := marks[id]; !ok || m.WarnedAt == nil || !m.WarnedAt.Equal(t0) {
					t.Fatalf("the mark of %.40q = %.200v (found %v), want warned now", id, m, ok)
				}
			}
			if g.journalHasIntent(long) {
				t.Fatal("a journal intent during the grace period")
			}

			g.runAt(t0.Add(7 * day))
			patched := map[string]int{}
			for _, r := range clientMutations(g.sim.Requests()) {
				if r.Method == "PATCH" {
					patched[r.Path[strings.LastIndex(r.Path, "/")+1:]]++
				}
			}
			if len(patched) != 2 || patched[long] != 1 || patched[cTarget] != 1 {
				t.Fatalf("day 7 patched %d clients (the long one %d times), want both once", len(patched), patched[long])
			}
			if got, _ := g.sim.OAuthClient(long); got.IsEnabled() {
				t.Fatal("the long client is still enabled")
			}
			if !g.journalHasIntent(long) {
				t.Fatal("no journal intent for the long client's disable")
			}
			// The disable is recorded, so disabledFor counts and `enable`
			// finds it.
			if d, ok, err := g.store.DisabledClient(context.Background(), long); err != nil || !ok || d.ClientID != long {
				t.Fatalf("disabled record of the long client: %.60q, %v, %.300v", d.ClientID, ok, err)
			}
			if len(g.clientMarks()) != 0 {
				t.Errorf("%d client marks left after the actions", len(g.clientMarks()))
			}
		})
	}
}
