package state

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// An id from a listing (a token's, an owner's, an API client's) may be up
// to 64 KiB (api.MaxFieldBytes), and bbolt refuses a key over 32 KiB
// (bolt.MaxKeySize). A record keyed by such an id could not be written, and
// the refusal failed the whole transaction it was part of: every owner's
// warnings of the run, run after run. An id longer than maxIDKey is keyed by
// hashedKey instead: fixed length, the same each time, unique. The record's
// value keeps the id as listed.
//
// Real ids (32 hex characters) are far shorter, so no stored key changes:
// keys that long could never be stored.

// maxIDKey is the longest id keyed as itself.
const maxIDKey = 1024

// hashedKey is the key of key (a pat.IDKey, too long to be a key itself):
// "SHA256-" and its hex SHA-256. The prefix is upper case, which pat.IDKey
// (strings.ToLower) never yields: no listed id keys as another's hash. With
// a lower-case prefix, a tenant listing an id that spells the hash of a long
// one had both share one record, each read as and written over the other's.
func hashedKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hashedKeyPrefix + hex.EncodeToString(sum[:])
}

const hashedKeyPrefix = "SHA256-"

// idKey is the key of a record kept per id (an owner's last delivery, a
// disabled API client): pat.IDKey of the id, or hashedKey of it when it is
// longer than maxIDKey. Such records' readers find them by the id they are
// given, or by the id in the value, never by parsing the key.
func idKey(id string) string {
	key := pat.IDKey(id)
	if len(key) > maxIDKey {
		return hashedKey(key)
	}
	return key
}

// markIDKey is the id part of a mark's key (a token's, or an API client's):
// pat.IDKey of the id, or hashedKey of it when it is longer than maxIDKey
// or holds a NUL. A mark's key is "id NUL policy", so an id with a NUL
// (JSON's \u0000, which a listing may carry) would read back as another id
// and policy: such ids were refused, and the refusal failed the whole
// reconciliation, as a long id did. Marks with those ids were never stored,
// so here too no stored key changes.
func markIDKey(id string) string {
	key := pat.IDKey(id)
	if len(key) > maxIDKey || strings.IndexByte(key, 0) >= 0 {
		return hashedKey(key)
	}
	return key
}
