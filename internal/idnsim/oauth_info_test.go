package idnsim

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// plainUser adds a non-admin identity with a PAT and one more token, and
// returns the PAT's credentials.
func plainUser(e *env) Credentials {
	e.sim.AddIdentity(Identity{ID: "0000000000000000000000000000a5e1", Name: "Plain User"})
	c := Credentials{ClientID: "0000000000000000000000000000c1d0", ClientSecret: "plain-secret"}
	e.sim.Add(pat.Token{ID: c.ClientID, Name: "mine", Owner: pat.Owner{ID: "0000000000000000000000000000a5e1"}, Scope: pat.ScopesOf(pat.ScopeAll)}, c.ClientSecret)
	e.sim.Add(pat.Token{ID: "0000000000000000000000000000c1d1", Name: "mine-too", Owner: pat.Owner{ID: "0000000000000000000000000000a5e1"}}, "")
	return c
}

// A caller without the all-tokens right: 403 by default; with
// NonAdminListing "own", 200 with only its own tokens (the other
// undocumented answer), while owner-id of someone else stays 403.
func TestNonAdminListing(t *testing.T) {
	e := newEnv(t, Options{RateLimit: -1})
	c := plainUser(e)
	bearer := e.login(c.ClientID, c.ClientSecret)
	wantError(t, e.do(http.MethodGet, "/v3/personal-access-tokens", bearer, "", ""), http.StatusForbidden, "idn:all-personal-access-tokens:read")

	e = newEnv(t, Options{RateLimit: -1, NonAdminListing: NonAdminOwn})
	c = plainUser(e)
	bearer = e.login(c.ClientID, c.ClientSecret)
	got := e.listIDs("/v3/personal-access-tokens", bearer)
	if !slices.Equal(got, []string{c.ClientID, "0000000000000000000000000000c1d1"}) {
		t.Fatalf("own listing: %v", got)
	}
	admin := e.sim.Admin().ClientID
	tok, _ := e.sim.Token(admin)
	wantError(t, e.do(http.MethodGet, "/v3/personal-access-tokens?owner-id="+tok.Owner.ID, bearer, "", ""), http.StatusForbidden, "")
	// The admin still sees everything.
	if n := len(e.listIDs("/v3/personal-access-tokens", e.admin())); n != 3 {
		t.Fatalf("admin sees %d tokens, want 3", n)
	}
}

// The access token is a JWT whose claims name the caller.
func TestAccessTokenClaims(t *testing.T) {
	e := newEnv(t, Options{RateLimit: -1})
	c := plainUser(e)
	for _, tc := range []struct {
		id, secret, identity, authority string
	}{
		{e.sim.Admin().ClientID, e.sim.Admin().ClientSecret, "", "ORG_ADMIN"},
		{c.ClientID, c.ClientSecret, "0000000000000000000000000000a5e1", "USER"},
	} {
		parts := strings.Split(e.login(tc.id, tc.secret), ".")
		if len(parts) != 3 {
			t.Fatalf("not a JWT: %d parts", len(parts))
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var claims map[string]any
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"tenant_id", "pod", "org", "identity_id", "user_name", "authorities", "client_id", "scope", "exp", "jti"} {
			if _, ok := claims[k]; !ok {
				t.Errorf("claim %s missing: %v", k, claims)
			}
		}
		if claims["client_id"] != tc.id || !slices.Contains(toStrings(claims["authorities"]), tc.authority) {
			t.Errorf("claims %v", claims)
		}
		if tc.identity != "" && claims["identity_id"] != tc.identity {
			t.Errorf("identity_id %v, want %s", claims["identity_id"], tc.identity)
		}
	}
}

func toStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// Both 401 bodies for a wrong secret, byte for byte.
func TestBadCredentialsBodies(t *testing.T) {
	for mode, want := range map[string]string{
		"":                          `{"error":"invalid_client","error_description":"Bad client credentials"}`,
		BadCredentialsUnauthorized:  `{"error":"unauthorized","error_description":"Full authentication is required to access this resource"}`,
		BadCredentialsInvalidClient: `{"error":"invalid_client","error_description":"Bad client credentials"}`,
	} {
		e := newEnv(t, Options{RateLimit: -1, BadCredentials: mode})
		for _, id := range []string{e.sim.Admin().ClientID, "unknown"} {
			r := e.mintRaw(id, "wrong")
			if r.status != http.StatusUnauthorized || strings.TrimSpace(string(r.body)) != want {
				t.Errorf("%q %s: %d %s", mode, id, r.status, r.body)
			}
		}
	}
}

// GET /oauth/info names the token endpoint; with TokenPath set, /oauth/token
// answers 404 and the other path works. The token endpoint can be rate
// limited (TokenRateLimit) with Retry-After.
func TestOAuthInfoAndTokenPath(t *testing.T) {
	e := newEnv(t, Options{RateLimit: -1, TokenPath: "/oauth2/token", TokenRateLimit: 1})
	r := e.do(http.MethodGet, "/oauth/info", "", "", "")
	var info oauthInfo
	r.json(t, &info)
	if r.status != 200 || info.TokenEndpoint != e.srv.URL+"/oauth2/token" || info.TenantID == "" || info.Pod == "" {
		t.Fatalf("%d %+v", r.status, info)
	}
	if r := e.do(http.MethodPost, "/oauth/info", "", "", ""); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("POST /oauth/info: %d", r.status)
	}
	a := e.sim.Admin()
	if r := e.mintRaw(a.ClientID, a.ClientSecret); r.status != http.StatusNotFound {
		t.Fatalf("/oauth/token with TokenPath set: %d", r.status)
	}
	form := "grant_type=client_credentials&client_id=" + a.ClientID + "&client_secret=" + a.ClientSecret
	if r := e.do(http.MethodPost, "/oauth2/token", "", "application/x-www-form-urlencoded", form); r.status != 200 {
		t.Fatalf("/oauth2/token: %d %s", r.status, r.body)
	}
	r = e.do(http.MethodPost, "/oauth2/token", "", "application/x-www-form-urlencoded", form)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "10" {
		t.Fatalf("second token call within the window: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
}

// /public-identities/v1 serves the same identities as /v3/public-identities.
func TestPublicIdentitiesV1(t *testing.T) {
	e := newEnv(t, Options{RateLimit: -1})
	plainUser(e)
	bearer := e.admin()
	v3 := e.do(http.MethodGet, "/v3/public-identities?limit=250", bearer, "", "")
	v1 := e.do(http.MethodGet, "/public-identities/v1?limit=250", bearer, "", "")
	if v3.status != 200 || v1.status != 200 || string(v1.body) != string(v3.body) {
		t.Fatalf("v3 %d %s\nv1 %d %s", v3.status, v3.body, v1.status, v1.body)
	}
}

func TestScenarioViewOptions(t *testing.T) {
	sc, err := ParseScenario("s.yaml", []byte("options:\n  nonAdminListing: own\n  badCredentials: unauthorized\n  tokenPath: /oauth2/token\n"), t0)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Options{RateLimit: -1})
	e.sim.ApplyScenario(sc)
	if r := e.do(http.MethodPost, "/oauth2/token", "", "application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=nobody&client_secret=x"); !strings.Contains(string(r.body), "Full authentication") {
		t.Errorf("badCredentials not applied: %s", r.body)
	}
	if !e.sim.nonAdminSeesOwn() || e.sim.tokenPath() != "/oauth2/token" {
		t.Error("view options not applied")
	}
	_, err = ParseScenario("s.yaml", []byte("options:\n  nonAdminListing: sometimes\n  badCredentials: 418\n  tokenPath: oauth\n"), t0)
	for _, want := range []string{"s.yaml:2: options.nonAdminListing", "s.yaml:3: options.badCredentials", "s.yaml:4: options.tokenPath"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
