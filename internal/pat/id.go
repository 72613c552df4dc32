package pat

import (
	"strings"
	"unicode/utf8"
)

// IDKey is the form of an id (token, owner, client) that comparisons use. A
// tenant treats ids without regard to case: a token listed as "ab12…" is
// deleted by a DELETE of "AB12…", and PATJANITOR_CLIENT_ID=AB12… logs in as
// it. So every decision that depends on an id (the own credential, the
// exclude lists, ownerIds, snoozes, grace marks, saved plans, owner lookups)
// compares IDKeys, never the spellings. Requests to the tenant still carry
// the id as the tenant listed it.
//
// For the usual lowercase id it returns id itself, without allocating.
func IDKey(id string) string { return strings.ToLower(id) }

// SameID reports whether a and b name the same object of the tenant:
// IDKey(a) == IDKey(b). Ids of ASCII characters, the tenant's, are
// compared in place (the engine compares every listed token's id with its
// own credential's); others take IDKey, whose lower case may change a
// string's length.
func SameID(a, b string) bool {
	if len(a) == len(b) {
		i := 0
		for ; i < len(a); i++ {
			x, y := a[i], b[i]
			if x|y >= utf8.RuneSelf {
				break
			}
			if x != y && lowerASCII(x) != lowerASCII(y) {
				// The ids are ASCII up to here, and their lower cases
				// differ here.
				return false
			}
		}
		if i == len(a) {
			return true
		}
	}
	return IDKey(a) == IDKey(b)
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// CanonicalID reports whether id has the form of the tenant's ids: 32
// lowercase hex characters. Others still work (they are compared by IDKey);
// validate warns about them, since a typo in an exclusion is otherwise
// silent.
func CanonicalID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
