package report

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// referenceEscapeJSONForTerminal is the escaping RenderTerminal did on the
// whole document before terminalJSON did it as the document is written (the
// function as it was, escapeJSONForTerminal): the reference the writer is
// held byte for byte to.
func referenceEscapeJSONForTerminal(doc []byte) []byte {
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

// terminalJSONInputs are documents (and things that are not) whose escaping
// depends on more than one byte: every hidden character of one to four
// bytes, characters that look like them and are not, invalid UTF-8 before
// and after the first escape (passed through, then U+FFFD), sequences cut
// short at the end, a literal U+FFFD.
var terminalJSONInputs = []string{
	"",
	`{"name": "plain"}`,
	"{\"name\": \"rtl\u202eevil\"}",
	"\u202e",
	"zero\u200bwidth \ufeffbom \u00adsoft \u2028\u2029 seps",
	"c1 \u0085 \u009b[2J controls",
	"tag \U000E0001\U000E0041 music \U0001D173",
	"\U0001F600 emoji, Zoë 東京, é",
	"\x1b[31m ascii controls \x07 stay",
	"bad\xffbefore \u202e bad\xffafter",
	"\x80\xbf lone continuations \u200b \x80\xbf",
	"cut at the end \u202e\xe2\x80",
	"cut at the end, nothing escaped \xe2\x80",
	"\xf0\x9f\x98",
	"\u200b\xf3\xa0\x80",
	"\xe2\x80\u202e\xe2",
	"surrogate \xed\xa0\x80 overlong \xc0\xaf \u2066 \xed\xa0\x80\xc0\xaf",
	"\ufffd literal \u2067 \ufffd",
	"\xe0\x80 \xf4\x90\x80\x80 \u202a \xe0\x80 \xf4\x90\x80\x80 \xf5",
}

// writeCut writes doc through a terminalJSON in writes of the sizes in cuts
// (0: an empty write), the rest in one write, and returns what reached the
// writer below.
func writeCut(t testing.TB, doc []byte, cuts []int) []byte {
	var out bytes.Buffer
	tw := newTerminalJSON(&out)
	for _, c := range cuts {
		c = min(c, len(doc))
		if n, err := tw.Write(doc[:c]); n != c || err != nil {
			t.Fatalf("Write of %d bytes = %d, %v", c, n, err)
		}
		doc = doc[c:]
	}
	if _, err := tw.Write(doc); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestTerminalJSONSplitAnywhere: the document escaped as it is written is
// byte for byte the document escaped whole, however the writes cut it: at
// every one and every two cut points, and a byte at a time.
func TestTerminalJSONSplitAnywhere(t *testing.T) {
	for _, in := range terminalJSONInputs {
		doc := []byte(in)
		want := referenceEscapeJSONForTerminal(doc)
		check := func(cuts []int) {
			t.Helper()
			if got := writeCut(t, doc, cuts); !bytes.Equal(got, want) {
				t.Fatalf("%q written in pieces %v:\n got %q\nwant %q", in, cuts, got, want)
			}
		}
		check(nil)
		ones := make([]int, len(doc))
		for i := range ones {
			ones[i] = 1
		}
		check(ones)
		for i := 0; i <= len(doc); i++ {
			check([]int{i})
			for j := i; j <= len(doc); j++ {
				check([]int{i, j - i})
			}
		}
	}
}

// TestTerminalJSONLongWrite: one write longer than the piece the writer
// escapes at a time, with a character across the pieces' boundary at every
// offset, escapes as the whole.
func TestTerminalJSONLongWrite(t *testing.T) {
	for _, c := range []string{"\u202e", "\U000E0001", "\u0085", "é", "\U0001F600", "\xe2\x80", "\xff"} {
		for at := terminalPiece - utf8.UTFMax; at <= terminalPiece; at++ {
			// An escape first, so that invalid bytes after it are
			// replaced, as the whole document's escaping does.
			doc := []byte("\u200b" + strings.Repeat("a", at-len("\u200b")) + c + strings.Repeat("b", terminalPiece) + c)
			want := referenceEscapeJSONForTerminal(doc)
			if got := writeCut(t, doc, nil); !bytes.Equal(got, want) {
				t.Fatalf("%q at %d: the %d bytes escaped in one write differ from the whole document escaped", c, at, len(doc))
			}
		}
	}
}

// FuzzTerminalJSON: any bytes, cut into writes of the sizes in cuts, escape
// as the whole does.
func FuzzTerminalJSON(f *testing.F) {
	for _, in := range terminalJSONInputs {
		f.Add([]byte(in), []byte{1, 2, 3})
	}
	f.Fuzz(func(t *testing.T, doc, cuts []byte) {
		sizes := make([]int, len(cuts))
		for i, c := range cuts {
			sizes[i] = int(c)
		}
		want := referenceEscapeJSONForTerminal(doc)
		if got := writeCut(t, doc, sizes); !bytes.Equal(got, want) {
			t.Fatalf("%q written in pieces %v:\n got %q\nwant %q", doc, sizes, got, want)
		}
	})
}

// TestTerminalJSONWriteError: a terminal that fails a write (closed, hung
// up) fails the JSON with its error, and nothing is written after it.
func TestTerminalJSONWriteError(t *testing.T) {
	p := hostileBigPlan(100) // several of the encoder's flushes
	hangup := errors.New("terminal hung up")
	w := &failingWriter{after: 1, err: hangup}
	err := RenderTerminal(w, p, FormatJSON, Options{})
	if !errors.Is(err, hangup) {
		t.Fatalf("render: %v, want %v", err, hangup)
	}
	if w.writes != 2 {
		t.Fatalf("%d writes, want 2: none after the one that failed", w.writes)
	}
}

// hostileBigPlan is bigPlan with a bidirectional override in every token
// name, which a terminal's JSON writes as \u202e.
func hostileBigPlan(n int) *plan.Plan { return repeatedPlan(n, " \u202e") }

// TestTerminalHoldsOneItemAtATime: every format is written to a terminal as
// it is rendered. The JSON was encoded whole into a buffer, then escaped
// into a second one, before the first byte reached the terminal: a
// 100,000-token plan peaked at 134-139 MB of RSS on a terminal against 44 MB
// to /dev/null (docs/performance.md).
func TestTerminalHoldsOneItemAtATime(t *testing.T) {
	// Two CPUs, as the table renders on a terminal of the development
	// machines: one renders and the pipeWriter's goroutine writes.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	const n = 1000
	p := hostileBigPlan(n)
	for _, format := range Formats() {
		t.Run(format, func(t *testing.T) {
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			w := &heapWriter{base: m.HeapAlloc, next: 1 << 20}
			if err := RenderTerminal(w, p, format, Options{Width: 100}); err != nil {
				t.Fatal(err)
			}
			if w.n < n*600 {
				t.Fatalf("the %s of %d items is %d bytes: not every item was written", format, n*p.Items.Len()/n, w.n)
			}
			// The JSON of these 6,000 items is 3.9 MB; held whole and
			// escaped whole it grew the heap by 4.9 MB. Written as
			// rendered, a format holds its buffers: the JSON what it
			// holds to a file (0.7 MB, the encoder's), the table its
			// pipeWriter's chunks (up to 1 MiB).
			t.Logf("%d bytes of %s, heap grew by at most %d bytes", w.n, format, w.peak)
			if limit := uint64(2 << 20); w.peak > limit {
				t.Errorf("writing the %s of %d items (%d bytes) to a terminal held %d bytes more of heap: the document is kept, not streamed", format, p.Items.Len(), w.n, w.peak)
			}
		})
	}
	runtime.KeepAlive(p)
}
