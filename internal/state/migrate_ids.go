package state

import (
	"bytes"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// migrateToV2 rewrites the keys that hold ids in pat.IDKey form: marks
// (token id), snoozes (token id) and deliveries (owner id). Schema 1 keyed
// them by the id as spelled (the listing's, or the operator's for `snooze`),
// and a tenant takes ids in any case, so a snooze typed in capitals did not
// protect the token listed in lowercase. Readers of this version look keys
// up by IDKey; the migration makes the stored keys agree.
//
// Two entries that differ only in the case of their id become one; the one
// kept is the one that protects more (see keepMark, keepSnooze,
// keepDelivery).
func migrateToV2(tx *bolt.Tx) error {
	steps := []struct {
		bucket string
		key    func(k []byte) []byte
		keep   func(a, b []byte) ([]byte, error)
	}{
		{bucketMarks, markKeyLower, keepMark},
		{bucketSnoozes, lower, keepSnooze},
		{bucketDeliveries, lower, keepDelivery},
	}
	for _, s := range steps {
		if err := rekey(bucket(tx, s.bucket), s.key, s.keep); err != nil {
			return fmt.Errorf("%s: %w", s.bucket, err)
		}
	}
	return nil
}

func lower(k []byte) []byte { return []byte(pat.IDKey(string(k))) }

// markKeyLower lowers the token id part of "tokenID\x00policy".
func markKeyLower(k []byte) []byte {
	tok, pol, _ := bytes.Cut(k, []byte{0})
	return []byte(pat.IDKey(string(tok)) + "\x00" + string(pol))
}

// rekey moves every entry of b whose key changes under key, merging entries
// that land on the same key with keep.
func rekey(b *bolt.Bucket, key func([]byte) []byte, keep func(a, b []byte) ([]byte, error)) error {
	type entry struct{ old, v []byte }
	var moved []entry
	err := b.ForEach(func(k, v []byte) error {
		if !bytes.Equal(key(k), k) {
			moved = append(moved, entry{old: bytes.Clone(k), v: bytes.Clone(v)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Deleting while iterating with ForEach is not allowed in bbolt.
	for _, e := range moved {
		if err := b.Delete(e.old); err != nil {
			return fmt.Errorf("delete %q: %w", e.old, err)
		}
	}
	for _, e := range moved {
		nk, v := key(e.old), e.v
		if cur := b.Get(nk); cur != nil {
			if v, err = keep(bytes.Clone(cur), v); err != nil {
				return fmt.Errorf("merge %q into %q: %w", e.old, nk, err)
			}
		}
		if err := b.Put(nk, v); err != nil {
			return fmt.Errorf("write %q: %w", nk, err)
		}
	}
	return nil
}

func decodePair[T any](a, b []byte) (x, y T, err error) {
	if err = json.Unmarshal(a, &x); err == nil {
		err = json.Unmarshal(b, &y)
	}
	return x, y, err
}

// keepMark keeps a mark whose owner was warned over one not warned (the
// warning was delivered; a new mark would warn again), of two warned ones
// the later deadline (never act sooner than a warning said), of two unwarned
// ones the older.
func keepMark(a, b []byte) ([]byte, error) {
	x, y, err := decodePair[Mark](a, b)
	switch {
	case err != nil:
		return nil, err
	case (x.Deadline != nil) != (y.Deadline != nil):
		if x.Deadline != nil {
			return a, nil
		}
		return b, nil
	case x.Deadline != nil:
		if y.Deadline.After(*x.Deadline) {
			return b, nil
		}
		return a, nil
	case y.MarkedAt.Before(x.MarkedAt):
		return b, nil
	}
	return a, nil
}

// keepSnooze keeps the snooze that lasts longer.
func keepSnooze(a, b []byte) ([]byte, error) {
	x, y, err := decodePair[Snooze](a, b)
	switch {
	case err != nil:
		return nil, err
	case y.Until.After(x.Until):
		return b, nil
	}
	return a, nil
}

// keepDelivery keeps the later delivery (repeat suppression counts from it).
func keepDelivery(a, b []byte) ([]byte, error) {
	x, y, err := decodePair[Delivery](a, b)
	switch {
	case err != nil:
		return nil, err
	case y.SentAt.After(x.SentAt):
		return b, nil
	}
	return a, nil
}
