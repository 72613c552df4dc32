package state

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// Delivery records the last owner digest delivered to an owner, so that the
// same digest (same fingerprint) is not sent again within an interval.
type Delivery struct {
	OwnerID     string    `json:"ownerId"`
	Receiver    string    `json:"receiver"`
	MessageID   string    `json:"messageId"`
	Fingerprint string    `json:"fingerprint"`
	SentAt      time.Time `json:"sentAt"`
}

// Suppresses reports whether a digest with fingerprint fp, prepared at now,
// repeats this delivery within interval and should not be sent.
func (d Delivery) Suppresses(fp string, now time.Time, interval time.Duration) bool {
	return fp != "" && d.Fingerprint == fp && now.Sub(d.SentAt) < interval
}

// LastDeliveries returns the last recorded digest delivery of each of the
// owners that has one, by pat.IDKey of the owner id, in one read.
func (s *Store) LastDeliveries(ctx context.Context, ownerIDs []string) (map[string]Delivery, error) {
	out := make(map[string]Delivery, len(ownerIDs))
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := bucket(tx, bucketDeliveries)
		for _, id := range ownerIDs {
			key := pat.IDKey(id)
			var d Delivery
			found, err := getJSON(b, bucketDeliveries, deliveryKey(id), &d)
			if err != nil {
				return fmt.Errorf("owner %s: %w", untrusted.ClipID(id), err)
			}
			if found {
				out[key] = d
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get deliveries: %w", err)
	}
	return out, nil
}

// OutboxEntry is a notification waiting for delivery. The payload is opaque to
// the store (the notify package's message, as JSON); the other fields are what
// the store needs to schedule retries and to apply a delivery atomically.
type OutboxEntry struct {
	ID       string `json:"id"`
	Receiver string `json:"receiver"`
	Kind     string `json:"kind"`
	// OwnerID and Fingerprint are set for owner digests: on delivery the
	// store records them as the owner's last delivery.
	OwnerID     string `json:"ownerId,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// Marks are the marks a warning lists: on delivery their grace clocks
	// start.
	Marks []MarkKey `json:"marks,omitempty"`
	// ClientMarks are the API client marks a digest to the
	// notify.apiClients receivers lists: on delivery their clocks start.
	ClientMarks []ClientMarkKey `json:"clientMarks,omitempty"`
	Payload     json.RawMessage `json:"payload"`
	CreatedAt   time.Time       `json:"createdAt"`
	Attempts    int             `json:"attempts"`
	NextAttempt time.Time       `json:"nextAttempt"`
	// LastError is the last failure, already redacted by the sender: the
	// store writes it to disk as given.
	LastError string `json:"lastError,omitempty"`
}

// Enqueue stores entries durably (fsynced) before any delivery is tried. An
// entry with the ID of a pending one replaces it as a new message (attempts
// reset): a newer digest for the same owner supersedes the undelivered older
// one, so an owner gets one digest, not a backlog.
//
// The entries are written enqueueBatch to a transaction, in order. A bbolt
// transaction holds every value it writes, and the pages it will write, in
// memory until it commits: one transaction for the 44,000 owner digests of a
// run at the listing cap held about a third of that run's memory. An error
// or a crash between two batches leaves the earlier batches queued, which is
// harmless: each entry is a whole message, delivered by the next dispatch,
// and the next run queues its digests again under the same IDs.
func (s *Store) Enqueue(ctx context.Context, entries ...OutboxEntry) error {
	// Bad input stores nothing: checked before the first batch is written.
	for _, e := range entries {
		if e.ID == "" {
			return fmt.Errorf("enqueue notifications: outbox entry for receiver %q: empty id", e.Receiver)
		}
	}
	now := s.clock()
	for len(entries) > 0 {
		batch := entries[:min(len(entries), enqueueBatch)]
		entries = entries[len(batch):]
		err := s.update(ctx, func(tx *bolt.Tx) error {
			b := bucket(tx, bucketOutbox)
			for _, e := range batch {
				if e.CreatedAt.IsZero() {
					e.CreatedAt = now
				}
				if e.NextAttempt.IsZero() {
					e.NextAttempt = now
				}
				e.Attempts, e.LastError = 0, ""
				if err := putJSON(b, e.ID, e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("enqueue notifications: %w", err)
		}
	}
	return nil
}

// enqueueBatch is how many outbox entries one transaction writes (Enqueue):
// a few MB of digests, for a hundredth of the fsyncs of one per entry.
const enqueueBatch = 500

// Outbox returns every pending entry, oldest first.
func (s *Store) Outbox(ctx context.Context) ([]OutboxEntry, error) {
	var out []OutboxEntry
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return forEachJSON(tx, bucketOutbox, func(_ []byte, e OutboxEntry) {
			out = append(out, e)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list outbox: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// DueOutbox returns the pending entries whose next attempt is not after now,
// oldest first.
func (s *Store) DueOutbox(ctx context.Context, now time.Time) ([]OutboxEntry, error) {
	all, err := s.Outbox(ctx)
	if err != nil {
		return nil, err
	}
	due := all[:0]
	for _, e := range all {
		if !e.NextAttempt.After(now) {
			due = append(due, e)
		}
	}
	return due, nil
}

// Settlement is what one dispatch made of an outbox entry, for Settle.
// Exactly one applies: delivered (DeliveredAt), dropped or retried.
type Settlement struct {
	ID string
	// DeliveredAt, if set, is when the entry was delivered.
	DeliveredAt time.Time
	// Drop removes an entry that will never be delivered (a permanent
	// failure, or one too old to matter).
	Drop bool
	// Attempts, NextAttempt and LastError record a failed attempt to be
	// retried at NextAttempt (neither delivered nor dropped).
	Attempts    int
	NextAttempt time.Time
	LastError   string
}

// Settle applies the outcomes of a dispatch in one transaction, in order. A
// delivery leaves the outbox, a digest becomes its owner's last delivery, and
// the marks it listed start their grace clocks at DeliveredAt, all in the
// transaction that records it: a warning is never recorded without its clock,
// nor a clock started without the delivery. It returns, by entry id, the
// marks whose clock started. An entry no longer in the outbox (replaced or
// removed meanwhile) changes nothing, and a batch that changes nothing
// commits nothing.
//
// The dispatcher settles a batch of deliveries at a time: a crash after a
// delivery and before its batch is settled leaves the entry in the outbox and
// its marks without a clock, so the warning is sent again and the clock
// starts later than the first delivery, never sooner.
func (s *Store) Settle(ctx context.Context, batch ...Settlement) (map[string][]Mark, error) {
	var started map[string][]Mark
	err := s.updateIfChanged(ctx, func(tx *bolt.Tx) (bool, error) {
		started = nil
		ob := bucket(tx, bucketOutbox)
		changed := false
		for _, st := range batch {
			var e OutboxEntry
			found, err := getJSON(ob, bucketOutbox, st.ID, &e)
			if err != nil {
				return false, err
			}
			if !found {
				continue
			}
			changed = true
			switch {
			case !st.DeliveredAt.IsZero():
				ms, err := delivered(tx, e, st.DeliveredAt)
				if err != nil {
					return false, fmt.Errorf("record delivery of %s: %w", st.ID, err)
				}
				if len(ms) > 0 {
					if started == nil {
						started = map[string][]Mark{}
					}
					started[st.ID] = ms
				}
			case st.Drop:
				if err := ob.Delete([]byte(st.ID)); err != nil {
					return false, fmt.Errorf("drop outbox entry %s: %w", st.ID, err)
				}
			default:
				e.Attempts, e.NextAttempt, e.LastError = st.Attempts, st.NextAttempt, st.LastError
				if err := putJSON(ob, st.ID, e); err != nil {
					return false, fmt.Errorf("defer outbox entry %s: %w", st.ID, err)
				}
			}
		}
		return changed, nil
	})
	if err != nil {
		return nil, fmt.Errorf("settle outbox: %w", err)
	}
	return started, nil
}

// delivered removes e from the outbox, records a digest as its owner's last
// delivery and starts the clocks of the marks it listed.
func delivered(tx *bolt.Tx, e OutboxEntry, at time.Time) ([]Mark, error) {
	if err := bucket(tx, bucketOutbox).Delete([]byte(e.ID)); err != nil {
		return nil, fmt.Errorf("delete outbox entry: %w", err)
	}
	if e.OwnerID != "" && e.Fingerprint != "" {
		d := Delivery{OwnerID: e.OwnerID, Receiver: e.Receiver, MessageID: e.ID, Fingerprint: e.Fingerprint, SentAt: at}
		if err := putJSON(bucket(tx, bucketDeliveries), deliveryKey(e.OwnerID), d); err != nil {
			return nil, err
		}
	}
	started, err := warnMarks(tx, e.Marks, at)
	if err != nil {
		return nil, err
	}
	return started, warnClientMarks(tx, e.ClientMarks, at)
}

// Drop removes entries that will never be delivered (a permanent failure,
// one too old to matter, a digest withdrawn or superseded), in one
// transaction. Ids not in the outbox are not an error; when none is, nothing
// is written.
func (s *Store) Drop(ctx context.Context, ids ...string) error {
	err := s.updateIfChanged(ctx, func(tx *bolt.Tx) (bool, error) {
		b := bucket(tx, bucketOutbox)
		changed := false
		for _, id := range ids {
			if b.Get([]byte(id)) == nil {
				continue
			}
			if err := b.Delete([]byte(id)); err != nil {
				return false, fmt.Errorf("drop outbox entry %s: %w", id, err)
			}
			changed = true
		}
		return changed, nil
	})
	if err != nil {
		return fmt.Errorf("drop outbox entries: %w", err)
	}
	return nil
}
