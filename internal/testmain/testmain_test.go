package testmain

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { Run(m) }

// TestRaceBinaryRunsWithoutTheExitSleep: under -race, this binary was started
// again with the race detector's exit sleep off. A caller's own GORACE is
// kept as it was, which this test cannot tell from ours: it then only checks
// that GORACE is set.
func TestRaceBinaryRunsWithoutTheExitSleep(t *testing.T) {
	if !raceEnabled {
		t.Skip("built without -race: nothing to change")
	}
	got, set := os.LookupEnv("GORACE")
	if !set {
		t.Fatal("GORACE is unset: the test binary ran without being started again, and sleeps a second at exit")
	}
	if got != raceOption {
		t.Logf("GORACE=%q was set by the caller and kept", got)
	}
}

// TestEveryPackageUsesIt: each test binary of the module starts through this
// package, or it sleeps its second at exit again.
func TestEveryPackageUsesIt(t *testing.T) {
	root := filepath.Join("..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("the module's root: %v", err)
	}
	uses := map[string]bool{} // directory with tests -> one of them calls testmain
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		dir := filepath.Dir(path)
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		uses[dir] = uses[dir] || bytes.Contains(src, []byte("testmain.Run(m)")) || bytes.Contains(src, []byte("testmain.NoRaceExitSleep()"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	delete(uses, ".") // this package calls Run itself
	if len(uses) < 20 {
		t.Fatalf("found tests in %d directories: the walk missed the module", len(uses))
	}
	for dir, ok := range uses {
		if !ok {
			t.Errorf("%s: no TestMain calls testmain.Run(m) (or testmain.NoRaceExitSleep()): under -race its test binary sleeps a second at exit", dir)
		}
	}
}
