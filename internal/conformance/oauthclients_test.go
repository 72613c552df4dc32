package conformance

import (
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/pat"
)

// oauthRouter loads the OAuth client paths of the full v3 spec
// (listOauthClients, getOauthClient, patchOauthClient, deleteOauthClient).
func oauthRouter(t *testing.T, e *env) func(exchange) []string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(specDir(t), "sailpoint-api.v3.full.openapi.yaml")); err != nil {
		t.Skipf("the full v3 spec is absent: %v", err)
	}
	router := loadSpec(t, "sailpoint-api.v3.full.openapi.yaml", e.srv.URL+"/v3", "/oauth-clients", "/oauth-clients/{id}")
	return func(ex exchange) []string { return validate(router, ex) }
}

// TestOAuthClientConformance drives every API client call patjanitor makes,
// and the documented error statuses, through the client against the
// simulator's seeded clients, and validates every request and response
// against the full v3 spec.
func TestOAuthClientConformance(t *testing.T) {
	e := newEnv(t, pat.V3, idnsim.Options{})
	e.sim.SeedOAuthClients(3)
	check := oauthRouter(t, e)
	ctx := t.Context()
	c := e.client

	all, err := c.ListOAuthClients(ctx, "")
	if err != nil || len(all) < 8 {
		t.Fatalf("list: %d clients, %v", len(all), err)
	}
	kinds := map[string]bool{}
	for _, cl := range all {
		kinds["internal"] = kinds["internal"] || cl.IsInternal()
		kinds["disabled"] = kinds["disabled"] || !cl.IsEnabled()
		kinds["never-used"] = kinds["never-used"] || cl.LastUsed == nil
		kinds["full-scope"] = kinds["full-scope"] || cl.Scope.Has(pat.ScopeAll)
		kinds["null-scope"] = kinds["null-scope"] || cl.Scope.Null
		kinds["public"] = kinds["public"] || cl.Type == apiclient.TypePublic
	}
	for _, k := range []string{"internal", "disabled", "never-used", "full-scope", "null-scope", "public"} {
		if !kinds[k] {
			t.Errorf("the seeded clients hold no %s client", k)
		}
	}
	cutoff := time.Now().Add(-90 * 24 * time.Hour)
	stale, err := c.ListOAuthClients(ctx, api.Filter(pat.Listing{Kind: pat.ListLastUsedBefore, Cutoff: cutoff}))
	if err != nil {
		t.Fatal(err)
	}
	never, err := c.ListOAuthClients(ctx, api.Filter(pat.Listing{Kind: pat.ListNeverUsed}))
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range stale {
		if cl.LastUsed == nil || cl.LastUsed.After(cutoff) {
			t.Errorf("lastUsed le returned %s with lastUsed %s", cl.ID, cl.LastUsedString())
		}
	}
	for _, cl := range never {
		if cl.LastUsed != nil {
			t.Errorf("lastUsed isnull returned %s", cl.ID)
		}
	}
	if len(stale) == 0 || len(never) == 0 || len(stale)+len(never) >= len(all) {
		t.Errorf("filters: %d stale, %d never used of %d", len(stale), len(never), len(all))
	}
	// A filter outside the documented support list is a 400.
	var aerr *api.Error
	if _, err := c.ListOAuthClients(ctx, `name eq "x"`); !errors.As(err, &aerr) || aerr.StatusCode != http.StatusBadRequest {
		t.Errorf("unsupported filter: %v, want a 400", err)
	}

	target := never[0].ID
	for _, cl := range never {
		if !cl.IsInternal() && cl.IsEnabled() {
			target = cl.ID
		}
	}
	if _, err := c.GetOAuthClient(ctx, target); err != nil {
		t.Fatal(err)
	}
	if got, err := c.SetOAuthClientEnabled(ctx, target, false); err != nil || got.IsEnabled() {
		t.Fatalf("disable: %+v %v", got, err)
	}
	if got, err := c.SetOAuthClientEnabled(ctx, target, true); err != nil || !got.IsEnabled() {
		t.Fatalf("enable: %+v %v", got, err)
	}
	if err := c.DeleteOAuthClient(ctx, target); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteOAuthClient(ctx, target); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("second delete: %v, want a 404", err)
	}
	if _, err := c.GetOAuthClient(ctx, target); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("get of a deleted client: %v, want a 404", err)
	}
	if _, err := c.SetOAuthClientEnabled(ctx, target, false); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("patch of a deleted client: %v, want a 404", err)
	}

	// The simulator refuses a PATCH of a field the spec does not list as
	// patchable (patjanitor never sends one: SetOAuthClientEnabled is its
	// only patch); the 400 must conform too.
	tok := accessToken(t, e)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, e.srv.URL+"/v3/oauth-clients/"+url.PathEscape(all[0].ID),
		strings.NewReader(`[{"op":"replace","path":"/internal","value":false}]`))
	req.Header.Set("Content-Type", "application/json-patch+json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := (&http.Client{Transport: e.rec}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("PATCH /internal: %d, want 400", resp.StatusCode)
	}

	n := 0
	for _, ex := range e.rec.take() {
		if ex.req.URL.Path == "/oauth/token" {
			continue
		}
		n++
		for _, p := range check(ex) {
			t.Error(p)
		}
	}
	if n < 12 {
		t.Fatalf("only %d exchanges were validated", n)
	}
}

// TestOAuthClientValidatorCatchesViolations: a client listed without the
// required internal and enabled (what the engine treats as internal) and a
// scope of the wrong type fail the validation above.
func TestOAuthClientValidatorCatchesViolations(t *testing.T) {
	e := newEnv(t, pat.V3, idnsim.Options{})
	e.sim.AddOAuthClient(apiclient.Client{ID: "a1b2c3d4-0000-4000-8000-000000000001", Name: "no-flags"}, "")
	check := oauthRouter(t, e)
	if _, err := e.client.ListOAuthClients(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListOAuthClients, Status: 200, Times: 1,
		Body: `[{"id":"x","name":"n","scope":"sp:scopes:all","created":"2026-01-02T03:04:05.000Z"}]`})
	_, _ = e.client.ListOAuthClients(t.Context(), "")
	var bad int
	for _, ex := range e.rec.take() {
		if ex.req.URL.Path != "/oauth/token" && len(check(ex)) > 0 {
			bad++
		}
	}
	if bad != 2 {
		t.Errorf("%d of 2 non-conforming listings were caught", bad)
	}
}
