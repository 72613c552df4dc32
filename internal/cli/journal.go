package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/state"
)

// journalFlags are the flags of the commands that append to the journal.
type journalFlags struct {
	path        string
	segmentSize byteSize
	clock       func() time.Time // nil: time.Now
}

func addJournalFlags(f *pflag.FlagSet, o *journalFlags) {
	o.segmentSize = byteSize(audit.DefaultSegmentBytes)
	f.StringVar(&o.path, "journal", "", "journal file (default <state-dir>/"+JournalFile+")")
	f.Var(&o.segmentSize, "journal-segment-size",
		"rotate the journal into a sealed segment (journal-000001.jsonl, …) when it would grow past this size; 0 never rotates")
}

// options are the audit.Options these flags set: a segment size of 0
// (never rotate) is audit's -1, since audit takes 0 for its default size.
func (o journalFlags) options() audit.Options {
	opts := audit.Options{SegmentBytes: int64(o.segmentSize), Clock: o.clock}
	if opts.SegmentBytes == 0 {
		opts.SegmentBytes = -1
	}
	return opts
}

// journalKey names a journal in the state store (its anchor's key): the path
// relative to the state directory when the journal is inside it (so that a
// state directory restored elsewhere keeps its anchor), else the absolute
// path.
func (g *globals) journalKey(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	dir, err := filepath.Abs(g.stateDir)
	if err == nil {
		if rel, err := filepath.Rel(dir, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return filepath.ToSlash(rel)
		}
	}
	return abs
}

// openJournal opens the journal for appending (creating it and the state
// directory if needed) with its anchor in st, and returns the intents an
// interrupted run left without an outcome. audit.Open checks the journal
// against the anchor and verifies what follows it: a journal that is broken,
// shorter than its anchor or not a journal is refused, because appending to
// it would bury the damage.
func (g *globals) openJournal(o journalFlags, st *state.Store) (*audit.Journal, []audit.Record, error) {
	path := g.journalPath(o.path)
	opts := o.options()
	if st != nil {
		opts.Anchors = st.AnchorOf(g.journalKey(path))
		// A store older than the journal (restored from a backup) gets
		// back, before anything runs, the executed plans and confirmed
		// changes the journal recorded after its anchor.
		log, _ := g.logger() // nil, not logged, under a bad --log-level or --log-format
		opts.Tail = janitor.NewCatchUp(st, log)
	}
	j, err := audit.Open(path, opts)
	if err != nil {
		return nil, nil, err
	}
	g.warnRepairs(j.Repairs())
	return j, j.Pending(), nil
}

// openForChange opens what a command recording an operator's change needs:
// the state store (it keeps the journal's anchor), then the journal, before
// anything is written, so that failing to open either leaves nothing half
// done. A journal held by a running serve is not an error: j is nil, and the
// caller keeps its change in the store, flagged, for that serve to journal
// when its next run starts. closeAll closes what was opened, the journal
// first.
func (g *globals) openForChange(o journalFlags, now func() time.Time) (st *state.Store, j *audit.Journal, closeAll func(), err error) {
	st, err = g.openState(now)
	if err != nil {
		return nil, nil, nil, err
	}
	o.clock = now
	j, _, err = g.openJournal(o, st)
	switch {
	case errors.Is(err, audit.ErrInUse):
		return st, nil, func() { _ = st.Close() }, nil
	case err != nil:
		_ = st.Close()
		return nil, nil, nil, fmt.Errorf("open journal: %w", err)
	}
	return st, j, func() { _ = j.Close(); _ = st.Close() }, nil
}

// warnRepairs logs each repair audit.Open made to the journal as a warning:
// the journal is the audit evidence, so a change to it is never silent, and
// the operator learns where the removed bytes were kept.
func (g *globals) warnRepairs(repairs []audit.Repair) {
	if len(repairs) == 0 {
		return
	}
	log, err := g.logger()
	if err != nil {
		// A bad --log-level or --log-format (commands such as snooze build
		// no logger of their own): still say it, plainly.
		for _, r := range repairs {
			fmt.Fprintf(g.streams.Err, "warning: %s\n", repairText(r))
		}
		return
	}
	for _, r := range repairs {
		switch r.Kind {
		case audit.RepairTorn:
			log.Warn("the journal ended in a torn record (a write interrupted by a crash): removed it; its bytes are kept in the file saved_to",
				zap.String("journal", r.File), zap.Int("line", r.Line), zap.Int64("offset", r.Offset),
				zap.Int64("bytes", r.Removed), zap.String("saved_to", r.SavedTo))
		default:
			log.Warn("the journal's last record lacked its newline: added it, the record is kept",
				zap.String("journal", r.File), zap.Int("line", r.Line), zap.Int64("offset", r.Offset))
		}
	}
	_ = log.Sync()
}

// repairText says what a repair did, in one line.
func repairText(r audit.Repair) string {
	if r.Kind == audit.RepairTorn {
		return fmt.Sprintf("journal %s: removed a torn final record at line %d (%d bytes from byte %d), kept in %s", r.File, r.Line, r.Removed, r.Offset, r.SavedTo)
	}
	return fmt.Sprintf("journal %s: added the missing newline after the last record, line %d", r.File, r.Line)
}

// byteSize is a size flag: a number of bytes with an optional KiB, MiB or
// GiB suffix.
type byteSize int64

func (b *byteSize) String() string {
	n := int64(*b)
	for _, u := range []struct {
		s string
		n int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
}

func (b *byteSize) Set(s string) error {
	num, mult := s, int64(1)
	for _, u := range []struct {
		s string
		n int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.s) {
			num, mult = strings.TrimSuffix(s, u.s), u.n
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("want a size such as 64MiB, 512KiB or a number of bytes, got %q", s)
	}
	*b = byteSize(n * mult)
	return nil
}

func (b *byteSize) Type() string { return "size" }
