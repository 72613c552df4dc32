package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/idnsim"
)

// Invariant 10 under `audit reanchor`, which now accepts a journal ending in
// a torn record (and removes it, keeping its bytes beside it): a file that
// is not a journal, put where the journal was (someone's notes, a log, a
// zero-filled file after a disk incident), ends in a line without a newline
// too. Reanchor must refuse it as not a journal, leave every byte of it,
// write no .torn file and no anchor; the next apply still refuses to run
// and the tenant receives nothing. A guard: no defect found (only a line
// shaped like a record cut short, in a file whose first line is a record,
// is repaired).
func TestHostileReanchorNeverTruncatesAFileThatIsNotAJournal(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"notes without a final newline", []byte("operator notes\nINC-7: check the tokens")},
		{"one line", []byte("not a journal")},
		{"zero-filled", make([]byte, 4096)},
		{"json log", []byte("{\"level\":\"info\",\"msg\":\"x\"}\n{\"seq\":")},
		{"record-like start", []byte(`{"seq":7,"time":"2026-`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newWF(t, wfPolicies, idnsim.Options{})
			e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
			if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
				t.Fatal(stderr)
			}
			jpath := filepath.Join(e.state, JournalFile)
			if err := os.WriteFile(jpath, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := e.run(nil, "audit", "reanchor", "--reason", "disk incident INC-7")
			if code != 1 || !strings.Contains(stderr, "only a journal whose chain verifies can be reanchored") {
				t.Fatalf("reanchor of a file that is not a journal: exit %d\n%s%s", code, stdout, stderr)
			}
			if after, _ := os.ReadFile(jpath); !bytes.Equal(after, tc.data) {
				t.Fatalf("reanchor changed the file that is not a journal: %q, was %q", after, tc.data)
			}
			if torn, _ := filepath.Glob(jpath + ".torn-*"); len(torn) != 0 {
				t.Fatalf("torn files %v written for a file that is not a journal", torn)
			}
			e.add("stale-2", "o2", 400*wfDay, 200*wfDay)
			before := len(e.mutations())
			if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 1 {
				t.Fatalf("apply on a file that is not a journal: exit %d\n%s", code, stderr)
			}
			if got := len(e.mutations()); got != before || !e.present("stale-2") {
				t.Fatalf("the tenant received %d mutations with the journal replaced", got-before)
			}
			if after, _ := os.ReadFile(jpath); !bytes.Equal(after, tc.data) {
				t.Fatalf("apply changed the file that is not a journal: %q", after)
			}
		})
	}
}
