package cli

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
)

// `audit show` of the run that found a confirmed delete not in effect
// prints the outcome's note: which run was confirmed and when (the outcome
// line names only the token and the status). On the old code the note was
// not printed, and a reviewer of that run could not tell which change it was
// about. The note of the run that finally proves the delete is printed too.
func TestAuditShowPrintsTheOutcomeNote(t *testing.T) {
	var lie atomic.Bool
	lie.Store(true)
	e := newWFWrapped(t, wfPolicies, idnsim.Options{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if lie.Load() && r.Method == http.MethodDelete && strings.Contains(r.URL.Path, "/personal-access-tokens/") {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply 1: exit %d\n%s", code, stderr)
	}
	backdateConfirmed(t, e.state, time.Hour)
	confirmed := e.outcomesOf("stale-1", string(janitor.OutcomeApplied))
	if len(confirmed) != 1 {
		t.Fatalf("applied outcomes %+v", confirmed)
	}
	if code, _, _ := e.run(nil, "apply", "--auto-approve"); code != 1 {
		t.Fatalf("apply 2: exit %d; want 1 (the delete not in effect)", code)
	}
	lies := e.outcomesOf("stale-1", janitor.StatusNotInEffect)
	if len(lies) != 1 {
		t.Fatalf("not-in-effect outcomes %+v", lies)
	}
	_, stdout, _ := e.run(nil, "audit", "show", lies[0].RunID)
	want := "note     confirmed delete of run " + confirmed[0].RunID + " at "
	if !strings.Contains(stdout, want) || !strings.Contains(stdout, "not in effect\n") {
		t.Fatalf("audit show of the run that found it:\n%s\nwant a line %q…", stdout, want)
	}

	// The proxy is gone: apply 3 finds the repeat not in effect too and
	// deletes; apply 4 proves it, and its audit show says so.
	lie.Store(false)
	backdateConfirmed(t, e.state, time.Hour)
	e.run(nil, "apply", "--auto-approve")
	if e.present("stale-1") {
		t.Fatal("the honest delete did not happen")
	}
	backdateConfirmed(t, e.state, time.Hour)
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply 4: exit %d\n%s", code, stderr)
	}
	proven := e.outcomesOf("stale-1", janitor.StatusInEffect)
	if len(proven) != 1 {
		t.Fatalf("in-effect outcomes %+v", proven)
	}
	_, stdout, _ = e.run(nil, "audit", "show", proven[0].RunID)
	if !strings.Contains(stdout, "outcome    stale-1  in-effect (HTTP 204)\n") || !strings.Contains(stdout, "note     the delete confirmed in run ") ||
		!strings.Contains(stdout, "is in effect now (found not in effect since ") {
		t.Fatalf("audit show of the run that proved it:\n%s", stdout)
	}
}

// A note is printed escaped, as every other text of a record: a note holds
// ids the tenant chose (a run resolving an interrupted intent, a token id
// in future notes), and a terminal must not run what it holds.
func TestHostileAuditShowEscapesTheNote(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, JournalFile)
	j, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const run = "20261205T000000Z-deadbeef"
	for _, r := range []audit.Record{
		{Kind: audit.KindRunStart, RunID: run, Note: "0 actions"},
		{Kind: audit.KindOutcome, RunID: run, Policy: "p", TokenID: "tok-1", Outcome: &audit.Outcome{Status: janitor.StatusNotInEffect, Code: 204},
			Note: "confirmed delete of run \x1b]0;owned\x07 at " + pat.FormatTime(time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)) + "\nnot in effect\u202e"},
		{Kind: audit.KindRunEnd, RunID: run, Note: "done"},
	} {
		if _, err := j.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	e := newWF(t, wfPolicies, idnsim.Options{})
	code, stdout, stderr := e.run(nil, "audit", "show", "--journal", path, run)
	if code != 0 {
		t.Fatalf("audit show: exit %d\n%s", code, stderr)
	}
	if strings.ContainsAny(stdout, "\x1b\x07\u202e") {
		t.Fatalf("audit show printed the note's control characters raw:\n%q", stdout)
	}
	if !strings.Contains(stdout, `note     confirmed delete of run \x1b]0;owned\x07 at 2026-12-04T00:00:00.000Z\nnot in effect\u202e`) {
		t.Fatalf("audit show:\n%s", stdout)
	}
}

// outcomesOf reads the journal's outcomes of a token with status.
func (e *wfEnv) outcomesOf(tokenID, status string) []audit.Record {
	e.t.Helper()
	var out []audit.Record
	if _, err := audit.VerifyPath(filepath.Join(e.state, JournalFile), audit.VerifyOptions{Each: func(r audit.Record) error {
		if r.Kind == audit.KindOutcome && r.TokenID == tokenID && r.Outcome != nil && r.Outcome.Status == status {
			out = append(out, r)
		}
		return nil
	}}); err != nil {
		e.t.Fatal(err)
	}
	return out
}
