package janitor

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// The id set tells ids apart exactly as pat.IDKey does (without regard to
// case), for ids of the tenant's form and any other, and gives back the
// spelling it saw first; a lean set does the same, and the owners' lean
// set, which keeps no spelling of an id of the tenant's form, still tells
// the ids apart and gives each back in one of its spellings.
func TestIDSetIsCaseInsensitiveAndRemembersTheSpelling(t *testing.T) {
	for _, kind := range []string{"whole", "lean", "lean, unspelt"} {
		t.Run(kind, func(t *testing.T) {
			s := newIDSet(0)
			if kind != "whole" {
				s = newLeanIDSet(0, kind == "lean")
			}
			testIDSet(t, s, kind != "lean, unspelt")
		})
	}
}

func testIDSet(t *testing.T, s *idSet, spelt bool) {
	sameSpelling := func(got, want string) bool {
		if spelt {
			return got == want
		}
		return strings.EqualFold(got, want)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	ref := map[string]string{} // IDKey -> first spelling
	randomID := func() string {
		switch rng.IntN(4) {
		case 0:
			return fmt.Sprintf("svc-%d", rng.IntN(50))
		case 1:
			return fmt.Sprintf("%031x", rng.IntN(200)) // 31 characters: not the tenant's form
		case 2:
			return fmt.Sprintf("%031xg", rng.IntN(50)) // 32, not hex
		}
		return fmt.Sprintf("%032x", rng.IntN(300))
	}
	recase := func(id string) string {
		b := []byte(id)
		for i := range b {
			if rng.IntN(2) == 0 {
				b[i] = strings.ToUpper(string(b[i]))[0]
			}
		}
		return string(b)
	}
	for range 5000 {
		id := recase(randomID())
		k := strings.ToLower(id)
		first, seen := ref[k]
		if dup := s.add(id, idEntry{}); dup != seen {
			t.Fatalf("add(%q) = %v, want %v", id, dup, seen)
		}
		if !seen {
			ref[k], first = id, id
		}
		if !s.has(recase(id)) || s.has(id+"x") != (ref[k+"x"] != "") {
			t.Fatalf("has(%q) is wrong", id)
		}
		if got := s.spelling(id); !sameSpelling(got, first) {
			t.Fatalf("spelling(%q) = %q, want %q", id, got, first)
		}
	}
	if s.len() != len(ref) {
		t.Fatalf("len %d, want %d", s.len(), len(ref))
	}
	// common finds every id of one set in another, in any case.
	o := newIDSet(0)
	want := map[string]bool{}
	for k, first := range ref {
		if rng.IntN(3) == 0 {
			o.add(recase(first), idEntry{pos: 7})
			want[k] = true
		}
	}
	o.add("not-in-s", idEntry{})
	got := map[string]bool{}
	s.common(o, func(id string, _, theirs idEntry) {
		if !sameSpelling(id, ref[strings.ToLower(id)]) || theirs.pos != 7 {
			t.Fatalf("common gave %q (first spelt %q), their pos %d", id, ref[strings.ToLower(id)], theirs.pos)
		}
		got[strings.ToLower(id)] = true
	})
	if len(got) != len(want) {
		t.Fatalf("common found %d ids, want %d", len(got), len(want))
	}
	// merge adds what the other set holds and the set does not, keeping
	// its own first spellings.
	n := s.len()
	s.merge(o)
	if s.len() != n+1 || !s.has("NOT-IN-S") || s.spelling("not-in-S") != "not-in-s" {
		t.Fatalf("after merge: len %d (was %d), has not-in-s %v", s.len(), n, s.has("not-in-s"))
	}
	for k, first := range ref {
		if !sameSpelling(s.spelling(k), first) {
			t.Fatalf("after merge, spelling(%q) = %q, want %q", k, s.spelling(k), first)
		}
	}
}

// Two copies of a token that differ in any field hash differently, also
// when the difference only moves a NUL (which a JSON string may hold, as
// \u0000) from one string to the next: the strings were written
// NUL-terminated, so ["a\x00", "b"] and ["a", "\x00b"] were one digest, and
// so were a name and an owner type that traded a "\x00T".
func TestTokenHashTellsCopiesApart(t *testing.T) {
	base := func() pat.Token {
		return pat.Token{ID: "t", Name: "n", Owner: pat.Owner{Type: "T", ID: "o", Name: "O"}, Scope: pat.ScopesOf("a", "b")}
	}
	pairs := []func(a, b *pat.Token){
		func(a, b *pat.Token) { a.Scope, b.Scope = pat.ScopesOf("a\x00", "b"), pat.ScopesOf("a", "\x00b") },
		func(a, b *pat.Token) { a.Name, a.Owner.Type, b.Name, b.Owner.Type = "n\x00T", "", "n", "T\x00" },
		func(a, b *pat.Token) { a.Owner.ID, a.Owner.Name, b.Owner.ID, b.Owner.Name = "o\x00", "O", "o", "\x00O" },
	}
	for i, p := range pairs {
		a, b := base(), base()
		p(&a, &b)
		if tokenHash(&a) == tokenHash(&b) {
			t.Errorf("pair %d: %+v and %+v hash alike", i, a, b)
		}
	}
	if a, b := base(), base(); tokenHash(&a) != tokenHash(&b) {
		t.Error("two equal copies hash differently")
	}
}
