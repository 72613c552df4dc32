package idnsim

import (
	"testing"
	"time"
)

func TestRateLimit(t *testing.T) {
	e := newEnv(t, Options{RateLimit: 3, RateWindow: 10 * time.Second})
	tok := e.admin()
	get := func(path string) resp { return e.do("GET", path, tok, "", "") }

	for i := range 3 {
		if r := get("/v3/personal-access-tokens"); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
		e.clock.Advance(time.Second) // requests at t, t+1s, t+2s
	}
	// t+3s: the 4th request in 10 s is refused until t+10s, 7 s from now.
	r := get("/v3/personal-access-tokens")
	if r.status != 429 || r.header.Get("Retry-After") != "7" || string(r.body) != `{"message":" Rate Limit Exceeded "}` {
		t.Fatalf("4th request: %d Retry-After %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	// Another API version has its own window (the documented limit is per
	// client id and API version).
	if r := get("/v2025/personal-access-tokens"); r.status != 200 {
		t.Fatalf("v2025 shares the v3 window: %d", r.status)
	}
	// public-identities is a v3 call: limited with the v3 PAT calls.
	if r := get("/v3/public-identities"); r.status != 429 {
		t.Fatalf("v3 public-identities: %d, want 429", r.status)
	}
	// Token calls are never limited.
	a := e.sim.Admin()
	for range 5 {
		if r := e.mintRaw(a.ClientID, a.ClientSecret); r.status != 200 {
			t.Fatalf("token call limited: %d", r.status)
		}
	}
	// A fractional wait rounds up to whole seconds.
	e.clock.Advance(6500 * time.Millisecond) // t+9.5s
	if r := get("/v3/personal-access-tokens"); r.status != 429 || r.header.Get("Retry-After") != "1" {
		t.Fatalf("at t+9.5s: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	// Refused requests do not count: at t+10s the oldest slot is free.
	e.clock.Advance(500 * time.Millisecond)
	if r := get("/v3/personal-access-tokens"); r.status != 200 {
		t.Fatalf("after Retry-After: %d", r.status)
	}
	if r := get("/v3/personal-access-tokens"); r.status != 429 {
		t.Fatalf("sliding window admitted a 4th request within 10 s: %d", r.status)
	}
	// Each client id has its own window.
	other := newEnvLogin(e)
	if r := e.do("GET", "/v3/personal-access-tokens", other, "", ""); r.status != 200 {
		t.Fatalf("another client shares the window: %d", r.status)
	}
}

func newEnvLogin(e *env) string {
	e.t.Helper()
	e.sim.Add(tokenFor("0000000000000000000000000000c0de", e.sim.Tokens()[0].Owner.ID), "pw")
	return e.login("0000000000000000000000000000c0de", "pw")
}

func TestRateLimitOff(t *testing.T) {
	e := newEnv(t, Options{RateLimit: -1})
	tok := e.admin()
	for i := range 300 {
		if r := e.do("GET", "/v3/personal-access-tokens", tok, "", ""); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
}

func TestRateLimitDefault(t *testing.T) {
	e := newEnv(t, Options{})
	tok := e.admin()
	for i := range 100 {
		if r := e.do("GET", "/v3/personal-access-tokens", tok, "", ""); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	if r := e.do("GET", "/v3/personal-access-tokens", tok, "", ""); r.status != 429 || r.header.Get("Retry-After") != "10" {
		t.Fatalf("101st request: %d %q", r.status, r.header.Get("Retry-After"))
	}
	e.clock.Advance(10 * time.Second)
	if r := e.do("GET", "/v3/personal-access-tokens", tok, "", ""); r.status != 200 {
		t.Fatalf("after the window: %d", r.status)
	}
}
