package idnsim

import (
	"net/http"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/pat"
)

const jsonPatch = "application/json-patch+json"

func TestOAuthClientsEndpoints(t *testing.T) {
	e := newEnv(t, Options{})
	used := t0.Add(-200 * 24 * 3600e9)
	c := e.sim.AddOAuthClient(apiclient.Client{ID: "Aa11-0001", Name: "stale", Internal: apiclient.Bool(false), Enabled: apiclient.Bool(true), LastUsed: &used, Created: t0.Add(-400 * 24 * 3600e9)}, "")
	e.sim.AddOAuthClient(apiclient.Client{ID: "aa11-0002", Name: "never", Internal: apiclient.Bool(false), Enabled: apiclient.Bool(true)}, "")
	tok := e.admin()

	if got := e.listIDs("/v3/oauth-clients", tok); len(got) != 2 {
		t.Fatalf("list = %v", got)
	}
	if got := e.listIDs("/v3/oauth-clients?filters=lastUsed+isnull", tok); len(got) != 1 || got[0] != "aa11-0002" {
		t.Fatalf("isnull = %v", got)
	}
	if got := e.listIDs("/v3/oauth-clients?filters=lastUsed+le+"+pat.FormatTime(t0.Add(-100*24*3600e9)), tok); len(got) != 1 || got[0] != c.ID {
		t.Fatalf("le = %v", got)
	}
	for _, f := range []string{"lastUsed+le+2026-01-01T00:00:00Z+or+lastUsed+isnull", "name+eq+%22x%22", "lastUsed+gt+2026-01-01T00:00:00Z", "lastUsed+le+%222026-01-01T00:00:00Z%22"} {
		wantError(t, e.do(http.MethodGet, "/v3/oauth-clients?filters="+f, tok, "", ""), http.StatusBadRequest, "")
	}
	// Ids are matched without regard to case; get answers the full shape.
	if r := e.do(http.MethodGet, "/v3/oauth-clients/aa11-0001", tok, "", ""); r.status != 200 {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	// Only the fields the spec lists are patchable.
	for _, path := range []string{"/internal", "/scope", "/type", "/id", "/lastUsed", "/enabled/0"} {
		wantError(t, e.do(http.MethodPatch, "/v3/oauth-clients/"+c.ID, tok, jsonPatch, `[{"op":"replace","path":"`+path+`","value":false}]`), http.StatusBadRequest, "not patchable")
	}
	wantError(t, e.do(http.MethodPatch, "/v3/oauth-clients/"+c.ID, tok, "application/json", `[{"op":"replace","path":"/enabled","value":false}]`), http.StatusBadRequest, "json-patch")
	wantError(t, e.do(http.MethodPatch, "/v3/oauth-clients/"+c.ID, tok, jsonPatch, `[{"op":"replace","path":"/enabled","value":"no"}]`), http.StatusBadRequest, "wrong type")
	// An atomic patch: the bad second operation leaves the first undone.
	wantError(t, e.do(http.MethodPatch, "/v3/oauth-clients/"+c.ID, tok, jsonPatch, `[{"op":"replace","path":"/enabled","value":false},{"op":"replace","path":"/internal","value":true}]`), http.StatusBadRequest, "")
	if got, _ := e.sim.OAuthClient(c.ID); !got.IsEnabled() {
		t.Fatal("a refused patch changed the client")
	}
	if r := e.do(http.MethodPatch, "/v3/oauth-clients/"+c.ID, tok, jsonPatch, `[{"op":"replace","path":"/enabled","value":false}]`); r.status != 200 {
		t.Fatalf("patch enabled: %d %s", r.status, r.body)
	}
	if got, _ := e.sim.OAuthClient(c.ID); got.IsEnabled() {
		t.Fatal("the client is still enabled")
	}
	if r := e.do(http.MethodDelete, "/v3/oauth-clients/"+c.ID, tok, "", ""); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d", r.status)
	}
	wantError(t, e.do(http.MethodDelete, "/v3/oauth-clients/"+c.ID, tok, "", ""), http.StatusNotFound, "not found")
	if r := e.do(http.MethodPost, "/v3/oauth-clients/"+c.ID, tok, "", ""); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("POST on a client: %d", r.status)
	}
	// Every mutation is in the log as one.
	n := 0
	for _, r := range Mutations(e.sim.Requests()) {
		if r.Operation == OpPatchOAuthClient || r.Operation == OpDeleteOAuthClient {
			n++
		}
	}
	if n != 12 {
		t.Errorf("%d API client mutations logged, want 12", n)
	}
}

func TestOAuthClientsRights(t *testing.T) {
	e := newEnv(t, Options{})
	e.sim.AddOAuthClient(apiclient.Client{ID: "c1", Name: "x", Internal: apiclient.Bool(false), Enabled: apiclient.Bool(true)}, "")
	admin := e.sim.Admin()
	owner, _ := e.sim.Token(admin.ClientID)
	add := func(id string, scopes ...string) string {
		tk := tokenFor(id, owner.Owner.ID)
		tk.Scope = pat.ScopesOf(scopes...)
		e.sim.Add(tk, "s-"+id)
		return e.login(id, "s-"+id)
	}
	none := add("p-none", "idn:sources:read")
	read := add("p-read", "sp:oauth-client:read")
	manage := add("p-manage", "sp:oauth-client:manage")
	wantError(t, e.do(http.MethodGet, "/v3/oauth-clients", none, "", ""), http.StatusForbidden, "sp:oauth-client:read")
	if got := e.listIDs("/v3/oauth-clients", read); len(got) != 1 {
		t.Fatalf("read list = %v", got)
	}
	wantError(t, e.do(http.MethodPatch, "/v3/oauth-clients/c1", read, jsonPatch, `[{"op":"replace","path":"/enabled","value":false}]`), http.StatusForbidden, "sp:oauth-client:manage")
	wantError(t, e.do(http.MethodDelete, "/v3/oauth-clients/c1", read, "", ""), http.StatusForbidden, "sp:oauth-client:manage")
	if r := e.do(http.MethodDelete, "/v3/oauth-clients/c1", manage, "", ""); r.status != http.StatusNoContent {
		t.Fatalf("delete with manage: %d %s", r.status, r.body)
	}
}

func TestOAuthClientsSeedAndReset(t *testing.T) {
	e := newEnv(t, Options{})
	e.sim.SeedOAuthClients(7)
	first := e.sim.OAuthClients()
	e.sim.Remove("nothing") // tokens only
	tok := e.admin()
	if r := e.do(http.MethodDelete, "/v3/oauth-clients/"+first[0].ID, tok, "", ""); r.status != http.StatusNoContent {
		t.Fatal(r.status)
	}
	e.sim.Reset(true)
	if got := e.sim.OAuthClients(); len(got) != len(first) {
		t.Fatalf("after reset: %d clients, want %d", len(got), len(first))
	}
	e2 := newEnv(t, Options{})
	e2.sim.SeedOAuthClients(7)
	if a, b := first[0].ID, e2.sim.OAuthClients()[0].ID; a != b {
		t.Fatalf("the same seed gave %s and %s", a, b)
	}
}

// An API client logs in with client_credentials (what a deployment that runs
// patjanitor as an API client does); disabling it cuts it off, and a login
// updates lastUsed once a day.
func TestOAuthClientLogin(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.sim.AddOAuthClient(apiclient.Client{ID: "C1-UPPER", Name: "svc", Internal: apiclient.Bool(false), Enabled: apiclient.Bool(true)}, "s3cret")
	wantStatus := func(r resp, status int, text string) {
		t.Helper()
		if r.status != status || !strings.Contains(string(r.body), text) {
			t.Fatalf("login: %d %s, want %d %q", r.status, r.body, status, text)
		}
	}
	wantStatus(e.mintRaw(c.ID, "wrong"), http.StatusUnauthorized, "invalid_client")
	tok := e.login("c1-upper", "s3cret")
	if got := e.listIDs("/v3/oauth-clients", tok); len(got) != 1 {
		t.Fatalf("list as the API client = %v", got)
	}
	if got, _ := e.sim.OAuthClient(c.ID); got.LastUsed == nil || !got.LastUsed.Equal(t0) {
		t.Fatalf("lastUsed after login = %v", got.LastUsed)
	}
	if r := e.do(http.MethodPatch, "/v3/oauth-clients/"+c.ID, tok, jsonPatch, `[{"op":"replace","path":"/enabled","value":false}]`); r.status != 200 {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}
	wantStatus(e.mintRaw(c.ID, "s3cret"), http.StatusUnauthorized, "disabled")
}
