package pat

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseTimeLenient(t *testing.T) {
	base := time.Date(2026, 8, 28, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2026-08-28T03:00:00Z", base},
		{"2026-08-28T03:00:00.1Z", base.Add(100 * time.Millisecond)},
		{"2026-08-28T03:00:00.12Z", base.Add(120 * time.Millisecond)},
		{"2026-08-28T03:00:00.123Z", base.Add(123 * time.Millisecond)},
		{"2026-08-28T03:00:00.1234Z", base.Add(123400 * time.Microsecond)},
		{"2026-08-28T03:00:00.12345Z", base.Add(123450 * time.Microsecond)},
		{"2026-08-28T03:00:00.123456Z", base.Add(123456 * time.Microsecond)},
		{"2026-08-28T03:00:00.1234567Z", base.Add(123456700 * time.Nanosecond)},
		{"2026-08-28T03:00:00.12345678Z", base.Add(123456780 * time.Nanosecond)},
		{"2026-08-28T03:00:00.123456789Z", base.Add(123456789 * time.Nanosecond)},
		// Offsets are converted to UTC.
		{"2026-08-28T05:00:00+02:00", base},
		{"2026-08-28T05:00:00.500+02:00", base.Add(500 * time.Millisecond)},
		{"2026-08-27T21:30:00-05:30", base},
		{"2026-08-28T03:00:00+00:00", base},
		// Minute precision with a zone, and the zone-less form the SDK reads as UTC.
		{"2026-08-28T03:00Z", base},
		{"2026-08-28T04:00+01:00", base},
		{"2026-08-28T03:00:00", base},
		{"2026-08-28T03:00:00.486584", base.Add(486584 * time.Microsecond)},
		// The DP example with six digits.
		{"2023-01-04T18:58:17.486584Z", time.Date(2023, 1, 4, 18, 58, 17, 486584000, time.UTC)},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in)
		if err != nil {
			t.Errorf("ParseTime(%q): %v", tt.in, err)
			continue
		}
		if !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, want %v", tt.in, got, tt.want)
		}
		if got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) location = %v, want UTC", tt.in, got.Location())
		}
	}
}

func TestParseTimeRejectsGarbage(t *testing.T) {
	for _, in := range []string{
		"",
		" ",
		"null",
		"yesterday",
		"2026-08-28",
		"2026-08-28 03:00:00Z",
		" 2026-08-28T03:00:00Z",
		"2026-08-28T03:00:00Z ",
		"2026-08-28T03:00:00Z\n",
		"2026-13-01T00:00:00Z",
		"2026-02-30T00:00:00Z",
		"2026-08-28T24:00:00Z",
		"2026-08-28T03:60:00Z",
		"2026-08-28T03:00:00+0200",
		"2026-08-28T03:00:00.Z",
		"2026-08-28T03:00:00.123ZZ",
		"2026-08-28T03:00:00.123+25:00",
		"1661655600",
		`"2026-08-28T03:00:00Z"`,
		strings.Repeat("9", 100),
	} {
		got, err := ParseTime(in)
		if err == nil {
			t.Errorf("ParseTime(%q) = %v, want an error", in, got)
			continue
		}
		if !errors.Is(err, ErrBadTime) {
			t.Errorf("ParseTime(%q) error %v does not wrap ErrBadTime", in, err)
		}
		if !got.IsZero() {
			t.Errorf("ParseTime(%q) returned %v alongside its error", in, got)
		}
	}
}

func TestFormatTime(t *testing.T) {
	loc := time.FixedZone("x", -5*3600)
	for _, tt := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 8, 28, 3, 0, 0, 0, time.UTC), "2026-08-28T03:00:00.000Z"},
		{time.Date(2026, 8, 27, 22, 0, 0, 0, loc), "2026-08-28T03:00:00.000Z"},
		// Truncated, not rounded, to milliseconds.
		{time.Date(2026, 8, 28, 3, 0, 0, 999999999, time.UTC), "2026-08-28T03:00:00.999Z"},
		{time.Date(2026, 8, 28, 3, 0, 0, 1000000, time.UTC), "2026-08-28T03:00:00.001Z"},
	} {
		if got := FormatTime(tt.in); got != tt.want {
			t.Errorf("FormatTime(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzParseTime: ParseTime never panics, fails only with ErrBadTime and a zero
// time, returns UTC, and what it returns survives FormatTime and ParseTime again
// (to the millisecond).
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"2026-08-28T03:00:00.000Z",
		"2026-08-28T03:00:00Z",
		"2023-01-04T18:58:17.486584Z",
		"2026-08-28T05:00:00.123456789+02:00",
		"2026-08-28T03:00Z",
		"2026-08-28T03:00:00",
		"2026-08-28T03:00:00.1",
		"garbage",
		"",
		// ParseTimeBytes' fast path and its edges.
		"2024-02-29T23:59:59.999Z",
		"2023-02-29T00:00:00Z",
		"2026-04-31T00:00:00Z",
		"2026-13-01T00:00:00Z",
		"2026-00-01T00:00:00Z",
		"2026-08-28T24:00:00Z",
		"2026-08-28T23:60:00Z",
		"2026-08-28T23:59:60Z",
		"2026-08-28T03:00:00.Z",
		"2026-08-28T03:00:00.1234567890Z",
		"2026-08-28T03:00:00,123Z",
		"2026-08-28t03:00:00Z",
		"2026-08-28T03:00:00z",
		"0000-01-01T00:00:00Z",
		"9999-12-31T23:59:59.999999999Z",
		"+026-08-28T03:00:00Z",
		"2026-08-2\xff03:00:00Z",
		"1900-02-29T00:00:00Z",
		"2000-02-29T00:00:00Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s)
		// ParseTimeBytes is ParseTime: the same time (location included)
		// and the same error.
		gotB, errB := ParseTimeBytes([]byte(s))
		if gotB != got || (err == nil) != (errB == nil) || (err != nil && err.Error() != errB.Error()) {
			t.Fatalf("ParseTimeBytes(%q) = %v, %v; ParseTime = %v, %v", s, gotB, errB, got, err)
		}
		if err != nil {
			if !errors.Is(err, ErrBadTime) {
				t.Fatalf("ParseTime(%q) error %v does not wrap ErrBadTime", s, err)
			}
			if !got.IsZero() {
				t.Fatalf("ParseTime(%q) returned %v with an error", s, got)
			}
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("ParseTime(%q) location %v", s, got.Location())
		}
		if y := got.Year(); y < 0 || y > 9999 {
			// An offset can carry 0000-01-01 or 9999-12-31 across a year
			// boundary; TimeLayout has no form for such years.
			return
		}
		again, err := ParseTime(FormatTime(got))
		if err != nil {
			t.Fatalf("ParseTime(FormatTime(ParseTime(%q))) = %v", s, err)
		}
		if !again.Equal(got.Truncate(time.Millisecond)) {
			t.Fatalf("round trip of %q: %v != %v", s, again, got.Truncate(time.Millisecond))
		}
	})
}

// TestParseTimeBytesCalendar: ParseTimeBytes' own date arithmetic agrees with
// the time package on the first, a middle and the last day of every month of
// years 0 to 9999.
func TestParseTimeBytesCalendar(t *testing.T) {
	for y := 0; y <= 9999; y++ {
		for m := time.January; m <= time.December; m++ {
			last := time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
			for _, d := range []int{1, 15, last} {
				want := time.Date(y, m, d, 13, 7, 9, 120000000, time.UTC)
				s := want.Format("2006-01-02T15:04:05.00Z")
				got, err := ParseTimeBytes([]byte(s))
				if err != nil || got != want {
					t.Fatalf("ParseTimeBytes(%q) = %v, %v; want %v", s, got, err, want)
				}
			}
		}
	}
}
