package idnsim

import (
	"net/http"
	"testing"
	"time"
)

// Every answer carries the Date of the simulator's clock, as a real tenant
// stamps its own: patjanitor compares it with its clock, and a test that
// moves the tenant's clock moves its Date (net/http would stamp the wall
// clock).
func TestDateFromTheSimulatorsClock(t *testing.T) {
	e := newEnv(t, Options{})
	bearer := e.admin()
	e.clock.Set(t0.Add(40*24*time.Hour + 1500*time.Millisecond))
	for _, r := range []resp{
		e.do(http.MethodGet, "/v3/personal-access-tokens", bearer, "", ""),
		e.do(http.MethodGet, "/v3/no-such-endpoint", bearer, "", ""),
	} {
		got, err := http.ParseTime(r.header.Get("Date"))
		if want := t0.Add(40*24*time.Hour + time.Second); err != nil || !got.Equal(want) {
			t.Errorf("status %d: Date %q (%v), want %v", r.status, r.header.Get("Date"), err, want)
		}
	}
}
