package janitor_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/state"
)

// crashOutcomes counts the journal's outcomes that close an interrupted
// intent, by token id.
func crashOutcomes(recs []audit.Record) map[string]int {
	out := map[string]int{}
	for _, r := range recs {
		if r.Kind == audit.KindOutcome && r.Outcome != nil &&
			(r.Outcome.Status == janitor.StatusGoneAfterCrash || r.Outcome.Status == janitor.StatusPresentAfterCrash) {
			out[r.TokenID]++
		}
	}
	return out
}

// TestOpenIntentsResolvedOnceByOneEngine: the engine reads the intents still
// open from the journal at every run, so one Engine serves many runs: the
// first run after a crash resolves the interrupted intents, the next run of
// the same Engine neither resolves them again (no second outcome in the
// journal) nor sends anything for them.
func TestOpenIntentsResolvedOnceByOneEngine(t *testing.T) {
	e := newEnv(t, enforceDeleteStale, envOpts{})
	e.addStale("s", 2, 1)
	ctx := context.Background()
	dead := "20261125T030000Z-dead0000"
	tok := func(id string) *pat.Token { t, _ := e.sim.Token(id); return &t }
	for _, r := range []audit.Record{
		{Kind: audit.KindRunStart, RunID: dead},
		{Kind: audit.KindIntent, RunID: dead, Policy: "unused-90d", TokenID: "s-000", Before: tok("s-000"),
			Request: &audit.Request{Method: "DELETE", Path: api.TokenPath(pat.V3, "s-000")}},
	} {
		if _, err := e.journal.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	e.sim.Remove("s-000") // the interrupted delete went through
	e.openJournal()       // a new process opens the journal
	e.sim.ResetRequests()

	eng := e.engine()
	res, err := eng.Run(ctx, janitor.RunInput{})
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	if len(res.Recovered) != 1 || res.Recovered[0].Intent.TokenID != "s-000" || !res.Recovered[0].Gone {
		t.Fatalf("first run recovered %+v, want s-000 gone", res.Recovered)
	}
	if !mapKeysEqual(deletedIDs(e.sim.Requests()), "s-001") {
		t.Fatalf("first run deleted %v, want s-001", deletedIDs(e.sim.Requests()))
	}

	e.sim.ResetRequests()
	res, err = eng.Run(ctx, janitor.RunInput{})
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if len(res.Recovered) != 0 {
		t.Errorf("second run of the same engine recovered %+v again", res.Recovered)
	}
	if reqs := e.sim.Requests(); len(deletedIDs(reqs)) != 0 {
		t.Errorf("second run deleted %v", deletedIDs(reqs))
	}
	if got := crashOutcomes(e.journalRecords()); len(got) != 1 || got["s-000"] != 1 {
		t.Errorf("outcomes closing interrupted intents: %v, want one for s-000", got)
	}
}

// TestOpenIntentsLeftByAFailedJournalResolvedNextRun: a run whose journal
// failed after an intent (the request went out, its outcome was not
// written) leaves that intent open; the next run in the same process, with
// no reopening of the journal, resolves it against its listing and does not
// send the delete again.
func TestOpenIntentsLeftByAFailedJournalResolvedNextRun(t *testing.T) {
	e := newEnv(t, enforceDeleteStale, envOpts{})
	e.addStale("s", 1, 1)
	ctx := context.Background()
	fj := newFailingJournal(e.journal, 2) // run-start and the intent
	_, err := e.engine(func(o *janitor.Options) { o.Journal = fj; o.Workers = 1 }).Run(ctx, janitor.RunInput{})
	var jerr *janitor.JournalError
	if !errors.As(err, &jerr) {
		t.Fatalf("err = %v, want *JournalError", err)
	}
	if !mapKeysEqual(deletedIDs(e.sim.Requests()), "s-000") {
		t.Fatalf("failed run deleted %v, want s-000 (its intent was written)", deletedIDs(e.sim.Requests()))
	}

	e.sim.ResetRequests()
	res, err := e.engine().Run(ctx, janitor.RunInput{})
	if err != nil {
		t.Fatalf("next run: %v", err)
	}
	if len(res.Recovered) != 1 || res.Recovered[0].Intent.TokenID != "s-000" || !res.Recovered[0].Gone {
		t.Fatalf("next run recovered %+v, want s-000 gone", res.Recovered)
	}
	if reqs := e.sim.Requests(); len(deletedIDs(reqs)) != 0 {
		t.Errorf("next run deleted %v again", deletedIDs(reqs))
	}
	if got := crashOutcomes(e.journalRecords()); got["s-000"] != 1 {
		t.Errorf("outcomes closing interrupted intents: %v, want one for s-000", got)
	}
	if open, err := e.journal.OpenIntents(); err != nil || len(open) != 0 {
		t.Errorf("open intents after the next run: %v (%v)", open, err)
	}
}

// TestRunInputIsTheRunsOnly: a run's input (here the state store's
// snoozes, as serve opens the store per run) serves that run only; the
// Engine is not changed by it, so its next run without the store sees no
// snooze and acts.
func TestRunInputIsTheRunsOnly(t *testing.T) {
	e := newEnv(t, enforceDeleteStale, envOpts{})
	e.addStale("s", 2, 1)
	st, err := state.Open(filepath.Join(t.TempDir(), state.FileName), state.Options{Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	for _, id := range []string{"s-000", "s-001"} {
		if _, err := st.PutSnooze(ctx, state.Snooze{TokenID: id, Until: t0.Add(30 * day), Reason: "migration"}); err != nil {
			t.Fatal(err)
		}
	}
	eng := e.engine()
	res, err := eng.Run(ctx, janitor.RunInput{Snoozes: st})
	if err != nil {
		t.Fatalf("run with the store: %v", err)
	}
	if len(res.Plan.Skipped) != 2 || len(deletedIDs(e.sim.Requests())) != 0 {
		t.Fatalf("run with the store: skipped %+v, deleted %v; want both snoozed, none deleted", res.Plan.Skipped, deletedIDs(e.sim.Requests()))
	}
	if _, err := eng.Run(ctx, janitor.RunInput{}); err != nil {
		t.Fatalf("run without the store: %v", err)
	}
	if !mapKeysEqual(deletedIDs(e.sim.Requests()), "s-000", "s-001") {
		t.Errorf("run without the store deleted %v, want both: the first run's input stayed in the engine", deletedIDs(e.sim.Requests()))
	}
}
