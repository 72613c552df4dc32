// Package plandir is serve's exchange with reviewers under approvals: a
// directory where the daemon leaves each run's plan for review, and where
// reviewers drop the plans they signed.
//
//	pending/   plans written by serve's runs, waiting for signatures
//	approved/  PLAN + PLAN.sig put here by reviewers, for serve to apply
//	applied/   approved plans serve applied (with PLAN.result: what became of them)
//	rejected/  approved plans serve refused (with PLAN.result: why)
//
// A plan is moved with its signature file, so applied/ and rejected/ keep
// the evidence of every decision next to the journal's record of it.
package plandir

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/patjanitor/patjanitor/internal/approval"
	"github.com/patjanitor/patjanitor/internal/atomicfile"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// The subdirectories.
const (
	Pending  = "pending"
	Approved = "approved"
	Applied  = "applied"
	Rejected = "rejected"
)

// Dir is a plans directory.
type Dir struct{ Root string }

// Init creates the subdirectories. They are 0750: reviewers of the daemon's
// group read the pending plans (they list token and owner names) and drop
// signed ones into approved/, nobody else.
//
// A directory that others (not the group) may write to is refused: anyone on
// the machine could drop files for the daemon to read every run, replace the
// evidence in applied/ and rejected/, or remove pending plans.
func (d Dir) Init() error {
	for _, sub := range []string{Pending, Approved, Applied, Rejected} {
		if err := os.MkdirAll(filepath.Join(d.Root, sub), 0o750); err != nil {
			return fmt.Errorf("plans directory: %w", err)
		}
	}
	for _, dir := range []string{d.Root, filepath.Join(d.Root, Pending), filepath.Join(d.Root, Approved), filepath.Join(d.Root, Applied), filepath.Join(d.Root, Rejected)} {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("plans directory: %w", err)
		}
		if fi.Mode().Perm()&0o002 != 0 {
			return fmt.Errorf("plans directory %s is writable by others (mode %04o): anyone on the machine could drop files into it or replace the evidence of applied plans; run `chmod o-w %s`",
				dir, fi.Mode().Perm(), dir)
		}
	}
	return nil
}

// WritePending saves a run's plan as pending/<runID>.json, atomically (a
// reviewer never reads half a plan), and returns its path.
func (d Dir) WritePending(p *plan.Plan) (string, error) {
	var buf bytes.Buffer
	if err := plan.Write(&buf, p); err != nil {
		return "", fmt.Errorf("encode the plan: %w", err)
	}
	name := filepath.Join(d.Root, Pending, safeName(p.RunID)+".json")
	if err := atomicfile.Write(name, buf.Bytes(), 0o640); err != nil {
		return "", fmt.Errorf("save the plan for review: %w", err)
	}
	return name, nil
}

// CountPending counts the plans waiting in pending/.
func (d Dir) CountPending() (int, error) {
	names, err := plans(filepath.Join(d.Root, Pending))
	return len(names), err
}

// ApprovedPlans lists approved/*.json in name order (run ids sort by time).
func (d Dir) ApprovedPlans() ([]string, error) {
	return plans(filepath.Join(d.Root, Approved))
}

// StoreApproved stores a signed plan in approved/ as name: the signature
// file first, then the plan, each atomically, so the daemon never judges a
// plan before its signatures are there. An existing plan of that name is
// not replaced.
func (d Dir) StoreApproved(name string, planData, sigData []byte) (string, error) {
	dest := filepath.Join(d.Root, Approved, safeName(strings.TrimSuffix(name, ".json"))+".json")
	if _, err := os.Stat(dest); err == nil {
		return "", fmt.Errorf("%s is already waiting in the approved directory", filepath.Base(dest))
	}
	if err := atomicfile.Write(approval.SigFile(dest), sigData, 0o640); err != nil {
		return "", err
	}
	if err := atomicfile.Write(dest, planData, 0o640); err != nil {
		return "", err
	}
	return dest, nil
}

// Settle moves an approved plan and its signature file to applied/ or
// rejected/, with a .result file saying what happened, and removes the
// pending copy of the same plan, which needs no more review. A plan of the
// same name settled before (the same plan dropped in approved/ again) keeps
// its files: this one goes to NAME-2.json, NAME-3.json, ...
func (d Dir) Settle(planFile, to, result string) error {
	base := filepath.Base(planFile)
	dest := freeName(filepath.Join(d.Root, to), base)
	if err := atomicfile.Write(dest+".result", []byte(resultText(result)), 0o640); err != nil {
		return err
	}
	if err := os.Rename(approval.SigFile(planFile), approval.SigFile(dest)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("move %s: %w", approval.SigFile(planFile), err)
	}
	if err := os.Rename(planFile, dest); err != nil {
		return fmt.Errorf("move %s: %w", planFile, err)
	}
	if err := os.Remove(filepath.Join(d.Root, Pending, base)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// freeName returns dir/base, or dir/STEM-N.EXT for the first N from 2 for
// which none of the plan, its .sig and its .result exists: settling never
// replaces the evidence of an earlier decision.
func freeName(dir, base string) string {
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	name := filepath.Join(dir, base)
	for n := 2; taken(name); n++ {
		name = filepath.Join(dir, fmt.Sprintf("%s-%d%s", stem, n, ext))
	}
	return name
}

func taken(plan string) bool {
	for _, f := range []string{plan, approval.SigFile(plan), plan + ".result"} {
		if _, err := os.Lstat(f); !errors.Is(err, os.ErrNotExist) {
			return true
		}
	}
	return false
}

// resultText is what a .result file holds: reviewers read it with cat, and
// the result quotes text from the plan file, which whoever could write to
// approved/ chose. Each line is escaped for a terminal (untrusted.Terminal):
// no control sequence reaches the reader's terminal.
func resultText(result string) string {
	lines := strings.Split(strings.TrimRight(result, "\n"), "\n")
	for i, l := range lines {
		lines[i] = untrusted.Terminal(l)
	}
	return strings.Join(lines, "\n") + "\n"
}

func plans(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("plans directory: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".json") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// safeName keeps a run id usable as a file name whatever it holds.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, s)
}
