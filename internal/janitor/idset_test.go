package janitor

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// The id set tells ids apart exactly as pat.IDKey does (without regard to
// case), for ids of the tenant's form and any other, and gives back the
// spelling it saw first.
func TestIDSetIsCaseInsensitiveAndRemembersTheSpelling(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	ref := map[string]string{} // IDKey -> first spelling
	s := newIDSet(0)
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
		if got := s.spelling(id); got != first {
			t.Fatalf("spelling(%q) = %q, want %q", id, got, first)
		}
	}
	if s.len() != len(ref) {
		t.Fatalf("len %d, want %d", s.len(), len(ref))
	}
	n := 0
	s.each(func(id string, _ idEntry) {
		n++
		if ref[strings.ToLower(id)] != id {
			t.Fatalf("each gave %q, first spelt %q", id, ref[strings.ToLower(id)])
		}
	})
	if n != len(ref) {
		t.Fatalf("each gave %d ids, want %d", n, len(ref))
	}
}
