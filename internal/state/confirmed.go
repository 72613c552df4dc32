package state

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// bucketConfirmed holds the token mutations the tenant confirmed and a later
// listing has not yet shown in effect, by idKey of the token id. Like
// disabled-clients it is created by its first write: a store without it has
// no such records, so no schema step is needed.
const bucketConfirmed = "confirmed-mutations"

// bucketConfirmedClients holds the same records for OAuth API clients (a
// confirmed disable or delete), by idKey of the client id. A bucket of its
// own rather than a prefix in the token bucket: a key of one can never be
// read as the other's (ids are the tenant's, any string), each has its own
// MaxConfirmed, and a store without it has no such records.
const bucketConfirmedClients = "confirmed-client-mutations"

// MaxConfirmed bounds the records kept. A record lives from the confirmed
// mutation to the first complete listing taken after the settle margin
// (normally the next run), so a store holds about one run's mutations, at
// most limits.maxActionsPerRun each; only a tenant that lies, or a long run
// of incomplete listings, keeps more. Past the bound the oldest records not
// found still listed are dropped first (UpdateConfirmed): those found still
// listed are what the operators must hear about.
const MaxConfirmed = 10000

// Confirmed is a token mutation the tenant confirmed (204 to a DELETE, 200 to
// a PATCH or a bulk update showing the values), kept until a listing proves
// that it is in effect: the deleted token is no longer listed, the patched one
// shows the change. A tenant or a proxy that answers success without doing
// the change is caught by the listing that still shows it.
type Confirmed struct {
	// TokenID is the id of the token, or of the API client when Resource
	// is "apiClients" (as the journal's records name either).
	TokenID string `json:"tokenId"`
	// Resource is empty for a token, "apiClients" for an API client (set
	// by ConfirmedClientMutations from the bucket, whatever the value says).
	Resource string `json:"resource,omitempty"`
	OwnerID  string `json:"ownerId,omitempty"`
	// Name is an API client's name when the change was sent (clipped as
	// OwnerID is; empty for a token, and in records written before it was
	// kept): it names the client in `patjanitor unproven`.
	Name   string `json:"name,omitempty"`
	Policy string `json:"policy"`
	// Action is delete, patch or expire (a token's), delete or disable (an
	// API client's).
	Action string `json:"action"`
	// Patch are the operations sent (patch, expire): what the listing must
	// show.
	Patch []pat.PatchOp `json:"patch,omitempty"`
	// Before is what the token showed of the fields Patch changes when the
	// request was sent (nil for a delete, and in records written before it
	// was kept): a listing that still shows it shows the change not made,
	// one that shows neither it nor Patch's values shows the token changed
	// since by someone else.
	Before *Shown `json:"before,omitempty"`
	// RunID is the run that sent the confirmed request, Code the status the
	// tenant answered, At when (the latest confirmation: a token found
	// still listed may be acted on again).
	RunID string    `json:"runId"`
	Code  int       `json:"code,omitempty"`
	At    time.Time `json:"at"`
	// StillListed is when a listing first showed the mutation not in
	// effect (nil: never yet), Checks how many listings have, and LastSeen
	// and LastRun the time and run of the latest such listing.
	StillListed *time.Time `json:"stillListed,omitempty"`
	Checks      int        `json:"checks,omitempty"`
	LastSeen    *time.Time `json:"lastSeen,omitempty"`
	LastRun     string     `json:"lastRun,omitempty"`
	// Ack is an operator's acknowledgement of a record found not in
	// effect (`patjanitor acknowledge`) made while a running serve held
	// the journal: that serve's next run journals it and drops the record
	// (nil: none pending).
	Ack *Ack `json:"ack,omitempty"`
}

// Ack is who acknowledged a change found not in effect, when and why.
type Ack struct {
	Reason string    `json:"reason"`
	By     string    `json:"by,omitempty"`
	At     time.Time `json:"at"`
}

// Shown is what a token showed of the fields a patch or expire changes
// (a field left nil or empty is not known).
type Shown struct {
	Name           string      `json:"name,omitempty"`
	Scope          *pat.Scopes `json:"scope,omitempty"`
	ExpirationDate *time.Time  `json:"expirationDate,omitempty"`
	NeverExpires   *bool       `json:"neverExpires,omitempty"`
	// Modified is an API client's modified time when a disable was sent: a
	// listing that shows the client enabled and modified since shows it
	// changed again by someone else (re-enabled), not a disable never made.
	Modified *time.Time `json:"modified,omitempty"`
}

// Unproven reports whether a listing has shown the mutation not in effect.
func (c *Confirmed) Unproven() bool { return c.StillListed != nil }

// ConfirmedMutations returns every record, oldest confirmation first. A
// record that does not decode fails the read, naming its key: the caller
// must not take a damaged store for one without records.
func (s *Store) ConfirmedMutations(ctx context.Context) ([]Confirmed, error) {
	return s.confirmed(ctx, bucketConfirmed, "")
}

// ConfirmedClientMutations returns every API client record (Resource
// "apiClients"), oldest confirmation first, as ConfirmedMutations.
func (s *Store) ConfirmedClientMutations(ctx context.Context) ([]Confirmed, error) {
	return s.confirmed(ctx, bucketConfirmedClients, apiclient.Resource)
}

func (s *Store) confirmed(ctx context.Context, bucket, resource string) ([]Confirmed, error) {
	var out []Confirmed
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return forEachJSON(tx, bucket, func(_ []byte, c Confirmed) {
			c.Resource = resource
			out = append(out, c)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read the confirmed mutations: %w", err)
	}
	slices.SortStableFunc(out, func(a, b Confirmed) int { return a.At.Compare(b.At) })
	return out, nil
}

// ackField is how a record that holds an acknowledgement spells its key
// (encoding/json, which wrote it, puts no space before the colon). A
// string value cannot hold it: its quotes are escaped.
var ackField = []byte(`"ack":`)

// PendingAcks returns the records of both buckets that hold an
// acknowledgement still to be journaled (Ack set, found still listed),
// tokens' first. Every serve run asks, and almost never finds one: a
// record without the ack key is passed over without being decoded, so a
// bucket at MaxConfirmed costs a scan of its bytes, not the decoding the
// run's own read of the records does again (80 ms and 24 MB a bucket).
// A bucket with a record that holds the key but does not decode is
// passed over whole, and reported in errs: the run's read of the records
// reports the damage where it matters.
func (s *Store) PendingAcks(ctx context.Context) (acks []Confirmed, errs []error) {
	for _, bk := range []struct{ name, resource string }{{bucketConfirmed, ""}, {bucketConfirmedClients, apiclient.Resource}} {
		var found []Confirmed
		err := s.view(ctx, func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(bk.name))
			if b == nil {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				if !bytes.Contains(v, ackField) {
					return nil
				}
				var c Confirmed
				if err := json.Unmarshal(v, &c); err != nil {
					return undecodable(bk.name, k, err)
				}
				if c.Ack != nil && c.Unproven() {
					c.Resource = bk.resource
					found = append(found, c)
				}
				return nil
			})
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("read the acknowledged confirmed mutations: %w", err))
			continue
		}
		slices.SortStableFunc(found, func(a, b Confirmed) int { return a.At.Compare(b.At) })
		acks = append(acks, found...)
	}
	return acks, errs
}

// UpdateConfirmed writes put (each replacing the record of its token) and
// removes the records of the ids in drop, in one transaction, and then keeps
// the bucket within MaxConfirmed. It returns how many records the bound
// evicted. Nothing to write costs no transaction.
func (s *Store) UpdateConfirmed(ctx context.Context, put []Confirmed, drop []string) (evicted int, err error) {
	return s.updateConfirmed(ctx, bucketConfirmed, put, drop)
}

// UpdateConfirmedClients is UpdateConfirmed for the API client records (by
// client id; a bucket of their own, bounded by MaxConfirmed on its own).
func (s *Store) UpdateConfirmedClients(ctx context.Context, put []Confirmed, drop []string) (evicted int, err error) {
	return s.updateConfirmed(ctx, bucketConfirmedClients, put, drop)
}

func (s *Store) updateConfirmed(ctx context.Context, bucket string, put []Confirmed, drop []string) (evicted int, err error) {
	if len(put) == 0 && len(drop) == 0 {
		return 0, nil
	}
	if err := checkConfirmed(put); err != nil {
		return 0, err
	}
	err = s.update(ctx, func(tx *bolt.Tx) error {
		// The staged records first: put, written after them, is the newer
		// word on the same token.
		if err := s.writeStaged(tx); err != nil {
			return err
		}
		evicted, err = putConfirmed(tx, bucket, put, drop)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("update the confirmed mutations: %w", err)
	}
	return evicted + s.staged.takeEvicted(bucket), nil
}

func checkConfirmed(put []Confirmed) error {
	for _, c := range put {
		switch {
		case c.TokenID == "":
			return fmt.Errorf("put confirmed mutation: empty token id")
		case c.At.IsZero():
			return fmt.Errorf("put confirmed mutation of token %s: no time", untrusted.ClipID(c.TokenID))
		}
	}
	return nil
}

// putConfirmed writes put and removes drop in bucket, in tx, and keeps the
// bucket within MaxConfirmed; it returns how many records the bound evicted.
func putConfirmed(tx *bolt.Tx, bucket string, put []Confirmed, drop []string) (evicted int, err error) {
	b, err := tx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return 0, err
	}
	for _, id := range drop {
		if err := b.Delete([]byte(idKey(id))); err != nil {
			return 0, fmt.Errorf("drop %s: %w", untrusted.ClipID(id), err)
		}
	}
	for _, c := range put {
		raw, err := json.Marshal(c)
		if err != nil {
			return 0, fmt.Errorf("encode %s: %w", untrusted.ClipID(c.TokenID), err)
		}
		if err := b.Put([]byte(idKey(c.TokenID)), raw); err != nil {
			return 0, fmt.Errorf("write %s: %w", untrusted.ClipID(c.TokenID), err)
		}
	}
	if len(put) == 0 || countKeys(b) <= MaxConfirmed {
		return 0, nil
	}
	return evictConfirmed(b)
}

// StageConfirmed hands over records to be written (as UpdateConfirmed puts
// them) by the store's next transaction that writes the journal's anchor
// or the confirmed records, whichever comes first. The engine stages the
// record of a change the tenant confirmed before it journals the change's
// outcome, and the anchor write that follows that append commits the
// record with the anchor: no crash can leave the anchor past an applied
// outcome without its record (the journal's catch-up rebuilds records only
// from what follows the anchor), and the record costs no transaction of
// its own. Staged records live in this Store only: they are lost with the
// process, as the anchor that did not follow them is.
func (s *Store) StageConfirmed(put []Confirmed) error {
	return s.staged.add(bucketConfirmed, put)
}

// StageConfirmedClients is StageConfirmed for API client records.
func (s *Store) StageConfirmedClients(put []Confirmed) error {
	return s.staged.add(bucketConfirmedClients, put)
}

// staged holds the records of StageConfirmed until a transaction writes
// them. Each is numbered as it is staged: a transaction's commit handler
// drops what it wrote by number, not by count, because bbolt runs commit
// handlers after it lets the next writer in, which may have written the
// same records again (and more) before the first handler runs.
type staged struct {
	mu      sync.Mutex
	last    uint64                   // the number of the last record staged
	records map[string][]stagedEntry // by bucket, in the order staged
	evicted map[string]int           // by bucket: what writing them evicted, not yet reported
}

type stagedEntry struct {
	n uint64
	c Confirmed
}

func (st *staged) add(bucket string, put []Confirmed) error {
	if err := checkConfirmed(put); err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.records == nil {
		st.records, st.evicted = map[string][]stagedEntry{}, map[string]int{}
	}
	for _, c := range put {
		st.last++
		st.records[bucket] = append(st.records[bucket], stagedEntry{n: st.last, c: c})
	}
	return nil
}

// takeEvicted returns, once, how many records writing staged ones of
// bucket evicted: UpdateConfirmed's caller warns about them.
func (st *staged) takeEvicted(bucket string) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := st.evicted[bucket]
	delete(st.evicted, bucket)
	return n
}

// writeStaged writes the staged records in tx; once tx commits they are no
// longer staged (a transaction that fails leaves them for the next one).
func (s *Store) writeStaged(tx *bolt.Tx) error {
	s.staged.mu.Lock()
	batch := make(map[string][]Confirmed, len(s.staged.records))
	upTo := s.staged.last
	for b, es := range s.staged.records {
		for _, e := range es {
			batch[b] = append(batch[b], e.c)
		}
	}
	s.staged.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	evicted := map[string]int{}
	for b, cs := range batch {
		n, err := putConfirmed(tx, b, cs, nil)
		if err != nil {
			return fmt.Errorf("write the staged confirmed mutations: %w", err)
		}
		evicted[b] = n
	}
	tx.OnCommit(func() { s.staged.written(upTo, evicted) })
	return nil
}

// written drops the records numbered up to upTo, which a committed
// transaction wrote, and counts what writing them evicted.
func (st *staged) written(upTo uint64, evicted map[string]int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for b, es := range st.records {
		i := 0
		for i < len(es) && es[i].n <= upTo {
			i++
		}
		if i == len(es) {
			delete(st.records, b)
		} else {
			st.records[b] = es[i:]
		}
	}
	for b, n := range evicted {
		st.evicted[b] += n
	}
}

// countKeys counts the keys of b. (Bucket.Stats counts the pages, which do
// not hold this transaction's writes yet.)
func countKeys(b *bolt.Bucket) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n
}

// evictConfirmed drops records until MaxConfirmed are left: the oldest
// confirmations first, those never found still listed before those that
// were.
func evictConfirmed(b *bolt.Bucket) (int, error) {
	type entry struct {
		key     []byte
		at      time.Time
		flagged bool
	}
	var all []entry
	if err := b.ForEach(func(k, v []byte) error {
		var c Confirmed
		// An undecodable record goes first: it proves nothing either way.
		if json.Unmarshal(v, &c) == nil {
			all = append(all, entry{key: slices.Clone(k), at: c.At, flagged: c.Unproven()})
		} else {
			all = append(all, entry{key: slices.Clone(k)})
		}
		return nil
	}); err != nil {
		return 0, err
	}
	slices.SortStableFunc(all, func(a, b entry) int {
		if a.flagged != b.flagged {
			if a.flagged {
				return 1
			}
			return -1
		}
		return a.at.Compare(b.at)
	})
	n := len(all) - MaxConfirmed
	for _, e := range all[:n] {
		if err := b.Delete(e.key); err != nil {
			return 0, err
		}
	}
	return n, nil
}
