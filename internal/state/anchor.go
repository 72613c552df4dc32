package state

import (
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/patjanitor/patjanitor/internal/audit"
)

// The journal's anchor (see audit.Anchor) lives in the meta bucket under
// "journal-anchor:" and a key naming the journal, so that the store needs no
// new bucket (and no schema migration) for it, and a read-only command reads
// it from a store of any supported version.
const keyAnchorPrefix = "journal-anchor:"

// AnchorKey is the key, in the meta bucket, of the anchor of the journal
// named key (a repair tells the journal's anchor among the records it
// moves).
func AnchorKey(key string) string { return keyAnchorPrefix + key }

// JournalAnchor returns the anchor stored for the journal named key, or false
// if there is none.
func (s *Store) JournalAnchor(ctx context.Context, key string) (audit.Anchor, bool, error) {
	var (
		a  audit.Anchor
		ok bool
	)
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		ok, err = getJSON(bucket(tx, bucketMeta), bucketMeta, AnchorKey(key), &a)
		return err
	})
	var ue *UndecodableError
	switch {
	case errors.As(err, &ue):
		return audit.Anchor{}, false, err // it names the store and the record
	case err != nil:
		return audit.Anchor{}, false, fmt.Errorf("state store %s: journal anchor: %w", s.path, err)
	}
	return a, ok, nil
}

// PutJournalAnchor stores the anchor of the journal named key, in one
// transaction (fsynced on commit), with the confirmed records staged since
// the last write (StageConfirmed): those of the outcomes the anchor moves
// past.
func (s *Store) PutJournalAnchor(ctx context.Context, key string, a audit.Anchor) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		if err := s.writeStaged(tx); err != nil {
			return err
		}
		return putJSON(bucket(tx, bucketMeta), AnchorKey(key), a)
	})
	if err != nil {
		return fmt.Errorf("state store %s: store the journal anchor: %w", s.path, err)
	}
	return nil
}

// DeleteJournalAnchor removes the anchor of the journal named key (`audit
// reanchor`: the next open anchors the journal as it is).
func (s *Store) DeleteJournalAnchor(ctx context.Context, key string) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		return bucket(tx, bucketMeta).Delete([]byte(AnchorKey(key)))
	})
	if err != nil {
		return fmt.Errorf("state store %s: delete the journal anchor: %w", s.path, err)
	}
	return nil
}

// AnchorOf binds the store to one journal: the audit.AnchorStore the journal
// updates after each append.
func (s *Store) AnchorOf(key string) JournalAnchorRef { return JournalAnchorRef{s: s, key: key} }

// JournalAnchorRef is the anchor of one journal in a store.
type JournalAnchorRef struct {
	s   *Store
	key string
}

// LoadAnchor implements audit.AnchorStore.
func (a JournalAnchorRef) LoadAnchor(ctx context.Context) (audit.Anchor, bool, error) {
	return a.s.JournalAnchor(ctx, a.key)
}

// StoreAnchor implements audit.AnchorStore.
func (a JournalAnchorRef) StoreAnchor(ctx context.Context, an audit.Anchor) error {
	return a.s.PutJournalAnchor(ctx, a.key, an)
}
