package janitor_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// Hostile tenants for the bounds on memory and time: a front on 127.0.0.1
// passes every request to the simulated tenant except the ones a test
// answers itself, and records every request it saw. The engine talks to the
// front only.

type front struct {
	sim http.Handler
	mu  sync.Mutex
	// seen are "METHOD /path" of every request, in order; uris their
	// request URIs (with the query).
	seen, uris []string
	// answer serves "METHOD /path" instead of the simulator.
	answer map[string]http.HandlerFunc
	// now stamps the Date of those answers: they stand for the tenant's,
	// whose clock is the test's (net/http would stamp the wall clock).
	now func() time.Time
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Method + " " + r.URL.Path
	f.mu.Lock()
	f.seen = append(f.seen, key)
	f.uris = append(f.uris, r.Method+" "+r.URL.RequestURI())
	h := f.answer[key]
	f.mu.Unlock()
	if h != nil {
		w.Header().Set("Date", f.now().UTC().Format(http.TimeFormat))
		h(w, r)
		return
	}
	f.sim.ServeHTTP(w, r)
}

func (f *front) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, s := range f.seen {
		if s == key {
			n++
		}
	}
	return n
}

// sleeps records the waits the client asked for, and waits for none.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) longest() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m time.Duration
	for _, d := range s.d {
		m = max(m, d)
	}
	return m
}

// repeated returns a request sent more than once (query included), or "".
func (f *front) repeated() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[string]bool{}
	for _, u := range f.uris {
		if seen[u] && !strings.Contains(u, "/oauth/token") {
			return u
		}
		seen[u] = true
	}
	return ""
}

const listPath = "GET /v3/personal-access-tokens"

// hostileEnv is newEnv with the client talking to a front that answers
// the given requests itself.
func hostileEnv(t *testing.T, cfg string, answer map[string]http.HandlerFunc) (*env, *front, *sleeps) {
	t.Helper()
	if cfg == "" {
		cfg = enforceDeleteStale
	}
	e := newEnv(t, cfg, envOpts{})
	f := &front{sim: e.sim, answer: answer, now: e.clock.Now}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	sl := &sleeps{}
	client, err := api.New(api.Config{
		BaseURL: srv.URL, Version: e.cfg.Tenant.APIVersion, ClientID: e.admin.ClientID,
		ClientSecret: secret.New(e.admin.ClientSecret), RateLimit: api.RateLimit{Requests: -1},
		Sleep: sl.sleep, Now: e.clock.Now, Logger: e.logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.client, e.url = client, srv.URL
	// Tokens a wrong decision would delete.
	e.addStale("stale", 3, 1)
	return e, f, sl
}

// requireNothingApplied: no mutation reached the tenant, and the journal
// holds no outcome (the run never got as far as its first intent).
func (e *env) requireNothingApplied() {
	e.t.Helper()
	e.requireNoMutations()
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindIntent || r.Kind == audit.KindOutcome {
			e.t.Fatalf("journal record %d: %s %s %+v, want none", r.Seq, r.Kind, r.TokenID, r.Outcome)
		}
	}
	for _, id := range []string{"stale-000", "stale-001", "stale-002"} {
		if !e.present(id) {
			e.t.Fatalf("token %s was deleted", id)
		}
	}
}

// streamListing writes a JSON array of tokens until n bytes are out or the
// client goes away, without holding the body: one token's bytes are reused.
// written reports how many bytes the client accepted.
func streamListing(n int64, contentLength bool, written *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if contentLength {
			w.Header().Set("Content-Length", fmt.Sprint(n))
		}
		w.WriteHeader(http.StatusOK)
		buf := []byte("[")
		for i := 0; written.Load() < n; i++ {
			buf = fmt.Appendf(buf, `{"id":"%032x","name":"ci-%d","owner":{"type":"IDENTITY","id":"owner-%d","name":"Owner"},`+
				`"created":"2025-01-02T03:04:05.000Z","lastUsed":null,"scope":["sp:scopes:all"],"managed":false},`, i, i, i%1000)
			if rest := n - written.Load(); int64(len(buf)) > rest {
				buf = buf[:rest]
			}
			m, err := w.Write(buf)
			written.Add(int64(m))
			if err != nil {
				return
			}
			buf = buf[:0]
		}
	}
}

const maxListing4MiB = `tenant:
  url: http://127.0.0.1:1
  clientId: %s
  maxListingBytes: 4MiB
` + enforceDeleteStale

// TestHostileListing300MB: a 300 MB listing (about 900,000 tokens) took
// 1.1 GB of memory. It is refused once the run has read tenant.maxListingBytes,
// whether the body declares its length or not, and is not asked for again:
// the run's data is incomplete and nothing is changed.
func TestHostileListing300MB(t *testing.T) {
	for _, declared := range []bool{false, true} {
		t.Run(fmt.Sprintf("Content-Length %v", declared), func(t *testing.T) {
			var written atomic.Int64
			e, f, _ := hostileEnv(t, "", map[string]http.HandlerFunc{listPath: streamListing(300<<20, declared, &written)})
			e.cfg = e.parseConfig(fmt.Sprintf(maxListing4MiB, e.admin.ClientID))

			res, err := e.engine().Run(context.Background(), janitor.RunInput{})
			t.Logf("Run: %v", err)
			var ie *janitor.IncompleteError
			var le *api.LimitError
			if !errors.As(err, &ie) || !errors.As(err, &le) {
				t.Fatalf("Run error %v, want incomplete data from a *api.LimitError", err)
			}
			for _, want := range []string{"larger than the limit of 4 MiB", "raise tenant.maxListingBytes", "nothing will be changed"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if res == nil || res.Count(janitor.OutcomeApplied) != 0 {
				t.Errorf("result %+v", res)
			}
			if u := f.repeated(); u != "" {
				t.Errorf("the tenant got %s more than once: a listing over the limit is not retried", u)
			}
			// The client stopped reading at the limit: what the server got out
			// is the limit plus what the connection buffers, not 300 MB.
			if w := written.Load(); w > 32<<20 {
				t.Errorf("the server wrote %d MB of the listing before the client stopped", w>>20)
			}
			// A declared length over the limit is refused before the body is
			// read (what the server wrote sits in the socket buffers).
			if declared && !strings.Contains(err.Error(), "(Content-Length 314572800 bytes; nothing was read)") {
				t.Errorf("error %q does not say the declared length was refused", err)
			}
			e.requireNothingApplied()
		})
	}
}

// TestHostileTokenName100MB: one token whose name is 100 MB took 373 MB. Any
// string of a listing longer than 64 KiB is refused as soon as it passes
// the limit.
func TestHostileTokenName100MB(t *testing.T) {
	var written atomic.Int64
	hugeName := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		head := `[{"id":"2c9180835d2e5168015d32f890ca1581","created":"2025-01-02T03:04:05.000Z","managed":false,"name":"`
		_, _ = w.Write([]byte(head))
		chunk := []byte(strings.Repeat("A", 64<<10))
		for written.Load() < 100<<20 {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
		_, _ = w.Write([]byte(`"}]`))
	}
	e, f, _ := hostileEnv(t, enforceDeleteStale, map[string]http.HandlerFunc{listPath: hugeName})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := e.engine().Run(context.Background(), janitor.RunInput{})
	runtime.ReadMemStats(&after)
	t.Logf("Run: %v", err)
	var le *api.LimitError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "a string in the listing is larger than the limit of 64 KiB") {
		t.Fatalf("Run error %v, want the 64 KiB string limit", err)
	}
	if u := f.repeated(); u != "" {
		t.Errorf("the tenant got %s more than once", u)
	}
	if w := written.Load(); w > 32<<20 {
		t.Errorf("the server wrote %d MB of the name before the client stopped", w>>20)
	}
	// Everything this process allocated during the run (the simulator
	// included): far from the hundreds of megabytes the name took.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 48<<20 {
		t.Errorf("the run allocated %d MB", alloc>>20)
	}
	e.requireNothingApplied()
}

// TestHostileRetryAfter99999: a 429 with Retry-After: 99999 (28 hours) made
// plan sit silent for minutes, retrying up to five times. A wait longer than
// what is left of the run's deadline (runTimeout) is not started: the run
// fails at once, with an error that says why.
func TestHostileRetryAfter99999(t *testing.T) {
	tooMany := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "99999")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"message":" Rate Limit Exceeded "}`))
	}
	e, f, sl := hostileEnv(t, enforceDeleteStale, map[string]http.HandlerFunc{listPath: tooMany})
	start := time.Now()
	_, err := e.engine().Run(context.Background(), janitor.RunInput{})
	t.Logf("Run: %v", err)
	if err == nil || !errors.Is(err, api.ErrRateLimited) {
		t.Fatalf("Run error %v, want the 429", err)
	}
	for _, want := range []string{"429", "the tenant asked to wait 24h0m0s or more (Retry-After)", "left before the run's deadline (runTimeout)", "not retried"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if d := sl.longest(); d > 0 {
		t.Errorf("the client asked to sleep %v; it must not start a wait it cannot finish", d)
	}
	if u := f.repeated(); u != "" {
		t.Errorf("the tenant got %s more than once", u)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the run took %v", took)
	}
	e.requireNothingApplied()
}

// TestHostileDrippingTenant: a tenant that never answers, or sends the
// listing a byte at a time, held a run for 610 s (and every later run of
// serve behind it). The run's deadline (runTimeout, here 300 ms) cuts it off;
// the run fails naming runTimeout and changes nothing.
func TestHostileDrippingTenant(t *testing.T) {
	drip := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		fl := w.(http.Flusher)
		for _, c := range []byte(`[{"id":"` + strings.Repeat("a", 1<<20)) {
			if _, err := w.Write([]byte{c}); err != nil {
				return
			}
			fl.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	silent := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	for name, h := range map[string]http.HandlerFunc{"drips bytes": drip, "never answers": silent} {
		t.Run(name, func(t *testing.T) {
			// Each waits out the deadline on the wall clock (a context
			// deadline, no injected clock): the two wait together. They
			// share nothing but the handlers, which keep no state.
			t.Parallel()
			e, f, _ := hostileEnv(t, "", map[string]http.HandlerFunc{listPath: h})
			e.cfg = e.parseConfig(fmt.Sprintf("tenant:\n  url: http://127.0.0.1:1\n  clientId: %s\nrunTimeout: 300ms\n%s", e.admin.ClientID, enforceDeleteStale))
			start := time.Now()
			_, err := e.engine().Run(context.Background(), janitor.RunInput{})
			took := time.Since(start)
			t.Logf("Run after %v: %v", took, err)
			var te *janitor.RunTimeoutError
			if !errors.As(err, &te) || !strings.Contains(err.Error(), "runTimeout (300ms)") {
				t.Fatalf("Run error %v, want the run's timeout", err)
			}
			if took > 5*time.Second {
				t.Errorf("the run took %v with runTimeout 300ms", took)
			}
			if n := f.count(listPath); n < 1 {
				t.Errorf("the tenant got no listing request")
			}
			e.requireNothingApplied()
		})
	}
}

// TestHostilePublicIdentitiesPaging: a public-identities endpoint that
// answers every page with 250 identities nobody asked for was paged through
// forever (567 requests, and every later run of serve blocked). Paging stops
// at the first full page that adds no requested id, the lookup is an error
// rather than "owner missing", and the ownerMissing policy deletes nothing.
func TestHostilePublicIdentitiesPaging(t *testing.T) {
	page := 0
	var mu sync.Mutex
	strangers := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		page++
		p := page
		mu.Unlock()
		var b strings.Builder
		b.WriteString("[")
		for i := range 250 {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"id":"stranger-%d-%d","name":"S","email":null,"identityState":"ACTIVE"}`, p, i)
		}
		b.WriteString("]")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(b.String()))
	}
	cfg := noLimits + `owners: {lookup: true}
policies:
  - name: deleted-owner
    mode: enforce
    match: {ownerMissing: true}
    action: delete
`
	e, f, _ := hostileEnv(t, cfg, map[string]http.HandlerFunc{"GET /v3/public-identities": strangers})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // bounds the old endless loop
	defer cancel()
	res, err := e.engine().Run(ctx, janitor.RunInput{})
	if n := f.count("GET /v3/public-identities"); n != 1 {
		t.Errorf("the tenant got %d public-identities requests, want 1 (a full page of strangers ends the lookup)", n)
	}
	if err != nil {
		t.Logf("Run: %v", err)
	}
	if res == nil || res.Count(janitor.OutcomeApplied) != 0 {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(e.logs.String(), "none was a new one of the") {
		t.Errorf("the log does not say why the owner lookup failed:\n%s", e.logs.String())
	}
	e.requireNothingApplied()
	if n := len(idnsim.Mutations(e.sim.Requests())); n != 0 {
		t.Errorf("%d mutations", n)
	}
}

// The engine's default for tenant.maxListingBytes (the config's) and the API
// client's own are one number: the memory limits in deploy/ are measured for
// it.
func TestListingCapDefaultsAgree(t *testing.T) {
	if int64(policy.DefaultMaxListingBytes) != api.DefaultMaxListingBytes {
		t.Fatalf("policy.DefaultMaxListingBytes %d, api.DefaultMaxListingBytes %d", policy.DefaultMaxListingBytes, api.DefaultMaxListingBytes)
	}
}
