package state

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// bucketClientMarks holds the grace marks of API clients (an apiClients
// policy with grace), by lowercase client id NUL policy. They live apart
// from the token marks: a client has no owner, its warning goes to the
// notify.apiClients receivers, and the token marks' storage can change
// without the client marks noticing. Like the disabled-clients bucket it is
// created by its first write: a store without it has no client marks.
const bucketClientMarks = "client-marks"

// ClientMark records that an API client matched an apiClients policy with a
// grace period and waits for the notify.apiClients receivers to be warned
// and for the deadline to pass. The clock rules are the token marks': the
// clock starts when a digest listing the mark is delivered (never on a
// failed delivery), and re-evaluating a client every run does not restart it.
type ClientMark struct {
	ClientID   string `json:"clientId"`
	ClientName string `json:"clientName,omitempty"`
	Policy     string `json:"policy"`
	// Action is what the receivers were warned about (disable or delete):
	// another action needs a new warning.
	Action   string        `json:"action"`
	Reason   string        `json:"reason"`
	Grace    time.Duration `json:"grace"`
	MarkedAt time.Time     `json:"markedAt"`
	// WarnedAt is when a digest listing this mark was first delivered; nil
	// until then. Deadline is WarnedAt + Grace (never earlier than a
	// deadline already told).
	WarnedAt *time.Time `json:"warnedAt,omitempty"`
	Deadline *time.Time `json:"deadline,omitempty"`
}

// ClientMarkKey identifies a client mark: one client under one policy.
type ClientMarkKey struct {
	ClientID string `json:"clientId"`
	Policy   string `json:"policy"`
}

// Key returns the mark's key.
func (m ClientMark) Key() ClientMarkKey { return ClientMarkKey{ClientID: m.ClientID, Policy: m.Policy} }

// Due reports whether the receivers were warned and the deadline has passed.
func (m ClientMark) Due(now time.Time) bool {
	return m.WarnedAt != nil && m.Deadline != nil && !now.Before(*m.Deadline)
}

// key is the bolt key; ids compare without regard to case. The client id
// is keyed as a token's (markKey): a listed id too long for a key, or
// holding a NUL, is hashed, and the mark's value keeps the id as listed.
func (k ClientMarkKey) key() []byte { return []byte(markKey(k.ClientID, k.Policy)) }

func (m ClientMark) validate() error {
	switch {
	case m.ClientID == "" || m.Policy == "":
		return fmt.Errorf("client mark %q/%q: empty client id or policy", untrusted.ClipID(m.ClientID), m.Policy)
	case strings.ContainsRune(m.Policy, 0):
		return fmt.Errorf("client mark %q: NUL in policy", untrusted.ClipID(m.ClientID))
	case m.Grace < 0:
		return fmt.Errorf("client mark %s/%s: negative grace %s", untrusted.ClipID(m.ClientID), m.Policy, m.Grace)
	}
	return nil
}

// ClientMarks returns every client mark, ordered by client id, then policy.
func (s *Store) ClientMarks(ctx context.Context) ([]ClientMark, error) {
	var out []ClientMark
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return forEachJSON(tx, bucketClientMarks, func(_ []byte, m ClientMark) {
			out = append(out, m)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list client marks: %w", err)
	}
	return out, nil
}

// ClientMarkChanges is what ReconcileClientMarks did.
type ClientMarkChanges struct {
	New     []ClientMark
	Kept    []ClientMark
	Removed []ClientMark
}

// ReconcileClientMarks makes the client marks of the given policies equal to
// current, in one transaction, as ReconcileMarks does for tokens: a mark in
// current keeps the clock of the stored one when it warned about the same
// action (a different action starts over, unwarned); marks of these
// policies not in current are removed (the client stopped matching, was
// used, excluded, deleted, or acted on). Call it only with complete data.
func (s *Store) ReconcileClientMarks(ctx context.Context, policies []string, current []ClientMark) (ClientMarkChanges, error) {
	scope := make(map[string]bool, len(policies))
	for _, p := range policies {
		scope[p] = true
	}
	var ch ClientMarkChanges
	// A run that finds every mark as it was commits nothing (as for the
	// token marks): a commit syncs the file even when no key changed.
	err := s.updateIfChanged(ctx, func(tx *bolt.Tx) (bool, error) {
		ch = ClientMarkChanges{}
		changed := false
		b := tx.Bucket([]byte(bucketClientMarks))
		if b == nil {
			if len(current) == 0 {
				return false, nil
			}
			var err error
			if b, err = tx.CreateBucket([]byte(bucketClientMarks)); err != nil {
				return false, err
			}
			changed = true
		}
		now := s.clock()
		seen := map[string]bool{}
		for _, m := range current {
			if err := m.validate(); err != nil {
				return false, err
			}
			if !scope[m.Policy] {
				return false, fmt.Errorf("client mark %s: policy %q is not among the reconciled policies", untrusted.ClipID(m.ClientID), m.Policy)
			}
			k := m.Key().key()
			var old ClientMark
			found := false
			raw := b.Get(k)
			if raw != nil {
				if err := json.Unmarshal(raw, &old); err != nil {
					return false, undecodable(bucketClientMarks, k, err)
				}
				found = old.Action == m.Action
			}
			m.WarnedAt, m.Deadline = nil, nil
			if found {
				m.MarkedAt, m.WarnedAt = old.MarkedAt, old.WarnedAt
				if m.WarnedAt != nil {
					d := DeadlineAfter(*m.WarnedAt, m.Grace, old.Deadline)
					m.Deadline = &d
				}
			} else if m.MarkedAt.IsZero() {
				m.MarkedAt = now
			}
			enc, err := json.Marshal(m)
			if err != nil {
				return false, fmt.Errorf("encode client mark %q: %w", k, err)
			}
			if !bytes.Equal(enc, raw) {
				if err := b.Put(k, enc); err != nil {
					return false, err
				}
				changed = true
			}
			seen[string(k)] = true
			if found {
				ch.Kept = append(ch.Kept, m)
			} else {
				ch.New = append(ch.New, m)
			}
		}
		var stale []ClientMark
		err := b.ForEach(func(k, v []byte) error {
			if seen[string(k)] {
				return nil
			}
			var m ClientMark
			if err := json.Unmarshal(v, &m); err != nil {
				return undecodable(bucketClientMarks, k, err)
			}
			if scope[m.Policy] {
				stale = append(stale, m)
			}
			return nil
		})
		if err != nil {
			return false, err
		}
		for _, m := range stale {
			if err := b.Delete(m.Key().key()); err != nil {
				return false, err
			}
		}
		ch.Removed = stale
		return changed || len(stale) > 0, nil
	})
	if err != nil {
		return ClientMarkChanges{}, fmt.Errorf("reconcile client marks: %w", err)
	}
	return ch, nil
}

// warnClientMarks starts the clocks of the listed client marks at at, inside
// the transaction that records a digest's delivery (Settle): the clock
// starts exactly when, and only if, the warning was delivered. Marks already
// warned keep their first warning; missing ones are skipped.
func warnClientMarks(tx *bolt.Tx, keys []ClientMarkKey, at time.Time) error {
	if len(keys) == 0 {
		return nil
	}
	b := tx.Bucket([]byte(bucketClientMarks))
	if b == nil {
		return nil
	}
	for _, k := range keys {
		raw := b.Get(k.key())
		if raw == nil {
			continue
		}
		var m ClientMark
		if err := json.Unmarshal(raw, &m); err != nil {
			return undecodable(bucketClientMarks, k.key(), err)
		}
		if m.WarnedAt != nil {
			continue
		}
		w, d := at, at.Add(m.Grace)
		m.WarnedAt, m.Deadline = &w, &d
		if err := putJSON(b, string(k.key()), m); err != nil {
			return err
		}
	}
	return nil
}
