package state

import (
	"context"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// Shorthands for the tests: production code goes through Settle and
// LastDeliveries.

// testWarn starts the clocks of the marks at at, as a delivered warning does.
func (s *Store) testWarn(ctx context.Context, keys []MarkKey, at time.Time) ([]Mark, error) {
	var started []Mark
	err := s.update(ctx, func(tx *bolt.Tx) error {
		var err error
		started, err = warnMarks(tx, keys, at)
		return err
	})
	return started, err
}

// testDelivered settles one delivery.
func (s *Store) testDelivered(ctx context.Context, id string, at time.Time) ([]Mark, error) {
	started, err := s.Settle(ctx, Settlement{ID: id, DeliveredAt: at})
	return started[id], err
}

// testDeferred settles one failed attempt.
func (s *Store) testDeferred(ctx context.Context, id string, attempts int, next time.Time, lastError string) error {
	_, err := s.Settle(ctx, Settlement{ID: id, Attempts: attempts, NextAttempt: next, LastError: lastError})
	return err
}

// testLastDelivery is the owner's last delivery.
func (s *Store) testLastDelivery(ctx context.Context, ownerID string) (Delivery, bool, error) {
	ds, err := s.LastDeliveries(ctx, []string{ownerID})
	d, ok := ds[pat.IDKey(ownerID)]
	return d, ok, err
}

// testRecordDelivery stores d as its owner's last delivery.
func (s *Store) testRecordDelivery(ctx context.Context, d Delivery) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		return putJSON(bucket(tx, bucketDeliveries), pat.IDKey(d.OwnerID), d)
	})
}
