package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// Anchor is where the journal ended when patjanitor last wrote it, kept
// outside the journal (in the state store) after every append.
//
// A hash chain proves that nothing was changed, inserted or removed in the
// middle, but not that nothing was cut off the end, nor that the file is the
// one patjanitor wrote: a shorter journal, an emptied one or a new one is a
// valid chain too. The anchor closes that gap. It is also the checkpoint:
// Open verifies only the records after it (and the anchored record itself),
// so opening takes the same few milliseconds at any journal size; `audit
// verify` still walks the whole chain.
type Anchor struct {
	// Seq and Hash are the last record's (0 and GenesisHash: none yet).
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
	// Segment is the index of the file the last record is in: the number of
	// sealed segments when it was written (0: journal.jsonl before any
	// rotation). Offset is that file's size up to the end of the record.
	Segment int   `json:"segment"`
	Offset  int64 `json:"offset"`
	// Open are the intents without an outcome at that point (normally
	// none): a checkpoint must not forget a mutation a crash interrupted.
	Open []Position `json:"open,omitempty"`
	// File is the file's identity and change time just after that write,
	// where the system tells them. A file with the same stamp is the one
	// patjanitor left, untouched since: Open then verifies only what
	// follows the anchor. Any other stamp (an edit, a copy, a restore)
	// makes Open verify the whole chain once.
	File *FileStamp `json:"file,omitempty"`
}

// FileStamp identifies a file and its last change.
type FileStamp struct {
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Ctime int64  `json:"ctimeNs"`
	Size  int64  `json:"size"`
}

// Position locates one record: its seq and hash, the index of its file and
// the offset its line starts at.
type Position struct {
	Seq     int64  `json:"seq"`
	Hash    string `json:"hash"`
	Segment int    `json:"segment"`
	Offset  int64  `json:"offset"`
}

// AnchorStore keeps a journal's anchor; the state store implements it (the
// cli binds it to one journal path).
type AnchorStore interface {
	// LoadAnchor returns the anchor, or false if none was ever stored.
	LoadAnchor(ctx context.Context) (Anchor, bool, error)
	// StoreAnchor replaces the anchor durably.
	StoreAnchor(ctx context.Context, a Anchor) error
}

// AnchorError is a journal that does not reach its anchor: records missing
// from the end, a journal emptied, deleted or replaced by another, or a state
// store from another journal. It names both sides.
type AnchorError struct {
	// Journal is the journal's path.
	Journal string
	// Anchor is what the state store says.
	Anchor Anchor
	// Reason says what the journal holds instead.
	Reason string
	// Archived is the segment the anchor is in when it is not beside the
	// journal (archived, the store older than the segments left: restored
	// from a backup): bringing it back is the way out, not a reanchor.
	Archived string
}

func (e *AnchorError) Error() string {
	return fmt.Sprintf("journal %s does not match its anchor in the state store (seq %d, hash %s, byte %d of segment %d): %s",
		e.Journal, e.Anchor.Seq, hashOrNone(e.Anchor.Hash), e.Anchor.Offset, e.Anchor.Segment, e.Reason)
}

func hashOrNone(h string) string {
	if h == "" {
		return "(none)"
	}
	return h
}

// readerAt is what reading a record back needs of a file.
type readerAt interface {
	io.ReaderAt
	Stat() (os.FileInfo, error)
}

// lineEndingAt returns the line (without its newline) that ends at end (the
// byte after its newline) in f.
func lineEndingAt(f io.ReaderAt, end int64) ([]byte, error) {
	n := min(end, int64(MaxRecordSize)+1)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, end-n); err != nil {
		return nil, err
	}
	if buf[len(buf)-1] != '\n' {
		return nil, errors.New("no record ends there")
	}
	buf = buf[:len(buf)-1]
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		buf = buf[i+1:]
	} else if n < end {
		return nil, errors.New("no record ends there")
	}
	return buf, nil
}

// lineAt returns the line (without its newline) that starts at off in f.
func lineAt(f io.ReaderAt, off int64) ([]byte, error) {
	buf := make([]byte, 4096)
	var line []byte
	for {
		n, err := f.ReadAt(buf, off+int64(len(line)))
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			return append(line, buf[:i]...), nil
		}
		line = append(line, buf[:n]...)
		if len(line) > MaxRecordSize {
			return nil, errors.New("no record starts there")
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errors.New("no complete record starts there")
			}
			return nil, err
		}
	}
}

// recordIs checks that line is an intact record with this seq and hash.
func recordIs(line []byte, seq int64, hash string) error {
	hv, ok := lineHash(line)
	if !ok || !hv.ok() {
		return errors.New("the line there is not an intact record")
	}
	w := newWalker(nil)
	h, cerr := w.head(line, hv, true)
	if cerr != nil {
		return errors.New("the line there is not a record")
	}
	if h.Seq != seq || string(hv.stored) != hash {
		return fmt.Errorf("the record there is seq %d (hash %s)", h.Seq, hv.stored)
	}
	return nil
}
