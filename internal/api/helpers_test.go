package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/secret"
)

const (
	testClientID = "0123456789abcdef0123456789abcdef"
	testSecret   = "s3cr3t-value-that-must-never-leak-0123456789abcdef"
)

// recorder is an Observer and a Sleep that remember what they saw.
type recorder struct {
	mu       sync.Mutex
	requests []observed
	retries  []string // "operation/reason"
	sleeps   []time.Duration
}

type observed struct {
	op   string
	code int
}

func (r *recorder) ObserveRequest(op string, code int, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, observed{op, code})
}

func (r *recorder) ObserveRetry(op, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retries = append(r.retries, op+"/"+reason)
}

// Sleep records d and returns at once (or the context's error).
func (r *recorder) Sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	r.sleeps = append(r.sleeps, d)
	r.mu.Unlock()
	return ctx.Err()
}

func (r *recorder) snapshot() ([]observed, []string, []time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]observed(nil), r.requests...), append([]string(nil), r.retries...), append([]time.Duration(nil), r.sleeps...)
}

// fakeTenant is a hand-driven tenant for unit tests: a token endpoint that
// issues numbered access tokens, and an API handler the test supplies. The
// integration tests use internal/idnsim instead.
type fakeTenant struct {
	mu         sync.Mutex
	issued     int
	tokenCalls int
	expiresIn  int
	api        http.HandlerFunc
	srv        *httptest.Server
}

func newFakeTenant(t *testing.T, api http.HandlerFunc) *fakeTenant {
	t.Helper()
	ft := &fakeTenant{api: api, expiresIn: 3600}
	ft.srv = httptest.NewServer(http.HandlerFunc(ft.serve))
	t.Cleanup(ft.srv.Close)
	return ft
}

func (ft *fakeTenant) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/oauth/token" {
		ft.mu.Lock()
		ft.tokenCalls++
		ft.mu.Unlock()
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" ||
			r.PostForm.Get("client_id") != testClientID || r.PostForm.Get("client_secret") != testSecret {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client","error_description":"bad credentials"}`))
			return
		}
		ft.mu.Lock()
		ft.issued++
		tok := fmt.Sprintf("access-%d", ft.issued)
		exp := ft.expiresIn
		ft.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": exp})
		return
	}
	ft.api(w, r)
}

func (ft *fakeTenant) calls() int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.tokenCalls
}

// newTestClient builds a Client against url with the recorder injected and no
// client-side rate limit (unit tests do not exercise it).
func newTestClient(t *testing.T, url string, mod func(*Config)) (*Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	cfg := Config{
		BaseURL:      url,
		ClientID:     testClientID,
		ClientSecret: secret.New(testSecret),
		Observer:     rec,
		Sleep:        rec.Sleep,
		RateLimit:    RateLimit{Requests: -1},
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, rec
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

const tokenJSON = `{"id":"%s","name":"n-%s","scope":null,"owner":{"type":"IDENTITY","id":"o1","name":"Owner"},"created":"2026-01-02T03:04:05.000Z","lastUsed":null,"managed":false,"accessTokenValiditySeconds":43200}`

func oneToken(id string) string { return fmt.Sprintf(tokenJSON, id, id) }

func tokenList(n int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(oneToken(fmt.Sprintf("t%05d", i)))
	}
	b.WriteByte(']')
	return b.String()
}

const (
	body404 = `{"detailCode":"404 Not found","trackingId":"b21b1f7ce4da4d639f2c62a57171b427","messages":[{"locale":"en-US","localeOrigin":"DEFAULT","text":"The server did not find a current representation for the target resource."}]}`
	body429 = `{"message":" Rate Limit Exceeded "}`
)
