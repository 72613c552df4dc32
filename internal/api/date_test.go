package api

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// The client reports the Date of a listing answer, read strictly with
// http.ParseTime (the three formats RFC 9110 lets a recipient accept), and
// an answer without one or with another format as unknown, and each Date of
// an answer with two (a proxy's beside a stored answer's).
func TestDateOfAnswer(t *testing.T) {
	want := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		header []string
		ok     []bool // what one answer reports
	}{
		{"imf-fixdate", []string{"Thu, 26 Nov 2026 03:00:00 GMT"}, []bool{true}},
		{"rfc850", []string{"Thursday, 26-Nov-26 03:00:00 GMT"}, []bool{true}},
		{"asctime", []string{"Thu Nov 26 03:00:00 2026"}, []bool{true}},
		{"leap second", []string{"Thu, 26 Nov 2026 02:59:60 GMT"}, []bool{true}},
		{"leap second, asctime", []string{"Thu Nov 26 02:59:60 2026"}, []bool{true}},
		{"second 61", []string{"Thu, 26 Nov 2026 02:59:61 GMT"}, []bool{false}},
		{"absent", nil, []bool{false}},
		{"garbage", []string{"yesterday"}, []bool{false}},
		{"rfc3339", []string{"2026-11-26T03:00:00Z"}, []bool{false}},
		{"two", []string{"Thu, 26 Nov 2026 03:00:00 GMT", "Thu, 26 Nov 2026 03:00:00 GMT"}, []bool{true, true}},
		{"two, one garbled", []string{"Thu, 26 Nov 2026 03:00:00 GMT", "now"}, []bool{true, false}},
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
			if want := append(slices.Clone(tc.ok), tc.ok...); !slices.Equal(oks, want) {
				t.Fatalf("reported %v %v, want ok %v (two answers)", dates, oks, want)
			}
			for i, ok := range oks {
				if ok && !dates[i].Equal(want) {
					t.Errorf("dates %v, want %v", dates, want)
				}
			}
		})
	}
}

// parseDate accepts what http.ParseTime accepts, unchanged, and besides
// only a leap second of those formats, as the second after.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"Thu, 26 Nov 2026 03:00:00 GMT", "Thu, 31 Dec 2026 23:59:60 GMT", "Thu Nov 26 02:59:60 2026", "Thursday, 26-Nov-26 02:59:60 GMT", ":60 ", "yesterday"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := parseDate(v)
		want, werr := http.ParseTime(v)
		switch {
		case werr == nil:
			if err != nil || !got.Equal(want) {
				t.Fatalf("parseDate(%q) = %v, %v; http.ParseTime %v", v, got, err, want)
			}
		case err == nil:
			prev, perr := http.ParseTime(strings.Replace(v, ":60 ", ":59 ", 1))
			if perr != nil || !got.Equal(prev.Add(time.Second)) {
				t.Fatalf("parseDate(%q) = %v, not a leap second read as the next", v, got)
			}
		}
	})
}
