package cli

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// hostileSecret holds every character an encoding changes.
const hostileSecret = "abc+def/ghi=jkl&m n%o\"p\\q-0123456789"

// echoForms are the forms a server can echo a secret in.
func echoForms(v string) map[string]string {
	j, _ := json.Marshal(v)
	return map[string]string{
		"verbatim":      v,
		"query-escaped": url.QueryEscape(v),
		"path-escaped":  url.PathEscape(v),
		"json":          string(j[1 : len(j)-1]),
		"go-quoted":     strconv.Quote(v)[1 : len(strconv.Quote(v))-1],
		"base64":        base64.StdEncoding.EncodeToString([]byte(v)),
		"base64 raw":    base64.RawURLEncoding.EncodeToString([]byte(v)),
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A token endpoint that echoes the request in its error, with the client
// secret in each form it can take: plan's output and logs never show it. A
// 307 from the token endpoint is reported by status and host.
func TestHostilePlanTokenEndpointEchoesSecret(t *testing.T) {
	forms := echoForms(hostileSecret)
	var echo string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if echo == "redirect" {
			http.Redirect(w, r, "http://127.0.0.1:9/steal?"+string(body), http.StatusTemporaryRedirect)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		desc, _ := json.Marshal("request was " + string(body) + " secret " + echo)
		_, _ = io.WriteString(w, `{"error":"invalid_client","error_description":`+string(desc)+`}`)
	}))
	defer srv.Close()
	dir := writeFiles(t, map[string]string{"client-secret": hostileSecret + "\n"})
	cfg := filepath.Join(dir, "policies.yaml")
	if err := os.WriteFile(cfg, []byte(`tenant:
  url: `+srv.URL+`
  clientId: 0123456789abcdef0123456789abcdef
  clientSecretFile: `+filepath.Join(dir, "client-secret")+`
policies:
  - name: unused
    match: {unusedFor: 90d}
    action: delete
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, form := range forms {
		echo = form
		code, out, errs := runMain(t, "-c", cfg, "--state-dir", t.TempDir(), "--log-level", "debug", "--log-format", "json", "plan")
		if code == 0 {
			t.Fatalf("%s: plan succeeded against a refusing token endpoint", name)
		}
		if !strings.Contains(errs, "invalid_client") {
			t.Errorf("%s: stderr does not say what failed: %s", name, errs)
		}
		for fname, f := range forms {
			if strings.Contains(out+errs, f) {
				t.Errorf("echo of the %s form: the %s form leaked:\n%s\n%s", name, fname, out, errs)
			}
		}
	}
	echo = "redirect"
	code, out, errs := runMain(t, "-c", cfg, "--state-dir", t.TempDir(), "plan")
	if code == 0 || !strings.Contains(errs, "307") || !strings.Contains(errs, "host 127.0.0.1:9") || strings.Contains(out+errs, "steal") {
		t.Errorf("redirect: code %d, stderr %q; want the 307 and its host only", code, errs)
	}
	for fname, f := range forms {
		if strings.Contains(out+errs, f) {
			t.Errorf("redirect: the %s form leaked: %s", fname, errs)
		}
	}
}

// notify test against a webhook that quotes its URL and key back, in every
// form, or redirects: the output names the receiver and the failure, never a
// secret.
func TestHostileNotifyTestEchoesSecrets(t *testing.T) {
	const hmacKey = "hmac+key/with=every&char 0123456789"
	var echo string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if echo == "redirect" {
			http.Redirect(w, r, "http://127.0.0.1:9/elsewhere?"+r.URL.RawQuery, http.StatusPermanentRedirect)
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, "bad request "+echo)
	}))
	defer srv.Close()
	hookURL := srv.URL + "/hook/" + url.PathEscape(hostileSecret) + "?token=" + url.QueryEscape(hostileSecret)
	dir := writeFiles(t, map[string]string{"url": hookURL, "hmac": hmacKey, "client-secret": "s3cr3t-value"})
	cfg := filepath.Join(dir, "policies.yaml")
	if err := os.WriteFile(cfg, []byte(`tenant:
  url: https://acme.api.identitynow.com
  clientId: 0123456789abcdef0123456789abcdef
  clientSecretFile: `+filepath.Join(dir, "client-secret")+`
notify:
  receivers:
    - name: siem
      webhook: {urlFile: `+filepath.Join(dir, "url")+`, hmacSecretFile: `+filepath.Join(dir, "hmac")+`}
  summary: [siem]
policies:
  - name: unused
    match: {unusedFor: 90d}
    action: delete
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var all []map[string]string
	for _, v := range []string{hostileSecret, hmacKey} {
		all = append(all, echoForms(v))
	}
	cases := map[string]string{"redirect": "redirect"}
	for _, forms := range all {
		for name, f := range forms {
			cases[name+" "+f[:3]] = f
		}
	}
	for name, e := range cases {
		echo = e
		code, out, errs := runMain(t, "-c", cfg, "--log-level", "debug", "--log-format", "json", "notify", "test", "siem")
		if code == 0 || !strings.Contains(errs, "siem") {
			t.Errorf("%s: code %d, stderr %q", name, code, errs)
		}
		if name == "redirect" && (!strings.Contains(errs, "308") || !strings.Contains(errs, "host 127.0.0.1:9")) {
			t.Errorf("redirect: stderr %q does not name the 308 and its host", errs)
		}
		for _, forms := range all {
			for fname, f := range forms {
				if strings.Contains(out+errs, f) {
					t.Errorf("echo %s: the %s form %q leaked:\n%s\n%s", name, fname, f, out, errs)
				}
			}
		}
	}
}
