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

	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/report"
)

type planFlags struct {
	format   string
	out      string
	detailed bool
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
'patjanitor apply PLAN' to execute later.

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
	f.StringVar(&o.out, "out", "", "also save the plan document (JSON) to this file")
	f.BoolVar(&o.detailed, "detailed-exitcode", false, "exit 2 when enforce-mode actions are pending, 0 when none")
	return cmd
}

func runPlan(cmd *cobra.Command, g *globals, o planFlags) error {
	if !slices.Contains(report.Formats(), o.format) {
		return fmt.Errorf("-o %q: want one of %s", o.format, strings.Join(report.Formats(), ", "))
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
	conn, err := connect(cfg, nil)
	if err != nil {
		return err
	}
	eng, err := janitor.New(janitor.Options{
		Config: cfg, Tenant: conn.client, TenantURL: conn.client.BaseURL(),
		APIVersion: conn.client.Version(), ClientID: conn.client.ClientID(), Logger: log,
	})
	if err != nil {
		return err
	}
	pl, planErr := eng.Plan(cmd.Context())
	if pl == nil {
		return planErr
	}
	// Only the plan document is needed from here on; letting the inventory
	// go lets the collector reclaim the listing of a large tenant before the
	// report is written.
	p := pl.Plan
	pl = nil
	if err := writePlanOutputs(g.streams.Out, p, o); err != nil {
		return err
	}
	if planErr != nil {
		return &exitError{code: 1, err: planErr}
	}
	if o.detailed && len(p.Pending()) > 0 {
		// A tripped guardrail still counts as pending: the actions are
		// wanted, and apply will refuse them with the reason.
		return &exitError{code: 2}
	}
	return nil
}

// writePlanOutputs saves the plan document to --out and renders the report.
// With -o json the report is the document itself, so it is encoded once and
// written to both (a 100,000-token plan is tens of megabytes).
func writePlanOutputs(stdout io.Writer, p *plan.Plan, o planFlags) error {
	if o.out == "" {
		if err := report.Render(stdout, p, o.format); err != nil {
			return fmt.Errorf("render the report: %w", err)
		}
		return nil
	}
	f, err := createPlanFile(o.out)
	if err != nil {
		return err
	}
	defer f.abort()
	w := io.Writer(f.w)
	if o.format == report.FormatJSON {
		w = io.MultiWriter(f.w, stdout)
	}
	if err := plan.Write(w, p); err != nil {
		return fmt.Errorf("save the plan to %s: %w", o.out, err)
	}
	if err := f.commit(); err != nil {
		return err
	}
	if o.format != report.FormatJSON {
		if err := report.Render(stdout, p, o.format); err != nil {
			return fmt.Errorf("render the report: %w", err)
		}
	}
	return nil
}

// planFile writes a plan document atomically: into a temporary file in the
// same directory, renamed over the target by commit, so that a reader (or an
// apply) never sees half a plan. A target that is not a regular file
// (/dev/null, a FIFO) is written into directly rather than replaced.
type planFile struct {
	path string
	f    *os.File
	w    *bufio.Writer
	tmp  bool
	done bool
}

func createPlanFile(path string) (*planFile, error) {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("save the plan: %w", err)
		}
		return &planFile{path: path, f: f, w: bufio.NewWriterSize(f, 1<<16)}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, fmt.Errorf("save the plan: %w", err)
	}
	return &planFile{path: path, f: f, w: bufio.NewWriterSize(f, 1<<16), tmp: true}, nil
}

func (pf *planFile) commit() error {
	pf.done = true
	err := pf.w.Flush()
	if err == nil && pf.tmp {
		err = pf.f.Chmod(0o644)
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
		return fmt.Errorf("save the plan to %s: %w", pf.path, err)
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
