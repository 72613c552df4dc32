//go:build unix

package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHostileSegmentNotRegular: a sealed segment beside the journal is
// replaced by a link to /dev/zero, a FIFO or a directory. Open walks every
// segment when it has no anchor to start from, and VerifyPath walks them
// all: both must refuse at once, naming the segment, instead of reading
// /dev/zero without end (or a FIFO as an empty file).
func TestHostileSegmentNotRegular(t *testing.T) {
	for _, kind := range []string{"device", "FIFO", "directory"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "journal.jsonl")
			j := openT(t, path, Options{SegmentBytes: 4096})
			var recs []Record
			for i := range 3 {
				recs = append(recs, runRecords(fmt.Sprintf("r%d", i), 4)...)
			}
			appendAll(t, j, recs)
			_ = j.Close()
			seg := SegmentPath(path, 2)
			if _, err := os.Stat(SegmentPath(path, 3)); err != nil {
				t.Fatalf("want at least 3 segments: %v", err)
			}
			must(t, os.Remove(seg))
			switch kind {
			case "device":
				must(t, os.Symlink("/dev/zero", seg))
			case "FIFO":
				if err := syscall.Mkfifo(seg, 0o600); err != nil {
					t.Skipf("mkfifo: %v", err)
				}
			case "directory":
				must(t, os.Mkdir(seg, 0o700))
			}
			want := seg + " is a " + kind + ", not a regular file"
			for name, call := range map[string]func() error{
				"Open": func() error {
					j, err := Open(path, Options{SegmentBytes: 4096})
					if err == nil {
						_ = j.Close()
					}
					return err
				},
				"VerifyPath": func() error { _, err := VerifyPath(path, VerifyOptions{}); return err },
			} {
				done := make(chan error, 1)
				go func() { done <- call() }()
				select {
				case err := <-done:
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Errorf("%s with segment 2 a %s = %v, want %q", name, kind, err, want)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("%s with segment 2 a %s did not return", name, kind)
				}
			}
		})
	}
}
