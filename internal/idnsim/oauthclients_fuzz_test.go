package idnsim

import (
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// FuzzOAuthClientFilter: the API client endpoint accepts exactly what the
// PAT endpoint accepts (the same documented support list), and its compiled
// predicate agrees with the generic evaluation on every seeded client.
func FuzzOAuthClientFilter(f *testing.F) {
	for _, s := range []string{
		"lastUsed isnull", "lastUsed le 2026-01-02T03:04:05.000Z", "lastUsed le 2026-01-02T03:04:05Z",
		`lastUsed le "2026-01-02T03:04:05Z"`, "lastUsed gt 2026-01-02T03:04:05Z", "name eq \"x\"",
		"lastUsed le 2026-01-02T03:04:05Z or lastUsed isnull", "not lastUsed isnull", "", "lastUsed",
	} {
		f.Add(s)
	}
	s := New(Options{Clock: func() time.Time { return t0 }})
	s.SeedOAuthClients(1)
	clients := s.oc.sorted()
	f.Fuzz(func(t *testing.T, filter string) {
		match, err := CompileOAuthClientFilter(filter)
		patMatch, patErr := CompilePATFilter(filter)
		if (err == nil) != (patErr == nil) || (match == nil) != (patMatch == nil) {
			t.Fatalf("%q: API clients say %v, PATs say %v", filter, err, patErr)
		}
		if err != nil || match == nil {
			return
		}
		n, perr := ParseFilter(filter)
		if perr != nil {
			t.Fatalf("accepted %q, which does not parse: %v", filter, perr)
		}
		for _, c := range clients {
			get := func(field string) (Value, bool) {
				if field != "lastUsed" {
					return Value{}, false
				}
				if c.LastUsed == nil {
					return NullValue(), true
				}
				lu, _ := pat.ParseTime(*c.LastUsed)
				return TimeValue(lu), true
			}
			if got, want := match(c), n.Eval(get); got != want {
				t.Fatalf("%q on client %s: compiled %v, evaluated %v", filter, c.Name, got, want)
			}
		}
	})
}
