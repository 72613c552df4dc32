package plandir

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/plan"
)

func TestPendingApprovedSettle(t *testing.T) {
	d := Dir{Root: filepath.Join(t.TempDir(), "plans")}
	if err := d.Init(); err != nil {
		t.Fatal(err)
	}
	p := &plan.Plan{Version: plan.Version, Tenant: "http://127.0.0.1:1", APIVersion: "v3",
		GeneratedAt: time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC), RunID: "20261205T030000Z-ab/../x", Items: plan.NewItems()}
	if err := p.Seal(); err != nil {
		t.Fatal(err)
	}
	path, err := d.WritePending(p)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(path) != filepath.Join(d.Root, Pending) || strings.Contains(filepath.Base(path), "/") || filepath.Base(path) != "20261205T030000Z-ab_.._x.json" {
		t.Fatalf("pending plan at %s: a run id must not escape pending/", path)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("pending plan mode %v, %v", fi.Mode(), err)
	}
	if n, err := d.CountPending(); n != 1 || err != nil {
		t.Fatalf("CountPending = %d, %v", n, err)
	}

	// The reviewer's move: .sig first, then the plan.
	approved := filepath.Join(d.Root, Approved, filepath.Base(path))
	if err := os.WriteFile(path+".sig", []byte("sig"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Rename(path+".sig", approved+".sig")
	data, _ := os.ReadFile(path)
	_ = os.WriteFile(approved, data, 0o640) // a copy: pending/ keeps its own
	if got, err := d.ApprovedPlans(); err != nil || len(got) != 1 || got[0] != approved {
		t.Fatalf("ApprovedPlans = %v, %v", got, err)
	}
	if err := d.Settle(approved, Applied, "run x: applied 3\n"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"", ".sig", ".result"} {
		if _, err := os.Stat(filepath.Join(d.Root, Applied, filepath.Base(path)) + f); err != nil {
			t.Errorf("applied/%s%s: %v", filepath.Base(path), f, err)
		}
	}
	result, _ := os.ReadFile(filepath.Join(d.Root, Applied, filepath.Base(path)) + ".result")
	if string(result) != "run x: applied 3\n" {
		t.Errorf("result %q", result)
	}
	if got, _ := d.ApprovedPlans(); len(got) != 0 {
		t.Errorf("approved/ still holds %v", got)
	}
	if n, _ := d.CountPending(); n != 0 {
		t.Errorf("the settled plan's pending copy is still there (%d)", n)
	}
}

// A plans directory (or one of its subdirectories) that others may write to
// is refused: every local user could drop files for serve to read, or
// replace the evidence in applied/.
func TestHostilePlansDirWritableByOthers(t *testing.T) {
	for _, sub := range []string{"", Approved, Applied} {
		root := t.TempDir()
		d := Dir{Root: root}
		if err := d.Init(); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(root, sub), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := d.Init(); err == nil || !strings.Contains(err.Error(), "writable by others") {
			t.Errorf("%q mode 0777: Init = %v", sub, err)
		}
	}
}

// The same plan dropped in approved/ again and settled again (serve has no
// replay check: its items are re-verified, already gone) leaves the first
// decision's plan, signatures and result as they were; Settle renamed over
// them.
func TestSettleKeepsAnEarlierDecisionOfTheSameName(t *testing.T) {
	d := Dir{Root: filepath.Join(t.TempDir(), "plans")}
	if err := d.Init(); err != nil {
		t.Fatal(err)
	}
	drop := func(content string) string {
		f := filepath.Join(d.Root, Approved, "run1.json")
		if err := os.WriteFile(f+".sig", []byte("sig "+content), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		return f
	}
	for i, c := range []string{"first", "second", "third"} {
		if err := d.Settle(drop(c), Applied, "applied "+c); err != nil {
			t.Fatalf("settle %s: %v", c, err)
		}
		name := "run1.json"
		if i > 0 {
			name = fmt.Sprintf("run1-%d.json", i+1)
		}
		for suffix, want := range map[string]string{"": c, ".sig": "sig " + c, ".result": "applied " + c + "\n"} {
			got, err := os.ReadFile(filepath.Join(d.Root, Applied, name+suffix))
			if err != nil || string(got) != want {
				t.Errorf("applied/%s%s = %q, %v; want %q", name, suffix, got, err, want)
			}
		}
	}
	for suffix, want := range map[string]string{"": "first", ".sig": "sig first", ".result": "applied first\n"} {
		if got, _ := os.ReadFile(filepath.Join(d.Root, Applied, "run1.json"+suffix)); string(got) != want {
			t.Errorf("the first decision's run1.json%s became %q", suffix, got)
		}
	}
}
