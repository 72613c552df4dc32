package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
)

// plan --out and --report-file never replaced the active journal, but a
// sealed segment beside it (journal-000001.jsonl) was fair game: a plan
// written over it, or through a link to it, replaced the evidence of earlier
// runs, and audit verify then failed on a journal nobody tampered with.
func TestHostilePlanOutRefusesJournalSegments(t *testing.T) {
	e := newWF(t, deleteStaleEnforce, idnsim.Options{})
	e.add("00000000000000000000000000000a01", "o1", 400*wfDay, 200*wfDay)
	// Two journaled commands with a tiny segment size: the first one's
	// records are sealed into journal-000001.jsonl.
	for _, id := range []string{"00000000000000000000000000000b02", "00000000000000000000000000000b03"} {
		if code, _, stderr := e.run(nil, "snooze", id, "--offline", "--for", "1d", "--reason", "r", "--journal-segment-size", "200"); code != 0 {
			t.Fatalf("snooze: %s", stderr)
		}
	}
	journal := filepath.Join(e.state, JournalFile)
	seg := audit.SegmentPath(journal, 1)
	segBefore, err := os.ReadFile(seg)
	if err != nil {
		t.Fatalf("no sealed segment: %v", err)
	}
	sym := filepath.Join(e.dir, "old-plan.json")
	if err := os.Symlink(seg, sym); err != nil {
		t.Fatal(err)
	}
	e.sim.ResetRequests()
	for _, args := range [][]string{{"--out", seg}, {"--out", sym}, {"--report-file", seg}} {
		code, _, stderr := e.run(nil, append([]string{"plan"}, args...)...)
		if code == 0 || !strings.Contains(stderr, "a sealed segment of the journal") || !strings.Contains(stderr, "refusing to overwrite") {
			t.Errorf("plan %v: exit %d, stderr %q", args, code, stderr)
		}
	}
	if n := len(e.sim.Requests()); n != 0 {
		t.Errorf("a refused plan sent %d requests", n)
	}
	if b, _ := os.ReadFile(seg); string(b) != string(segBefore) {
		t.Fatal("the sealed segment changed")
	}
	if code, stdout, stderr := e.run(nil, "audit", "verify"); code != 0 || !strings.Contains(stdout, "OK") {
		t.Fatalf("audit verify: %d %s%s", code, stdout, stderr)
	}
}
