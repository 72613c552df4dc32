package state

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// snoozeKey is the bolt key of a token's snooze: its id as pat.IDKey, so
// that `snooze AB12…` covers the token the tenant lists as ab12… (and one
// snooze per token, however it was typed), hashed when too long for a key
// (idKey: a listed id may be 64 KiB). TokenID keeps the spelling given.
func snoozeKey(tokenID string) string { return idKey(tokenID) }

// Snooze exempts a token from every policy until Until. It ends by itself:
// an expired snooze is ignored by every reader and can be pruned.
type Snooze struct {
	TokenID   string    `json:"tokenId"`
	Until     time.Time `json:"until"`
	Reason    string    `json:"reason"`
	By        string    `json:"by,omitempty"` // who asked for it (OS user or the operator's name)
	CreatedAt time.Time `json:"createdAt"`
	// Unjournaled is set when the snooze was made while a running serve
	// held the journal: that serve journals it at its next run (see
	// UnjournaledSnoozes).
	Unjournaled bool `json:"unjournaled,omitempty"`
	// Pending are the snoozes of the token this one replaced while they
	// still waited for their journal record, oldest first: each is a
	// decision someone made, with a reason, owed to the journal in order.
	// A store written before this field existed has none (the field is
	// absent, read as empty): nothing to migrate.
	Pending []Snooze `json:"pending,omitempty"`
}

// MaxPendingSnoozes bounds the snoozes of one token that wait for their
// journal records (Pending and the snooze itself): past it PutSnooze
// refuses (wrapping ErrSnoozesPending) rather than grow a token's record
// for as long as serve waits for its next run.
const MaxPendingSnoozes = 16

// ErrSnoozesPending is wrapped by PutSnooze when MaxPendingSnoozes
// snoozes of the token already wait for their journal records.
var ErrSnoozesPending = errors.New("too many snoozes wait for the journal")

// Owed returns the snoozes of the token that wait for their journal
// records, oldest first: Pending, then the snooze itself while it is
// Unjournaled (without its Pending).
func (s Snooze) Owed() []Snooze {
	owed := slices.Clone(s.Pending)
	if s.Unjournaled {
		s.Pending = nil
		owed = append(owed, s)
	}
	return owed
}

// Active reports whether the snooze still exempts its token at now.
func (s Snooze) Active(now time.Time) bool { return now.Before(s.Until) }

// PutSnooze creates or replaces the snooze of a token. Until must be in the
// future and a reason is required: a snooze is an exception someone must be
// able to account for later.
func (s *Store) PutSnooze(ctx context.Context, z Snooze) (Snooze, error) {
	now := s.clock()
	switch {
	case z.TokenID == "":
		return Snooze{}, fmt.Errorf("put snooze: empty token id")
	case !z.Active(now):
		return Snooze{}, fmt.Errorf("put snooze %s: until %s is not in the future", untrusted.ClipID(z.TokenID), z.Until.UTC().Format(time.RFC3339))
	case z.Reason == "":
		return Snooze{}, fmt.Errorf("put snooze %s: a reason is required", untrusted.ClipID(z.TokenID))
	}
	if z.CreatedAt.IsZero() {
		z.CreatedAt = now
	}
	z.Pending = nil
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := bucket(tx, bucketSnoozes)
		var cur Snooze
		if _, err := getJSON(b, bucketSnoozes, snoozeKey(z.TokenID), &cur); err != nil {
			return err
		}
		// Replacing a snooze still owed to the journal keeps it owed: a
		// caller that holds the journal journals the owed ones first
		// (only a caller that cannot reaches this with some).
		if owed := cur.Owed(); len(owed) > 0 {
			if !z.Unjournaled {
				return errors.New("the snooze it replaces is not journaled yet")
			}
			if len(owed) >= MaxPendingSnoozes {
				return fmt.Errorf("%d snoozes of this token wait for a running patjanitor serve to journal them at its next run: %w (at most %d); snooze again after that run, or where serve runs, between runs",
					len(owed), ErrSnoozesPending, MaxPendingSnoozes)
			}
			z.Pending = owed
		}
		return putJSON(b, snoozeKey(z.TokenID), z)
	})
	if err != nil {
		return Snooze{}, fmt.Errorf("put snooze %s: %w", untrusted.ClipID(z.TokenID), err)
	}
	return z, nil
}

// RestoreSnooze writes z as the journal recorded it, whatever its end: the
// catch-up of a store restored from a backup (janitor.CatchUp) puts back
// the snooze the journal's last record of the token says, also one whose
// end has passed by this host's clock (an unsnooze's, or an expired one).
// Not PutSnooze, which refuses an end that has passed: the catch-up runs
// when the journal opens, before any run has compared this host's clock
// with the tenant's, and an end "passed" on a clock days ahead is still
// ahead; each run's clock decides whether a snooze is active (Active), as
// for any snooze the store holds.
func (s *Store) RestoreSnooze(ctx context.Context, z Snooze) error {
	switch {
	case z.TokenID == "":
		return errors.New("restore snooze: empty token id")
	case z.Reason == "":
		return fmt.Errorf("restore snooze %s: a reason is required", untrusted.ClipID(z.TokenID))
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		return putJSON(bucket(tx, bucketSnoozes), snoozeKey(z.TokenID), z)
	})
	if err != nil {
		return fmt.Errorf("restore snooze %s: %w", untrusted.ClipID(z.TokenID), err)
	}
	return nil
}

// ActiveSnooze returns the token's snooze if it is still active.
func (s *Store) ActiveSnooze(ctx context.Context, tokenID string) (Snooze, bool, error) {
	var z Snooze
	var found bool
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		found, err = getJSON(bucket(tx, bucketSnoozes), bucketSnoozes, snoozeKey(tokenID), &z)
		return err
	})
	if err != nil {
		return Snooze{}, false, fmt.Errorf("get snooze %s: %w", untrusted.ClipID(tokenID), err)
	}
	if !found || !z.Active(s.clock()) {
		return Snooze{}, false, nil
	}
	return z, true, nil
}

// Snoozes lists snoozes by token id; expired ones only if includeExpired.
func (s *Store) Snoozes(ctx context.Context, includeExpired bool) ([]Snooze, error) {
	now := s.clock()
	var out []Snooze
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return forEachJSON(tx, bucketSnoozes, func(_ []byte, z Snooze) {
			if includeExpired || z.Active(now) {
				out = append(out, z)
			}
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list snoozes: %w", err)
	}
	return out, nil
}

// ActiveSnoozes returns the active snoozes by pat.IDKey of the token id, for
// the engine's per-token lookups during a run.
func (s *Store) ActiveSnoozes(ctx context.Context) (map[string]Snooze, error) {
	list, err := s.Snoozes(ctx, false)
	if err != nil {
		return nil, err
	}
	m := make(map[string]Snooze, len(list))
	for _, z := range list {
		m[pat.IDKey(z.TokenID)] = z
	}
	return m, nil
}

// DeleteSnooze ends a snooze early; it reports whether one existed.
func (s *Store) DeleteSnooze(ctx context.Context, tokenID string) (bool, error) {
	var existed bool
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := bucket(tx, bucketSnoozes)
		existed = b.Get([]byte(snoozeKey(tokenID))) != nil
		return b.Delete([]byte(snoozeKey(tokenID)))
	})
	if err != nil {
		return false, fmt.Errorf("delete snooze %s: %w", untrusted.ClipID(tokenID), err)
	}
	return existed, nil
}

// UnjournaledSnoozes returns the snoozes (also expired ones) that still wait
// for their journal record, by token id; each with the snoozes it replaced
// that wait too (Pending), which are journaled first.
func (s *Store) UnjournaledSnoozes(ctx context.Context) ([]Snooze, error) {
	all, err := s.Snoozes(ctx, true)
	if err != nil {
		return nil, err
	}
	var out []Snooze
	for _, z := range all {
		if z.Unjournaled || len(z.Pending) > 0 {
			out = append(out, z)
		}
	}
	return out, nil
}

// SnoozeJournaled records that z's journal record was written; z is the
// token's oldest owed snooze: the first of Pending, or the snooze itself
// once Pending is empty. Anything else (replaced meanwhile, already
// recorded) changes nothing, so a repeated call is harmless.
func (s *Store) SnoozeJournaled(ctx context.Context, z Snooze) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := bucket(tx, bucketSnoozes)
		var cur Snooze
		found, err := getJSON(b, bucketSnoozes, snoozeKey(z.TokenID), &cur)
		switch {
		case err != nil || !found:
			return err
		case len(cur.Pending) > 0:
			if !sameSnooze(cur.Pending[0], z) {
				return nil
			}
			cur.Pending = cur.Pending[1:]
		case sameSnooze(cur, z) && cur.Unjournaled:
			cur.Unjournaled = false
		default:
			return nil
		}
		if len(cur.Pending) == 0 {
			cur.Pending = nil
		}
		return putJSON(b, snoozeKey(z.TokenID), cur)
	})
	if err != nil {
		return fmt.Errorf("snooze %s journaled: %w", untrusted.ClipID(z.TokenID), err)
	}
	return nil
}

// sameSnooze reports whether a and b are the same decision. CreatedAt
// alone does not tell: two snoozes can be made within one clock tick.
func sameSnooze(a, b Snooze) bool {
	return a.TokenID == b.TokenID && a.Until.Equal(b.Until) && a.Reason == b.Reason && a.By == b.By && a.CreatedAt.Equal(b.CreatedAt)
}
