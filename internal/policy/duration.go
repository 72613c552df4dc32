package policy

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Day and Week are the units policies.yaml adds to Go's durations. A day is
// exactly 24 hours: cutoffs are instants (now minus the duration), not calendar
// dates, so daylight-saving changes never move them.
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
)

// durationUnits are the units ParseDuration accepts.
var durationUnits = []struct {
	name string
	d    time.Duration
}{
	{"ms", time.Millisecond},
	{"us", time.Microsecond},
	{"µs", time.Microsecond},
	{"ns", time.Nanosecond},
	{"w", Week},
	{"d", Day},
	{"h", time.Hour},
	{"m", time.Minute},
	{"s", time.Second},
}

// ParseDuration parses a duration as policies.yaml writes it: Go's syntax
// (36h, 1h30m, 90s) extended with d (24 hours) and w (7 days), in any
// combination: 90d, 2w, 1d12h, 1.5d. A bare number other than 0 is an error
// (is "90" days or seconds?), and so is a sign: every duration in the file is
// a positive span.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if s == "0" {
		return 0, nil
	}
	if s[0] == '-' || s[0] == '+' {
		return 0, fmt.Errorf("%q: a duration has no sign", s)
	}
	var total time.Duration
	rest := s
	for rest != "" {
		// The number: digits, optionally a fraction.
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		num := rest[:i]
		if num == "" || num == "." || strings.Count(num, ".") > 1 {
			return 0, fmt.Errorf("%q is not a duration (write for example 90d, 2w, 36h or 1d12h)", s)
		}
		rest = rest[i:]
		if rest == "" {
			return 0, fmt.Errorf("%q has no unit (write for example %sd, %sh or %sw)", s, num, num, num)
		}
		// The unit: everything up to the next number.
		j := 0
		for j < len(rest) && !(rest[j] >= '0' && rest[j] <= '9' || rest[j] == '.') {
			j++
		}
		name := rest[:j]
		rest = rest[j:]
		var unit time.Duration
		for _, u := range durationUnits {
			if u.name == name {
				unit = u.d
				break
			}
		}
		if unit == 0 {
			return 0, fmt.Errorf("%q: unknown unit %q (units: w, d, h, m, s, ms)", s, name)
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration: %w", s, err)
		}
		part := v * float64(unit)
		if part >= math.MaxInt64 || float64(total)+part >= math.MaxInt64 {
			return 0, fmt.Errorf("%q is too long (at most about 292 years)", s)
		}
		// Round, not truncate: 0.1h is 6m, not 5m59.999999999s.
		total += time.Duration(math.Round(part))
	}
	return total, nil
}

// FormatDuration renders d the way policies.yaml writes it, in days when it has
// whole days: 90d, 14d (also for 2w), 1d12h, 36m, 1h30m, 500ms.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	if days := d / Day; days > 0 {
		b.WriteString(strconv.FormatInt(int64(days), 10))
		b.WriteByte('d')
		d -= days * Day
	}
	for _, u := range []struct {
		name string
		d    time.Duration
	}{{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}, {"us", time.Microsecond}, {"ns", time.Nanosecond}} {
		if n := d / u.d; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.name)
			d -= n * u.d
		}
	}
	return b.String()
}
