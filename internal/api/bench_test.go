package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/secret"
)

const benchTokens = 100_000

// benchListing renders a realistic 100,000-token v3 listing (the simulator's
// seeded population, as the simulator writes it).
func benchListing(b *testing.B) []byte {
	b.Helper()
	env := &simEnv{sim: idnsim.New(idnsim.Options{RateLimit: -1})}
	env.sim.Seed(benchTokens-1, 1) // plus the admin PAT
	srv := httptest.NewServer(env.sim)
	defer srv.Close()
	admin := env.sim.Admin()
	c, err := New(Config{BaseURL: srv.URL, ClientID: admin.ClientID, ClientSecret: secret.New(admin.ClientSecret), RateLimit: RateLimit{Requests: -1}})
	if err != nil {
		b.Fatal(err)
	}
	toks, err := c.ListTokens(b.Context(), ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if len(toks) != benchTokens {
		b.Fatalf("%d tokens", len(toks))
	}
	body, err := json.Marshal(toks)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkListTokens measures the client on a 100,000-token listing served
// from memory by a loopback httptest server, so that the numbers are the
// client's (HTTP, streaming decode, the []pat.Token result) and not the
// server's rendering. Run:
//
//	go test -run='^$' -bench=BenchmarkListTokens -benchmem ./internal/api
func BenchmarkListTokens(b *testing.B) {
	body := benchListing(b)
	ft := &fakeTenant{expiresIn: 43200}
	ft.api = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	}
	srv := httptest.NewServer(http.HandlerFunc(ft.serve))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, ClientID: testClientID, ClientSecret: secret.New(testSecret), RateLimit: RateLimit{Requests: -1}})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		toks, err := c.ListTokens(b.Context(), ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(toks) != benchTokens {
			b.Fatalf("%d tokens", len(toks))
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu).Milliseconds())/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(len(body))/1e6, "MB/listing")
}

// BenchmarkListTokensSim is the same listing through the simulator (its
// rendering included, in the same process).
func BenchmarkListTokensSim(b *testing.B) {
	sim := idnsim.New(idnsim.Options{RateLimit: -1})
	sim.Seed(benchTokens-1, 1)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	admin := sim.Admin()
	c, err := New(Config{BaseURL: srv.URL, ClientID: admin.ClientID, ClientSecret: secret.New(admin.ClientSecret), RateLimit: RateLimit{Requests: -1}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		toks, err := c.ListTokens(b.Context(), ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(toks) != benchTokens {
			b.Fatalf("%d tokens", len(toks))
		}
	}
}

// cpuTime is the process's CPU time (user and system) so far: on a shared
// machine it varies less than the wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDecodeTokenArray is the decode alone, from memory.
func BenchmarkDecodeTokenArray(b *testing.B) {
	body := benchListing(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		toks, err := decodeTokenArray(bytes.NewReader(body))
		if err != nil || len(toks) != benchTokens {
			b.Fatal(err, len(toks))
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu).Milliseconds())/float64(b.N), "cpu-ms/op")
}

// BenchmarkDecodeTokenArrayStd is the reference decoder (encoding/json into
// pat.Token), for comparison.
func BenchmarkDecodeTokenArrayStd(b *testing.B) {
	body := benchListing(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		toks, err := stdDecodeTokenArray(bytes.NewReader(body))
		if err != nil || len(toks) != benchTokens {
			b.Fatal(err, len(toks))
		}
	}
}
