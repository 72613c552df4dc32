package cli

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/secret"
	"github.com/patjanitor/patjanitor/internal/state"
)

// A hostile tenant (or a proxy) lists tokens with the bearer token it was
// sent, its base64 and the client secret in each token's name and owner's
// name. patjanitor deletes stale-1; the state store is then restored from a
// backup taken before that run, so the next open of the journal rebuilds
// the confirmed delete from the journal's intent and outcome (the
// catch-up). Nothing the tenant echoed may come back: not in the journal,
// not in the rebuilt record in state.db, not in what `unproven` prints. A
// guard: no defect found (listed strings are redacted as they are decoded,
// and the catch-up rebuilds from the intent, never from an answer).
func TestHostileCatchUpRebuildsNoEchoedCredential(t *testing.T) {
	var (
		mu      sync.Mutex
		bearers []string
	)
	var e *wfEnv
	echo := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || r.Method != http.MethodGet || r.URL.Path != "/v3/personal-access-tokens" {
				h.ServeHTTP(w, r)
				return
			}
			mu.Lock()
			bearers = append(bearers, tok)
			mu.Unlock()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			var toks []map[string]any
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &toks) != nil {
				t.Errorf("listing answered %d: %.200s", rec.Code, rec.Body.String())
				return
			}
			leak := tok + " " + base64.StdEncoding.EncodeToString([]byte(tok)) + " " + e.admin.ClientSecret
			for _, m := range toks {
				m["name"] = "ci " + leak
				if o, ok := m["owner"].(map[string]any); ok {
					o["name"] = "owner " + leak
				}
			}
			body, _ := json.Marshal(toks)
			maps.Copy(w.Header(), rec.Header())
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
		})
	}
	e = newWFWrapped(t, wfPolicies, idnsim.Options{}, echo)
	e.add("fresh-1", "o1", 10*wfDay, wfDay)
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("first apply: exit %d\n%s", code, stderr)
	}
	storePath := filepath.Join(e.state, state.FileName)
	backup := filepath.Join(e.dir, "state.db.backup")
	copyStateFile(t, storePath, backup)

	e.add("stale-1", "o2", 400*wfDay, 200*wfDay)
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, stderr)
	}
	if m := e.mutations(); len(m) != 1 || m[0].Method != http.MethodDelete || m[0].Path != "/v3/personal-access-tokens/stale-1" || e.present("stale-1") {
		t.Fatalf("the tenant received %+v; want stale-1's DELETE", m)
	}
	// The echo reached the journal, redacted: the intent shows the name.
	var named bool
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindIntent && r.TokenID == "stale-1" && r.Before != nil {
			named = r.Before.Name == "ci "+secret.Redacted+" "+secret.Redacted+" "+secret.Redacted
		}
	}
	if !named {
		t.Fatal("no intent of stale-1 with the echoed name redacted: the echo did not reach patjanitor")
	}
	copyStateFile(t, backup, storePath)
	// Any command that opens the journal for a change catches the store up.
	if code, _, stderr := e.run(nil, "snooze", "fresh-1", "--for", "1d", "--reason", "vendor", "--by", "ops"); code != 0 {
		t.Fatalf("snooze after the restore: exit %d\n%s", code, stderr)
	}
	if toks, _ := storedRecords(t, e.state); len(toks) != 1 || toks[0].TokenID != "stale-1" || toks[0].Action != "delete" {
		t.Fatalf("records after the catch-up: %+v; want stale-1's delete rebuilt", toks)
	}
	_, table, _ := e.run(nil, "unproven")
	_, js, _ := e.run(nil, "unproven", "-o", "json")
	if !strings.Contains(table, "stale-1") || !strings.Contains(js, `"stale-1"`) {
		t.Fatalf("unproven does not list the rebuilt record:\n%s\n%s", table, js)
	}
	store, err := os.ReadFile(storePath)
	if err != nil {
		t.Fatal(err)
	}
	journal := journalBytes(t, e.state)
	mu.Lock()
	defer mu.Unlock()
	if len(bearers) == 0 {
		t.Fatal("no listing echoed: the test checks nothing")
	}
	secrets := map[string]string{"the client secret": e.admin.ClientSecret}
	for _, b := range bearers {
		secrets["an access token"] = b
		secrets["an access token's base64"] = base64.StdEncoding.EncodeToString([]byte(b))
		for what, s := range secrets {
			for where, text := range map[string]string{"state.db": string(store), "the journal": journal, "unproven": table, "unproven -o json": js} {
				if strings.Contains(text, s) {
					t.Errorf("%s holds %s", where, what)
				}
			}
		}
	}
}

// journalBytes is every journal segment under stateDir, concatenated.
func journalBytes(t *testing.T, stateDir string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(stateDir, JournalFile+"*"))
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	if b.Len() == 0 {
		t.Fatal("no journal")
	}
	return b.String()
}
