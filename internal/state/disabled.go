package state

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// bucketDisabled holds the API clients patjanitor disabled, by idKey of the id.
// It is created by its first write rather than by a schema migration: a
// store without it simply has no disabled clients, so no schema step (and
// no refusal of a read-only open of an older store) is needed.
const bucketDisabled = "disabled-clients"

// Disabled records that patjanitor disabled an API client: a delete policy
// deletes the client only once it has stayed disabled for its disabledFor
// since At, and `patjanitor enable` re-enables only clients recorded here.
type Disabled struct {
	ClientID string    `json:"clientId"`
	Name     string    `json:"name,omitempty"`
	At       time.Time `json:"at"`
	Policy   string    `json:"policy"`
	RunID    string    `json:"runId,omitempty"`
}

// disabledKey is the key of a client's record (idKey: hashed when too
// long for a key). DisabledClients keys its map by the id in the value.
func disabledKey(id string) []byte { return []byte(idKey(id)) }

// PutDisabled records (or replaces) that a client was disabled at d.At.
func (s *Store) PutDisabled(ctx context.Context, d Disabled) error {
	switch {
	case d.ClientID == "":
		return fmt.Errorf("put disabled client: empty id")
	case d.At.IsZero():
		return fmt.Errorf("put disabled client %s: no time", untrusted.ClipID(d.ClientID))
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("put disabled client %s: %w", untrusted.ClipID(d.ClientID), err)
	}
	err = s.update(ctx, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(bucketDisabled))
		if err != nil {
			return err
		}
		return b.Put(disabledKey(d.ClientID), raw)
	})
	if err != nil {
		return fmt.Errorf("put disabled client %s: %w", untrusted.ClipID(d.ClientID), err)
	}
	return nil
}

// DisabledClient returns the record of one client (ids compared without
// regard to case).
func (s *Store) DisabledClient(ctx context.Context, id string) (Disabled, bool, error) {
	var d Disabled
	found := false
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		found, err = getJSON(tx.Bucket([]byte(bucketDisabled)), bucketDisabled, string(disabledKey(id)), &d)
		return err
	})
	if err != nil {
		return Disabled{}, false, fmt.Errorf("get disabled client %s: %w", untrusted.ClipID(id), err)
	}
	return d, found, nil
}

// DisabledClients returns every record, by pat.IDKey of the client id.
func (s *Store) DisabledClients(ctx context.Context) (map[string]Disabled, error) {
	out := map[string]Disabled{}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return forEachJSON(tx, bucketDisabled, func(_ []byte, d Disabled) {
			out[pat.IDKey(d.ClientID)] = d
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list disabled clients: %w", err)
	}
	return out, nil
}

// DeleteDisabled removes a client's record (re-enabled or deleted); it
// reports whether there was one.
func (s *Store) DeleteDisabled(ctx context.Context, id string) (bool, error) {
	existed := false
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketDisabled))
		if b == nil {
			return nil
		}
		existed = b.Get(disabledKey(id)) != nil
		return b.Delete(disabledKey(id))
	})
	if err != nil {
		return false, fmt.Errorf("delete disabled client %s: %w", untrusted.ClipID(id), err)
	}
	return existed, nil
}
