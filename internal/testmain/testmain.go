// Package testmain is the TestMain of every test binary in the module. It
// exists for one reason: built with -race, a Go program sleeps one second
// when it exits.
//
// The race detector's runtime waits atexit_sleep_ms (default 1000) at exit so
// that goroutines still running can report their races. A test binary has
// nothing left running by then (package testing already failed any test
// during which a race was found, and the binary on a race found between
// tests), so the wait is a second of wall time per package: with 29 test
// binaries run two at a time on a 2-CPU machine, some 15 seconds of
// `go test -race ./...` spent asleep (docs/performance.md, "The race
// detector's exit sleep").
package testmain

import (
	"os"
	"syscall"
	"testing"
)

// raceOption is what a test binary built with -race runs with, unless the
// caller set GORACE: the race runtime reads its options once, when the
// process starts, so the binary starts itself again with them.
const raceOption = "atexit_sleep_ms=0"

// Run runs the tests of m and exits with their status: the whole body of a
// TestMain that has nothing to set up.
func Run(m *testing.M) {
	NoRaceExitSleep()
	os.Exit(m.Run())
}

// NoRaceExitSleep, called first in a TestMain, starts the test binary again
// in its own process (exec: the same pid, arguments and descriptors, so go
// test's timeout, output and exit status are unchanged) with the race
// detector told not to sleep at exit. It does nothing without -race, when
// GORACE is set (the caller's options win, whatever they are), or when the
// binary cannot be started again (then the tests run here, with the sleep).
// The race detector still checks for races at exit, without waiting.
func NoRaceExitSleep() {
	if !raceEnabled {
		return
	}
	if _, set := os.LookupEnv("GORACE"); set {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	// On success Exec does not return.
	_ = syscall.Exec(exe, os.Args, append(os.Environ(), "GORACE="+raceOption))
}
