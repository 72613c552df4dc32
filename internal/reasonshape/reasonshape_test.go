package reasonshape

import (
	"bytes"
	"math"
	"testing"
	"time"
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

// parsedTime is what reasonTime stands for: time.Parse with TimeLayout,
// and Format writing back the same text.
func parsedTime(s string) (int64, bool) {
	const n = len(TimeLayout)
	if len(s) < n {
		return 0, false
	}
	t, err := time.Parse(TimeLayout, s[:n])
	if err != nil || t.Format(TimeLayout) != s[:n] {
		return 0, false
	}
	return t.UnixMilli(), true
}

// FuzzReasonTime: reasonTime reads a time exactly when time.Parse does and
// Format writes it back.
func FuzzReasonTime(f *testing.F) {
	for _, s := range []string{
		"2026-07-26T03:00:00.123Z", "2028-02-29T23:59:59.999Z", "2026-02-29T00:00:00.000Z",
		"2026-02-30T10:00:00.000Z", "2026-04-31T00:00:00.000Z", "2026-12-31T24:00:00.000Z",
		"0000-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z", "+999-01-01T00:00:00.000Z",
		"-999-01-01T00:00:00.000Z", "2026-1-01T00:00:00.000Z0", "2026-01-01T00:00:60.000Z",
		"2026-01-01T00:60:00.000Z", "2026-00-01T00:00:00.000Z", "2026-13-01T00:00:00.000Z",
		"2026-01-00T00:00:00.000Z", "2026-01-01T00:00:00.00Z", "2026-01-01T00:00:00,000Z",
		"2026-01-01 00:00:00.000Z", "2026-01-01T00:00:00.000z", "2026-01-01T0 :00:00.000Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, gok := reasonTime(s)
		want, wok := parsedTime(s)
		if got != want || gok != wok {
			t.Fatalf("reasonTime(%q) = %d, %v; time.Parse and Format say %d, %v", s, got, gok, want, wok)
		}
	})
}

// FuzzAppendTime: appendTime writes what time.AppendFormat writes, for
// any time a reason can hold and far beyond.
func FuzzAppendTime(f *testing.F) {
	for _, ms := range []int64{0, -1, 1, 1785034800123, 253402300799999, 253402300800000, -62167219200000, -62167219200001, math.MaxInt64 / 2, math.MinInt64 / 2} {
		f.Add(ms)
	}
	f.Fuzz(func(t *testing.T, ms int64) {
		want := time.UnixMilli(ms).UTC().AppendFormat(nil, TimeLayout)
		if got := appendTime(nil, ms); !bytes.Equal(got, want) {
			t.Fatalf("appendTime(%d) = %s, want %s", ms, got, want)
		}
	})
}
