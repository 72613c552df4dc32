package audit

// The verifier as it was before the checkpoint work (json.Unmarshal of each
// record's head), kept only so that BenchmarkVerify100k measures the old and
// the new side by side in one run (docs/performance.md).

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

func legacyVerify(r io.Reader) (Summary, error) {
	w, err := legacyWalk(r, nil)
	if err != nil {
		return w.legacySummary(), err
	}
	if w.torn != nil {
		return w.legacySummary(), w.torn
	}
	return w.legacySummary(), nil
}

// legacyWalker is the state of a verification pass.
type legacyWalker struct {
	line     int   // lines read
	good     int64 // bytes of the verified records
	records  int
	seq      int64
	hash     string
	runs     int
	open     map[legacyIntentKey]legacyOpenIntent
	torn     *ChainError // a damaged final line (the caller decides)
	lineBuf  []byte
	callback func(Record) error
}

type legacyIntentKey struct{ run, token string }

// legacyOpenIntent is an intent without an outcome so far: its line, decoded only
// if it is still open at the end (normally none is).
type legacyOpenIntent struct {
	seq  int64
	line []byte
}

func (w *legacyWalker) legacySummary() Summary {
	return Summary{Records: w.records, LastSeq: w.seq, LastHash: w.hash, Runs: w.runs, PendingIntents: len(w.open)}
}

// legacyWalk verifies records until the end or the first broken one. A damaged
// final line that a crash explains is not returned as an error but left in
// w.torn, with w.good the size of the journal without it.
func legacyWalk(r io.Reader, fn func(Record) error) (*legacyWalker, error) {
	w := &legacyWalker{hash: GenesisHash, open: map[legacyIntentKey]legacyOpenIntent{}, callback: fn}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, complete, err := w.legacyReadLine(br)
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
		rec, cerr := w.legacyCheck(line[:len(line)-1])
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

// legacyReadLine returns the next line with its newline (complete) or the bytes
// before the end of input (not complete; empty at the end).
func (w *legacyWalker) legacyReadLine(br *bufio.Reader) ([]byte, bool, error) {
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

// legacyHead is the part of a record the chain check reads. Decoding only these
// keys (the decoder skips the rest) makes verification several times faster
// than decoding whole records; the hash covers every byte either way.
type legacyHead struct {
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	RunID    string    `json:"runId"`
	Kind     Kind      `json:"kind"`
	TokenID  string    `json:"tokenId"`
	PrevHash string    `json:"prevHash"`
	Hash     string    `json:"hash"`
}

// legacyCheck verifies one line (without its newline) against the chain so far and
// advances the chain. It decodes the full record only when a callback wants
// it.
func (w *legacyWalker) legacyCheck(line []byte) (Record, *ChainError) {
	fail := func(seq int64, format string, args ...any) (Record, *ChainError) {
		return Record{}, &ChainError{Line: w.line, Seq: seq, Reason: fmt.Sprintf(format, args...)}
	}
	var h legacyHead
	if err := json.Unmarshal(line, &h); err != nil {
		// Unreadable: either damage, or a crash that left a hole in the
		// last line (the file grew before its data reached the disk).
		return Record{}, &ChainError{Line: w.line, Reason: "not a JSON record: " + err.Error(), torn: true}
	}
	got, ok := legacyLineHash(line)
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
		w.open[legacyIntentKey{h.RunID, h.TokenID}] = legacyOpenIntent{seq: h.Seq, line: slices.Clone(line)}
	case KindOutcome:
		delete(w.open, legacyIntentKey{h.RunID, h.TokenID})
	}
	return rec, nil
}

type legacyHashes struct{ stored, computed string }

func legacyLineHash(line []byte) (legacyHashes, bool) {
	n := len(line)
	if n < hashValueLen+len(hashKey)+1 {
		return legacyHashes{}, false
	}
	value := line[n-hashValueLen:]
	prefix := line[:n-hashValueLen]
	if !bytes.HasSuffix(prefix, []byte(hashKey)) || value[0] != '"' || !bytes.HasSuffix(value, []byte(`"}`)) {
		return legacyHashes{}, false
	}
	stored := string(value[1 : len(value)-2])
	if len(stored) != len(hashPrefix)+64 || stored[:len(hashPrefix)] != hashPrefix || !legacyIsLowerHex(stored[len(hashPrefix):]) {
		return legacyHashes{}, false
	}
	return legacyHashes{stored: stored, computed: legacySum(prefix)}, true
}

func legacySum(prefix []byte) string {
	h := sha256.New()
	h.Write(prefix)
	h.Write([]byte(`""}`))
	return hashPrefix + hex.EncodeToString(h.Sum(nil))
}

func legacyIsLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
