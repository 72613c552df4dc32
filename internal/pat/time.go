package pat

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// TimeLayout is how patjanitor writes every timestamp it sends or shows: UTC with
// exactly three fractional digits, the form the SailPoint API itself emits and the
// only form its filter examples use.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// FormatTime renders t in TimeLayout (converted to UTC, truncated to milliseconds).
func FormatTime(t time.Time) string {
	return t.UTC().Format(TimeLayout)
}

// ErrBadTime is wrapped by every ParseTime failure.
var ErrBadTime = errors.New("invalid timestamp")

// lenientLayouts are the forms the official SDKs accept (SailPointTime.UnmarshalJSON
// tries RFC 3339, then minute precision with a zone, then a zone-less local form).
// time.RFC3339Nano parses 0 to 9 fractional digits and any offset.
var lenientLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04:05.999999999", // no zone: the SDK reads these as UTC
}

// ParseTime parses a timestamp leniently (0 to 9 fractional digits, Z or an
// offset, minute precision, or no zone meaning UTC) and returns it in UTC.
// Garbage is an error wrapping ErrBadTime, never a zero time.
func ParseTime(s string) (time.Time, error) {
	if s == "" || len(s) > 64 || strings.TrimSpace(s) != s {
		return time.Time{}, fmt.Errorf("%w: %q", ErrBadTime, s)
	}
	for _, layout := range lenientLayouts {
		t, err := time.Parse(layout, s)
		if err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: %q is not an RFC 3339 date-time", ErrBadTime, s)
}

// ParseTimeBytes is ParseTime of string(b), without converting b to a string
// for the common form: the API's own "2006-01-02T15:04:05Z" with 0 to 9
// fractional digits, which it parses by hand with time.Parse's range checks
// (month, day of that month, hour, minute, second). Every other input, valid
// or not, goes through ParseTime itself, so results and errors are the same
// (FuzzParseTime checks it). It does not retain b.
func ParseTimeBytes(b []byte) (time.Time, error) {
	if t, ok := parseUTCFast(b); ok {
		return t, nil
	}
	return ParseTime(string(b))
}

// parseUTCFast parses YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z; ok is false for anything
// else, including out-of-range fields (ParseTime then says why).
func parseUTCFast(b []byte) (time.Time, bool) {
	if len(b) < 20 || len(b) > 30 || b[4] != '-' || b[7] != '-' || b[10] != 'T' ||
		b[13] != ':' || b[16] != ':' || b[len(b)-1] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) (int, bool) {
		v := 0
		for _, c := range b[i : i+n] {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 2)
	day, ok3 := num(8, 2)
	hour, ok4 := num(11, 2)
	minute, ok5 := num(14, 2)
	sec, ok6 := num(17, 2)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 ||
		month < 1 || month > 12 || day < 1 || day > daysIn(time.Month(month), year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	ns := 0
	if frac := b[19 : len(b)-1]; len(frac) > 0 {
		// A '.' and 1 to 9 digits.
		if frac[0] != '.' || len(frac) < 2 {
			return time.Time{}, false
		}
		digits := len(frac) - 1
		v, ok := num(20, digits)
		if !ok {
			return time.Time{}, false
		}
		for range 9 - digits {
			v *= 10
		}
		ns = v
	}
	// time.Date(..., time.UTC) without its normalisation: the fields are in
	// range. Days since 1970-01-01 of the proleptic Gregorian calendar
	// (Howard Hinnant's days_from_civil).
	y := year
	if month <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (month + 9) % 12
	doy := (153*mp+2)/5 + day - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	days := int64(era)*146097 + int64(doe) - 719468
	return time.Unix(days*86400+int64(hour*3600+minute*60+sec), int64(ns)).UTC(), true
}

func daysIn(m time.Month, year int) int {
	switch m {
	case time.February:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}
