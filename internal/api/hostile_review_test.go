package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// A hostile tenant answers a PATCH with 200 and the bearer token (and its
// base64) in the token's name: the answer does not confirm the change, and
// the error that says so quotes what came back. Only error bodies were
// redacted, so the access token reached the error, and with it the journal's
// outcome and the logs (invariant 7).
func TestHostilePatchAnswerEchoesAccessToken(t *testing.T) {
	ft := newFakeTenant(t, func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		name := "stolen " + tok + " " + base64.StdEncoding.EncodeToString([]byte(tok))
		writeJSON(w, http.StatusOK, `{"id":"t1","name":"`+name+`","scope":["sp:scopes:default"],"owner":{"type":"IDENTITY","id":"o","name":"O"},"created":"2026-01-01T00:00:00.000Z","lastUsed":null,"managed":false}`)
	})
	c, _ := newTestClient(t, ft.srv.URL, nil)
	_, err := c.PatchToken(t.Context(), "t1", []pat.PatchOp{pat.Rename("renamed")})
	if err == nil {
		t.Fatal("an answer with another name was taken for the change")
	}
	for _, f := range []string{"access-1", base64.StdEncoding.EncodeToString([]byte("access-1"))} {
		if strings.Contains(err.Error(), f) {
			t.Errorf("the access token (%s) is in the error: %v", f, err)
		}
	}
}

// A proxy between patjanitor and the tenant puts the bearer token and the
// client secret into the strings of a PATCH answer that the change does not
// touch (the token's name and owner's name, for a scope patch): the answer
// confirms the change, and PatchToken returned it as it came. Listings,
// errors and API client PATCH answers are scrubbed; a token's answer must be
// too, so that no caller can show or store the credentials.
func TestHostilePatchConfirmedAnswerEchoesSecrets(t *testing.T) {
	env := newSimEnv(t, idnsim.Options{})
	env.sim.Seed(5, 1)
	admin := env.sim.Admin()
	c, echoed := patchAnswerProxy(t, env, func(tok string, answer []byte) (any, error) {
		var m map[string]any
		if err := json.Unmarshal(answer, &m); err != nil {
			return nil, err
		}
		m["name"] = "ci " + tok + " " + base64.StdEncoding.EncodeToString([]byte(tok))
		m["owner"].(map[string]any)["name"] = "owner " + admin.ClientSecret
		return m, nil
	})

	ops := []pat.PatchOp{pat.SetScopes([]string{"sp:scopes:all"})}
	got, err := c.PatchToken(t.Context(), admin.ClientID, ops)
	if err != nil {
		t.Fatalf("PatchToken: %v (the answer confirms the scope)", err)
	}
	tok := echoed()
	shown := fmt.Sprintf("%+v", got)
	for what, f := range map[string]string{"the access token": tok, "its base64": base64.StdEncoding.EncodeToString([]byte(tok)), "the client secret": admin.ClientSecret} {
		if strings.Contains(shown, f) {
			t.Errorf("the answer PatchToken returned holds %s", what)
		}
	}
	if got.ID != admin.ClientID || got.Name != "ci "+secret.Redacted+" "+secret.Redacted || got.Owner.Name != "owner "+secret.Redacted ||
		!sameScopes([]string{"sp:scopes:all"}, got.Scope.Values) {
		t.Errorf("PatchToken returned name %.40q, owner name %.40q, scope %v", got.Name, got.Owner.Name, got.Scope.Values)
	}
	// The tenant received the one PATCH, once.
	var patches []idnsim.Request
	for _, r := range apiRequests(env.requests()) {
		if r.Method == http.MethodPatch {
			patches = append(patches, r)
		}
	}
	if len(patches) != 1 || patches[0].Path != "/v3/personal-access-tokens/"+admin.ClientID ||
		string(patches[0].Body) != `[{"op":"replace","path":"/scope","value":["sp:scopes:all"]}]` {
		t.Errorf("the tenant received %+v", patches)
	}
}

// The same proxy on the bulk update's answer, which BulkUpdateTokens
// returned as it came: the credentials in the tokens' names and owners'
// names, and in the id of a token the request did not name. The answer is
// redacted, never refused (the update took effect): the named tokens come
// back with their ids and new expiration, and the extra token's id is
// redacted, so it matches no id that was sent.
func TestHostileBulkConfirmedAnswerEchoesSecrets(t *testing.T) {
	env := newSimEnv(t, idnsim.Options{})
	env.sim.Seed(10, 1)
	admin := env.sim.Admin()
	var ids []string
	for _, tk := range env.sim.Tokens() {
		if tk.ID != admin.ClientID && !tk.Managed && len(ids) < 2 {
			ids = append(ids, tk.ID)
		}
	}
	slices.Sort(ids)
	c, echoed := patchAnswerProxy(t, env, func(tok string, answer []byte) (any, error) {
		var ts []map[string]any
		if err := json.Unmarshal(answer, &ts); err != nil {
			return nil, err
		}
		for _, m := range ts {
			m["name"] = "ci " + tok + " " + base64.StdEncoding.EncodeToString([]byte(tok))
			m["owner"].(map[string]any)["name"] = "owner " + admin.ClientSecret
		}
		extra := maps.Clone(ts[0])
		extra["id"] = "id-" + tok
		return append(ts, extra), nil
	})

	exp := env.clock.Now().Add(14 * 24 * time.Hour)
	got, err := c.BulkUpdateTokens(t.Context(), ids, []pat.PatchOp{pat.SetExpiration(exp)})
	if err != nil {
		t.Fatalf("BulkUpdateTokens: %v (the update took effect: its answer is redacted, not refused)", err)
	}
	tok := echoed()
	shown := fmt.Sprintf("%+v", got)
	for what, f := range map[string]string{"the access token": tok, "its base64": base64.StdEncoding.EncodeToString([]byte(tok)), "the client secret": admin.ClientSecret} {
		if strings.Contains(shown, f) {
			t.Errorf("the answer BulkUpdateTokens returned holds %s", what)
		}
	}
	if len(got) != 3 {
		t.Fatalf("BulkUpdateTokens returned %d tokens, want the 3 answered", len(got))
	}
	for i, tk := range got[:2] {
		if tk.ID != ids[i] || tk.ExpirationDate == nil || !tk.ExpirationDate.Equal(exp) ||
			tk.Name != "ci "+secret.Redacted+" "+secret.Redacted || tk.Owner.Name != "owner "+secret.Redacted {
			t.Errorf("token %d: id %s, expiration %v, name %.40q, owner name %.40q", i, tk.ID, tk.ExpirationDate, tk.Name, tk.Owner.Name)
		}
	}
	if got[2].ID != "id-"+secret.Redacted {
		t.Errorf("the extra token's id is %.40q, want it redacted", got[2].ID)
	}
	// The tenant received the one bulk update, once, and applied it.
	var patches []idnsim.Request
	for _, r := range apiRequests(env.requests()) {
		if r.Method == http.MethodPatch {
			patches = append(patches, r)
		}
	}
	if len(patches) != 1 || patches[0].Path != BulkPath || patches[0].Status != http.StatusOK {
		t.Errorf("the tenant received %+v", patches)
	}
	for _, id := range ids {
		if st, _ := env.sim.Token(id); st.ExpirationDate == nil || !st.ExpirationDate.Equal(exp) {
			t.Errorf("the tenant holds token %s with expiration %v", id, st.ExpirationDate)
		}
	}
}

// patchAnswerProxy is a client of env's tenant through a proxy that
// replaces every 200 answer to a PATCH with what rewrite makes of it,
// given the bearer token of the request; echoed returns that token.
func patchAnswerProxy(t *testing.T, env *simEnv, rewrite func(tok string, answer []byte) (any, error)) (c *Client, echoed func() string) {
	t.Helper()
	target, err := url.Parse(env.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var seen atomic.Value // the bearer token the proxy echoed
	proxy.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method != http.MethodPatch || resp.StatusCode != http.StatusOK {
			return nil
		}
		tok := strings.TrimPrefix(resp.Request.Header.Get("Authorization"), "Bearer ")
		seen.Store(tok)
		answer, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return err
		}
		v, err := rewrite(tok, answer)
		if err != nil {
			return err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	c, _ = env.client(t, func(cfg *Config) { cfg.BaseURL = srv.URL })
	return c, func() string {
		tok, _ := seen.Load().(string)
		if tok == "" {
			t.Fatal("the proxy saw no PATCH answer")
		}
		return tok
	}
}

// The same for the bulk update's answer, which the engine quotes per token.
func TestHostileBulkAnswerEchoesAccessToken(t *testing.T) {
	ft := newFakeTenant(t, func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		writeJSON(w, http.StatusOK, `[{"id":"t1","name":"`+tok+`","scope":null,"owner":{"type":"IDENTITY","id":"o","name":"O"},"created":"2026-01-01T00:00:00.000Z","lastUsed":null,"expirationDate":"`+tok+`"}]`)
	})
	c, _ := newTestClient(t, ft.srv.URL, nil)
	_, err := c.BulkUpdateTokens(t.Context(), []string{"t1"}, []pat.PatchOp{pat.SetExpiration(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))})
	if err == nil {
		// Without the error, the check below would pass having seen nothing.
		t.Fatal("an answer whose expirationDate is the access token was accepted")
	}
	if strings.Contains(err.Error(), "access-1") {
		t.Errorf("the access token is in the error: %v", err)
	}
}

// A one-object answer larger than its bound (1 MiB) is refused as too large,
// not reported as a body that broke off ("unexpected EOF"), and not asked
// for again.
func TestHostileOversizeSingleAnswerSaysTooLarge(t *testing.T) {
	var gets atomic.Int32
	ft := newFakeTenant(t, func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		writeJSON(w, http.StatusOK, `{"id":"c1","name":"`+strings.Repeat("a", 2<<20)+`"}`)
	})
	c, _ := newTestClient(t, ft.srv.URL, nil)
	_, err := c.GetOAuthClient(t.Context(), "c1")
	if !errors.Is(err, ErrMalformedResponse) || !strings.Contains(err.Error(), "the body is larger than 1048576 bytes") {
		t.Fatalf("GetOAuthClient: %v, want a malformed answer that says it is too large", err)
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("the tenant received %d GETs, want 1", n)
	}
}
