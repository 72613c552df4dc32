package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// bucketQuarantine holds the records `patjanitor state repair` moved aside
// because they did not decode, whole, by a sequence number. Nothing reads
// them as what they were; they are kept for a human with a backup (bbolt
// tools read them) and so that a quarantined executed plan is still
// refused (ExecutedPlan). Created by the first repair.
const bucketQuarantine = "quarantine"

// keyRepairPending, in the meta bucket, marks a repair that moved records
// aside and has not yet rebuilt from the journal what it can of them. Open
// refuses the store while it is there (see Options.Repairing): a snooze or
// a confirmed change quarantined and not yet rebuilt would let a run act
// on a token an operator exempted, or send a change again.
const keyRepairPending = "repair-pending"

// Quarantined is a record a repair moved aside.
type Quarantined struct {
	Bucket string `json:"bucket"`
	// Key and Value are the record's bytes, whole (base64 in JSON: they
	// may be any bytes).
	Key    []byte    `json:"key"`
	Value  []byte    `json:"value"`
	SHA256 string    `json:"sha256"`
	Error  string    `json:"error"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
	By     string    `json:"by,omitempty"`
	// JournalSeq is the journal record of the repair.
	JournalSeq int64 `json:"journalSeq,omitempty"`
}

// RepairMark is a repair begun and not finished (keyRepairPending): the
// records it moved, from the quarantine's record From on, are still to be
// rebuilt from the journal.
type RepairMark struct {
	At      time.Time `json:"at"`
	Records int       `json:"records"`
	// From is the sequence number, in the quarantine bucket, of the first
	// record the repair moved (0: unknown, every record). By sequence, not
	// by At: a clock set back between a repair and the one that finishes
	// it would date the records the second moves before the mark.
	From uint64 `json:"from,omitempty"`
	// Damaged is set when the mark itself does not decode (why): a repair
	// is pending, begun at an unknown time (At zero), and the repair that
	// finishes it rebuilds every record the quarantine holds.
	Damaged string `json:"-"`
}

// Describe says what is known of the unfinished repair, terminal-safe.
func (m RepairMark) Describe() string {
	if m.Damaged != "" {
		return fmt.Sprintf("a `patjanitor state repair` moved records to the quarantine bucket and did not finish rebuilding what the journal holds of them (its mark in the meta bucket does not decode: %s; the repair that finishes it rebuilds every record the quarantine holds)",
			untrusted.Terminal(untrusted.Clip(m.Damaged, 200)))
	}
	begun := "at an unknown time" // it finished one whose mark did not decode
	if !m.At.IsZero() {
		begun = "at " + m.At.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("a `patjanitor state repair` begun %s moved %d record(s) to the quarantine bucket and did not finish rebuilding what the journal holds of them",
		begun, m.Records)
}

// RepairPendingError is what Open returns for a store whose repair did not
// finish.
type RepairPendingError struct {
	Path string
	Mark RepairMark
}

func (e *RepairPendingError) Error() string {
	return fmt.Sprintf("state store %s: %s: run `%s` again to finish it", e.Path, e.Mark.Describe(), RepairCommand)
}

// checkRepair refuses a store with a repair pending.
func (s *Store) checkRepair() error {
	mark, ok, err := s.RepairPending(context.Background())
	if err != nil {
		return err
	}
	if ok {
		return &RepairPendingError{Path: s.path, Mark: mark}
	}
	return nil
}

// RepairPending returns the mark of a repair begun and not finished.
func (s *Store) RepairPending(ctx context.Context) (RepairMark, bool, error) {
	var m RepairMark
	found := false
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		found, err = readRepairMark(tx.Bucket([]byte(bucketMeta)), &m)
		return err
	})
	return m, found, err
}

// readRepairMark reads the mark of a repair pending into m. A mark that
// does not decode is still a repair pending, begun at an unknown time: m is
// the zero mark (At zero: every quarantined record is rebuilt, the safe
// direction) with Damaged set. Read as any undecodable record, it would
// name `state repair` as the way out of a store `state repair` itself
// cannot read.
func readRepairMark(meta *bolt.Bucket, m *RepairMark) (bool, error) {
	found, err := getJSON(meta, bucketMeta, keyRepairPending, m)
	var ue *UndecodableError
	if errors.As(err, &ue) {
		*m = RepairMark{Damaged: ue.Err.Error()}
		return true, nil
	}
	return found, err
}

// QuarantineNote is what a repair records with each record it moves.
type QuarantineNote struct {
	Reason string
	By     string
	// JournalSeq is the seq of the journal record naming each record, in
	// the order given (0: none).
	JournalSeq []int64
}

// Quarantine moves each record of bad, still holding the bytes it was
// found with, to the quarantine bucket, and marks the repair pending
// (EndRepair ends it), in one transaction: either every record moved and
// the mark is set, or nothing changed. A record changed or gone since it
// was found is an error, and nothing moves.
// It returns the records as moved.
func (s *Store) Quarantine(ctx context.Context, bad []BadRecord, note QuarantineNote) ([]Quarantined, error) {
	now := s.clock().UTC()
	var moved []Quarantined
	err := s.update(ctx, func(tx *bolt.Tx) error {
		moved = nil
		q, err := tx.CreateBucketIfNotExists([]byte(bucketQuarantine))
		if err != nil {
			return err
		}
		first := q.Sequence() + 1 // the sequence NextSequence gives the first record
		for i, r := range bad {
			rec, err := quarantineOne(tx, q, r, Quarantined{At: now, Reason: note.Reason, By: note.By, JournalSeq: seqAt(note.JournalSeq, i)})
			if err != nil {
				return err
			}
			moved = append(moved, rec)
		}
		// A repair that finishes an unfinished one keeps its start: the
		// next one rebuilds every record moved since (RepairMark.From).
		meta := tx.Bucket([]byte(bucketMeta))
		var mark RepairMark
		found, err := readRepairMark(meta, &mark)
		if err != nil {
			return err
		}
		if !found {
			mark = RepairMark{At: now, From: first}
		}
		mark.Records += len(bad)
		return putJSON(meta, keyRepairPending, mark)
	})
	if err != nil {
		return nil, fmt.Errorf("state store %s: quarantine: %w", s.path, err)
	}
	return moved, nil
}

func seqAt(seqs []int64, i int) int64 {
	if i < len(seqs) {
		return seqs[i]
	}
	return 0
}

func quarantineOne(tx *bolt.Tx, q *bolt.Bucket, r BadRecord, rec Quarantined) (Quarantined, error) {
	b := tx.Bucket([]byte(r.Bucket))
	var v []byte
	nested := false
	if b != nil {
		v = b.Get(r.Key)
		if nb := b.Bucket(r.Key); v == nil && nb != nil {
			v, nested = nestedValue(nb), true
		}
	}
	if sum := sha256.Sum256(v); v == nil || hex.EncodeToString(sum[:]) != r.SHA256 {
		return Quarantined{}, fmt.Errorf("the record %q in bucket %q changed since it was read; nothing was moved", untrusted.ClipID(string(r.Key)), r.Bucket)
	}
	rec.Bucket, rec.Key, rec.Value, rec.SHA256, rec.Error = r.Bucket, bytes.Clone(r.Key), bytes.Clone(v), r.SHA256, r.Err
	id, err := q.NextSequence()
	if err != nil {
		return Quarantined{}, err
	}
	if err := putJSON(q, string(binary.BigEndian.AppendUint64(nil, id)), rec); err != nil {
		return Quarantined{}, err
	}
	if nested {
		return rec, b.DeleteBucket(r.Key)
	}
	return rec, b.Delete(r.Key)
}

// EndRepair removes the mark of a repair pending: what the journal holds of
// the quarantined records is rebuilt.
func (s *Store) EndRepair(ctx context.Context) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Delete([]byte(keyRepairPending))
	})
	if err != nil {
		return fmt.Errorf("state store %s: end the repair: %w", s.path, err)
	}
	return nil
}

// QuarantinedSince returns the records moved aside by the repair mark
// names and those after it (every record for a mark From 0), oldest first.
// A quarantine record that does not decode itself is passed over (its
// bytes stay: damage to the quarantine must not close the way out again)
// and counted in lost: what it was is not known.
func (s *Store) QuarantinedSince(ctx context.Context, mark RepairMark) (out []Quarantined, lost int, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		q := tx.Bucket([]byte(bucketQuarantine))
		if q == nil {
			return nil
		}
		c := q.Cursor()
		// The keys are big-endian sequence numbers: their order is the
		// numbers'.
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, mark.From)); k != nil; k, v = c.Next() {
			var r Quarantined
			if json.Unmarshal(v, &r) != nil {
				lost++
				continue
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list the quarantined records: %w", err)
	}
	return out, lost, nil
}

// quarantinedExecution returns the quarantined record of an executed plan
// under key, if a repair moved one aside. Such a plan was executed (its
// record was written before the run's first mutation), whatever the
// journal still holds of it: its segments may be archived.
func quarantinedExecution(tx *bolt.Tx, key []byte) (Quarantined, bool) {
	q := tx.Bucket([]byte(bucketQuarantine))
	if q == nil {
		return Quarantined{}, false
	}
	c := q.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var r Quarantined
		// A quarantine record that does not decode names no plan: the
		// quarantine is written by repairs only, and checked here only as
		// a second guard after the journal's rebuild.
		if json.Unmarshal(v, &r) == nil && r.Bucket == bucketExecuted && bytes.Equal(r.Key, key) {
			return r, true
		}
	}
	return Quarantined{}, false
}

// RecordKey is the key bucket keeps the record of id under: a plan hash in
// the executed plans, a token or client id in the snoozes and the
// confirmed changes. A repair matches journal records to the records it
// quarantined with it.
func RecordKey(bucket, id string) (string, bool) {
	switch bucket {
	case bucketExecuted:
		return string(executedKey(id)), true
	case bucketSnoozes, bucketConfirmed, bucketConfirmedClients, bucketDisabled:
		return idKey(id), true
	}
	return "", false
}

// Bucket names a repair reports on (their names are the on-disk format).
const (
	BucketExecuted         = bucketExecuted
	BucketConfirmed        = bucketConfirmed
	BucketConfirmedClients = bucketConfirmedClients
	BucketSnoozes          = bucketSnoozes
	BucketMarks            = bucketMarks
	BucketClientMarks      = bucketClientMarks
	BucketReasons          = bucketReasons
	BucketDisabled         = bucketDisabled
	BucketOutbox           = bucketOutbox
	BucketDeliveries       = bucketDeliveries
	BucketMeta             = bucketMeta
)

// Holds reports whether bucket holds a record under key (a repair's report
// of what the journal rebuilt).
func (s *Store) Holds(ctx context.Context, bucket string, key []byte) (bool, error) {
	found := false
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(bucket)); b != nil {
			found = b.Get(key) != nil
		}
		return nil
	})
	return found, err
}
