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
	"sync"
	"time"

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

// Submit stores a signed plan that was handed over (serve's POST /approve)
// in approved/, named after its run id, once it is judged: the plan must be
// intact (its planHash) and its signatures (sigData, a signature file's
// content) must satisfy pol at the time now. A refused submission stores
// nothing. It returns the stored plan's path and the plan.
func (d Dir) Submit(pol *approval.Policy, planData, sigData []byte, now time.Time) (string, *plan.Plan, error) {
	p, err := plan.Read(bytes.NewReader(planData))
	if err != nil {
		return "", nil, fmt.Errorf("plan: %w", err)
	}
	if err := p.VerifyHash(); err != nil {
		return "", nil, fmt.Errorf("plan: does not match its planHash (edited or damaged): %w", err)
	}
	entries, err := approval.ParseSigFile("sig", sigData)
	if err != nil {
		return "", nil, err
	}
	if err := pol.Check(planData, entries, now).Err(); err != nil {
		return "", nil, err
	}
	path, err := d.StoreApproved(p.RunID, planData, sigData)
	if err != nil {
		return "", nil, err
	}
	return path, p, nil
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

// SignedPlans lists the plans of approved/ that are ready to be judged, in
// name order: those whose signature file is there. A plan without one is
// being copied in, or its signatures are still to come: reviewers move the
// .sig in first. A .sig that is there as a symbolic link (also one leading
// nowhere) counts as there: the plan is judged, and refused for it, rather
// than left waiting.
func (d Dir) SignedPlans() ([]string, error) {
	files, err := d.ApprovedPlans()
	if err != nil {
		return nil, err
	}
	out := files[:0]
	for _, f := range files {
		if _, err := os.Lstat(approval.SigFile(f)); errors.Is(err, os.ErrNotExist) {
			continue
		}
		out = append(out, f)
	}
	return out, nil
}

// Prune removes the pending plans older than maxAge at the time now (apply
// refuses a plan older than its maximum age: nobody can approve them any
// more) and returns how many still wait for review.
func (d Dir) Prune(now time.Time, maxAge time.Duration) (int, error) {
	files, err := filepath.Glob(filepath.Join(d.Root, Pending, "*.json"))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && now.Sub(fi.ModTime()) > maxAge {
			_ = os.Remove(f)
			continue
		}
		n++
	}
	return n, nil
}

// Watch notices the signed plans that appear in approved/, or are replaced
// there, so that each is announced once (serve
// --apply-approved-immediately). It is safe for concurrent use.
type Watch struct {
	dir  Dir
	mu   sync.Mutex
	seen map[string]time.Time // path: modification time when last seen
}

// Watch returns a Watch of d's approved/ that has seen nothing yet.
func (d Dir) Watch() *Watch { return &Watch{dir: d, seen: map[string]time.Time{}} }

// Saw records a plan as seen as it is now (one stored by Submit, which its
// caller announces itself).
func (w *Watch) Saw(path string) {
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen[path] = fi.ModTime()
}

// New returns the signed plans of approved/ not seen before, or modified
// since they were, and records them as seen. A plan no longer listed is
// forgotten: the watch remembers what approved/ holds, not every plan the
// daemon ever applied, and a plan settled and later dropped in again under
// the same name is another file, announced again.
//
// The lock is held across the listing: a plan Saw records (stored before
// Saw is called) is then either in this listing or recorded after it, and
// never forgotten as gone by a listing older than the file.
func (w *Watch) New() ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	files, err := w.dir.SignedPlans()
	if err != nil {
		return nil, err
	}
	seen := make(map[string]time.Time, len(files))
	var out []string
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			continue
		}
		seen[f] = fi.ModTime()
		if old, known := w.seen[f]; known && old.Equal(fi.ModTime()) {
			continue
		}
		out = append(out, f)
	}
	w.seen = seen
	return out, nil
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

// taken reports whether a file of plan's name is there. Only a file that
// is there takes a name. An error other than "does not
// exist" (the destination is not a directory, or not searchable) does not:
// every name would fail the same way, and counting up past them looped
// forever; the write that follows reports the error.
func taken(plan string) bool {
	for _, f := range []string{plan, approval.SigFile(plan), plan + ".result"} {
		if _, err := os.Lstat(f); err == nil {
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
