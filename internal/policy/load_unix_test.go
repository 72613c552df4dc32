//go:build unix

package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/regfile"
)

// Load reads a config only from a regular file (a symbolic link to one, as
// a Kubernetes ConfigMap, is followed), and no larger than the largest
// config: a file too large is refused, naming it and the limit, not read
// whole. A
// device is refused (/dev/zero was read until memory ran out; /dev/null
// here, so that a regression does not take the machine's memory).
func TestLoadReadsOnlyARegularFile(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte(strings.Repeat("#", 3*maxFileSize)), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := ReadFile(big); !errors.Is(err, regfile.ErrTooLarge) || data != nil {
		t.Fatalf("ReadFile(big) = %d bytes, %v; want it refused as too large", len(data), err)
	}
	if _, err := Load(big); err == nil || err.Error() != "read config: "+big+" is larger than 4 MiB, the most this file may be" {
		t.Errorf("Load(big) = %v", err)
	}
	link := filepath.Join(dir, "null.yaml")
	if err := os.Symlink("/dev/null", link); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(link); err == nil || err.Error() != "read config: "+link+" is a device, not a regular file: refused" {
		t.Errorf("Load(%s) = %v", link, err)
	}
	cfg := filepath.Join(dir, "policies.yaml")
	if err := os.WriteFile(cfg, []byte("policies:\n  - name: a\n    match: {unusedFor: 90d}\n    action: delete\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(cfg, filepath.Join(dir, "cm.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(filepath.Join(dir, "cm.yaml")); err != nil {
		t.Errorf("Load through a symbolic link: %v", err)
	}
}
