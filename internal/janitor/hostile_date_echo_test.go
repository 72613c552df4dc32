package janitor_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/patjanitor/patjanitor/internal/janitor"
)

// echoDate is a proxy that answers with the request's Authorization
// header as its Date (a proxy that logs or reflects headers), so the
// access token stands where the clock check reads the tenant's time.
type echoDate struct {
	http.ResponseWriter
	value string
}

func (w echoDate) WriteHeader(code int) {
	w.Header()["Date"] = []string{w.value}
	w.ResponseWriter.WriteHeader(code)
}

func (w echoDate) Write(b []byte) (int, error) {
	w.Header()["Date"] = []string{w.value}
	return w.ResponseWriter.Write(b)
}

func (w echoDate) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// A proxy puts the bearer token the client sent into the Date header of
// its answers, alone or after a valid date. The clock check reads the Date
// only as a time: the raw header must never be quoted, neither in the
// warning about an unusable Date, nor in the error of a run refused for
// mixed Dates, nor in the journal. (A guard: no defect found; a change that
// quoted the header in the warning or the error would fail here.)
func TestHostileDateHeaderEchoingTheBearerIsNeverQuoted(t *testing.T) {
	for _, tc := range []struct {
		name        string
		listingOnly bool // only the lastUsed listing's answer echoes: mixed Dates
		format      func(auth string) string
	}{
		{"every answer", false, func(a string) string { return a }},
		{"listing after a date", true, func(a string) string { return "Sun, 06 Dec 2026 00:00:00 GMT " + a }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var bearers []string
			front := func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					auth := r.Header.Get("Authorization")
					if tok, ok := strings.CutPrefix(auth, "Bearer "); ok && tok != "" {
						mu.Lock()
						bearers = append(bearers, tok)
						mu.Unlock()
					}
					if auth != "" && (!tc.listingOnly || strings.Contains(r.URL.Query().Get("filters"), "lastUsed le")) {
						w = echoDate{w, tc.format(auth)}
					}
					h.ServeHTTP(w, r)
				})
			}
			g := newGraceEnvOpts(t, graceConfig, envOpts{wrap: front})
			g.logs.Reset()
			_, err := g.engine().Run(context.Background(), janitor.RunInput{})
			if tc.listingOnly {
				if err == nil || !strings.Contains(err.Error(), "some of the run's answers carry a Date header and some none") {
					t.Fatalf("run with the listing's Date garbled and the others dated = %v, want it refused (mixed Dates)", err)
				}
				g.requireNoMutations()
			} else if err != nil {
				t.Fatalf("run: %v (an unusable Date on every answer is a warning, as a proxy stripping it)", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(bearers) == 0 {
				t.Fatal("no bearer token seen: the test echoes nothing")
			}
			journal, rerr := os.ReadFile(g.jpath)
			if rerr != nil && !os.IsNotExist(rerr) {
				t.Fatal(rerr)
			}
			if !strings.Contains(g.logs.String(), "no usable Date header") && !tc.listingOnly {
				t.Errorf("no warning about the unusable Date:\n%s", g.logs.String())
			}
			for _, tok := range bearers {
				if strings.Contains(g.logs.String(), tok) {
					t.Errorf("the logs quote the bearer token the proxy echoed in Date:\n%s", g.logs.String())
				}
				if err != nil && strings.Contains(err.Error(), tok) {
					t.Errorf("the run's error quotes the bearer token: %v", err)
				}
				if strings.Contains(string(journal), tok) {
					t.Error("the journal holds the bearer token echoed in Date")
				}
			}
		})
	}
}
