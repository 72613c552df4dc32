package reasonshape

import (
	"bytes"
	"testing"
)

// Every reason renders back byte for byte from its shape and times, and
// only text that renders back is cut: a time that does not exist
// (February 30, hour 24) or is spelled otherwise stays literal.
func TestCutRendersBack(t *testing.T) {
	for _, c := range []struct {
		reason, name, owner string
		times               int
	}{
		{"lastUsed 2026-07-26T03:00:00.000Z is at or before 2026-09-06T18:19:51.709Z (unusedFor 90d)", "ci", "2c9180867624cbd7017642d6aaaaaaaa", 2},
		{`name "ci" matches, owner 2c9180867624cbd7017642d6aaaaaaaa`, "ci", "2c9180867624cbd7017642d6aaaaaaaa", 0},
		{"created 2026-02-30T10:00:00.000Z, 2028-02-29T24:00:00.000Z, 2026-01-01T00:00:00Z", "", "", 0},
		{"9999-12-31T23:59:59.999Z0000-01-01T00:00:00.000Z", "", "", 2},
		{"\xff\x00 invalid", "\xff", "short", 0},
		{"", "", "", 0},
	} {
		enc, times := AppendCut(nil, nil, c.reason, c.name, c.owner)
		if len(times) != c.times {
			t.Errorf("%q: %d times cut, want %d", c.reason, len(times), c.times)
		}
		sh, err := Decode(enc)
		if err != nil {
			t.Fatalf("%q: %v", c.reason, err)
		}
		if got, err := sh.Render(times, c.name, c.owner); err != nil || got != c.reason {
			t.Errorf("%q renders as %q, %v", c.reason, got, err)
		}
		if !bytes.Equal(sh.Encode(), enc) {
			t.Errorf("%q: shape encodes as %x, was cut as %x", c.reason, sh.Encode(), enc)
		}
		if _, err := sh.Render(append(times, 0), c.name, c.owner); err == nil {
			t.Errorf("%q: rendered with a time too many", c.reason)
		}
	}
}
