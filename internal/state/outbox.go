package state

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/patjanitor/patjanitor/internal/pat"
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

// LastDelivery returns the owner's last recorded digest delivery.
func (s *Store) LastDelivery(ctx context.Context, ownerID string) (Delivery, bool, error) {
	var d Delivery
	var found bool
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		found, err = getJSON(bucket(tx, bucketDeliveries), pat.IDKey(ownerID), &d)
		return err
	})
	if err != nil {
		return Delivery{}, false, fmt.Errorf("get delivery for owner %s: %w", ownerID, err)
	}
	return d, found, nil
}

// RecordDelivery stores d as the owner's last delivery.
func (s *Store) RecordDelivery(ctx context.Context, d Delivery) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		return putJSON(bucket(tx, bucketDeliveries), pat.IDKey(d.OwnerID), d)
	})
	if err != nil {
		return fmt.Errorf("record delivery for owner %s: %w", d.OwnerID, err)
	}
	return nil
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
	Marks       []MarkKey       `json:"marks,omitempty"`
	Payload     json.RawMessage `json:"payload"`
	CreatedAt   time.Time       `json:"createdAt"`
	Attempts    int             `json:"attempts"`
	NextAttempt time.Time       `json:"nextAttempt"`
	// LastError is the last failure, already redacted by the sender: the
	// store writes it to disk as given.
	LastError string `json:"lastError,omitempty"`
}

// Enqueue stores entries durably (one transaction, fsynced) before any
// delivery is tried. An entry with the ID of a pending one replaces it as a
// new message (attempts reset): a newer digest for the same owner supersedes
// the undelivered older one, so an owner gets one digest, not a backlog.
func (s *Store) Enqueue(ctx context.Context, entries ...OutboxEntry) error {
	now := s.clock()
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := bucket(tx, bucketOutbox)
		for _, e := range entries {
			if e.ID == "" {
				return fmt.Errorf("outbox entry for receiver %q: empty id", e.Receiver)
			}
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
	return nil
}

// Outbox returns every pending entry, oldest first.
func (s *Store) Outbox(ctx context.Context) ([]OutboxEntry, error) {
	var out []OutboxEntry
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return bucket(tx, bucketOutbox).ForEach(func(k, v []byte) error {
			var e OutboxEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode outbox entry %q: %w", k, err)
			}
			out = append(out, e)
			return nil
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

// Delivered applies a successful delivery in one transaction: the entry
// leaves the outbox, a digest becomes its owner's last delivery, and the
// marks it listed start their grace clocks at at. It returns the marks whose
// clock started. An entry no longer in the outbox (replaced or removed
// meanwhile) changes nothing.
func (s *Store) Delivered(ctx context.Context, id string, at time.Time) ([]Mark, error) {
	var started []Mark
	err := s.update(ctx, func(tx *bolt.Tx) error {
		ob := bucket(tx, bucketOutbox)
		var e OutboxEntry
		found, err := getJSON(ob, id, &e)
		if err != nil || !found {
			return err
		}
		if err := ob.Delete([]byte(id)); err != nil {
			return fmt.Errorf("delete outbox entry: %w", err)
		}
		if e.OwnerID != "" && e.Fingerprint != "" {
			d := Delivery{OwnerID: e.OwnerID, Receiver: e.Receiver, MessageID: e.ID, Fingerprint: e.Fingerprint, SentAt: at}
			if err := putJSON(bucket(tx, bucketDeliveries), pat.IDKey(e.OwnerID), d); err != nil {
				return err
			}
		}
		started, err = warnMarks(bucket(tx, bucketMarks), e.Marks, at)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record delivery of %s: %w", id, err)
	}
	return started, nil
}

// Deferred records a failed attempt that will be retried at next.
func (s *Store) Deferred(ctx context.Context, id string, attempts int, next time.Time, lastError string) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := bucket(tx, bucketOutbox)
		var e OutboxEntry
		found, err := getJSON(b, id, &e)
		if err != nil || !found {
			return err
		}
		e.Attempts, e.NextAttempt, e.LastError = attempts, next, lastError
		return putJSON(b, id, e)
	})
	if err != nil {
		return fmt.Errorf("defer outbox entry %s: %w", id, err)
	}
	return nil
}

// Drop removes an entry that will never be delivered (a permanent failure or
// one too old to matter).
func (s *Store) Drop(ctx context.Context, id string) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		return bucket(tx, bucketOutbox).Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("drop outbox entry %s: %w", id, err)
	}
	return nil
}
