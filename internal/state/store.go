package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// FileName is the name of the store file inside the state directory.
const FileName = "state.db"

// SchemaVersion is the newest schema this binary reads and writes.
const SchemaVersion = 4

// DefaultLockTimeout bounds how long Open waits for another process to release
// the file. It is short because the only legitimate holder is another
// patjanitor (a running daemon between its own transactions, or a CLI command),
// and a human at a terminal should get an answer, not a hang.
const DefaultLockTimeout = 2 * time.Second

// ErrInUse is returned (wrapped) by Open when another process holds the store's
// lock for longer than the lock timeout.
var ErrInUse = errors.New("state dir in use by another patjanitor")

// SchemaError reports a store written by a newer patjanitor than this one.
type SchemaError struct {
	Path      string
	Found     int
	Supported int
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("state store %s has schema version %d, this patjanitor supports up to %d: upgrade patjanitor or restore a backup (downgrades are not supported)",
		e.Path, e.Found, e.Supported)
}

// Bucket names. They are part of the on-disk format: renaming one needs a
// migration.
const (
	bucketMeta       = "meta"
	bucketMarks      = "marks"
	bucketDeliveries = "deliveries"
	bucketSnoozes    = "snoozes"
	bucketOutbox     = "outbox"
	bucketReasons    = "reasons" // the reason shapes of the marks (markcodec.go)

	keySchema = "schema"
)

// Options configure Open.
type Options struct {
	// Clock returns the current time; nil means time.Now. Snooze expiry and
	// default timestamps use it, so tests can move time without sleeping.
	Clock func() time.Time
	// LockTimeout bounds the wait for another process's lock; 0 means
	// DefaultLockTimeout.
	LockTimeout time.Duration
	// ReadOnly opens an existing store for reading only (plan, serve
	// --dry-run): a shared lock, no file or directory created, no migration
	// (a store of an older schema is refused with a message to run a real
	// command once), and every write fails.
	ReadOnly bool
	// Repairing opens a store whose repair did not finish (`state
	// repair`, to finish it); every other open refuses such a store with
	// a *RepairPendingError.
	Repairing bool
}

// Store is an open state file. Its methods are safe for concurrent use by one
// process; bbolt serialises writers.
type Store struct {
	db    *bolt.DB
	path  string
	clock func() time.Time
	// staged are the confirmed records waiting for the journal's next
	// anchor (StageConfirmed).
	staged staged
}

// migration moves a store from version to-1 to version to. apply runs inside
// the same transaction that records the new version, so a failed migration
// leaves the file exactly as it was.
type migration struct {
	to    int
	name  string
	apply func(tx *bolt.Tx) error
	// readable is set when this binary's readers read a store of version
	// to-1 correctly as it is, so that a read-only command (plan) need not
	// wait for a writer to migrate it.
	readable bool
}

// migrations lists every schema step in order. Version 0 is a file without a
// schema key: a new, empty file (or one created by hand with bbolt tools).
// A future change appends {to: 5, …} here and bumps SchemaVersion.
func migrations() []migration {
	return []migration{
		{to: 1, name: "create marks, deliveries, snoozes and outbox buckets", apply: migrateToV1},
		// Readers build their maps from the stored values by pat.IDKey,
		// so a store of schema 1 reads the same before the migration.
		{to: 2, name: "key marks, snoozes and deliveries by lowercase id", apply: migrateToV2, readable: true},
		// Mark readers read the JSON marks of schema 2 as well.
		{to: 3, name: "store marks as compact records", apply: rewriteMarks, readable: true},
		// And the records of schema 3 (the reason as text, times in
		// seconds and nanoseconds).
		{to: 4, name: "keep each reason shape once, mark times in milliseconds", apply: rewriteMarks, readable: true},
	}
}

func migrateToV1(tx *bolt.Tx) error {
	for _, name := range []string{bucketMarks, bucketDeliveries, bucketSnoozes, bucketOutbox} {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// Open opens (creating if needed) the store at path, takes its lock, and
// migrates it to SchemaVersion. The parent directory is created with mode 0700
// and the file with 0600: the state names tokens and owners.
func Open(path string, opts Options) (*Store, error) {
	return openWith(path, opts, migrations())
}

func openWith(path string, opts Options, migs []migration) (*Store, error) {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create state dir: %w", err)
		}
	} else if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open state store %s read-only: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, ReadOnly: opts.ReadOnly})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open state store %s: %w (lock not released within %s)", path, ErrInUse, opts.LockTimeout)
		}
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	s := &Store{db: db, path: path, clock: opts.Clock}
	check := s.migrate
	if opts.ReadOnly {
		check = s.checkSchema
	}
	if err := check(migs); err != nil {
		_ = db.Close()
		return nil, err
	}
	if !opts.Repairing {
		if err := s.checkRepair(); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	return s, nil
}

// checkSchema refuses, for a read-only store, any schema but the current
// one: an older store would need the migration a reader must not make.
func (s *Store) checkSchema(migs []migration) error {
	known := 0
	if len(migs) > 0 {
		known = migs[len(migs)-1].to
	}
	return s.db.View(func(tx *bolt.Tx) error {
		version := 0
		if meta := tx.Bucket([]byte(bucketMeta)); meta != nil {
			if v := meta.Get([]byte(keySchema)); v != nil {
				var err error
				if version, err = strconv.Atoi(string(v)); err != nil {
					return fmt.Errorf("state store %s: schema version %q is not a number", s.path, v)
				}
			}
		}
		switch {
		case version > known:
			return &SchemaError{Path: s.path, Found: version, Supported: known}
		case version < known && readableFrom(migs, version):
			return nil
		case version < known:
			return fmt.Errorf("state store %s has schema version %d and needs a migration to %d, which a read-only command does not make: run `patjanitor apply` or `serve` once", s.path, version, known)
		}
		return nil
	})
}

// readableFrom reports whether every migration after version is readable.
func readableFrom(migs []migration, version int) bool {
	for _, m := range migs {
		if m.to > version && !m.readable {
			return false
		}
	}
	return true
}

func (s *Store) migrate(migs []migration) error {
	known := 0
	if len(migs) > 0 {
		known = migs[len(migs)-1].to
	}
	// A store already at this version is not written to: opening it (every
	// command does) costs no commit and no fdatasync.
	return s.updateIfChanged(context.Background(), func(tx *bolt.Tx) (bool, error) {
		meta := tx.Bucket([]byte(bucketMeta))
		created := meta == nil
		if created {
			var err error
			if meta, err = tx.CreateBucket([]byte(bucketMeta)); err != nil {
				return false, fmt.Errorf("create meta bucket: %w", err)
			}
		}
		version := 0
		if v := meta.Get([]byte(keySchema)); v != nil {
			var err error
			version, err = strconv.Atoi(string(v))
			if err != nil {
				return false, fmt.Errorf("state store %s: schema version %q is not a number", s.path, v)
			}
		}
		if version > known {
			return false, &SchemaError{Path: s.path, Found: version, Supported: known}
		}
		if version == known && !created {
			return false, nil
		}
		for _, m := range migs {
			if m.to <= version {
				continue
			}
			if err := m.apply(tx); err != nil {
				return false, fmt.Errorf("migrate state store %s to schema %d (%s): %w", s.path, m.to, m.name, err)
			}
			version = m.to
		}
		return true, meta.Put([]byte(keySchema), []byte(strconv.Itoa(version)))
	})
}

// Close releases the lock and closes the file.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close state store %s: %w", s.path, err)
	}
	return nil
}

// Path is the store's file.
func (s *Store) Path() string { return s.path }

// Now is the store's clock.
func (s *Store) Now() time.Time { return s.clock() }

// view and update refuse to start once ctx is done. bbolt transactions are
// short and not interruptible, so checking before starting is the useful
// place.
func (s *Store) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.named(s.db.View(fn))
}

func (s *Store) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.named(s.db.Update(fn))
}

// updateIfChanged is update for a transaction that may find nothing to do:
// fn reports whether it wrote anything, and a transaction that did not is
// rolled back instead of committed. A bbolt commit writes and fdatasyncs the
// meta page even when no key changed, and a run that has nothing new to do
// must not pay a sync per step.
func (s *Store) updateIfChanged(ctx context.Context, fn func(*bolt.Tx) (bool, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		return err
	}
	changed, err := fn(tx)
	if err != nil || !changed {
		_ = tx.Rollback()
		return s.named(err)
	}
	return tx.Commit()
}

// putJSON writes v under key as JSON (marks are not JSON: markTable).
func putJSON(b *bolt.Bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if err := b.Put([]byte(key), raw); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// getJSON reads the JSON value under key of bucket name into v. A value
// that does not decode is an *UndecodableError naming the bucket and the
// key (clipped: a key may be an id as listed, up to bolt.MaxKeySize).
func getJSON(b *bolt.Bucket, name, key string, v any) (bool, error) {
	if b == nil {
		return false, nil
	}
	raw := b.Get([]byte(key))
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, undecodable(name, []byte(key), err)
	}
	return true, nil
}

// forEachJSON passes each value of bucket name, decoded, to fn with its
// key; none when the bucket does not exist (no write has made it yet). A
// value that does not decode stops the walk with an *UndecodableError.
func forEachJSON[T any](tx *bolt.Tx, name string, fn func(k []byte, v T)) error {
	b := tx.Bucket([]byte(name))
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		var x T
		if err := json.Unmarshal(v, &x); err != nil {
			return undecodable(name, k, err)
		}
		fn(k, x)
		return nil
	})
}

// bucket returns a bucket that migrations guarantee to exist.
func bucket(tx *bolt.Tx, name string) *bolt.Bucket { return tx.Bucket([]byte(name)) }
