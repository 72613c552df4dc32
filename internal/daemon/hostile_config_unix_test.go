//go:build unix

package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// releaseFIFO lets a reader blocked opening or reading the FIFO at path go
// on (it reads an empty file), so that a test of code that blocks on it
// fails instead of hanging forever.
func releaseFIFO(path string) {
	if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		_ = f.Close()
	}
}

// A FIFO, a directory or a device swapped in for the config is refused by a
// reload, naming the file and what it is, and the running config stays, as
// for a broken file (TestReloadBySignal). os.ReadFile blocked forever on
// the FIFO: the daemon hung in its reload and took no further one.
func TestHostileReloadConfigNotRegular(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	h := newHarness(t, configYAML("@daily", policyYAML("a", "enforce", "")), func(o *Options) { o.Logger = zap.New(core) })
	h.start()
	gen := h.d.gen.Load()
	good, err := os.ReadFile(h.path)
	if err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// Runs before the harness stops the daemon (cleanups run last first).
	t.Cleanup(func() { releaseFIFO(h.path) })

	for i, c := range []struct {
		name, want string
		swap       func()
	}{
		{"FIFO", " is a FIFO, not a regular file: refused", func() { mustRename(t, fifo, h.path) }},
		{"directory", " is a directory, not a regular file: refused", func() { mustRename(t, t.TempDir(), h.path) }},
		{"device", " is a device, not a regular file: refused", func() { mustSymlink(t, "/dev/null", h.path) }},
	} {
		if err := os.RemoveAll(h.path); err != nil {
			t.Fatal(err)
		}
		c.swap()
		h.reload <- struct{}{}
		waitFor(t, "the refused reload of a "+c.name, 10*time.Second, func() bool { r, _ := h.metrics.get(); return len(r) == 2*i+2 })
		if r, _ := h.metrics.get(); r[2*i+1] {
			t.Errorf("%s: reloaded successfully", c.name)
		}
		if h.d.gen.Load() != gen {
			t.Errorf("%s: a refused reload replaced the running config", c.name)
		}
		if code, _ := h.get("/readyz"); code != 200 {
			t.Errorf("%s: /readyz after a refused reload = %d: the old config still runs", c.name, code)
		}
		failed := logs.FilterMessage("config reload failed; keeping the running config").All()
		if len(failed) != i+1 || failed[i].ContextMap()["error"] != h.path+c.want {
			t.Errorf("%s: reload failures logged %v, want one more with the error %s%s", c.name, failed, h.path, c.want)
		}

		// The file back, the next signal loads it.
		if err := os.RemoveAll(h.path); err != nil {
			t.Fatal(err)
		}
		writeFile(t, h.path, string(good))
		h.reload <- struct{}{}
		waitFor(t, "the reload after the "+c.name, 10*time.Second, func() bool { r, _ := h.metrics.get(); return len(r) == 2*i+3 })
		if r, _ := h.metrics.get(); !r[2*i+2] {
			t.Errorf("%s: the good file back did not reload", c.name)
		}
		gen = h.d.gen.Load()
	}
	if r, _ := h.metrics.get(); !slices.Equal(r, []bool{true, false, true, false, true, false, true}) {
		t.Errorf("reloads %v", r)
	}
}

// New refuses a FIFO as the config at once, naming it, instead of blocking
// serve's start until a writer comes.
func TestHostileStartConfigFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policies.yaml")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := New(Options{ConfigPath: path, Load: shortLoad, NewRunner: (&fakeRunners{}).newRunner,
			Registry: prometheus.NewRegistry(), Metrics: &fakeMetrics{}, ListenAddress: "127.0.0.1:0"})
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		releaseFIFO(path)
		err = <-done
		t.Fatalf("New blocked on a FIFO config (released: %v)", err)
	}
	if want := "read config: " + path + " is a FIFO, not a regular file: refused"; err == nil || err.Error() != want {
		t.Errorf("New = %v, want %q", err, want)
	}
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
