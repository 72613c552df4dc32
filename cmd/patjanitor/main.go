// Command patjanitor keeps the personal access tokens of a SailPoint Identity
// Security Cloud tenant clean. main only wires the process to internal/cli: the
// signals become a context, and the exit code comes back as a number.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/patjanitor/patjanitor/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
