package report

import (
	"bytes"
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
		var b bytes.Buffer
		if err := plan.Write(&b, p); err != nil {
			return fmt.Errorf("report: %s: %w", format, err)
		}
		_, err := w.Write(escapeJSONForTerminal(b.Bytes()))
		return err
	}
	o.terminal = true
	return RenderOptions(w, p, format, o)
}

// escapeJSONForTerminal rewrites the non-ASCII format and separator
// characters of a JSON document (they can only occur inside strings) as \u
// escapes, surrogate pairs above U+FFFF. The result decodes to the same
// value.
func escapeJSONForTerminal(doc []byte) []byte {
	i := bytes.IndexFunc(doc, func(r rune) bool { return r >= utf8.RuneSelf && untrusted.Hidden(r) })
	if i < 0 {
		return doc
	}
	out := make([]byte, 0, len(doc)+16)
	out = append(out, doc[:i]...)
	for _, r := range string(doc[i:]) {
		if r < utf8.RuneSelf || !untrusted.Hidden(r) {
			out = utf8.AppendRune(out, r)
			continue
		}
		if r > 0xffff {
			r1, r2 := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
			continue
		}
		out = fmt.Appendf(out, `\u%04x`, r)
	}
	return out
}
