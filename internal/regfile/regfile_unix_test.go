//go:build unix

package regfile

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Open refuses what is not a regular file at once, naming the file and what
// it is; with noFollow, a symbolic link too (also one to a regular file).
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(regular, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(regular, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, c := range []struct {
		path     string
		noFollow bool
		want     string // "" for success
	}{
		{regular, true, ""},
		{link, false, ""},
		{link, true, link + " is a symbolic link, not a regular file: refused"},
		{fifo, false, fifo + " is a FIFO, not a regular file: refused"},
		{dir, false, dir + " is a directory, not a regular file: refused"},
		{"/dev/null", false, "/dev/null is a device, not a regular file: refused"},
		{filepath.Join(dir, "missing"), false, "no such file or directory"},
	} {
		f, fi, err := Open(c.path, c.noFollow)
		if c.want == "" {
			if err != nil {
				t.Errorf("Open(%s, %v): %v", c.path, c.noFollow, err)
				continue
			}
			b, _ := io.ReadAll(f)
			_ = f.Close()
			if string(b) != "{}" || !fi.Mode().IsRegular() {
				t.Errorf("Open(%s) read %q", c.path, b)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%s, %v) = %v, want %q", c.path, c.noFollow, err, c.want)
		}
		if f != nil {
			t.Errorf("Open(%s) returned a file with its error", c.path)
		}
	}
}
