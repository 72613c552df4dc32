package report

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// FuzzJSONText: jsonText's shortcut for plain values (plainJSON) gives what
// decoding and encoding again gives, and never takes invalid JSON.
func FuzzJSONText(f *testing.F) {
	for _, s := range []string{`["idn:sources:read","sp:scopes:all"]`, `"2027-01-01T00:00:00.000Z"`, `true`, `null`,
		`1.50`, `-0`, `1e5`, `[]`, `""`, `" a  b "`, `[ "a" ]`, `"\u003cx\u003e"`, `"a\\b"`, `{"b":1,"a":2}`,
		`[{"op":"replace"}]`, "\"\u2028\"", `"é"`, `[1,]`, `"`, `[true,false,null,[]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !plainJSON(raw) {
			return
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil || dec.More() {
			t.Fatalf("plainJSON(%q) but it does not decode as one value: %v", raw, err)
		}
		want, err := marshalText(v)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := jsonText(raw); got != want {
			t.Fatalf("jsonText(%q) = %q, the full path gives %q", raw, got, want)
		}
	})
}

// referenceWrap is wrap as it was written first (strings.Fields and
// concatenation), the reference for FuzzWrap.
func referenceWrap(text string, width int) []string {
	words := strings.Fields(text)
	if len(words) == 0 {
		return []string{""}
	}
	var lines []string
	line := words[0]
	n := utf8.RuneCountInString(line)
	for _, w := range words[1:] {
		k := utf8.RuneCountInString(w)
		if n+1+k > width {
			lines = append(lines, line)
			line, n = w, k
			continue
		}
		line += " " + w
		n += 1 + k
	}
	return append(lines, line)
}

// FuzzWrap: wrap splits and joins exactly as referenceWrap, whatever the
// spacing (runs of spaces, tabs, Unicode spaces, invalid UTF-8) and width,
// and when oneLine says the text is its own single line, so it is.
func FuzzWrap(f *testing.F) {
	f.Add("lastUsed 2026-01-02T03:04:05.000Z is before cutoff 2026-09-06T03:00:00.000Z (unusedFor 90d)", 60)
	f.Add("  two  spaces\tand a tab\u00a0nbsp\u3000ideographic \xff bad ", 7)
	f.Add("", 10)
	f.Add("   ", 0)
	f.Add("a b c d e f g h", 1)
	f.Add("verylongwordthatdoesnotfit short", 5)
	f.Add("verylongwordthatdoesnotfit", 5)
	f.Add("fits on one line", 16)
	f.Add("does not fit", 11)
	f.Add("trailing ", 20)
	f.Add("two  spaces", 20)
	f.Fuzz(func(t *testing.T, text string, width int) {
		want := referenceWrap(text, width)
		if got := wrap(text, width); !slices.Equal(got, want) {
			t.Fatalf("wrap(%q, %d) = %q, want %q", text, width, got, want)
		}
		if oneLine(text, width) && !slices.Equal(want, []string{text}) {
			t.Fatalf("oneLine(%q, %d) but it wraps to %q", text, width, want)
		}
	})
}

// FuzzVisible: visible's shortcut for printable ASCII changes nothing that
// untrusted.Terminal would escape, and visibleLen is visible and its length
// in runes.
func FuzzVisible(f *testing.F) {
	for _, s := range []string{"plain name", "a\nb", "\x1b[2J", "evil\u202egnp", "del\x7f", "bad\xff", "日本語", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := untrusted.Terminal(s)
		if got := visible(s); got != want {
			t.Fatalf("visible(%q) = %q, untrusted.Terminal gives %q", s, got, want)
		}
		if got, n := visibleLen(s); got != want || n != utf8.RuneCountInString(want) {
			t.Fatalf("visibleLen(%q) = %q, %d; want %q, %d", s, got, n, want, utf8.RuneCountInString(want))
		}
	})
}

// FuzzAppendDate: the table's day of a last use is dateText's, for any
// time (years before 0 and after 9999, zones other than UTC).
func FuzzAppendDate(f *testing.F) {
	f.Add(int64(1764558000), int64(0), int64(0))
	f.Add(int64(-62135596800), int64(0), int64(3600))    // year 1
	f.Add(int64(-62135596801), int64(999), int64(-3600)) // year 0
	f.Add(int64(253402300799), int64(999999999), int64(0))
	f.Add(int64(253402300800), int64(0), int64(50400)) // year 10000
	f.Add(int64(-64000000000), int64(0), int64(0))     // before year 0
	f.Fuzz(func(t *testing.T, sec, nsec, offset int64) {
		tm := time.Unix(sec, nsec).In(time.FixedZone("z", int(offset%(100*3600))))
		if got, want := string(appendDate([]byte("x"), tm)), "x"+dateText(&tm); got != want {
			t.Fatalf("appendDate(%v) = %q, dateText %q", tm, got, want)
		}
	})
}
