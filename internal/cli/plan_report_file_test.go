package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/plan"
)

// --report-file puts the rendered report in a file and leaves stdout empty;
// with -o json and --out both files hold the same document; the two flags
// cannot name one file; a failed write leaves no half report behind.
func TestPlanReportFile(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.add("fresh", "o3", 10*wfDay, wfDay)

	html := filepath.Join(e.dir, "plan.html")
	doc := filepath.Join(e.dir, "plan.json")
	code, stdout, stderr := e.run(nil, "plan", "-o", "html", "--report-file", html, "--out", doc)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout with --report-file: %q", stdout)
	}
	b, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "<html") || !strings.Contains(string(b), "tok-stale-1") {
		t.Errorf("report file is not the HTML report:\n%s", b)
	}
	f, err := os.Open(doc)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Read(f)
	_ = f.Close()
	if err != nil || p.VerifyHash() != nil {
		t.Fatalf("--out next to --report-file: %v", err)
	}

	// -o json: the report is the document, written once to both files.
	rep := filepath.Join(e.dir, "report.json")
	if code, stdout, stderr := e.run(nil, "plan", "-o", "json", "--report-file", rep, "--out", doc); code != 0 || stdout != "" {
		t.Fatalf("-o json: exit %d, stdout %q, %s", code, stdout, stderr)
	}
	a, _ := os.ReadFile(rep)
	d, _ := os.ReadFile(doc)
	if len(a) == 0 || string(a) != string(d) {
		t.Errorf("-o json --report-file differs from --out (%d and %d bytes)", len(a), len(d))
	}

	// Without --out.
	csv := filepath.Join(e.dir, "plan.csv")
	if code, _, stderr := e.run(nil, "plan", "-o", "csv", "--report-file", csv); code != 0 {
		t.Fatalf("-o csv: exit %d, %s", code, stderr)
	}
	if b, _ := os.ReadFile(csv); !strings.Contains(string(b), "stale-1") {
		t.Errorf("csv report file lacks the item:\n%s", b)
	}

	if code, _, stderr := e.run(nil, "plan", "--report-file", doc, "--out", doc); code != 1 || !strings.Contains(stderr, "both name") {
		t.Errorf("same file for both: exit %d, %s", code, stderr)
	}

	missing := filepath.Join(e.dir, "no-such-dir", "plan.html")
	if code, _, stderr := e.run(nil, "plan", "-o", "html", "--report-file", missing); code != 1 || !strings.Contains(stderr, "save the report") {
		t.Errorf("unwritable report file: exit %d, %s", code, stderr)
	}
	entries, _ := os.ReadDir(e.dir)
	for _, en := range entries {
		if strings.HasPrefix(en.Name(), ".") {
			t.Errorf("temporary file left behind: %s", en.Name())
		}
	}
}
