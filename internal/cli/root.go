// Package cli builds patjanitor's command tree. Each command lives in its own file
// and turns flags into a call into the internal packages; nothing here decides
// anything about tokens.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/patjanitor/patjanitor/internal/buildinfo"
	"github.com/patjanitor/patjanitor/internal/untrusted"
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

// terraformFlags are the single-dash spellings terraform users type, and
// what they mean here.
var terraformFlags = map[string]string{
	"-out":               "--out",
	"-detailed-exitcode": "--detailed-exitcode",
	"-auto-approve":      "--auto-approve",
}

// normalizeArgs rewrites terraform's single-dash long flags (-out,
// -detailed-exitcode, -auto-approve, also -out=FILE) to the double-dash
// spellings before cobra parses them.
//
// Why not leave them to pflag: it reads "-out plan.json" as the shorthand
// -o with the value "ut" (the report format) and plan.json as an argument,
// and "-auto-approve" as -a -u -t … : confusing errors for a habit that is
// unambiguous here, since no shorthand of patjanitor spells these words. Only
// these exact words are rewritten, and nothing after "--" or after a flag
// that takes the next argument as its value (so "--reason -out" keeps its
// reason).
func normalizeArgs(args []string) []string {
	out := make([]string, 0, len(args))
	takesValue := false
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if !takesValue {
			name, value, hasValue := strings.Cut(a, "=")
			if long, ok := terraformFlags[name]; ok {
				if hasValue {
					a = long + "=" + value
				} else {
					a = long
				}
			}
		}
		out = append(out, a)
		takesValue = !takesValue && valueFlag(a)
	}
	return out
}

// valueFlags are the flags (of any command) whose value may be the next
// argument; normalizeArgs leaves that argument alone.
var valueFlags = map[string]bool{
	"-c": true, "--config": true, "--config.file": true, "--state-dir": true,
	"--log-level": true, "--log.level": true, "--log-format": true, "--log.format": true,
	"--reason": true, "--by": true, "--for": true, "--out": true, "-o": true, "--output": true,
	"--report-file": true, "--journal": true, "--notifications-dir": true,
	"--accept-guardrail": true,
}

func valueFlag(a string) bool { return valueFlags[a] }

// flagAliases are the other spellings of global flags: Prometheus exporters'
// (--config.file, --log.level, --log.format), normalised to ours so that
// both work everywhere and help lists each flag once.
var flagAliases = map[string]string{
	"config.file": "config",
	"log.level":   "log-level",
	"log.format":  "log-format",
}

func normalizeFlagName(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	if to, ok := flagAliases[name]; ok {
		return pflag.NormalizedName(to)
	}
	return pflag.NormalizedName(name)
}

// Main runs patjanitor with args and returns the process exit code.
func Main(ctx context.Context, args []string, s Streams) int {
	root := newRootCmd(s)
	root.SetArgs(normalizeArgs(args))
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			printError(s.Err, ee.err)
		}
		return ee.code
	}
	printError(s.Err, err)
	return 1
}

// printError prints a command's error for a terminal, one line per error:
// an error carries what others said (a tenant's error message, a token's
// name in a plan file), so its text goes through untrusted.Terminal and a
// newline in it shows as \n instead of forging a line (a log line, a
// "deleted" row). Several errors joined (errors.Join, a config's problems)
// are printed one per line.
func printError(w io.Writer, err error) {
	if errs := joined(err); errs != nil {
		for _, e := range errs {
			printError(w, e)
		}
		return
	}
	// An error made of a headline and lines of its own (the signature
	// verdicts of approval.RefusedError, wrapped in what the command adds
	// before it) is printed a line each, each line escaped: only the lines
	// the error itself separates become lines.
	var b blockError
	if errors.As(err, &b) {
		if prefix, ok := strings.CutSuffix(err.Error(), b.Error()); ok {
			head, lines := b.Block()
			fmt.Fprintln(w, "patjanitor:", untrusted.Terminal(prefix+head))
			for _, l := range lines {
				fmt.Fprintln(w, "  "+untrusted.Terminal(l))
			}
			return
		}
	}
	fmt.Fprintln(w, "patjanitor:", untrusted.Terminal(err.Error()))
}

// blockError is an error that a terminal shows as a headline and lines.
type blockError interface {
	error
	Block() (head string, lines []string)
}

// joined returns the errors err joins when it is an errors.Join (its text is
// theirs, one per line), nil otherwise: an error type with its own message
// and several causes (janitor.IncompleteError) is printed as itself.
func joined(err error) []error {
	m, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return nil
	}
	errs := m.Unwrap()
	msgs := make([]string, 0, len(errs))
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	if len(errs) == 0 || err.Error() != strings.Join(msgs, "\n") {
		return nil
	}
	return errs
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
	i := buildinfo.Get()
	root.Version = i.Version
	root.SetVersionTemplate(fmt.Sprintf("patjanitor %s (commit %s, %s)\n", i.Version, i.Commit, i.GoVersion))
	root.SetGlobalNormalizationFunc(normalizeFlagName)
	f := root.PersistentFlags()
	f.StringVarP(&g.config, "config", "c", "policies.yaml", "config and policies file (alias --config.file)")
	f.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error (alias --log.level)")
	f.StringVar(&g.logFormat, "log-format", "console", "log format: json or console (alias --log.format)")
	f.StringVar(&g.stateDir, "state-dir", DefaultStateDir, "directory for the journal and state")
	_ = root.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions([]string{"debug", "info", "warn", "error"}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions([]string{"json", "console"}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("config", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	})
	_ = root.RegisterFlagCompletionFunc("state-dir", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveFilterDirs
	})

	root.AddCommand(
		uses(newVersionCmd(g)),
		uses(newSimCmd(g), useLog),
		uses(newValidateCmd(g), useConfig, useState),
		uses(newServeCmd(g), useConfig, useState, useLog),
		uses(newPlanCmd(g), useConfig, useState, useLog),
		uses(newApplyCmd(g), useConfig, useState, useLog),
		uses(newApproveCmd(g), useState),
		uses(newDemoCmd(g), useConfig, useLog),
		uses(newAuditCmd(g), useState),
		uses(newSnoozeCmd(g), useConfig, useState, useLog),
		uses(newUnsnoozeCmd(g), useState, useLog),
		uses(newSnoozesCmd(g), useState),
		uses(newNotifyCmd(g), useConfig, useLog),
		uses(newEnableCmd(g), useConfig, useState, useLog),
		uses(newUnprovenCmd(g), useState),
		uses(newAcknowledgeCmd(g), useState, useLog),
		uses(newStateCmd(g), useState, useLog),
	)
	defaultHelp := root.HelpFunc()
	root.SetHelpFunc(func(cmd *cobra.Command, args []string) {
		// Global flags are shown only where they matter: version's help
		// does not offer --state-dir. Hidden for this one rendering.
		var hidden []*pflag.Flag
		cmd.InheritedFlags().VisitAll(func(fl *pflag.Flag) {
			if group, ok := globalGroups[fl.Name]; ok && !usesGlobal(cmd, group) && !fl.Hidden {
				fl.Hidden = true
				hidden = append(hidden, fl)
			}
		})
		defaultHelp(cmd, args)
		for _, fl := range hidden {
			fl.Hidden = false
		}
	})
	return root
}

// The groups of global flags a command may use.
const (
	useConfig = "config"
	useState  = "state"
	useLog    = "log"
)

// globalGroups maps each global flag to its group.
var globalGroups = map[string]string{
	"config": useConfig, "state-dir": useState, "log-level": useLog, "log-format": useLog,
}

// usesAnnotation is the cobra annotation listing a command's global flag
// groups (inherited by its subcommands).
const usesAnnotation = "patjanitor/globals"

// uses records which global flag groups cmd uses, for its help.
func uses(cmd *cobra.Command, groups ...string) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[usesAnnotation] = strings.Join(groups, ",")
	return cmd
}

// usesGlobal reports whether cmd (or the nearest ancestor that says) uses
// the group. Commands that say nothing (help, completion) show them all.
func usesGlobal(cmd *cobra.Command, group string) bool {
	for c := cmd; c != nil; c = c.Parent() {
		if v, ok := c.Annotations[usesAnnotation]; ok {
			return slices.Contains(strings.Split(v, ","), group)
		}
	}
	return true
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
		enc = terminalEncoder{zapcore.NewConsoleEncoder(encCfg)}
	default:
		return nil, fmt.Errorf("--log-format: %q is not json or console", g.logFormat)
	}
	// Lock: the engine logs from several workers, and Err may be any io.Writer.
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(g.streams.Err)), level)
	return zap.New(core), nil
}

// checkStateDir refuses a state directory that group or others may write
// to: whoever can write there can replace or remove the journal, or plant a
// state store with snoozes that exempt tokens. A directory that does not
// exist yet is created 0700 by whoever opens it first.
func (g *globals) checkStateDir() error {
	fi, err := os.Stat(g.stateDir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("state dir: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("state dir %s is not a directory", g.stateDir)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("state dir %s is writable by group or others (mode %04o): anyone who can write there can replace the journal or the snoozes; run `chmod 700 %s`",
			g.stateDir, fi.Mode().Perm(), g.stateDir)
	}
	return nil
}

// completeFirstArg completes a command's one argument with what candidates
// returns, and never with file names.
func completeFirstArg(candidates func(*cobra.Command) []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return candidates(cmd), cobra.ShellCompDirectiveNoFileComp
	}
}
