//go:build unix

package regfile

import (
	"errors"
	"io"
	"io/fs"
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
	link, fifo := linkAndFIFO(t, regular)
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

// ReadAll reads a regular file of at most limit bytes whole, refuses a
// larger one naming the file and the limit (matching ErrTooLarge) and
// refuses what Open refuses, at once; a missing file is fs.ErrNotExist.
func TestReadAll(t *testing.T) {
	dir := t.TempDir()
	const limit = 64 << 10
	write := func(name string, n int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Repeat("x", n)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	small, exact, over := write("small", 10), write("exact", limit), write("over", limit+1)
	empty := write("empty", 0)
	link, fifo := linkAndFIFO(t, exact)
	for _, c := range []struct {
		path     string
		noFollow bool
		size     int    // bytes read, when want is ""
		want     string // the error
		is       error
	}{
		{small, false, 10, "", nil},
		{empty, true, 0, "", nil},
		{exact, true, limit, "", nil},
		{link, false, limit, "", nil},
		{over, false, 0, over + " is larger than 64 KiB, the most this file may be", ErrTooLarge},
		{link, true, 0, link + " is a symbolic link, not a regular file: refused", ErrNotRegular},
		{fifo, false, 0, fifo + " is a FIFO, not a regular file: refused", ErrNotRegular},
		{dir, false, 0, dir + " is a directory, not a regular file: refused", ErrNotRegular},
		{"/dev/zero", false, 0, "/dev/zero is a device, not a regular file: refused", ErrNotRegular},
		{filepath.Join(dir, "missing"), false, 0, filepath.Join(dir, "missing") + ": no such file or directory", fs.ErrNotExist},
	} {
		data, err := ReadAll(c.path, limit, c.noFollow)
		if c.want == "" {
			if err != nil || len(data) != c.size || strings.Trim(string(data), "x") != "" {
				t.Errorf("ReadAll(%s, %v) = %d bytes, %v; want %d bytes", c.path, c.noFollow, len(data), err, c.size)
			}
			continue
		}
		if err == nil || !strings.HasSuffix(err.Error(), c.want) || !errors.Is(err, c.is) || data != nil {
			t.Errorf("ReadAll(%s, %v) = %d bytes, %v; want %q (%v)", c.path, c.noFollow, len(data), err, c.want, c.is)
		}
	}
	// A file whose size says it is within the limit and that holds more
	// (a file in /proc says 0 bytes) is read no further than limit+1 bytes
	// and refused: the limit holds also for a file that grows as it is read.
	const proc = "/proc/self/status"
	if fi, err := os.Stat(proc); err == nil && fi.Size() == 0 {
		if data, err := ReadAll(proc, 16, false); !errors.Is(err, ErrTooLarge) || err.Error() != proc+" is larger than 16 bytes, the most this file may be" || data != nil {
			t.Errorf("ReadAll(%s, 16) = %q, %v; want it refused as too large", proc, data, err)
		}
	}
}

// linkAndFIFO makes, next to target, a symbolic link to it and a FIFO.
func linkAndFIFO(t *testing.T, target string) (link, fifo string) {
	t.Helper()
	link, fifo = target+".link", filepath.Join(filepath.Dir(target), "fifo")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	return link, fifo
}
