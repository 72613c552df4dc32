package janitor_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/state"
)

// openAnchored (re)opens the journal as the commands do: anchored in the
// state store, whose catch-up takes the records after the anchor.
func (p *proofEnv) openAnchored() {
	p.t.Helper()
	if p.journal != nil {
		_ = p.journal.Close()
	}
	j, err := audit.Open(p.jpath, audit.Options{Clock: p.clock.Now, Anchors: p.st.AnchorOf("journal.jsonl"),
		Tail: janitor.NewCatchUp(p.st, p.logger)})
	if err != nil {
		p.t.Fatalf("open journal: %v", err)
	}
	p.t.Cleanup(func() { _ = j.Close() })
	p.journal = j
}

// restoreStore puts the state store back as it was in backup (the file
// copied while nothing ran) and reopens the store and the journal.
func (p *proofEnv) restoreStore(backup []byte) {
	p.t.Helper()
	_ = p.journal.Close()
	_ = p.st.Close()
	if err := os.WriteFile(p.stPath, backup, 0o600); err != nil {
		p.t.Fatal(err)
	}
	p.openStore()
	p.openAnchored()
}

func (p *proofEnv) backupStore() []byte {
	p.t.Helper()
	_ = p.journal.Close()
	_ = p.st.Close()
	data, err := os.ReadFile(p.stPath)
	if err != nil {
		p.t.Fatal(err)
	}
	p.openStore()
	p.openAnchored()
	return data
}

// A tenant answers 204 to a DELETE and keeps the token; the state store is
// then restored from a backup taken before that run. The old code had lost
// the confirmation with the store: the next run past the settle margin
// took the token for a new match, "deleted" it again (another faked 204)
// and succeeded, and the lie was never caught. Now opening the journal
// rebuilds the confirmation from the run's intent and outcome after the
// restored anchor, and that run finds the delete not in effect: journaled
// not-in-effect naming the first run, and the run fails.
func TestHostileRestoredStateForgetsConfirmedDelete(t *testing.T) {
	p := newProofEnv(t, proofConfig)
	p.add("stale-1", "owner-a", "old-ci", 400*day, 200*day)
	p.openAnchored()
	backup := p.backupStore()
	p.proxy.lie.Store(true)

	res1, err := p.runProof()
	if err != nil || res1.Count(janitor.OutcomeApplied) != 1 || p.proxy.fakedDeletes() != 1 || !p.present("stale-1") {
		t.Fatalf("run 1: %v, items %+v, %d faked DELETEs; want the delete applied by a faked 204", err, res1.Items, p.proxy.fakedDeletes())
	}
	if _, ok := p.confirmed()["stale-1"]; !ok {
		t.Fatal("run 1 kept no confirmed record")
	}

	p.restoreStore(backup)
	c, ok := p.confirmed()["stale-1"]
	if !ok || c.RunID != res1.RunID || c.Action != "delete" || c.OwnerID != "owner-a" || c.Policy != "unused-90d" || c.Code != 204 || c.Unproven() {
		t.Errorf("after the restore the record is %+v (found %v); want run 1's confirmed delete rebuilt from the journal", c, ok)
	}
	if !strings.Contains(p.logs.String(), "the state store is older than the journal") {
		t.Errorf("no warning says the store was rebuilt:\n%s", p.logs)
	}

	p.clock.Set(t0.Add(janitor.SettleMargin + time.Minute))
	_, err = p.runProof()
	var uerr *janitor.UnprovenError
	if !errors.As(err, &uerr) || len(uerr.Unproven) != 1 || uerr.Unproven[0].Confirmed.RunID != res1.RunID {
		t.Fatalf("the run past the margin: %v; want an UnprovenError naming run 1's delete of stale-1", err)
	}
	lies := withStatus(p.outcomes("stale-1"), janitor.StatusNotInEffect)
	if len(lies) != 1 || !strings.Contains(lies[0].Outcome.Error, "in run "+res1.RunID) || !strings.Contains(lies[0].Outcome.Error, "the delete did not happen") {
		t.Fatalf("journal not-in-effect outcomes for stale-1 %+v; want one naming run 1", lies)
	}
	p.requireNoMutations() // the tenant never received a DELETE

	// Handed again (the next open finds no tail): nothing is rebuilt twice.
	p.openAnchored()
	if c := p.confirmed()["stale-1"]; c.Checks != 1 {
		t.Errorf("after reopening, the record %+v; want found not in effect once", c)
	}
	if _, err := audit.VerifyPath(p.jpath, audit.VerifyOptions{}); err != nil {
		t.Fatalf("audit verify: %v", err)
	}
}

// The catch-up runs when the journal opens, before any run compares this
// host's clock with the tenant's. The store is restored from a backup that
// held stale-1 snoozed for 60 days; after the backup stale-1 was snoozed
// again for 10 days and stale-2 for 10 days. The journal is opened on a host
// whose clock is 30 days ahead: the old catch-up judged both ends passed by
// that clock, so it ended the store's snooze of stale-1 and did not put
// back stale-2's; the run on that clock was refused (rightly), but once the
// clock was fixed the next run deleted both exempted tokens, within their
// snoozes. Now the catch-up writes the journal's snoozes whatever this
// host's clock says, and each run's clock decides: nothing is sent while
// the snoozes last, and both are deleted once they have ended.
func TestHostileCatchUpOnAClockAheadKeepsTheSnoozes(t *testing.T) {
	p := newProofEnv(t, proofConfig)
	p.add("stale-1", "owner-a", "old-ci", 400*day, 200*day)
	p.add("stale-2", "owner-b", "old-ci", 400*day, 200*day)
	p.openAnchored()
	ctx := context.Background()
	// As `patjanitor snooze` does: the store, then the journal.
	snooze := func(id string, d time.Duration, reason string) time.Time {
		t.Helper()
		z, err := p.st.PutSnooze(ctx, state.Snooze{TokenID: id, Until: p.clock.Now().Add(d), Reason: reason, By: "ops"})
		if err != nil {
			t.Fatal(err)
		}
		until := z.Until
		if _, err := p.journal.Append(ctx, audit.Record{Kind: audit.KindSnooze, TokenID: id, Until: &until, Note: janitor.ReasonNote(reason, "ops")}); err != nil {
			t.Fatal(err)
		}
		return until
	}
	snooze("stale-1", 60*day, "vendor migration")
	backup := p.backupStore()
	p.clock.Set(t0.Add(time.Hour))
	until1 := snooze("stale-1", 10*day, "shorter")
	until2 := snooze("stale-2", 10*day, "new")

	// The restore, and the journal opened on a clock 30 days ahead.
	host := func() time.Time { return p.clock.Now().Add(30 * day) }
	_ = p.journal.Close()
	_ = p.st.Close()
	if err := os.WriteFile(p.stPath, backup, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(p.stPath, state.Options{Clock: host})
	if err != nil {
		t.Fatal(err)
	}
	j, err := audit.Open(p.jpath, audit.Options{Clock: host, Anchors: st.AnchorOf("journal.jsonl"), Tail: janitor.NewCatchUp(st, p.logger)})
	if err != nil {
		t.Fatalf("open journal on the clock ahead: %v", err)
	}
	p.st, p.journal = st, j
	_, err = p.engine(func(o *janitor.Options) { o.Proofs, o.Now = p.st, host }).Run(ctx, janitor.RunInput{})
	if ce := new(janitor.ClockSkewError); !errors.As(err, &ce) {
		t.Fatalf("the run on the clock ahead: %v; want it refused for the clock", err)
	}
	p.requireNoMutations()
	_ = j.Close()
	_ = st.Close()

	// The clock fixed (a restart): the snoozes still hold.
	p.st = nil
	p.openStore()
	p.openAnchored()
	p.clock.Set(t0.Add(2 * time.Hour))
	res, err := p.runProof()
	if err != nil {
		t.Fatalf("the run on the fixed clock: %v", err)
	}
	p.requireNoMutations()
	for id, until := range map[string]time.Time{"stale-1": until1, "stale-2": until2} {
		if !p.present(id) {
			t.Errorf("%s deleted within its snooze", id)
		}
		z, ok, err := p.st.ActiveSnooze(ctx, id)
		if err != nil || !ok || !z.Until.Equal(until) {
			t.Errorf("snooze of %s %+v (active %v, %v); want the journal's last, until %s", id, z, ok, err, until)
		}
		found := false
		for _, sk := range res.Plan.Skipped {
			found = found || (sk.TokenID == id && strings.Contains(sk.Reason, "snoozed until "+pat.FormatTime(until)))
		}
		if !found {
			t.Errorf("the run did not skip %s as snoozed until %s: %+v", id, until, res.Plan.Skipped)
		}
	}

	// Past their ends the policy decides the tokens again.
	p.clock.Set(until1.Add(time.Minute))
	if res, err := p.runProof(); err != nil || res.Count(janitor.OutcomeApplied) != 2 || p.present("stale-1") || p.present("stale-2") {
		t.Fatalf("the run past the snoozes: %v; want both deleted", err)
	}
}
