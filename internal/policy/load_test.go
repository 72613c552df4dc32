package policy

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// wantRE reads the expectations an invalid testdata file carries in comments:
// "# want: <line>: <message>", one per expected error, in the order Load
// reports them.
var wantRE = regexp.MustCompile(`(?m)^# want: (\d+): (.*)$`)

func TestLoadInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(files) < 20 {
		t.Fatalf("testdata/invalid: %d files, %v", len(files), err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, m := range wantRE.FindAllStringSubmatch(string(data), -1) {
				want = append(want, file+":"+m[1]+": "+m[2])
			}
			if len(want) == 0 {
				if len(strings.TrimSpace(string(data))) > 0 && !strings.HasPrefix(filepath.Base(file), "empty-file") {
					t.Fatal("no # want: lines")
				}
				want = []string{file + ":1: " + emptyFileMsg}
			}
			cfg, err := Load(file)
			if err == nil {
				t.Fatalf("Load succeeded (%d policies); want errors:\n%s", len(cfg.Policies), strings.Join(want, "\n"))
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T %v is not Errors", err, err)
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("errors:\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			if len(errs) != len(got) {
				t.Errorf("%d errors but %d lines", len(errs), len(got))
			}
			for _, e := range errs {
				if e.File != file || e.Line < 1 {
					t.Errorf("error without a position: %+v", e)
				}
			}
			// Inline secrets are refused without being repeated.
			for _, s := range []string{"hunter2", "do-not-print", "nor-me", "s3cr3t"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("the error repeats a secret: %v", err)
				}
			}
		})
	}
}

func TestLoadValid(t *testing.T) {
	files, err := filepath.Glob("testdata/valid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("testdata/valid: %v", err)
	}
	files = append(files, "../../policies.yaml")
	examples, _ := filepath.Glob("../../examples/*.yaml")
	if len(examples) == 0 {
		t.Fatal("no examples/*.yaml")
	}
	files = append(files, examples...)
	// Example configs under deploy/ must load too (the ConfigMap's copy is
	// checked by the deploy tests, which build the kustomization).
	deploy, _ := filepath.Glob("../../deploy/*/*.yaml")
	for _, f := range deploy {
		if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), "\npolicies:") && !strings.Contains(string(b), "kind:") {
			files = append(files, f)
		}
	}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			cfg, err := Load(file)
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Policies) == 0 {
				t.Fatal("no policies")
			}
			if !strings.HasPrefix(cfg.Digest, "sha256:") || len(cfg.Digest) != len("sha256:")+64 {
				t.Errorf("digest %q", cfg.Digest)
			}
			if _, err := cfg.ScheduleGroups(); err != nil {
				t.Error(err)
			}
			for _, p := range cfg.Policies {
				if p.Mode == "" || p.Schedule == "" || p.Line < 1 {
					t.Errorf("policy %s: defaults not applied: %+v", p.Name, p)
				}
			}
		})
	}
}

// The shipped file is what the demo and newcomers run: it must stay valid for
// v3 and harmless.
func TestShippedPolicies(t *testing.T) {
	cfg, err := Load("../../policies.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tenant.APIVersion != pat.V3 {
		t.Errorf("apiVersion %s, want v3", cfg.Tenant.APIVersion)
	}
	if cfg.Tenant.URL != "https://acme.api.identitynow.com" {
		t.Errorf("tenant url %q", cfg.Tenant.URL)
	}
	for _, p := range cfg.Policies {
		if p.Mode != ModeReport {
			t.Errorf("policy %s is in %s mode; every shipped policy reports only", p.Name, p.Mode)
		}
		if p.Description == "" {
			t.Errorf("policy %s has no description", p.Name)
		}
	}
	for _, name := range []string{"unused-90d", "never-used-30d", "full-access"} {
		if cfg.Policy(name) == nil {
			t.Errorf("no policy %s", name)
		}
	}
	if !contains(cfg.Exclude.Names, "break-glass-*") {
		t.Errorf("exclude.names %v lacks break-glass-*", cfg.Exclude.Names)
	}

	v25, err := Load("../../examples/policies-v2025.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ne *Policy
	for _, p := range v25.Policies {
		if p.Match.NeverExpires {
			ne = p
		}
		if p.Mode != ModeReport {
			t.Errorf("example policy %s is in %s mode", p.Name, p.Mode)
		}
	}
	if ne == nil || ne.Action != ActionExpire {
		t.Errorf("the v2025 example has no neverExpires/expire policy")
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Load("testdata/valid/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tenant.APIVersion != pat.V3 || cfg.Tenant.URL != "" || cfg.Tenant.Unpaged {
		t.Errorf("tenant %+v", cfg.Tenant)
	}
	if cfg.Tenant.RateLimit != (RateLimit{Requests: 100, Per: 10 * time.Second}) {
		t.Errorf("rateLimit %+v", cfg.Tenant.RateLimit)
	}
	if cfg.Schedule != "0 3 * * *" || cfg.Timezone != "UTC" || cfg.Location != time.UTC {
		t.Errorf("schedule %q timezone %q %v", cfg.Schedule, cfg.Timezone, cfg.Location)
	}
	if cfg.Limits != (Limits{MaxActionsPerRun: 25, MaxActionsPercent: 10, MaxActionsPerOwner: 5}) {
		t.Errorf("limits %+v", cfg.Limits)
	}
	p := cfg.Policies[0]
	if p.Mode != ModeReport || p.Schedule != "0 3 * * *" || p.Line != 3 || p.Match.UnusedFor != 90*Day {
		t.Errorf("policy %+v", p)
	}
}

func TestFullConfig(t *testing.T) {
	cfg, err := Load("testdata/valid/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tn := cfg.Tenant
	if tn.URL != "https://acme.api.identitynow.com" || tn.APIVersion != pat.V1 || !tn.Unpaged ||
		tn.RateLimit != (RateLimit{Requests: 50, Per: 5 * time.Second}) {
		t.Errorf("tenant %+v", tn)
	}
	if tn.ClientSecretFile != filepath.Join("testdata", "valid", "secrets", "client-secret") {
		t.Errorf("clientSecretFile %q not resolved against the config's directory", tn.ClientSecretFile)
	}
	// Explicit 0 is "no limit", not the default.
	if cfg.Limits != (Limits{MaxActionsPerRun: 0, MaxActionsPercent: 2.5, MaxActionsPerOwner: 3}) {
		t.Errorf("limits %+v", cfg.Limits)
	}
	if cfg.Location.String() != "Europe/Berlin" {
		t.Errorf("location %v", cfg.Location)
	}
	n := cfg.Notify
	if len(n.Receivers) != 3 || n.Owners != "owner-mail" || n.DigestInterval != Week {
		t.Errorf("notify %+v", n)
	}
	if e := n.Receivers[2].Email; e == nil || *e.RequireTLS || e.Timeout != 45*time.Second ||
		e.PasswordFile != filepath.Join("testdata", "valid", "smtp-password") || e.UsernameEnv != "SMTP_USER" {
		t.Errorf("email %+v", e)
	}
	if n.Templates.Digest.HTML != "/etc/patjanitor/digest.html" {
		t.Errorf("templates %+v", n.Templates)
	}
	if !cfg.Owners.Lookup || cfg.Owners.FallbackEmail != "iam-team@acme.com" {
		t.Errorf("owners %+v", cfg.Owners)
	}
	p := cfg.Policy("unused-90d")
	if p.Mode != ModeEnforce || p.Schedule != "0 4 * * 1" || p.Grace != 14*Day || p.Match.CreatedOlderThan != 2*Week {
		t.Errorf("unused-90d %+v", p)
	}
	if p := cfg.Policy("stale"); p.Match.LastUsedOlderThan != 36*time.Hour || p.Match.NameMatches.String() != "^ci-" || len(p.Match.OwnerIDs) != 2 {
		t.Errorf("stale %+v", p.Match)
	}
	if p := cfg.Policy("narrow"); !p.Match.IncludeManaged || p.Patch.NamePrefix != "narrowed-" || len(p.Patch.SetScopes) != 1 {
		t.Errorf("narrow %+v", p)
	}
	if p := cfg.Policy("never-expires"); p.ExpireIn != 30*Day || p.Schedule != "@daily" {
		t.Errorf("never-expires %+v", p)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err %v, want fs.ErrNotExist", err)
	}
}

func TestParseByteLevelProblems(t *testing.T) {
	for _, tt := range []struct {
		name, data, want string
	}{
		{"invalid utf-8", "policies:\n  - name: \xff\n", "x.yaml:2: the file is not valid UTF-8"},
		{"control character", "policies:\n\n  - name: a\x01b\n", "x.yaml:3: control character U+0001 is not allowed"},
		{"unknown anchor", "policies:\n  - *nope\n", "x.yaml:2: YAML syntax: unknown anchor 'nope' referenced"},
		{"null document", "~\n", "x.yaml:1: " + emptyFileMsg},
		{"top-level list", "- a\n- b\n", "x.yaml:1: must be a mapping (key: value), not a list"},
		{"too large", strings.Repeat("#", maxFileSize+1), "x.yaml:1: the file is larger than 4194304 bytes, the most a config may be"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tt.data))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err %v\nwant %s", err, tt.want)
			}
		})
	}
}

// An alias bomb must not take the loader down: aliases are expanded only where
// the schema descends, and the walk has a budget.
func TestParseAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("ids: &ids [")
	for i := 0; i < 2000; i++ {
		b.WriteString("x, ")
	}
	b.WriteString("x]\np: &p {name: x, match: {ownerIds: *ids}, action: report}\npolicies: [")
	for i := 0; i < 2000; i++ {
		b.WriteString("*p, ")
	}
	b.WriteString("*p]\n")
	start := time.Now()
	_, err := Parse("bomb.yaml", []byte(b.String()))
	if err == nil {
		t.Fatal("no error")
	}
	var errs Errors
	if !errors.As(err, &errs) || len(errs) > maxErrors+1 || !strings.Contains(err.Error(), "expands too many aliases") {
		t.Errorf("err %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestSyntaxErrorLine: an indentation error inside a policy is reported at
// the line that is wrong, not where the enclosing list began (yaml.v3 names
// the start of the block collection, here a comment line above the first
// policy: 28 lines before the real error in the shipped file).
func TestSyntaxErrorLine(t *testing.T) {
	shipped, err := os.ReadFile("../../policies.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(shipped), "\n")
	broken := -1
	// The last policy's action: far below where the policies list begins.
	for i, l := range lines {
		if strings.HasPrefix(l, "    action: ") {
			broken = i
		}
	}
	if broken < 0 {
		t.Fatal("the shipped policies have no '    action: ' line")
	}
	lines[broken], broken = lines[broken][1:], broken+1
	for _, tt := range []struct {
		name, data string
		line       int
	}{
		{"shipped file, action dedented by one", strings.Join(lines, "\n"), broken},
		{"small", "policies:\n  # a comment\n  - name: a\n    match: {unusedFor: 90d}\n   action: delete\n", 5},
		{"mapping value", "tenant:\n  url: x\n    clientId: y\n", 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tt.data))
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Line != tt.line || !strings.Contains(errs[0].Msg, "YAML syntax") {
				t.Fatalf("err %v, want a YAML syntax error at line %d", err, tt.line)
			}
		})
	}
}
