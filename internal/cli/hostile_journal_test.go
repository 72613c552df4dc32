package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
)

// The journal while serve runs: serve holds the journal open for its
// lifetime. Whatever happens to the file between runs (deleted, truncated,
// edited), the next run must change nothing, fail with an error that says
// what happened, count as failed (runs_total{result="failed"} and
// last_successful < last_run: what PatjanitorRunsFailing fires on), and write
// nothing to the file it holds.
func TestHostileServeJournalChangedBetweenRuns(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, path string) (check func(t *testing.T))
		want   string
	}{
		{"removed", func(t *testing.T, path string) func(t *testing.T) {
			// A descriptor that sees the unlinked inode, to prove that
			// nothing more is written to it.
			held, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = held.Close() })
			before, _ := held.Stat()
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) {
				after, _ := held.Stat()
				if after.Size() != before.Size() {
					t.Errorf("the unlinked journal grew from %d to %d bytes", before.Size(), after.Size())
				}
				if _, err := os.Stat(path); !os.IsNotExist(err) {
					t.Errorf("a new journal appeared at %s: %v", path, err)
				}
			}
		}, "no longer exists"},
		{"truncated to 0 bytes", func(t *testing.T, path string) func(t *testing.T) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) {
				if fi, _ := os.Stat(path); fi.Size() != 0 {
					t.Errorf("the truncated journal is %d bytes: serve kept appending", fi.Size())
				}
			}
		}, "0 bytes"},
		{"record edited in the middle", func(t *testing.T, path string) func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			edited := bytes.Replace(data, []byte(`"applied"`), []byte(`"failed!"`), 1)
			if bytes.Equal(edited, data) {
				t.Fatal("fixture: no applied outcome to edit")
			}
			if err := os.WriteFile(path, edited, 0o600); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) {
				if now, _ := os.ReadFile(path); !bytes.Equal(now, edited) {
					t.Errorf("serve wrote to the edited journal (%d -> %d bytes)", len(edited), len(now))
				}
			}
		}, "modified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newServeEnv(t, idnsim.Options{RateLimit: -1})
			first := e.addTokens("stale", 3, 200*24*time.Hour)
			cfg := e.writeConfig(e.configYAML("@every 1s", servePolicy("stale-delete", "enforce", "", "stale", false)))
			p := startInProcess(t, e, cfg, serveFlags{enablePlan: true})
			p.tickUntil("the first run's deletions", 1, func() bool {
				return len(deletedIDs(e.sim.Requests())) == len(first) &&
					scrape(t, p.base)[series("patjanitor_runs_total", "result", "success")] >= 1
			})
			// The runs after the first have nothing to do and write
			// nothing: the journal is at rest.
			check := tc.change(t, p.journal)
			late := e.addTokens("stale-b", 3, 200*24*time.Hour)
			failedBefore := scrape(t, p.base)[series("patjanitor_runs_total", "result", "failed")]
			var m map[string]float64
			p.tickUntil("two failed runs", 1, func() bool {
				m = scrape(t, p.base)
				return m[series("patjanitor_runs_total", "result", "failed")] >= failedBefore+2
			})
			if m["patjanitor_last_successful_run_timestamp_seconds"] >= m["patjanitor_last_run_timestamp_seconds"] {
				t.Errorf("last successful run %v is not before the last run %v: PatjanitorRunsFailing would not fire",
					m["patjanitor_last_successful_run_timestamp_seconds"], m["patjanitor_last_run_timestamp_seconds"])
			}
			runErr := latestRunError(t, p.base)
			for _, want := range []string{"journal", tc.want, "nothing was changed"} {
				if !strings.Contains(runErr, want) {
					t.Errorf("the run's error %q does not say %q", runErr, want)
				}
			}
			if err := p.stop(t); err != nil {
				t.Logf("serve: %v", err)
			}
			for _, id := range deletedIDs(e.sim.Requests()) {
				if slices.Contains(late, id) {
					t.Errorf("DELETE %s reached the tenant after the journal was %s", id, tc.name)
				}
			}
			for _, id := range late {
				if _, ok := e.sim.Token(id); !ok {
					t.Errorf("token %s is gone", id)
				}
			}
			check(t)
		})
	}
}

func latestRunError(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/plan")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var pr planResponse
	if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil || len(pr.Plans) == 0 {
		t.Fatalf("/plan: %v %+v", err, pr)
	}
	return pr.Plans[len(pr.Plans)-1].Error
}

// TestHostileApplyAfterMissingTail: records cut off the end of the journal
// (one, two, or all of them) are found by `audit verify` and by the next
// apply, which sends nothing to the tenant.
func TestHostileApplyAfterMissingTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func([]byte) []byte
	}{
		{"last record", func(d []byte) []byte { return d[:bytes.LastIndexByte(d[:len(d)-1], '\n')+1] }},
		{"last two records", func(d []byte) []byte {
			d = d[:bytes.LastIndexByte(d[:len(d)-1], '\n')+1]
			return d[:bytes.LastIndexByte(d[:len(d)-1], '\n')+1]
		}},
		{"emptied", func([]byte) []byte { return nil }},
		{"deleted", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newWF(t, wfPolicies, idnsim.Options{})
			e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
			if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
				t.Fatal(stderr)
			}
			jpath := filepath.Join(e.state, JournalFile)
			data, _ := os.ReadFile(jpath)
			if tc.cut == nil {
				if err := os.Remove(jpath); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(jpath, tc.cut(data), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.cut != nil {
				code, stdout, stderr := e.run(nil, "audit", "verify")
				if code != 1 || !strings.Contains(stderr, "MISSING TAIL") || !strings.Contains(stderr, "seq 4") {
					t.Fatalf("audit verify: exit %d\n%s%s", code, stdout, stderr)
				}
			}
			e.add("stale-2", "o2", 400*wfDay, 200*wfDay)
			before := len(e.mutations())
			code, _, stderr := e.run(nil, "apply", "--auto-approve")
			if code != 1 || !strings.Contains(stderr, "anchor") || !strings.Contains(stderr, "seq 4") {
				t.Fatalf("apply after the cut: exit %d, %s", code, stderr)
			}
			if got := len(e.mutations()); got != before || !e.present("stale-2") {
				t.Fatalf("apply sent %d mutations after the journal lost its tail", got-before)
			}
			// The way out, after investigating: accept the journal as it
			// is, on the record.
			if code, _, _ := e.run(nil, "audit", "reanchor"); code != 1 {
				t.Fatal("reanchor without --reason was accepted")
			}
			if code, out, stderr := e.run(nil, "audit", "reanchor", "--reason", "disk incident INC-42"); code != 0 {
				t.Fatalf("reanchor: exit %d, %s%s", code, out, stderr)
			}
			if code, out, stderr := e.run(nil, "audit", "verify"); code != 0 || !strings.Contains(out, "anchor: seq") {
				t.Fatalf("verify after reanchor: exit %d, %s%s", code, out, stderr)
			}
			if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 || e.present("stale-2") {
				t.Fatalf("apply after reanchor: exit %d, %s", code, stderr)
			}
			kinds := journalKinds(t, jpath)
			if kinds[audit.KindAnchorReset] != 1 {
				t.Fatalf("journal kinds %v, want one anchor-reset", kinds)
			}
		})
	}
}

// TestHostileJournalFlagNotAJournal: `--journal` naming a file that is not
// patjanitor's journal is refused and left byte for byte as it was; nothing
// reaches the tenant.
func TestHostileJournalFlagNotAJournal(t *testing.T) {
	for name, content := range map[string][]byte{
		"47 bytes starting with NUL": append([]byte{0}, bytes.Repeat([]byte{'a'}, 46)...),
		"1 MB of zeros":              make([]byte, 1<<20),
		"a text file":                []byte("[core]\n\tbare = false\n"),
	} {
		t.Run(name, func(t *testing.T) {
			e := newWF(t, wfPolicies, idnsim.Options{})
			e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
			path := filepath.Join(e.dir, "victim")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := e.run(nil, "apply", "--auto-approve", "--journal", path)
			if code != 1 || !strings.Contains(stderr, "not a patjanitor journal") {
				t.Fatalf("apply --journal %s: exit %d, %s", name, code, stderr)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, content) {
				t.Fatalf("the file was changed (%d -> %d bytes)", len(content), len(after))
			}
			if m := e.mutations(); len(m) != 0 || !e.present("stale-1") {
				t.Fatalf("%d mutations sent", len(m))
			}
			if code, _, _ := e.run(nil, "snooze", "tok-1", "--for", "1d", "--reason", "x", "--journal", path); code != 1 {
				t.Fatal("snooze accepted the file as a journal")
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, content) {
				t.Fatal("snooze changed the file")
			}
		})
	}
}

// TestHostileAuditVerifyFIFO: `audit verify` on a FIFO or a device refuses
// at once instead of blocking on the open.
func TestHostileAuditVerifyFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "journal.jsonl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, path := range []string{fifo, "/dev/zero"} {
		done := make(chan struct{})
		var code int
		var errb bytes.Buffer
		go func() {
			defer close(done)
			code = Main(t.Context(), []string{"--state-dir", dir, "audit", "verify", path}, Streams{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &errb})
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("audit verify %s blocked", path)
		}
		if code != 1 || !strings.Contains(errb.String(), "not a regular file") {
			t.Errorf("audit verify %s: exit %d, %s", path, code, errb.String())
		}
	}
}

// TestHostileReadOnlyCommandsCreateNothing: `snoozes`, `audit verify` and
// `validate` against a state directory that does not exist create no file
// and no directory.
func TestHostileReadOnlyCommandsCreateNothing(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	parent := t.TempDir()
	stateDir := filepath.Join(parent, "state", "deeper")
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		argv := append([]string{"-c", e.cfgPath, "--state-dir", stateDir}, args...)
		code := Main(t.Context(), argv, Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
		return code, out.String() + errb.String()
	}
	if code, out := run("snoozes"); code != 0 || !strings.Contains(out, "No snoozes") {
		t.Errorf("snoozes: exit %d, %s", code, out)
	}
	if code, out := run("snoozes", "--all"); code != 0 {
		t.Errorf("snoozes --all: exit %d, %s", code, out)
	}
	if code, out := run("audit", "verify"); code != 1 || !strings.Contains(out, "no such file") {
		t.Errorf("audit verify without a journal: exit %d, %s", code, out)
	}
	if code, out := run("validate"); code != 0 {
		t.Errorf("validate: exit %d, %s", code, out)
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		var names []string
		_ = filepath.WalkDir(parent, func(p string, _ os.DirEntry, _ error) error {
			names = append(names, p)
			return nil
		})
		t.Fatalf("read-only commands created %v", names)
	}
}
