//go:build unix

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/patjanitor/patjanitor/internal/idnsim"
)

// mode returns the permission bits of path.
func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// The plan, the report and the notifications name tokens, owners and their
// addresses: they are created for their owner only, whatever the umask
// allows.
func TestHostilePlanOutputsArePrivate(t *testing.T) {
	old := syscall.Umask(0o002)
	defer syscall.Umask(old)
	e := newWF(t, "", idnsim.Options{})
	urlFile := filepath.Join(e.dir, "hook-url")
	keyFile := filepath.Join(e.dir, "hook-key")
	for p, v := range map[string]string{urlFile: "http://127.0.0.1:1/hook", keyFile: "hmac-key"} {
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e.writeConfig(`notify:
  receivers:
    - name: siem
      webhook: {urlFile: ` + urlFile + `, hmacSecretFile: ` + keyFile + `}
  summary: [siem]
policies:
  - name: unused
    match: {unusedFor: 90d}
    action: delete
`)
	e.add("00000000000000000000000000000a01", "o1", 400*wfDay, 200*wfDay)
	// An existing plan file with loose permissions is replaced by a private one.
	out := filepath.Join(e.dir, "plan.json")
	if err := os.WriteFile(out, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, nd := filepath.Join(e.dir, "report.html"), filepath.Join(e.dir, "notifications")
	code, stdout, stderr := e.run(nil, "plan", "--out", out, "-o", "html", "--report-file", rep, "--notifications-dir", nd)
	if code != 0 {
		t.Fatalf("plan exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, p := range []string{out, rep} {
		if m := mode(t, p); m != 0o600 {
			t.Errorf("%s mode %04o, want 0600", p, m)
		}
	}
	if m := mode(t, nd); m != 0o700 {
		t.Errorf("notifications dir mode %04o, want 0700", m)
	}
	files, _ := os.ReadDir(nd)
	if len(files) == 0 {
		t.Fatal("no notification written")
	}
	for _, f := range files {
		if m := mode(t, filepath.Join(nd, f.Name())); m != 0o600 {
			t.Errorf("notification %s mode %04o, want 0600", f.Name(), m)
		}
	}
}

// plan --out (and --report-file) never replaces the config, the journal or
// the state store, however the path names them.
func TestHostilePlanOutRefusesConfigAndJournal(t *testing.T) {
	e := newWF(t, deleteStaleEnforce, idnsim.Options{})
	e.add("00000000000000000000000000000a01", "o1", 400*wfDay, 200*wfDay)
	// A journal and a state store to protect.
	if code, _, stderr := e.run(nil, "snooze", "00000000000000000000000000000b02", "--offline", "--for", "1d", "--reason", "r"); code != 0 {
		t.Fatalf("snooze: %s", stderr)
	}
	journal := filepath.Join(e.state, JournalFile)
	cfgBefore, _ := os.ReadFile(e.cfgPath)
	jBefore, _ := os.ReadFile(journal)

	hard := filepath.Join(e.dir, "hard-link.json")
	if err := os.Link(e.cfgPath, hard); err != nil {
		t.Fatal(err)
	}
	sym := filepath.Join(e.dir, "sym-link.json")
	if err := os.Symlink(journal, sym); err != nil {
		t.Fatal(err)
	}
	dotted := filepath.Join(e.dir, ".", "state", "..", "state", JournalFile)
	cases := []struct {
		args []string
		what string
	}{
		{[]string{"--out", e.cfgPath}, "the config file"},
		{[]string{"--out", hard}, "the config file"},
		{[]string{"--out", sym}, "the journal"},
		{[]string{"--out", dotted}, "the journal"},
		{[]string{"--report-file", filepath.Join(e.state, "state.db")}, "the state store"},
	}
	e.sim.ResetRequests()
	for _, c := range cases {
		code, stdout, stderr := e.run(nil, append([]string{"plan"}, c.args...)...)
		if code == 0 || !strings.Contains(stderr, "is "+c.what) || !strings.Contains(stderr, "refusing to overwrite") {
			t.Errorf("plan %v: exit %d, stderr %q", c.args, code, stderr)
		}
		_ = stdout
	}
	if n := len(e.sim.Requests()); n != 0 {
		t.Errorf("a refused plan sent %d requests", n)
	}
	if b, _ := os.ReadFile(e.cfgPath); string(b) != string(cfgBefore) {
		t.Fatal("the config file changed")
	}
	if b, _ := os.ReadFile(journal); string(b) != string(jBefore) {
		t.Fatal("the journal changed")
	}
}

// A state directory others can write to is refused by every command that
// uses it, with the fix in the message, before anything is listed or sent.
func TestHostileStateDirWritableByOthers(t *testing.T) {
	e := newWF(t, deleteStaleEnforce, idnsim.Options{})
	e.add("00000000000000000000000000000a01", "o1", 400*wfDay, 200*wfDay)
	if err := os.MkdirAll(e.state, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, perm := range []os.FileMode{0o770, 0o707, 0o1777} {
		if err := os.Chmod(e.state, perm); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"apply", "--auto-approve"},
			{"plan"},
			{"snooze", "00000000000000000000000000000a01", "--for", "1d", "--reason", "r"},
		} {
			code, stdout, stderr := e.run(nil, args...)
			want := "writable by group or others"
			fix := "chmod 700 " + e.state
			if code == 0 || !strings.Contains(stderr, want) || !strings.Contains(stderr, fix) {
				t.Errorf("%v with state dir %04o: exit %d\nstdout %s\nstderr %s", args, perm, code, stdout, stderr)
			}
		}
	}
	if m := e.mutations(); len(m) != 0 {
		t.Fatalf("mutations with an unsafe state dir: %v", m)
	}
	if _, err := os.Stat(filepath.Join(e.state, JournalFile)); !os.IsNotExist(err) {
		t.Fatalf("a journal was written into the unsafe state dir: %v", err)
	}
	// chmod 700 is the fix.
	if err := os.Chmod(e.state, 0o700); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply after chmod 700: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func TestSnoozeForZero(t *testing.T) {
	e := newWF(t, deleteStaleEnforce, idnsim.Options{})
	for _, d := range []string{"0s", "0d", "-1h"} {
		code, _, stderr := e.run(nil, "snooze", "00000000000000000000000000000a01", "--for", d, "--reason", "r")
		if code == 0 || !strings.Contains(stderr, "want a positive duration") || strings.Contains(stderr, "<nil>") {
			t.Errorf("--for %s: exit %d, stderr %q", d, code, stderr)
		}
	}
}
