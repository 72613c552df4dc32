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
	"hash"
	"io"
	"slices"
	"strconv"
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
	// File is the segment the record is in, when the journal has more than
	// one file (empty otherwise).
	File string
	// Line is the 1-based line number in the file.
	Line int
	// Seq is the record's seq when it could be read (0 otherwise).
	Seq int64
	// Reason says what is wrong.
	Reason string
	// torn marks a damaged final line that a crash mid-write can explain
	// (Open removes it; Verify reports it).
	torn bool
	// foreign marks a file whose first line is not a journal record.
	foreign bool
}

func (e *ChainError) Error() string {
	where := fmt.Sprintf("journal line %d", e.Line)
	if e.File != "" {
		where = fmt.Sprintf("journal %s line %d", e.File, e.Line)
	}
	if e.Seq > 0 {
		return fmt.Sprintf("%s (seq %d): %s", where, e.Seq, e.Reason)
	}
	return fmt.Sprintf("%s: %s", where, e.Reason)
}

// Foreign reports whether the file is not a journal at all: its first line
// is not a journal record.
func (e *ChainError) Foreign() bool { return e.foreign }

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
	// Unterminated is set when the last record is complete and valid but
	// lacks its final newline (the next Open adds it).
	Unterminated bool
	// Segments is the number of files read (1 without rotation).
	Segments int
	// Size is the size in bytes of the last file read, up to the end of its
	// last valid record (an anchor's offset).
	Size int64
}

// Verify reads a journal and checks every record: valid JSON, seq 1, 2, 3, …
// without gaps, each prevHash equal to the previous record's hash, each hash
// equal to the hash of the line, and a newline after the last record (a last
// record that is complete and valid but lacks only its newline is accepted
// and reported in Summary.Unterminated). The error for the first bad record
// is a *ChainError naming its line; other errors are read failures.
func Verify(r io.Reader) (Summary, error) {
	w := newWalker(nil)
	w.countOnly = true
	if err := w.file(r, "", true); err != nil {
		return w.summary(), err
	}
	if w.torn != nil {
		return w.summary(), w.torn
	}
	return w.summary(), nil
}

// recordStart is how every line Append writes begins.
const recordStart = `{"seq":`

// firstRecordStart is how the first line of a journal begins.
const firstRecordStart = `{"seq":1,`

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

// walker is the state of a verification pass over one or more files (the
// segments of a journal, in order); the chain continues from file to file.
type walker struct {
	name     string // the file being read ("" for a single reader)
	line     int    // lines read in the current file
	good     int64  // bytes of the verified records in the current file
	records  int
	seq      int64
	hash     string
	runs     int
	segments int
	open     map[intentKey]openIntent
	torn     *ChainError // a damaged final line (the caller decides)
	// unterminated: the last record is complete and valid but has no
	// newline; the caller completes it.
	unterminated bool
	lineBuf      []byte
	digest       hash.Hash
	callback     func(Record) error
	kinds        []Kind // the kinds callback wants (all if empty)
	since        int64  // callback wants only the records after this seq
	// countOnly: open intents are counted, their lines not kept (Verify).
	countOnly bool
	// trustFirst: the first record's seq and prevHash are taken as given
	// (the segments before it were archived); firstSeq and firstPrev keep
	// them.
	trustFirst bool
	firstSeq   int64
	firstPrev  string
	// watchSeq and watchHash are an anchor to meet on the way.
	watchSeq           int64
	watchHash          string
	watchSeen, watchOK bool
}

type intentKey struct{ run, token string }

// openIntent is an intent without an outcome so far: where it is and its
// line, decoded only if it is still open at the end (normally none is).
type openIntent struct {
	seq     int64
	hash    string
	segment int   // index of its file among the journal's files
	offset  int64 // where its line starts in that file
	line    []byte
}

func newWalker(fn func(Record) error) *walker {
	return &walker{hash: GenesisHash, open: map[intentKey]openIntent{}, callback: fn}
}

func (w *walker) summary() Summary {
	return Summary{Records: w.records, LastSeq: w.seq, LastHash: w.hash, Runs: w.runs, PendingIntents: len(w.open),
		Unterminated: w.unterminated, Segments: w.segments, Size: w.good}
}

func (w *walker) pendingIntents() ([]Record, error) {
	return decodeOpen(w.open)
}

func decodeOpen(m map[intentKey]openIntent) ([]Record, error) {
	open := make([]openIntent, 0, len(m))
	for _, o := range m {
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

// file verifies the records of one file, continuing the chain, until its end
// or the first broken record. last says whether it is the journal's last
// (active) file: only there can a crash have left a damaged final line,
// which is not returned as an error but left in w.torn, with w.good the size
// of the file without it. w.good must hold the offset the reader starts at.
func (w *walker) file(r io.Reader, name string, last bool) error {
	w.name, w.line = name, 0
	w.segments++
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, complete, err := w.readLine(br)
		if err != nil {
			return err
		}
		if len(line) == 0 && !complete {
			return nil // end of the file
		}
		w.line++
		if !complete {
			return w.unterminatedLine(line, last)
		}
		rec, cerr := w.check(line[:len(line)-1], w.good)
		if cerr != nil {
			if cerr.torn {
				// Only the last line can be a crash's doing, and only if
				// it looks like one.
				_, perr := br.Peek(1)
				if last && errors.Is(perr, io.EOF) && w.repairable(line) {
					w.torn = cerr
					return nil
				}
				cerr.torn = false
			}
			return w.foreignCheck(line, cerr)
		}
		w.good += int64(len(line))
		if err := w.emit(rec); err != nil {
			return err
		}
	}
}

// unterminatedLine handles a final line without a newline. A complete record
// that verifies is kept (only its newline is missing: Open adds it; deleting
// it would lose a record whose Append may have returned). Anything else is a
// write cut short by a crash if it looks like one, and an error otherwise.
func (w *walker) unterminatedLine(line []byte, last bool) error {
	if !last {
		return w.errorf(0, "the segment does not end with a newline (segments are complete when rotated)")
	}
	rec, cerr := w.check(line, w.good)
	if cerr == nil {
		w.good += int64(len(line))
		w.unterminated = true
		return w.emit(rec)
	}
	if !w.repairable(line) {
		cerr := w.errorf(0, "the last line has no newline and is not a journal record (is this a patjanitor journal?)")
		if w.seq == 0 && w.line == 1 && w.segments == 1 {
			// The whole file is one unfinished line that is not the
			// start of record 1: nothing here was written by Append.
			cerr.foreign = true
			cerr.Reason = "not a patjanitor journal: its only line is not a journal record"
			return cerr
		}
		return w.foreignCheck(line, cerr)
	}
	w.torn = &ChainError{File: w.name, Line: w.line, Reason: "torn final record (no newline): a write interrupted by a crash", torn: true}
	return nil
}

// repairable reports whether a damaged last line may be removed: it looks
// like a write cut short, and the file is known to be a journal. A file whose
// first line is not a record (a zero-filled file, someone's notes) is never a
// journal, whatever its shape: Open refuses it rather than truncate it. The
// one first line that may be repaired is the start of record 1 itself.
func (w *walker) repairable(line []byte) bool {
	if !tornShape(line) {
		return false
	}
	return w.seq > 0 || bytes.HasPrefix(line, []byte(firstRecordStart))
}

// foreignCheck marks an error on the first line of a journal whose first line
// does not even begin like a record: the file is something else.
func (w *walker) foreignCheck(line []byte, cerr *ChainError) *ChainError {
	if w.seq == 0 && w.line == 1 && w.segments == 1 && !bytes.HasPrefix(line, []byte(recordStart)) {
		cerr.foreign = true
		cerr.torn = false
		cerr.Reason = "not a patjanitor journal: its first line is not a journal record (" + cerr.Reason + ")"
	}
	return cerr
}

func (w *walker) errorf(seq int64, format string, args ...any) *ChainError {
	return &ChainError{File: w.name, Line: w.line, Seq: seq, Reason: fmt.Sprintf(format, args...)}
}

func (w *walker) emit(rec Record) error {
	if w.callback == nil || rec.Seq == 0 { // not decoded: not wanted
		return nil
	}
	if err := w.callback(rec); err != nil {
		return fmt.Errorf("journal line %d (seq %d): %w", w.line, rec.Seq, err)
	}
	return nil
}

// readLine returns the next line with its newline (complete) or the bytes
// before the end of input (not complete; empty at the end).
func (w *walker) readLine(br *bufio.Reader) ([]byte, bool, error) {
	// The common case: the line is in the reader's buffer, returned without
	// a copy.
	frag, err := br.ReadSlice('\n')
	if err == nil {
		return frag, true, nil
	}
	buf := append(w.lineBuf[:0], frag...)
	defer func() { w.lineBuf = buf[:0] }()
	for {
		if len(buf) > MaxRecordSize+1 {
			return nil, false, w.tooLong(buf)
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return buf, false, nil
		default:
			return nil, false, fmt.Errorf("journal: read line %d: %w", w.line+1, err)
		}
		frag, err = br.ReadSlice('\n')
		buf = append(buf, frag...)
		if err == nil {
			if len(buf) > MaxRecordSize+1 {
				return nil, false, w.tooLong(buf)
			}
			return buf, true, nil
		}
	}
}

func (w *walker) tooLong(buf []byte) *ChainError {
	w.line++
	return w.foreignCheck(buf, w.errorf(0, "record longer than %d bytes", MaxRecordSize))
}

// head is the part of a record the chain check reads.
type head struct {
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	RunID    string    `json:"runId"`
	Kind     Kind      `json:"kind"`
	TokenID  string    `json:"tokenId"`
	PrevHash string    `json:"prevHash"`
	Hash     string    `json:"hash"`
	// prev is the prevHash as the line's bytes (fastHead), to compare
	// without a copy; PrevHash is then empty.
	prev []byte
}

// prevHash returns the record's prevHash.
func (h *head) prevHash() string {
	if h.prev != nil {
		return string(h.prev)
	}
	return h.PrevHash
}

// prevIs reports whether the record's prevHash is want.
func (h *head) prevIs(want string) bool {
	if h.prev != nil {
		return string(h.prev) == want
	}
	return h.PrevHash == want
}

// check verifies one line (without its newline), which starts at offset in
// the current file, against the chain so far and advances the chain. It
// decodes the full record only when a callback wants it.
func (w *walker) check(line []byte, offset int64) (Record, *ChainError) {
	fail := func(seq int64, format string, args ...any) (Record, *ChainError) {
		return Record{}, w.errorf(seq, format, args...)
	}
	if w.digest == nil {
		w.digest = sha256.New()
	}
	got, hashOK := lineHashWith(w.digest, line)
	h, cerr := w.head(line, got, hashOK)
	if cerr != nil {
		return Record{}, cerr
	}
	if !hashOK {
		return fail(h.Seq, `the line does not end with the "hash" key and a sha256:<64 hex> value`)
	}
	if h.Hash != string(got.stored) {
		return fail(h.Seq, "the hash key is duplicated")
	}
	if !got.ok() {
		return fail(h.Seq, "hash mismatch: the record was changed after it was written (stored %s, content hashes to %s)", got.stored, got.computed[:])
	}
	if w.trustFirst && w.records == 0 {
		w.seq, w.hash = h.Seq-1, h.prevHash()
	}
	if h.Seq != w.seq+1 {
		if w.seq == 0 {
			return fail(h.Seq, "the first record has seq %d, want 1 (records were removed from the start?)", h.Seq)
		}
		return fail(h.Seq, "seq %d follows seq %d (a record was removed, inserted or moved)", h.Seq, w.seq)
	}
	if !h.prevIs(w.hash) {
		if w.seq == 0 {
			return fail(h.Seq, "the first record's prevHash is %q, want %q", h.prevHash(), GenesisHash)
		}
		return fail(h.Seq, "prevHash %s does not match the hash %s of the record before it (seq %d)", h.prevHash(), w.hash, w.seq)
	}
	if h.Kind == "" {
		return fail(h.Seq, "no kind")
	}
	if h.Time.IsZero() {
		return fail(h.Seq, "no time")
	}
	var rec Record
	if w.callback != nil && h.Seq > w.since && (len(w.kinds) == 0 || slices.Contains(w.kinds, h.Kind)) {
		if err := decodeRecord(line, &rec); err != nil {
			return fail(h.Seq, "%v", err)
		}
	}
	if w.records == 0 {
		w.firstSeq, w.firstPrev = h.Seq, h.prevHash()
	}
	if h.Seq == w.watchSeq {
		w.watchSeen, w.watchOK = true, h.Hash == w.watchHash
	}
	w.seq, w.hash = h.Seq, h.Hash
	w.records++
	switch h.Kind {
	case KindRunStart:
		w.runs++
	case KindIntent:
		o := openIntent{seq: h.Seq, hash: h.Hash, segment: w.segments - 1, offset: offset}
		if !w.countOnly {
			o.line = slices.Clone(line)
		}
		w.open[intentKey{h.RunID, h.TokenID}] = o
	case KindOutcome:
		delete(w.open, intentKey{h.RunID, h.TokenID})
	}
	return rec, nil
}

// head reads the keys the chain needs (got: the line's hashes, when hashOK).
// They come from fastHead when the line has the exact shape Append writes
// and its hash verifies (the usual case, several times faster than
// decoding), otherwise from encoding/json. The fast path reads the start and
// the end of the line and does not decode what lies between (the token, the
// request): the hash covers those bytes, and a walk that hands the records
// on (VerifyOptions.Each) decodes them in full.
func (w *walker) head(line []byte, got hashes, hashOK bool) (head, *ChainError) {
	if hashOK && got.ok() {
		if h, ok := fastHead(line, string(got.stored)); ok {
			return h, nil
		}
	}
	var h head
	if err := json.Unmarshal(line, &h); err != nil || len(line) == 0 || line[0] != '{' {
		// Unreadable: either damage, or a crash that left a hole in the
		// last line (the file grew before its data reached the disk).
		reason := "not a JSON record"
		if err != nil {
			reason += ": " + err.Error()
		}
		return head{}, &ChainError{File: w.name, Line: w.line, Reason: reason, torn: true}
	}
	return h, nil
}

// fastHead reads seq, time, runId, kind, tokenId, prevHash and hash from a
// line in the exact layout encoding/json gives a Record (keys in struct
// order, prevHash and hash last), without decoding the rest. It gives up
// (ok false) on anything else, e.g. a string with an escape or a key it does
// not expect, and the caller decodes with encoding/json: the fast path
// never decides differently from the slow one, it only skips work. The
// caller has checked that the line is valid JSON, so a key read here is a
// top-level key: the layout pins where each one starts.
func fastHead(line []byte, hash string) (h head, ok bool) {
	p := parser{b: line}
	if !p.lit(`{"seq":`) {
		return h, false
	}
	if h.Seq, ok = p.int(); !ok || !p.lit(`,"time":`) {
		return h, false
	}
	ts, ok := p.str()
	if !ok {
		return h, false
	}
	// The same strict RFC 3339 parser encoding/json uses for time.Time.
	if err := h.Time.UnmarshalText(ts); err != nil {
		return h, false
	}
	var runID, tokenID []byte
	if p.lit(`,"runId":`) {
		if runID, ok = p.str(); !ok {
			return h, false
		}
	}
	if !p.lit(`,"kind":`) {
		return h, false
	}
	kind, ok := p.str()
	if !ok {
		return h, false
	}
	h.Kind = internKind(kind)
	if p.lit(`,"policy":`) {
		if _, ok = p.str(); !ok {
			return h, false
		}
	}
	if p.lit(`,"tokenId":`) {
		if tokenID, ok = p.str(); !ok {
			return h, false
		}
	}
	// The end: ,"prevHash":"<v>","hash":"<v>"} (the hash value checked by
	// the caller).
	h.Hash = hash
	rest := line[:len(line)-hashValueLen-len(hashKey)]
	switch {
	case bytes.HasSuffix(rest, []byte(`,"prevHash":""`)):
		h.PrevHash = ""
		rest = rest[:len(rest)-len(`,"prevHash":""`)]
	case len(rest) >= len(`,"prevHash":""`)+len(hashPrefix)+64 &&
		bytes.HasSuffix(rest[:len(rest)-len(hashPrefix)-66], []byte(`,"prevHash":`)):
		v := rest[len(rest)-len(hashPrefix)-66:]
		if v[0] != '"' || v[len(v)-1] != '"' || !bytes.HasPrefix(v[1:], []byte(hashPrefix)) || !isLowerHex(v[1+len(hashPrefix):len(v)-1]) {
			return h, false
		}
		h.prev = v[1 : len(v)-1]
		rest = rest[:len(rest)-len(v)-len(`,"prevHash":`)]
	default:
		return h, false
	}
	// The middle (the token, the request, …) is not decoded, but a key in
	// it named like one read above sends the line to encoding/json, which
	// reads the last of repeated keys: the fast path never reads another
	// value than the slow one. encoding/json never writes such a line.
	if p.i > len(rest) {
		return h, false
	}
	middle := rest[p.i:]
	if len(middle) > 0 && middle[0] != ',' || hasHeadName(middle) {
		return h, false
	}
	// Ids are kept only where the chain needs them: to pair an intent
	// with its outcome.
	if h.Kind == KindIntent || h.Kind == KindOutcome {
		h.RunID, h.TokenID = string(runID), string(tokenID)
	}
	return h, true
}

// internKind returns the constant for a known kind (no allocation).
func internKind(b []byte) Kind {
	for _, k := range []Kind{KindIntent, KindOutcome, KindRunStart, KindRunEnd, KindSnooze} {
		if string(b) == string(k) {
			return k
		}
	}
	return Kind(b)
}

// hasHeadName reports whether b holds a key named like one fastHead reads
// ("seq", "time", …), at any depth. In valid JSON `":` ends a key (a quote
// inside a string is escaped), so one pass over the key ends finds every
// candidate.
func hasHeadName(b []byte) bool {
	for {
		k := bytes.Index(b, []byte(`":`))
		if k < 0 {
			return false
		}
		key := b[:k]
		b = b[k+2:]
		if k == 0 {
			continue
		}
		var names []string
		switch key[k-1] {
		case 'q':
			names = nameSeq
		case 'e':
			names = nameTime
		case 'd':
			names = nameID
		case 'y':
			names = namePolicy
		case 'h':
			names = nameHash
		default:
			continue
		}
		for _, n := range names {
			if k >= len(n) && string(key[k-len(n):]) == n {
				return true
			}
		}
	}
}

var (
	nameSeq    = []string{`"seq`}
	nameTime   = []string{`"time`}
	nameID     = []string{`"runId`, `"kind`, `"tokenId`}
	namePolicy = []string{`"policy`}
	nameHash   = []string{`"prevHash`, `"hash`}
)

// parser reads the fixed parts of a record line.
type parser struct {
	b []byte
	i int
}

func (p *parser) lit(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// int reads a positive decimal integer without sign or leading zero.
func (p *parser) int() (int64, bool) {
	j := p.i
	for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
		j++
	}
	if j == p.i || j-p.i > 18 || (p.b[p.i] == '0' && j-p.i > 1) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(p.b[p.i:j]), 10, 64)
	if err != nil {
		return 0, false
	}
	p.i = j
	return n, true
}

// str reads a JSON string without escapes (one with an escape: not ok); the
// bytes returned are the line's.
func (p *parser) str() ([]byte, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	j := p.i + 1
	for j < len(p.b) {
		switch c := p.b[j]; {
		case c == '"':
			s := p.b[p.i+1 : j]
			p.i = j + 1
			return s, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			// An escape, or a byte encoding/json may read otherwise
			// (invalid UTF-8 becomes U+FFFD): the slow path.
			return nil, false
		}
		j++
	}
	return nil, false
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

// hashes are a line's stored hash (the line's bytes) and the hash its
// content has.
type hashes struct {
	stored   []byte
	computed [len(hashPrefix) + 64]byte
}

// ok reports whether the stored hash is the computed one.
func (h *hashes) ok() bool { return string(h.stored) == string(h.computed[:]) }

// lineHash finds the hash stored at the end of a line and computes the hash
// the line should have: over the line with that value replaced by "".
func lineHash(line []byte) (hashes, bool) {
	return lineHashWith(sha256.New(), line)
}

// lineHashWith is lineHash with a digest to reuse (reset here).
func lineHashWith(d hash.Hash, line []byte) (hashes, bool) {
	n := len(line)
	if n < hashValueLen+len(hashKey)+1 {
		return hashes{}, false
	}
	value := line[n-hashValueLen:]
	prefix := line[:n-hashValueLen]
	if !bytes.HasSuffix(prefix, []byte(hashKey)) || value[0] != '"' || !bytes.HasSuffix(value, []byte(`"}`)) {
		return hashes{}, false
	}
	raw := value[1 : len(value)-2]
	if len(raw) != len(hashPrefix)+64 || string(raw[:len(hashPrefix)]) != hashPrefix || !isLowerHex(raw[len(hashPrefix):]) {
		return hashes{}, false
	}
	h := hashes{stored: raw}
	d.Reset()
	d.Write(prefix)
	d.Write([]byte(`""}`))
	var sum [sha256.Size]byte
	copy(h.computed[:], hashPrefix)
	hex.Encode(h.computed[len(hashPrefix):], d.Sum(sum[:0]))
	return h, true
}

// sum hashes prefix followed by `""}`: a line ending in `,"hash":` with an
// empty hash value.
func sum(prefix []byte) string {
	h := sha256.New()
	h.Write(prefix)
	h.Write([]byte(`""}`))
	var out [len(hashPrefix) + 64]byte
	copy(out[:], hashPrefix)
	var d [sha256.Size]byte
	hex.Encode(out[len(hashPrefix):], h.Sum(d[:0]))
	return string(out[:])
}

func isLowerHex(s []byte) bool {
	for _, c := range s {
		if !lowerHex[c] {
			return false
		}
	}
	return true
}

var lowerHex = func() (t [256]bool) {
	for _, c := range []byte("0123456789abcdef") {
		t[c] = true
	}
	return t
}()
