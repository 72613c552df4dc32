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
	"slices"
	"sync"
	"time"
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit: journal closed")

// ErrFailed is wrapped by every Append after a write or fsync failed: the
// journal's durable state is then unknown, and nothing more is written to it.
var ErrFailed = errors.New("audit: journal failed")

// ErrInUse is returned when another process holds the journal's lock
// (a running `patjanitor serve`).
var ErrInUse = errors.New("journal in use by another patjanitor")

// ErrChanged is wrapped by Check, Attach and Append when the journal file is
// no longer what this process last wrote: deleted, replaced, truncated or
// written to by someone else. Nothing more is written to it (a record in an
// unlinked file is a record nobody will read), and every later Append fails.
var ErrChanged = errors.New("the journal was changed by something other than this patjanitor")

// Options configure Open.
type Options struct {
	// Clock stamps records (default time.Now).
	Clock func() time.Time

	// Anchors, when set, keeps the journal's anchor (see Anchor): Open
	// compares the journal with it and verifies only what follows it, and
	// every Append updates it until Detach. Without it, Open verifies the
	// whole journal and nothing detects a missing tail.
	Anchors AnchorStore

	// Tail, when set with Anchors, is handed the records after the anchor
	// (the state store is behind the journal: see Tail) before Open moves
	// the anchor past them.
	Tail Tail

	// SegmentBytes is the size past which Append rotates the journal into
	// a sealed segment (0: DefaultSegmentBytes; negative: never).
	SegmentBytes int64

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
	path     string
	clock    func() time.Time
	segBytes int64
	wrap     func(appendFile) appendFile

	mu       sync.Mutex
	osf      *os.File // the active file, for fstat and reads
	f        appendFile
	ctime    int64      // the file's change time after our last write (0: unknown)
	stamp    *FileStamp // the file's stamp after our last write (nil: unknown)
	segments int        // sealed segments: the active file's index
	seq      int64
	hash     string
	size     int64
	open     map[intentKey]openIntent
	anchors  AnchorStore
	failed   error
	closed   bool
	pending  []Record
	repairs  []Repair // what Open repaired
}

// Open opens the journal at path for appending, creating it (mode 0600) and
// its directory (0700) if needed, and finds its last seq and hash.
//
// With an anchor (Options.Anchors), Open checks that the anchored record is
// still where the anchor says, and verifies only the records after it: a
// journal that ends before its anchor (a missing tail, an emptied, deleted or
// replaced file) is refused with an *AnchorError. Without one (the first run,
// or a journal from before anchors) it verifies the whole chain, across its
// segments, and stores the anchor.
//
//   - A torn final record (an unreadable last line that begins like a record
//     or with NUL bytes, in a file whose records before it are intact) is
//     removed, after its bytes are saved, fsynced, to a file beside the
//     journal (see TornPath); if they cannot be saved, Open fails and the
//     journal is left as it is. Such a line is what a crash in the middle of Append leaves.
//     Append returns only after the line and its newline are written and
//     fsynced, and the engine sends a request only after its intent's
//     Append returned, so a torn intent's request was never sent: removing
//     the line loses nothing that happened.
//   - A last record that is complete and valid but lacks only its newline is
//     kept, and the newline is added.
//
// Both repairs are reported by Repairs, for the caller to tell the operator.
//   - A file whose first line is not a journal record is refused and never
//     changed, so a path that names some other file is never truncated.
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
	j, err := open(context.Background(), path, osf, created, opts)
	if err != nil {
		_ = osf.Close()
		return nil, err
	}
	return j, nil
}

func open(ctx context.Context, path string, osf *os.File, created bool, opts Options) (*Journal, error) {
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
	first, last, err := segments(path)
	if err != nil {
		return nil, fmt.Errorf("audit: journal %s: %w", path, err)
	}
	j := &Journal{
		path: path, clock: opts.Clock, segBytes: opts.SegmentBytes, wrap: opts.wrap,
		osf: osf, segments: last, anchors: opts.Anchors,
	}
	if j.clock == nil {
		j.clock = time.Now
	}
	if j.segBytes == 0 {
		j.segBytes = DefaultSegmentBytes
	}
	var (
		anchor    Anchor
		hasAnchor bool
	)
	if opts.Anchors != nil {
		if anchor, hasAnchor, err = opts.Anchors.LoadAnchor(ctx); err != nil {
			return nil, fmt.Errorf("audit: journal %s: read its anchor: %w", path, err)
		}
	}
	w := newWalker(nil)
	start := 0
	if hasAnchor {
		if err := j.fromAnchor(w, anchor); err != nil {
			if created && fi.Size() == 0 {
				// Leave no empty file behind the refusal: a journal that
				// is missing must stay missing for the next look. (The
				// file is this process's: it created it and holds its
				// lock.)
				_ = os.Remove(path)
			}
			return nil, err
		}
		start = anchor.Segment
		held, err := decodeOpen(w.open) // the intents the anchor lists as open
		if err != nil {
			return nil, fmt.Errorf("audit: journal %s: %w", path, err)
		}
		if !j.untouched(anchor) && first <= 1 {
			// Someone else changed the file since the anchor was written
			// (or it was copied or restored): the records before the
			// anchor are no longer known good; verify them all, once.
			w, start = newWalker(nil), 0
		}
		if opts.Tail != nil {
			w.follow(opts.Tail, held, anchor.Seq)
		}
	} else if first > 1 {
		return nil, fmt.Errorf("audit: journal %s: its segments 1 to %d are not here (archived?) and the state store has no anchor to start from: restore them, or the state store", path, first-1)
	} else if first == 1 {
		start = 0
	}
	if err := j.walkFrom(w, start); err != nil {
		var ce *ChainError
		if errors.As(err, &ce) && ce.Foreign() {
			return nil, fmt.Errorf("audit: %s is not a patjanitor journal; refusing to use it (it is left unchanged): %w", path, err)
		}
		return nil, fmt.Errorf("audit: journal %s is damaged, refusing to append to it (run `patjanitor audit verify`): %w", path, err)
	}
	if hasAnchor && opts.Tail != nil && w.seq > anchor.Seq {
		// Before anything changes (the torn record's removal, the anchor):
		// a tail that cannot be taken in is handed again next time.
		if err := opts.Tail.Done(ctx); err != nil {
			return nil, fmt.Errorf("audit: journal %s holds records after its anchor in the state store (seq %d to %d: the store is older than the journal, restored from a backup?), and what the store lost with them could not be rebuilt from them: %w; nothing was changed", path, anchor.Seq+1, w.seq, err)
		}
	}
	if created {
		// Make the new file's directory entry durable too: an fsynced
		// record in a file whose name is lost is no record.
		if err := syncDir(filepath.Dir(path)); err != nil {
			return nil, fmt.Errorf("audit: journal %s: %w", path, err)
		}
	}
	pending, err := w.pendingIntents()
	if err != nil {
		return nil, fmt.Errorf("audit: journal %s: %w", path, err)
	}
	j.seq, j.hash, j.size, j.open, j.pending = w.seq, w.hash, w.good, w.open, pending
	switch {
	case w.torn != nil:
		// Keep the removed bytes before removing them: they are evidence,
		// and an operator or auditor may want to see what the crash (or
		// whoever wrote there) left. No copy, no repair.
		r, err := saveTorn(path, osf, w.good, w.torn.Line, j.clock())
		if err != nil {
			return nil, fmt.Errorf("audit: journal %s: the torn final record at line %d is not removed: %w", path, w.torn.Line, err)
		}
		if err := osf.Truncate(w.good); err != nil {
			return nil, fmt.Errorf("audit: journal %s: remove the torn final record at line %d: %w", path, w.torn.Line, err)
		}
		if err := osf.Sync(); err != nil {
			return nil, fmt.Errorf("audit: journal %s: sync after removing the torn final record: %w", path, err)
		}
		j.repairs = append(j.repairs, r)
	case w.unterminated:
		// A complete record without its newline: add the newline rather
		// than lose the record.
		if _, err := osf.Write([]byte{'\n'}); err != nil {
			return nil, fmt.Errorf("audit: journal %s: complete the last record's line: %w", path, err)
		}
		if err := osf.Sync(); err != nil {
			return nil, fmt.Errorf("audit: journal %s: sync the last record's newline: %w", path, err)
		}
		j.repairs = append(j.repairs, Repair{Kind: RepairNewline, File: path, Line: w.line, Offset: j.size})
		j.size++
	}
	j.f = osf
	if j.wrap != nil {
		j.f = j.wrap(osf)
	}
	if err := j.remember(); err != nil {
		return nil, fmt.Errorf("audit: journal %s: %w", path, err)
	}
	if j.anchors != nil && (!hasAnchor || !sameAnchor(anchor, j.anchorLocked())) {
		if err := j.anchors.StoreAnchor(ctx, j.anchorLocked()); err != nil {
			return nil, fmt.Errorf("audit: journal %s: store its anchor: %w", path, err)
		}
	}
	return j, nil
}

// untouched reports whether the anchor's file is exactly as the anchor
// recorded it: same file, same change time.
func (j *Journal) untouched(a Anchor) bool {
	if a.File == nil || a.Segment != j.segments {
		return false
	}
	fi, err := j.osf.Stat()
	if err != nil {
		return false
	}
	now := stampOf(fi)
	return now != nil && *now == *a.File
}

// fileName is the file with index i: a sealed segment, or the active file.
func (j *Journal) fileName(i int) string {
	if i < j.segments {
		return SegmentPath(j.path, i+1)
	}
	return j.path
}

// openIndex opens file i for reading (the active file is osf, not reopened).
func (j *Journal) openIndex(i int) (readerAt, func(), error) {
	if i == j.segments {
		return j.osf, func() {}, nil
	}
	f, err := openNoBlock(j.fileName(i))
	if err != nil {
		return nil, nil, err
	}
	return f, func() { _ = f.Close() }, nil
}

// fromAnchor starts w at the anchored record after checking that it is where
// the anchor says, and adds the intents the anchor lists as open.
func (j *Journal) fromAnchor(w *walker, a Anchor) error {
	fail := func(format string, args ...any) error {
		return &AnchorError{Journal: j.path, Anchor: a, Reason: fmt.Sprintf(format, args...)}
	}
	if a.Segment > j.segments {
		return fail("the journal has %d sealed segments, the anchor is in segment %d (segments missing, or a state store of another journal)", j.segments, a.Segment)
	}
	if a.Seq < 0 || a.Offset < 0 || (a.Offset == 0) != (a.Seq == 0) {
		return fail("the anchor is not valid")
	}
	f, done, err := j.openIndex(a.Segment)
	if errors.Is(err, fs.ErrNotExist) && a.Segment < j.segments {
		// A sealed segment archived, as operators do: the store was
		// restored from a backup older than the segments left beside the
		// journal. The records after its anchor, which give back what the
		// store lost, begin there; a reanchor, read from the first
		// segment, would need them all.
		name := j.fileName(a.Segment)
		return &AnchorError{Journal: j.path, Anchor: a, Archived: name, Reason: fmt.Sprintf(
			"its file %s is not beside the journal (archived?): the state store is older than the segments beside it (restored from a backup?); bring the archived segments back beside the journal, from %s on, then run the command again: the records after the anchor give back what the store lost (archive them again after)",
			name, filepath.Base(name))}
	}
	if err != nil {
		return fail("its file %s cannot be read: %v", j.fileName(a.Segment), err)
	}
	defer done()
	fi, err := f.Stat()
	if err != nil {
		return fail("%v", err)
	}
	if a.Seq > 0 {
		if fi.Size() < a.Offset {
			return fail("%s is %d bytes long (%s): records are missing from its end, or it was emptied or replaced", j.fileName(a.Segment), fi.Size(), describeEnd(f, fi.Size()))
		}
		line, err := lineEndingAt(f, a.Offset)
		if err == nil {
			err = recordIs(line, a.Seq, a.Hash)
		}
		if err != nil {
			return fail("at byte %d of %s: %v: the journal was rewritten or replaced (%s)", a.Offset, j.fileName(a.Segment), err, describeEnd(f, fi.Size()))
		}
	}
	for _, p := range a.Open {
		if err := j.addOpen(w, p); err != nil {
			return fail("the open intent seq %d: %v", p.Seq, err)
		}
	}
	w.seq, w.hash, w.good = a.Seq, a.Hash, a.Offset
	w.segments = a.Segment
	return nil
}

// describeEnd says what a journal file ends with, for an error message.
func describeEnd(f io.ReaderAt, size int64) string {
	if size == 0 {
		return "it is empty"
	}
	for end := size; end > 0 && size-end <= MaxRecordSize; {
		line, err := lineEndingAt(f, end)
		if err != nil {
			break
		}
		if hv, ok := lineHash(line); ok && hv.ok() {
			if h, ok := fastHead(line, string(hv.stored)); ok {
				return fmt.Sprintf("its last record is seq %d, hash %s", h.Seq, h.Hash)
			}
		}
		end -= int64(len(line)) + 1
	}
	return "it ends with no readable record"
}

func (j *Journal) addOpen(w *walker, p Position) error {
	if p.Segment > j.segments {
		return fmt.Errorf("segment %d does not exist", p.Segment)
	}
	f, done, err := j.openIndex(p.Segment)
	if err != nil {
		return err
	}
	defer done()
	line, err := lineAt(f, p.Offset)
	if err != nil {
		return err
	}
	if err := recordIs(line, p.Seq, p.Hash); err != nil {
		return err
	}
	hv, _ := lineHash(line)
	h, cerr := w.head(line, hv, true)
	if cerr != nil || h.Kind != KindIntent {
		return errors.New("the record there is not an intent")
	}
	w.open[intentKey{h.RunID, h.TokenID}] = openIntent{seq: p.Seq, hash: p.Hash, segment: p.Segment, offset: p.Offset, line: line}
	return nil
}

// walkFrom verifies files start.. to the active one, continuing w's chain.
func (j *Journal) walkFrom(w *walker, start int) error {
	for i := start; i <= j.segments; i++ {
		if i > start {
			w.good = 0
		}
		name := ""
		if j.segments > 0 {
			name = filepath.Base(j.fileName(i))
		}
		if i == j.segments {
			if _, err := j.osf.Seek(w.good, io.SeekStart); err != nil {
				return err
			}
			return w.file(j.osf, name, true)
		}
		f, err := openNoBlock(j.fileName(i))
		if err != nil {
			return err
		}
		if _, err := f.Seek(w.good, io.SeekStart); err != nil {
			_ = f.Close()
			return err
		}
		err = w.file(f, name, false)
		_ = f.Close()
		if err != nil {
			return err
		}
	}
	return nil
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

// OpenIntents returns the intents without an outcome now, in journal order
// (Pending as of this moment): what a run that failed to journal may have
// left open.
func (j *Journal) OpenIntents() ([]Record, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return decodeOpen(j.open)
}

func (j *Journal) anchorLocked() Anchor {
	a := Anchor{Seq: j.seq, Hash: j.hash, Segment: j.segments, Offset: j.size, File: j.stamp}
	for _, o := range j.open {
		a.Open = append(a.Open, Position{Seq: o.seq, Hash: o.hash, Segment: o.segment, Offset: o.offset})
	}
	slices.SortFunc(a.Open, func(x, y Position) int { return int(x.Seq - y.Seq) })
	return a
}

// remember records the file's state after this process's own write.
func (j *Journal) remember() error {
	fi, err := j.osf.Stat()
	if err != nil {
		return fmt.Errorf("stat the journal: %w", err)
	}
	if fi.Size() != j.size {
		return fmt.Errorf("%w: %s is %d bytes after patjanitor's write, expected %d", ErrChanged, j.path, fi.Size(), j.size)
	}
	_, j.ctime, _ = sysState(fi)
	j.stamp = stampOf(fi)
	return nil
}

// Check verifies that the journal's path still names the file this process
// holds open, not deleted, at the size and change time of its own last
// write. The daemon calls it (through Attach) before each run; Append calls
// it before each record. A failed check is final: nothing more is written.
func (j *Journal) Check() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.usable(); err != nil {
		return err
	}
	return j.checkLocked()
}

func (j *Journal) usable() error {
	switch {
	case j.closed:
		return ErrClosed
	case j.failed != nil:
		return fmt.Errorf("%w (%s), nothing more is written: %w", ErrFailed, j.path, j.failed)
	}
	return nil
}

func (j *Journal) checkLocked() error {
	err := j.changed()
	if err == nil {
		return nil
	}
	// Sticky, and without fail's truncation: the file is not ours to touch.
	j.failed = fmt.Errorf("%w: %w", ErrChanged, err)
	return fmt.Errorf("%w (%s), nothing more is written (restart patjanitor after checking the journal with `patjanitor audit verify`): %w", ErrFailed, j.path, j.failed)
}

func (j *Journal) changed() error {
	fi, err := j.osf.Stat()
	if err != nil {
		return fmt.Errorf("stat the open journal: %w", err)
	}
	nlink, ctime, known := sysState(fi)
	pi, err := os.Stat(j.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s no longer exists (deleted or moved away)", j.path)
	case err != nil:
		return fmt.Errorf("stat %s: %w", j.path, err)
	case !os.SameFile(fi, pi):
		return fmt.Errorf("%s now names another file than the journal patjanitor holds open (replaced)", j.path)
	case known && nlink == 0:
		return fmt.Errorf("%s was deleted while patjanitor held it open", j.path)
	}
	if fi.Size() != j.size {
		return fmt.Errorf("%s is %d bytes, but patjanitor last wrote it at %d bytes (truncated or written to by another process)", j.path, fi.Size(), j.size)
	}
	if known && j.ctime != 0 && ctime != j.ctime {
		return fmt.Errorf("%s was modified by another process since patjanitor last wrote it (its change time moved)", j.path)
	}
	return nil
}

// Attach checks the journal (see Check), compares it with the anchor in a,
// brings the anchor up to date, and keeps a for the appends until Detach.
// `serve` holds the journal for its lifetime but opens the state store per
// run, so it attaches the store at the start of each run. An anchor behind
// the journal's end (the store was swapped for an older copy in between)
// has its tail handed to t first, if t is set (see Tail).
func (j *Journal) Attach(ctx context.Context, a AnchorStore, t Tail) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.usable(); err != nil {
		return err
	}
	if err := j.checkLocked(); err != nil {
		return err
	}
	anchor, ok, err := a.LoadAnchor(ctx)
	if err != nil {
		return fmt.Errorf("audit: journal %s: read its anchor: %w", j.path, err)
	}
	if ok {
		if err := j.matches(anchor); err != nil {
			return err
		}
		if t != nil && anchor.Seq < j.seq {
			if err := j.handTail(ctx, anchor, t); err != nil {
				return fmt.Errorf("audit: journal %s holds records after its anchor in the state store (seq %d to %d: the store is older than the journal), and what the store lost with them could not be rebuilt from them: %w; nothing was changed", j.path, anchor.Seq+1, j.seq, err)
			}
		}
	}
	if cur := j.anchorLocked(); !ok || !sameAnchor(anchor, cur) {
		if err := a.StoreAnchor(ctx, cur); err != nil {
			return fmt.Errorf("audit: journal %s: store its anchor: %w", j.path, err)
		}
	}
	j.anchors = a
	return nil
}

// matches checks that an anchor names a record of this journal at or before
// its end.
func (j *Journal) matches(a Anchor) error {
	fail := func(format string, args ...any) error {
		return &AnchorError{Journal: j.path, Anchor: a, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case a.Seq > j.seq:
		return fail("the journal ends at seq %d, hash %s: the anchor is ahead of it", j.seq, hashOrNone(j.hash))
	case a.Seq == j.seq && a.Hash != j.hash:
		return fail("the journal's seq %d has hash %s (a state store of another journal?)", j.seq, hashOrNone(j.hash))
	case a.Seq == j.seq || a.Seq == 0:
		return nil
	case a.Segment > j.segments:
		return fail("the anchor is in segment %d, the journal has %d", a.Segment, j.segments)
	}
	f, done, err := j.openIndex(a.Segment)
	if err != nil {
		return fail("%v", err)
	}
	defer done()
	line, err := lineEndingAt(f, a.Offset)
	if err == nil {
		err = recordIs(line, a.Seq, a.Hash)
	}
	if err != nil {
		return fail("at byte %d: %v", a.Offset, err)
	}
	return nil
}

func sameAnchor(a, b Anchor) bool {
	if a.Seq != b.Seq || a.Offset != b.Offset || a.Segment != b.Segment || a.Hash != b.Hash || len(a.Open) != len(b.Open) {
		return false
	}
	if (a.File == nil) != (b.File == nil) || (a.File != nil && *a.File != *b.File) {
		return false
	}
	return slices.Equal(a.Open, b.Open)
}

// Detach stops updating the anchor (the state store is about to close).
func (j *Journal) Detach() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.anchors = nil
}

// Append completes rec (Seq, Time, PrevHash, Hash), writes it as one line and
// fsyncs the file; it returns the record as written only after the fsync
// succeeded and the anchor (if attached) was updated. A record missing what
// its kind needs is refused (see Record). Before writing it checks the file
// (see Check). If the write or the fsync fails, the journal is failed: the
// partial line is removed if possible, and this and every later Append
// return an error wrapping ErrFailed. ctx is checked before writing; a write
// once begun is not interrupted.
func (j *Journal) Append(ctx context.Context, rec Record) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, fmt.Errorf("audit: append %s: %w", rec.Kind, err)
	}
	if err := validate(&rec); err != nil {
		return Record{}, fmt.Errorf("audit: append %s: %w", rec.Kind, err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.usable(); err != nil {
		return Record{}, err
	}
	if err := j.checkLocked(); err != nil {
		return Record{}, err
	}
	rec.Seq = j.seq + 1
	rec.Time = j.clock().UTC()
	rec.PrevHash = j.hash
	rec.Hash = ""
	line, hash, err := encode(&rec)
	if err != nil {
		return Record{}, fmt.Errorf("audit: append %s: %w", rec.Kind, err)
	}
	if j.segBytes > 0 && j.size > 0 && j.size+int64(len(line)) > j.segBytes {
		if err := j.rotate(); err != nil {
			return Record{}, j.fail(fmt.Errorf("rotate the journal: %w", err))
		}
	}
	offset := j.size
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
	switch rec.Kind {
	case KindIntent:
		j.open[intentKey{rec.RunID, rec.TokenID}] = openIntent{seq: rec.Seq, hash: hash, segment: j.segments, offset: offset,
			line: bytes.TrimSuffix(line, []byte{'\n'})}
	case KindOutcome:
		delete(j.open, intentKey{rec.RunID, rec.TokenID})
	}
	if err := j.remember(); err != nil {
		j.failed = err
		return Record{}, fmt.Errorf("%w (%s): %w", ErrFailed, j.path, err)
	}
	// The anchor follows every record but an intent. An intent is followed
	// by its outcome as soon as the tenant answers, and the anchor written
	// then covers both: this halves the store's transactions (each is two
	// fsyncs, about ten times the cost of the journal's own append). Until
	// then the intent lies after the anchor, where Open's tail walk finds
	// it; an Open after a crash anchors it at once.
	if j.anchors != nil && rec.Kind != KindIntent {
		// The record is durable; an anchor that cannot follow it would
		// leave the next open unable to tell a missing tail, so the
		// journal stops here (the record stays: a run that sees the error
		// sends nothing, and the next one resolves an open intent).
		if err := j.anchors.StoreAnchor(ctx, j.anchorLocked()); err != nil {
			j.failed = fmt.Errorf("store the anchor after seq %d: %w", rec.Seq, err)
			return Record{}, fmt.Errorf("%w (%s): %w", ErrFailed, j.path, j.failed)
		}
	}
	rec.Hash = hash
	return rec, nil
}

// rotate seals the active file as the next segment and starts a new one.
// The rename is atomic: after a crash either the old name or the segment
// name holds the records, and Open continues from whichever it finds.
func (j *Journal) rotate() error {
	sealed := SegmentPath(j.path, j.segments+1)
	if _, err := os.Lstat(sealed); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s already exists, refusing to overwrite it", sealed)
	}
	if err := os.Rename(j.path, sealed); err != nil {
		return err
	}
	nf, err := os.OpenFile(j.path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if err := lockFile(nf); err != nil {
		_ = nf.Close()
		return fmt.Errorf("lock the new journal file: %w", err)
	}
	if err := syncDir(filepath.Dir(j.path)); err != nil {
		_ = nf.Close()
		return err
	}
	_ = j.f.Close()
	j.osf, j.f = nf, nf
	if j.wrap != nil {
		j.f = j.wrap(nf)
	}
	j.segments++
	j.size = 0
	return j.remember()
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
		need(r.Request != nil && r.Request.Method != "" && r.Request.Path != "", "request (method and path)")
		if r.Resource != "" {
			// An API client intent: its state as listed is Client.
			need(r.Client != nil, "client (the API client as listed)")
			if r.Client != nil && r.Client.ID != r.TokenID {
				return fmt.Errorf("client.id %q is not the tokenId %q", r.Client.ID, r.TokenID)
			}
			break
		}
		need(r.Before != nil, "before (the token as listed)")
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
	case KindAnchorReset:
		need(r.Note != "", "note (the reason and the old anchor)")
	case KindStateRepair:
		need(r.Note != "", "note (the record moved and the reason)")
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
