//go:build unix

package notify

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A FIFO, a directory or a device (/dev/null: /dev/zero would, on a
// regression, read until memory runs out) as a template file, or as the email CA
// file, is refused at once with an error naming it and what it is.
// os.ReadFile blocked forever on the FIFO (in serve, a config reload hung on
// it) and read a device such as /dev/zero until memory ran out.
func TestHostileTemplateNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "digest.tmpl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	link := filepath.Join(dir, "null.tmpl")
	if err := os.Symlink("/dev/null", link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{fifo, "digest text template: " + fifo + " is a FIFO, not a regular file: refused"},
		{dir, "digest text template: " + dir + " is a directory, not a regular file: refused"},
		{link, "digest text template: " + link + " is a device, not a regular file: refused"},
	} {
		err := withinTimeout(t, fifo, func() error {
			_, err := NewRenderer(RenderOptions{Templates: Templates{Digest: TemplateFiles{Text: c.path}}})
			return err
		})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewRenderer with %s: %v, want %q", c.path, err, c.want)
		}
		err = withinTimeout(t, fifo, func() error { _, err := readCAFile(c.path); return err })
		if want := "read caFile: " + strings.TrimPrefix(c.want, "digest text template: "); err == nil || err.Error() != want {
			t.Errorf("readCAFile(%s): %v, want %q", c.path, err, want)
		}
	}
}

// withinTimeout runs f; when it has not returned after 10 seconds it
// releases a reader blocked on the FIFO (it then reads an empty file) and
// fails the test instead of hanging it.
func withinTimeout(t *testing.T, fifo string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			_ = w.Close()
		}
		err := <-done
		t.Fatalf("blocked on the FIFO %s (released: %v)", fifo, err)
		return err
	}
}
