package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/buildinfo"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/plan"
)

// TestTerraformSpellings: -out, -detailed-exitcode and -auto-approve with
// one dash do what terraform users expect. pflag alone read "-out FILE" as
// -o "ut" (and rejected the format) and "-auto-approve" as shorthands.
func TestTerraformSpellings(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	out := filepath.Join(e.dir, "plan.json")
	code, stdout, stderr := e.run(nil, "plan", "-out", out, "-detailed-exitcode")
	if code != 2 {
		t.Fatalf("plan -out FILE -detailed-exitcode: exit %d, want 2\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatalf("-out wrote no plan: %v", err)
	}
	if code, _, stderr := e.run(nil, "plan", "-out="+out+".2"); code != 0 {
		t.Fatalf("plan -out=FILE: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(out + ".2"); err != nil {
		t.Fatalf("-out=FILE wrote no plan: %v", err)
	}
	code, stdout, stderr = e.run(nil, "apply", out, "-auto-approve")
	if code != 0 || e.present("stale-1") {
		t.Fatalf("apply PLAN -auto-approve: exit %d\n%s%s", code, stdout, stderr)
	}
	// Only those words, and never a flag's value.
	if got := normalizeArgs([]string{"snooze", "x", "--reason", "-out", "-out", "--", "-auto-approve"}); !slices.Equal(got,
		[]string{"snooze", "x", "--reason", "-out", "--out", "--", "-auto-approve"}) {
		t.Errorf("normalizeArgs = %q", got)
	}
}

// TestExporterFlagSpellings: --config.file, --log.level and --log.format
// are the same flags as -c, --log-level and --log-format.
func TestExporterFlagSpellings(t *testing.T) {
	code, out, errOut := runMain(t, "validate", "--syntax-only", "--config.file", "../../policies.yaml")
	if code != 0 || !strings.Contains(out, "../../policies.yaml is valid") {
		t.Fatalf("--config.file: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runMain(t, "--log.level", "nope", "--config.file", "../../policies.yaml", "plan"); code != 1 || !strings.Contains(errOut, "--log-level") {
		t.Errorf("--log.level nope: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runMain(t, "--log.format", "xml", "-c", "../../policies.yaml", "plan"); code != 1 || !strings.Contains(errOut, `"xml" is not json or console`) {
		t.Errorf("--log.format xml: exit %d: %s", code, errOut)
	}
}

// TestVersionFlagAndJSON: --version prints what version prints; version -o
// json is a JSON object.
func TestVersionFlagAndJSON(t *testing.T) {
	_, flagOut, _ := runMain(t, "--version")
	_, cmdOut, _ := runMain(t, "version")
	if flagOut == "" || flagOut != cmdOut {
		t.Errorf("--version %q, version %q", flagOut, cmdOut)
	}
	code, out, _ := runMain(t, "version", "-o", "json")
	var v struct{ Version, Commit, GoVersion string }
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 || v.Version != buildinfo.Get().Version || v.GoVersion == "" {
		t.Errorf("version -o json: exit %d, %v: %q", code, err, out)
	}
}

// TestHelpShowsGlobalFlagsWhereTheyMatter: version's help offers none of
// the global flags, validate's offers --config and --state-dir but not the
// log flags, plan's offers all; and every command's help offers each global
// flag the command reads (a flag hidden from a help that needs it is one a
// user cannot find: approve's --state-dir, demo's --config).
func TestHelpShowsGlobalFlagsWhereTheyMatter(t *testing.T) {
	for _, c := range []struct {
		cmd      string
		has, not []string
	}{
		{"version", nil, []string{"--config", "--state-dir", "--log-level"}},
		{"validate", []string{"--config", "--state-dir"}, []string{"--log-level"}},
		{"plan", []string{"--config", "--state-dir", "--log-level", "--log-format"}, nil},
		{"snoozes", []string{"--state-dir"}, []string{"--config", "--log-level"}},
		// approve refuses a plan the state directory records as executed;
		// demo plans --config (its help says so).
		{"approve", []string{"--state-dir"}, []string{"--config", "--log-level"}},
		{"demo", []string{"--config", "--log-level"}, []string{"--state-dir"}},
		// The commands that open the journal log what its open repaired
		// (a torn final record) under --log-level and --log-format.
		{"unsnooze", []string{"--state-dir", "--log-level", "--log-format"}, []string{"--config"}},
		{"enable", []string{"--config", "--state-dir", "--log-level"}, nil},
		{"acknowledge", []string{"--state-dir", "--log-level"}, []string{"--config"}},
		{"state repair", []string{"--state-dir", "--log-level"}, []string{"--config"}},
		{"audit reanchor", []string{"--state-dir", "--log-level"}, []string{"--config"}},
		{"audit verify", []string{"--state-dir"}, []string{"--config", "--log-level"}},
	} {
		_, out, _ := runMain(t, append(strings.Fields(c.cmd), "--help")...)
		// The flag's own line, not a mention in the command's text.
		_, globals, _ := strings.Cut(out, "Global Flags:")
		for _, f := range c.has {
			if !strings.Contains(globals, f+" ") {
				t.Errorf("%s --help lacks %s:\n%s", c.cmd, f, out)
			}
		}
		for _, f := range c.not {
			if strings.Contains(globals, f+" ") {
				t.Errorf("%s --help shows %s:\n%s", c.cmd, f, out)
			}
		}
	}
	// Hidden for the rendering only: the flags still work afterwards.
	if _, out, _ := runMain(t, "plan", "--help"); !strings.Contains(out, "--state-dir") {
		t.Error("plan --help lost --state-dir")
	}
}

// complete runs cobra's hidden __complete command, as the shell scripts of
// `patjanitor completion` do, and returns the candidates.
func complete(t *testing.T, args ...string) []string {
	t.Helper()
	_, out, _ := runMain(t, append([]string{"__complete"}, args...)...)
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" || strings.HasPrefix(l, ":") {
			continue
		}
		name, _, _ := strings.Cut(l, "\t")
		got = append(got, name)
	}
	return got
}

// TestShellCompletion: -o values per command, the log flags' values, the
// receivers of the config for notify test, and the snoozed tokens for
// unsnooze.
func TestShellCompletion(t *testing.T) {
	if got := complete(t, "plan", "-o", ""); !slices.Equal(got, []string{"table", "json", "markdown", "csv", "html"}) {
		t.Errorf("plan -o: %q", got)
	}
	for _, cmd := range []string{"version", "validate"} {
		if got := complete(t, cmd, "-o", ""); !slices.Equal(got, []string{"text", "json"}) {
			t.Errorf("%s -o: %q", cmd, got)
		}
	}
	if got := complete(t, "snoozes", "-o", ""); !slices.Equal(got, []string{"table", "json"}) {
		t.Errorf("snoozes -o: %q", got)
	}
	if got := complete(t, "plan", "--log.level", ""); !slices.Equal(got, []string{"debug", "info", "warn", "error"}) {
		t.Errorf("--log.level: %q", got)
	}
	_, cfg := validateFixture(t)
	if got := complete(t, "-c", cfg, "notify", "test", ""); !slices.Equal(got, []string{"siem"}) {
		t.Errorf("notify test: %q", got)
	}
	dir := t.TempDir()
	if code, _, errs := runMain(t, "--state-dir", dir, "snooze", "tok-7", "--offline", "--for", "7d", "--reason", "r"); code != 0 {
		t.Fatal(errs)
	}
	if got := complete(t, "--state-dir", dir, "unsnooze", ""); !slices.Equal(got, []string{"tok-7"}) {
		t.Errorf("unsnooze: %q", got)
	}
}

// TestSnoozeChecksTheTenant: snooze refuses an id the tenant does not have
// (nothing stored, nothing journaled), finds one without regard to case
// and keeps the tenant's spelling; --offline skips the lookup with a
// warning. unsnooze ends a snooze with a reason, journaled; snoozes is
// read-only and speaks JSON.
func TestSnoozeChecksTheTenant(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("tok-a", "o1", 400*wfDay, 200*wfDay)

	code, stdout, stderr := e.run(nil, "snooze", "tok-typo", "--for", "30d", "--reason", "r")
	if code != 1 || !strings.Contains(stderr, "no token tok-typo") || !strings.Contains(stderr, "nothing was snoozed") {
		t.Fatalf("snooze of an unknown id: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(e.state, JournalFile)); !os.IsNotExist(err) {
		t.Errorf("a refused snooze wrote the journal: %v", err)
	}
	// snoozes reads, never creates.
	code, stdout, _ = e.run(nil, "snoozes", "-o", "json")
	if code != 0 || strings.TrimSpace(stdout) != "[]" {
		t.Errorf("snoozes -o json without a store: exit %d %q", code, stdout)
	}
	if _, err := os.Stat(e.state); !os.IsNotExist(err) {
		t.Errorf("snoozes created the state directory: %v", err)
	}

	code, stdout, stderr = e.run(nil, "snooze", "TOK-A", "--for", "30d", "--reason", "kept for the audit", "--by", "ops")
	if code != 0 || !strings.HasPrefix(stdout, `Snoozed tok-a ("tok-tok-a", owner Owner o1 (o1)) until `) {
		t.Fatalf("snooze: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = e.run(nil, "snooze", "tok-offline", "--offline", "--for", "1d", "--reason", "r")
	if code != 0 || !strings.Contains(stderr, "warning: --offline") {
		t.Fatalf("snooze --offline: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = e.run(nil, "snoozes", "-o", "json")
	var zs []snoozeJSON
	if err := json.Unmarshal([]byte(stdout), &zs); err != nil || code != 0 || len(zs) != 2 || zs[0].TokenID != "tok-a" || !zs[0].Active || zs[0].By != "ops" {
		t.Fatalf("snoozes -o json: exit %d %v %+v\n%s", code, err, zs, stdout)
	}

	if code, _, stderr := e.run(nil, "unsnooze", "tok-a"); code != 1 || !strings.Contains(stderr, "--reason is required") {
		t.Errorf("unsnooze without a reason: exit %d %s", code, stderr)
	}
	if code, _, stderr := e.run(nil, "unsnooze", "tok-none", "--reason", "r"); code != 1 || !strings.Contains(stderr, "no active snooze") {
		t.Errorf("unsnooze of no snooze: exit %d %s", code, stderr)
	}
	code, stdout, stderr = e.run(nil, "unsnooze", "tok-a", "--reason", "the audit is over", "--by", "ops")
	if code != 0 || !strings.HasPrefix(stdout, "Unsnoozed tok-a") {
		t.Fatalf("unsnooze: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = e.run(nil, "snoozes", "-o", "json")
	zs = nil
	if err := json.Unmarshal([]byte(stdout), &zs); err != nil || code != 0 || len(zs) != 1 || zs[0].TokenID != "tok-offline" {
		t.Errorf("snoozes after unsnooze: exit %d %+v", code, zs)
	}
	recs := journalRecords(t, filepath.Join(e.state, JournalFile))
	if len(recs) != 3 || recs[2].Kind != audit.KindSnooze || recs[2].TokenID != "tok-a" || recs[2].Note != "unsnoozed: the audit is over (by ops)" || recs[2].Until == nil {
		t.Fatalf("journal %+v", recs)
	}
	// The token is decided again: the plan lists it as an item, not skipped.
	code, stdout, _ = e.run(nil, "plan", "-o", "json")
	p, err := plan.Read(strings.NewReader(stdout))
	if err != nil || code != 0 || p.Items.Len() != 1 || p.Items.At(0).TokenID != "tok-a" {
		t.Errorf("plan after unsnooze: exit %d %v %+v", code, err, p)
	}
	if m := e.mutations(); len(m) != 0 {
		t.Errorf("%d mutations", len(m))
	}
}
