package plandir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Settle into a destination that is not a directory (a read-only volume
// mounted wrong, a file where applied/ was) fails, promptly, naming the
// path, and leaves the plan and its signatures in approved/. Looking for a
// free name counted up forever instead: every candidate's Lstat failed with
// "not a directory", which it took for "taken", so serve's run hung with a
// busy CPU until the directory changed.
func TestHostileSettleDestinationNotADirectory(t *testing.T) {
	d := Dir{Root: filepath.Join(t.TempDir(), "plans")}
	if err := d.Init(); err != nil {
		t.Fatal(err)
	}
	approved := filepath.Join(d.Root, Approved, "reviewed.json")
	for _, f := range []string{approved + ".sig", approved} {
		if err := os.WriteFile(f, []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	dest := filepath.Join(d.Root, Applied)
	if err := os.Remove(dest); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dest, []byte("not a directory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Settle(approved, Applied, "applied") }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), dest) {
			t.Fatalf("Settle into a file: %v, want an error naming %s", err, dest)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Settle into a destination that is not a directory did not return")
	}
	for _, f := range []string{approved, approved + ".sig"} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%s left approved/: %v", f, err)
		}
	}
}
