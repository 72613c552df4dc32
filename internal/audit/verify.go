package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// MaxRecordSize bounds one journal line (1 MiB). A record holds one token and
// one request, a few hundred bytes; the bound keeps a damaged file from making
// a reader buffer it whole.
const MaxRecordSize = 1 << 20

// hashPrefix starts every hash.
const hashPrefix = "sha256:"

// hashKey is how the hash key appears in a line: always last (see Record).
const hashKey = `,"hash":`

// hashValueLen is the length of `"sha256:<64 hex>"}` at the end of a line.
const hashValueLen = 1 + len(hashPrefix) + 64 + 2

// ChainError names the first journal record that breaks the chain.
type ChainError struct {
	// Line is the 1-based line number in the file.
	Line int
	// Seq is the record's seq when it could be read (0 otherwise).
	Seq int64
	// Reason says what is wrong.
	Reason string
	// torn marks a damaged final line that a crash mid-write can explain
	// (Open removes it; Verify reports it).
	torn bool
}

func (e *ChainError) Error() string {
	if e.Seq > 0 {
		return fmt.Sprintf("journal line %d (seq %d): %s", e.Line, e.Seq, e.Reason)
	}
	return fmt.Sprintf("journal line %d: %s", e.Line, e.Reason)
}

// Torn reports whether the error is a torn final record: the trace of a write
// interrupted by a crash rather than of tampering (Open repairs it).
func (e *ChainError) Torn() bool { return e.torn }

// Summary describes a verified journal.
type Summary struct {
	// Records is the number of records; LastSeq and LastHash are the last
	// record's (0 and GenesisHash for an empty journal).
	Records  int
	LastSeq  int64
	LastHash string
	// Runs is the number of run-start records.
	Runs int
	// PendingIntents is the number of intents without an outcome: mutations
	// a crash interrupted, which the next run resolves.
	PendingIntents int
}

// Verify reads a journal and checks every record: valid JSON, seq 1, 2, 3, …
// without gaps, each prevHash equal to the previous record's hash, each hash
// equal to the hash of the line, and a newline after the last record. The
// error for the first bad record is a *ChainError naming its line; other
// errors are read failures.
func Verify(r io.Reader) (Summary, error) {
	w, err := walk(r, nil)
	if err != nil {
		return w.summary(), err
	}
	if w.torn != nil {
		return w.summary(), w.torn
	}
	return w.summary(), nil
}

// Scan calls fn for each record of a journal, in order, verifying the chain as
// it goes (as Verify does); it stops at the first broken record with a
// *ChainError, and at the first error from fn, which it returns wrapped.
func Scan(r io.Reader, fn func(Record) error) error {
	w, err := walk(r, fn)
	if err != nil {
		return err
	}
	if w.torn != nil {
		return w.torn
	}
	return nil
}

// PendingIntents returns the intents of a journal that have no outcome (same
// run and token), in journal order: the mutations a crash interrupted. The
// journal is verified on the way; see also (*Journal).Pending.
func PendingIntents(r io.Reader) ([]Record, error) {
	w, err := walk(r, nil)
	if err != nil {
		return nil, err
	}
	if w.torn != nil {
		return nil, w.torn
	}
	return w.pendingIntents()
}

// recordStart is how every line Append writes begins.
const recordStart = `{"seq":`

// tornShape reports whether a damaged final line looks like what a crash in
// the middle of Append leaves: the start of a record cut short, or a record
// whose first bytes never reached the disk (the file grew, the data did not:
// NUL bytes). Anything else is not repaired, so that pointing patjanitor at
// a file that is not a journal can never truncate it.
func tornShape(line []byte) bool {
	if len(line) == 0 {
		return false
	}
	if line[0] == 0 {
		return true
	}
	n := min(len(line), len(recordStart))
	return string(line[:n]) == recordStart[:n]
}

// walker is the state of a verification pass.
type walker struct {
	line     int   // lines read
	good     int64 // bytes of the verified records
	records  int
	seq      int64
	hash     string
	runs     int
	open     map[intentKey]openIntent
	torn     *ChainError // a damaged final line (the caller decides)
	lineBuf  []byte
	callback func(Record) error
}

type intentKey struct{ run, token string }

// openIntent is an intent without an outcome so far: its line, decoded only
// if it is still open at the end (normally none is).
type openIntent struct {
	seq  int64
	line []byte
}

func (w *walker) summary() Summary {
	return Summary{Records: w.records, LastSeq: w.seq, LastHash: w.hash, Runs: w.runs, PendingIntents: len(w.open)}
}

func (w *walker) pendingIntents() ([]Record, error) {
	open := make([]openIntent, 0, len(w.open))
	for _, o := range w.open {
		open = append(open, o)
	}
	slices.SortFunc(open, func(a, b openIntent) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]Record, len(open))
	for i, o := range open {
		if err := decodeRecord(o.line, &out[i]); err != nil {
			return nil, fmt.Errorf("journal: intent seq %d: %w", o.seq, err)
		}
	}
	return out, nil
}

// walk verifies records until the end or the first broken one. A damaged
// final line that a crash explains is not returned as an error but left in
// w.torn, with w.good the size of the journal without it.
func walk(r io.Reader, fn func(Record) error) (*walker, error) {
	w := &walker{hash: GenesisHash, open: map[intentKey]openIntent{}, callback: fn}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, complete, err := w.readLine(br)
		if err != nil {
			return w, err
		}
		if len(line) == 0 && !complete {
			return w, nil // end of the journal
		}
		w.line++
		if !complete {
			// A write cut short: the line never got its newline.
			if !tornShape(line) {
				return w, &ChainError{Line: w.line, Reason: "the last line has no newline and is not a journal record (is this a patjanitor journal?)"}
			}
			w.torn = &ChainError{Line: w.line, Reason: "torn final record (no newline): a write interrupted by a crash", torn: true}
			return w, nil
		}
		rec, cerr := w.check(line[:len(line)-1])
		if cerr != nil {
			if cerr.torn {
				// Only the last line can be a crash's doing, and only if
				// it looks like one.
				_, perr := br.Peek(1)
				if errors.Is(perr, io.EOF) && tornShape(line) {
					w.torn = cerr
					return w, nil
				}
				cerr.torn = false
			}
			return w, cerr
		}
		w.good += int64(len(line))
		if w.callback != nil {
			if err := w.callback(rec); err != nil {
				return w, fmt.Errorf("journal line %d (seq %d): %w", w.line, rec.Seq, err)
			}
		}
	}
}

// readLine returns the next line with its newline (complete) or the bytes
// before the end of input (not complete; empty at the end).
func (w *walker) readLine(br *bufio.Reader) ([]byte, bool, error) {
	buf := w.lineBuf[:0]
	defer func() { w.lineBuf = buf[:0] }()
	for {
		frag, err := br.ReadSlice('\n')
		buf = append(buf, frag...)
		if len(buf) > MaxRecordSize+1 {
			return nil, false, &ChainError{Line: w.line + 1, Reason: fmt.Sprintf("record longer than %d bytes", MaxRecordSize)}
		}
		switch {
		case err == nil:
			return buf, true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return buf, false, nil
		default:
			return nil, false, fmt.Errorf("journal: read line %d: %w", w.line+1, err)
		}
	}
}

// head is the part of a record the chain check reads. Decoding only these
// keys (the decoder skips the rest) makes verification several times faster
// than decoding whole records; the hash covers every byte either way.
type head struct {
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	RunID    string    `json:"runId"`
	Kind     Kind      `json:"kind"`
	TokenID  string    `json:"tokenId"`
	PrevHash string    `json:"prevHash"`
	Hash     string    `json:"hash"`
}

// check verifies one line (without its newline) against the chain so far and
// advances the chain. It decodes the full record only when a callback wants
// it.
func (w *walker) check(line []byte) (Record, *ChainError) {
	fail := func(seq int64, format string, args ...any) (Record, *ChainError) {
		return Record{}, &ChainError{Line: w.line, Seq: seq, Reason: fmt.Sprintf(format, args...)}
	}
	var h head
	if err := json.Unmarshal(line, &h); err != nil {
		// Unreadable: either damage, or a crash that left a hole in the
		// last line (the file grew before its data reached the disk).
		return Record{}, &ChainError{Line: w.line, Reason: "not a JSON record: " + err.Error(), torn: true}
	}
	got, ok := lineHash(line)
	if !ok {
		return fail(h.Seq, `the line does not end with the "hash" key and a sha256:<64 hex> value`)
	}
	if h.Hash != got.stored {
		return fail(h.Seq, "the hash key is duplicated")
	}
	if got.computed != got.stored {
		return fail(h.Seq, "hash mismatch: the record was changed after it was written (stored %s, content hashes to %s)", got.stored, got.computed)
	}
	if h.Seq != w.seq+1 {
		if w.records == 0 {
			return fail(h.Seq, "the first record has seq %d, want 1 (records were removed from the start?)", h.Seq)
		}
		return fail(h.Seq, "seq %d follows seq %d (a record was removed, inserted or moved)", h.Seq, w.seq)
	}
	if h.PrevHash != w.hash {
		if w.records == 0 {
			return fail(h.Seq, "the first record's prevHash is %q, want %q", h.PrevHash, GenesisHash)
		}
		return fail(h.Seq, "prevHash %s does not match the hash %s of the record before it (seq %d)", h.PrevHash, w.hash, w.seq)
	}
	if h.Kind == "" {
		return fail(h.Seq, "no kind")
	}
	if h.Time.IsZero() {
		return fail(h.Seq, "no time")
	}
	var rec Record
	if w.callback != nil {
		if err := decodeRecord(line, &rec); err != nil {
			return fail(h.Seq, "%v", err)
		}
	}
	w.seq, w.hash = h.Seq, h.Hash
	w.records++
	switch h.Kind {
	case KindRunStart:
		w.runs++
	case KindIntent:
		w.open[intentKey{h.RunID, h.TokenID}] = openIntent{seq: h.Seq, line: slices.Clone(line)}
	case KindOutcome:
		delete(w.open, intentKey{h.RunID, h.TokenID})
	}
	return rec, nil
}

// decodeRecord decodes a whole record; numbers in patch values stay
// json.Number, as written.
func decodeRecord(line []byte, rec *Record) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(rec); err != nil {
		return fmt.Errorf("undecodable record: %w", err)
	}
	return nil
}

type hashes struct{ stored, computed string }

// lineHash finds the hash stored at the end of a line and computes the hash
// the line should have: over the line with that value replaced by "".
func lineHash(line []byte) (hashes, bool) {
	n := len(line)
	if n < hashValueLen+len(hashKey)+1 {
		return hashes{}, false
	}
	value := line[n-hashValueLen:]
	prefix := line[:n-hashValueLen]
	if !bytes.HasSuffix(prefix, []byte(hashKey)) || value[0] != '"' || !bytes.HasSuffix(value, []byte(`"}`)) {
		return hashes{}, false
	}
	stored := string(value[1 : len(value)-2])
	if len(stored) != len(hashPrefix)+64 || stored[:len(hashPrefix)] != hashPrefix || !isLowerHex(stored[len(hashPrefix):]) {
		return hashes{}, false
	}
	return hashes{stored: stored, computed: sum(prefix)}, true
}

// sum hashes prefix followed by `""}`: a line ending in `,"hash":` with an
// empty hash value.
func sum(prefix []byte) string {
	h := sha256.New()
	h.Write(prefix)
	h.Write([]byte(`""}`))
	return hashPrefix + hex.EncodeToString(h.Sum(nil))
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
