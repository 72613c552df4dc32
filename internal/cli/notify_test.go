package cli

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/patjanitor/patjanitor/internal/idnsim"
)

// notifyTestConfig writes a config with one signed webhook receiver whose URL
// and HMAC key are in files, and returns its path.
func notifyTestConfig(t *testing.T, url string) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	urlFile := write("url", url)
	keyFile := write("hmac", "hmac-key-do-not-leak")
	secretFile := write("client-secret", "s3cr3t")
	return write("policies.yaml", `tenant:
  url: https://acme.api.identitynow.com
  clientId: 0123456789abcdef0123456789abcdef
  clientSecretFile: `+secretFile+`
notify:
  receivers:
    - name: siem
      webhook: {urlFile: `+urlFile+`, hmacSecretFile: `+keyFile+`}
  summary: [siem]
policies:
  - name: unused
    match: {unusedFor: 90d}
    action: delete
`)
}

func TestNotifyTestCommand(t *testing.T) {
	var mu sync.Mutex
	var got []*http.Request
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got = append(got, r)
		st := status
		mu.Unlock()
		w.WriteHeader(st)
	}))
	defer srv.Close()
	secretURL := srv.URL + "/hook/secret-path-token"
	cfg := notifyTestConfig(t, secretURL)

	code, out, errs := runMain(t, "-c", cfg, "notify", "test", "siem")
	if code != 0 || !strings.Contains(out, "Sent a test message to siem") {
		t.Fatalf("notify test: code %d, out %q, stderr %q", code, out, errs)
	}
	mu.Lock()
	if len(got) != 1 || !strings.HasPrefix(got[0].Header.Get("X-Patjanitor-Signature"), "sha256=") {
		t.Fatalf("receiver saw %d requests (signature %q)", len(got), got[0].Header.Get("X-Patjanitor-Signature"))
	}
	status = http.StatusBadRequest // not retried
	got = nil
	mu.Unlock()

	code, out, errs = runMain(t, "-c", cfg, "--log-format", "json", "notify", "test", "siem")
	if code == 0 {
		t.Fatalf("notify test against a 400: code 0, out %q", out)
	}
	for _, leak := range []string{"secret-path-token", "hmac-key-do-not-leak"} {
		if strings.Contains(out+errs, leak) {
			t.Fatalf("output leaks %q:\n%s\n%s", leak, out, errs)
		}
	}
	if !strings.Contains(errs, "siem") {
		t.Fatalf("error does not name the receiver: %q", errs)
	}

	code, _, errs = runMain(t, "-c", cfg, "notify", "test", "nope")
	if code == 0 || !strings.Contains(errs, `no receiver "nope"`) {
		t.Fatalf("unknown receiver: code %d, stderr %q", code, errs)
	}
}

// plan --notifications-dir renders what a run would send and sends nothing;
// a snooze made with `snooze` makes plan list the token as skipped.
func TestPlanNotificationsDirAndSnooze(t *testing.T) {
	var mu sync.Mutex
	hits := 0
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	defer hook.Close()
	e := newWF(t, "", idnsim.Options{})
	urlFile := filepath.Join(e.dir, "hook-url")
	keyFile := filepath.Join(e.dir, "hook-key")
	for p, v := range map[string]string{urlFile: hook.URL + "/secret-path-token", keyFile: "hmac-key-do-not-leak"} {
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e.writeConfig(`limits: {maxActionsPerRun: 1, maxActionsPercent: 0, maxActionsPerOwner: 0}
notify:
  receivers:
    - name: siem
      webhook: {urlFile: ` + urlFile + `, hmacSecretFile: ` + keyFile + `}
  summary: [siem]
  failures: [siem]
policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
`)
	e.add("tok-a", "o1", 400*wfDay, 200*wfDay)
	e.add("tok-b", "o1", 400*wfDay, 200*wfDay)
	if code, _, errs := e.run(nil, "snooze", "tok-b", "--for", "30d", "--reason", "kept for the audit"); code != 0 {
		t.Fatalf("snooze: %d %s", code, errs)
	}
	// Two wanted actions against a limit of one would trip; the snooze
	// leaves one.
	dir := filepath.Join(e.dir, "notifications")
	code, out, errs := e.run(nil, "plan", "--notifications-dir", dir)
	if code != 0 || !strings.Contains(errs, "(none sent)") {
		t.Fatalf("plan: code %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "snoozed until") {
		t.Fatalf("plan does not show the snooze:\n%s", out)
	}
	files, err := os.ReadDir(dir)
	if err != nil || len(files) != 1 || !strings.Contains(files[0].Name(), "summary-siem") {
		t.Fatalf("notification files: %v, %v", files, err)
	}
	body, _ := os.ReadFile(filepath.Join(dir, files[0].Name()))
	for _, leak := range []string{"secret-path-token", "hmac-key-do-not-leak"} {
		if strings.Contains(string(body)+out+errs, leak) {
			t.Fatalf("leaks %q", leak)
		}
	}
	if !strings.Contains(string(body), "tok-a") {
		t.Fatalf("summary does not list tok-a:\n%s", body)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 0 {
		t.Fatalf("the receiver saw %d requests during a dry run", hits)
	}
}
