package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/state"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// putRaw writes value under key in bucket of the store under stateDir with
// bolt itself, as a damaged disk, a bad restore or an older or newer
// patjanitor leaves it.
func putRaw(t *testing.T, stateDir, bucket string, key, value []byte) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(stateDir, state.FileName), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(bucket))
		if err != nil {
			return err
		}
		return b.Put(key, value)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// undecodableNow lists the records of the store under stateDir that do not
// decode.
func undecodableNow(t *testing.T, stateDir string) []state.BadRecord {
	t.Helper()
	st, err := state.Open(filepath.Join(stateDir, state.FileName), state.Options{Repairing: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	bad, err := st.Undecodable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return bad
}

// quarantined lists the store's quarantine bucket.
func quarantined(t *testing.T, stateDir string) []state.Quarantined {
	t.Helper()
	st, err := state.Open(filepath.Join(stateDir, state.FileName), state.Options{Repairing: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	qs, lost, err := st.QuarantinedSince(context.Background(), state.RepairMark{})
	if err != nil || lost != 0 {
		t.Fatalf("the quarantine: %d records that do not decode, %v", lost, err)
	}
	return qs
}

// repairRecords are the journal's state-repair records.
func (e *wfEnv) repairRecords() []audit.Record {
	e.t.Helper()
	var out []audit.Record
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindStateRepair {
			out = append(out, r)
		}
	}
	return out
}

// wantNamesRecord checks that a command's error names the store file, the
// bucket, the key and the way out.
func wantNamesRecord(t *testing.T, what, stderr, storePath, bucket, key string) {
	t.Helper()
	for _, want := range []string{storePath, `bucket "` + bucket + `"`, key, "patjanitor state repair --reason"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("%s: the error does not name %q:\n%s", what, want, stderr)
		}
	}
}

// signedPlan makes a plan and has alice and bob approve it.
func (e *wfEnv) signedPlan(r reviewers) (file string, saved *plan.Plan) {
	e.t.Helper()
	file = filepath.Join(e.dir, "plan.json")
	for _, args := range [][]string{{"plan", "--out", file}, {"approve", file, "--key", r.alice}, {"approve", file, "--key", r.bob}} {
		e.mustRun(args...)
	}
	_, saved, err := plan.ReadFile(file)
	if err != nil {
		e.t.Fatal(err)
	}
	return file, saved
}

// A signed plan is applied; then the record of its execution in state.db
// stops decoding (a damaged disk). Every apply of the plan fails closed,
// naming the store, the bucket, the key and `state repair`; the repair
// journals the record's move, moves its bytes to the quarantine bucket and
// rebuilds the execution from the journal: the same plan is refused as
// executed by the first run, and the tenant receives nothing more.
func TestHostileRepairedExecutedPlanIsStillRefused(t *testing.T) {
	e := newWF(t, replayPolicies, idnsim.Options{})
	r, _ := newReviewers(t, e.dir)
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	file, saved := e.signedPlan(r)
	e.mustRun("apply", file, "--auto-approve")
	if n := len(e.mutations()); n != 1 {
		t.Fatalf("the first apply sent %d mutations, want 1", n)
	}
	first := journalRuns(t, filepath.Join(e.state, JournalFile))
	if len(first) != 1 {
		t.Fatalf("journal runs %+v", first)
	}
	key := strings.ToLower(saved.PlanHash)
	putRaw(t, e.state, "executed-plans", []byte(key), []byte(`{"planHash":`))
	storePath := filepath.Join(e.state, state.FileName)

	code, _, stderr := e.run(nil, "apply", file, "--auto-approve")
	if code != 1 {
		t.Fatalf("apply with the damaged record: exit %d, want 1\n%s", code, stderr)
	}
	wantNamesRecord(t, "apply", stderr, storePath, "executed-plans", key)
	if n := len(e.mutations()); n != 1 {
		t.Fatalf("the apply with a damaged record sent %d mutations more", n-1)
	}

	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "disk incident INC-7", "--by", "ops")
	if code != 0 {
		t.Fatalf("state repair: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{`bucket "executed-plans", key "` + key + `"`, "rebuilt from the journal", "1 record(s) moved", "1 rebuilt"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("state repair's output lacks %q:\n%s", want, stdout)
		}
	}
	if bad := undecodableNow(t, e.state); len(bad) != 0 {
		t.Fatalf("after the repair: %d undecodable records", len(bad))
	}
	qs := quarantined(t, e.state)
	if len(qs) != 1 || qs[0].Bucket != "executed-plans" || string(qs[0].Key) != key || string(qs[0].Value) != `{"planHash":` || qs[0].Reason != "disk incident INC-7" || qs[0].By != "ops" {
		t.Fatalf("quarantine %+v, want the record's bytes whole with the reason", qs)
	}

	code, stdout, stderr = e.run(nil, "apply", file, "--auto-approve")
	if code != 1 || !strings.Contains(stderr, "plan "+saved.PlanHash+" was already executed, by run "+first[0].RunID) {
		t.Fatalf("apply after the repair: exit %d, want the plan refused as executed by run %s\n%s%s", code, first[0].RunID, stdout, stderr)
	}
	if n := len(e.mutations()); n != 1 {
		t.Fatalf("after the repair the plan was applied again: %d mutations, want the first apply's 1", n)
	}
	reps := e.repairRecords()
	if len(reps) != 1 || reps[0].Seq != qs[0].JournalSeq {
		t.Fatalf("state-repair records %+v, want one, the quarantine's (seq %d)", reps, qs[0].JournalSeq)
	}
	for _, want := range []string{`"executed-plans"`, key, "sha256 " + qs[0].SHA256, "disk incident INC-7 (by ops)"} {
		if !strings.Contains(reps[0].Note, want) {
			t.Errorf("the repair's journal record lacks %q: %s", want, reps[0].Note)
		}
	}
	e.mustRun("audit", "verify")
}

// The state store is restored from a backup taken before an apply that
// deleted a token (the journal, append-only, holds the apply's records
// past the restored store's anchor), and a confirmed change in the store
// does not decode. The journal's catch-up, which every command that opens
// the journal runs first, reads the confirmed changes and fails: on the
// old code every such command failed, `audit reanchor` included, with an
// error that named no way out. `state repair` is the way out: it moves the
// record aside, the catch-up then rebuilds the apply's confirmed change,
// and apply, snooze and reanchor work again.
func TestHostileUndecodableRecordBehindTheCatchUpHasAWayOut(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.add("fresh-1", "o2", 10*wfDay, wfDay)
	e.mustRun("snooze", "fresh-1", "--for", "30d", "--reason", "kept", "--by", "ops")
	restore := e.backupState()
	e.mustRun("apply", "--auto-approve")
	if e.present("stale-1") {
		t.Fatal("apply did not delete stale-1")
	}
	restore()
	putRaw(t, e.state, "confirmed-mutations", []byte("tok-damaged"), []byte("{damaged"))
	storePath := filepath.Join(e.state, state.FileName)
	journal := len(e.journalRecords())

	for _, args := range [][]string{
		{"apply", "--auto-approve"},
		{"snooze", "fresh-1", "--offline", "--for", "30d", "--reason", "r"},
		{"audit", "reanchor", "--reason", "get out"},
	} {
		code, stdout, stderr := e.run(nil, args...)
		if code == 0 {
			t.Fatalf("%s succeeded over an undecodable record\n%s", strings.Join(args, " "), stdout)
		}
		wantNamesRecord(t, strings.Join(args, " "), stderr, storePath, "confirmed-mutations", "tok-damaged")
	}
	if n := len(e.journalRecords()); n != journal {
		t.Fatalf("the refused commands journaled %d records", n-journal)
	}

	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "restored from backup, record damaged")
	if code != 0 {
		t.Fatalf("state repair: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, `bucket "confirmed-mutations", key "tok-damaged"`) {
		t.Errorf("state repair does not name the record:\n%s", stdout)
	}
	if !strings.Contains(stdout, "the catch-up rebuilt from them 0 executed plan(s), 1 confirmed token change(s)") {
		t.Errorf("state repair does not say what the catch-up of the journal's tail rebuilt:\n%s", stdout)
	}
	toks, _ := storedRecords(t, e.state)
	if len(toks) != 1 || toks[0].TokenID != "stale-1" || toks[0].Action != "delete" {
		t.Fatalf("confirmed records after the repair %+v, want the apply's delete of stale-1 rebuilt from the journal", toks)
	}
	mutations := len(e.mutations())
	e.mustRun("apply", "--auto-approve")
	if n := len(e.mutations()); n != mutations {
		t.Fatalf("apply after the repair sent %d mutations (nothing is due)", n-mutations)
	}
	e.mustRun("audit", "verify")
	if n := len(e.repairRecords()); n != 1 {
		t.Fatalf("%d state-repair records, want 1", n)
	}
}

// A snooze does not decode. plan, apply, serve's run and snooze fail
// closed (a run must not take the token for unexempted), naming the record
// and the way out; the repair rebuilds the snooze from the journal, and
// the next apply skips the snoozed token: the tenant receives nothing for
// it.
func TestHostileRepairedSnoozeStillExempts(t *testing.T) {
	e := newWF(t, wfPolicies+"schedule: \"@daily\"\ntimezone: UTC\n", idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.mustRun("snooze", "stale-1", "--for", "30d", "--reason", "vendor migration", "--by", "alice")
	putRaw(t, e.state, "snoozes", []byte("stale-1"), []byte("\x00\xffnot json"))
	storePath := filepath.Join(e.state, state.FileName)

	for _, args := range [][]string{
		{"plan"},
		{"apply", "--auto-approve"},
		{"snooze", "stale-1", "--offline", "--for", "30d", "--reason", "r"},
	} {
		code, _, stderr := e.run(nil, args...)
		if code == 0 {
			t.Fatalf("%s succeeded over an undecodable snooze", strings.Join(args, " "))
		}
		wantNamesRecord(t, strings.Join(args, " "), stderr, storePath, "snoozes", "stale-1")
	}
	if err := e.serveOneRun(); err == nil {
		t.Fatal("serve's run succeeded over an undecodable snooze")
	} else {
		wantNamesRecord(t, "serve", err.Error(), storePath, "snoozes", "stale-1")
	}
	if n := len(e.mutations()); n != 0 {
		t.Fatalf("the tenant received %d mutations", n)
	}

	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-9")
	if code != 0 || !strings.Contains(stdout, "rebuilt from the journal") {
		t.Fatalf("state repair: exit %d\n%s%s", code, stdout, stderr)
	}
	zs := storedSnoozes(t, e.state)
	if len(zs) != 1 || zs[0].TokenID != "stale-1" || zs[0].Reason != "vendor migration (by alice)" {
		t.Fatalf("snoozes after the repair %+v, want stale-1's rebuilt from the journal", zs)
	}
	code, stdout, stderr = e.run(nil, "apply", "--auto-approve")
	if code != 0 || len(e.mutations()) != 0 || !e.present("stale-1") {
		t.Fatalf("apply after the repair: exit %d, tenant received %v\n%s%s", code, e.mutations(), stdout, stderr)
	}
	if err := e.serveOneRun(); err != nil {
		t.Fatalf("serve's run after the repair: %v", err)
	}
	if n := len(e.mutations()); n != 0 {
		t.Fatalf("serve's run sent %d mutations to a snoozed token", n)
	}
}

// serveOneRun starts serve as `patjanitor serve` would (its start opens
// the state store and the journal) and makes one run of every policy; it
// returns what failed.
func (e *wfEnv) serveOneRun() error {
	e.t.Helper()
	ctx := context.Background()
	g := &globals{config: e.cfgPath, stateDir: e.state, streams: Streams{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}}
	opts, closeJ, err := serveOptions(ctx, g, serveFlags{minInterval: time.Second}, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		return err
	}
	defer closeJ()
	data, err := os.ReadFile(e.cfgPath)
	if err != nil {
		return err
	}
	cfg, err := opts.Load(e.cfgPath, data)
	if err != nil {
		return err
	}
	r, err := opts.NewRunner(cfg)
	if err != nil {
		return err
	}
	_, err = r.Run(ctx, cfg)
	return err
}

// While serve holds the journal, state repair refuses and changes nothing:
// the record stays where it was and nothing is journaled.
func TestHostileStateRepairRefusedWhileServeHoldsTheJournal(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.mustRun("snooze", "tok-1", "--offline", "--for", "30d", "--reason", "kept")
	putRaw(t, e.state, "snoozes", []byte("tok-1"), []byte("{damaged"))
	journal := len(e.journalRecords())
	held, err := audit.Open(filepath.Join(e.state, JournalFile), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "r")
	_ = held.Close()
	if code != 1 || !strings.Contains(stderr, "held by a running patjanitor serve") || !strings.Contains(stderr, "nothing was changed") {
		t.Fatalf("state repair with the journal held: exit %d\n%s%s", code, stdout, stderr)
	}
	if bad := undecodableNow(t, e.state); len(bad) != 1 {
		t.Fatalf("%d undecodable records after the refusal, want the one left where it was", len(bad))
	}
	if qs := quarantined(t, e.state); len(qs) != 0 {
		t.Fatalf("the refused repair quarantined %d records", len(qs))
	}
	if n := len(e.journalRecords()); n != journal {
		t.Fatalf("the refused repair journaled %d records", n-journal)
	}
}

// With every record decoding, repair says so and changes nothing, the
// journal included; --dry-run lists the damaged record and changes nothing.
func TestStateRepairNothingToDoAndDryRun(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.mustRun("snooze", "tok-1", "--offline", "--for", "30d", "--reason", "kept")
	journal := len(e.journalRecords())
	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "r")
	if code != 0 || !strings.Contains(stdout, "nothing to repair, nothing was changed") || len(e.journalRecords()) != journal {
		t.Fatalf("state repair of a sound store: exit %d, %d records journaled\n%s%s", code, len(e.journalRecords())-journal, stdout, stderr)
	}
	putRaw(t, e.state, "outbox", []byte("msg-1"), []byte("[]"))
	code, stdout, stderr = e.run(nil, "state", "repair", "--dry-run")
	if code != 0 || !strings.Contains(stdout, `bucket "outbox", key "msg-1"`) || !strings.Contains(stdout, "nothing was changed") {
		t.Fatalf("state repair --dry-run: exit %d\n%s%s", code, stdout, stderr)
	}
	if len(undecodableNow(t, e.state)) != 1 || len(quarantined(t, e.state)) != 0 || len(e.journalRecords()) != journal {
		t.Fatal("--dry-run changed something")
	}
	if code, _, stderr := e.run(nil, "state", "repair"); code == 0 || !strings.Contains(stderr, "--reason is required") {
		t.Fatalf("state repair without --reason: exit %d\n%s", code, stderr)
	}
	long := strings.Repeat("x", 5000)
	if code, _, stderr := e.run(nil, "state", "repair", "--reason", long); code == 0 || !strings.Contains(stderr, "at most 4096") {
		t.Fatalf("state repair with a 5000-byte reason: exit %d\n%s", code, stderr)
	}
	if len(quarantined(t, e.state)) != 0 || len(e.journalRecords()) != journal {
		t.Fatal("a refused repair changed something")
	}
}

// repairAt runs `state repair --reason reason --by ops` in-process, its
// clock now, stopped where hooks say (a crash between two of its steps).
func (e *wfEnv) repairAt(reason string, now func() time.Time, hooks repairHooks) (string, error) {
	e.t.Helper()
	var out strings.Builder
	g := &globals{config: e.cfgPath, stateDir: e.state, streams: Streams{In: strings.NewReader(""), Out: &out, Err: io.Discard}}
	o := stateRepairFlags{reasonFlags: reasonFlags{reason: reason, by: "ops"}}
	o.journal.segmentSize = byteSize(audit.DefaultSegmentBytes)
	err := runStateRepairHooked(context.Background(), g, o, now, hooks)
	return out.String(), err
}

// repairCrashed runs a repair that crashes where crash says, and fails the
// test if it reported success.
func (e *wfEnv) repairCrashed(reason string, crash repairHooks) {
	e.t.Helper()
	if _, err := e.repairAt(reason, time.Now, crash); err == nil {
		e.t.Fatal("the stopped repair reported success")
	}
}

// The crashes of a repair: after it journaled the records, before it moved
// them; after it moved them, before it rebuilt anything.
var (
	crashAfterTheJournal  = repairHooks{afterJournal: func() error { return errCrash }}
	crashBeforeTheRebuild = repairHooks{afterQuarantine: func() error { return errCrash }}
)

var errCrash = errorString("crash")

type errorString string

func (e errorString) Error() string { return string(e) }

// damagedSnooze lists stale-1 and has alice snooze it; then its snooze
// stops decoding.
func (e *wfEnv) damagedSnooze() {
	e.t.Helper()
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.mustRun("snooze", "stale-1", "--for", "30d", "--reason", "vendor migration", "--by", "alice")
	putRaw(e.t, e.state, "snoozes", []byte("stale-1"), []byte("{damaged"))
}

// applySparesSnoozed runs apply and fails the test unless the tenant
// received nothing and still lists every token of ids.
func (e *wfEnv) applySparesSnoozed(ids ...string) {
	e.t.Helper()
	e.mustRun("apply", "--auto-approve")
	spared := len(e.mutations()) == 0
	for _, id := range ids {
		spared = spared && e.present(id)
	}
	if !spared {
		e.t.Fatalf("the tenant received %v for the snoozed token(s) %v", e.mutations(), ids)
	}
}

// archiveFirstSegment moves the journal's first segment to an archive
// directory, as docs/operations.md has operators do; bringBack puts it
// back.
func (e *wfEnv) archiveFirstSegment() (bringBack func()) {
	e.t.Helper()
	archive := filepath.Join(e.dir, "archive")
	if err := os.Mkdir(archive, 0o700); err != nil {
		e.t.Fatal(err)
	}
	seg1 := filepath.Join(e.state, "journal-000001.jsonl")
	archived := filepath.Join(archive, "journal-000001.jsonl")
	if err := os.Rename(seg1, archived); err != nil {
		e.t.Fatal(err)
	}
	return func() {
		e.t.Helper()
		if err := os.Rename(archived, seg1); err != nil {
			e.t.Fatal(err)
		}
	}
}

// A repair dies after journaling the record's move and before moving it.
// The journal names a record still in place; every command still refuses
// it, naming the repair; the next repair moves it (journaling it again,
// with the same SHA-256) and rebuilds the snooze: the token stays exempt
// and the tenant receives nothing.
func TestHostileStateRepairCrashAfterTheJournal(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.damagedSnooze()

	e.repairCrashed("INC-1", crashAfterTheJournal)
	if reps := e.repairRecords(); len(reps) != 1 || !strings.Contains(reps[0].Note, `"stale-1" in bucket "snoozes"`) {
		t.Fatalf("state-repair records after the crash %+v, want the one naming the record", reps)
	}
	if bad := undecodableNow(t, e.state); len(bad) != 1 || len(quarantined(t, e.state)) != 0 {
		t.Fatalf("after the crash: %d undecodable, %d quarantined; want the record where it was", len(bad), len(quarantined(t, e.state)))
	}
	code, _, stderr := e.run(nil, "apply", "--auto-approve")
	if code == 0 {
		t.Fatal("apply succeeded over the record the crashed repair left")
	}
	wantNamesRecord(t, "apply", stderr, filepath.Join(e.state, state.FileName), "snoozes", "stale-1")

	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-1, again after the crash")
	if code != 0 {
		t.Fatalf("the second repair: exit %d\n%s%s", code, stdout, stderr)
	}
	reps := e.repairRecords()
	if len(reps) != 2 || !strings.Contains(reps[1].Note, "sha256 "+quarantined(t, e.state)[0].SHA256) {
		t.Fatalf("state-repair records %+v, want the crashed one's and the second's, with the same sha256", reps)
	}
	e.applySparesSnoozed("stale-1")
}

// A repair dies after moving the record aside and before rebuilding the
// snooze from the journal. A run then would take the token for unexempted
// and delete it: every command refuses the store instead, naming the
// unfinished repair, and the next repair finishes it (nothing new to move
// or journal), rebuilding the snooze. The tenant receives nothing.
func TestHostileStateRepairCrashBeforeTheRebuild(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.damagedSnooze()

	e.repairCrashed("INC-2", crashBeforeTheRebuild)
	if len(quarantined(t, e.state)) != 1 || len(undecodableNow(t, e.state)) != 0 {
		t.Fatal("the record was not moved before the crash")
	}
	for _, args := range [][]string{{"apply", "--auto-approve"}, {"snooze", "x", "--offline", "--for", "1d", "--reason", "r"}} {
		code, _, stderr := e.run(nil, args...)
		if code == 0 || !strings.Contains(stderr, "did not finish") || !strings.Contains(stderr, "patjanitor state repair --reason TEXT` again") {
			t.Fatalf("%s with a repair unfinished: exit %d\n%s", strings.Join(args, " "), code, stderr)
		}
	}
	// plan, which changes nothing, goes on without the store as for any
	// store it cannot open, and says why.
	if code, _, stderr := e.run(nil, "plan"); !strings.Contains(stderr, "did not finish") {
		t.Fatalf("plan with a repair unfinished: exit %d, no word of it\n%s", code, stderr)
	}
	if err := e.serveOneRun(); err == nil || !strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("serve with a repair unfinished: %v", err)
	}
	if len(e.mutations()) != 0 {
		t.Fatalf("the tenant received %v", e.mutations())
	}
	journal := len(e.journalRecords())
	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "finish INC-2")
	if code != 0 || !strings.Contains(stdout, "did not finish rebuilding") || !strings.Contains(stdout, "rebuilt from the journal") {
		t.Fatalf("the finishing repair: exit %d\n%s%s", code, stdout, stderr)
	}
	if n := len(e.journalRecords()); n != journal {
		t.Fatalf("the finishing repair journaled %d records (it moved nothing)", n-journal)
	}
	if zs := storedSnoozes(t, e.state); len(zs) != 1 || zs[0].TokenID != "stale-1" {
		t.Fatalf("snoozes %+v, want stale-1's rebuilt", zs)
	}
	e.applySparesSnoozed("stale-1")
	e.mustRun("audit", "verify")
}

// Each bucket whose values patjanitor decodes, with a record that does not
// decode: every command that reads it fails closed, and its error names
// the store file, the bucket, the key (clipped and quoted: a key holds an
// id as the tenant listed it, with any bytes) and `state repair`; after
// the repair every command runs. The log lists which command read which
// bucket (what the operator sees).
func TestUndecodableRecordErrorsNameTheWayOut(t *testing.T) {
	for _, c := range []struct{ bucket, key string }{
		{"executed-plans", "sha256:" + strings.Repeat("ab", 32)},
		{"confirmed-mutations", "stale-1"},
		{"confirmed-client-mutations", "client-1"},
		{"snoozes", "stale-1"},
		{"marks", "stale-1\x00unused-90d"},
		{"reasons", "\x00\x00\x00\x00\x00\x00\x00\x07"},
		{"client-marks", "client-1\x00quarantine"},
		{"disabled-clients", "client-1"},
		{"outbox", "digest-o1"},
		{"deliveries", "o1"},
		{"meta", "journal-anchor:" + JournalFile},
	} {
		t.Run(c.bucket, func(t *testing.T) {
			e := newWF(t, wfPolicies+"schedule: \"@daily\"\ntimezone: UTC\n", idnsim.Options{})
			e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
			e.mustRun("snooze", "stale-1", "--for", "30d", "--reason", "kept", "--by", "ops")
			// A key that spells a terminal escape too: it must reach no
			// error raw.
			key := c.key
			if c.bucket != "meta" && c.bucket != "reasons" {
				key += "\x1b[2J"
			}
			putRaw(t, e.state, c.bucket, []byte(key), []byte("\x1b]0;owned\x07{damaged"))
			storePath := filepath.Join(e.state, state.FileName)
			quoted := strings.Trim(strings.TrimPrefix(strings.TrimSuffix(fmtQ(key), `"`), `"`), `"`)
			commands := [][]string{
				{"plan"},
				{"apply", "--auto-approve"},
				{"snooze", "stale-1", "--offline", "--for", "30d", "--reason", "kept"},
				{"audit", "verify"},
				{"audit", "reanchor", "--reason", "way out?"},
			}
			run := func(args []string) (int, string) {
				if args[0] == "serve" {
					if err := e.serveOneRun(); err != nil {
						return 1, err.Error()
					}
					return 0, ""
				}
				code, _, stderr := e.run(nil, args...)
				return code, stderr
			}
			commands = append(commands[:3], append([][]string{{"serve"}}, commands[3:]...)...)
			for _, args := range commands {
				code, stderr := run(args)
				what := strings.Join(args[:min(2, len(args))], " ")
				if !strings.Contains(stderr, "does not decode") {
					t.Logf("%s: exit %d, does not read it", what, code)
					continue
				}
				t.Logf("%s: exit %d: %.300s", what, code, stderr)
				wantNamesRecord(t, what, stderr, storePath, c.bucket, quoted)
				if strings.ContainsAny(stderr, "\x1b\x07") {
					t.Errorf("%s: the error carries a raw control byte: %q", what, stderr)
				}
			}
			code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-"+c.bucket)
			if code != 0 || !strings.Contains(stdout, `bucket "`+c.bucket+`", key "`+quoted+`"`) {
				t.Fatalf("state repair: exit %d\n%s%s", code, stdout, stderr)
			}
			if strings.ContainsAny(stdout, "\x1b\x07") {
				t.Errorf("state repair's output carries a raw control byte: %q", stdout)
			}
			// The anchor is not rebuilt: the journal is anchored anew at
			// its end, and the repair must say so, not "rebuilt".
			if c.bucket == "meta" && (!strings.Contains(stdout, "anchored at its end") || strings.Contains(stdout, "rebuilt from the journal\n")) {
				t.Errorf("state repair does not say what the loss of the anchor means:\n%s", stdout)
			}
			for _, args := range commands {
				if code, stderr := run(args); code != 0 {
					t.Errorf("%s after the repair: exit %d\n%s", strings.Join(args, " "), code, stderr)
				}
			}
			if len(e.mutations()) != 0 {
				t.Errorf("the tenant received %v (stale-1 is snoozed)", e.mutations())
			}
			qs := quarantined(t, e.state)
			if len(qs) != 1 || string(qs[0].Key) != key || string(qs[0].Value) != "\x1b]0;owned\x07{damaged" {
				t.Fatalf("quarantine %+v, want the record whole", qs)
			}
		})
	}
}

func fmtQ(s string) string { return strconv.Quote(untrusted.ClipID(s)) }

// A tenant lists a token whose id is 30 KiB (a key bbolt still takes), and
// its snooze stops decoding. The error, the repair's output and its
// journal record name the key clipped; the quarantine keeps it whole.
func TestHostileStateRepairLongKeyIsClipped(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	long := "tok-" + strings.Repeat("x", 30<<10)
	e.mustRun("snooze", "tok-1", "--offline", "--for", "30d", "--reason", "kept")
	putRaw(t, e.state, "snoozes", []byte(long), []byte("{damaged"))
	code, _, stderr := e.run(nil, "snooze", "tok-2", "--offline", "--for", "30d", "--reason", "r")
	if code == 0 || !strings.Contains(stderr, `bucket "snoozes"`) || len(stderr) > 4096 {
		t.Fatalf("snooze over the damaged record: exit %d, %d bytes of error\n%.500s", code, len(stderr), stderr)
	}
	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-30k")
	if code != 0 {
		t.Fatalf("state repair: exit %d\n%.2000s%.2000s", code, stdout, stderr)
	}
	for _, line := range strings.Split(stdout, "\n") {
		if len(line) > 2048 {
			t.Errorf("an output line of %d bytes: %.300s", len(line), line)
		}
	}
	reps := e.repairRecords()
	if len(reps) != 1 || len(reps[0].Note) > 4096 || !strings.Contains(reps[0].Note, "tok-xxx") {
		t.Fatalf("state-repair records: %d, note of %d bytes", len(reps), len(reps[0].Note))
	}
	if qs := quarantined(t, e.state); len(qs) != 1 || string(qs[0].Key) != long {
		t.Fatalf("the quarantine does not keep the key whole")
	}
}

// The journal was restored from an older copy (it stops short of its
// anchor) and a snooze does not decode. The repair refuses, changing
// nothing, and names `audit reanchor`; reanchor, which reads no bucket but
// the anchor, accepts the journal; then the repair moves the record.
func TestHostileStateRepairAfterAJournalCutShort(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	journal := filepath.Join(e.state, JournalFile)
	e.mustRun("snooze", "tok-1", "--offline", "--for", "30d", "--reason", "kept")
	old, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	e.mustRun("snooze", "tok-2", "--offline", "--for", "30d", "--reason", "kept too")
	if err := os.WriteFile(journal, old, 0o600); err != nil {
		t.Fatal(err)
	}
	putRaw(t, e.state, "snoozes", []byte("tok-1"), []byte("{damaged"))

	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-5")
	if code != 1 || !strings.Contains(stderr, "patjanitor audit reanchor --reason TEXT` first") || !strings.Contains(stderr, "nothing was changed") {
		t.Fatalf("state repair with the journal cut short: exit %d\n%s%s", code, stdout, stderr)
	}
	if len(undecodableNow(t, e.state)) != 1 || len(quarantined(t, e.state)) != 0 || len(e.journalRecords()) != 1 {
		t.Fatal("the refused repair changed something")
	}
	e.mustRun("audit", "reanchor", "--reason", "INC-5: journal restored from the 03:00 backup")
	code, stdout, stderr = e.run(nil, "state", "repair", "--reason", "INC-5")
	if code != 0 || len(e.repairRecords()) != 1 {
		t.Fatalf("state repair after the reanchor: exit %d\n%s%s", code, stdout, stderr)
	}
	if zs := storedSnoozes(t, e.state); len(zs) != 2 || zs[0].TokenID != "tok-1" || !strings.HasPrefix(zs[0].Reason, "kept (by ") {
		t.Fatalf("snoozes %+v, want tok-1's rebuilt from the journal's first record, and tok-2's", zs)
	}
	e.mustRun("audit", "verify")
}

// A repair dies after moving a snooze aside (its mark of a repair pending
// set), and then that mark stops decoding. Every command must still refuse
// the store (the snooze is not back: a run would delete the exempted
// token), naming `state repair`; and `state repair` must get out of it: on
// the old code it read the mark as any record, failed on it, and named
// itself as the way out, so the store was closed for good. The repair
// treats the mark as a repair begun at an unknown time: it rebuilds every
// record the quarantine holds, and the tenant receives nothing.
func TestHostileStateRepairPendingMarkDamaged(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.damagedSnooze()
	e.repairCrashed("INC-3", crashBeforeTheRebuild)
	putRaw(t, e.state, "meta", []byte("repair-pending"), []byte("\x1b[2J{damaged"))

	for _, args := range [][]string{{"apply", "--auto-approve"}, {"snooze", "x", "--offline", "--for", "1d", "--reason", "r"}} {
		code, _, stderr := e.run(nil, args...)
		if code == 0 || !strings.Contains(stderr, "patjanitor state repair --reason TEXT") || strings.Contains(stderr, "\x1b") {
			t.Fatalf("%s with the mark of a pending repair damaged: exit %d\n%q", strings.Join(args, " "), code, stderr)
		}
	}
	if len(e.mutations()) != 0 {
		t.Fatalf("the tenant received %v", e.mutations())
	}
	if code, stdout, stderr := e.run(nil, "state", "repair", "--dry-run"); code != 0 || !strings.Contains(stdout, "did not finish") || !strings.Contains(stdout, "nothing was changed") {
		t.Fatalf("state repair --dry-run: exit %d\n%s%s", code, stdout, stderr)
	}
	journal := len(e.journalRecords())
	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "finish INC-3")
	if code != 0 || !strings.Contains(stdout, "did not finish") || !strings.Contains(stdout, `bucket "snoozes", key "stale-1"`) || !strings.Contains(stdout, "rebuilt from the journal") {
		t.Fatalf("the finishing repair: exit %d\n%s%s", code, stdout, stderr)
	}
	if n := len(e.journalRecords()); n != journal {
		t.Fatalf("the finishing repair journaled %d records (it moved nothing)", n-journal)
	}
	if zs := storedSnoozes(t, e.state); len(zs) != 1 || zs[0].TokenID != "stale-1" {
		t.Fatalf("snoozes %+v, want stale-1's rebuilt", zs)
	}
	if qs := quarantined(t, e.state); len(qs) != 1 || string(qs[0].Value) != "{damaged" {
		t.Fatalf("quarantine %+v, want the snooze's bytes kept", qs)
	}
	e.applySparesSnoozed("stale-1")
	e.mustRun("audit", "verify")
}

// A repair dies after moving a snooze aside; the host's clock, ahead at
// the time, is then set back (NTP), and a second snooze stops decoding.
// The repair that finishes the first must rebuild both: on the old code it
// picked the records to rebuild by the time of the first repair's mark,
// passed over the record it had itself just moved with an earlier time,
// did not even list it, and the next apply deleted the token an operator
// had exempted.
func TestHostileStateRepairFinishedUnderAClockSetBack(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.add("stale-2", "o2", 400*wfDay, 200*wfDay)
	e.mustRun("snooze", "stale-1", "--for", "30d", "--reason", "vendor migration", "--by", "alice")
	e.mustRun("snooze", "stale-2", "--for", "30d", "--reason", "audit hold", "--by", "alice")
	putRaw(t, e.state, "snoozes", []byte("stale-1"), []byte("{damaged"))
	ahead := time.Now().Add(2 * time.Hour)
	if _, err := e.repairAt("INC-9", func() time.Time { return ahead }, crashBeforeTheRebuild); err == nil {
		t.Fatal("the stopped repair reported success")
	}
	putRaw(t, e.state, "snoozes", []byte("stale-2"), []byte("{damaged too"))
	out, err := e.repairAt("INC-9", time.Now, repairHooks{})
	if err != nil {
		t.Fatalf("the finishing repair: %v\n%s", err, out)
	}
	for _, want := range []string{`bucket "snoozes", key "stale-1"`, `bucket "snoozes", key "stale-2"`, "2 record(s) moved", "2 rebuilt"} {
		if !strings.Contains(out, want) {
			t.Errorf("the finishing repair's output lacks %q:\n%s", want, out)
		}
	}
	if zs := storedSnoozes(t, e.state); len(zs) != 2 {
		t.Fatalf("snoozes %+v, want stale-1's and stale-2's rebuilt", zs)
	}
	if n := len(e.repairRecords()); n != 2 {
		t.Fatalf("%d state-repair records, want one per record moved", n)
	}
	e.applySparesSnoozed("stale-1", "stale-2")
	e.mustRun("audit", "verify")
}

// A bad restore: the state store comes back from a backup taken before a
// signed plan was applied and a token snoozed, and its journal anchor is
// one of the records the restore damaged. The store's anchor would have
// had the catch-up rebuild both from the journal; with the anchor gone
// the repair must not take the store for current: on the old code it
// anchored the journal at its end and rebuilt nothing, the plan was
// applied a second time and the snoozed token was expired. The repair
// takes in every executed plan and every snooze of the whole journal
// (the confirmed changes only for the records it moved: a listing's proof
// is not journaled, and the whole journal would bring back every change
// ever proven).
func TestHostileStateRepairOfARestoreWithItsAnchorDamaged(t *testing.T) {
	e := newWF(t, replayPolicies, idnsim.Options{})
	r, _ := newReviewers(t, e.dir)
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	file, saved := e.signedPlan(r)
	e.mustRun("snooze", "tok-0", "--offline", "--for", "1d", "--reason", "a store to back up")
	restore := e.backupState()
	e.mustRun("apply", file, "--auto-approve")
	e.add("stale-2", "o2", 400*wfDay, 200*wfDay)
	e.mustRun("snooze", "stale-2", "--for", "30d", "--reason", "audit hold", "--by", "alice")
	applied := len(e.mutations())
	if applied != 1 {
		t.Fatalf("the apply sent %d mutations, want 1", applied)
	}
	restore()
	putRaw(t, e.state, "meta", []byte("journal-anchor:"+JournalFile), []byte("{damaged"))

	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-12: restored state.db damaged")
	if code != 0 {
		t.Fatalf("state repair: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "1 executed plan(s)") || !strings.Contains(stdout, "1 snooze(s)") {
		t.Errorf("state repair does not say it rebuilt the plan and the snooze:\n%s", stdout)
	}
	if zs := storedSnoozes(t, e.state); len(zs) != 2 || zs[0].TokenID != "stale-2" || zs[1].TokenID != "tok-0" {
		t.Fatalf("snoozes %+v, want tok-0's and stale-2's, rebuilt from the journal", zs)
	}
	code, stdout, stderr = e.run(nil, "apply", file, "--auto-approve")
	if code != 1 || !strings.Contains(stderr, "plan "+saved.PlanHash+" was already executed") {
		t.Fatalf("apply of the executed plan after the repair: exit %d, want it refused\n%s%s", code, stdout, stderr)
	}
	e.mustRun("apply", "--auto-approve")
	if n := len(e.mutations()); n != applied {
		t.Fatalf("after the repair the tenant received %v", e.mutations()[applied:])
	}
	e.mustRun("audit", "verify")
}

// The journal's anchor does not decode and its first segments were
// archived, as docs/operations.md has operators do. Without an anchor the
// journal can only be read from its first segment: the repair refuses,
// changing nothing, and must say that the damaged anchor is why and what
// to do (the old error said the store had no anchor, and to restore the
// segments "or the state store"); with the segments back, it repairs.
func TestHostileStateRepairDamagedAnchorWithArchivedSegments(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	seg := "--journal-segment-size=600"
	for i := range 4 {
		e.mustRun("snooze", fmt.Sprintf("tok-%d", i), "--offline", "--for", "30d", "--reason", "kept for the vendor migration", seg)
	}
	bringBack := e.archiveFirstSegment()
	putRaw(t, e.state, "meta", []byte("journal-anchor:"+JournalFile), []byte("{damaged"))
	journal := len(e.repairRecords())

	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-13", seg)
	if code != 1 || !strings.Contains(stderr, "nothing was changed") || !strings.Contains(stderr, "anchor of this journal does not decode") || !strings.Contains(stderr, "bring the archived segments back") {
		t.Fatalf("state repair with the anchor damaged and segments archived: exit %d\n%s%s", code, stdout, stderr)
	}
	if len(undecodableNow(t, e.state)) != 1 || len(quarantined(t, e.state)) != 0 || len(e.repairRecords()) != journal {
		t.Fatal("the refused repair changed something")
	}
	bringBack()
	e.mustRun("state", "repair", "--reason", "INC-13", seg)
	if zs := storedSnoozes(t, e.state); len(zs) != 4 {
		t.Fatalf("snoozes %+v, want the 4 kept", zs)
	}
	e.mustRun("audit", "verify")
}

// A run deletes two tokens; the confirmed change of the first stops
// decoding and is rebuilt by the repair's pass over the whole journal. A
// run stores its confirmed changes at its end, and the catch-up dates a
// rebuilt one by its run's last journal record, the nearest it knows: the
// time a run sooner than SettleMargin skips the token as awaiting proof.
// On the old code the repair's pass saw only the records of the moved
// token, dated it by its own outcome, earlier by the run's length, and so
// opened the token to a proof listing (and a policy acting again) before
// the tenant had settled.
func TestHostileStateRepairDatesARebuiltChangeByItsRun(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.add("stale-2", "o2", 400*wfDay, 200*wfDay)
	e.mustRun("apply", "--auto-approve")
	toks, _ := storedRecords(t, e.state)
	if len(toks) != 2 {
		t.Fatalf("confirmed records %+v, want the 2 deletes", toks)
	}
	runID := toks[0].RunID
	var runLast, outcome time.Time
	for _, r := range e.journalRecords() {
		if r.RunID != runID {
			continue
		}
		if r.Time.After(runLast) {
			runLast = r.Time
		}
		if r.Kind == audit.KindOutcome && r.TokenID == "stale-1" {
			outcome = r.Time
		}
	}
	if !outcome.Before(runLast) {
		t.Fatalf("stale-1's outcome at %v is not before the run's last record at %v: the test shows nothing", outcome, runLast)
	}
	putRaw(t, e.state, "confirmed-mutations", []byte("stale-1"), []byte("{damaged"))
	e.mustRun("state", "repair", "--reason", "INC-14")
	toks, _ = storedRecords(t, e.state)
	var got *state.Confirmed
	for i := range toks {
		if toks[i].TokenID == "stale-1" {
			got = &toks[i]
		}
	}
	if got == nil || got.RunID != runID || got.Action != "delete" {
		t.Fatalf("confirmed records %+v, want stale-1's delete rebuilt", toks)
	}
	if !got.At.Equal(runLast) {
		t.Errorf("the rebuilt change is dated %v, want its run's last record's time %v (its own outcome: %v)", got.At, runLast, outcome)
	}
	n := len(e.mutations())
	e.mustRun("apply", "--auto-approve")
	if len(e.mutations()) != n {
		t.Fatalf("the tenant received %v", e.mutations()[n:])
	}
	e.mustRun("audit", "verify")
}

// The disk incident that damaged a snooze also changed a record of an old
// journal segment (commands go on: an open verifies the journal after its
// anchor). The repair rebuilds from the whole journal, whose chain no
// longer verifies: on the old code it journaled and moved the snooze
// first, then failed the rebuild, and every repair after failed the same
// way: the store was refused by every command for good. It must refuse
// before changing anything, naming the journal's damage and the way out
// (the segment from its archive); with the segment restored it repairs.
func TestHostileStateRepairOverAJournalThatDoesNotVerify(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	seg := "--journal-segment-size=600"
	e.mustRun("snooze", "stale-1", "--for", "30d", "--reason", "vendor migration", "--by", "alice", seg)
	for i := range 3 {
		e.mustRun("snooze", fmt.Sprintf("tok-%d", i), "--offline", "--for", "30d", "--reason", "kept for the vendor migration", seg)
	}
	journal := len(e.repairRecords())
	seg1 := filepath.Join(e.state, "journal-000001.jsonl")
	good, err := os.ReadFile(seg1)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(seg1, bytes.Replace(good, []byte("vendor"), []byte("vendoR"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	// A record the journal does not rebuild is repaired all the same: the
	// repair does not read the whole journal for it.
	putRaw(t, e.state, "outbox", []byte("msg-1"), []byte("[]"))
	if code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-15 outbox", seg); code != 0 {
		t.Fatalf("state repair of an outbox record: exit %d\n%s%s", code, stdout, stderr)
	}
	journal++
	putRaw(t, e.state, "snoozes", []byte("stale-1"), []byte("{damaged"))

	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-15", seg)
	if code != 1 || !strings.Contains(stderr, "journal-000001.jsonl") || !strings.Contains(stderr, "nothing was changed") || !strings.Contains(stderr, "archive") {
		t.Fatalf("state repair over a journal that does not verify: exit %d\n%s%s", code, stdout, stderr)
	}
	if len(undecodableNow(t, e.state)) != 1 || len(quarantined(t, e.state)) != 1 {
		t.Fatalf("the refused repair moved the record: %d quarantined, want the outbox record only", len(quarantined(t, e.state)))
	}
	// The store is as it was: a command names the record, not a repair
	// to finish.
	code, _, stderr = e.run(nil, "apply", "--auto-approve", seg)
	if code == 0 || strings.Contains(stderr, "did not finish") {
		t.Fatalf("apply after the refused repair: exit %d\n%s", code, stderr)
	}
	wantNamesRecord(t, "apply", stderr, filepath.Join(e.state, state.FileName), "snoozes", "stale-1")

	if err := os.WriteFile(seg1, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if n := len(e.repairRecords()); n != journal {
		t.Fatalf("the refused repair journaled %d records", n-journal)
	}
	e.mustRun("state", "repair", "--reason", "INC-15, segment restored from the archive", seg)
	if zs := storedSnoozes(t, e.state); len(zs) != 4 {
		t.Fatalf("snoozes %+v, want stale-1's rebuilt and the 3 others", zs)
	}
	e.mustRun("apply", "--auto-approve", seg)
	if len(e.mutations()) != 0 || !e.present("stale-1") {
		t.Fatalf("the tenant received %v for a snoozed token", e.mutations())
	}
	e.mustRun("audit", "verify")
}

// A repair dies after moving a snooze aside (the repair pending), and the
// journal is then found cut short of the store's anchor (restored from an
// older copy). The repair refuses a journal short of its anchor, naming
// `audit reanchor` first; on the old code reanchor refused the store for
// the pending repair, naming `state repair`: each named the other, and
// the store was closed for good. Reanchor, which acts on no token, takes
// a store with a repair pending; the repair then finishes, the snooze is
// rebuilt from the journal, and the tenant receives nothing.
func TestHostileStateRepairPendingWithAJournalCutShort(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	journal := filepath.Join(e.state, JournalFile)
	e.mustRun("snooze", "stale-1", "--for", "30d", "--reason", "vendor migration", "--by", "alice")
	old, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	e.mustRun("snooze", "tok-2", "--offline", "--for", "30d", "--reason", "kept")
	putRaw(t, e.state, "snoozes", []byte("stale-1"), []byte("{damaged"))
	e.repairCrashed("INC-16", crashBeforeTheRebuild)
	if err := os.WriteFile(journal, old, 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-16")
	if code != 1 || !strings.Contains(stderr, "audit reanchor --reason TEXT` first") {
		t.Fatalf("state repair with the journal cut short: exit %d\n%s%s", code, stdout, stderr)
	}
	e.mustRun("audit", "reanchor", "--reason", "INC-16: journal restored from the 03:00 backup")
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code == 0 || !strings.Contains(stderr, "did not finish") {
		t.Fatalf("apply after the reanchor, the repair still pending: exit %d\n%s", code, stderr)
	}
	e.mustRun("state", "repair", "--reason", "INC-16, after the reanchor")
	if zs := storedSnoozes(t, e.state); len(zs) != 2 || zs[0].TokenID != "stale-1" {
		t.Fatalf("snoozes %+v, want stale-1's rebuilt from the journal and tok-2's", zs)
	}
	e.applySparesSnoozed("stale-1")
	e.mustRun("audit", "verify")
}

// A confirmed change that still parses as JSON fails its decoder with an
// error quoting 200 KiB of what it holds. apply fails closed, sends
// nothing, and its output names the record and the way out in a few
// lines: on the old code the error carried the decoder's message whole,
// about 1 MiB on stderr and as much on stdout, in every command, every
// serve run's log and its failure notification.
func TestHostileUndecodableRecordErrorIsBounded(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.mustRun("snooze", "tok-0", "--offline", "--for", "1d", "--reason", "a store")
	putRaw(t, e.state, "confirmed-mutations", []byte("stale-1"),
		[]byte(`{"tokenId":"stale-1","patch":[{"op":"replace","path":"`+strings.Repeat(`\u001bA`, 100_000)+`","value":null}]}`))
	code, stdout, stderr := e.run(nil, "apply", "--auto-approve")
	if code == 0 || len(e.mutations()) != 0 {
		t.Fatalf("apply over the damaged record: exit %d, the tenant received %v", code, e.mutations())
	}
	wantNamesRecord(t, "apply", stderr, filepath.Join(e.state, state.FileName), "confirmed-mutations", "stale-1")
	if len(stdout)+len(stderr) > 16<<10 {
		t.Fatalf("apply printed %d bytes to stdout and %d to stderr over one damaged record", len(stdout), len(stderr))
	}
	code, stdout, stderr = e.run(nil, "state", "repair", "--reason", "INC-17")
	if code != 0 || len(stdout) > 16<<10 {
		t.Fatalf("state repair: exit %d, %d bytes\n%.2000s%.2000s", code, len(stdout), stdout, stderr)
	}
	reps := e.repairRecords()
	if len(reps) != 1 || len(reps[0].Note) > 4096 {
		t.Fatalf("state-repair records %d, want 1 with a bounded note", len(reps))
	}
}

// A repair moves a damaged journal anchor aside and dies before the
// rebuild; the journal's first segments are then archived. The repair
// that finishes it reads the journal from its first segment (the store
// has no anchor now): it refuses, changing nothing, saying the anchor was
// moved aside and to bring the segments back, as for an anchor that does
// not decode (the old error said only that the store had no anchor, and
// to restore the segments "or the state store").
func TestHostileStateRepairFinishingAfterTheAnchorMovedWithArchivedSegments(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	seg := "--journal-segment-size=600"
	for i := range 4 {
		e.mustRun("snooze", fmt.Sprintf("tok-%d", i), "--offline", "--for", "30d", "--reason", "kept for the vendor migration", seg)
	}
	putRaw(t, e.state, "meta", []byte("journal-anchor:"+JournalFile), []byte("{damaged"))
	e.repairCrashed("INC-18", crashBeforeTheRebuild)
	bringBack := e.archiveFirstSegment()
	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-18, finish", seg)
	if code != 1 || !strings.Contains(stderr, "bring the archived segments back") || !strings.Contains(stderr, "nothing was changed") {
		t.Fatalf("the finishing repair with segments archived: exit %d\n%s%s", code, stdout, stderr)
	}
	bringBack()
	e.mustRun("state", "repair", "--reason", "INC-18, finish", seg)
	if zs := storedSnoozes(t, e.state); len(zs) != 4 {
		t.Fatalf("snoozes %+v, want the 4 kept", zs)
	}
	e.mustRun("audit", "verify")
}

// A repair moves a damaged snooze aside and dies before the rebuild; then
// the quarantine's own record of it stops decoding. The repair that
// finishes the first cannot tell what that record was: on the old code it
// passed over it, rebuilt nothing, ended the repair, and the next apply
// deleted the token an operator had exempted. It takes in every snooze and
// every executed plan of the journal instead (what it cannot tell apart),
// and says so.
func TestHostileStateRepairFinishingOverADamagedQuarantineRecord(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.damagedSnooze()
	e.repairCrashed("INC-19", crashBeforeTheRebuild)
	putRaw(t, e.state, "quarantine", []byte{0, 0, 0, 0, 0, 0, 0, 1}, []byte("{damaged quarantine"))

	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-19, finish")
	if code != 0 || !strings.Contains(stdout, "1 record(s) the unfinished repair moved aside do not decode") {
		t.Fatalf("the finishing repair: exit %d\n%s%s", code, stdout, stderr)
	}
	if zs := storedSnoozes(t, e.state); len(zs) != 1 || zs[0].TokenID != "stale-1" {
		t.Fatalf("snoozes %+v, want stale-1's rebuilt from the journal", zs)
	}
	e.applySparesSnoozed("stale-1")
	e.mustRun("audit", "verify")
}

// A snooze made a year long, its journal record in a segment since
// archived (as docs/operations.md has operators do); its record in the
// store stops decoding. The repair moved it aside, found no snooze of the
// token in the journal beside it, said it was "no longer exempt" and
// finished: the archive held the snooze, the repair could not be run again
// once the record moved, and the next run deleted the exempted token. The
// repair now refuses, changing nothing, naming the archived segments; with
// them back it rebuilds the snooze, and the tenant receives nothing.
// (--without-archived-segments is the way on for an archive lost.)
func TestHostileStateRepairOfASnoozeInArchivedSegments(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	seg := "--journal-segment-size=600"
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.mustRun("snooze", "stale-1", "--for", "365d", "--reason", "kept for the vendor migration", "--by", "alice", seg)
	for i := range 4 {
		e.mustRun("snooze", fmt.Sprintf("tok-%d", i), "--offline", "--for", "30d", "--reason", "kept for the vendor migration", seg)
	}
	archive := filepath.Join(e.dir, "archive")
	if err := os.Mkdir(archive, 0o700); err != nil {
		t.Fatal(err)
	}
	seg1 := filepath.Join(e.state, "journal-000001.jsonl")
	if err := os.Rename(seg1, filepath.Join(archive, "journal-000001.jsonl")); err != nil {
		t.Fatal(err)
	}
	putRaw(t, e.state, "snoozes", []byte("stale-1"), []byte("{damaged"))
	journal := len(e.repairRecords())

	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-14", seg)
	for _, want := range []string{"segments 1 to 1 are not beside", `"stale-1" in bucket "snoozes"`, "bring the archived segments back", "--without-archived-segments", "nothing was changed"} {
		if code != 1 || !strings.Contains(stderr, want) {
			t.Fatalf("state repair with the snooze's segment archived: exit %d, want a refusal naming %q\n%s%s", code, want, stdout, stderr)
		}
	}
	if len(undecodableNow(t, e.state)) != 1 || len(quarantined(t, e.state)) != 0 || len(e.repairRecords()) != journal {
		t.Fatal("the refused repair changed something")
	}
	if code, _, _ := e.run(nil, "apply", "--auto-approve", seg); code == 0 || len(e.mutations()) != 0 {
		t.Fatalf("apply over the damaged snooze: exit %d, tenant received %v", code, e.mutations())
	}

	if err := os.Rename(filepath.Join(archive, "journal-000001.jsonl"), seg1); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = e.run(nil, "state", "repair", "--reason", "INC-14", seg)
	if code != 0 || !strings.Contains(stdout, "rebuilt from the journal") {
		t.Fatalf("state repair with the segments back: exit %d\n%s%s", code, stdout, stderr)
	}
	var kept bool
	for _, z := range storedSnoozes(t, e.state) {
		kept = kept || (z.TokenID == "stale-1" && z.Reason == "kept for the vendor migration (by alice)")
	}
	if !kept {
		t.Fatalf("snoozes %+v, want stale-1's rebuilt from the archived segment", storedSnoozes(t, e.state))
	}
	if reps := e.repairRecords(); len(reps) != journal+1 || !strings.Contains(reps[len(reps)-1].Note, `"stale-1" in bucket "snoozes"`) {
		t.Fatalf("state-repair records %+v, want the one naming the record", reps)
	}
	e.mustRun("apply", "--auto-approve", seg)
	if len(e.mutations()) != 0 || !e.present("stale-1") {
		t.Fatalf("the tenant received %v for a snoozed token", e.mutations())
	}
	e.mustRun("audit", "verify")
}

// An operator whose archive is lost repairs without it
// (--without-archived-segments): the record moves, and the report says
// what its loss means.
func TestStateRepairWithoutArchivedSegments(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	seg := "--journal-segment-size=600"
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.mustRun("snooze", "stale-1", "--for", "365d", "--reason", "kept for the vendor migration", "--by", "alice", seg)
	for i := range 4 {
		e.mustRun("snooze", fmt.Sprintf("tok-%d", i), "--offline", "--for", "30d", "--reason", "kept for the vendor migration", seg)
	}
	if err := os.Remove(filepath.Join(e.state, "journal-000001.jsonl")); err != nil {
		t.Fatal(err)
	}
	putRaw(t, e.state, "snoozes", []byte("stale-1"), []byte("{damaged"))
	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-15: archive lost", "--without-archived-segments", seg)
	if code != 0 || !strings.Contains(stdout, "no longer exempt") {
		t.Fatalf("state repair --without-archived-segments: exit %d\n%s%s", code, stdout, stderr)
	}
	if len(undecodableNow(t, e.state)) != 0 || len(quarantined(t, e.state)) != 1 {
		t.Fatal("the record was not moved")
	}
	e.mustRun("audit", "verify")
}

// A repair made --without-archived-segments says so where it will be
// looked for: the state-repair record names the archived segments it did
// not read and what that loses, and so does the output, before the token's
// exemption is gone (the next run acts on it). A journal that shows only
// "moved to the quarantine bucket" reads as a repair that lost nothing.
func TestStateRepairWithoutArchivedSegmentsIsJournaled(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	seg := "--journal-segment-size=600"
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.mustRun("snooze", "stale-1", "--for", "365d", "--reason", "kept for the vendor migration", "--by", "alice", seg)
	for i := range 4 {
		e.mustRun("snooze", fmt.Sprintf("tok-%d", i), "--offline", "--for", "30d", "--reason", "kept for the vendor migration", seg)
	}
	if err := os.Remove(filepath.Join(e.state, "journal-000001.jsonl")); err != nil {
		t.Fatal(err)
	}
	putRaw(t, e.state, "snoozes", []byte("stale-1"), []byte("{damaged"))
	before := len(e.repairRecords())
	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-15: archive lost", "--without-archived-segments", seg)
	if code != 0 {
		t.Fatalf("state repair --without-archived-segments: exit %d\n%s%s", code, stdout, stderr)
	}
	want := "without the journal's archived segments 1 to 1 (--without-archived-segments)"
	if !strings.Contains(stdout, want) {
		t.Errorf("the output does not say the repair went on without the archive (%q):\n%s", want, stdout)
	}
	reps := e.repairRecords()
	if len(reps) != before+1 {
		t.Fatalf("state-repair records %+v, want one more", reps)
	}
	note := reps[len(reps)-1].Note
	for _, w := range []string{`"stale-1" in bucket "snoozes"`, want, "INC-15: archive lost"} {
		if !strings.Contains(note, w) {
			t.Errorf("the state-repair record does not say %q:\n%s", w, note)
		}
	}
	e.mustRun("audit", "verify")
}

// A repair that finishes an unfinished one (its records journaled and
// moved before it stopped) moves nothing and journals no record of its
// own; made --without-archived-segments, it journals one saying so.
func TestStateRepairFinishedWithoutArchivedSegmentsIsJournaled(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	seg := "--journal-segment-size=600"
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.mustRun("snooze", "stale-1", "--for", "365d", "--reason", "kept for the vendor migration", "--by", "alice", seg)
	for i := range 4 {
		e.mustRun("snooze", fmt.Sprintf("tok-%d", i), "--offline", "--for", "30d", "--reason", "kept for the vendor migration", seg)
	}
	putRaw(t, e.state, "snoozes", []byte("stale-1"), []byte("{damaged"))
	e.repairCrashed("INC-20", crashBeforeTheRebuild)
	_ = e.archiveFirstSegment() // and the archive lost
	before := len(e.repairRecords())
	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-20: archive lost", "--without-archived-segments", seg)
	if code != 0 {
		t.Fatalf("the finishing repair --without-archived-segments: exit %d\n%s%s", code, stdout, stderr)
	}
	reps := e.repairRecords()
	if len(reps) != before+1 {
		t.Fatalf("state-repair records %+v, want one more saying the repair went on without the archive", reps)
	}
	for _, w := range []string{"without the journal's archived segments 1 to 1 (--without-archived-segments)", "INC-20: archive lost"} {
		if !strings.Contains(reps[len(reps)-1].Note, w) {
			t.Errorf("the state-repair record does not say %q:\n%s", w, reps[len(reps)-1].Note)
		}
	}
}

// A repair that needs no archived segment journals no word of them, the
// flag given or not.
func TestStateRepairWithoutArchivedSegmentsNotNeeded(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	seg := "--journal-segment-size=600"
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.mustRun("snooze", "stale-1", "--for", "365d", "--reason", "kept for the vendor migration", "--by", "alice", seg)
	putRaw(t, e.state, "snoozes", []byte("stale-1"), []byte("{damaged"))
	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-16", "--without-archived-segments", seg)
	if code != 0 || !strings.Contains(stdout, "rebuilt from the journal") || strings.Contains(stdout, "archived segments 1") {
		t.Fatalf("state repair --without-archived-segments, nothing archived: exit %d\n%s%s", code, stdout, stderr)
	}
	if reps := e.repairRecords(); len(reps) != 1 || strings.Contains(reps[0].Note, "--without-archived-segments") {
		t.Fatalf("state-repair records %+v, want one saying nothing of an archive", reps)
	}
}

// The damaged anchor of another journal (the store kept one for each
// --journal it was used with) is not this journal's: nothing of it is in
// this journal's archived segments, and the repair does not send the
// operator to bring them back, nor to --without-archived-segments.
func TestStateRepairOfAnotherJournalsAnchorNeedsNoArchive(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	seg := "--journal-segment-size=600"
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.mustRun("snooze", "stale-1", "--for", "365d", "--reason", "kept for the vendor migration", "--by", "alice", seg)
	for i := range 4 {
		e.mustRun("snooze", fmt.Sprintf("tok-%d", i), "--offline", "--for", "30d", "--reason", "kept for the vendor migration", seg)
	}
	if err := os.Remove(filepath.Join(e.state, "journal-000001.jsonl")); err != nil {
		t.Fatal(err)
	}
	putRaw(t, e.state, "meta", []byte(state.AnchorKey("/elsewhere/journal.jsonl")), []byte("{damaged"))
	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-18", seg)
	if code != 0 || strings.Contains(stdout+stderr, "archived") || !strings.Contains(stdout, "another journal's anchor") {
		t.Fatalf("state repair of another journal's anchor: exit %d\n%s%s", code, stdout, stderr)
	}
	if len(undecodableNow(t, e.state)) != 0 || len(quarantined(t, e.state)) != 1 {
		t.Fatal("the record was not moved")
	}
	e.mustRun("apply", "--auto-approve", seg)
	if len(e.mutations()) != 0 || !e.present("stale-1") {
		t.Fatalf("the tenant received %v for a snoozed token", e.mutations())
	}
}

// A damaged snooze whose last record is in the journal beside the archive
// (snoozed again since) needs no archived segment: the repair goes on and
// puts that last snooze back.
func TestStateRepairOfASnoozeWhoseLastRecordIsNotArchived(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	seg := "--journal-segment-size=600"
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.mustRun("snooze", "stale-1", "--for", "30d", "--reason", "vendor migration", "--by", "alice", seg)
	for i := range 4 {
		e.mustRun("snooze", fmt.Sprintf("tok-%d", i), "--offline", "--for", "30d", "--reason", "kept for the vendor migration", seg)
	}
	e.mustRun("snooze", "stale-1", "--for", "365d", "--reason", "migration late", "--by", "bob", seg)
	if err := os.Remove(filepath.Join(e.state, "journal-000001.jsonl")); err != nil {
		t.Fatal(err)
	}
	putRaw(t, e.state, "snoozes", []byte("stale-1"), []byte("{damaged"))
	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-17", seg)
	if code != 0 || !strings.Contains(stdout, "rebuilt from the journal") {
		t.Fatalf("state repair: exit %d\n%s%s", code, stdout, stderr)
	}
	var kept bool
	for _, z := range storedSnoozes(t, e.state) {
		kept = kept || (z.TokenID == "stale-1" && z.Reason == "migration late (by bob)")
	}
	if !kept {
		t.Fatalf("snoozes %+v, want stale-1's last one rebuilt", storedSnoozes(t, e.state))
	}
	e.mustRun("apply", "--auto-approve", seg)
	if len(e.mutations()) != 0 {
		t.Fatalf("the tenant received %v for a snoozed token", e.mutations())
	}
}

// A confirmed delete awaiting proof, its intent and outcome in a segment
// since archived, stops decoding: the repair refuses, nothing changed,
// until the segment is back (the runs that find a lie journal beside the
// archive, but the change is rebuilt only from its intent and outcome);
// then it rebuilds the record.
func TestHostileStateRepairOfAConfirmedChangeInArchivedSegments(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	seg := "--journal-segment-size=600"
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.mustRun("apply", "--auto-approve", seg)
	for i := range 6 {
		e.mustRun("snooze", fmt.Sprintf("tok-%d", i), "--offline", "--for", "30d", "--reason", "kept for the vendor migration", seg)
	}
	archive := filepath.Join(e.dir, "archive")
	if err := os.Mkdir(archive, 0o700); err != nil {
		t.Fatal(err)
	}
	// The segments up to the last that names stale-1.
	last := 0
	for n := 1; ; n++ {
		data, err := os.ReadFile(filepath.Join(e.state, fmt.Sprintf("journal-%06d.jsonl", n)))
		if err != nil {
			break
		}
		if bytes.Contains(data, []byte(`"stale-1"`)) {
			last = n
		}
	}
	var moved []string
	for n := 1; n <= last; n++ {
		name := fmt.Sprintf("journal-%06d.jsonl", n)
		if err := os.Rename(filepath.Join(e.state, name), filepath.Join(archive, name)); err != nil {
			t.Fatal(err)
		}
		moved = append(moved, name)
	}
	if active, _ := os.ReadFile(filepath.Join(e.state, JournalFile)); len(moved) == 0 || bytes.Contains(active, []byte(`"stale-1"`)) {
		t.Fatalf("archived %v: the delete's records are not all in archived segments, the test shows nothing", moved)
	}
	putRaw(t, e.state, "confirmed-mutations", []byte("stale-1"), []byte("{damaged"))
	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-18", seg)
	if code != 1 || !strings.Contains(stderr, `"stale-1" in bucket "confirmed-mutations"`) || !strings.Contains(stderr, "bring the archived segments back") {
		t.Fatalf("state repair with the change's segments archived: exit %d\n%s%s", code, stdout, stderr)
	}
	if len(undecodableNow(t, e.state)) != 1 || len(quarantined(t, e.state)) != 0 {
		t.Fatal("the refused repair changed something")
	}
	for _, name := range moved {
		if err := os.Rename(filepath.Join(archive, name), filepath.Join(e.state, name)); err != nil {
			t.Fatal(err)
		}
	}
	e.mustRun("state", "repair", "--reason", "INC-18", seg)
	toks, _ := storedRecords(t, e.state)
	if len(toks) != 1 || toks[0].TokenID != "stale-1" || toks[0].Action != "delete" {
		t.Fatalf("confirmed records %+v, want stale-1's delete rebuilt", toks)
	}
	e.mustRun("audit", "verify")
}

// A nested bucket where a record belongs (a hand edit with a bbolt tool,
// another program) fails every command that reads the bucket as a record
// that does not decode, naming `state repair`; the repair said "every
// record decodes: nothing to repair", and there was no way out. It is
// moved aside like a record, its entries kept in the quarantine, and the
// snooze beside it still exempts its token: the tenant receives nothing.
func TestHostileNestedBucketWhereARecordBelongsIsRepaired(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.mustRun("snooze", "stale-1", "--for", "30d", "--reason", "vendor migration", "--by", "alice")
	db, err := bolt.Open(filepath.Join(e.state, state.FileName), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		nb, err := tx.Bucket([]byte("snoozes")).CreateBucket([]byte("hand-made"))
		if err == nil {
			err = nb.Put([]byte("k"), []byte("v"))
		}
		return err
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := e.run(nil, "apply", "--auto-approve")
	if code == 0 {
		t.Fatal("apply succeeded over a nested bucket in snoozes")
	}
	wantNamesRecord(t, "apply", stderr, filepath.Join(e.state, state.FileName), "snoozes", "hand-made")

	code, stdout, stderr := e.run(nil, "state", "repair", "--reason", "INC-19: a hand edit")
	if code != 0 || !strings.Contains(stdout, `key "hand-made"`) || !strings.Contains(stdout, "a nested bucket, not a record") {
		t.Fatalf("state repair of a nested bucket: exit %d\n%s%s", code, stdout, stderr)
	}
	qs := quarantined(t, e.state)
	if len(qs) != 1 || string(qs[0].Key) != "hand-made" || !strings.Contains(string(qs[0].Value), `"key":"aw=="`) {
		t.Fatalf("quarantined %+v, want the nested bucket with its entry", qs)
	}
	if reps := e.repairRecords(); len(reps) != 1 || !strings.Contains(reps[0].Note, "sha256 "+qs[0].SHA256) {
		t.Fatalf("state-repair records %+v, want one naming the bucket's sha256", reps)
	}
	e.mustRun("apply", "--auto-approve")
	if len(e.mutations()) != 0 || !e.present("stale-1") {
		t.Fatalf("the tenant received %v for a snoozed token", e.mutations())
	}
	e.mustRun("audit", "verify")
}
