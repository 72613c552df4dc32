package janitor_test

import (
	"context"
	"testing"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/notify/notifytest"
)

const ownerGraceConfig = noLimits + `owners:
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
  - name: inactive-owner
    mode: enforce
    match: {ownerStates: [INACTIVE_LONG_TERM]}
    action: delete
    grace: 14d
`

// A failed owner lookup leaves the owner conditions unknown for that run:
// they match nothing, so nothing is acted on a guess. It must not read as
// "the token stopped matching" too: the marks of those policies were
// removed, and the next run with a working lookup marked the tokens anew,
// warned their owners again and restarted the clock. A directory that
// fails one run in every grace period (a flapping proxy, a tenant that
// answers without patjanitor's own identity now and then) kept the tokens
// forever and sent their owners a new warning each time.
func TestHostileOwnerLookupFailsDuringTheGracePeriod(t *testing.T) {
	g := newGraceEnv(t, ownerGraceConfig)
	g.sim.AddIdentity(idnsim.Identity{ID: "bob", Name: "Bob", Email: "bob@example.com", IdentityState: "INACTIVE_LONG_TERM"})
	g.add("tok-bob", "bob", "b", 10*day, 1*day)

	// Day 0: bob is warned, the clock starts.
	g.run()
	g.requireNoMutations()
	if d := notifytest.OfKind(g.hook.Take(), notify.KindDigest); len(d) != 1 {
		t.Fatalf("day 0: %d digests, want bob's", len(d))
	}
	if m, ok := g.marks()["tok-bob"]; !ok || m.WarnedAt == nil || !m.WarnedAt.Equal(t0) {
		t.Fatalf("day 0 mark %+v (found %v); want warned now", m, ok)
	}

	// Day 7: the identity directory fails. Nothing is acted on, and the
	// mark (bob's warning, its deadline) is kept.
	g.clock.Set(at(7))
	g.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListPublicIdentities, Status: 500})
	if _, err := g.engine().Run(context.Background(), janitor.RunInput{}); err != nil {
		t.Logf("day 7: %v", err)
	}
	g.sim.ClearFaults()
	g.requireNoMutations()
	if m, ok := g.marks()["tok-bob"]; !ok || m.WarnedAt == nil || !m.WarnedAt.Equal(t0) || m.Deadline == nil || !m.Deadline.Equal(at(14)) {
		t.Fatalf("day 7 mark %+v (found %v); want bob's of day 0, deadline day 14", m, ok)
	}
	if d := notifytest.OfKind(g.hook.Take(), notify.KindDigest); len(d) != 0 {
		t.Fatalf("day 7: %d digests; bob was warned on day 0", len(d))
	}

	// Day 14: the directory works again, and bob's deadline has passed.
	g.clock.Set(at(14))
	g.run()
	if del := deletedIDs(g.mutations()); len(del) != 1 || del["tok-bob"] != 1 {
		t.Fatalf("day 14 deleted %v; want tok-bob, its owner warned on day 0", del)
	}
	if d := notifytest.OfKind(g.hook.Take(), notify.KindDigest); len(d) != 0 {
		t.Errorf("day 14: %d digests; bob was warned on day 0", len(d))
	}
}
