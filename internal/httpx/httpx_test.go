package httpx

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"  ", 0, false},
		{"0", 0, true},
		{"7", 7 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"86400", 24 * time.Hour, true},
		{"86401", MaxRetryAfter, true},
		{"99999", MaxRetryAfter, true},
		// The overflow the notifier's copy had: 9.3e9 s is more nanoseconds
		// than an int64 holds, and came out negative.
		{"9300000000", MaxRetryAfter, true},
		{"99999999999999999999999999", MaxRetryAfter, true},
		{"-5", 0, false},
		{"+5", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{now.Add(72 * time.Hour).Format(http.TimeFormat), MaxRetryAfter, true},
		{"Fri, 31 Dec 9999 23:59:59 GMT", MaxRetryAfter, true},
	} {
		got, ok := ParseRetryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
		if got < 0 {
			t.Errorf("ParseRetryAfter(%q) is negative: %v", c.in, got)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "9300000000", "Fri, 31 Dec 9999 23:59:59 GMT", "-1", "1e9"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, h string) {
		d, ok := ParseRetryAfter(h, now)
		if d < 0 || d > MaxRetryAfter || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v", h, d, ok)
		}
	})
}

func TestBackoff(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 30 * time.Second}
	for attempt, want := range map[int]time.Duration{
		0: 30 * time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second,
		5: 16 * time.Second, 6: 30 * time.Second, 40: 30 * time.Second, 62: 30 * time.Second,
		63: 30 * time.Second, 1000: 30 * time.Second, -1: 30 * time.Second,
	} {
		if got := b.Step(attempt); got != want {
			t.Errorf("Step(%d) = %v, want %v", attempt, got, want)
		}
		seen := map[time.Duration]bool{}
		for range 200 {
			d := b.Delay(attempt)
			if d < want/2 || d > want {
				t.Fatalf("Delay(%d) = %v, outside [%v, %v]", attempt, d, want/2, want)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("Delay(%d) has no jitter: %d distinct values in 200", attempt, len(seen))
		}
	}
	// A base so large that doubling overflows gives the cap, never a
	// negative or tiny wait.
	huge := Backoff{Base: time.Duration(1 << 61), Max: time.Hour}
	if got := huge.Step(4); got != time.Hour {
		t.Errorf("overflowing Step = %v, want the cap", got)
	}
	if got := (Backoff{}).Delay(3); got != 0 {
		t.Errorf("zero Backoff Delay = %v", got)
	}
}

type countingBody struct {
	r      io.Reader
	read   int
	closed bool
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += n
	return n, err
}

func (b *countingBody) Close() error { b.closed = true; return nil }

func TestDrainIsBoundedAndCloses(t *testing.T) {
	endless := &countingBody{r: infinite{}}
	Drain(endless)
	if !endless.closed || endless.read != DrainLimit {
		t.Fatalf("read %d bytes of an endless body (closed %v), want %d", endless.read, endless.closed, DrainLimit)
	}
	short := &countingBody{r: strings.NewReader("rest of an error page")}
	Drain(short)
	if !short.closed || short.read != len("rest of an error page") {
		t.Fatalf("short body: read %d, closed %v", short.read, short.closed)
	}
	broken := &countingBody{r: errReader{}}
	Drain(broken) // no panic, still closed
	if !broken.closed {
		t.Fatal("a body that fails to read was not closed")
	}
}

type infinite struct{}

func (infinite) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("reset") }
