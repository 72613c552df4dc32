package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/secret"
)

func TestNewValidation(t *testing.T) {
	ok := func(c *Config) {}
	tests := []struct {
		name    string
		base    string
		mod     func(*Config)
		wantErr string // "" = accepted
		wantURL string
	}{
		{"https tenant", "https://acme.api.identitynow.com", ok, "", "https://acme.api.identitynow.com"},
		{"trailing slash trimmed", "https://acme.api.identitynow.com/", ok, "", "https://acme.api.identitynow.com"},
		{"proxy prefix kept", "https://proxy.example.com/sailpoint/", ok, "", "https://proxy.example.com/sailpoint"},
		{"http loopback v4", "http://127.0.0.1:8080", ok, "", "http://127.0.0.1:8080"},
		{"http loopback 127/8", "http://127.9.8.7:1", ok, "", "http://127.9.8.7:1"},
		{"http loopback v6", "http://[::1]:9", ok, "", "http://[::1]:9"},
		{"http localhost", "http://localhost:9", ok, "", "http://localhost:9"},
		{"http remote refused", "http://acme.api.identitynow.com", ok, "plain http", ""},
		{"http private address refused", "http://10.0.0.1", ok, "plain http", ""},
		{"http localhost lookalike refused", "http://localhost.evil.example", ok, "plain http", ""},
		{"other scheme", "ftp://127.0.0.1", ok, "scheme must be https", ""},
		{"empty", "", ok, "empty", ""},
		{"no host", "https://", ok, "no host", ""},
		{"user info", "https://u:p@acme.api.identitynow.com", ok, "credentials", ""},
		{"query", "https://acme.api.identitynow.com?x=1", ok, "query", ""},
		{"version path", "https://acme.api.identitynow.com/v3", ok, "API version /v3", ""},
		{"version path v2025", "https://acme.api.identitynow.com/v2025/", ok, "API version /v2025", ""},
		{"empty client id", "https://a.example", func(c *Config) { c.ClientID = " " }, "client id is empty", ""},
		{"empty secret", "https://a.example", func(c *Config) { c.ClientSecret = secret.Secret{} }, "client secret for client id", ""},
		{"bad version", "https://a.example", func(c *Config) { c.Version = "v2024" }, "unsupported API version", ""},
		{"negative attempts", "https://a.example", func(c *Config) { c.MaxAttempts = -1 }, "MaxAttempts", ""},
		{"negative period", "https://a.example", func(c *Config) { c.RateLimit = RateLimit{Requests: 5, Per: -time.Second} }, "negative", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{BaseURL: tt.base, ClientID: testClientID, ClientSecret: secret.New(testSecret)}
			tt.mod(&cfg)
			c, err := New(cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New(%q): %v", tt.base, err)
				}
				if c.BaseURL() != tt.wantURL {
					t.Fatalf("BaseURL() = %q, want %q", c.BaseURL(), tt.wantURL)
				}
				if c.Version() != pat.V3 || c.ClientID() != testClientID {
					t.Fatalf("defaults: version %q client id %q", c.Version(), c.ClientID())
				}
				return
			}
			if err == nil {
				t.Fatalf("New(%q) accepted, want error containing %q", tt.base, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New(%q) error %q, want it to contain %q", tt.base, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

func TestFilter(t *testing.T) {
	cut := time.Date(2026, 8, 28, 5, 0, 0, 123456789, time.FixedZone("CEST", 2*3600))
	tests := []struct {
		l    pat.Listing
		want string
	}{
		{pat.Listing{Kind: pat.ListLastUsedBefore, Cutoff: cut}, "lastUsed le 2026-08-28T03:00:00.123Z"},
		{pat.Listing{Kind: pat.ListLastUsedBefore, Cutoff: time.Date(2026, 8, 28, 3, 0, 0, 0, time.UTC)}, "lastUsed le 2026-08-28T03:00:00.000Z"},
		{pat.Listing{Kind: pat.ListNeverUsed}, "lastUsed isnull"},
		{pat.Listing{Kind: pat.ListAll}, ""},
	}
	for _, tt := range tests {
		if got := Filter(tt.l); got != tt.want {
			t.Errorf("Filter(%v) = %q, want %q", tt.l, got, tt.want)
		}
	}
}

func TestIDFilter(t *testing.T) {
	if got, want := IDFilter([]string{"a1", "b2"}), `id in ("a1","b2")`; got != want {
		t.Errorf("IDFilter = %q, want %q", got, want)
	}
	if got, want := IDFilter([]string{`x"y\z`}), `id in ("x\"y\\z")`; got != want {
		t.Errorf("IDFilter escaping = %q, want %q", got, want)
	}
}

// TestLimiterNeverExceedsWindow drives the limiter as a greedy client would
// (every request as early as the limiter allows) on a synthetic clock, and
// checks both sides of the trade-off: no window of the tenant's length, even
// one widened by the latency margin, holds more than the tenant's limit, and
// the long-run rate stays within 5% of it.
func TestLimiterNeverExceedsWindow(t *testing.T) {
	for _, rl := range []RateLimit{
		{}, // 100 per 10s
		{Requests: 100, Per: 200 * time.Millisecond},
		{Requests: 25, Per: time.Second},
		{Requests: 1, Per: time.Second},
		{Requests: 2, Per: time.Second},
	} {
		t.Run(fmt.Sprintf("%d per %s", rl.Requests, rl.Per), func(t *testing.T) {
			lim, err := newLimiter(rl)
			if err != nil || lim == nil {
				t.Fatalf("newLimiter: %v %v", lim, err)
			}
			n, per := rl.Requests, rl.Per
			if n == 0 {
				n, per = DefaultRateRequests, DefaultRatePer
			}
			if lim.Burst() != 1 {
				t.Fatalf("burst %d, want 1", lim.Burst())
			}
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			now := start
			const total = 1000
			times := make([]time.Time, 0, total)
			for len(times) < total {
				r := lim.ReserveN(now, 1)
				now = now.Add(r.DelayFrom(now))
				times = append(times, now)
			}
			// Any window [t, t+per+margin): count the requests in it.
			window := per + time.Duration(float64(per)*windowMargin*0.99)
			j := 0
			for i := range times {
				for j < len(times) && times[j].Sub(times[i]) < window {
					j++
				}
				if got := j - i; got > n {
					t.Fatalf("%d requests within %s starting at request %d (limit %d per %s)", got, window, i, n, per)
				}
			}
			elapsed := times[total-1].Sub(times[0])
			ideal := time.Duration(float64(total-1) / float64(n) * float64(per))
			if n > 1 && float64(elapsed) > 1.05*float64(ideal) {
				t.Fatalf("%d requests took %s; the tenant allows them in %s (more than 5%% slower)", total, elapsed, ideal)
			}
		})
	}
	if lim, err := newLimiter(RateLimit{Requests: -1}); lim != nil || err != nil {
		t.Fatalf("Requests < 0: limiter %v, err %v; want none", lim, err)
	}
}

func TestErrorBodies(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		messages []string
		detail   string
		tracking string
		is       error
	}{
		{"404 dto", 404, body404, []string{"The server did not find a current representation for the target resource."}, "404 Not found", "b21b1f7ce4da4d639f2c62a57171b427", ErrNotFound},
		{"401 string", 401, `{"error":"JWT validation failed: JWT is expired"}`, []string{"JWT validation failed: JWT is expired"}, "", "", ErrUnauthorized},
		{"401 object", 401, `{"error":{"message":"token expired","code":7}}`, []string{"token expired"}, "", "", ErrUnauthorized},
		{"401 odd object", 401, `{"error":{"code":7}}`, []string{`{"code":7}`}, "", "", ErrUnauthorized},
		{"403 dto with causes", 403, `{"detailCode":"403 Forbidden","messages":[{"text":"no"}],"causes":[{"text":"scope"}]}`, []string{"no"}, "403 Forbidden", "", ErrForbidden},
		{"429 message", 429, body429, []string{"Rate Limit Exceeded"}, "", "", ErrRateLimited},
		{"proxy html", 502, `<html>Bad Gateway</html>`, []string{"<html>Bad Gateway</html>"}, "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &Error{Operation: OpListTokens, Method: "GET", Path: "/v3/personal-access-tokens", StatusCode: tt.status}
			e.fillFromBody([]byte(tt.body))
			if fmt.Sprint(e.Messages) != fmt.Sprint(tt.messages) || e.DetailCode != tt.detail || e.TrackingID != tt.tracking {
				t.Fatalf("decoded %#v", e)
			}
			for _, s := range []error{ErrNotFound, ErrUnauthorized, ErrForbidden, ErrRateLimited, ErrMalformedResponse} {
				if got := errors.Is(fmt.Errorf("wrapped: %w", e), s); got != (s == tt.is) {
					t.Errorf("errors.Is(%v) = %v", s, got)
				}
			}
			msg := e.Error()
			for _, want := range append([]string{OpListTokens, "GET /v3/personal-access-tokens", fmt.Sprint(tt.status)}, tt.messages...) {
				if !strings.Contains(msg, want) {
					t.Errorf("Error() = %q, missing %q", msg, want)
				}
			}
		})
	}
	long := &Error{Operation: OpListTokens, StatusCode: 500}
	long.fillFromBody([]byte(strings.Repeat("x", 5000)))
	if len(long.Error()) > 700 {
		t.Errorf("a 5000-byte error body made a %d-byte message", len(long.Error()))
	}
	cause := io.ErrUnexpectedEOF
	wrapped := &Error{Operation: OpListTokens, StatusCode: 200, Err: cause, malformed: true}
	if !errors.Is(wrapped, io.ErrUnexpectedEOF) || !errors.Is(wrapped, ErrMalformedResponse) {
		t.Error("Unwrap/Is: want both the cause and ErrMalformedResponse")
	}
}

func TestDecodeTokenArray(t *testing.T) {
	good := tokenList(3)
	toks, err := decodeTokenArray(strings.NewReader(" \n" + good + "\n"))
	if err != nil || len(toks) != 3 || toks[2].ID != "t00002" || !toks[0].Scope.Null || toks[0].LastUsed != nil {
		t.Fatalf("decode good listing: %v %+v", err, toks)
	}
	if toks, err := decodeTokenArray(strings.NewReader("[]")); err != nil || len(toks) != 0 {
		t.Fatalf("empty listing: %v %v", toks, err)
	}
	// Every proper prefix of a valid listing is an error: a body cut anywhere
	// never reads as a shorter listing.
	for i := 0; i < len(good); i++ {
		if toks, err := decodeTokenArray(strings.NewReader(good[:i])); err == nil {
			t.Fatalf("prefix of %d bytes decoded as %d tokens", i, len(toks))
		}
	}
	for name, body := range map[string]string{
		"trailing garbage":  good + "x",
		"second document":   good + "[]",
		"object":            `{"items":[]}`,
		"null":              `null`,
		"null element":      `[null]`,
		"element no id":     `[{"name":"x","created":"2026-01-02T03:04:05.000Z"}]`,
		"bad timestamp":     `[{"id":"x","created":"2026-01-02"}]`,
		"number element":    `[1]`,
		"missing comma":     `[` + oneToken("a") + oneToken("b") + `]`,
		"scope wrong type":  `[{"id":"x","created":"2026-01-02T03:04:05.000Z","scope":"sp:scopes:all"}]`,
		"bad element later": `[` + oneToken("a") + `,{"id":"b","created":"nope"}]`,
	} {
		if toks, err := decodeTokenArray(strings.NewReader(body)); err == nil {
			t.Errorf("%s: decoded %d tokens, want an error", name, len(toks))
		}
	}
}

func TestCreateRequestShape(t *testing.T) {
	var got map[string]json.RawMessage
	ft := newFakeTenant(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = nil
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("create body %s: %v", b, err)
		}
		writeJSON(w, 200, `{"id":"n1","secret":"fresh-secret","scope":null,"name":"x","owner":{"id":"o"},"created":"2026-01-02T03:04:05.000Z","accessTokenValiditySeconds":43200,"expirationDate":"2026-07-02T03:04:05.000Z"}`)
	})
	c, _ := newTestClient(t, ft.srv.URL, nil)
	ctx := t.Context()
	exp := time.Date(2026, 7, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	ct, err := c.CreateToken(ctx, CreateTokenRequest{Name: "x", Scope: []string{}, AccessTokenValiditySeconds: 900, ExpirationDate: &exp})
	if err != nil {
		t.Fatal(err)
	}
	if string(got["name"]) != `"x"` || string(got["scope"]) != `[]` || string(got["accessTokenValiditySeconds"]) != `900` ||
		string(got["expirationDate"]) != `"2026-07-02T02:04:05.000Z"` || got["userAwareTokenNeverExpires"] != nil {
		t.Fatalf("create body = %v", got)
	}
	if ct.Secret.Reveal() != "fresh-secret" || ct.Token.ID != "n1" || !ct.Token.Scope.Null {
		t.Fatalf("created = %+v", ct)
	}
	if s := fmt.Sprintf("%v %+v", ct, ct); strings.Contains(s, "fresh-secret") {
		t.Fatalf("CreatedToken prints its secret: %s", s)
	}
	if _, err := c.CreateToken(ctx, CreateTokenRequest{Name: "y"}); err != nil {
		t.Fatal(err)
	}
	if _, present := got["scope"]; present {
		t.Fatalf("nil Scope was sent: %v", got)
	}
	never := true
	if _, err := c.CreateToken(ctx, CreateTokenRequest{Name: "z", UserAwareTokenNeverExpires: &never}); err == nil ||
		!strings.Contains(err.Error(), "userAwareTokenNeverExpires") {
		t.Fatalf("v3 create with userAwareTokenNeverExpires: %v", err)
	}
	for _, v := range []int{14, 43201, -1} {
		if _, err := c.CreateToken(ctx, CreateTokenRequest{Name: "z", AccessTokenValiditySeconds: v}); err == nil {
			t.Fatalf("accessTokenValiditySeconds %d accepted", v)
		}
	}
	if _, err := c.CreateToken(ctx, CreateTokenRequest{}); err == nil {
		t.Fatal("empty name accepted")
	}
}

func TestPatchValidation(t *testing.T) {
	ft := newFakeTenant(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, patched(t, r, oneToken("a"))) })
	v3, _ := newTestClient(t, ft.srv.URL, nil)
	v25, _ := newTestClient(t, ft.srv.URL, func(c *Config) { c.Version = pat.V2025 })
	ctx := t.Context()
	exp := []pat.PatchOp{pat.SetExpiration(time.Now())}
	if _, err := v3.PatchToken(ctx, "a", exp); err == nil || !strings.Contains(err.Error(), "not patchable in API v3") {
		t.Fatalf("v3 /expirationDate: %v", err)
	}
	if _, err := v25.PatchToken(ctx, "a", exp); err != nil {
		t.Fatalf("v2025 /expirationDate: %v", err)
	}
	for _, ops := range [][]pat.PatchOp{
		nil,
		{pat.SetEnabled(false)}, // an API client's field
		{{}},
	} {
		if _, err := v3.PatchToken(ctx, "a", ops); err == nil {
			t.Errorf("PatchToken(%v) accepted", ops)
		}
	}
	if _, err := v3.PatchToken(ctx, "", []pat.PatchOp{pat.Rename("x")}); err == nil {
		t.Error("empty id accepted")
	}
	if err := v3.DeleteToken(ctx, ""); err == nil {
		t.Error("DeleteToken with empty id accepted")
	}
}

func TestIdentityBatches(t *testing.T) {
	var ids []string
	for i := 0; i < 1000; i++ {
		ids = append(ids, fmt.Sprintf("%032x", i))
	}
	short := make([]string, 600)
	for i := range short {
		short[i] = fmt.Sprintf("%d", i)
	}
	for name, in := range map[string][]string{"32-char ids": ids, "short ids": short, "one": ids[:1], "none": nil} {
		batches := identityBatches(in)
		var joined []string
		for i, b := range batches {
			if len(b) == 0 || len(b) > identityBatch {
				t.Fatalf("%s: batch %d has %d ids", name, i, len(b))
			}
			q := url.Values{"filters": {IDFilter(b)}, "limit": {"250"}, "offset": {"0"}}.Encode()
			if len(q) > maxIdentityQuery {
				t.Fatalf("%s: batch %d query is %d bytes", name, i, len(q))
			}
			// Greedy: the next id would not have fit.
			if i < len(batches)-1 && len(b) < identityBatch {
				next := append(append([]string{}, b...), batches[i+1][0])
				q2 := (url.Values{"filters": {IDFilter(next)}, "limit": {"250"}, "offset": {"0"}}).Encode()
				if len(q2) <= maxIdentityQuery {
					t.Fatalf("%s: batch %d stopped at %d ids with room for more", name, i, len(b))
				}
			}
			joined = append(joined, b...)
		}
		if !reflect.DeepEqual(joined, in) && len(in) > 0 {
			t.Fatalf("%s: batches do not add up to the input", name)
		}
	}
	if got := len(identityBatches(short)); got != 3 {
		t.Errorf("600 short ids in %d batches, want 3 of at most 250", got)
	}
}

// TestRetryOnlyWhenNothingWasSent: a refused connection (nothing reached the
// tenant) is retried even for a create; a connection that breaks after the
// request went out is not, for a create.
func TestRetryOnlyWhenNothingWasSent(t *testing.T) {
	var posts atomic.Int32
	ft := newFakeTenant(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			writeJSON(w, 200, `[]`)
			return
		}
		posts.Add(1)
		if r.Header.Get("X-Test-Hangup") != "" {
			panic(http.ErrAbortHandler) // close the connection without a response
		}
		writeJSON(w, 200, `{"id":"n1","secret":"s","scope":null,"name":"x","owner":{},"created":"2026-01-02T03:04:05.000Z","accessTokenValiditySeconds":43200,"expirationDate":"2026-07-02T03:04:05.000Z"}`)
	})
	var refuse atomic.Int32 // dials to refuse
	dialer := &net.Dialer{}
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if refuse.Add(-1) >= 0 {
				return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
			}
			return dialer.DialContext(ctx, network, addr)
		},
	}
	hangup := false
	c, rec := newTestClient(t, ft.srv.URL, func(cfg *Config) {
		cfg.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if hangup && r.URL.Path != "/oauth/token" {
				r.Header.Set("X-Test-Hangup", "1")
			}
			return tr.RoundTrip(r)
		})}
	})
	ctx := t.Context()
	if _, err := c.ListTokens(ctx, ListOptions{}); err != nil { // fetches the access token
		t.Fatal(err)
	}

	refuse.Store(2)
	if _, err := c.CreateToken(ctx, CreateTokenRequest{Name: "x"}); err != nil {
		t.Fatalf("create after two refused dials: %v", err)
	}
	if n := posts.Load(); n != 1 {
		t.Fatalf("%d POSTs reached the tenant, want 1", n)
	}
	_, retries, _ := rec.snapshot()
	if !reflect.DeepEqual(retries, []string{"create_token/connection", "create_token/connection"}) {
		t.Fatalf("retries %v", retries)
	}

	hangup = true
	posts.Store(0)
	_, err := c.CreateToken(ctx, CreateTokenRequest{Name: "y"})
	var e *Error
	if !errors.As(err, &e) || e.StatusCode != 0 || !strings.Contains(err.Error(), "not retried") {
		t.Fatalf("create on a connection that broke after sending: %v", err)
	}
	if n := posts.Load(); n != 1 {
		t.Fatalf("%d POSTs reached the tenant, want exactly 1", n)
	}
	if ft.calls() != 1 {
		t.Fatalf("%d token fetches, want 1 (the token is cached)", ft.calls())
	}
}

// patched applies the whole-field replace and add operations of r's JSON
// Patch body to the token JSON tok, as a tenant would, and returns the result.
func patched(t *testing.T, r *http.Request, tok string) string {
	t.Helper()
	var ops []struct {
		Op, Path string
		Value    any
	}
	if err := json.NewDecoder(r.Body).Decode(&ops); err != nil {
		t.Errorf("patch body: %v", err)
		return tok
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(tok), &m); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if (op.Op == "replace" || op.Op == "add") && strings.Count(op.Path, "/") == 1 {
			m[strings.TrimPrefix(op.Path, "/")] = op.Value
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// "." and ".." cannot be one path segment (a proxy removes dot segments): the
// token and API client calls refuse them, naming the id, and send nothing.
func TestHostileDotSegmentIDsRefused(t *testing.T) {
	var sent atomic.Int32
	ft := newFakeTenant(t, func(w http.ResponseWriter, r *http.Request) { sent.Add(1); w.WriteHeader(http.StatusNoContent) })
	c, _ := newTestClient(t, ft.srv.URL, nil)
	ctx := t.Context()
	for _, id := range []string{".", ".."} {
		_, patchErr := c.PatchToken(ctx, id, []pat.PatchOp{pat.Rename("x")})
		_, getErr := c.GetOAuthClient(ctx, id)
		_, enableErr := c.SetOAuthClientEnabled(ctx, id, false)
		for name, err := range map[string]error{
			"DeleteToken": c.DeleteToken(ctx, id), "PatchToken": patchErr,
			"GetOAuthClient": getErr, "DeleteOAuthClient": c.DeleteOAuthClient(ctx, id), "SetOAuthClientEnabled": enableErr,
		} {
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("id %q is a dot segment", id)) {
				t.Errorf("%s(%q) = %v; want the dot segment refused", name, id, err)
			}
		}
	}
	if n := sent.Load(); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}
