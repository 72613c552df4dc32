package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validateFixture writes a config whose notify section names a template file
// that does not exist (the reported crash loop: ExecStartPre=validate passed,
// serve refused to start).
func validateFixture(t *testing.T) (dir, cfg string) {
	t.Helper()
	dir = t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	urlFile := write("url", "https://hooks.example.com/secret-path")
	keyFile := write("hmac", "hmac-key-do-not-leak-0123456789")
	secretFile := write("client-secret", "s3cr3t-do-not-leak")
	cfg = write("policies.yaml", `tenant:
  url: http://127.0.0.1:1
  clientId: 0123456789abcdef0123456789abcdef
  clientSecretFile: `+secretFile+`
notify:
  receivers:
    - name: siem
      webhook: {urlFile: `+urlFile+`, hmacSecretFile: `+keyFile+`}
  summary: [siem]
  templates:
    summary: {text: summary-missing.txt.tmpl}
policies:
  - name: unused
    match: {unusedFor: 90d}
    action: delete
`)
	return dir, cfg
}

// TestValidateFailsLikeServePlanAndNotifyTest: a notify template file that
// does not exist fails validate (exit 1, naming the file), as it fails
// serve, plan --notifications-dir and notify test; with the file in place
// all pass validate. validate creates nothing.
func TestValidateFailsLikeServePlanAndNotifyTest(t *testing.T) {
	dir, cfg := validateFixture(t)
	state := filepath.Join(dir, "state")
	run := func(args ...string) (int, string) {
		code, out, errOut := runMain(t, append([]string{"-c", cfg, "--state-dir", state}, args...)...)
		return code, out + errOut
	}
	const missing = "summary-missing.txt.tmpl"
	code, out := run("validate")
	if code != 1 || !strings.Contains(out, missing) {
		t.Fatalf("validate: exit %d, want 1 naming %s:\n%s", code, missing, out)
	}
	if strings.Contains(out, "s3cr3t") || strings.Contains(out, "hmac-key") || strings.Contains(out, "secret-path") {
		t.Errorf("validate printed a secret:\n%s", out)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("validate created the state directory: %v", err)
	}
	for _, args := range [][]string{{"notify", "test", "siem"}, {"serve", "--web.listen-address", "127.0.0.1:0"}, {"plan", "--notifications-dir", filepath.Join(dir, "n")}} {
		if code, out := run(args...); code != 1 || !strings.Contains(out, missing) {
			t.Errorf("%v: exit %d, want 1 naming %s (validate must fail where this does):\n%s", args, code, missing, out)
		}
	}
	state = filepath.Join(dir, "state-2")

	if err := os.WriteFile(filepath.Join(dir, missing), []byte("{{ .Tenant }}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := run("validate"); code != 0 {
		t.Fatalf("validate with the template present: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("validate created the state directory: %v", err)
	}
}

// TestValidateChecksSecretsAndStateDir: what connect and the journal need,
// checked offline: the client secret file, the receivers' secret files, the
// state directory.
func TestValidateChecksSecretsAndStateDir(t *testing.T) {
	t.Setenv("PATJANITOR_CLIENT_SECRET", "")
	dir, cfg := validateFixture(t)
	if err := os.WriteFile(filepath.Join(dir, "summary-missing.txt.tmpl"), []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		setup func(t *testing.T)
		state string
		want  string
	}{
		{"client secret file missing", func(t *testing.T) { rm(t, filepath.Join(dir, "client-secret")) }, "", "tenant.clientSecretFile: read secret file"},
		{"client secret file empty", func(t *testing.T) { write(t, filepath.Join(dir, "client-secret"), "\n") }, "", "is empty"},
		{"webhook HMAC file missing", func(t *testing.T) { rm(t, filepath.Join(dir, "hmac")) }, "", `notify receiver "siem": webhook: hmacSecretFile`},
		{"state dir is a file", nil, notADir, "is not a directory"},
		{"state dir under a file", nil, filepath.Join(notADir, "state"), "is not a directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			write(t, filepath.Join(dir, "client-secret"), "s3cr3t")
			write(t, filepath.Join(dir, "hmac"), "hmac-key-do-not-leak-0123456789")
			if c.setup != nil {
				c.setup(t)
			}
			state := c.state
			if state == "" {
				state = filepath.Join(dir, "state")
			}
			code, out, errOut := runMain(t, "validate", "-c", cfg, "--state-dir", state)
			if code != 1 || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q\n%s", code, errOut, c.want, out)
			}
			// --syntax-only checks the file alone.
			if code, _, errOut := runMain(t, "validate", "--syntax-only", "-c", cfg, "--state-dir", state); code != 0 {
				t.Errorf("--syntax-only: exit %d: %s", code, errOut)
			}
		})
	}
}

func rm(t *testing.T, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p, body string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestValidatePositionalFileAndJSON: `validate FILE` (promtool's habit), the
// file given twice differently is an error, and -o json reports validity,
// problems with their positions, and the policies.
func TestValidatePositionalFileAndJSON(t *testing.T) {
	code, out, errOut := runMain(t, "validate", "--syntax-only", "../../policies.yaml")
	if code != 0 || !strings.Contains(out, "../../policies.yaml is valid") {
		t.Fatalf("validate FILE: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runMain(t, "validate", "-c", "a.yaml", "../../policies.yaml"); code != 1 || !strings.Contains(errOut, "given twice") {
		t.Errorf("two files: exit %d: %s", code, errOut)
	}
	code, out, _ = runMain(t, "validate", "--syntax-only", "-o", "json", "../../policies.yaml")
	var v validateJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 || !v.Valid || len(v.Policies) != 5 || v.Policies[0].Name != "unused-90d" {
		t.Fatalf("-o json: exit %d, %v: %+v\n%s", code, err, v, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	write(t, bad, "policies:\n  - name: x\n    match: {unusedFor: 3q}\n    action: delete\n")
	code, out, _ = runMain(t, "validate", "-o", "json", bad)
	v = validateJSON{}
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 1 || v.Valid || len(v.Problems) == 0 || v.Problems[0].Line != 3 || v.Problems[0].Field == "" {
		t.Fatalf("-o json of a bad file: exit %d, %v: %+v\n%s", code, err, v, out)
	}
}

// TestValidateCountsEveryProblemItNames: two receivers whose secret files
// are missing are two problems, each on its line and counted: validate said
// "1 problem" under three lines (the receivers' errors came joined in one),
// and -o json reported them as one problem whose message held newlines.
func TestValidateCountsEveryProblemItNames(t *testing.T) {
	t.Setenv("PATJANITOR_CLIENT_SECRET", "s3cr3t")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "policies.yaml")
	write(t, cfg, `tenant:
  url: http://127.0.0.1:1
  clientId: 0123456789abcdef0123456789abcdef
notify:
  receivers:
    - name: siem
      webhook: {urlFile: missing-url, hmacSecretFile: missing-hmac}
    - name: chat
      slack: {webhookUrlFile: missing-slack-url}
  summary: [siem, chat]
policies:
  - name: unused
    match: {unusedFor: 90d}
    action: delete
`)
	code, _, errOut := runMain(t, "validate", "-c", cfg, "--state-dir", filepath.Join(dir, "state"))
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, errOut)
	}
	for _, want := range []string{`receiver "siem": webhook: urlFile`, `receiver "siem": webhook: hmacSecretFile`, `receiver "chat": slack: webhookUrlFile`} {
		if n := strings.Count(errOut, want); n != 1 {
			t.Errorf("stderr names %q %d times, want once:\n%s", want, n, errOut)
		}
	}
	if !strings.Contains(errOut, ": 3 problems with what it names") {
		t.Errorf("stderr does not count 3 problems:\n%s", errOut)
	}
	_, out, _ := runMain(t, "validate", "-o", "json", "-c", cfg, "--state-dir", filepath.Join(dir, "state"))
	var v struct {
		Problems []struct{ Message string }
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if len(v.Problems) != 3 {
		t.Errorf("-o json: %d problems, want 3: %+v", len(v.Problems), v.Problems)
	}
	for _, p := range v.Problems {
		if strings.Contains(p.Message, "\n") {
			t.Errorf("-o json: a problem holds several: %q", p.Message)
		}
	}
}

// TestValidateSummaryNamesEveryRoute: the notify line of validate's summary
// names the apiClients route too; it listed summary, owners and failures
// only, so a reviewer could not see from validate who is warned before an
// API client is disabled.
func TestValidateSummaryNamesEveryRoute(t *testing.T) {
	t.Setenv("PATJANITOR_CLIENT_SECRET", "s3cr3t")
	dir := t.TempDir()
	write(t, filepath.Join(dir, "url"), "https://hooks.example.com/x")
	write(t, filepath.Join(dir, "hmac"), "hmac-key-0123456789abcdef")
	cfg := filepath.Join(dir, "policies.yaml")
	write(t, cfg, `tenant:
  url: http://127.0.0.1:1
  clientId: 0123456789abcdef0123456789abcdef
notify:
  receivers:
    - name: siem
      webhook: {urlFile: url, hmacSecretFile: hmac}
  summary: [siem]
  apiClients: [siem]
policies:
  - name: clients
    resource: apiClients
    match: {unusedFor: 90d}
    action: disable
`)
	code, out, errOut := runMain(t, "validate", "-c", cfg, "--state-dir", filepath.Join(dir, "state"))
	if code != 0 || !strings.Contains(out, "notify        receivers siem (webhook); summary siem; owners none; failures none; apiClients siem\n") {
		t.Errorf("validate: exit %d, want the apiClients route in the notify line:\n%s%s", code, out, errOut)
	}
}
