package pat

import (
	"strings"
	"testing"
)

// sameIDByKey is SameID's definition (strings.EqualFold is another
// relation: it holds "ς" and "σ" equal, whose lower cases differ).
//
//lint:ignore SA6005 the definition under test, not a faster EqualFold
func sameIDByKey(a, b string) bool { return strings.ToLower(a) == strings.ToLower(b) }

func TestSameIDIsEqualIDKeys(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	for _, c := range [][2]string{
		{id, id}, {id, strings.ToUpper(id)}, {id, id[:31] + "e"}, {id, id[:31]}, {"", ""}, {"", "a"},
		{"@", "`"}, {"[", "{"}, {"Z", "z"}, {"z", "Z"}, {"A", "a"}, {"a\x00", "A\x00"},
		{"K", "\u212a"}, // the Kelvin sign lowers to k: lengths differ
		{"k", "\u212a"}, // likewise
		{"İ", "i̇"},     // a lower case longer than its upper case
		{"éA", "Éa"}, {"éa", "éb"}, {"aé", "Aé"}, {"ab\xff", "AB\xff"}, {"ab\xff", "ab\xfe"},
	} {
		if got, want := SameID(c[0], c[1]), sameIDByKey(c[0], c[1]); got != want {
			t.Errorf("SameID(%q, %q) = %v, IDKeys say %v", c[0], c[1], got, want)
		}
	}
}

func FuzzSameID(f *testing.F) {
	f.Add("0123456789abcdef0123456789abcdef", "0123456789ABCDEF0123456789abcdef")
	f.Add("K", "\u212a")
	f.Add("aé", "Aé")
	f.Fuzz(func(t *testing.T, a, b string) {
		if got, want := SameID(a, b), sameIDByKey(a, b); got != want {
			t.Fatalf("SameID(%q, %q) = %v, IDKeys say %v", a, b, got, want)
		}
	})
}
