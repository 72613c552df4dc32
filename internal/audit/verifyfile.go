package audit

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/patjanitor/patjanitor/internal/regfile"
)

// PathSummary describes a journal verified on disk, across its segments.
type PathSummary struct {
	Summary
	// FirstSegment is the earliest sealed segment present (0: none); when
	// it is above 1 the older ones were archived, and the chain was checked
	// from FirstSeq, whose prevHash is FirstPrevHash (the last hash of the
	// archived segments, to compare with the archive's own verification).
	FirstSegment  int
	LastSegment   int
	FirstSeq      int64
	FirstPrevHash string
	// Anchored is set when the journal was compared with an anchor and
	// reaches it.
	Anchored bool
}

// VerifyOptions configure VerifyPath.
type VerifyOptions struct {
	// Anchor, when set, is compared with the journal's end.
	Anchor *Anchor
	// Each, when set, is called with each record of one of Kinds (every
	// record if Kinds is empty), decoded in full, in journal order, as the
	// chain is verified up to it; an error from it stops the walk.
	Each  func(Record) error
	Kinds []Kind
}

// VerifyPath verifies the journal at path and its sealed segments
// (journal-000001.jsonl, …), oldest first, the chain continuing from file to
// file, and compares the end with anchor when one is given: a journal that
// ends before the anchor (a missing tail), or whose record at the anchor's seq
// has another hash, is an *AnchorError naming both. It only reads: a FIFO, a
// device or a directory is refused at once (opening one to read could block
// forever), and nothing is created or repaired.
func VerifyPath(path string, o VerifyOptions) (PathSummary, error) {
	anchor := o.Anchor
	var ps PathSummary
	first, last, err := segments(path)
	if err != nil {
		return ps, err
	}
	ps.FirstSegment, ps.LastSegment = first, last
	var names []string
	for n := first; n >= 1 && n <= last; n++ {
		names = append(names, SegmentPath(path, n))
	}
	if _, err := os.Lstat(path); err == nil || len(names) == 0 {
		names = append(names, path) // the active file (required without segments)
	}
	w := newWalker(o.Each)
	w.kinds = o.Kinds
	w.countOnly = true
	w.trustFirst = first > 1
	if anchor != nil && anchor.Seq > 0 {
		w.watchSeq, w.watchHash = anchor.Seq, anchor.Hash
	}
	for i, name := range names {
		if err := verifyOne(w, name, len(names) > 1, i == len(names)-1); err != nil {
			ps.Summary = w.summary()
			return ps, err
		}
	}
	ps.Summary = w.summary()
	ps.FirstSeq, ps.FirstPrevHash = w.firstSeq, w.firstPrev
	if w.torn != nil {
		return ps, w.torn
	}
	if anchor == nil {
		return ps, nil
	}
	fail := func(format string, args ...any) (PathSummary, error) {
		return ps, &AnchorError{Journal: path, Anchor: *anchor, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case anchor.Seq > w.seq:
		return fail("the journal ends at seq %d, hash %s: %d records are missing from its end (or it was emptied or replaced)", w.seq, hashOrNone(w.hash), anchor.Seq-w.seq)
	case anchor.Seq > 0 && w.watchSeen && !w.watchOK:
		return fail("the journal's record seq %d has another hash: it is not the journal the state store knows (replaced or rewritten)", anchor.Seq)
	}
	ps.Anchored = anchor.Seq == 0 || w.watchSeen
	return ps, nil
}

func verifyOne(w *walker, name string, named, last bool) error {
	f, err := openNoBlock(name)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer func() { _ = f.Close() }()
	label := ""
	if named {
		label = filepath.Base(name)
	}
	w.good = 0
	return w.file(f, label, last)
}

// openNoBlock opens a journal file for reading when it is a regular file: a
// FIFO, a device (a link to /dev/zero) or a directory is refused at once,
// naming it, instead of blocking on the open or reading without end. The
// file is opened without blocking and checked once open (package regfile),
// so one swapped in after any look at the directory is refused too. A link
// is followed: the journal's path is the operator's.
func openNoBlock(path string) (*os.File, error) {
	f, _, err := regfile.Open(path, false)
	return f, err
}
