package idnsim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawDo performs a request and returns the status, the body and the body read error.
func (e *env) rawDo(method, path, bearer string) (int, []byte, error) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

func TestFaultStatusTimesAndAfter(t *testing.T) {
	e := newEnv(t, Options{RateLimit: -1})
	tok := e.admin()
	e.sim.InjectFault(Fault{Operation: OpListTokens, Status: 503, Times: 2})
	for i, want := range []int{503, 503, 200, 200} {
		r := e.do("GET", "/v3/personal-access-tokens", tok, "", "")
		if r.status != want {
			t.Fatalf("request %d: %d, want %d", i, r.status, want)
		}
		if want == 503 {
			wantError(t, r, 503, "injected fault: 503 Service Unavailable")
		}
	}
	if fs := e.sim.Faults(); len(fs) != 1 || fs[0].Matched != 4 || fs[0].Fired != 2 {
		t.Fatalf("counters %+v", fs)
	}
	e.sim.ClearFaults()

	e.sim.InjectFault(Fault{Method: "GET", PathPrefix: "/v3/", Status: 500, After: 1, Times: 1})
	for i, want := range []int{200, 500, 200} {
		if r := e.do("GET", "/v3/personal-access-tokens", tok, "", ""); r.status != want {
			t.Fatalf("after/times request %d: %d, want %d", i, r.status, want)
		}
	}
	// A fault for another operation leaves this one alone.
	e.sim.InjectFault(Fault{Operation: OpDeleteToken, Status: 500})
	if r := e.do("GET", "/v3/personal-access-tokens", tok, "", ""); r.status != 200 {
		t.Fatalf("delete fault hit a list: %d", r.status)
	}
	reqs := e.sim.Requests()
	var faulted int
	for _, r := range reqs {
		if strings.HasPrefix(r.Fault, "status ") {
			faulted++
		}
	}
	if faulted != 3 {
		t.Fatalf("%d requests logged as faulted, want 3", faulted)
	}
}

func TestFault429AndBodies(t *testing.T) {
	e := newEnv(t, Options{RateLimit: -1})
	tok := e.admin()
	e.sim.InjectFault(Fault{Operation: OpListTokens, Status: 429, Times: 1})
	r := e.do("GET", "/v3/personal-access-tokens", tok, "", "")
	if r.status != 429 || r.header.Get("Retry-After") != "1" || string(r.body) != `{"message":" Rate Limit Exceeded "}` {
		t.Fatalf("%d %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	date := "Thu, 26 Nov 2026 03:00:05 GMT"
	e.sim.InjectFault(Fault{Operation: OpListTokens, Status: 429, RetryAfter: date, Times: 1})
	if r := e.do("GET", "/v3/personal-access-tokens", tok, "", ""); r.header.Get("Retry-After") != date {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	e.sim.InjectFault(Fault{Operation: OpListTokens, Status: 200, Body: `[{"id":`, Times: 1})
	if r := e.do("GET", "/v3/personal-access-tokens", tok, "", ""); r.status != 200 || string(r.body) != `[{"id":` {
		t.Fatalf("custom body: %d %s", r.status, r.body)
	}
	e.sim.InjectFault(Fault{Operation: OpListTokens, Status: 401, Times: 1})
	if r := e.do("GET", "/v3/personal-access-tokens", tok, "", ""); r.status != 401 || string(r.body) != `{"error":"JWT validation failed: JWT is expired"}` {
		t.Fatalf("401: %d %s", r.status, r.body)
	}
}

func TestFaultReset(t *testing.T) {
	e := newEnv(t, Options{RateLimit: -1})
	tok := e.admin()
	// net/http's Transport replays an idempotent GET once when a reused
	// connection dies before any response, so two resets are needed to fail it.
	e.sim.InjectFault(Fault{Operation: OpListTokens, Reset: true, Times: 2})
	if _, _, err := e.rawDo("GET", "/v3/personal-access-tokens", tok); err == nil {
		t.Fatal("reset: the request succeeded")
	}
	reqs := e.sim.Requests()
	if last := reqs[len(reqs)-1]; last.Status != 0 || last.Fault != "reset" || last.ClientID != e.sim.Admin().ClientID {
		t.Fatalf("logged %+v", last)
	}
	// The next request is served normally.
	if status, _, err := e.rawDo("GET", "/v3/personal-access-tokens", tok); err != nil || status != 200 {
		t.Fatalf("after reset: %d %v", status, err)
	}
}

// With Apply the operation takes effect before the connection dies: the
// ambiguous failure a client must not blindly retry.
func TestFaultResetAfterApply(t *testing.T) {
	e := newScenarioEnv(t, "golden.yaml", Options{RateLimit: -1})
	tok := e.admin()
	e.sim.InjectFault(Fault{Operation: OpDeleteToken, Reset: true, Apply: true, Times: 1})
	if _, _, err := e.rawDo("DELETE", "/v3/personal-access-tokens/a1100000000000000000000000000101", tok); err == nil {
		t.Fatal("reset: the delete succeeded")
	}
	if _, ok := e.sim.Token("a1100000000000000000000000000101"); ok {
		t.Fatal("the applied delete did not delete")
	}
	wantError(t, e.do("DELETE", "/v3/personal-access-tokens/a1100000000000000000000000000101", tok, "", ""), 404, "not found")

	// Status with Apply: the delete happens, the client sees a 502.
	e.sim.InjectFault(Fault{Operation: OpDeleteToken, Status: 502, Apply: true, Times: 1})
	if r := e.do("DELETE", "/v3/personal-access-tokens/b0b00000000000000000000000000201", tok, "", ""); r.status != 502 {
		t.Fatalf("status: %d", r.status)
	}
	if _, ok := e.sim.Token("b0b00000000000000000000000000201"); ok {
		t.Fatal("the applied delete did not delete")
	}
	// Without Apply nothing happens.
	e.sim.InjectFault(Fault{Operation: OpDeleteToken, Status: 502, Times: 1})
	e.do("DELETE", "/v3/personal-access-tokens/b0b00000000000000000000000000202", "", "", "")
	if _, ok := e.sim.Token("b0b00000000000000000000000000202"); !ok {
		t.Fatal("a fault without Apply deleted")
	}
}

func TestFaultTruncate(t *testing.T) {
	e := newScenarioEnv(t, "golden.yaml", Options{RateLimit: -1})
	tok := e.admin()
	e.sim.InjectFault(Fault{Operation: OpListTokens, Truncate: true, Times: 1})
	status, body, err := e.rawDo("GET", "/v3/personal-access-tokens", tok)
	if status != 200 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncate: status %d err %v", status, err)
	}
	full := e.do("GET", "/v3/personal-access-tokens", tok, "", "")
	if len(body) == 0 || len(body) != len(full.body)/2 || !strings.HasPrefix(string(full.body), string(body)) {
		t.Fatalf("truncated body is %d bytes of %d", len(body), len(full.body))
	}
	// A status with a cut body.
	e.sim.InjectFault(Fault{Operation: OpListTokens, Status: 500, Truncate: true, Times: 1})
	status, _, err = e.rawDo("GET", "/v3/personal-access-tokens", tok)
	if status != 500 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated 500: status %d err %v", status, err)
	}
}

func TestFaultLatency(t *testing.T) {
	var mu sync.Mutex
	var slept []time.Duration
	sleep := func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		slept = append(slept, d)
		return nil
	}
	e := newEnv(t, Options{RateLimit: -1, Sleep: sleep})
	tok := e.admin()
	e.sim.InjectFault(Fault{Operation: OpListTokens, Latency: 3 * time.Second, Times: 1})
	if r := e.do("GET", "/v3/personal-access-tokens", tok, "", ""); r.status != 200 {
		t.Fatalf("latency: %d", r.status)
	}
	// Latency then a status.
	e.sim.InjectFault(Fault{Operation: OpListTokens, Latency: time.Second, Status: 504, Times: 1})
	if r := e.do("GET", "/v3/personal-access-tokens", tok, "", ""); r.status != 504 {
		t.Fatalf("latency+status: %d", r.status)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(slept) != 2 || slept[0] != 3*time.Second || slept[1] != time.Second {
		t.Fatalf("slept %v", slept)
	}
}

func TestFaultProbabilityIsSeeded(t *testing.T) {
	pattern := func(seed int64) string {
		e := newEnv(t, Options{RateLimit: -1})
		tok := e.admin()
		e.sim.InjectFault(Fault{Operation: OpListTokens, Status: 500, Probability: 0.3, Seed: seed})
		var b strings.Builder
		for range 100 {
			if e.do("GET", "/v3/personal-access-tokens", tok, "", "").status == 500 {
				b.WriteByte('x')
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	a, b, c := pattern(7), pattern(7), pattern(8)
	if a != b {
		t.Fatalf("same seed, different pattern:\n%s\n%s", a, b)
	}
	if a == c {
		t.Fatalf("different seeds, same pattern: %s", a)
	}
	if n := strings.Count(a, "x"); n < 15 || n > 45 {
		t.Fatalf("probability 0.3 fired %d of 100 times", n)
	}
}

func TestFaultValidation(t *testing.T) {
	bad := []Fault{
		{Status: 42},
		{Probability: 1.5},
		{Times: -1},
		{Reset: true, Status: 500},
		{Latency: -time.Second},
	}
	for _, f := range bad {
		if err := f.validate(); err == nil {
			t.Errorf("%+v validated", f)
		}
	}
}
