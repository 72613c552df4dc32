package idnsim

import (
	"sync"
	"time"
)

// limiter enforces "at most n requests in any window of length w" per key
// (client id and API version). It keeps the times of the last n admitted
// requests in a ring per key, so each check is O(1). A sliding window is the
// strictest reading of "100 requests per 10 seconds": a client that passes here
// passes a fixed-window gateway too. Refused requests are not recorded, so a
// client that waits Retry-After is admitted.
type limiter struct {
	mu     sync.Mutex
	n      int
	window time.Duration
	rings  map[string]*ring
}

type ring struct {
	times []time.Time
	next  int // index of the oldest entry once full
}

func newLimiter(n int, window time.Duration) *limiter {
	if n == 0 {
		n = DefaultRateLimit
	}
	if window <= 0 {
		window = DefaultRateWindow
	}
	return &limiter{n: n, window: window, rings: map[string]*ring{}}
}

// configure changes the limit (scenario options); existing windows are dropped.
func (l *limiter) configure(n int, window time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n == 0 {
		n = DefaultRateLimit
	}
	if window <= 0 {
		window = DefaultRateWindow
	}
	l.n, l.window, l.rings = n, window, map[string]*ring{}
}

func (l *limiter) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rings = map[string]*ring{}
}

// allow admits a request at now, or says how long until it would be admitted.
func (l *limiter) allow(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n < 0 {
		return 0, true
	}
	r := l.rings[key]
	if r == nil {
		r = &ring{times: make([]time.Time, 0, l.n)}
		l.rings[key] = r
	}
	if len(r.times) < l.n {
		r.times = append(r.times, now)
		return 0, true
	}
	oldest := r.times[r.next]
	if free := oldest.Add(l.window); now.Before(free) {
		return free.Sub(now), false
	}
	r.times[r.next] = now
	r.next = (r.next + 1) % l.n
	return 0, true
}
