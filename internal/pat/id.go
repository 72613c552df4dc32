package pat

import "strings"

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

// SameID reports whether a and b name the same object of the tenant.
func SameID(a, b string) bool { return IDKey(a) == IDKey(b) }

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
