package janitor_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// The hostile-tenant scenarios end to end: a server on 127.0.0.1
// in front of the simulated tenant (or instead of parts of it) misbehaves,
// and the tests check what the tenant and every other server received, what
// the journal says, and the run's error.

// seen is one request a hostile server received.
type seen struct {
	Method, Path, Authorization, Body string
}

// hostile is a server on 127.0.0.1 that records every request and either
// answers it itself (intercept returns true) or passes it to the simulator.
type hostile struct {
	mu   sync.Mutex
	reqs []seen
	srv  *httptest.Server
	host string // host:port
}

func (h *hostile) requests() []seen {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]seen(nil), h.reqs...)
}

// now, if set, stamps the Date of the answers it writes itself: it stands
// for the tenant, whose clock is the test's (net/http would stamp the wall
// clock, far from the test's, and the run would be refused for that).
func newHostile(t testing.TB, tls bool, next http.Handler, now func() time.Time, intercept func(w http.ResponseWriter, r *http.Request) bool) *hostile {
	t.Helper()
	h := &hostile{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if now != nil {
			w.Header().Set("Date", now().UTC().Format(http.TimeFormat))
		}
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.reqs = append(h.reqs, seen{r.Method, r.URL.Path, r.Header.Get("Authorization"), string(body)})
		h.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		if intercept != nil && intercept(w, r) {
			return
		}
		if next == nil {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, "[]")
			return
		}
		next.ServeHTTP(w, r)
	})
	if tls {
		h.srv = httptest.NewTLSServer(handler)
	} else {
		h.srv = httptest.NewServer(handler)
	}
	t.Cleanup(h.srv.Close)
	h.host = h.srv.Listener.Addr().String()
	return h
}

// behind puts a hostile server in front of the env's simulated tenant and
// points the env's API client at it.
func (e *env) behind(tls bool, intercept func(w http.ResponseWriter, r *http.Request) bool) *hostile {
	e.t.Helper()
	h := newHostile(e.t, tls, e.sim, e.clock.Now, intercept)
	cfg := api.Config{
		BaseURL: h.srv.URL, Version: e.cfg.Tenant.APIVersion, ClientID: e.admin.ClientID,
		ClientSecret: secret.New(e.admin.ClientSecret), RateLimit: api.RateLimit{Requests: -1},
		Sleep: noSleep, Now: e.clock.Now,
	}
	if tls {
		cfg.HTTPClient = h.srv.Client()
	}
	c, err := api.New(cfg)
	if err != nil {
		e.t.Fatalf("api.New: %v", err)
	}
	e.client, e.url = c, h.srv.URL
	return h
}

// outcomes are the journal's outcome records by token id.
func (e *env) outcomes() map[string]audit.Outcome {
	out := map[string]audit.Outcome{}
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindOutcome && r.Outcome != nil {
			out[r.TokenID] = *r.Outcome
		}
	}
	return out
}

// requireNoIntents fails when the journal holds any intent: nothing was
// about to be changed.
func (e *env) requireNoIntents() {
	e.t.Helper()
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindIntent {
			e.t.Fatalf("the journal holds an intent for %s: the run meant to change something", r.TokenID)
		}
	}
}

// Every DELETE answered "307 Location: …/{clientId}": no DELETE is re-sent
// to patjanitor's own PAT (it survives), each action is journaled failed with
// the status and host, and the run fails.
func TestHostileDeleteRedirectedToOwnPAT(t *testing.T) {
	e := newEnv(t, enforceDeleteStale, envOpts{})
	ids := e.addStale("s", 3, 1)
	own := e.admin.ClientID
	if !e.present(own) {
		t.Fatal("the admin PAT is not in the tenant: the test would prove nothing")
	}
	h := e.behind(false, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodDelete && !strings.HasSuffix(r.URL.Path, "/"+own) {
			http.Redirect(w, r, "/v3/personal-access-tokens/"+own, http.StatusTemporaryRedirect)
			return true
		}
		return false
	})

	res, err := e.engine().Run(context.Background(), janitor.RunInput{})
	requireActionsFailed(t, err, len(ids))
	for _, r := range h.requests() {
		if r.Method == http.MethodDelete && strings.HasSuffix(r.Path, "/"+own) {
			t.Errorf("DELETE of the own PAT was sent: %+v", r)
		}
	}
	if m := e.mutations(); len(m) != 0 {
		t.Errorf("the tenant received %d mutations, want none: %+v", len(m), m)
	}
	if !e.present(own) {
		t.Fatal("the own PAT was deleted")
	}
	outs := e.outcomes()
	for _, it := range res.Items {
		if it.Outcome != janitor.OutcomeFailed {
			t.Errorf("%s: result %s, want failed", it.Item.TokenID, it.Outcome)
		}
	}
	for _, id := range ids {
		o := outs[id]
		if o.Status != string(janitor.OutcomeFailed) || !strings.Contains(o.Error, "307") || !strings.Contains(o.Error, "host "+h.host) {
			t.Errorf("%s: journal outcome %+v, want failed naming 307 and host %s", id, o, h.host)
		}
		if !e.present(id) {
			t.Errorf("%s is gone", id)
		}
	}
}

// A DELETE answered 302 to a page that answers GET with 204: the client does
// not turn the DELETE into a GET; nothing is journaled applied, the tokens
// are still there, and the run fails.
func TestHostileDeleteRedirectedToGET204(t *testing.T) {
	e := newEnv(t, enforceDeleteStale, envOpts{})
	ids := e.addStale("s", 2, 1)
	h := e.behind(false, func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case r.Method == http.MethodDelete:
			http.Redirect(w, r, "/landing?from=delete", http.StatusFound)
			return true
		case r.URL.Path == "/landing":
			w.WriteHeader(http.StatusNoContent)
			return true
		}
		return false
	})

	_, err := e.engine().Run(context.Background(), janitor.RunInput{})
	requireActionsFailed(t, err, len(ids))
	for _, r := range h.requests() {
		if r.Path == "/landing" {
			t.Errorf("the redirect was followed: %+v", r)
		}
	}
	outs := e.outcomes()
	for _, id := range ids {
		if o := outs[id]; o.Status != string(janitor.OutcomeFailed) || !strings.Contains(o.Error, "302") || strings.Contains(o.Error, "from=delete") {
			t.Errorf("%s: journal outcome %+v, want failed naming 302 (and not the Location's query)", id, o)
		}
		if !e.present(id) {
			t.Errorf("%s is gone", id)
		}
	}
}

// An https tenant whose /oauth/token answers 307 to a plain-http address:
// the form with client_secret is not re-posted, the attacker's access token
// is never used, the run fails with incomplete data and changes nothing.
func TestHostileTokenEndpointRedirectToPlainHTTP(t *testing.T) {
	e := newEnv(t, enforceDeleteStale, envOpts{})
	e.addStale("s", 2, 1)
	attacker := newHostile(t, false, nil, e.clock.Now, func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"attacker","token_type":"bearer","expires_in":3600}`)
		return true
	})
	h := e.behind(true, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/oauth/token" {
			http.Redirect(w, r, attacker.srv.URL+"/collect", http.StatusTemporaryRedirect)
			return true
		}
		return false
	})
	if !strings.HasPrefix(e.url, "https://") {
		t.Fatalf("tenant URL %s is not https", e.url)
	}

	_, err := e.engine().Run(context.Background(), janitor.RunInput{})
	var inc *janitor.IncompleteError
	if !errors.As(err, &inc) || !errors.Is(err, api.ErrRedirect) || !strings.Contains(err.Error(), "host "+attacker.host) {
		t.Fatalf("Run: %v; want incomplete data naming the 307 to %s", err, attacker.host)
	}
	if got := attacker.requests(); len(got) != 0 {
		t.Fatalf("the redirect target received %+v", got)
	}
	for _, r := range h.requests() {
		if r.Path != "/oauth/token" {
			t.Errorf("the tenant received %s %s after the token endpoint redirected", r.Method, r.Path)
		}
		if r.Authorization != "" {
			t.Errorf("a request carried Authorization %q", r.Authorization)
		}
	}
	e.requireNoMutations()
	e.requireNoIntents()
}

// A listing (and a public-identities lookup) redirected to another port of
// the same host: that server receives nothing (no Bearer header), its "[]"
// is never taken for the tenant's answer, and the run changes nothing.
func TestHostileListingRedirectToOtherPort(t *testing.T) {
	for _, tc := range []struct {
		name, config, path string
	}{
		{"listing", enforceDeleteStale, "/v3/personal-access-tokens"},
		{"public identities", ownerPolicies, "/v3/public-identities"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.config, envOpts{})
			e.addStale("s", 2, 1)
			e.add("tok-bob", "bob", "b", 10*day, day)
			other := newHostile(t, false, nil, e.clock.Now, nil) // answers [] to anything
			e.behind(false, func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method == http.MethodGet && r.URL.Path == tc.path {
					http.Redirect(w, r, other.srv.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
					return true
				}
				return false
			})

			res, err := e.engine().Run(context.Background(), janitor.RunInput{})
			for _, r := range other.requests() {
				t.Errorf("the other port received %s %s (Authorization %q)", r.Method, r.Path, r.Authorization)
			}
			e.requireNoMutations()
			e.requireNoIntents()
			if tc.name == "listing" {
				var inc *janitor.IncompleteError
				if !errors.As(err, &inc) || !errors.Is(err, api.ErrRedirect) || !strings.Contains(err.Error(), "307") {
					t.Fatalf("Run: %v; want incomplete data naming the 307", err)
				}
				if len(res.Items) != 0 {
					t.Errorf("%d items acted on", len(res.Items))
				}
			}
		})
	}
}
