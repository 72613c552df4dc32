package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeWalkthrough returns the README's reviewer walkthrough: the sh block
// that starts the simulator with --env-file.
func readmeWalkthrough(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range strings.Split(string(b), "```sh\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if strings.Contains(block, "sim --env-file sim.env &") {
			return block
		}
	}
	t.Fatal("README.md has no sh block starting the simulator with --env-file")
	return ""
}

// readmeBuild is the walkthrough's build line; patjanitorBin runs it.
const readmeBuild = "go build -o bin/patjanitor ./cmd/patjanitor"

// TestREADMEWalkthrough runs the README's reviewer walkthrough with bash, as
// written, in a temporary directory holding the shipped policies.yaml, against
// the simulator it starts. Two lines are adapted, and only these: the build
// line copies in the binary patjanitorBin built with that same line in the
// repository (the test must not write into the repository, and a second link
// of the same binary cost a second of CPU), and the simulator listens on a
// free port instead of 8975 (a developer's own simulator, or a parallel run,
// may hold it).
func TestREADMEWalkthrough(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed: cannot run the README's walkthrough")
	}
	// Mostly waiting for child processes: in parallel with the other
	// subprocess tests, after the package's sequential tests.
	t.Parallel()
	script := readmeWalkthrough(t)
	const build = readmeBuild
	const sim = "bin/patjanitor sim --env-file sim.env &"
	if !strings.Contains(script, build) || !strings.Contains(script, sim) {
		t.Fatalf("the walkthrough no longer has the lines this test adapts:\n%s", script)
	}
	dir := t.TempDir()
	script = strings.Replace(script, build, "mkdir -p bin && cp "+shellQuote(patjanitorBin(t))+" bin/patjanitor", 1)
	script = strings.Replace(script, sim, "bin/patjanitor sim --listen 127.0.0.1:0 --env-file sim.env &", 1)
	policies, err := os.ReadFile("../../policies.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policies.yaml"), policies, 0o644); err != nil {
		t.Fatal(err)
	}

	// The first build may take a minute on a cold cache; the bound is for a
	// hang (a walkthrough that never ends), not a timing assumption.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "-c", "set -euo pipefail\n"+script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATJANITOR_TENANT_URL=", "PATJANITOR_CLIENT_ID=", "PATJANITOR_CLIENT_SECRET=")
	// Its own process group, so that the simulator is stopped with the
	// script whatever happens.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // anything left behind
	}
	if runErr != nil {
		t.Fatalf("the walkthrough failed: %v\nstdout:\n%s\nstderr:\n%s", runErr, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"patjanitor simulated tenant", // sim's banner
		"unused-90d: report delete",   // plan's report
		"has no enforce-mode actions", // apply plan.json
		"OK: 0 records",               // audit verify
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the walkthrough's output lacks %q:\nstdout:\n%s\nstderr:\n%s", want, out, stderr.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "plan.json")); err != nil {
		t.Errorf("plan --out plan.json wrote no plan: %v", err)
	}
	// kill %1 stopped the simulator, which removed its env file.
	if _, err := os.Stat(filepath.Join(dir, "sim.env")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("sim.env is still there after the walkthrough: %v", err)
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
