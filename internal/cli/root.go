// Package cli builds patjanitor's command tree. Each command lives in its own file
// and turns flags into a call into the internal packages; nothing here decides
// anything about tokens.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Streams are the process's standard streams, injected so tests can run commands
// in-process.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// globals are the flags every command shares.
type globals struct {
	streams   Streams
	config    string
	logLevel  string
	logFormat string
	stateDir  string
}

// DefaultStateDir is where the journal and state live unless --state-dir says
// otherwise. It is relative so that a first run works without root; the systemd
// unit and the container set it to their state directories.
const DefaultStateDir = ".patjanitor"

// exitError carries a specific exit code (for example 2 from plan
// --detailed-exitcode) through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// Main runs patjanitor with args and returns the process exit code.
func Main(ctx context.Context, args []string, s Streams) int {
	root := newRootCmd(s)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(s.Err, "patjanitor:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(s.Err, "patjanitor:", err)
	return 1
}

func newRootCmd(s Streams) *cobra.Command {
	g := &globals{streams: s}
	root := &cobra.Command{
		Use:           "patjanitor",
		Short:         "Keep the personal access tokens of a SailPoint Identity Security Cloud tenant clean",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	f := root.PersistentFlags()
	f.StringVarP(&g.config, "config", "c", "policies.yaml", "config and policies file")
	f.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&g.logFormat, "log-format", "console", "log format: json or console")
	f.StringVar(&g.stateDir, "state-dir", DefaultStateDir, "directory for the journal and state")

	root.AddCommand(
		newVersionCmd(g),
		newSimCmd(g),
		newValidateCmd(g),
		newServeCmd(g),
		newPlanCmd(g), newApplyCmd(g), newApproveCmd(g), newDemoCmd(g), newAuditCmd(g),
		newSnoozeCmd(g), newSnoozesCmd(g), newNotifyCmd(g),
	)
	return root
}

// logger builds the process logger from --log-level and --log-format. Logs go to
// stderr so that stdout carries only reports.
func (g *globals) logger() (*zap.Logger, error) {
	var level zapcore.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch g.logFormat {
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, fmt.Errorf("--log-format: %q is not json or console", g.logFormat)
	}
	// Lock: the engine logs from several workers, and Err may be any io.Writer.
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(g.streams.Err)), level)
	return zap.New(core), nil
}
