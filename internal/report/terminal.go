package report

import (
	"errors"
	"fmt"
	"io"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// RenderTerminal is RenderOptions for a terminal. The human formats escape
// untrusted text in any case; the two data formats are written so that they
// still mean the same data and cannot act on the terminal:
//
//   - csv: every cell goes through untrusted.Terminal, so a name holding ESC
//     or a newline (legal inside CSV quotes) shows as \x1b or \n on one row.
//     The cells then differ from the data; a CSV meant for a spreadsheet or
//     a script is written to a file or a pipe, where RenderOptions keeps it
//     faithful.
//   - json: the control characters are escaped by JSON already; the format
//     characters JSON leaves raw (bidirectional overrides such as U+202E,
//     zero-width spaces) are written as \u escapes, which decode to the same
//     strings: the document is the same document.
//
// Every format is written as it is rendered: the document of a 100,000-token
// plan is tens of megabytes, and a terminal is where the default plan
// output goes.
func RenderTerminal(w io.Writer, p *plan.Plan, format string, o Options) error {
	if p == nil {
		return errors.New("report: no plan")
	}
	switch format {
	case FormatCSV:
		if err := renderCSVCells(w, p, terminalCell); err != nil {
			return fmt.Errorf("report: %s: %w", format, err)
		}
		return nil
	case FormatJSON:
		tw := newTerminalJSON(w)
		err := plan.Write(tw, p)
		if cerr := tw.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("report: %s: %w", format, err)
		}
		return nil
	}
	o.terminal = true
	return RenderOptions(w, p, format, o)
}

// terminalJSON writes a JSON document to w as it is given, with the
// non-ASCII format and separator characters (untrusted.Hidden; in a JSON
// document they can only occur inside strings) rewritten as \u escapes,
// surrogate pairs above U+FFFF. The result decodes to the same value.
//
// A character can arrive split across two writes: the bytes of an
// unfinished UTF-8 sequence at the end of a write are kept (at most three)
// and decoded with the next one, so that the output does not depend on
// where the writes were cut. Close decodes what is left as the end of the
// document.
//
// Invalid UTF-8, which the plan encoder never writes (it escapes it as
// \ufffd), is passed through as it is until the first escaped character
// and written as U+FFFD after it. That rule keeps the output byte for byte
// that of escaping the whole document at once (a scan for the first hidden
// character, then a range over the rest as a string), which the tests use
// as their reference.
//
// The first error of w is kept: later writes write nothing and return it.
type terminalJSON struct {
	w   io.Writer
	buf []byte // the escaped output of the write being handled
	// tail is the start of a character cut by the end of the last write.
	tail  [utf8.UTFMax]byte
	ntail int
	// escaped: a character was escaped; from here invalid bytes become
	// U+FFFD.
	escaped bool
	err     error
}

// terminalPiece bounds the input escaped into buf before it is written:
// the output of a piece is at most three times its size (a two-byte C1
// control becomes a six-byte \u escape), whatever one Write is given.
const terminalPiece = 32 << 10

func newTerminalJSON(w io.Writer) *terminalJSON { return &terminalJSON{w: w} }

func (t *terminalJSON) Write(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	n := len(p)
	// Finish a character begun by the last write, a byte at a time: the
	// kept bytes are a prefix that could still become a valid character,
	// and each byte added either completes it, proves it invalid or keeps
	// it open.
	for t.ntail > 0 && len(p) > 0 {
		t.tail[t.ntail] = p[0]
		t.ntail++
		p = p[1:]
		k := t.escape(t.tail[:t.ntail], false)
		t.ntail = copy(t.tail[:], t.tail[k:t.ntail])
	}
	for len(p) > 0 {
		piece := p[:min(len(p), terminalPiece)]
		k := t.escape(piece, false)
		if k < len(piece) && len(piece) == len(p) {
			// The document so far ends inside a character: keep its
			// start for the next write.
			t.ntail = copy(t.tail[:], piece[k:])
			k = len(p)
		}
		p = p[k:]
		if err := t.flush(); err != nil {
			return 0, err
		}
	}
	if err := t.flush(); err != nil {
		return 0, err
	}
	return n, nil
}

// Close escapes what is left of a character cut short (the end of the
// document: each byte is invalid UTF-8), writes it and returns the first
// error. The underlying writer is not closed.
func (t *terminalJSON) Close() error {
	if t.err != nil {
		return t.err
	}
	t.escape(t.tail[:t.ntail], true)
	t.ntail = 0
	return t.flush()
}

func (t *terminalJSON) flush() error {
	if len(t.buf) > 0 && t.err == nil {
		_, t.err = t.w.Write(t.buf)
	}
	t.buf = t.buf[:0]
	return t.err
}

// escape appends b, escaped, to t.buf and returns how many bytes of it it
// took: all of them, but for the start of a character that b ends before
// its last byte, unless final says nothing follows.
func (t *terminalJSON) escape(b []byte, final bool) int {
	start, i := 0, 0
	for i < len(b) {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		if !final && !utf8.FullRune(b[i:]) {
			break
		}
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case untrusted.Hidden(r):
			t.buf = append(t.buf, b[start:i]...)
			if r > 0xffff {
				r1, r2 := utf16.EncodeRune(r)
				t.buf = fmt.Appendf(t.buf, `\u%04x\u%04x`, r1, r2)
			} else {
				t.buf = fmt.Appendf(t.buf, `\u%04x`, r)
			}
			t.escaped = true
			start = i + size
		case r == utf8.RuneError && size == 1 && t.escaped:
			t.buf = append(t.buf, b[start:i]...)
			t.buf = utf8.AppendRune(t.buf, utf8.RuneError)
			start = i + size
		}
		i += size
	}
	t.buf = append(t.buf, b[start:i]...)
	return i
}
