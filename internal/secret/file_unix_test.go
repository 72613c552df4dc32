//go:build unix

package secret

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHostileSecretFiles: a secret file path that names something other than
// a small regular file is refused at once. /dev/zero was read forever; a FIFO
// without a writer blocked in open; a huge file was read whole into memory.
func TestHostileSecretFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, []byte(strings.Repeat("x", MaxFileSize+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link-to-zero")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/dev/zero": "is a device, not a regular file",
		link:        "is a device, not a regular file",
		fifo:        "is a FIFO, not a regular file",
		dir:         "is a directory, not a regular file",
		big:         "is larger than 64 KiB",
	} {
		done := make(chan error, 1)
		go func() { _, err := FromFile(path); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
				t.Errorf("FromFile(%s) = %v, want an error naming the file and %q", path, err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("FromFile(%s) did not return: it blocks or reads forever", path)
		}
	}
	// At the limit is fine, and trimmed.
	ok := filepath.Join(dir, "ok")
	if err := os.WriteFile(ok, []byte(strings.Repeat("y", MaxFileSize-1)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := FromFile(ok); err != nil || len(s.Reveal()) != MaxFileSize-1 {
		t.Fatalf("a %d-byte secret file: %d bytes, %v", MaxFileSize, len(s.Reveal()), err)
	}
}
