package api

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/secret"
)

func jwtOf(payload string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"ES256"}`)) + "." + enc.EncodeToString([]byte(payload)) + ".c2ln"
}

func TestParseClaims(t *testing.T) {
	c, err := ParseClaims(jwtOf(`{"tenant_id":"t-1","pod":"stg01-useast1","org":"acme","identity_id":"2c91808a","user_name":"svc.janitor",
		"authorities":["ORG_ADMIN"],"client_id":"0123abcd","scope":["sp:scopes:all"],"exp":1795000000,"jti":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Caller{ClientID: "0123abcd", IdentityID: "2c91808a", UserName: "svc.janitor", Authorities: []string{"ORG_ADMIN"},
		Scope: []string{"sp:scopes:all"}, TenantID: "t-1", Org: "acme", Pod: "stg01-useast1", Expires: time.Unix(1795000000, 0).UTC()}
	if c.ClientID != want.ClientID || c.IdentityID != want.IdentityID || c.UserName != want.UserName || !slices.Equal(c.Authorities, want.Authorities) ||
		!slices.Equal(c.Scope, want.Scope) || c.Org != want.Org || c.Pod != want.Pod || c.TenantID != want.TenantID || !c.Expires.Equal(want.Expires) {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	if !c.AdminLevel() {
		t.Error("ORG_ADMIN is admin level")
	}
	// A space-separated scope string, lower-case authority, padding.
	c, err = ParseClaims(jwtOf(`{"scope":"a b","authorities":["org_admin"]}`) + "")
	if err != nil || !slices.Equal(c.Scope, []string{"a", "b"}) || !c.AdminLevel() {
		t.Fatalf("%+v %v", c, err)
	}
	c, err = ParseClaims(jwtOf(`{"authorities":["USER"]}`))
	if err != nil || c.AdminLevel() {
		t.Fatalf("USER: %+v %v", c, err)
	}

	const opaque = "b3BhcXVlLXRva2VuLXNlY3JldA"
	for _, bad := range []string{"", opaque, "a.b", "a.!!!.c", jwtOf(`[1]`), jwtOf(`{"scope":5}`), jwtOf(`{"exp":"soon"}`), jwtOf(`{} {}`), strings.Repeat("a", maxAccessTokenLen+1)} {
		_, err := ParseClaims(bad)
		if !errors.Is(err, ErrNotJWT) {
			t.Errorf("ParseClaims(%.40q) = %v, want ErrNotJWT", bad, err)
		}
		if bad != "" && len(bad) < 100 && strings.Contains(err.Error(), bad) {
			t.Errorf("the error repeats the token: %v", err)
		}
	}
}

func FuzzParseClaims(f *testing.F) {
	f.Add(jwtOf(`{"identity_id":"x","authorities":["ORG_ADMIN"],"scope":["a"],"exp":1}`))
	f.Add(jwtOf(`{"scope":"a b"}`))
	f.Add("a.b.c")
	f.Add("...")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := ParseClaims(tok)
		if err != nil {
			if !errors.Is(err, ErrNotJWT) {
				t.Fatalf("error not ErrNotJWT: %v", err)
			}
			if len(tok) > 8 && strings.Contains(err.Error(), tok) {
				t.Fatalf("error repeats the token")
			}
			return
		}
		_ = c.AdminLevel()
	})
}

// The simulator's access token is a JWT whose claims say who the admin is.
func TestCallerFromSimulator(t *testing.T) {
	e := newSimEnv(t, idnsim.Options{RateLimit: -1})
	c, _ := e.client(t, nil)
	caller, err := c.Caller(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	admin := e.sim.Admin()
	tok, _ := e.sim.Token(admin.ClientID)
	if caller.ClientID != admin.ClientID || caller.IdentityID != tok.Owner.ID || !caller.AdminLevel() || caller.UserName != "svc-patjanitor" {
		t.Fatalf("caller %+v", caller)
	}
	// One token fetch, no API call.
	for _, r := range e.requests() {
		if r.Operation != idnsim.OpOAuthToken {
			t.Errorf("unexpected request %s %s", r.Method, r.Path)
		}
	}
}

// A vanity-domain tenant: /oauth/token answers 404, /oauth/info names the
// endpoint on the same host, the client uses it from then on (also for the
// next fetch) and the API call succeeds.
func TestTokenEndpointDiscoveredThroughOAuthInfo(t *testing.T) {
	e := newSimEnv(t, idnsim.Options{RateLimit: -1, TokenPath: "/oauth2/token", AccessTokenTTL: time.Hour})
	c, rec := e.client(t, nil)
	if _, err := c.ListTokens(context.Background(), ListOptions{}); err != nil {
		t.Fatalf("ListTokens: %v", err)
	}
	e.clock.Advance(2 * time.Hour) // the access token expired: fetch again
	if _, err := c.ListTokens(context.Background(), ListOptions{}); err != nil {
		t.Fatalf("ListTokens after expiry: %v", err)
	}
	var got []string
	for _, r := range e.requests() {
		got = append(got, r.Method+" "+r.Path+" "+http.StatusText(r.Status))
	}
	want := []string{
		"POST /oauth/token Not Found", "GET /oauth/info OK", "POST /oauth2/token OK",
		"GET /v3/personal-access-tokens OK", "POST /oauth2/token OK", "GET /v3/personal-access-tokens OK",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("requests:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	reqs, _, _ := rec.snapshot()
	if !slices.Contains(reqs, observed{OpOAuthInfo, 200}) {
		t.Errorf("oauth_info not observed: %v", reqs)
	}
}

// A failed look-up in /oauth/info (a 503 here) fails that fetch only: the
// next fetch looks again. The client lives as long as a serve config
// generation, so giving up on discovery for good after one passing failure
// left every later run with the 404 of /oauth/token, an authentication
// failure, until a restart.
func TestTokenEndpointDiscoveryRetriedAfterAFailedLookUp(t *testing.T) {
	e := newSimEnv(t, idnsim.Options{RateLimit: -1, TokenPath: "/oauth2/token", AccessTokenTTL: time.Hour})
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpOAuthInfo, Status: http.StatusServiceUnavailable, Times: 1})
	c, _ := e.client(t, nil)
	if _, err := c.ListTokens(context.Background(), ListOptions{}); err == nil {
		t.Fatal("ListTokens succeeded although /oauth/info failed")
	}
	if _, err := c.ListTokens(context.Background(), ListOptions{}); err != nil {
		t.Fatalf("second ListTokens: %v", err)
	}
	var got []string
	for _, r := range e.requests() {
		got = append(got, r.Method+" "+r.Path+" "+http.StatusText(r.Status))
	}
	want := []string{
		"POST /oauth/token Not Found", "GET /oauth/info Service Unavailable",
		"POST /oauth/token Not Found", "GET /oauth/info OK", "POST /oauth2/token OK",
		"GET /v3/personal-access-tokens OK",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("requests:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// /oauth/info names a token endpoint on another host: the client secret is
// never sent there; the error says to set tenant.tokenUrl.
func TestHostileOAuthInfoNamesAnotherHost(t *testing.T) {
	var stolen atomic.Int32
	thief := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(thief.Close)
	tu, _ := url.Parse(thief.URL)
	// The simulator listens on 127.0.0.1; "localhost" is another host name.
	endpoint := "http://localhost:" + tu.Port() + "/oauth/token"
	e := newSimEnv(t, idnsim.Options{RateLimit: -1, TokenPath: "/elsewhere", OAuthInfoTokenEndpoint: endpoint})
	c, _ := e.client(t, nil)
	_, err := c.ListTokens(context.Background(), ListOptions{})
	if err == nil || !strings.Contains(err.Error(), "not the tenant's host") || !strings.Contains(err.Error(), "set tenant.tokenUrl") {
		t.Fatalf("ListTokens: %v", err)
	}
	if strings.Contains(err.Error(), e.sim.Admin().ClientSecret) {
		t.Fatal("the error contains the secret")
	}
	if n := stolen.Load(); n != 0 {
		t.Fatalf("the other host received %d requests", n)
	}
	for _, r := range e.requests() {
		if r.Path != "/oauth/token" && r.Operation != idnsim.OpOAuthInfo {
			t.Errorf("unexpected request %s %s", r.Method, r.Path)
		}
	}
}

// A redirect from /oauth/info is not followed (invariant 9).
func TestHostileOAuthInfoRedirectNotFollowed(t *testing.T) {
	var target atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth/token", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	mux.HandleFunc("/oauth/info", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/moved", http.StatusFound)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		target.Add(1)
		_, _ = w.Write([]byte(`{"tokenEndpoint":"http://` + r.Host + `/oauth/token2"}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, ClientID: testClientID, ClientSecret: secret.New(testSecret), Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListTokens(context.Background(), ListOptions{})
	if err == nil || !strings.Contains(err.Error(), "302") || !strings.Contains(err.Error(), "redirects are not followed") {
		t.Fatalf("ListTokens: %v", err)
	}
	if target.Load() != 0 {
		t.Fatal("the redirect was followed")
	}
}

// A redirect from /oauth/info is reported like any other: the host its
// Location names, never its path or query (the body, which repeats the whole
// Location, is not quoted), and nothing is sent there.
func TestHostileOAuthInfoRedirectNamesHostOnly(t *testing.T) {
	var mu sync.Mutex
	var got []string
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path)
		mu.Unlock()
		switch r.URL.Path {
		case "/oauth/info":
			http.Redirect(w, r, "https://evil.example:8443/collect?client_secret=leaked", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, ClientID: testClientID, ClientSecret: secret.New(testSecret), Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListTokens(context.Background(), ListOptions{})
	if !errors.Is(err, ErrRedirect) {
		t.Fatalf("ListTokens: %v, want ErrRedirect", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "302 Found to host evil.example:8443 (redirects are not followed)") {
		t.Errorf("error does not name the redirect's host: %s", msg)
	}
	for _, leak := range []string{"collect", "client_secret", "leaked", "without a Location"} {
		if strings.Contains(msg, leak) {
			t.Errorf("error contains %q: %s", leak, msg)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"POST /oauth/token", "GET /oauth/info"}; !slices.Equal(got, want) {
		t.Errorf("server received %q, want %q", got, want)
	}
}

// The host rules for a discovered endpoint of an https tenant.
func TestAcceptDiscoveredTokenEndpoint(t *testing.T) {
	for _, tc := range []struct {
		tenant, endpoint string
		ok               bool
	}{
		{"https://acme.api.identitynow.com", "https://acme.api.identitynow.com/oauth/token", true},
		{"https://acme.api.identitynow.com", "https://acme.login.identitynow.com/oauth/token", true},
		{"https://acme.api.identitynow.com", "https://evil.example/oauth/token", false},
		{"https://acme.api.identitynow.com", "https://acme.api.identitynow.com.evil.example/oauth/token", false},
		{"https://acme.api.identitynow.com", "http://acme.api.identitynow.com/oauth/token", false},
		{"https://acme.api.identitynow.com", "https://user:pw@acme.api.identitynow.com/oauth/token", false},
		{"https://acme.api.identitynow.com", "https://10.0.0.1/oauth/token", false},
		{"https://iam.acme.co.uk", "https://sso.acme.co.uk/oauth/token", true},
		{"https://iam.acme.co.uk", "https://other.co.uk/oauth/token", false},
		{"https://iam.acme.co.uk", "ftp://iam.acme.co.uk/oauth/token", false},
		{"http://127.0.0.1:8975", "http://127.0.0.1:9999/oauth/token", true},
		{"http://127.0.0.1:8975", "http://localhost:8975/oauth/token", false},
	} {
		c, err := New(Config{BaseURL: tc.tenant, ClientID: testClientID, ClientSecret: secret.New(testSecret)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.auth.acceptDiscovered(tc.endpoint)
		if (err == nil) != tc.ok {
			t.Errorf("tenant %s, endpoint %s: err %v, want ok %v", tc.tenant, tc.endpoint, err, tc.ok)
		}
	}
}

// An explicit tenant.tokenUrl is used as given; a 404 there is an error,
// with no discovery; a plain-http remote URL is refused up front.
func TestExplicitTokenURL(t *testing.T) {
	e := newSimEnv(t, idnsim.Options{RateLimit: -1, TokenPath: "/custom/token"})
	c, _ := e.client(t, func(cfg *Config) { cfg.TokenURL = e.srv.URL + "/custom/token" })
	if _, err := c.ListTokens(context.Background(), ListOptions{}); err != nil {
		t.Fatal(err)
	}
	bad, _ := e.client(t, func(cfg *Config) { cfg.TokenURL = e.srv.URL + "/oauth/token" })
	_, err := bad.ListTokens(context.Background(), ListOptions{})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("explicit URL answering 404: %v", err)
	}
	for _, r := range e.requests() {
		if r.Operation == idnsim.OpOAuthInfo {
			t.Fatal("discovery with an explicit token URL")
		}
	}
	if _, err := New(Config{BaseURL: e.srv.URL, TokenURL: "http://sso.example.com/oauth/token", ClientID: testClientID, ClientSecret: secret.New(testSecret)}); err == nil {
		t.Fatal("plain http token URL to a remote host accepted")
	}
}

// The token endpoint answers 429 with Retry-After: the client waits that
// long and tries again.
func TestTokenEndpointRateLimitHonoursRetryAfter(t *testing.T) {
	e := newSimEnv(t, idnsim.Options{RateLimit: -1, TokenRateLimit: 1, RateWindow: 10 * time.Second})
	first, _ := e.client(t, nil)
	if _, err := first.Caller(context.Background()); err != nil {
		t.Fatal(err)
	}
	second, rec := e.client(t, nil) // same credential, its own token cache
	if _, err := second.Caller(context.Background()); err != nil {
		t.Fatalf("second client: %v", err)
	}
	_, retries, sleeps := rec.snapshot()
	if !slices.Equal(sleeps, []time.Duration{10 * time.Second}) || !slices.Equal(retries, []string{"oauth_token/rate_limited"}) {
		t.Fatalf("sleeps %v retries %v, want one 10s wait for Retry-After", sleeps, retries)
	}
	var codes []int
	for _, r := range e.requests() {
		codes = append(codes, r.Status)
	}
	if !slices.Equal(codes, []int{200, 429, 200}) {
		t.Fatalf("token endpoint statuses %v", codes)
	}
}

// A wrong secret answered 401 "unauthorized" / "Full authentication is
// required…" (seen on real tenants besides invalid_client) is an
// authentication error naming the client id, not the secret.
func TestBadCredentialsBothBodies(t *testing.T) {
	for _, mode := range []string{idnsim.BadCredentialsInvalidClient, idnsim.BadCredentialsUnauthorized} {
		e := newSimEnv(t, idnsim.Options{RateLimit: -1, BadCredentials: mode})
		c, _ := e.client(t, func(cfg *Config) { cfg.ClientSecret = secret.New("wrong-secret-value") })
		_, err := c.ListTokens(context.Background(), ListOptions{})
		if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), e.sim.Admin().ClientID) || strings.Contains(err.Error(), "wrong-secret-value") {
			t.Fatalf("%s: %v", mode, err)
		}
		wantText := map[string]string{idnsim.BadCredentialsInvalidClient: "invalid_client", idnsim.BadCredentialsUnauthorized: "Full authentication is required"}[mode]
		if !strings.Contains(err.Error(), wantText) {
			t.Errorf("%s: %v lacks %q", mode, err, wantText)
		}
	}
}

// apiVersion v1 looks owners up at /public-identities/v1; v3 and v2025 at
// /v3/public-identities. OtherIdentities uses the same path.
func TestPublicIdentitiesPathByVersion(t *testing.T) {
	for _, tc := range []struct {
		v    pat.APIVersion
		path string
	}{{pat.V1, "/public-identities/v1"}, {pat.V3, "/v3/public-identities"}, {pat.V2025, "/v3/public-identities"}} {
		e := newSimEnv(t, idnsim.Options{RateLimit: -1})
		e.sim.AddIdentity(idnsim.Identity{ID: "2c9180aaaaaaaaaaaaaaaaaaaaaaaaaa", Name: "Other"})
		c, _ := e.client(t, func(cfg *Config) { cfg.Version = tc.v })
		ids, err := c.ListPublicIdentities(context.Background(), []string{"2c9180aaaaaaaaaaaaaaaaaaaaaaaaaa"})
		if err != nil || len(ids) != 1 {
			t.Fatalf("%s: %v %v", tc.v, ids, err)
		}
		caller, _ := c.Caller(context.Background())
		others, err := c.OtherIdentities(context.Background(), caller.IdentityID)
		if err != nil || !others {
			t.Fatalf("%s: OtherIdentities = %v, %v", tc.v, others, err)
		}
		for _, r := range e.requests() {
			if r.Operation == idnsim.OpListPublicIdentities && r.Path != tc.path {
				t.Errorf("%s: %s, want %s", tc.v, r.Path, tc.path)
			}
		}
	}
	// Alone in the tenant: no other identity.
	e := newSimEnv(t, idnsim.Options{RateLimit: -1})
	c, _ := e.client(t, nil)
	caller, _ := c.Caller(context.Background())
	if others, err := c.OtherIdentities(context.Background(), strings.ToUpper(caller.IdentityID)); err != nil || others {
		t.Fatalf("alone: %v %v", others, err)
	}
}
