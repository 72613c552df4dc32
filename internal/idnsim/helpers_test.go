package idnsim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/fakeclock"
	"github.com/patjanitor/patjanitor/internal/pat"
)

// t0 is the tests' "now", the same instant golden.yaml is written for.
var t0 = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)

func newClock() *fakeclock.Clock { return fakeclock.New(t0) }

// env is a simulator on a loopback httptest server with a fake clock.
type env struct {
	t     *testing.T
	sim   *Sim
	srv   *httptest.Server
	clock *fakeclock.Clock
	sc    *Scenario
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	clock := newClock()
	if opts.Clock == nil {
		opts.Clock = clock.Now
	}
	s := New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &env{t: t, sim: s, srv: srv, clock: clock}
}

// newScenarioEnv loads a testdata scenario into a fresh env.
func newScenarioEnv(t *testing.T, file string, opts Options) *env {
	t.Helper()
	e := newEnv(t, opts)
	data, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ParseScenario(file, data, t0)
	if err != nil {
		t.Fatal(err)
	}
	e.sim.ApplyScenario(sc)
	e.sc = sc
	return e
}

// secret returns a scenario token's secret.
func (e *env) secret(id string) string {
	e.t.Helper()
	for _, st := range e.sc.Tokens {
		if st.Token.ID == id {
			return st.Secret
		}
	}
	e.t.Fatalf("no scenario token %s", id)
	return ""
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (e *env) do(method, path, bearer, contentType, body string) resp {
	e.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func (e *env) mintRaw(id, secret string) resp {
	e.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	return e.do(http.MethodPost, "/oauth/token", "", "application/x-www-form-urlencoded", form.Encode())
}

// login mints an access token for a PAT and fails the test otherwise.
func (e *env) login(id, secret string) string {
	e.t.Helper()
	r := e.mintRaw(id, secret)
	if r.status != http.StatusOK {
		e.t.Fatalf("login %s: %d %s", id, r.status, r.body)
	}
	var tr tokenResponse
	r.json(e.t, &tr)
	return tr.AccessToken
}

func (e *env) admin() string {
	e.t.Helper()
	a := e.sim.Admin()
	return e.login(a.ClientID, a.ClientSecret)
}

// listIDs lists tokens and returns their ids in order.
func (e *env) listIDs(path, bearer string) []string {
	e.t.Helper()
	r := e.do(http.MethodGet, path, bearer, "", "")
	if r.status != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	var toks []struct {
		ID string `json:"id"`
	}
	r.json(e.t, &toks)
	ids := make([]string, 0, len(toks))
	for _, t := range toks {
		ids = append(ids, t.ID)
	}
	return ids
}

var trackingIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

// wantError checks an ErrorResponseDto with the given status and that its
// message contains text.
func wantError(t *testing.T, r resp, status int, text string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	var er ErrorResponse
	r.json(t, &er)
	if er.DetailCode != DetailCode(status) {
		t.Errorf("detailCode %q, want %q", er.DetailCode, DetailCode(status))
	}
	if !trackingIDRe.MatchString(er.TrackingID) {
		t.Errorf("trackingId %q is not 32 hex characters", er.TrackingID)
	}
	if len(er.Messages) != 1 || er.Messages[0].Locale != "en-US" || er.Messages[0].LocaleOrigin != "DEFAULT" {
		t.Fatalf("messages %+v, want one en-US DEFAULT message", er.Messages)
	}
	if !strings.Contains(er.Messages[0].Text, text) {
		t.Errorf("message %q does not contain %q", er.Messages[0].Text, text)
	}
}

// tokenFor is a full-access token of owner.
func tokenFor(id, owner string) pat.Token {
	return pat.Token{ID: id, Name: "token-" + id, Scope: pat.ScopesOf(pat.ScopeAll), Owner: pat.Owner{ID: owner}}
}

func newTestServer(t *testing.T, s *Sim) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}
