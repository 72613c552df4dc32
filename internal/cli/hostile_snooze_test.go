package cli

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/state"
)

// storedSnoozes reads every snooze under stateDir, expired ones too.
func storedSnoozes(t *testing.T, stateDir string) []state.Snooze {
	t.Helper()
	st, err := state.Open(filepath.Join(stateDir, state.FileName), state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	zs, err := st.Snoozes(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	return zs
}

// snoozeRefused runs args, wants exit 1 with want in stderr, and the
// journal and the snoozes as they were.
func (e *wfEnv) snoozeRefused(want string, args ...string) {
	e.t.Helper()
	journal := len(e.journalRecords())
	zs := storedSnoozes(e.t, e.state)
	code, stdout, stderr := e.run(nil, args...)
	if code != 1 || !strings.Contains(stderr, want) {
		e.t.Fatalf("%.80q: exit %d; want 1 saying %q\nstdout:\n%.300s\nstderr:\n%.300s", args, code, want, stdout, stderr)
	}
	if n, zs2 := len(e.journalRecords()), storedSnoozes(e.t, e.state); n != journal || !reflect.DeepEqual(zs2, zs) {
		e.t.Fatalf("%.80q changed the journal (%d records, was %d) or the snoozes (%d, were %d)", args, n, journal, len(zs2), len(zs))
	}
}

// snoozeNotes are the notes of the journal's snooze records of id.
func (e *wfEnv) snoozeNotes(id string) []string {
	e.t.Helper()
	var notes []string
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindSnooze && r.TokenID == id {
			notes = append(notes, r.Note)
		}
	}
	return notes
}

// A snooze too big for a journal record (a reason and a name pasted from a
// binary file, each within the 128 KiB a command-line argument may hold,
// escaped six-fold in JSON) is refused, nothing changed, while serve holds
// the journal and when it does not; so is an unsnooze's. On the old code
// the held snooze was kept, flagged for serve to journal: no run could
// journal it, so every apply refused to start ("nothing was changed") and
// serve never journaled it nor any snooze after it. Within the bounds a
// held snooze is journaled by the next run, which deletes what is not
// snoozed.
func TestHostileOversizedSnoozeIsRefused(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.add("stale-2", "o2", 400*wfDay, 200*wfDay)
	reason := "kept " + strings.Repeat("\x01", 128<<10-5)
	by := strings.Repeat("\x02", 128<<10)
	release := holdJournal(t, e)
	e.snoozeRefused("snooze: the reason (--reason) is 131072 bytes long, at most 4096", "snooze", "stale-1", "--for", "30d", "--reason", reason, "--by", "ops")
	e.snoozeRefused("snooze: who asks (--by) is 131072 bytes long, at most 256", "snooze", "stale-1", "--for", "30d", "--reason", "kept", "--by", by)
	e.snoozeRefused("snooze: the reason (--reason) is 131072 bytes long, at most 4096", "snooze", "stale-1", "--offline", "--for", "30d", "--reason", reason, "--by", by)
	atBounds, byBounds := strings.Repeat("r", 4096), strings.Repeat("b", 256)
	if code, stdout, stderr := e.run(nil, "snooze", "stale-2", "--for", "30d", "--reason", atBounds, "--by", byBounds); code != 0 || !strings.Contains(stdout, "held by a running patjanitor serve") {
		t.Fatalf("snooze at the bounds, journal held: exit %d\n%.300s%.300s", code, stdout, stderr)
	}
	release()
	e.snoozeRefused("snooze: the reason (--reason) is 131072 bytes long, at most 4096", "snooze", "stale-1", "--for", "30d", "--reason", reason)
	e.snoozeRefused("unsnooze: the reason (--reason) is 131072 bytes long, at most 4096", "unsnooze", "stale-2", "--reason", reason)
	e.snoozeRefused("unsnooze: who asks (--by) is 131072 bytes long, at most 256", "unsnooze", "stale-2", "--reason", "done", "--by", by)

	for range 2 {
		if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
			t.Fatalf("apply: exit %d\n%.500s", code, stderr)
		}
	}
	if notes := e.snoozeNotes("stale-2"); !slices.Equal(notes, []string{atBounds + " (by " + byBounds + ")"}) {
		t.Fatalf("stale-2's snooze records: %d, want the one at the bounds", len(notes))
	}
	if got := e.deletedPaths(); len(got) != 1 || !strings.HasSuffix(got[0], "/stale-1") || e.present("stale-1") || !e.present("stale-2") {
		t.Fatalf("tenant received %v; want stale-1 deleted, snoozed stale-2 kept", got)
	}
	if n := len(e.snoozeNotes("stale-1")); n != 0 {
		t.Fatalf("%d snooze records of stale-1, whose snoozes were refused", n)
	}
}

// A state store written by the old version may hold a snooze made while
// serve held the journal, too big for a journal record. The next run
// journals it with the reason and the name clipped, saying so (the store
// keeps them whole), and then the snoozes after it; the snoozed tokens are
// kept. On the old code every apply refused to start on it, and the
// snooze after it was never journaled.
func TestHostileOversizedPendingSnoozeOfAnOlderVersionIsJournaledClipped(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.add("stale-2", "o2", 400*wfDay, 200*wfDay)
	e.add("stale-3", "o3", 400*wfDay, 200*wfDay)
	if err := os.MkdirAll(e.state, 0o700); err != nil {
		t.Fatal(err)
	}
	reason := "kept " + strings.Repeat("\x01", 128<<10-5)
	by := strings.Repeat("\x02", 128<<10)
	st, err := state.Open(filepath.Join(e.state, state.FileName), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(30 * wfDay).UTC()
	for _, z := range []state.Snooze{
		{TokenID: "stale-1", Until: until, Reason: reason, By: by, Unjournaled: true},
		{TokenID: "stale-2", Until: until, Reason: "vendor migration", By: "ops", Unjournaled: true},
	} {
		if _, err := st.PutSnooze(context.Background(), z); err != nil {
			t.Fatal(err)
		}
	}
	_ = st.Close()

	for range 2 {
		if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
			t.Fatalf("apply: exit %d\n%.500s", code, stderr)
		}
	}
	notes := e.snoozeNotes("stale-1")
	if len(notes) != 1 || !strings.HasPrefix(notes[0], "kept \x01") ||
		!strings.Contains(notes[0], "… (reason clipped from 131072 bytes) (by \x02") ||
		!strings.HasSuffix(notes[0], "… (name clipped from 131072 bytes))") || len(notes[0]) > 4096+256+100 {
		t.Fatalf("stale-1's snooze records: %d, want one clipped: %.80q…%.80q", len(notes), notes, notes[0][max(0, len(notes[0])-80):])
	}
	if notes := e.snoozeNotes("stale-2"); !slices.Equal(notes, []string{"vendor migration (by ops)"}) {
		t.Fatalf("stale-2's snooze records: %q", notes)
	}
	if got := e.deletedPaths(); len(got) != 1 || !strings.HasSuffix(got[0], "/stale-3") || !e.present("stale-1") || !e.present("stale-2") {
		t.Fatalf("tenant received %v; want stale-3 deleted, the snoozed kept", got)
	}
	zs := storedSnoozes(t, e.state)
	if len(zs) != 2 || zs[0].Reason != reason || zs[0].By != by || zs[0].Unjournaled || zs[1].Unjournaled {
		t.Fatalf("snoozes stored: %d; want both, whole, journaled", len(zs))
	}
	e.mustRun("audit", "verify")
}

// unsnooze's shell completion offers the snoozed ids a terminal shows as
// they are, and the reasons escaped: the shell prints candidates raw (an
// escape sequence would reach the terminal, a bidi override reorder it) and
// cobra cuts a candidate at a newline (offering another id). On the old
// code ids and reasons went out as they were stored.
func TestHostileUnsnoozeCompletionLeavesOutIdsThatAreNotText(t *testing.T) {
	dir := t.TempDir()
	st, err := state.Open(filepath.Join(dir, state.FileName), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Hour).UTC()
	for _, id := range []string{"ok-1", "evil\x1b]0;pwned\x07", "bidi\u202egnp", "nl\ninjected", "tab\tdesc"} {
		if _, err := st.PutSnooze(context.Background(), state.Snooze{TokenID: id, Until: until, Reason: "why \x1b]0;pwned\x07 \u202e", By: "ops"}); err != nil {
			t.Fatal(err)
		}
	}
	_ = st.Close()
	_, out, _ := runMain(t, "__complete", "--state-dir", dir, "unsnooze", "")
	if strings.ContainsAny(out, "\x1b\x07\u202e") || strings.Contains(out, "nl") || strings.Contains(out, "tab") {
		t.Fatalf("completion offers an id or a reason that is not text:\n%q", out)
	}
	if got := complete(t, "--state-dir", dir, "unsnooze", ""); !slices.Equal(got, []string{"ok-1"}) {
		t.Fatalf("unsnooze completes %q, want ok-1", got)
	}
	if !strings.Contains(out, `ok-1`+"\t"+`why \x1b]0;pwned\x07 \u202e`) {
		t.Fatalf("ok-1's reason not shown escaped:\n%q", out)
	}
}

// enable refuses a reason or a name too long to journal before it asks the
// tenant anything: nothing sent, nothing journaled, the client still
// disabled; within the bounds it is enabled. On the old code a reason of
// 128 KiB of control bytes (786 KB in the journal's JSON) was journaled
// whole and the client enabled; with a name as long, the intent outgrew a
// journal record after a GET of the client, with an error naming neither.
func TestHostileOversizedEnableReasonIsRefused(t *testing.T) {
	e := newWF(t, wfClientPolicies, idnsim.Options{})
	e.sim.AddOAuthClient(apiclient.Client{ID: wfClient, Name: "legacy", Internal: apiclient.Bool(false), Enabled: apiclient.Bool(true),
		Scope: pat.Scopes{Null: true}, Created: time.Now().Add(-400 * wfDay)}, "")
	if code, stdout, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, stdout, stderr)
	}
	journal, requests := len(e.journalRecords()), len(e.sim.Requests())
	reason := "kept " + strings.Repeat("\x01", 128<<10-5)
	for _, c := range []struct{ want, reason, by string }{
		{"enable: the reason (--reason) is 131072 bytes long, at most 4096", reason, "ops"},
		{"enable: who asks (--by) is 131072 bytes long, at most 256", "the ERP still uses it", strings.Repeat("\x02", 128<<10)},
	} {
		code, _, stderr := e.run(nil, "enable", wfClient, "--reason", c.reason, "--by", c.by)
		if code != 1 || !strings.Contains(stderr, c.want) {
			t.Fatalf("enable: exit %d; want 1 saying %q\n%.300s", code, c.want, stderr)
		}
	}
	if n, r := len(e.journalRecords()), len(e.sim.Requests()); n != journal || r != requests {
		t.Fatalf("the refused enables wrote %d journal records and sent %d requests", n-journal, r-requests)
	}
	if c, _ := e.sim.OAuthClient(wfClient); c.IsEnabled() {
		t.Fatal("a refused enable enabled the client")
	}
	if code, _, stderr := e.run(nil, "enable", wfClient, "--reason", strings.Repeat("r", 4096), "--by", strings.Repeat("b", 256)); code != 0 {
		t.Fatalf("enable at the bounds: exit %d\n%.300s", code, stderr)
	}
	if c, _ := e.sim.OAuthClient(wfClient); !c.IsEnabled() {
		t.Fatal("the client is still disabled")
	}
}

// unsnooze prints the id and both reasons escaped, as snoozes does: the id
// is the tenant's spelling, the reasons whoever typed them. On the old code
// they reached the terminal raw.
func TestHostileUnsnoozePrintsTheSnoozeEscaped(t *testing.T) {
	dir := t.TempDir()
	st, err := state.Open(filepath.Join(dir, state.FileName), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := "evil\x1b]0;pwned\x07"
	if _, err := st.PutSnooze(context.Background(), state.Snooze{TokenID: id, Until: time.Now().Add(time.Hour).UTC(), Reason: "why \u202eevil", By: "ops"}); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	code, out, errs := runMain(t, "--state-dir", dir, "unsnooze", id, "--reason", "done\x1b[2J", "--by", "ops")
	if code != 0 || strings.ContainsAny(out, "\x1b\x07\u202e") || !strings.HasPrefix(out, `Unsnoozed evil\x1b]0;pwned\x07 (was snoozed until `) ||
		!strings.HasSuffix(out, `: why \u202eevil): done\x1b[2J`+"\n") {
		t.Fatalf("unsnooze: exit %d\n%q\n%s", code, out, errs)
	}
	if recs := journalRecords(t, filepath.Join(dir, JournalFile)); len(recs) != 1 || recs[0].TokenID != id || recs[0].Note != "unsnoozed: done\x1b[2J (by ops)" {
		t.Fatalf("journal: %+v", recs)
	}
	if zs := storedSnoozes(t, dir); len(zs) != 0 {
		t.Fatalf("snoozes left: %+v", zs)
	}
}

// A snooze made while serve held the journal is journaled by the next
// command that holds it before it changes that snooze: snoozing the token
// again (which replaces it) and unsnoozing it. On the old code the
// replacement and the removal dropped the pending snooze unjournaled: its
// maker was told serve would journal it, and the journal never named it.
func TestHostileSnoozeAgainKeepsThePendingOneInTheJournal(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.add("stale-2", "o2", 400*wfDay, 200*wfDay)
	release := holdJournal(t, e)
	for _, id := range []string{"stale-1", "stale-2"} {
		if code, stdout, stderr := e.run(nil, "snooze", id, "--for", "30d", "--reason", "vendor migration", "--by", "alice"); code != 0 || !strings.Contains(stdout, "held by a running patjanitor serve") {
			t.Fatalf("snooze %s, journal held: exit %d\n%s%s", id, code, stdout, stderr)
		}
	}
	release()
	if code, stdout, stderr := e.run(nil, "snooze", "stale-1", "--for", "60d", "--reason", "migration late", "--by", "bob"); code != 0 {
		t.Fatalf("snooze again: exit %d\n%s%s", code, stdout, stderr)
	}
	if notes := e.snoozeNotes("stale-1"); !slices.Equal(notes, []string{"vendor migration (by alice)", "migration late (by bob)"}) {
		t.Fatalf("stale-1's snooze records %q; want alice's, then bob's", notes)
	}
	// stale-2's was journaled with stale-1's: pending, it was owed too.
	if code, stdout, stderr := e.run(nil, "unsnooze", "stale-2", "--reason", "done", "--by", "bob"); code != 0 {
		t.Fatalf("unsnooze: exit %d\n%s%s", code, stdout, stderr)
	}
	if notes := e.snoozeNotes("stale-2"); !slices.Equal(notes, []string{"vendor migration (by alice)", "unsnoozed: done (by bob)"}) {
		t.Fatalf("stale-2's snooze records %q; want alice's snooze, then its end", notes)
	}
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, stderr)
	}
	if got := e.deletedPaths(); len(got) != 1 || !strings.HasSuffix(got[0], "/stale-2") || !e.present("stale-1") {
		t.Fatalf("tenant received %v; want stale-2 deleted, snoozed stale-1 kept", got)
	}
	if n := len(e.snoozeNotes("stale-1")) + len(e.snoozeNotes("stale-2")); n != 4 {
		t.Fatalf("%d snooze records after apply, want the 4 (nothing journaled twice)", n)
	}
}

// Snoozing a token again while serve holds the journal, before serve's
// next run, keeps the earlier snooze owed to the journal: the run journals
// every one of them, oldest first, once, and the last one is in force. On
// the old code the second snooze replaced the first in the store, flag and
// all, so alice's decision and its reason never reached the journal.
func TestHostileSnoozeAgainWhileServeHoldsTheJournalJournalsEveryOne(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.add("stale-2", "o2", 400*wfDay, 200*wfDay)
	release := holdJournal(t, e)
	for _, s := range []struct{ for_, reason, by string }{
		{"30d", "vendor migration", "alice"}, {"60d", "migration late", "bob"}, {"7d", "shorter after all", "carol"},
	} {
		if code, stdout, stderr := e.run(nil, "snooze", "stale-1", "--for", s.for_, "--reason", s.reason, "--by", s.by); code != 0 || !strings.Contains(stdout, "held by a running patjanitor serve") {
			t.Fatalf("snooze by %s, journal held: exit %d\n%s%s", s.by, code, stdout, stderr)
		}
	}
	release()
	for range 2 { // the second run finds nothing owed
		if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
			t.Fatalf("apply: exit %d\n%s", code, stderr)
		}
	}
	want := []string{"vendor migration (by alice)", "migration late (by bob)", "shorter after all (by carol)"}
	if notes := e.snoozeNotes("stale-1"); !slices.Equal(notes, want) {
		t.Fatalf("stale-1's snooze records %q; want %q", notes, want)
	}
	if got := e.deletedPaths(); len(got) != 1 || !strings.HasSuffix(got[0], "/stale-2") || !e.present("stale-1") {
		t.Fatalf("tenant received %v; want stale-2 deleted, snoozed stale-1 kept", got)
	}
	zs := storedSnoozes(t, e.state)
	if len(zs) != 1 || zs[0].Reason != "shorter after all" || zs[0].Unjournaled {
		t.Fatalf("snoozes stored: %+v; want carol's, journaled", zs)
	}
	e.mustRun("audit", "verify")
}

// The snoozes of a token waiting for serve's next run are bounded: past
// state.MaxPendingSnoozes (16), snooze refuses, saying why and
// what to do, and changes nothing; the ones kept are all journaled by the
// next run. A loop (careless or hostile) cannot grow the store without
// bound while serve waits for its schedule.
func TestHostileSnoozeLoopWhileServeHoldsTheJournalIsBounded(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	release := holdJournal(t, e)
	var want []string
	for i := range state.MaxPendingSnoozes {
		reason := "loop " + strconv.Itoa(i)
		if code, stdout, stderr := e.run(nil, "snooze", "stale-1", "--offline", "--for", "30d", "--reason", reason, "--by", "ops"); code != 0 {
			t.Fatalf("snooze %d, journal held: exit %d\n%s%s", i, code, stdout, stderr)
		}
		want = append(want, reason+" (by ops)")
	}
	e.snoozeRefused("snooze: put snooze stale-1: 16 snoozes of this token wait for a running patjanitor serve to journal them at its next run: too many snoozes wait for the journal (at most 16)",
		"snooze", "stale-1", "--offline", "--for", "30d", "--reason", "one too many", "--by", "ops")
	release()
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, stderr)
	}
	if notes := e.snoozeNotes("stale-1"); !slices.Equal(notes, want) {
		t.Fatalf("stale-1's snooze records %q; want %q", notes, want)
	}
	if got := e.deletedPaths(); len(got) != 0 {
		t.Fatalf("tenant received %v; want nothing deleted", got)
	}
	// Journaled, the queue is empty: snoozing again works.
	if code, stdout, stderr := e.run(nil, "snooze", "stale-1", "--offline", "--for", "30d", "--reason", "after the run", "--by", "ops"); code != 0 {
		t.Fatalf("snooze after the run: exit %d\n%s%s", code, stdout, stderr)
	}
}

// A crash while a run journals the snoozes owed to it, after the record
// of a replaced one (alice's) reached the journal and before the anchor
// that follows it reached the state store, leaves that record after the
// anchor: the next open hands it to the catch-up. The catch-up took it for
// the token's newest word and wrote alice's snooze over the store's, bob's
// made after it: bob's decision was gone, never journaled, and alice's end
// was in force. The catch-up now sees that the store still owes that
// record (and bob's after it): it keeps the store's snooze, records
// alice's as journaled (the tail holds it), and the run journals bob's.
func TestHostileCrashWhileJournalingAReplacedSnoozeKeepsTheNewerOne(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.add("stale-2", "o2", 400*wfDay, 200*wfDay)
	release := holdJournal(t, e)
	for _, s := range []struct{ for_, reason, by string }{
		{"30d", "vendor migration", "alice"}, {"60d", "migration late", "bob"},
	} {
		if code, stdout, stderr := e.run(nil, "snooze", "stale-1", "--for", s.for_, "--reason", s.reason, "--by", s.by); code != 0 {
			t.Fatalf("snooze by %s, journal held: exit %d\n%s%s", s.by, code, stdout, stderr)
		}
	}
	release()
	owed := storedSnoozes(t, e.state)
	if len(owed) != 1 || len(owed[0].Pending) != 1 || owed[0].By != "bob" {
		t.Fatalf("snoozes stored: %+v; want bob's owing alice's", owed)
	}
	bobUntil := owed[0].Until
	// The run's journalSnoozes appended alice's record; the process died
	// before the anchor after it was stored (a journal without the store).
	j, err := audit.Open(filepath.Join(e.state, JournalFile), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append(context.Background(), snoozeRecord(owed[0].Pending[0])); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, stderr)
	}
	want := []string{"vendor migration (by alice)", "migration late (by bob)"}
	if notes := e.snoozeNotes("stale-1"); !slices.Equal(notes, want) {
		t.Fatalf("stale-1's snooze records %q; want %q (each once, in order)", notes, want)
	}
	zs := storedSnoozes(t, e.state)
	if len(zs) != 1 || zs[0].By != "bob" || !zs[0].Until.Equal(bobUntil) || zs[0].Unjournaled || len(zs[0].Pending) != 0 {
		t.Fatalf("snoozes stored: %+v; want bob's (until %s), journaled", zs, bobUntil)
	}
	if got := e.deletedPaths(); len(got) != 1 || !strings.HasSuffix(got[0], "/stale-2") || !e.present("stale-1") {
		t.Fatalf("tenant received %v; want stale-2 deleted, snoozed stale-1 kept", got)
	}
	e.mustRun("audit", "verify")
}
