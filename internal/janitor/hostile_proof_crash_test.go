package janitor_test

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/metrics"
	"github.com/patjanitor/patjanitor/internal/state"
)

// errCrashed is what every write after the injected crash gets.
var errCrashed = errors.New("the process died here (injected)")

// crashAfterApplied is the journal of a process that dies right after it
// journaled its first applied outcome (its anchor moved past it): every
// later append fails, as a dead process writes nothing more.
type crashAfterApplied struct {
	*audit.Journal
	crashed *atomic.Bool
	// status is the outcome after which it dies ("": applied).
	status janitor.Outcome
}

func (c crashAfterApplied) Append(ctx context.Context, r audit.Record) (audit.Record, error) {
	if c.crashed.Load() {
		return audit.Record{}, errCrashed
	}
	out, err := c.Journal.Append(ctx, r)
	after := c.status
	if after == "" {
		after = janitor.OutcomeApplied
	}
	if err == nil && r.Kind == audit.KindOutcome && r.Outcome != nil && r.Outcome.Status == string(after) {
		c.crashed.Store(true)
	}
	return out, err
}

// crashedStore is the same dead process's state store as a proof store:
// no record written after the crash.
type crashedStore struct {
	*state.Store
	crashed *atomic.Bool
}

func (c crashedStore) UpdateConfirmed(ctx context.Context, put []state.Confirmed, drop []string) (int, error) {
	if c.crashed.Load() {
		return 0, errCrashed
	}
	return c.Store.UpdateConfirmed(ctx, put, drop)
}

func (c crashedStore) UpdateConfirmedClients(ctx context.Context, put []state.Confirmed, drop []string) (int, error) {
	if c.crashed.Load() {
		return 0, errCrashed
	}
	return c.Store.UpdateConfirmedClients(ctx, put, drop)
}

// runCrashing runs the engine as a process that dies right after it
// journals its first outcome of status after ("": applied): its journal and
// its proof store write nothing more. It fails the test unless the run died
// there, and returns the run's result.
func (p *proofEnv) runCrashing(after janitor.Outcome) *janitor.Result {
	p.t.Helper()
	var crashed atomic.Bool
	p.openAnchored()
	j := p.journal
	res, err := p.engine(func(o *janitor.Options) {
		o.Journal = crashAfterApplied{Journal: j, crashed: &crashed, status: after}
		o.Proofs = crashedStore{Store: p.st, crashed: &crashed}
	}).Run(context.Background(), janitor.RunInput{})
	if !crashed.Load() || !errors.Is(err, errCrashed) {
		p.t.Fatalf("run 1: crashed %v, error %v; want the crash after the %s outcome", crashed.Load(), err, cmp.Or(after, janitor.OutcomeApplied))
	}
	return res
}

// A run dies after the tenant confirmed a delete (204) and its outcome was
// journaled, before the run stored the record that awaits the proof: the
// anchor had moved past the outcome, so the catch-up at the next open found
// nothing to rebuild, the record was lost, and the next listing that still
// showed the token (the tenant lied) raised nothing: the lie went unseen.
// Now the record is stored before the outcome is journaled: after the
// restart the store has it, and the next listing raises the alarm.
func TestHostileCrashAfterAppliedOutcomeKeepsTheConfirmation(t *testing.T) {
	p := newProofEnv(t, proofConfig)
	p.add("stale-1", "owner-a", "old-ci", 400*day, 200*day)
	p.proxy.lie.Store(true)
	res1 := p.runCrashing("")
	if n := p.proxy.fakedDeletes(); n != 1 || !p.present("stale-1") {
		t.Fatalf("the proxy answered %d DELETEs (stale-1 present %v); want 1, the tenant untouched", n, p.present("stale-1"))
	}
	if got := withStatus(p.outcomes("stale-1"), string(janitor.OutcomeApplied)); len(got) != 1 {
		t.Fatalf("journal outcomes for stale-1 %+v; want one applied", p.outcomes("stale-1"))
	}

	// The restart: the store and the journal opened afresh, as the next
	// command or serve does.
	p.openStore()
	p.openAnchored()
	c, ok := p.confirmed()["stale-1"]
	if !ok || c.Action != "delete" || c.RunID != res1.RunID || c.Code != http.StatusNoContent || c.Policy != "unused-90d" {
		t.Fatalf("after the restart, confirmed record %+v (found %v); want the delete of run 1 awaiting proof", c, ok)
	}

	// A day later the listing still shows the token: the lie is caught.
	p.clock.Set(t0.Add(day))
	_, err := p.runProof()
	requireUnproven(t, err, "stale-1", "stale-1")
	if lies := withStatus(p.outcomes("stale-1"), janitor.StatusNotInEffect); len(lies) != 1 || lies[0].Outcome.Code != http.StatusNoContent {
		t.Fatalf("journal outcomes for stale-1 %+v; want one %s", p.outcomes("stale-1"), janitor.StatusNotInEffect)
	}
	if v := p.gauge("patjanitor_unproven_mutations", "action", "delete"); v != 1 {
		t.Errorf("unproven_mutations{action=delete} = %v, want 1", v)
	}
}

// The same crash after a DELETE the tenant answered 404 while it keeps
// listing the token (a 404 is checked by the next listing as a 204 is): the
// record was stored only when the run ended, so the crash lost it and the
// next listing raised nothing. Now it is stored before the outcome.
func TestHostileCrashAfterGoneOutcomeKeepsTheConfirmation(t *testing.T) {
	p := newProofEnv(t, proofConfig)
	p.add("stale-1", "owner-a", "old-ci", 400*day, 200*day)
	p.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpDeleteToken, Status: http.StatusNotFound})
	res1 := p.runCrashing(janitor.OutcomeGone)
	if m := p.mutations(); len(m) != 1 || m[0].Method != http.MethodDelete || m[0].Status != http.StatusNotFound || !p.present("stale-1") {
		t.Fatalf("the tenant received %+v (stale-1 present %v); want one DELETE answered 404, the token kept", m, p.present("stale-1"))
	}

	p.openStore()
	p.openAnchored()
	c, ok := p.confirmed()["stale-1"]
	if !ok || c.Action != "delete" || c.RunID != res1.RunID || c.Code != http.StatusNotFound {
		t.Fatalf("after the restart, confirmed record %+v (found %v); want the delete of run 1, answered 404, awaiting proof", c, ok)
	}
	p.hook.Take()

	p.clock.Set(t0.Add(day))
	_, err := p.runProof()
	requireUnproven(t, err, "stale-1", "stale-1")
	if lies := withStatus(p.outcomes("stale-1"), janitor.StatusNotInEffect); len(lies) != 1 || lies[0].Outcome.Code != http.StatusNotFound {
		t.Fatalf("journal outcomes for stale-1 %+v; want one %s quoting the 404", p.outcomes("stale-1"), janitor.StatusNotInEffect)
	}
}

// The same crash after an API client's disable the tenant confirmed (200)
// and did not make: after the restart the store has the record, and the
// next listing, which shows the client enabled, raises the alarm. On the
// old code the record was lost with the crash and the lie went unseen.
func TestHostileCrashAfterAppliedClientOutcomeKeepsTheConfirmation(t *testing.T) {
	p := newClientProofEnv(t)
	p.liar.lie.Store(true)
	open := func() *audit.Journal {
		if p.journal != nil {
			_ = p.journal.Close()
		}
		j, err := audit.Open(p.jpath, audit.Options{Clock: p.clock.Now, Anchors: p.store.AnchorOf("journal.jsonl"), Tail: janitor.NewCatchUp(p.store, p.logger)})
		if err != nil {
			t.Fatalf("open journal: %v", err)
		}
		t.Cleanup(func() { _ = j.Close() })
		p.journal = j
		return j
	}
	j := open()
	var crashed atomic.Bool
	p.clock.Set(t0)
	res1, err := p.env.engine(func(o *janitor.Options) {
		o.ClientID, o.ClientState, o.Notify, o.Metrics = cOwn, p.store, p.d, p.m
		o.Journal = crashAfterApplied{Journal: j, crashed: &crashed}
		o.Proofs = crashedStore{Store: p.store, crashed: &crashed}
	}).Run(context.Background(), janitor.RunInput{})
	if !crashed.Load() || !errors.Is(err, errCrashed) {
		t.Fatalf("run 1: crashed %v, error %v; want the crash after the applied outcome", crashed.Load(), err)
	}
	if len(res1.Clients) != 1 || res1.Clients[0].Outcome != janitor.OutcomeApplied || p.liar.fakedCount() != 1 {
		t.Fatalf("run 1 client results %+v, %d faked; want the disable applied by a faked 200", res1.Clients, p.liar.fakedCount())
	}
	if cl, _ := p.sim.OAuthClient(cTarget); !cl.IsEnabled() {
		t.Fatal("the tenant disabled the client: the proxy did not lie")
	}

	open() // the restart: the store's bbolt file keeps what was committed
	rec, ok := p.records()[cTarget]
	if !ok || rec.Action != "disable" || rec.RunID != res1.RunID || rec.Code != http.StatusOK || rec.Before == nil || rec.Before.Modified == nil {
		t.Fatalf("after the restart, confirmed record %+v (found %v); want run 1's disable awaiting proof", rec, ok)
	}
	_, err = p.runAt(t0.Add(day))
	requireUnproven(t, err, cTarget, "1 API client the tenant confirmed disabled is still listed enabled ("+cTarget+", disabled by policy clients-full-scope-unused in run "+res1.RunID)
	if lies := p.clientOutcomes(cTarget, janitor.StatusNotInEffect); len(lies) != 1 {
		t.Fatalf("journal not-in-effect outcomes %+v; want one", lies)
	}
	if v := p.gauge(metrics.ProofDisableClient); v != 1 {
		t.Errorf("unproven_mutations{action=disable-client} = %v, want 1", v)
	}
}

// The same crash after a bulk expire the tenant confirmed (200, showing
// the new expirationDate) and then did not keep: the record is stored
// before the batch's outcomes, so after the restart the store has it and
// the next listing, which shows the token as it was, raises the alarm.
func TestHostileCrashAfterAppliedBulkExpireKeepsTheConfirmation(t *testing.T) {
	p := newProofEnv(t, proofNotify+`policies:
  - name: expire-stale
    mode: enforce
    match: {unusedFor: 90d}
    action: expire
    expireIn: 14d
`)
	p.add("stale-1", "owner-a", "old-ci", 400*day, 200*day)
	before, _ := p.sim.Token("stale-1")
	res1 := p.runCrashing("")
	if got := bulkIDs(t, p.sim.Requests()); got["stale-1"] != 1 {
		t.Fatalf("bulk updates %v; want stale-1 expired", got)
	}
	p.sim.Add(before, "") // the tenant does not keep what it confirmed

	p.openStore()
	p.openAnchored()
	if c, ok := p.confirmed()["stale-1"]; !ok || c.Action != "expire" || c.RunID != res1.RunID || len(c.Patch) == 0 {
		t.Fatalf("after the restart, confirmed record %+v (found %v); want run 1's expire with its operations", c, ok)
	}
	p.clock.Set(t0.Add(day))
	_, err := p.runProof()
	requireUnproven(t, err, "stale-1", "stale-1")
	if v := p.gauge("patjanitor_unproven_mutations", "action", "expire"); v != 1 {
		t.Errorf("unproven_mutations{action=expire} = %v, want 1", v)
	}
}
