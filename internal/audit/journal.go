package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit: journal closed")

// ErrFailed is wrapped by every Append after a write or fsync failed: the
// journal's durable state is then unknown, and nothing more is written to it.
var ErrFailed = errors.New("audit: journal failed")

// ErrInUse is wrapped by Open when another process holds the journal's lock
// (a running `patjanitor serve`).
var ErrInUse = errors.New("journal in use by another patjanitor")

// Options configure Open.
type Options struct {
	// Clock stamps records (default time.Now).
	Clock func() time.Time

	// wrap, when set (tests only), wraps the file Append writes through.
	wrap func(appendFile) appendFile
}

// appendFile is what Append needs of the journal file; tests wrap it to
// observe the order of writes and syncs or to inject failures.
type appendFile interface {
	Write(p []byte) (int, error)
	Sync() error
	Truncate(size int64) error
	Close() error
}

// Journal appends records to a journal file. It is safe for concurrent use:
// Append serialises writers, so concurrent runs of the same process share one
// chain. An exclusive lock on the file keeps other processes out (on systems
// with flock).
type Journal struct {
	path  string
	clock func() time.Time

	mu       sync.Mutex
	f        appendFile
	seq      int64
	hash     string
	size     int64
	failed   error
	closed   bool
	pending  []Record
	repaired int64
}

// Open opens the journal at path for appending, creating it (mode 0600) and
// its directory (0700) if needed. It reads the existing journal once, as a
// stream, verifying the whole chain and finding the last seq and hash:
//
//   - A torn final record (a last line without its newline, or an unreadable
//     last line, that begins like a record or with NUL bytes) is removed.
//     Such a line is what a crash in the middle of Append leaves. Append
//     returns only after the line and its newline are written and fsynced,
//     and the engine sends a request only after its intent's
//     Append returned, so a torn intent's request was never sent: removing
//     the line loses nothing that happened. The number of bytes removed is
//     reported by Repaired. A last line of any other shape is not repaired
//     but refused, so a path that names some other file is never truncated.
//   - Any other break in the chain (a changed, missing or reordered record) is
//     an error naming the record, and the journal is not opened: appending
//     would bury the evidence.
//
// Open fails if the file or its directory cannot be created or written, so a
// run that cannot journal learns it before its first mutation.
func Open(path string, opts Options) (*Journal, error) {
	if path == "" {
		return nil, errors.New("audit: no journal path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: create the journal directory: %w", err)
	}
	_, statErr := os.Lstat(path)
	created := errors.Is(statErr, fs.ErrNotExist)
	// O_APPEND: every write goes to the end, whatever else moved the offset.
	osf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open the journal: %w", err)
	}
	j, err := open(path, osf, created, opts)
	if err != nil {
		_ = osf.Close()
		return nil, err
	}
	return j, nil
}

func open(path string, osf *os.File, created bool, opts Options) (*Journal, error) {
	fi, err := osf.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit: journal %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("audit: journal %s is not a regular file", path)
	}
	if err := lockFile(osf); err != nil {
		return nil, fmt.Errorf("audit: journal %s is in use by another process: %w: %w", path, ErrInUse, err)
	}
	if created {
		// Make the new file's directory entry durable too: an fsynced
		// record in a file whose name is lost is no record.
		if err := syncDir(filepath.Dir(path)); err != nil {
			return nil, fmt.Errorf("audit: journal %s: %w", path, err)
		}
	}
	w, err := walk(osf, nil)
	if err != nil {
		return nil, fmt.Errorf("audit: journal %s is damaged, refusing to append to it (run `patjanitor audit verify`): %w", path, err)
	}
	pending, err := w.pendingIntents()
	if err != nil {
		return nil, fmt.Errorf("audit: journal %s: %w", path, err)
	}
	j := &Journal{
		path:    path,
		clock:   opts.Clock,
		seq:     w.seq,
		hash:    w.hash,
		size:    w.good,
		pending: pending,
	}
	if j.clock == nil {
		j.clock = time.Now
	}
	if w.torn != nil {
		if err := osf.Truncate(w.good); err != nil {
			return nil, fmt.Errorf("audit: journal %s: remove the torn final record at line %d: %w", path, w.torn.Line, err)
		}
		if err := osf.Sync(); err != nil {
			return nil, fmt.Errorf("audit: journal %s: sync after removing the torn final record: %w", path, err)
		}
		j.repaired = fi.Size() - w.good
	}
	j.f = osf
	if opts.wrap != nil {
		j.f = opts.wrap(osf)
	}
	return j, nil
}

// Path returns the journal's file name.
func (j *Journal) Path() string { return j.path }

// Pending returns the intents without an outcome found when the journal was
// opened, in journal order: mutations an earlier process was interrupted in.
// The engine resolves them against a fresh listing (and journals an outcome
// for each). It is a snapshot of Open, not updated by Append.
func (j *Journal) Pending() []Record {
	return append([]Record(nil), j.pending...)
}

// Repaired returns how many bytes of a torn final record Open removed (0 if
// none).
func (j *Journal) Repaired() int64 { return j.repaired }

// Append completes rec (Seq, Time, PrevHash, Hash), writes it as one line and
// fsyncs the file; it returns the record as written only after the fsync
// succeeded. A record missing what its kind needs is refused (see
// Record). If the write or the fsync fails, the journal is failed: the partial
// line is removed if possible, and this and every later Append return an
// error wrapping ErrFailed. ctx is checked before writing; a write once begun
// is not interrupted.
func (j *Journal) Append(ctx context.Context, rec Record) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, fmt.Errorf("audit: append %s: %w", rec.Kind, err)
	}
	if err := validate(&rec); err != nil {
		return Record{}, fmt.Errorf("audit: append %s: %w", rec.Kind, err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case j.closed:
		return Record{}, ErrClosed
	case j.failed != nil:
		return Record{}, fmt.Errorf("%w (%s), nothing more is written: %w", ErrFailed, j.path, j.failed)
	}
	rec.Seq = j.seq + 1
	rec.Time = j.clock().UTC()
	rec.PrevHash = j.hash
	rec.Hash = ""
	line, hash, err := encode(&rec)
	if err != nil {
		return Record{}, fmt.Errorf("audit: append %s: %w", rec.Kind, err)
	}
	if n, err := j.f.Write(line); err != nil || n != len(line) {
		if err == nil {
			err = io.ErrShortWrite
		}
		return Record{}, j.fail(fmt.Errorf("write record seq %d: %w", rec.Seq, err))
	}
	if err := j.f.Sync(); err != nil {
		return Record{}, j.fail(fmt.Errorf("fsync record seq %d: %w", rec.Seq, err))
	}
	j.seq, j.hash = rec.Seq, hash
	j.size += int64(len(line))
	rec.Hash = hash
	return rec, nil
}

// fail marks the journal failed. Why sticky: after a failed fsync the kernel
// may have dropped the dirty pages and cleared the error, so a later fsync
// could "succeed" over lost data; the only safe answer is to stop. The
// truncation removes a record whose Append reported failure, so that the file
// does not claim an intent the engine never acted on (best effort: a crash or
// a second failure leaves it for Open's torn-record repair or for the
// engine's recovery, which treats it as an interrupted intent).
func (j *Journal) fail(err error) error {
	j.failed = err
	if terr := j.f.Truncate(j.size); terr == nil {
		_ = j.f.Sync()
	}
	return fmt.Errorf("%w (%s): %w", ErrFailed, j.path, err)
}

// Close releases the file (and its lock). Append fails afterwards.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	if err := j.f.Close(); err != nil {
		return fmt.Errorf("audit: close journal %s: %w", j.path, err)
	}
	return nil
}

// validate checks that a record carries what its kind needs, so the journal
// can answer "what was about to happen to which token" for every intent.
func validate(r *Record) error {
	if !r.Kind.Valid() {
		return fmt.Errorf("unknown record kind %q", r.Kind)
	}
	var missing []string
	need := func(ok bool, what string) {
		if !ok {
			missing = append(missing, what)
		}
	}
	switch r.Kind {
	case KindRunStart, KindRunEnd:
		need(r.RunID != "", "runId")
	case KindIntent:
		need(r.RunID != "", "runId")
		need(r.TokenID != "", "tokenId")
		need(r.Before != nil, "before (the token as listed)")
		need(r.Request != nil && r.Request.Method != "" && r.Request.Path != "", "request (method and path)")
		if r.Before != nil && r.Before.ID != r.TokenID {
			return fmt.Errorf("before.id %q is not the tokenId %q", r.Before.ID, r.TokenID)
		}
	case KindOutcome:
		need(r.RunID != "", "runId")
		need(r.TokenID != "", "tokenId")
		need(r.Outcome != nil && r.Outcome.Status != "", "outcome status")
	case KindSnooze:
		need(r.TokenID != "", "tokenId")
		need(r.Until != nil, "until")
	}
	if len(missing) > 0 {
		return fmt.Errorf("record lacks %v", missing)
	}
	return nil
}

// encode renders the record line (with its newline) and its hash; see the
// package documentation for the definition.
func encode(r *Record) ([]byte, string, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, "", fmt.Errorf("encode: %w", err)
	}
	empty := []byte(hashKey + `""}`)
	if !bytes.HasSuffix(b, empty) {
		// Only a change to Record's field order could cause this.
		return nil, "", errors.New("encode: the hash key is not last")
	}
	prefix := b[:len(b)-3] // up to and including `,"hash":`
	h := sum(prefix)
	line := make([]byte, 0, len(prefix)+len(h)+4)
	line = append(line, prefix...)
	line = append(line, '"')
	line = append(line, h...)
	line = append(line, "\"}\n"...)
	if len(line) > MaxRecordSize {
		return nil, "", fmt.Errorf("record of %d bytes is larger than %d", len(line), MaxRecordSize)
	}
	return line, h, nil
}

// syncDir fsyncs a directory so that a new entry in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
