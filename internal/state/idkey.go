package state

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// An id from a listing (a token's, an owner's, an API client's) may be up
// to 64 KiB (api.MaxFieldBytes), and bbolt refuses a key over 32 KiB
// (bolt.MaxKeySize). A record keyed by such an id could not be written, and
// the refusal failed the whole transaction it was part of: every owner's
// warnings of the run, run after run. Such an id is keyed by hashedKey
// instead: fixed length, the same each time, unique. The record's value
// keeps the id as listed.
//
// Which ids are hashed is what earlier versions could not store, so no
// stored key changes: a record an earlier version wrote under the id itself
// is found, kept, removed and deleted under that key still (keyed anew, it
// would be left behind where no reader deletes it, a grace mark with its old
// clock among them). The owners' deliveries hash ids over maxIDKey, as they
// have since they first did (deliveryKey); marks, snoozes and disabled
// records were keyed by the id whenever bbolt took the key (idKey, markKey).

// maxIDKey is the longest owner id a delivery is keyed by.
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

// deliveryKey is the key of an owner's last delivery: pat.IDKey of the id,
// or hashedKey of it when it is longer than maxIDKey. Its readers find it
// by the id they are given, never by parsing the key.
func deliveryKey(ownerID string) string {
	key := pat.IDKey(ownerID)
	if len(key) > maxIDKey {
		return hashedKey(key)
	}
	return key
}

// idKey is the key of a record kept per id (a token's snooze, a disabled
// API client): pat.IDKey of the id, or hashedKey of it when bbolt would
// refuse that key. Such records' readers find them by the id they are
// given, or by the id in the value, never by parsing the key.
func idKey(id string) string {
	key := pat.IDKey(id)
	if len(key) > bolt.MaxKeySize {
		return hashedKey(key)
	}
	return key
}

// markKey is the key of a grace mark (a token's, or an API client's): the
// id as pat.IDKey, NUL, the policy; the id part is hashedKey of it when
// bbolt would refuse the key, or when the id holds a NUL (the key would
// read back as another id and policy: such ids were refused, and the
// refusal failed the whole reconciliation, as a long id did).
func markKey(id, policy string) string {
	key := pat.IDKey(id)
	if len(key)+1+len(policy) > bolt.MaxKeySize || strings.IndexByte(key, 0) >= 0 {
		key = hashedKey(key)
	}
	return key + "\x00" + policy
}
