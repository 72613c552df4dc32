package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/state"
)

// copyStateFile copies the state store under stateDir to dst, or back: a
// backup taken, or restored, while nothing runs.
func copyStateFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// backupState copies the state store aside (a backup taken while nothing
// runs) and returns the restore of that backup over the store.
func (e *wfEnv) backupState() (restore func()) {
	e.t.Helper()
	storePath := filepath.Join(e.state, state.FileName)
	backup := filepath.Join(e.dir, "state.db.backup")
	copyStateFile(e.t, storePath, backup)
	return func() {
		e.t.Helper()
		copyStateFile(e.t, backup, storePath)
	}
}

// mustRun runs a step the test builds on (a snooze, an unsnooze), failing
// the test with the command, its exit code and its output when it fails.
func (e *wfEnv) mustRun(args ...string) {
	e.t.Helper()
	if code, stdout, stderr := e.run(nil, args...); code != 0 {
		e.t.Fatalf("%s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
	}
}

// The state store is backed up, a signed plan is applied, and the store is
// restored from that backup (a disk incident; the journal, append-only,
// was kept). The old code had forgotten the execution with the store, and
// applying the same signed plan again re-sent its expire without any new
// approval, undoing the owner's extension since. Now the apply's open of
// the journal rebuilds the execution from the journal's records after the
// restored store's anchor: the plan is refused as executed by the first
// run, nothing is sent, and the journal records the refusal and why.
func TestHostileRestoredStateReplaysSignedPlan(t *testing.T) {
	e := newWF(t, replayPolicies, idnsim.Options{})
	r, _ := newReviewers(t, e.dir)
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.add("keep-1", "o2", 400*wfDay, wfDay)
	// The store exists (with the journal's anchor) before the plan: a
	// snooze made it.
	e.mustRun("snooze", "keep-1", "--for", "30d", "--reason", "kept", "--by", "ops")
	restore := e.backupState()

	planFile, saved := e.signedPlan(r)
	if code, stdout, stderr := e.run(nil, "apply", planFile, "--auto-approve"); code != 0 {
		t.Fatalf("first apply: %d\n%s%s", code, stdout, stderr)
	}
	if n := len(bulkUpdates(e.sim.Requests())); n != 1 {
		t.Fatalf("first apply sent %d bulk updates, want 1", n)
	}
	journal := filepath.Join(e.state, JournalFile)
	first := journalRuns(t, journal)
	if len(first) != 1 || first[0].Plan.Refused != "" {
		t.Fatalf("journal after the first apply: %+v", first)
	}

	restore() // state.db from the backup
	extended := time.Now().Add(365 * wfDay).UTC().Truncate(time.Millisecond)
	extendExpiration(t, e.sim, "stale-1", extended)

	code, stdout, stderr := e.run(nil, "apply", planFile, "--auto-approve")
	if n := len(bulkUpdates(e.sim.Requests())); n != 1 {
		t.Fatalf("the apply after the restore re-sent the expire (%d bulk updates); expirationDate now %s, the owner's extension was %s",
			n, expirationOf(t, e.sim, "stale-1"), extended)
	}
	if m := idnsim.Mutations(e.sim.Requests()); len(m) != 1 {
		t.Fatalf("%d mutations, want the first apply's one", len(m))
	}
	if code != 1 || !strings.Contains(stderr, "plan "+saved.PlanHash+" was already executed, by run "+first[0].RunID+" at ") {
		t.Fatalf("apply after the restore: %d\n%s%s", code, stdout, stderr)
	}
	if got := expirationOf(t, e.sim, "stale-1"); !got.Equal(extended) {
		t.Fatalf("expirationDate %s, want the extended %s kept", got, extended)
	}
	runs := journalRuns(t, journal)
	if len(runs) != 2 || runs[1].Plan.PlanHash != saved.PlanHash ||
		!strings.Contains(runs[1].Plan.Refused, "already executed, by run "+first[0].RunID) {
		t.Fatalf("journal plan runs %+v; want the execution and the refusal naming it", runs)
	}
	e.mustRun("audit", "verify")
}

// A token is snoozed (an operator exempted it from every policy), and then
// state.db is restored from a backup taken before the snooze; the journal,
// append-only, holds the snooze. The old catch-up rebuilt the executed plans
// and confirmed changes but not the snooze: the next apply deleted the
// exempted token. Now the apply's open of the journal rebuilds the snooze
// from the journal's snooze record: the token is skipped as snoozed until
// the journaled end, nothing is sent for it, and `snoozes` lists it again.
func TestHostileRestoredStateForgetsSnooze(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.add("fresh-1", "o2", 10*wfDay, wfDay)
	// The store exists, with the journal's anchor, before the backup.
	e.mustRun("snooze", "fresh-1", "--for", "30d", "--reason", "kept", "--by", "ops")
	restore := e.backupState()

	e.mustRun("snooze", "stale-1", "--for", "30d", "--reason", "vendor migration", "--by", "alice")
	var until time.Time
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindSnooze && r.TokenID == "stale-1" {
			until = *r.Until
		}
	}
	restore() // state.db from the backup

	code, stdout, stderr := e.run(nil, "apply", "--auto-approve")
	if m := e.mutations(); len(m) != 0 {
		t.Fatalf("the apply after the restore acted on the snoozed token: %v\n%s%s", e.deletedPaths(), stdout, stderr)
	}
	if code != 0 || !e.present("stale-1") {
		t.Fatalf("apply after the restore: %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = e.run(nil, "snoozes", "-o", "json")
	if code != 0 || !strings.Contains(stdout, `"tokenId": "stale-1"`) || !strings.Contains(stdout, pat.FormatTime(until)) {
		t.Fatalf("snoozes after the catch-up: %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = e.run(nil, "plan")
	if code != 0 || !strings.Contains(stdout, "snoozed until "+pat.FormatTime(until)) {
		t.Fatalf("plan after the catch-up does not skip stale-1 as snoozed: %d\n%s%s", code, stdout, stderr)
	}
	e.mustRun("audit", "verify")
}

// The other direction, in journal order: a token snoozed before the backup
// is unsnoozed after it, and the store restored. The operator ended the
// exemption; the restored store still held it. The catch-up ends it again
// (the unsnooze's record, whose end is its own time): the policy deletes the
// token, as it would have without the restore.
func TestRestoredStateForgetsUnsnooze(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.mustRun("snooze", "stale-1", "--for", "30d", "--reason", "kept", "--by", "ops")
	restore := e.backupState()
	// Snoozed again (another end), then unsnoozed: the last word counts.
	e.mustRun("snooze", "stale-1", "--for", "60d", "--reason", "longer", "--by", "ops")
	e.mustRun("unsnooze", "stale-1", "--reason", "migrated", "--by", "ops")
	restore()

	code, stdout, stderr := e.run(nil, "apply", "--auto-approve")
	if code != 0 || e.present("stale-1") {
		t.Fatalf("apply after the restore left the unsnoozed token: %d %v\n%s%s", code, e.deletedPaths(), stdout, stderr)
	}
	if got := e.deletedPaths(); len(got) != 1 || !strings.Contains(got[0], "stale-1") {
		t.Fatalf("mutations %v, want the one DELETE of stale-1", got)
	}
}

// `audit reanchor` on a store restored from a backup (the journal kept):
// the journal matches the restored anchor, only it goes on past it. The
// old reanchor deleted the anchor first and anchored the journal afresh,
// so the records after the restored anchor were never handed to the
// catch-up: the snooze made after the backup was lost for good, and the
// next apply deleted the exempted token. Now reanchor first opens the
// journal at the anchor it finds, which catches the store up, and only
// then resets the anchor: the snooze is back and nothing is sent.
func TestHostileReanchorOnRestoredStoreKeepsTheTail(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.add("fresh-1", "o2", 10*wfDay, wfDay)
	e.mustRun("snooze", "fresh-1", "--for", "30d", "--reason", "kept", "--by", "ops")
	restore := e.backupState()
	e.mustRun("snooze", "stale-1", "--for", "30d", "--reason", "vendor migration", "--by", "alice")
	restore()

	if code, stdout, stderr := e.run(nil, "audit", "reanchor", "--reason", "restored state.db from the nightly backup"); code != 0 {
		t.Fatalf("reanchor: %d\n%s%s", code, stdout, stderr)
	}
	resets := 0
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindAnchorReset {
			resets++
		}
	}
	if resets != 1 {
		t.Fatalf("%d anchor-reset records, want the reanchor's one", resets)
	}
	code, stdout, stderr := e.run(nil, "apply", "--auto-approve")
	if m := e.mutations(); len(m) != 0 || code != 0 {
		t.Fatalf("the apply after the reanchor acted on the snoozed token: %d %v\n%s%s", code, e.deletedPaths(), stdout, stderr)
	}
	e.mustRun("audit", "verify")
}

// `audit reanchor` on a journal whose end is a torn record. A journal cut
// at an arbitrary byte (a disk incident, a copy that stopped short) is
// short of its anchor and, most often, ends in part of a line: every
// command refuses the journal for the anchor, and reanchor, the way out,
// refused it for the torn line ("only a journal whose chain verifies can be
// reanchored"), which only an open removes: no command could use the
// journal again short of editing it by hand. And a store restored from a
// backup whose journal goes on past the anchor, ending in a record torn by
// a crash: reanchor refused it too, where it could catch the store up.
// Now reanchor accepts a torn final record (never a changed one): the open
// removes it, keeping its bytes beside the journal, the anchor-reset
// record says so, and the runs go on.
func TestHostileReanchorJournalEndingInATornRecord(t *testing.T) {
	for _, tc := range []struct {
		name    string
		restore bool // the store restored from before a snooze of stale-1
		damage  func([]byte) []byte
	}{
		{"cut mid-record", false, func(d []byte) []byte { return d[:len(d)-40] }},
		{"restored store, torn by a crash", true, func(d []byte) []byte { return append(d, `{"seq":99,"time":"2026-`...) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newWF(t, wfPolicies, idnsim.Options{})
			e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
			e.add("stale-2", "o2", 400*wfDay, 200*wfDay)
			e.mustRun("snooze", "stale-2", "--for", "30d", "--reason", "kept", "--by", "ops")
			restore := e.backupState()
			if tc.restore {
				e.mustRun("snooze", "stale-1", "--for", "30d", "--reason", "vendor migration", "--by", "alice")
				restore()
			} else {
				e.mustRun("unsnooze", "stale-2", "--reason", "done", "--by", "ops")
			}
			jpath := filepath.Join(e.state, JournalFile)
			data, err := os.ReadFile(jpath)
			if err != nil {
				t.Fatal(err)
			}
			damaged := tc.damage(data)
			if err := os.WriteFile(jpath, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			if code, out, stderr := e.run(nil, "audit", "reanchor", "--reason", "disk incident INC-7"); code != 0 {
				t.Fatalf("reanchor: exit %d\n%s%s", code, out, stderr)
			}
			torn, _ := filepath.Glob(jpath + ".torn-*")
			if len(torn) != 1 {
				t.Fatalf("torn files %v, want the removed bytes kept in one", torn)
			}
			if b, _ := os.ReadFile(torn[0]); !bytes.HasSuffix(damaged, b) || len(b) == 0 {
				t.Errorf("the torn file holds %q, not the journal's last bytes", b)
			}
			var reset []audit.Record
			for _, r := range e.journalRecords() {
				if r.Kind == audit.KindAnchorReset {
					reset = append(reset, r)
				}
			}
			if len(reset) != 1 || !strings.Contains(reset[0].Note, "disk incident INC-7") || !strings.Contains(reset[0].Note, "torn final record") || !strings.Contains(reset[0].Note, torn[0]) {
				t.Fatalf("anchor-reset records %+v; want one naming the reason and the torn record removed", reset)
			}
			if code, out, stderr := e.run(nil, "audit", "verify"); code != 0 {
				t.Fatalf("audit verify after the reanchor: %d\n%s%s", code, out, stderr)
			}
			code, out, stderr := e.run(nil, "apply", "--auto-approve")
			if code != 0 {
				t.Fatalf("apply after the reanchor: %d\n%s%s", code, out, stderr)
			}
			if tc.restore {
				// The catch-up put stale-1's snooze back; stale-2's holds.
				if m := e.mutations(); len(m) != 0 {
					t.Fatalf("the apply after the reanchor acted on snoozed tokens: %v", e.deletedPaths())
				}
				return
			}
			if got := e.deletedPaths(); len(got) != 2 {
				t.Fatalf("deleted %v, want stale-1 and stale-2 (unsnoozed)", got)
			}
		})
	}
	t.Run("a changed record is refused", func(t *testing.T) {
		e := newWF(t, wfPolicies, idnsim.Options{})
		e.add("stale-2", "o2", 400*wfDay, 200*wfDay)
		e.mustRun("snooze", "stale-2", "--for", "30d", "--reason", "kept", "--by", "ops")
		e.mustRun("snooze", "stale-2", "--for", "40d", "--reason", "longer", "--by", "ops")
		jpath := filepath.Join(e.state, JournalFile)
		data, _ := os.ReadFile(jpath)
		changed := bytes.Replace(data, []byte(`"kept (by ops)"`), []byte(`"gone (by ops)"`), 1)
		if bytes.Equal(changed, data) {
			t.Fatal("no record to change")
		}
		changed = changed[:len(changed)-1] // the first record changed, the last torn: refused
		if err := os.WriteFile(jpath, changed, 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := e.run(nil, "audit", "reanchor", "--reason", "x")
		if code != 1 || !strings.Contains(stderr, "only a journal whose chain verifies") {
			t.Fatalf("reanchor of a changed record: exit %d %s", code, stderr)
		}
		if after, _ := os.ReadFile(jpath); !bytes.Equal(after, changed) {
			t.Fatal("the refused reanchor changed the journal")
		}
	})
}

// The state store is restored from a backup whose journal anchor is in a
// segment archived since (as docs/operations.md has operators archive
// sealed segments). The journal cannot be read from that anchor, so every
// command refuses, changing nothing; the old error said only that the
// segment "cannot be read", `audit verify` said the journal was OK, and
// `audit reanchor`, the way out of an anchor the journal does not match,
// refused too (with no anchor the journal is read from its first
// segment). The error now says why (the store is older than the segments
// beside the journal) and what to do: bring the archived segments back
// from the anchor's on. With them back, the catch-up rebuilds the snooze
// made after the backup, and the tenant receives nothing.
func TestHostileRestoredStateWithItsAnchorInAnArchivedSegment(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	seg := "--journal-segment-size=600"
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	for i := range 3 {
		e.mustRun("snooze", fmt.Sprintf("tok-%d", i), "--offline", "--for", "30d", "--reason", "kept for the vendor migration", seg)
	}
	restore := e.backupState()
	e.mustRun("snooze", "stale-1", "--for", "365d", "--reason", "kept for the vendor migration", "--by", "alice", seg)
	for i := 3; i < 8; i++ {
		e.mustRun("snooze", fmt.Sprintf("tok-%d", i), "--offline", "--for", "30d", "--reason", "kept for the vendor migration", seg)
	}
	restore()
	archive := filepath.Join(e.dir, "archive")
	if err := os.Mkdir(archive, 0o700); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 3; n++ {
		name := fmt.Sprintf("journal-%06d.jsonl", n)
		if err := os.Rename(filepath.Join(e.state, name), filepath.Join(archive, name)); err != nil {
			t.Fatal(err)
		}
	}
	journal := len(e.journalRecords())
	for _, args := range [][]string{{"apply", "--auto-approve", seg}, {"snooze", "tok-9", "--offline", "--for", "1d", "--reason", "r", seg}} {
		code, stdout, stderr := e.run(nil, args...)
		for _, want := range []string{"journal-000003.jsonl is not beside the journal (archived?)", "restored from a backup?", "bring the archived segments back beside the journal, from journal-000003.jsonl on"} {
			if code != 1 || !strings.Contains(stderr, want) {
				t.Fatalf("%s with the anchor's segment archived: exit %d, want an error saying %q\n%s%s", strings.Join(args, " "), code, want, stdout, stderr)
			}
		}
	}
	if len(e.mutations()) != 0 || len(e.journalRecords()) != journal {
		t.Fatalf("the refused commands sent %v, journaled %d records", e.mutations(), len(e.journalRecords())-journal)
	}
	// A record damaged too: state repair says the same, not to reanchor
	// (which would need every segment back).
	putRaw(t, e.state, "deliveries", []byte("o1"), []byte("{damaged"))
	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-16", seg)
	if code != 1 || !strings.Contains(stderr, "from journal-000003.jsonl on") || strings.Contains(stderr, "reanchor") || len(e.repairRecords()) != 0 {
		t.Fatalf("state repair with the anchor's segment archived: exit %d, want a refusal naming the segment to bring back\n%s%s", code, stdout, stderr)
	}
	name := "journal-000003.jsonl"
	if err := os.Rename(filepath.Join(archive, name), filepath.Join(e.state, name)); err != nil {
		t.Fatal(err)
	}
	e.mustRun("state", "repair", "--reason", "INC-16", seg)
	e.mustRun("apply", "--auto-approve", seg)
	if len(e.mutations()) != 0 || !e.present("stale-1") {
		t.Fatalf("the tenant received %v for a token snoozed after the backup", e.mutations())
	}
	var kept bool
	for _, z := range storedSnoozes(t, e.state) {
		kept = kept || (z.TokenID == "stale-1" && z.Reason == "kept for the vendor migration (by alice)")
	}
	if !kept {
		t.Fatalf("snoozes %+v, want stale-1's rebuilt by the catch-up", storedSnoozes(t, e.state))
	}
	e.mustRun("audit", "verify")
}

// audit verify, which an operator runs when every command refuses the
// journal, does not call it OK while the state store's anchor is in a
// segment archived since (a store restored from a backup): it names the
// segment to bring back and exits 1, as every command that opens the
// journal refuses it until then. It said "OK … anchor: seq N is in the
// archived segments, not checked".
func TestHostileAuditVerifyOfARestoredStoreWithItsAnchorArchived(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	seg := "--journal-segment-size=600"
	for i := range 3 {
		e.mustRun("snooze", fmt.Sprintf("tok-%d", i), "--offline", "--for", "30d", "--reason", "kept for the vendor migration", seg)
	}
	restore := e.backupState()
	for i := 3; i < 8; i++ {
		e.mustRun("snooze", fmt.Sprintf("tok-%d", i), "--offline", "--for", "30d", "--reason", "kept for the vendor migration", seg)
	}
	restore()
	for n := 1; n <= 3; n++ {
		if err := os.Remove(filepath.Join(e.state, fmt.Sprintf("journal-%06d.jsonl", n))); err != nil {
			t.Fatal(err)
		}
	}
	journal := len(e.journalRecords())
	code, stdout, stderr := e.run(nil, "audit", "verify")
	for _, want := range []string{"journal-000003.jsonl", "bring the archived segments back beside the journal", "every command that opens the journal refuses it"} {
		if code != 1 || strings.Contains(stdout, ": OK:") || !strings.Contains(stderr, want) {
			t.Fatalf("audit verify with the anchor's segment archived: exit %d, want an error saying %q\n%s%s", code, want, stdout, stderr)
		}
	}
	if code, _, stderr := e.run(nil, "snooze", "tok-9", "--offline", "--for", "1d", "--reason", "r", seg); code != 1 || !strings.Contains(stderr, "journal-000003.jsonl is not beside the journal") {
		t.Fatalf("snooze: exit %d, want the refusal audit verify announced\n%s", code, stderr)
	}
	if len(e.journalRecords()) != journal || len(e.mutations()) != 0 {
		t.Fatal("the refused commands changed something")
	}
}
