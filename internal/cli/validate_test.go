package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runValidateCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
	return out.String(), errb.String(), code
}

func TestValidateShippedPolicies(t *testing.T) {
	out, errOut, code := runValidateCLI(t, "validate", "--syntax-only", "-c", "../../policies.yaml", "--now", "2026-11-26T10:00:00Z")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"../../policies.yaml is valid (sha256:",
		"tenant        https://acme.api.identitynow.com\n",
		"apiVersion    v3\n",
		"clientSecret  from file /run/secrets/patjanitor/client-secret (not checked: --syntax-only)\n",
		"limits        maxActionsPerRun 25, maxActionsPercent 10%, maxActionsPerOwner 5\n",
		"names break-glass-*, emergency-*",
		"  unused-90d           report  delete  0 3 * * *  Fri 2026-11-27 03:00, Sat 2026-11-28 03:00, Sun 2026-11-29 03:00\n",
		"    expire  expirationDate = run time + 30d\n",
		"requests per action (enforce mode):\n  delete  DELETE /v3/personal-access-tokens/{id}, one per token, any owner's\n" +
			"  expire  PATCH /personal-access-tokens/v1/bulk-update (tenant.bulkApiVersion v1), up to 25 tokens per request, any owner's\n",
		"listing calls (cutoffs as of 2026-11-26T10:00:00.000Z):\n  every run: all tokens (no filter)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if errOut != "" {
		t.Errorf("stderr: %s", errOut)
	}
}

func TestValidateScheduleGroupsAndFilteredListings(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(cfg, []byte(`
timezone: Europe/Berlin
limits: {maxActionsPercent: 0}
policies:
  - {name: unused-90d, match: {unusedFor: 90d}, action: delete}
  - {name: weekly, schedule: "0 4 * * 1", match: {lastUsedOlderThan: 30d}, action: report}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runValidateCLI(t, "validate", "--syntax-only", "-c", cfg, "--now", "2026-11-26T10:00:00Z")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"tenant        (not set: set it in the file or PATJANITOR_TENANT_URL)\n",
		"  weekly      report  report  0 4 * * 1  Mon 2026-11-30 04:00, Mon 2026-12-07 04:00, Mon 2026-12-14 04:00\n",
		"  plan, apply (all policies): filters=lastUsed le 2026-10-27T10:00:00.000Z + filters=lastUsed isnull\n",
		`  schedule "0 3 * * *" (unused-90d): filters=lastUsed le 2026-08-28T10:00:00.000Z + filters=lastUsed isnull` + "\n",
		`  schedule "0 4 * * 1" (weekly): filters=lastUsed le 2026-10-27T10:00:00.000Z` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	file := "../policy/testdata/invalid/wrong-types.yaml"
	out, errOut, code := runValidateCLI(t, "validate", "-c", file)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if out != "" {
		t.Errorf("stdout: %s", out)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) != 10 || !strings.HasPrefix(lines[0], file+":10: tenant.unpaged: ") ||
		lines[9] != "patjanitor: "+file+": 9 problems" {
		t.Errorf("stderr:\n%s", errOut)
	}

	_, errOut, code = runValidateCLI(t, "validate", "-c", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != 1 || !strings.Contains(errOut, "read config: ") {
		t.Errorf("missing file: exit %d: %s", code, errOut)
	}
}

func TestValidateAppliesTheEnvironment(t *testing.T) {
	var out, errb bytes.Buffer
	g := &globals{streams: Streams{Out: &out, Err: &errb}, config: "../../policies.yaml"}
	env := map[string]string{
		"PATJANITOR_TENANT_URL":    "http://127.0.0.1:8080",
		"PATJANITOR_CLIENT_ID":     "env-client",
		"PATJANITOR_CLIENT_SECRET": "super-secret-value",
	}
	if err := runValidate(g, validateFlags{now: "2026-11-26T10:00:00Z", syntaxOnly: true}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"tenant        http://127.0.0.1:8080 (from PATJANITOR_TENANT_URL)\n",
		"clientId      env-client (from PATJANITOR_CLIENT_ID)\n",
		"clientSecret  from PATJANITOR_CLIENT_SECRET (not shown)\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String()+errb.String(), "super-secret-value") {
		t.Error("the secret was printed")
	}

	env["PATJANITOR_TENANT_URL"] = "http://acme.api.identitynow.com"
	err := runValidate(g, validateFlags{}, func(k string) string { return env[k] })
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(err.Error(), "PATJANITOR_TENANT_URL: plain http://") {
		t.Errorf("err %v", err)
	}
}

// An enforce-mode patch policy that can match other owners' tokens is
// warned about (a real tenant lets only the owner patch); one limited to a
// single owner id is not (validate cannot know patjanitor's own identity
// offline; one id is the only evidence of a restriction to it).
func TestValidateWarnsAboutPatchOfOtherOwners(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(cfg, []byte(`
tenant: {apiVersion: v2025}
policies:
  - {name: narrow-all, mode: enforce, match: {scopes: {any: [sp:scopes:all]}}, action: patch, patch: {setScopes: [sp:scopes:default]}}
  - {name: narrow-two, mode: enforce, match: {ownerIds: [0000000000000000000000000000000a, 0000000000000000000000000000000b], scopes: {any: [sp:scopes:all]}}, action: patch, patch: {setScopes: [sp:scopes:default]}}
  - {name: narrow-mine, mode: enforce, match: {ownerIds: [00000000000000000000000000000abc], scopes: {any: [sp:scopes:all]}}, action: patch, patch: {setScopes: [sp:scopes:default]}}
  - {name: narrow-report, match: {scopes: {any: [sp:scopes:all]}}, action: patch, patch: {setScopes: [sp:scopes:default]}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runValidateCLI(t, "validate", "--syntax-only", "-c", cfg, "--now", "2026-11-26T10:00:00Z")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `policies[0] "narrow-all": enforce-mode patch matches tokens of every owner: the API lets only a token's owner change its scopes`) ||
		!strings.Contains(lines[1], `policies[1] "narrow-two": enforce-mode patch matches tokens of 2 owners`) {
		t.Fatalf("warnings:\n%s", errOut)
	}
	if !strings.Contains(out, "  patch   PATCH /v2025/personal-access-tokens/{id}, one per token, only for tokens of patjanitor's own identity") {
		t.Errorf("output lacks the patch request line:\n%s", out)
	}
}

// The UI host pasted instead of the API host: validate warns on stderr,
// suggests the API host, and still exits 0. An API host or loopback: quiet.
func TestValidateWarnsAboutANonAPIHost(t *testing.T) {
	for _, tc := range []struct{ url, warn string }{
		{"https://acme.identitynow.com", `warning: tenant URL host acme.identitynow.com does not contain ".api.": SailPoint's API hosts are {tenant}.api.identitynow.com, {tenant}.api.identitynow-demo.com, {tenant}.api.saas.sailpointfedramp.com; the UI host does not serve the API (did you mean https://acme.api.identitynow.com?)`},
		{"https://iam.example.com", `warning: tenant URL host iam.example.com does not contain ".api."`},
		{"https://acme.api.identitynow-demo.com", ""},
		{"http://127.0.0.1:8975", ""},
	} {
		var out, errb bytes.Buffer
		g := &globals{streams: Streams{Out: &out, Err: &errb}, config: "../../policies.yaml"}
		env := map[string]string{"PATJANITOR_TENANT_URL": tc.url}
		if err := runValidate(g, validateFlags{now: "2026-11-26T10:00:00Z", syntaxOnly: true}, func(k string) string { return env[k] }); err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		if tc.warn == "" && errb.Len() != 0 || tc.warn != "" && !strings.Contains(errb.String(), tc.warn) {
			t.Errorf("%s: stderr %q, want %q", tc.url, errb.String(), tc.warn)
		}
	}
}
