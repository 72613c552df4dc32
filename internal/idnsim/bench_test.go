package idnsim

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkListAll100k lists a 100,000-token tenant over loopback HTTP, the
// whole listing read by the client, as the engine's plan does.
//
//	go test -run='^$' -bench=ListAll100k -benchmem ./internal/idnsim
func BenchmarkListAll100k(b *testing.B) {
	s := New(Options{RateLimit: -1, Clock: newClock().Now})
	s.Seed(100_000, 1)
	srv := httptest.NewServer(s)
	defer srv.Close()
	a := s.Admin()
	e := &env{t: &testing.T{}, sim: s, srv: srv}
	tok := e.login(a.ClientID, a.ClientSecret)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v3/personal-access-tokens", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 {
			b.Fatalf("%d %v", res.StatusCode, err)
		}
		b.SetBytes(n)
	}
}

// BenchmarkListAll100kCold is the first listing of each token: every
// record's JSON cache is empty.
func BenchmarkListAll100kCold(b *testing.B) {
	s := New(Options{RateLimit: -1, Clock: newClock().Now})
	s.Seed(100_000, 1)
	srv := httptest.NewServer(s)
	a := s.Admin()
	e := &env{t: &testing.T{}, sim: s, srv: srv}
	tok := e.login(a.ClientID, a.ClientSecret)
	srv.Close()
	req := httptest.NewRequest(http.MethodGet, "/v3/personal-access-tokens", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		for _, r := range s.pop.order {
			r.enc[0].Store(nil)
		}
		b.StartTimer()
		w := &discardWriter{header: http.Header{}}
		s.ServeHTTP(w, req)
		b.SetBytes(w.n)
	}
}

// BenchmarkListAll100kHandler is the simulator's share alone: the handler
// writing the listing to a discarding ResponseWriter.
func BenchmarkListAll100kHandler(b *testing.B) {
	s := New(Options{RateLimit: -1, Clock: newClock().Now})
	s.Seed(100_000, 1)
	srv := httptest.NewServer(s)
	a := s.Admin()
	e := &env{t: &testing.T{}, sim: s, srv: srv}
	tok := e.login(a.ClientID, a.ClientSecret)
	srv.Close()
	req := httptest.NewRequest(http.MethodGet, "/v3/personal-access-tokens", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := &discardWriter{header: http.Header{}}
		s.ServeHTTP(w, req)
		if w.status != 200 {
			b.Fatalf("status %d", w.status)
		}
		b.SetBytes(w.n)
	}
}

type discardWriter struct {
	header http.Header
	status int
	n      int64
}

func (w *discardWriter) Header() http.Header { return w.header }
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = 200
	}
	w.n += int64(len(p))
	return len(p), nil
}
