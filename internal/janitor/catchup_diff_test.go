package janitor_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/state"
)

// diffConfig has a delete, a patch of the scopes and an expire (the bulk
// update), each on tokens of their own.
const diffConfig = proofNotify + `policies:
  - name: full-access
    mode: enforce
    match: {scopes: {any: ["sp:scopes:all"]}}
    action: patch
    patch: {setScopes: ["sp:scopes:default"]}
  - name: unused-300d
    mode: enforce
    match: {unusedFor: 300d}
    action: delete
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: expire
    expireIn: 14d
`

// recordJSON is a record as the store keeps it, for a field-by-field
// comparison that names what differs.
func recordJSON(t *testing.T, c state.Confirmed) string {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A differential test of the catch-up: the same runs, once live (the store
// written by the runs) and once rebuilt (the store restored from before
// them and caught up from the journal). The records must be the same,
// field for field, or a listing would judge them differently: At decides
// when a token is awaiting proof and when a listing may judge. The clock
// moves on with every reading, as a real run's does, so the run's end (the
// live record's At) is later than its outcomes.
func TestCatchUpRebuildsWhatTheRunsStored(t *testing.T) {
	p := newProofEnv(t, diffConfig)
	p.add("del-1", "owner-a", "old-ci", 400*day, 350*day)
	p.add("del-2", "owner-b", "old-cd", 400*day, -1)
	p.add("exp-1", "owner-a", "stale", 400*day, 200*day)
	p.add("exp-2", "owner-c", "stale-2", 400*day, 120*day)
	p.add("pat-1", p.own(), "admin", 400*day, day, "sp:scopes:all") // a real tenant patches only the own tokens
	p.add("used-1", "owner-c", "busy", 400*day, day)
	p.openAnchored()
	backup := p.backupStore()

	tick := func() time.Time { p.clock.Advance(1500 * time.Millisecond); return p.clock.Now() }
	// The journal's clock moves on too: its records of one run are not all
	// of one time.
	_ = p.journal.Close()
	j, err := audit.Open(p.jpath, audit.Options{Clock: tick, Anchors: p.st.AnchorOf("journal.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	p.journal = j
	run := func() *janitor.Result {
		t.Helper()
		res, err := p.engine(func(o *janitor.Options) { o.Proofs = p.st; o.Now = tick }).Run(context.Background(), janitor.RunInput{})
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		return res
	}
	// Run 1 confirms every change; the tenant lies about del-2, so run 2,
	// past the margin, finds it not in effect and sends it again.
	p.proxy.lie.Store(true)
	res1 := run()
	if n := res1.Count(janitor.OutcomeApplied); n != 5 {
		t.Fatalf("run 1 applied %d, want 5: %+v\n%+v", n, res1.Items, res1.Plan.Skipped)
	}
	p.proxy.lie.Store(false)
	p.clock.Advance(janitor.SettleMargin + time.Minute)
	if _, err := p.engine(func(o *janitor.Options) { o.Proofs = p.st; o.Now = tick }).Run(context.Background(), janitor.RunInput{}); err == nil {
		t.Fatal("run 2: no error, want the deletes found not in effect")
	}
	live := p.confirmed()
	if len(live) == 0 {
		t.Fatal("the runs kept no records")
	}

	p.restoreStore(backup)
	rebuilt := p.confirmed()
	// The last record of each run: the journal does not hold the run's end
	// (res.Finished), which comes after it.
	last := map[string]time.Time{}
	for _, r := range p.journalRecords() {
		if r.RunID != "" && r.Time.After(last[r.RunID]) {
			last[r.RunID] = r.Time
		}
	}
	// sameTime checks a time of the rebuilt record against the live one:
	// the end of run's records, at most a few clock readings before the
	// live run's end. It then sets the rebuilt time to the live one, for
	// the comparison of the other fields.
	sameTime := func(id, field, run string, got *time.Time, want *time.Time) {
		t.Helper()
		if got == nil || want == nil {
			if got != want {
				t.Errorf("%s: %s rebuilt %v, live %v", id, field, got, want)
			}
			return
		}
		end := last[run]
		if !got.Equal(end) || want.Before(end) || want.Sub(end) > 10*time.Second {
			t.Errorf("%s: %s rebuilt %s, live %s; want the time of run %s's last record, %s, a few readings before the live one",
				id, field, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano), run, end.Format(time.RFC3339Nano))
		}
		*got = *want
	}
	// The expires were proven by run 2's listing, which journals nothing:
	// the catch-up rebuilds them (docs/operations.md says so) and the next
	// listing proves them again, without an alarm.
	for _, id := range []string{"exp-1", "exp-2"} {
		if _, ok := live[id]; ok {
			t.Fatalf("%s: the live runs kept %+v; want it proven by run 2", id, live[id])
		}
		if _, ok := rebuilt[id]; !ok {
			t.Fatalf("%s: not rebuilt", id)
		}
		delete(rebuilt, id)
	}
	for id, c := range live {
		r, ok := rebuilt[id]
		if !ok {
			t.Errorf("%s: the live runs kept %s, the catch-up nothing", id, recordJSON(t, c))
			continue
		}
		sameTime(id, "at", c.RunID, &r.At, &c.At)
		sameTime(id, "stillListed", c.LastRun, r.StillListed, c.StillListed)
		sameTime(id, "lastSeen", c.LastRun, r.LastSeen, c.LastSeen)
		if got, want := recordJSON(t, r), recordJSON(t, c); got != want {
			t.Errorf("%s:\n rebuilt %s\n live    %s", id, got, want)
		}
	}
	for id, r := range rebuilt {
		if _, ok := live[id]; !ok {
			t.Errorf("%s: the catch-up rebuilt %s, the live runs kept nothing", id, recordJSON(t, r))
		}
	}

	// The next run past the margin judges the rebuilt records as it would
	// have the live ones: the re-sent deletes and the patch proven now
	// (the tenant no longer lies), the expires proven again.
	p.clock.Advance(janitor.SettleMargin + time.Minute)
	res3, err := p.engine(func(o *janitor.Options) { o.Proofs = p.st; o.Now = tick }).Run(context.Background(), janitor.RunInput{})
	if err != nil {
		t.Fatalf("run 3: %v", err)
	}
	if len(res3.Unproven) != 0 || len(p.confirmed()) != 0 {
		t.Fatalf("run 3: not in effect %+v, records left %+v; want every change proven", res3.Unproven, p.confirmed())
	}
}

// The differential of the API client records: a disable, then (past
// disabledFor) the delete, each rebuilt by the catch-up from a store
// restored from before it, compared with what the run stored.
func TestCatchUpRebuildsWhatTheClientRunsStored(t *testing.T) {
	p := newClientProofEnv(t)
	stPath := p.store.Path()
	reopen := func(data []byte) {
		t.Helper()
		_ = p.journal.Close()
		_ = p.store.Close()
		if data != nil {
			if err := os.WriteFile(stPath, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		st, err := state.Open(stPath, state.Options{Clock: p.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		p.store = st
		p.hook, p.d = iamTeamDispatcher(t, p.clientEnv) // its outbox is the store
		j, err := audit.Open(p.jpath, audit.Options{Clock: p.clock.Now, Anchors: st.AnchorOf("journal.jsonl"), Tail: janitor.NewCatchUp(st, p.logger)})
		if err != nil {
			t.Fatalf("open journal: %v", err)
		}
		t.Cleanup(func() { _ = j.Close() })
		p.journal = j
	}
	backup := func() []byte {
		t.Helper()
		reopen(nil)
		_ = p.journal.Close()
		_ = p.store.Close()
		data, err := os.ReadFile(stPath)
		if err != nil {
			t.Fatal(err)
		}
		reopen(nil)
		return data
	}
	compare := func(stage string, live, rebuilt map[string]state.Confirmed) {
		t.Helper()
		if len(live) == 0 {
			t.Fatalf("%s: the run kept no records", stage)
		}
		for id, c := range live {
			if got, want := recordJSON(t, rebuilt[id]), recordJSON(t, c); got != want {
				t.Errorf("%s, %s:\n rebuilt %s\n live    %s", stage, id, got, want)
			}
		}
		for id, r := range rebuilt {
			if _, ok := live[id]; !ok {
				t.Errorf("%s, %s: the catch-up rebuilt %s, the run kept nothing", stage, id, recordJSON(t, r))
			}
		}
	}

	before := backup()
	if _, err := p.runAt(t0); err != nil {
		t.Fatalf("run 1: %v", err)
	}
	live := p.records()
	if c := live[cTarget]; c.Action != "disable" {
		t.Fatalf("run 1 kept %+v; want the disable of %s", live, cTarget)
	}
	afterDisable := backup()
	reopen(before)
	compare("disable", live, p.records())

	reopen(afterDisable)
	if _, err := p.runAt(t0.Add(15 * day)); err != nil {
		t.Fatalf("run 2: %v", err)
	}
	live = p.records()
	if c := live[cTarget]; c.Action != "delete" {
		t.Fatalf("run 2 kept %+v; want the delete of %s", live, cTarget)
	}
	reopen(afterDisable)
	compare("delete", live, p.records())
}
