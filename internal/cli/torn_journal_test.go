package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
)

// TestApplyAfterCrashTornJournalTail: a crash in the middle of an Append
// leaves a torn final record. The next apply removes it, but not silently:
// it logs a WARN naming the journal, the line, the bytes removed and the file
// beside the journal that keeps them (which holds exactly those bytes), then
// runs as usual, its records continuing the chain after the last good one.
func TestApplyAfterCrashTornJournalTail(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
		t.Fatal(stderr)
	}
	jpath := filepath.Join(e.state, JournalFile)
	durable, err := os.ReadFile(jpath)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(durable, []byte("\n")); n != 4 {
		t.Fatalf("the first apply journaled %d records, want 4", n)
	}
	// What a crash mid-Append leaves: the start of a record, no newline.
	last := durable[bytes.LastIndexByte(durable[:len(durable)-1], '\n')+1:]
	torn := last[:len(last)/2]
	if err := os.WriteFile(jpath, append(bytes.Clone(durable), torn...), 0o600); err != nil {
		t.Fatal(err)
	}

	e.add("stale-2", "o2", 400*wfDay, 200*wfDay)
	before := len(e.mutations())
	code, _, stderr := e.run(nil, "apply", "--auto-approve")
	if code != 0 {
		t.Fatalf("apply after the crash: exit %d, %s", code, stderr)
	}
	if got := e.deletedPaths()[before:]; len(got) != 1 || !strings.HasSuffix(got[0], "/stale-2") {
		t.Fatalf("the tenant received %v, want the DELETE of stale-2", got)
	}

	sides, _ := filepath.Glob(jpath + ".torn-*")
	if len(sides) != 1 {
		t.Fatalf("files keeping the torn bytes: %v, want one beside the journal", sides)
	}
	saved, err := os.ReadFile(sides[0])
	if err != nil || !bytes.Equal(saved, torn) {
		t.Fatalf("%s holds %q (%v), want exactly the removed bytes %q", sides[0], saved, err, torn)
	}
	var warn string
	for l := range strings.Lines(stderr) {
		if strings.Contains(l, "WARN") && strings.Contains(l, "torn") {
			warn = l
		}
	}
	for _, want := range []string{`"journal": "` + jpath + `"`, `"line": 5`, `"offset": ` + strconv.Itoa(len(durable)),
		`"bytes": ` + strconv.Itoa(len(torn)), `"saved_to": "` + sides[0] + `"`} {
		if !strings.Contains(warn, want) {
			t.Fatalf("the WARN line %q lacks %s; stderr:\n%s", warn, want, stderr)
		}
	}

	recs := e.journalRecords()
	if len(recs) != 8 || recs[4].Seq != 5 || recs[4].Kind != audit.KindRunStart {
		t.Fatalf("journal after the repair: %d records, the 5th %+v; want the second run from seq 5", len(recs), recs[min(4, len(recs)-1)])
	}
	if after, _ := os.ReadFile(jpath); !bytes.HasPrefix(after, durable) {
		t.Fatal("the records before the torn one were changed")
	}
	// audit verify still verifies, and points the auditor at the kept
	// bytes: the file, its size, when the record was removed and from which
	// line, and that patjanitor leaves the file to the operator.
	at, line, ok := audit.ParseTornPath(jpath, sides[0])
	if !ok || line != 5 {
		t.Fatalf("%s is not named by TornPath", sides[0])
	}
	code, out, stderr := e.run(nil, "audit", "verify")
	if code != 0 || !strings.Contains(out, "OK: 8 records") {
		t.Fatalf("audit verify: exit %d, %s%s", code, out, stderr)
	}
	want := fmt.Sprintf("their bytes kept in %s (%d bytes, removed %s from line 5) (patjanitor never removes or rotates these files: archive them with the journal)",
		sides[0], len(torn), at.Format("2006-01-02T15:04:05.000Z"))
	if !strings.Contains(out, want) {
		t.Fatalf("audit verify does not say %q:\n%s", want, out)
	}
	// The kept bytes are evidence like the journal: plan --out and
	// --report-file refuse to write over them, before anything is sent.
	e.sim.ResetRequests()
	for _, flag := range []string{"--out", "--report-file"} {
		code, _, stderr := e.run(nil, "plan", flag, sides[0])
		if code == 0 || !strings.Contains(stderr, "a torn record kept from the journal") || !strings.Contains(stderr, "refusing to overwrite") {
			t.Errorf("plan %s %s: exit %d, stderr %q", flag, sides[0], code, stderr)
		}
	}
	if n := len(e.sim.Requests()); n != 0 {
		t.Errorf("a refused plan sent %d requests", n)
	}
	if b, err := os.ReadFile(sides[0]); err != nil || !bytes.Equal(b, torn) {
		t.Fatalf("%s holds %q (%v) after the refused plans, want the torn bytes %q", sides[0], b, err, torn)
	}
}

// TestAuditVerifyNamesTornFilesBesideABracketedPath: the files that keep torn
// records' bytes are found by name, not by a glob pattern built from the
// journal's path. A state directory named like "pats[1]" (glob syntax) must
// not hide them from the auditor: audit verify still names the file.
func TestAuditVerifyNamesTornFilesBesideABracketedPath(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	dir := filepath.Join(e.dir, "pats[1]")
	jpath := filepath.Join(dir, JournalFile)
	if code, _, stderr := e.run(nil, "apply", "--auto-approve", "--journal", jpath); code != 0 {
		t.Fatal(stderr)
	}
	durable, err := os.ReadFile(jpath)
	if err != nil {
		t.Fatal(err)
	}
	last := durable[bytes.LastIndexByte(durable[:len(durable)-1], '\n')+1:]
	torn := last[:len(last)/2]
	if err := os.WriteFile(jpath, append(bytes.Clone(durable), torn...), 0o600); err != nil {
		t.Fatal(err)
	}
	e.add("stale-2", "o2", 400*wfDay, 200*wfDay)
	if code, _, stderr := e.run(nil, "apply", "--auto-approve", "--journal", jpath); code != 0 {
		t.Fatalf("apply after the crash: exit %d, %s", code, stderr)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var sides []string
	for _, en := range entries {
		if strings.HasPrefix(en.Name(), JournalFile+".torn-") {
			sides = append(sides, filepath.Join(dir, en.Name()))
		}
	}
	if len(sides) != 1 {
		t.Fatalf("files keeping the torn bytes: %v, want one beside the journal", sides)
	}
	if saved, err := os.ReadFile(sides[0]); err != nil || !bytes.Equal(saved, torn) {
		t.Fatalf("%s holds %q (%v), want %q", sides[0], saved, err, torn)
	}
	code, out, stderr := e.run(nil, "audit", "verify", jpath)
	if code != 0 || !strings.Contains(out, "OK: 8 records") {
		t.Fatalf("audit verify: exit %d, %s%s", code, out, stderr)
	}
	if !strings.Contains(out, "kept in "+sides[0]) {
		t.Fatalf("audit verify does not name %s, which keeps a torn record's bytes:\n%s", sides[0], out)
	}
}
