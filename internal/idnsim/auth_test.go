package idnsim

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

func TestOAuthToken(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.sim.Admin()
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(a.ClientID+":"+a.ClientSecret))
	tests := []struct {
		name      string
		query     string
		body      string
		ct        string
		auth      string
		status    int
		wantError string
	}{
		{name: "form body", ct: "application/x-www-form-urlencoded",
			body: form("grant_type", "client_credentials", "client_id", a.ClientID, "client_secret", a.ClientSecret), status: 200},
		{name: "query parameters", query: "?" + form("grant_type", "client_credentials", "client_id", a.ClientID, "client_secret", a.ClientSecret), status: 200},
		{name: "grant in query, credentials in body (sailpoint-cli)", query: "?grant_type=client_credentials", ct: "application/x-www-form-urlencoded",
			body: form("client_id", a.ClientID, "client_secret", a.ClientSecret), status: 200},
		{name: "http basic", ct: "application/x-www-form-urlencoded", body: form("grant_type", "client_credentials"), auth: basic, status: 200},
		{name: "wrong secret", ct: "application/x-www-form-urlencoded",
			body: form("grant_type", "client_credentials", "client_id", a.ClientID, "client_secret", "nope"), status: 401, wantError: "invalid_client"},
		{name: "unknown client", ct: "application/x-www-form-urlencoded",
			body: form("grant_type", "client_credentials", "client_id", "ffffffffffffffffffffffffffffffff", "client_secret", a.ClientSecret), status: 401, wantError: "invalid_client"},
		{name: "no client id", ct: "application/x-www-form-urlencoded", body: form("grant_type", "client_credentials"), status: 401, wantError: "invalid_client"},
		{name: "no grant type", ct: "application/x-www-form-urlencoded",
			body: form("client_id", a.ClientID, "client_secret", a.ClientSecret), status: 400, wantError: "invalid_request"},
		{name: "password grant", ct: "application/x-www-form-urlencoded",
			body: form("grant_type", "password", "client_id", a.ClientID, "client_secret", a.ClientSecret), status: 400, wantError: "unsupported_grant_type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/oauth/token"+tc.query, strings.NewReader(tc.body))
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			var body map[string]any
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if tc.wantError != "" {
				if body["error"] != tc.wantError {
					t.Fatalf("error %v, want %s", body["error"], tc.wantError)
				}
				return
			}
			if body["token_type"] != "bearer" || body["expires_in"] != float64(43200) || body["scope"] != pat.ScopeAll {
				t.Fatalf("token response %v", body)
			}
			if parts := strings.Split(body["access_token"].(string), "."); len(parts) != 3 {
				t.Fatalf("access token is not JWT-shaped: %v", body["access_token"])
			}
		})
	}

	// The log never holds a secret or an access token.
	logged, _ := json.Marshal(e.sim.Requests())
	if strings.Contains(string(logged), a.ClientSecret) {
		t.Fatalf("request log holds the client secret: %s", logged)
	}
	for _, r := range ByOperation(e.sim.Requests(), OpOAuthToken) {
		if r.Status == 200 && r.ClientID != a.ClientID {
			t.Errorf("logged client id %q, want %q", r.ClientID, a.ClientID)
		}
	}
}

func TestAccessTokenExpiry(t *testing.T) {
	e := newEnv(t, Options{})
	e.sim.Add(pat.Token{ID: "aaaa0000000000000000000000000001", Name: "short", Scope: pat.ScopesOf(pat.ScopeAll),
		Owner: pat.Owner{ID: "nobody"}, AccessTokenValiditySeconds: 900}, "s3cret")
	tok := e.login("aaaa0000000000000000000000000001", "s3cret")
	if r := e.do("GET", "/v3/personal-access-tokens?owner-id=me", tok, "", ""); r.status != 200 {
		t.Fatalf("fresh token: %d %s", r.status, r.body)
	}
	e.clock.Advance(899 * time.Second)
	if r := e.do("GET", "/v3/personal-access-tokens?owner-id=me", tok, "", ""); r.status != 200 {
		t.Fatalf("token at 899s: %d %s", r.status, r.body)
	}
	e.clock.Advance(time.Second)
	r := e.do("GET", "/v3/personal-access-tokens?owner-id=me", tok, "", "")
	if r.status != 401 || string(r.body) != `{"error":"JWT validation failed: JWT is expired"}` {
		t.Fatalf("token at 900s: %d %s", r.status, r.body)
	}
	// The request log attributes the expired call to its client.
	reqs := e.sim.Requests()
	if last := reqs[len(reqs)-1]; last.ClientID != "aaaa0000000000000000000000000001" || last.Status != 401 {
		t.Fatalf("last logged request %+v", last)
	}
}

func TestAccessTokenTTLOption(t *testing.T) {
	e := newEnv(t, Options{AccessTokenTTL: time.Minute})
	r := e.mintRaw(e.sim.Admin().ClientID, e.sim.Admin().ClientSecret)
	var tr tokenResponse
	r.json(t, &tr)
	if tr.ExpiresIn != 60 {
		t.Fatalf("expires_in %d, want 60", tr.ExpiresIn)
	}
	e.clock.Advance(time.Minute)
	if r := e.do("GET", "/v3/personal-access-tokens", tr.AccessToken, "", ""); r.status != 401 {
		t.Fatalf("after the TTL: %d", r.status)
	}
}

func TestUnauthorized(t *testing.T) {
	e := newEnv(t, Options{})
	tests := []struct {
		name, auth, want string
	}{
		{"missing header", "", `{"error":"JWT validation failed: JWT is expired"}`},
		{"basic instead of bearer", "Basic Zm9vOmJhcg==", `{"error":"JWT validation failed: JWT is expired"}`},
		{"unknown token", "Bearer not.a.token", `{"error":"JWT validation failed: invalid JWT"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.srv.URL+"/v3/personal-access-tokens", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != 401 || string(b) != tc.want {
				t.Fatalf("%d %s, want 401 %s", res.StatusCode, b, tc.want)
			}
		})
	}
}

func TestExpiredPATCannotLogIn(t *testing.T) {
	e := newEnv(t, Options{})
	past := t0.Add(-time.Hour)
	e.sim.Add(pat.Token{ID: "aaaa0000000000000000000000000002", Name: "expired", Owner: pat.Owner{ID: "x"}, ExpirationDate: &past}, "pw")
	r := e.mintRaw("aaaa0000000000000000000000000002", "pw")
	if r.status != 401 || !strings.Contains(string(r.body), "invalid_client") {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

// Minting marks the PAT used, at most once per UTC day (as documented).
func TestLastUsedDayGranularity(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.sim.Admin()
	lastUsed := func() *time.Time {
		tok, _ := e.sim.Token(a.ClientID)
		return tok.LastUsed
	}
	if lastUsed() != nil {
		t.Fatal("a new admin PAT is already used")
	}
	e.login(a.ClientID, a.ClientSecret)
	if lu := lastUsed(); lu == nil || !lu.Equal(t0) {
		t.Fatalf("after first use: %v, want %v", lu, t0)
	}
	e.clock.Advance(20 * time.Hour) // 23:00 the same day
	e.login(a.ClientID, a.ClientSecret)
	if lu := lastUsed(); !lu.Equal(t0) {
		t.Fatalf("same day: lastUsed moved to %v", lu)
	}
	e.clock.Advance(2 * time.Hour) // 01:00 the next day
	e.login(a.ClientID, a.ClientSecret)
	if lu := lastUsed(); !lu.Equal(t0.Add(22 * time.Hour)) {
		t.Fatalf("next day: lastUsed %v, want %v", lu, t0.Add(22*time.Hour))
	}
	// Touch sets an exact value.
	at := time.Date(2026, 1, 2, 3, 4, 5, 678_900_000, time.UTC)
	e.sim.Touch(a.ClientID, at)
	if lu := lastUsed(); !lu.Equal(at.Truncate(time.Millisecond)) {
		t.Fatalf("touch: %v", lu)
	}
}
