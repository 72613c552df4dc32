package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// A tenant (or a proxy) answers `patjanitor enable`'s PATCH with the API
// client's name holding the bearer token of the request. The listing and
// the GET of a client are scrubbed of patjanitor's credentials, the PATCH
// answer was not, and enable prints the client's name from that answer:
// the access token reached the terminal (and whatever captures it). The
// PATCH is still sent, journaled and confirmed; the name is shown redacted.
func TestHostileTenantEchoesTheAccessTokenInAPatchAnswer(t *testing.T) {
	var mu sync.Mutex
	var bearers []string
	echo := false
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			mu.Lock()
			if tok != "" {
				bearers = append(bearers, tok)
			}
			on := echo
			mu.Unlock()
			if !on || r.Method != http.MethodPatch {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			body := bytes.Replace(rec.Body.Bytes(), []byte(`"name":"legacy"`), []byte(`"name":"legacy `+tok+`"`), 1)
			for k, v := range rec.Header() {
				if k != "Content-Length" {
					w.Header()[k] = v
				}
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
		})
	}
	e := newWFWrapped(t, wfClientPolicies, idnsim.Options{}, wrap)
	e.sim.AddOAuthClient(apiclient.Client{ID: wfClient, Name: "legacy", Internal: apiclient.Bool(false), Enabled: apiclient.Bool(true),
		Scope: pat.Scopes{Null: true}, Created: time.Now().Add(-400 * wfDay)}, "")
	if code, stdout, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if c, _ := e.sim.OAuthClient(wfClient); c.IsEnabled() {
		t.Fatal("the client was not disabled")
	}

	mu.Lock()
	echo = true
	mu.Unlock()
	code, stdout, stderr := e.run(nil, "enable", wfClient, "--reason", "the ERP still uses it")
	if code != 0 {
		t.Fatalf("enable: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if c, _ := e.sim.OAuthClient(wfClient); !c.IsEnabled() {
		t.Fatal("the client is still disabled")
	}
	m := clientMutations(e.sim.Requests())
	if len(m) != 2 || m[1].Method != http.MethodPatch || !strings.HasSuffix(m[1].Path, "/"+wfClient) {
		t.Fatalf("the tenant received %+v, want the disable and the enable PATCH", m)
	}
	if !strings.Contains(stdout, "Enabled API client "+wfClient+" (legacy "+secret.Redacted+")") {
		t.Errorf("enable printed %q, want the name with the credential redacted", stdout)
	}
	journal, err := os.ReadFile(filepath.Join(e.state, JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bearers) == 0 {
		t.Fatal("no bearer token was sent")
	}
	for _, tok := range bearers {
		for where, out := range map[string]string{"enable's output": stdout + stderr, "the journal": string(journal)} {
			if strings.Contains(out, tok) {
				t.Errorf("%s holds the access token patjanitor sent", where)
			}
		}
	}
}
