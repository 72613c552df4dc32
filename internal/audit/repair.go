package audit

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RepairKind names what Open repaired.
type RepairKind string

const (
	// RepairTorn: a torn final record was removed (its bytes saved in
	// Repair.SavedTo).
	RepairTorn RepairKind = "torn-final-record"
	// RepairNewline: a complete last record lacked its newline; the
	// newline was added.
	RepairNewline RepairKind = "missing-newline"
)

// Repair is one change Open made to the journal file. The journal is the
// audit evidence: a repair is never silent, the caller reports it (the CLI
// logs each as a warning).
type Repair struct {
	Kind RepairKind
	// File is the journal file repaired (the active file: only its last
	// line can be torn).
	File string
	// Line is the repaired line's number in File (from 1).
	Line int
	// Offset is the byte offset in File where the removed bytes began, or
	// where the newline was added.
	Offset int64
	// Removed is the number of bytes removed (0 for RepairNewline).
	Removed int64
	// SavedTo is the file holding exactly the removed bytes (RepairTorn).
	SavedTo string
}

// Repairs returns what Open repaired in the journal file, in order: none for
// an intact journal.
func (j *Journal) Repairs() []Repair {
	return append([]Repair(nil), j.repairs...)
}

// TornPath is the file beside the journal at path that keeps the bytes of a
// torn final record found at line when Open removed them at time at:
// journal.jsonl -> journal.jsonl.torn-<unix-ms>-line<N>. The name does not
// look like a segment, so segment listing and verification ignore it.
func TornPath(path string, at time.Time, line int) string {
	return fmt.Sprintf("%s.torn-%d-line%d", path, at.UnixMilli(), line)
}

// ParseTornPath reads what TornPath put in the name of file, a file beside
// the journal at path: when the torn record was removed (to the
// millisecond) and its line in the file that was then the active one (a
// sealed segment since, if the journal rotated). ok is false for a name
// TornPath does not make.
func ParseTornPath(path, file string) (at time.Time, line int, ok bool) {
	rest, found := strings.CutPrefix(file, path+".torn-")
	if !found {
		return time.Time{}, 0, false
	}
	ms, l, found := strings.Cut(rest, "-line")
	if !found {
		return time.Time{}, 0, false
	}
	msv, err1 := strconv.ParseInt(ms, 10, 64)
	lv, err2 := strconv.Atoi(l)
	if err1 != nil || err2 != nil || lv < 1 {
		return time.Time{}, 0, false
	}
	at = time.UnixMilli(msv).UTC()
	if TornPath(path, at, lv) != file {
		return time.Time{}, 0, false // "+5", "007": not a name TornPath makes
	}
	return at, lv, true
}

// TornFiles lists the files beside the journal at path that keep torn
// records' bytes (see TornPath), sorted by name. They are found by their
// names' prefix, not by a glob pattern built from path: a directory named
// like "pats[1]" is a pattern that does not match itself, and the files
// would go unlisted.
func TornFiles(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	entries, err := os.ReadDir(cmp.Or(dir, "."))
	if err != nil {
		return nil, fmt.Errorf("list the files beside the journal: %w", err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), base+".torn-") {
			out = append(out, dir+e.Name()) // as TornPath spells it
		}
	}
	return out, nil
}

// saveTorn copies the bytes of f from offset good to its end into a new file
// beside the journal (mode 0600, fsynced, with its directory) and describes
// the repair about to be made. It never overwrites: a file already at that
// name (an earlier copy, or something planted there, such as a symlink) makes
// it fail, so that the caller removes nothing.
func saveTorn(path string, f *os.File, good int64, line int, now time.Time) (Repair, error) {
	fi, err := f.Stat()
	if err != nil {
		return Repair{}, err
	}
	n := fi.Size() - good
	side := TornPath(path, now, line)
	r := Repair{Kind: RepairTorn, File: path, Line: line, Offset: good, Removed: n, SavedTo: side}
	out, err := os.OpenFile(side, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Repair{}, fmt.Errorf("save its %d bytes to %s: %w", n, side, err)
	}
	written, err := io.Copy(out, io.NewSectionReader(f, good, n))
	if err == nil && written != n {
		err = fmt.Errorf("copied %d of %d bytes", written, n)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(side))
	}
	if err != nil {
		// A partial copy is no copy: remove it. (A crash in the middle of
		// the copy can still leave one; the journal is not truncated until
		// the copy is synced, so the next Open saves the bytes again under
		// a new name.)
		_ = os.Remove(side)
		return Repair{}, fmt.Errorf("save its %d bytes to %s: %w", n, side, err)
	}
	return r, nil
}
