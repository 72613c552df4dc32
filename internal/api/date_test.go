package api

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// The client reports the Date of a listing answer, read strictly with
// http.ParseTime (the three formats RFC 9110 lets a recipient accept), and
// an answer without one, with another format or with two as unknown.
func TestDateOfAnswer(t *testing.T) {
	want := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		header []string
		ok     bool
	}{
		{"imf-fixdate", []string{"Thu, 26 Nov 2026 03:00:00 GMT"}, true},
		{"rfc850", []string{"Thursday, 26-Nov-26 03:00:00 GMT"}, true},
		{"asctime", []string{"Thu Nov 26 03:00:00 2026"}, true},
		{"absent", nil, false},
		{"garbage", []string{"yesterday"}, false},
		{"rfc3339", []string{"2026-11-26T03:00:00Z"}, false},
		{"two", []string{"Thu, 26 Nov 2026 03:00:00 GMT", "Thu, 26 Nov 2026 04:00:00 GMT"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ft := newFakeTenant(t, func(w http.ResponseWriter, r *http.Request) {
				// nil keeps net/http from stamping its own Date.
				w.Header()["Date"] = tc.header
				writeJSON(w, http.StatusOK, "[]")
			})
			c, _ := newTestClient(t, ft.srv.URL, nil)
			var dates []time.Time
			var oks []bool
			ctx := WithDate(context.Background(), func(d time.Time, ok bool) { dates, oks = append(dates, d), append(oks, ok) })
			if _, err := c.ListTokens(ctx, ListOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.ListOAuthClients(ctx, ""); err != nil {
				t.Fatal(err)
			}
			// The access token's fetch (x/oauth2's) reports nothing.
			if len(oks) != 2 || oks[0] != tc.ok || oks[1] != tc.ok {
				t.Fatalf("reported %v %v, want two answers, ok %v", dates, oks, tc.ok)
			}
			if tc.ok && (!dates[0].Equal(want) || !dates[1].Equal(want)) {
				t.Errorf("dates %v, want %v", dates, want)
			}
		})
	}
}
