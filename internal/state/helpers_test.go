package state

import (
	"context"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// Shorthands for the tests: production code goes through ReconcileMarks,
// Marks, Settle and LastDeliveries.

// testPutMark creates or refreshes one mark (see the clock rules on
// upsertMark) and returns it as stored.
func (s *Store) testPutMark(ctx context.Context, m Mark) (Mark, error) {
	var out Mark
	err := s.update(ctx, func(tx *bolt.Tx) error {
		var err error
		out, _, _, err = upsertMark(marksOf(tx), m, s.clock())
		return err
	})
	return out, err
}

// testGetMark returns the mark for key, if any.
func (s *Store) testGetMark(ctx context.Context, key MarkKey) (Mark, bool, error) {
	var m Mark
	var found bool
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		m, found, err = marksOf(tx).get(key.key())
		return err
	})
	return m, found, err
}

// testSchema returns the schema version recorded in the file.
func (s *Store) testSchema(ctx context.Context) (int, error) {
	var v int
	err := s.view(ctx, func(tx *bolt.Tx) error {
		raw := bucket(tx, bucketMeta).Get([]byte(keySchema))
		n, err := strconv.Atoi(string(raw))
		if err != nil {
			return fmt.Errorf("schema version %q: %w", raw, err)
		}
		v = n
		return nil
	})
	return v, err
}

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

// ExecutedPlans returns every executed-plan record. Only the tests list
// them (production looks a plan up by hash with ExecutedPlan), so it lives
// here rather than in the store's API.
func (s *Store) ExecutedPlans(ctx context.Context) ([]ExecutedPlan, error) {
	var out []ExecutedPlan
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return forEachJSON(tx, bucketExecuted, func(_ []byte, e ExecutedPlan) {
			out = append(out, e)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list executed plans: %w", err)
	}
	return out, nil
}
