package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
)

// reviewPolicies: the workflow's enforce delete and report-only patch (which
// matches many tokens), and a policy that matches nothing.
const reviewPolicies = wfPolicies + `  - name: matches-nothing
    mode: enforce
    match: {nameMatches: "^no-token-is-named-like-this$"}
    action: delete
`

// TestApplyConfirmationShowsOnlyWhatChanges: before the prompt, an
// interactive apply shows the policies (0 included), the guardrails and the
// one item that will change the tenant, not the 40 report-only ones;
// --show-all shows them all. Both for apply now and apply PLAN.
func TestApplyConfirmationShowsOnlyWhatChanges(t *testing.T) {
	e := newWF(t, reviewPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	for i := range 40 {
		e.add(fmt.Sprintf("admin-%02d", i), "o2", 10*wfDay, wfDay, pat.ScopeAll)
	}
	planFile := filepath.Join(e.dir, "plan.json")
	if code, _, stderr := e.run(nil, "plan", "--out", planFile); code != 0 {
		t.Fatalf("plan: %s", stderr)
	}
	for _, args := range [][]string{{"apply"}, {"apply", planFile}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, stdout, _ := e.run(fakeTTY{strings.NewReader("no\n")}, args...)
			if code != 1 || !strings.Contains(stdout, "Enter a value:") {
				t.Fatalf("exit %d, no prompt:\n%s", code, stdout)
			}
			before, _, _ := strings.Cut(stdout, "Enter a value:")
			for _, want := range []string{"stale-1", "unused-90d: enforce delete, 1 token (CHANGES THE TENANT)",
				"matches-nothing", "GUARDRAILS", "Not listed here: 40 items that change nothing (report only)", "--show-all"} {
				if !strings.Contains(before, want) {
					t.Errorf("before the prompt: lacks %q:\n%s", want, before)
				}
			}
			if !regexpMatch(`(?m)^  matches-nothing +enforce +delete +0 +0$`, before) || !regexpMatch(`(?m)^  full-access +report +patch +40 +0$`, before) {
				t.Errorf("the policy counts are not all listed:\n%s", before)
			}
			if strings.Contains(before, "admin-") {
				t.Errorf("report-only items listed before the prompt:\n%s", before)
			}
			if n := strings.Count(before, "\n"); n > 60 {
				t.Errorf("%d lines before the prompt for one delete", n)
			}
			code, stdout, _ = e.run(fakeTTY{strings.NewReader("no\n")}, append(args, "--show-all")...)
			if code != 1 || strings.Count(stdout, "admin-") < 40 {
				t.Errorf("--show-all does not show the report-only items: exit %d\n%s", code, stdout)
			}
		})
	}
	if len(e.mutations()) != 0 {
		t.Fatal("a declined apply changed the tenant")
	}
}

// TestApplyBlockedSaysItOnce: a blocked apply lists what it did not do and
// says the guardrail's message once, not on every line.
func TestApplyBlockedSaysItOnce(t *testing.T) {
	e := newWF(t, strings.Replace(reviewPolicies, "maxActionsPerRun: 0", "maxActionsPerRun: 5", 1), idnsim.Options{})
	for i := range 30 {
		e.add(fmt.Sprintf("stale-%02d", i), fmt.Sprintf("o%d", i), 400*wfDay, 200*wfDay)
	}
	code, stdout, stderr := e.run(nil, "apply", "--auto-approve")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, stdout, stderr)
	}
	all := stdout + stderr
	msg := "guardrail tripped, nothing was changed: maxActionsPerRun (limit 5, wanted 30): 30 actions wanted, at most 5 per run"
	if n := strings.Count(all, msg); n != 1 {
		t.Errorf("the guardrail message appears %d times, want once:\n%s\n%s", n, stdout, stderr)
	}
	if n := strings.Count(stdout, "BLOCKED"); n < 30 {
		t.Errorf("%d BLOCKED lines, want one per wanted action:\n%s", n, stdout)
	}
	for _, l := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "BLOCKED") && len(l) > 120 {
			t.Errorf("a blocked line carries the message: %q", l)
		}
	}
	if strings.Contains(stdout, "CHANGES THE TENANT") || !strings.Contains(strings.Join(strings.Fields(stdout), " "), "(BLOCKED: guardrail maxActionsPerRun tripped, nothing changes)") {
		t.Errorf("the blocked group is not labelled blocked:\n%s", stdout)
	}
	if len(e.mutations()) != 0 {
		t.Fatal("a blocked apply changed the tenant")
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

// TestDemoOutputFormats: with -o, stdout is the report alone (a valid
// document of that format) and every word of prose goes to stderr.
func TestDemoOutputFormats(t *testing.T) {
	for _, format := range []string{"json", "csv", "html", "markdown"} {
		t.Run(format, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(context.Background(), []string{"-c", "../../policies.yaml", "--log-level", "error", "demo", "-o", format},
				Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, errb.String())
			}
			stdout := out.String()
			switch format {
			case "json":
				p, err := plan.Read(strings.NewReader(stdout))
				if err != nil {
					t.Fatalf("stdout is not a plan document: %v", err)
				}
				if err := p.VerifyHash(); err != nil || p.Items.Len() == 0 {
					t.Fatalf("plan: %v, %d items", err, p.Items.Len())
				}
			case "csv":
				rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
				if err != nil || len(rows) < 2 || rows[0][0] != "tokenId" {
					t.Fatalf("stdout is not the CSV: %v, %d rows", err, len(rows))
				}
			case "html":
				if !strings.HasPrefix(stdout, "<!DOCTYPE html>") || !strings.HasSuffix(strings.TrimSpace(stdout), "</html>") {
					t.Fatalf("stdout is not the HTML document alone:\n%.300s", stdout)
				}
			case "markdown":
				if !strings.HasPrefix(stdout, "# patjanitor plan\n") {
					t.Fatalf("stdout does not start with the report:\n%.300s", stdout)
				}
			}
			for _, prose := range []string{"patjanitor demo:", "== 2. APPLY", "== 5. NEXT", "Applied 13"} {
				if strings.Contains(stdout, prose) || !strings.Contains(errb.String(), prose) {
					t.Errorf("%q is not on stderr alone", prose)
				}
			}
		})
	}
}
