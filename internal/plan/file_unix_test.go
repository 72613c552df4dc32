//go:build unix

package plan_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/plan"
)

// TestHostileReadFileFIFOSwappedIn: whoever may write to serve's approved
// directory swaps a FIFO in for a plan file again and again, to catch the
// moment between a check of the path and its open. ReadFile must never
// block (an open of a FIFO without a writer waits forever, and with it
// serve's runs): each read returns the plan, or an error naming the file as
// a FIFO. The old ReadFile checked the path, then opened it: the swap
// between the two blocked it.
func TestHostileReadFileFIFOSwappedIn(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plan.json")
	p := &plan.Plan{Version: plan.Version, Tenant: "http://127.0.0.1:1", APIVersion: "v3",
		GeneratedAt: time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC), RunID: "r"}
	if err := p.Seal(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := plan.Write(&buf, p); err != nil {
		t.Fatal(err)
	}
	regular, fifo := filepath.Join(dir, "regular"), filepath.Join(dir, "fifo")
	if err := os.WriteFile(regular, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// Hard links, swapped in by rename: the path is always one of the two.
	link := func(src string) {
		tmp := path + ".tmp"
		_ = os.Remove(tmp)
		if err := os.Link(src, tmp); err != nil {
			t.Error(err)
			return
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Error(err)
		}
	}
	link(regular)
	stop := make(chan struct{})
	swapped := make(chan struct{})
	go func() {
		defer close(swapped)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				link(fifo)
			} else {
				link(regular)
			}
		}
	}()
	done := make(chan error)
	go func() {
		var last error
		for range 20000 {
			_, _, err := plan.ReadFile(path)
			if err != nil && !strings.Contains(err.Error(), path+" is a FIFO, not a regular file") && !os.IsNotExist(err) {
				last = err
			}
		}
		done <- last
	}()
	select {
	case err := <-done:
		close(stop)
		<-swapped
		if err != nil {
			t.Fatalf("ReadFile: %v, want the plan or the FIFO named", err)
		}
	case <-time.After(20 * time.Second):
		// Release the blocked open (a writer opens the FIFO), then fail.
		close(stop)
		<-swapped
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			_ = w.Close()
		}
		t.Fatal("ReadFile blocked on a FIFO swapped in for the plan file")
	}
}

// A FIFO, a directory or a device named as the plan is refused at once,
// with the file named; nothing blocks.
func TestReadFileRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for path, want := range map[string]string{
		fifo:        fifo + " is a FIFO, not a regular file",
		dir:         dir + " is a directory, not a regular file",
		"/dev/null": "/dev/null is a device, not a regular file",
	} {
		if _, _, err := plan.ReadFile(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadFile(%s) = %v, want %q", path, err, want)
		}
	}
}

// ReadDropped (serve's approved directory) refuses a symbolic link: the
// directory's listing shows regular files only, so a link was swapped in
// after it, and following it would read any file the daemon can.
func TestHostileReadDroppedSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere.json")
	if err := os.WriteFile(target, []byte(`{"version":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "plan.json")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if data, _, err := plan.ReadDropped(link); err == nil || data != nil || !strings.Contains(err.Error(), link+" is a symbolic link, not a regular file") {
		t.Fatalf("ReadDropped(link) = %q, %v", data, err)
	}
	if data, _, _ := plan.ReadFile(link); data == nil {
		t.Fatal("ReadFile does not follow a link (apply PLAN's own file)")
	}
}
