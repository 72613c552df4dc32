package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/pat"
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
	for b.Loop() {
		toks, err := c.ListTokens(b.Context(), ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(toks) != benchTokens {
			b.Fatalf("%d tokens", len(toks))
		}
	}
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

// BenchmarkDecodeTokenArray is the decode alone, from memory.
func BenchmarkDecodeTokenArray(b *testing.B) {
	body := benchListing(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		toks, err := decodeTokenArray(bytes.NewReader(body))
		if err != nil || len(toks) != benchTokens {
			b.Fatal(err, len(toks))
		}
	}
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

// BenchmarkDecodeForms: the hand-written decoder and the library forms, in the
// streaming design (each token decoded into one variable and dropped), one
// sub-benchmark after the other so that they see the same machine.
func BenchmarkDecodeForms(b *testing.B) {
	body := benchListing(b)
	forms := []struct {
		name string
		each func(io.Reader, func(*pat.Token) error) error
	}{
		{"handwritten", func(r io.Reader, fn func(*pat.Token) error) error {
			d := newListingDecoder(r)
			if err := d.expect('[', "["); err != nil {
				return err
			}
			for {
				var t pat.Token
				if err := d.token(&t); err != nil {
					return err
				}
				if err := fn(&t); err != nil {
					return err
				}
				c, err := d.peek()
				if err != nil {
					return err
				}
				d.pos++
				if c == ']' {
					return nil
				}
			}
		}},
		{"jsontext", func(r io.Reader, fn func(*pat.Token) error) error { return newV2Decoder(r).each(fn) }},
		{"v2reflect", func(r io.Reader, fn func(*pat.Token) error) error {
			toks, err := v2ReflectDecodeTokenArray(r)
			for i := range toks {
				_ = fn(&toks[i])
			}
			return err
		}},
		{"std", func(r io.Reader, fn func(*pat.Token) error) error {
			toks, err := stdDecodeTokenArray(r)
			for i := range toks {
				_ = fn(&toks[i])
			}
			return err
		}},
	}
	for round := range 2 {
		for _, f := range forms {
			b.Run(fmt.Sprintf("%s/%d", f.name, round), func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					n := 0
					if err := f.each(bytes.NewReader(body), func(*pat.Token) error { n++; return nil }); err != nil || n != benchTokens {
						b.Fatal(err, n)
					}
				}
			})
		}
	}
}
