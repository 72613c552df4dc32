package janitor_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/state"
)

// A snoozed token is skipped (not acted on, with the snooze's end in the
// reason) and comes back by itself once the snooze has expired.
func TestSnoozeSkipsUntilExpiry(t *testing.T) {
	e := newEnv(t, enforceDeleteStale, envOpts{})
	e.addStale("s", 2, 1)
	st, err := state.Open(filepath.Join(t.TempDir(), state.FileName), state.Options{Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	if _, err := st.PutSnooze(ctx, state.Snooze{TokenID: "s-000", Until: t0.Add(30 * day), Reason: "migration"}); err != nil {
		t.Fatal(err)
	}
	withStore := func(o *janitor.Options) { o.Snoozes = st }

	res, err := e.engine(withStore).Run(ctx, janitor.RunInput{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !e.present("s-000") || e.present("s-001") {
		t.Fatalf("after run 1: s-000 present %v (want true), s-001 present %v (want false)", e.present("s-000"), e.present("s-001"))
	}
	var sk []string
	for _, s := range res.Plan.Skipped {
		sk = append(sk, s.TokenID+": "+s.Reason)
	}
	if len(sk) != 1 || sk[0] != "s-000: snoozed until 2026-12-26T03:00:00.000Z" {
		t.Fatalf("skipped = %q", sk)
	}

	e.clock.Set(t0.Add(30 * day))
	if _, err := e.engine(withStore).Run(ctx, janitor.RunInput{}); err != nil {
		t.Fatalf("Run after expiry: %v", err)
	}
	if e.present("s-000") {
		t.Fatal("s-000 survived its expired snooze")
	}
}

// A store that cannot be read makes the data incomplete: nothing is changed.
func TestSnoozeReadFailureIsIncomplete(t *testing.T) {
	e := newEnv(t, enforceDeleteStale, envOpts{})
	e.addStale("s", 1, 1)
	st, err := state.Open(filepath.Join(t.TempDir(), state.FileName), state.Options{Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close() // reads now fail
	_, err = e.engine(func(o *janitor.Options) { o.Snoozes = st }).Run(context.Background(), janitor.RunInput{})
	if err == nil || !strings.Contains(err.Error(), "read snoozes") {
		t.Fatalf("Run: %v, want incomplete data naming the snoozes", err)
	}
	e.requireNoMutations()
}

// A policy with a grace period never acts at once: without a mark store and
// a delivered warning its items stay in mode grace and say why.
func TestGracePolicyIsHeld(t *testing.T) {
	e := newEnv(t, noLimits+`notify:
  receivers:
    - name: hook
      webhook: {urlEnv: HOOK_URL, hmacSecretEnv: HOOK_KEY}
  owners: hook
policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
    grace: 14d
`, envOpts{})
	e.addStale("g", 2, 1)
	res, err := e.engine().Run(context.Background(), janitor.RunInput{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	e.requireNoMutations()
	if res.Plan.Items.Len() != 2 {
		t.Fatalf("items = %+v", res.Plan.Items.Slice())
	}
	for _, it := range res.Plan.Items.All() {
		if it.Mutating() || it.Mode != plan.ModeGrace || it.Marked == nil || it.Deadline != nil ||
			!strings.Contains(it.Reason, "grace 14d: marked by this run") {
			t.Fatalf("item %s: mode %s, reason %q; want held", it.TokenID, it.Mode, it.Reason)
		}
	}
}
