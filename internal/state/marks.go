package state

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// MarkKey identifies a mark: one token under one policy. A token that starts
// matching a different policy gets a new mark and a new grace period, because
// its owner was warned about something else.
type MarkKey struct {
	TokenID string `json:"tokenId"`
	Policy  string `json:"policy"`
}

// KeyOf is the key of a token's mark under a policy, with the token id as
// pat.IDKey: the tenant takes ids in any case, and a mark must be found
// however the listing, a saved plan or an outbox entry spells its token.
// Compare MarkKeys only as made by KeyOf or Mark.Key.
func KeyOf(tokenID, policy string) MarkKey {
	return MarkKey{TokenID: pat.IDKey(tokenID), Policy: policy}
}

// String names the mark in error texts: the token id clipped (a listed id
// may be 64 KiB), a slash, the policy.
func (k MarkKey) String() string { return untrusted.ClipID(k.TokenID) + "/" + k.Policy }

// key is the bolt key: markKey of the token id (pat.IDKey, lowered here
// too for a MarkKey written as a literal; hashed when too long for a key or
// holding a NUL), NUL, the policy. Policy names hold no NUL (the config
// allows [a-z0-9-]), so the encoding is unambiguous, and the key sorts by
// token, then policy. Every read and write of a mark goes through here; the
// mark's value keeps the token id as listed whenever the key does not
// (markcodec.go), so a mark read back names the token an action must go to,
// never its hash.
func (k MarkKey) key() string { return markKey(k.TokenID, k.Policy) }

// Mark records that a token matched a policy with a grace period and is
// waiting for its owner to be warned and for the deadline to pass.
type Mark struct {
	TokenID   string `json:"tokenId"`
	TokenName string `json:"tokenName,omitempty"`
	OwnerID   string `json:"ownerId"`
	Policy    string `json:"policy"`
	Action    string `json:"action"`
	// Change says what the action changes beyond its name (the scopes a
	// patch sets, the fields an expire writes); the owner was warned about
	// this change, so a different one needs a new warning. "" for delete.
	Change string `json:"change,omitempty"`
	Reason string `json:"reason"`
	// Grace is the policy's grace period; the deadline is WarnedAt + Grace.
	Grace time.Duration `json:"grace"`
	// MarkedAt is when the token was first seen matching the policy.
	MarkedAt time.Time `json:"markedAt"`
	// WarnedAt is when a warning listing this mark was delivered; nil until
	// then. A failed delivery starts no clock.
	WarnedAt *time.Time `json:"warnedAt,omitempty"`
	// Deadline is WarnedAt + Grace; nil until the warning was delivered.
	Deadline *time.Time `json:"deadline,omitempty"`
}

// Key returns the mark's key.
func (m Mark) Key() MarkKey { return KeyOf(m.TokenID, m.Policy) }

// Due reports whether the owner was warned and the deadline has passed, so
// the action may run (if the token still matches the same policy).
func (m Mark) Due(now time.Time) bool {
	return m.WarnedAt != nil && m.Deadline != nil && !now.Before(*m.Deadline)
}

func (m Mark) validate() error {
	switch {
	case m.TokenID == "":
		return fmt.Errorf("mark: empty token id")
	case m.Policy == "":
		return fmt.Errorf("mark %s: empty policy", untrusted.ClipID(m.TokenID))
	case strings.ContainsRune(m.Policy, 0):
		// A token id may hold one (the key hashes it: markKey); a policy
		// name, from the config, may not.
		return fmt.Errorf("mark %q: NUL in policy", untrusted.ClipID(m.TokenID))
	case m.Grace < 0:
		return fmt.Errorf("mark %s: negative grace %s", m.Key(), m.Grace)
	}
	return nil
}

// upsertMark writes m, keeping the clock fields of an existing mark for the
// same key: re-evaluating a token every run must not restart its grace period.
// The descriptive fields (name, owner, action, reason, grace) take the new
// values. If the grace changed after the warning, the deadline follows it,
// but never to before the deadline the owner was told.
//
// A new mark's time is kept to the millisecond, the precision of the tenant's
// times and of every output, so that it takes fewer bytes (markcodec.go).
func upsertMark(t *markTable, m Mark, now time.Time) (stored Mark, created, wrote bool, err error) {
	if err := m.validate(); err != nil {
		return Mark{}, false, false, err
	}
	key := m.Key().key()
	raw := t.marks.Get([]byte(key))
	found := raw != nil
	var old Mark
	if found {
		if old, err = t.decode([]byte(key), raw); err != nil {
			return Mark{}, false, false, undecodable(bucketMarks, []byte(key), err)
		}
		m.MarkedAt, m.WarnedAt = old.MarkedAt, old.WarnedAt
	} else {
		m.WarnedAt = nil
		if m.MarkedAt.IsZero() {
			m.MarkedAt = now
		}
		m.MarkedAt = m.MarkedAt.UTC().Truncate(time.Millisecond)
	}
	m.Deadline = nil
	if m.WarnedAt != nil {
		var told *time.Time
		if found {
			told = old.Deadline
		}
		d := DeadlineAfter(*m.WarnedAt, m.Grace, told)
		m.Deadline = &d
	}
	enc, err := t.encode(key, m)
	if err != nil {
		return Mark{}, false, false, fmt.Errorf("encode mark %q: %w", key, err)
	}
	if found && bytes.Equal(enc, raw) {
		// Re-evaluated and unchanged: the common case of every run.
		return old, false, false, nil
	}
	if err := t.marks.Put([]byte(key), enc); err != nil {
		return Mark{}, false, false, fmt.Errorf("write mark %q: %w", key, err)
	}
	return m, !found, true, nil
}

// DeadlineAfter is the deadline of a mark warned at warned with grace: warned
// + grace, or the deadline the owner was already told (told, may be nil) if
// that is later. A shorter grace after the warning must not make the action
// come sooner than the warning said; a longer one gives more time.
func DeadlineAfter(warned time.Time, grace time.Duration, told *time.Time) time.Time {
	d := warned.Add(grace)
	if told != nil && told.After(d) {
		return *told
	}
	return d
}

// Marks returns every mark, ordered by key: by token id (as pat.IDKey;
// the few too long for a key, by their hash), then policy.
func (s *Store) Marks(ctx context.Context) ([]Mark, error) {
	var out []Mark
	err := s.view(ctx, func(tx *bolt.Tx) error {
		t := marksOf(tx)
		// Stats counts the keys page by page; growing the slice by append
		// instead allocates five times its final size.
		out = make([]Mark, 0, t.marks.Stats().KeyN)
		return t.marks.ForEach(func(k, v []byte) error {
			m, err := t.decode(k, v)
			if err != nil {
				return undecodable(bucketMarks, k, err)
			}
			out = append(out, m)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list marks: %w", err)
	}
	return out, nil
}

// DeleteMarks removes marks, for example after their action ran. Missing keys
// are not an error.
func (s *Store) DeleteMarks(ctx context.Context, keys ...MarkKey) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := bucket(tx, bucketMarks)
		for _, k := range keys {
			if err := b.Delete([]byte(k.key())); err != nil {
				return fmt.Errorf("delete mark %s: %w", k, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete marks: %w", err)
	}
	return nil
}

// MarkChanges is what ReconcileMarks did.
type MarkChanges struct {
	New     []Mark // created this time: their owners have not been warned
	Kept    []Mark // already marked: clock fields preserved
	Removed []Mark // no longer matching: unmarked
}

// ReconcileMarks makes the marks of the given policies equal to current, in
// one transaction: marks in current are created or refreshed, and marks of
// these policies that are not in current are removed (the token stopped
// matching, was used, was deleted, or was snoozed). Marks of other policies
// are untouched, so a run that evaluated only some policies (a per-policy
// schedule) does not unmark the rest.
//
// Call it only with a complete picture: after a failed or suspicious listing,
// an absent token is not evidence that it stopped matching.
func (s *Store) ReconcileMarks(ctx context.Context, policies []string, current []Mark) (MarkChanges, error) {
	scope := make(map[string]bool, len(policies))
	for _, p := range policies {
		scope[p] = true
	}
	var ch MarkChanges
	// A run that finds every mark as it was (the usual run) commits nothing.
	err := s.updateIfChanged(ctx, func(tx *bolt.Tx) (bool, error) {
		ch = MarkChanges{Kept: make([]Mark, 0, len(current))} // most marks are kept
		t := marksOf(tx)
		b := t.marks
		now := s.clock()
		changed := false
		seen := make(map[string]bool, len(current))
		for _, m := range current {
			if !scope[m.Policy] {
				return false, fmt.Errorf("mark %s: policy %q is not among the reconciled policies", m.Key(), m.Policy)
			}
			stored, created, wrote, err := upsertMark(t, m, now)
			if err != nil {
				return false, err
			}
			changed = changed || wrote
			seen[m.Key().key()] = true
			if created {
				ch.New = append(ch.New, stored)
			} else {
				ch.Kept = append(ch.Kept, stored)
			}
		}
		var stale []Mark
		// The reason shapes the marks that stay refer to; the others go.
		used := map[uint64]bool{}
		err := b.ForEach(func(k, v []byte) error {
			_, pol, _ := bytes.Cut(k, []byte{0})
			if seen[string(k)] || !scope[string(pol)] {
				if id, ok := shapeRef(v); ok {
					used[id] = true
				}
				return nil
			}
			m, err := t.decode(k, v)
			if err != nil {
				return undecodable(bucketMarks, k, err)
			}
			stale = append(stale, m)
			return nil
		})
		if err != nil {
			return false, err
		}
		// Deleting while iterating with ForEach is not allowed in bbolt.
		for _, m := range stale {
			if err := b.Delete([]byte(m.Key().key())); err != nil {
				return false, fmt.Errorf("delete mark %s: %w", m.Key(), err)
			}
		}
		ch.Removed = stale
		swept, err := t.sweep(used)
		if err != nil {
			return false, err
		}
		return changed || len(stale) > 0 || swept, nil
	})
	if err != nil {
		return MarkChanges{}, fmt.Errorf("reconcile marks: %w", err)
	}
	return ch, nil
}

// warnMarks starts the grace clock of the given marks at at (the delivery
// time of the warning, kept to the millisecond as a mark's times are).
// Marks already warned keep their first warning time; missing marks are
// skipped. It returns the marks whose clock started now.
func warnMarks(tx *bolt.Tx, keys []MarkKey, at time.Time) ([]Mark, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	t := marksOf(tx)
	at = at.UTC().Truncate(time.Millisecond)
	var started []Mark
	for _, k := range keys {
		m, found, err := t.get(k.key())
		if err != nil {
			return nil, err
		}
		if !found || m.WarnedAt != nil {
			continue
		}
		w := at
		d := at.Add(m.Grace)
		m.WarnedAt, m.Deadline = &w, &d
		if err := t.put(k.key(), m); err != nil {
			return nil, err
		}
		started = append(started, m)
	}
	return started, nil
}
