package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/report"
)

type planFlags struct {
	format     string
	out        string
	reportFile string
	detailed   bool
	// notificationsDir: write the notifications the run would send, send none.
	notificationsDir string
}

func newPlanCmd(g *globals) *cobra.Command {
	var o planFlags
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what the policies would do now (read-only)",
		Long: `List the tenant's tokens, evaluate the policies and print the plan: every
token a policy matched, with the policy, the action, the mode and the reason
(the fields and cutoffs that decided it), the tokens skipped and why, and the
guardrails. plan never changes anything.

--out saves the plan document (JSON) for a reviewer to approve and for
'patjanitor apply PLAN' to execute later. --report-file writes the report
(in the -o format) to a file instead of stdout, for example to keep the HTML
report of a scheduled run.

Exit codes: 0 success; 1 error (including incomplete data from the tenant:
the report is still printed, with the reason). With --detailed-exitcode:
0 no enforce-mode action pending, 2 enforce-mode actions pending, 1 error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPlan(cmd, g, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.format, "output", "o", "table", "report format: "+strings.Join(report.Formats(), ", "))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(report.Formats(), cobra.ShellCompDirectiveNoFileComp))
	f.StringVar(&o.out, "out", "", "also save the plan document (JSON) to this file")
	f.StringVar(&o.reportFile, "report-file", "", "write the report (-o format) to this file instead of stdout")
	f.BoolVar(&o.detailed, "detailed-exitcode", false, "exit 2 when enforce-mode actions are pending, 0 when none")
	f.StringVar(&o.notificationsDir, "notifications-dir", "", "write the notifications a run would send here, rendered, one file each (sends none)")
	return cmd
}

func runPlan(cmd *cobra.Command, g *globals, o planFlags) error {
	if !slices.Contains(report.Formats(), o.format) {
		return fmt.Errorf("-o %q: want one of %s", o.format, strings.Join(report.Formats(), ", "))
	}
	if o.reportFile != "" && o.out != "" && filepath.Clean(o.reportFile) == filepath.Clean(o.out) {
		return fmt.Errorf("--report-file and --out both name %s: give the report and the plan document a file each", o.out)
	}
	if err := g.refuseOverwrite(map[string]string{"--out": o.out, "--report-file": o.reportFile}); err != nil {
		return err
	}
	log, err := g.logger()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	if o.notificationsDir != "" {
		// The templates are checked before the tenant is listed: a missing
		// template file is a config error, not something to learn after a
		// listing of the whole tenant.
		if _, err := notify.NewRenderer(notify.RenderOptions{Templates: notifyConfig(cfg.Notify).Templates, Location: cfg.Location}); err != nil {
			return fmt.Errorf("notifications: %w", err)
		}
	}
	conn, err := connect(cfg, nil, log)
	if err != nil {
		return err
	}
	st, err := g.runState(true)
	if err != nil {
		return err
	}
	if st != nil {
		defer func() { _ = st.Close() }()
	}
	opts := janitor.Options{
		Config: cfg, Tenant: conn.client, TenantURL: conn.client.BaseURL(),
		APIVersion: conn.client.Version(), ClientID: conn.client.ClientID(), Logger: log,
	}
	if st != nil {
		// Read only: Plan reads the snoozes and the grace marks (to tell a
		// due action from a pending one) and writes nothing.
		opts.Snoozes, opts.Marks = st, st
		opts.ClientState = st // read: when delete policies may delete
		opts.ClientMarks = st // read: a due API client action from a pending one
		opts.Proofs = st      // read: confirmed changes a listing shows not in effect
	}
	eng, err := janitor.New(opts)
	if err != nil {
		return err
	}
	pl, planErr := eng.Plan(cmd.Context())
	if pl == nil {
		return planErr
	}
	if o.notificationsDir != "" {
		paths, err := writePlanNotifications(o.notificationsDir, cfg, eng.DryRunMessages(pl, planErr))
		if err != nil {
			return err
		}
		fmt.Fprintf(g.streams.Err, "Wrote %d notifications to %s (none sent).\n", len(paths), o.notificationsDir)
	}
	// Only the plan document is needed from here on; letting the inventory
	// go lets the collector reclaim the listing of a large tenant before the
	// report is written.
	p := pl.Plan
	var unproven error
	if u := pl.Unproven(); len(u) > 0 {
		unproven = &janitor.UnprovenError{Unproven: u}
	}
	pl = nil
	if planErr != nil && o.out != "" {
		// A failed plan (incomplete data, authentication) is shown, never
		// saved: a plan document is something to approve and apply, and
		// this one must not be. An older file at --out stays as it was.
		fmt.Fprintf(g.streams.Err, "The plan failed: nothing was written to %s.\n", o.out)
		o.out = ""
	}
	if err := writePlanOutputs(g.streams.Out, p, o); err != nil {
		return err
	}
	if planErr != nil {
		return &exitError{code: 1, err: planErr}
	}
	if p.PartialView != "" {
		// Report-only: the plan is printed and the run is not an error, but a
		// reader of the exit code alone must not take it for a clean tenant.
		fmt.Fprintf(g.streams.Err, "warning: partial view, this plan covers only part of the tenant: %s\n", p.PartialView)
	}
	if unproven != nil {
		// The plan is printed and saved (it is still a plan), but a change
		// the tenant confirmed and did not make is an error of the tenant
		// that a reader of the exit code alone must not miss.
		return &exitError{code: 1, err: unproven}
	}
	if o.detailed && len(p.Pending())+len(p.PendingClients()) > 0 {
		// A tripped guardrail still counts as pending: the actions are
		// wanted, and apply will refuse them with the reason.
		return &exitError{code: 2}
	}
	return nil
}

// writePlanOutputs saves the plan document to --out and renders the report
// to stdout or --report-file. With -o json the report is the document
// itself, so it is encoded once and written to both (a 100,000-token plan is
// tens of megabytes).
func writePlanOutputs(stdout io.Writer, p *plan.Plan, o planFlags) error {
	rw := stdout
	ro := report.Options{Width: terminalWidth(stdout)}
	// On a terminal every format escapes what others chose (RenderTerminal);
	// a file or a pipe gets the data as it is.
	render := report.RenderOptions
	if isTerminal(stdout) && o.reportFile == "" {
		render = report.RenderTerminal
	}
	var rf *planFile
	if o.reportFile != "" {
		var err error
		if rf, err = createOutputFile(o.reportFile, "the report"); err != nil {
			return err
		}
		defer rf.abort()
		rw = rf.w
		ro.Width = report.DefaultWidth
	}
	if o.out == "" {
		if err := render(rw, p, o.format, ro); err != nil {
			return fmt.Errorf("render the report: %w", err)
		}
		return commitReport(rf)
	}
	f, err := createPlanFile(o.out)
	if err != nil {
		return err
	}
	defer f.abort()
	w := io.Writer(f.w)
	teed := o.format == report.FormatJSON && !isTerminal(rw)
	if teed {
		w = io.MultiWriter(f.w, rw)
	}
	if err := plan.Write(w, p); err != nil {
		return fmt.Errorf("save the plan to %s: %w", o.out, err)
	}
	if err := f.commit(); err != nil {
		return err
	}
	if !teed {
		if err := render(rw, p, o.format, ro); err != nil {
			return fmt.Errorf("render the report: %w", err)
		}
	}
	return commitReport(rf)
}

// commitReport finishes --report-file (nothing to do for stdout).
func commitReport(rf *planFile) error {
	if rf == nil {
		return nil
	}
	return rf.commit()
}

// planFile writes a plan document (or a report) atomically: into a
// temporary file in the same directory, renamed over the target by commit,
// so that a reader (or an apply) never sees half a plan. A target that is not
// a regular file (/dev/null, a FIFO) is written into directly rather than
// replaced.
type planFile struct {
	what string // "the plan" or "the report", for errors
	path string
	f    *os.File
	w    *bufio.Writer
	tmp  bool
	done bool
}

func createPlanFile(path string) (*planFile, error) { return createOutputFile(path, "the plan") }

func createOutputFile(path, what string) (*planFile, error) {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("save %s: %w", what, err)
		}
		return &planFile{what: what, path: path, f: f, w: bufio.NewWriterSize(f, 1<<16)}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, fmt.Errorf("save %s: %w", what, err)
	}
	return &planFile{what: what, path: path, f: f, w: bufio.NewWriterSize(f, 1<<16), tmp: true}, nil
}

func (pf *planFile) commit() error {
	pf.done = true
	err := pf.w.Flush()
	if err == nil && pf.tmp {
		// The plan and the report name tokens and owners: readable by
		// their owner only.
		err = pf.f.Chmod(0o600)
	}
	if cerr := pf.f.Close(); err == nil {
		err = cerr
	}
	if err == nil && pf.tmp {
		err = os.Rename(pf.f.Name(), pf.path)
	}
	if err != nil {
		if pf.tmp {
			_ = os.Remove(pf.f.Name())
		}
		return fmt.Errorf("save %s to %s: %w", pf.what, pf.path, err)
	}
	return nil
}

// abort removes the temporary file unless commit ran.
func (pf *planFile) abort() {
	if pf.done {
		return
	}
	_ = pf.f.Close()
	if pf.tmp {
		_ = os.Remove(pf.f.Name())
	}
}

// refuseOverwrite refuses an output (flag -> path) that is the config file,
// the journal or the state store: replacing one of them with a plan or a
// report would lose the policies or the record of every change. Files are
// compared with os.SameFile (device and inode), so a second path, a symlink
// or a hard link to one of them is refused too; a path that does not exist
// yet is nothing to overwrite.
func (g *globals) refuseOverwrite(outputs map[string]string) error {
	journal := g.journalPath("")
	protected := []struct{ what, path string }{
		{"the config file", g.config},
		{"the journal", journal},
		{"the state store", g.statePath()},
	}
	// The journal's sealed segments and the bytes of its torn records are
	// evidence too: a plan written over one breaks the chain of runs it
	// records.
	if segs, err := audit.SegmentFiles(journal); err == nil {
		for _, f := range segs {
			protected = append(protected, struct{ what, path string }{"a sealed segment of the journal", f})
		}
	}
	if torn, err := audit.TornFiles(journal); err == nil {
		for _, f := range torn {
			protected = append(protected, struct{ what, path string }{"a torn record kept from the journal", f})
		}
	}
	for _, flag := range []string{"--out", "--report-file"} {
		path := outputs[flag]
		if path == "" {
			continue
		}
		out, err := os.Stat(path)
		if err != nil {
			continue
		}
		for _, p := range protected {
			if fi, err := os.Stat(p.path); err == nil && os.SameFile(out, fi) {
				return fmt.Errorf("%s %s is %s (%s): refusing to overwrite it; write the plan elsewhere", flag, path, p.what, p.path)
			}
		}
	}
	return nil
}
