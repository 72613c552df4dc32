package idnsim

import (
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// fuzzTokens are the tokens every accepted filter is evaluated against.
func fuzzTokens() []pat.Token {
	at := func(s string) *time.Time {
		t, _ := time.Parse(time.RFC3339Nano, s)
		return &t
	}
	return []pat.Token{
		{ID: "a", Name: "ci-deploy", Created: *at("2025-01-01T00:00:00Z"), LastUsed: at("2026-08-28T03:00:00Z"), Scope: pat.ScopesOf(pat.ScopeAll)},
		{ID: "b", Name: "Temp", Created: *at("2026-01-01T00:00:00Z"), Scope: pat.Scopes{Null: true}, Managed: true},
		{ID: "c", Name: "jenkins", Created: *at("2024-06-01T00:00:00Z"), LastUsed: at("2026-11-25T23:59:59.999Z"), Scope: pat.ScopesOf("idn:sources:read")},
		{ID: "d", Name: "old", Created: *at("2020-01-01T00:00:00Z"), LastUsed: at("2020-01-02T00:00:00.001Z"), Scope: pat.ScopesOf()},
	}
}

// FuzzParseFilter checks that the parser never panics, that an accepted filter
// renders to a canonical form that parses back to the same rendering and the
// same results, and that the PAT endpoint's compiled predicate agrees with the
// generic evaluator on everything it accepts.
func FuzzParseFilter(f *testing.F) {
	toks := fuzzTokens()
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseFilter(s)
		if err == nil {
			canon := n.String()
			n2, err := ParseFilter(canon)
			if err != nil {
				t.Fatalf("%q renders as %q, which does not parse: %v", s, canon, err)
			}
			if again := n2.String(); again != canon {
				t.Fatalf("%q: rendering is not stable: %q then %q", s, canon, again)
			}
			for i := range toks {
				get := tokenField(&toks[i])
				if n.Eval(get) != n2.Eval(get) {
					t.Fatalf("%q and its rendering %q disagree on token %s", s, canon, toks[i].ID)
				}
			}
		}
		match, perr := CompilePATFilter(s)
		if perr != nil || match == nil {
			return
		}
		if err != nil {
			t.Fatalf("the PAT endpoint accepts %q, which does not parse: %v", s, err)
		}
		for i := range toks {
			if got, want := match(&toks[i]), n.Eval(tokenField(&toks[i])); got != want {
				t.Fatalf("%q on token %s: compiled %v, evaluated %v", s, toks[i].ID, got, want)
			}
		}
	})
}
