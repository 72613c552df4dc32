// Package httpx holds the small pieces of HTTP client behaviour that the
// tenant API client (internal/api) and the notifiers (internal/notify) share:
// reading Retry-After, the retry backoff and draining a response body so its
// connection can be reused. One copy each, so that a fix (an overflowing
// Retry-After, say) reaches both.
package httpx

import (
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter is the longest Retry-After ParseRetryAfter returns. A server
// may ask for anything; a wait this long is never taken (callers bound their
// waits by their own deadlines), and capping before the multiplication keeps
// an absurd value (Retry-After: 9300000000) from overflowing time.Duration
// into a negative wait.
const MaxRetryAfter = 24 * time.Hour

// ParseRetryAfter reads a Retry-After header value as delay-seconds or an
// HTTP date (RFC 9110 §10.2.3), relative to now. ok is false when the value is
// absent or not one of those forms (a negative number included). A date in
// the past means "now" (0, true). The result is at most MaxRetryAfter.
func ParseRetryAfter(h string, now time.Time) (d time.Duration, ok bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if isDigits(h) {
		n, err := strconv.ParseUint(h, 10, 64)
		if err != nil || n > uint64(MaxRetryAfter/time.Second) {
			// Too many digits for uint64 is still "a very long time".
			return MaxRetryAfter, true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(h)
	if err != nil {
		return 0, false
	}
	d = t.Sub(now) // time.Time.Sub saturates rather than overflows
	return min(max(d, 0), MaxRetryAfter), true
}

// isDigits: delay-seconds is 1*DIGIT; a sign or a fraction is not a delay.
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Backoff is exponential backoff with "equal jitter": the wait after the
// attempt-th failure (1-based) is Base·2^(attempt-1), capped at Max, of which
// half is fixed and half random, so that clients that failed together do not
// retry together.
type Backoff struct {
	Base, Max time.Duration
}

// Step is the capped exponential wait after the attempt-th failure, without
// jitter. It never overflows: large attempts (or a Base so large that
// doubling would) give Max.
func (b Backoff) Step(attempt int) time.Duration {
	d := b.Max
	if attempt >= 1 && attempt < 63 {
		if step := b.Base << (attempt - 1); step > 0 && step>>(attempt-1) == b.Base {
			d = min(step, b.Max)
		}
	}
	return max(d, 0)
}

// Delay is Step with equal jitter: half of it fixed, half random.
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Step(attempt)
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(half+1)
}

// DrainLimit is how much of an unread body Drain reads: enough for the rest
// of an error page, not worth more than that to keep one connection.
const DrainLimit = 64 << 10

// Drain reads and discards up to DrainLimit bytes of body and closes it. A
// body read to its end lets net/http reuse the connection; a larger remainder
// is not worth reading (the connection is closed instead).
func Drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, DrainLimit))
	_ = body.Close()
}
