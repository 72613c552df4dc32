package daemon

import (
	"fmt"
	"testing"
	"time"
	"unsafe"
)

// withMonotonic returns wall's wall time carrying mono's monotonic clock
// reading: what time.Now returns after the wall clock was stepped (or the
// machine resumed), when wall and elapsed time no longer agree. No API makes
// such a time (Add moves both readings), hence the copy of the monotonic
// reading; checked (a panic), so that a change of time.Time's layout fails
// the tests rather than hide the case.
func withMonotonic(wall, mono time.Time) time.Time {
	// time.Time is {wall uint64; ext int64; loc *Location}; with a
	// monotonic reading, ext holds it.
	type layout struct {
		wall uint64
		ext  int64
	}
	u := mono.Add(wall.Sub(mono.Round(0)))
	(*layout)(unsafe.Pointer(&u)).ext = (*layout)(unsafe.Pointer(&mono)).ext
	if !u.Round(0).Equal(wall) || u.Sub(mono) != 0 || u.Round(0).Sub(mono.Round(0)) != wall.Sub(mono.Round(0)) {
		panic(fmt.Sprintf("could not make a time reading %s on the wall and %s's monotonic clock (got %s)", wall, mono, u))
	}
	return u
}

func TestWithMonotonic(t *testing.T) {
	mono := time.Now()
	wall := mono.Round(0).Add(-72 * time.Hour)
	u := withMonotonic(wall, mono.Add(time.Minute))
	// A minute elapsed, the wall clock went back three days: Sub of two
	// readings with monotonic clocks says a minute.
	if got := u.Sub(mono); got != time.Minute {
		t.Errorf("Sub = %s, want 1m0s (the monotonic clocks')", got)
	}
	if got := u.Round(0).Sub(mono.Round(0)); got != -72*time.Hour {
		t.Errorf("wall Sub = %s, want -72h", got)
	}
}
