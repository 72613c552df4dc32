package idtable

import (
	"strings"
	"testing"
)

// isHexID is Parse's definition: 32 characters, each a hex digit in either
// case.
func isHexID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !strings.ContainsRune("0123456789abcdefABCDEF", rune(id[i])) {
			return false
		}
	}
	return true
}

// sameLower is pat.SameID's definition (pat.IDKey equality).
//
//lint:ignore SA6005 the definition compared with, not a faster EqualFold
func sameLower(a, b string) bool { return strings.ToLower(a) == strings.ToLower(b) }

// FuzzParse checks Parse against its definition for any input: ok exactly
// for 32 hex characters, Spell gives the id back in every case pattern, and
// two ids have the same key exactly when their lower cases are equal (the
// id set's keys agree with pat.IDKey).
func FuzzParse(f *testing.F) {
	f.Add("0123456789abcdef0123456789ABCDEF", "0123456789ABCDEF0123456789abcdef")
	f.Add(strings.Repeat("0", 32), strings.Repeat("0", 31)+"g")
	f.Add("AbCdEf0123456789aBcDeF0123456789", "abcdef0123456789abcdef012345678\xff")
	f.Fuzz(func(t *testing.T, a, b string) {
		ka, ua, oka := Parse(a)
		if oka != isHexID(a) {
			t.Fatalf("Parse(%q) ok = %v", a, oka)
		}
		if kb, ub, okb := Parse([]byte(a)); kb != ka || ub != ua || okb != oka {
			t.Fatalf("Parse of %q as bytes differs", a)
		}
		if !oka {
			return
		}
		if s := Spell(ka, ua); s != a {
			t.Fatalf("Spell(Parse(%q)) = %q", a, s)
		}
		if s := Spell(ka, 0); s != strings.ToLower(a) {
			t.Fatalf("Spell(key of %q, 0) = %q, not its lower case", a, s)
		}
		kb, _, okb := Parse(b)
		if okb && (ka == kb) != sameLower(a, b) {
			t.Fatalf("keys of %q and %q equal: %v; lower cases equal: %v", a, b, ka == kb, sameLower(a, b))
		}
	})
}
