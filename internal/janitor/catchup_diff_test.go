package janitor_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/state"
)

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
