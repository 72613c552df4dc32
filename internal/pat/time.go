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
