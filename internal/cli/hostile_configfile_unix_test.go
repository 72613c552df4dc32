//go:build unix

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/idnsim"
)

// A FIFO, a directory or a device as the config file makes validate and
// plan fail at once with an error naming the file and what it is, and
// nothing reaches the tenant. os.ReadFile blocked forever on the FIFO.
func TestHostileConfigFileNotRegular(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("t1", "o1", 400*wfDay, 200*wfDay)
	good := e.cfgPath
	fifo := filepath.Join(e.dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	dir := filepath.Join(e.dir, "dir.yaml")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	device := filepath.Join(e.dir, "null.yaml")
	if err := os.Symlink("/dev/null", device); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, what string }{{fifo, "a FIFO"}, {dir, "a directory"}, {device, "a device"}} {
		e.cfgPath = c.path
		for _, cmd := range [][]string{{"validate"}, {"plan"}} {
			before := len(e.sim.Requests())
			done := make(chan [3]any, 1)
			go func() {
				code, stdout, stderr := e.run(nil, cmd...)
				done <- [3]any{code, stdout, stderr}
			}()
			var r [3]any
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					_ = w.Close()
				}
				r = <-done
				t.Fatalf("%s with %s blocked (released: %v)", cmd[0], c.path, r)
			}
			want := "read config: " + c.path + " is " + c.what + ", not a regular file: refused"
			if r[0] != 1 || !strings.Contains(r[2].(string), want) {
				t.Errorf("%s with %s: exit %v, stderr %q, want 1 and %q", cmd[0], c.path, r[0], r[2], want)
			}
			if n := len(e.sim.Requests()); n != before {
				t.Errorf("%s with %s: %d requests reached the tenant", cmd[0], c.path, n-before)
			}
		}
	}
	if !e.present("t1") || len(e.mutations()) != 0 {
		t.Errorf("the tenant was changed: %v", e.mutations())
	}

	// The same config as a regular file behind a symbolic link (a
	// Kubernetes ConfigMap) plans, and reaches the tenant.
	link := filepath.Join(e.dir, "link.yaml")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	e.cfgPath = link
	if code, stdout, stderr := e.run(nil, "plan", "--detailed-exitcode"); code != 2 || !strings.Contains(stdout, "t1") {
		t.Errorf("plan through a symbolic link: exit %d\n%s%s", code, stdout, stderr)
	}
}
