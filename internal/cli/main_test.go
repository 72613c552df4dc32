package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/patjanitor/patjanitor/internal/testmain"
)

// binDir holds the patjanitor binary the subprocess tests share; TestMain
// removes it.
var binDir string

// buildBin builds the binary once per test binary: the crash, serve process,
// README walkthrough and benchmark tests each linked their own copy of the
// same binary. It runs the README's build line (readmeBuild) in the
// repository, with only the output path changed.
var buildBin = sync.OnceValues(func() (string, error) {
	// go test puts its own toolchain's bin directory first on PATH.
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("no go command on PATH: %w", err)
	}
	if binDir, err = os.MkdirTemp("", "patjanitor-bin-"); err != nil {
		return "", err
	}
	bin := filepath.Join(binDir, "patjanitor")
	cmd := exec.Command(goTool, "build", "-o", bin, "./cmd/patjanitor")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
})

// patjanitorBin is the patjanitor binary, for tests that need a real
// process: one that can be signalled or killed, or measured on its own.
func patjanitorBin(tb testing.TB) string {
	tb.Helper()
	bin, err := buildBin()
	if err != nil {
		tb.Fatal(err)
	}
	return bin
}

func TestMain(m *testing.M) {
	testmain.NoRaceExitSleep()
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}
