package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// RepairCommand is the way out of an undecodable record, as the errors
// name it.
const RepairCommand = "patjanitor state repair --reason TEXT"

// UndecodableError is a record of the store that does not decode (disk
// corruption, a bad restore, a downgrade). Every read that meets it fails
// with it, closed: a damaged store must not pass for one without the
// record (an executed plan, a snooze). The message names the file, the
// bucket, the key and the way out (RepairCommand), which moves the record
// aside with its bytes kept.
type UndecodableError struct {
	Path   string // the store's file ("" until the store fills it in)
	Bucket string
	Key    []byte
	Err    error
}

func (e *UndecodableError) Error() string {
	path := e.Path
	if path == "" {
		path = "(state store)"
	}
	// The key may be an id as the tenant listed it: clipped and quoted, so
	// that no byte of it reaches a terminal raw. The decoder's error may
	// quote what the record holds (a patch op's path), whole: clipped as
	// the journal's record of the repair clips it.
	return fmt.Sprintf("state store %s: the record %q in bucket %q does not decode (%s): run `%s` to move it to the quarantine bucket, keeping its bytes, and rebuild what the journal holds (docs/operations.md, \"An undecodable record in the state store\")",
		path, untrusted.ClipID(string(e.Key)), e.Bucket, untrusted.Clip(e.Err.Error(), 200), RepairCommand)
}

func (e *UndecodableError) Unwrap() error { return e.Err }

func undecodable(bucket string, key []byte, err error) error {
	return &UndecodableError{Bucket: bucket, Key: bytes.Clone(key), Err: err}
}

// named fills in the store's path in an *UndecodableError err carries: the
// decoders that make one do not know the file.
func (s *Store) named(err error) error {
	var ue *UndecodableError
	if errors.As(err, &ue) && ue.Path == "" {
		ue.Path = s.path
	}
	if errors.Is(err, bolterrors.ErrIncompatibleValue) {
		// A write over a key that holds a nested bucket: a reader sees
		// no record there (bbolt's Get), so only the write finds it.
		return fmt.Errorf("state store %s: %w: a nested bucket is where a record belongs (a hand edit with a bbolt tool?); `%s` moves it aside", s.path, err, RepairCommand)
	}
	return err
}

// BadRecord is a record that does not decode, as found by Undecodable.
type BadRecord struct {
	Bucket string
	Key    []byte
	Value  []byte
	// SHA256 is the hex SHA-256 of Value: what the journal names it by
	// (never the bytes: they may hold anything).
	SHA256 string
	Err    string
}

// decoders are the buckets whose values patjanitor decodes, each with how
// a value is read, as the readers read it. The marks and their reason
// shapes are read together (undecodableMarks); the meta bucket's journal
// anchors are below. The schema version is not here: a store whose version
// does not read is refused by Open, before anything can be repaired.
func decoders() []decoder {
	return []decoder{
		{bucketExecuted, decodeJSON[ExecutedPlan]},
		{bucketConfirmed, decodeJSON[Confirmed]},
		{bucketConfirmedClients, decodeJSON[Confirmed]},
		{bucketSnoozes, decodeJSON[Snooze]},
		{bucketClientMarks, decodeJSON[ClientMark]},
		{bucketDisabled, decodeJSON[Disabled]},
		{bucketOutbox, decodeJSON[OutboxEntry]},
		{bucketDeliveries, decodeJSON[Delivery]},
	}
}

type decoder struct {
	bucket string
	decode func(v []byte) error
}

func decodeJSON[T any](v []byte) error {
	var x T
	return json.Unmarshal(v, &x)
}

// Undecodable returns every record of the store that does not decode, by
// bucket, then key.
func (s *Store) Undecodable(ctx context.Context) ([]BadRecord, error) {
	var out []BadRecord
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		out, err = undecodableIn(tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("state store %s: look for undecodable records: %w", s.path, err)
	}
	return out, nil
}

func undecodableIn(tx *bolt.Tx) ([]BadRecord, error) {
	var out []BadRecord
	add := func(bucket string, k, v []byte, err error) {
		if v == nil {
			// Not a value: a nested bucket, where a record belongs.
			if nb := nestedAt(tx, bucket, k); nb != nil {
				v, err = nestedValue(nb), errNestedBucket
			}
		}
		sum := sha256.Sum256(v)
		out = append(out, BadRecord{Bucket: bucket, Key: bytes.Clone(k), Value: bytes.Clone(v), SHA256: hex.EncodeToString(sum[:]), Err: err.Error()})
	}
	if meta := tx.Bucket([]byte(bucketMeta)); meta != nil {
		c := meta.Cursor()
		for k, v := c.Seek([]byte(keyAnchorPrefix)); k != nil && bytes.HasPrefix(k, []byte(keyAnchorPrefix)); k, v = c.Next() {
			if err := decodeJSON[audit.Anchor](v); err != nil {
				add(bucketMeta, k, v, err)
			}
		}
	}
	for _, d := range decoders() {
		b := tx.Bucket([]byte(d.bucket))
		if b == nil {
			continue
		}
		err := b.ForEach(func(k, v []byte) error {
			// A nested bucket (v nil: none is made in these, a hand edit
			// or another program made it) fails the readers as a record
			// that does not decode: it is one (add).
			if err := d.decode(v); err != nil {
				add(d.bucket, k, v, err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	undecodableMarks(tx, add)
	return out, nil
}

// errNestedBucket is why a nested bucket where a record belongs is moved
// aside.
var errNestedBucket = errors.New("a nested bucket, not a record")

// nestedAt returns the bucket nested under key in bucket, if there is one.
func nestedAt(tx *bolt.Tx, bucket string, key []byte) *bolt.Bucket {
	if b := tx.Bucket([]byte(bucket)); b != nil {
		return b.Bucket(key)
	}
	return nil
}

// nestedValue is what a repair keeps of a nested bucket where a record
// belongs, as a record's bytes: its entries in order, each key and value,
// or the bucket nested in it, in JSON (bytes as base64). Its SHA-256 names
// it in the journal as a record's names the record.
func nestedValue(b *bolt.Bucket) []byte {
	type entry struct {
		Key    []byte          `json:"key"`
		Value  []byte          `json:"value,omitempty"`
		Bucket json.RawMessage `json:"bucket,omitempty"`
	}
	es := []entry{}
	_ = b.ForEach(func(k, v []byte) error {
		e := entry{Key: k, Value: v}
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				e.Bucket = nestedValue(nb)
			}
		}
		es = append(es, e)
		return nil
	})
	out, _ := json.Marshal(es) // []byte and RawMessage of valid JSON: no error
	return out
}

// undecodableMarks finds the reason shapes that do not decode and the
// marks that do not decode with the shapes that do: a mark whose shape is
// bad (or gone) cannot be read either, and goes with it.
func undecodableMarks(tx *bolt.Tx, add func(bucket string, k, v []byte, err error)) {
	t := marksOf(tx)
	_ = t.loadShapes(func(k, v []byte, err error) error {
		add(bucketReasons, k, v, err)
		return nil
	})
	if t.marks != nil {
		_ = t.marks.ForEach(func(k, v []byte) error {
			if _, err := t.decode(k, v); err != nil {
				add(bucketMarks, k, v, err)
			}
			return nil
		})
	}
}

// Describe names a bad record in one line, terminal-safe.
func (r BadRecord) Describe() string {
	return fmt.Sprintf("bucket %q, key %q, %d bytes, sha256 %s (%s)", r.Bucket, untrusted.ClipID(string(r.Key)), len(r.Value), r.SHA256,
		untrusted.Terminal(strings.TrimSpace(untrusted.Clip(r.Err, 200))))
}
