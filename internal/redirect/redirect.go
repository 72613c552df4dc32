// Package redirect keeps patjanitor's HTTP clients from following redirects.
//
// net/http follows 3xx answers by default: it re-sends a DELETE or a PATCH (307,
// 308) to wherever the Location points, turns a DELETE answered 302 into a GET
// whose 2xx then reads as success, re-posts a form holding a client secret to
// another scheme and host, and forwards the Authorization header to another
// port of the same host. None of the APIs patjanitor talks to redirects a
// request it sends, so a 3xx is always an error: the answer is returned as it
// is, and its Location is reported by host only (a path or query can hold a
// token id or a credential).
package redirect

import (
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// NoFollow returns a copy of hc that never follows a redirect: Do returns the
// 3xx response itself. A nil hc is a new client with the given timeout. The
// caller's client is not modified (it may be shared).
//
// CheckRedirect alone is not enough: net/http parses the Location before it
// asks CheckRedirect, and a Location that does not parse becomes an error
// quoting it whole, path and query included. So the transport also moves a
// 3xx's Location out of net/http's sight (Host reads it back).
func NoFollow(hc *http.Client, timeout time.Duration) *http.Client {
	var c http.Client
	if hc != nil {
		c = *hc
	} else {
		c.Timeout = timeout
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport // what a nil Transport means to http.Client
	}
	c.Transport = hideLocation{base}
	return &c
}

// locationHeader holds a 3xx's Location once hideLocation has moved it.
const locationHeader = "X-Patjanitor-Redirect-Location"

type hideLocation struct{ base http.RoundTripper }

func (h hideLocation) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := h.base.RoundTrip(r)
	if resp != nil && Is(resp.StatusCode) {
		if loc := resp.Header.Values("Location"); len(loc) > 0 {
			resp.Header[locationHeader] = loc
			resp.Header.Del("Location")
		}
	}
	return resp, err
}

// Is reports whether code is a redirection (3xx).
func Is(code int) bool { return code >= 300 && code <= 399 }

// Host returns the host (with port, if any) that resp's Location names,
// resolved against the request's URL, so that a relative Location names the
// server that sent it. "" when there is no Location; "an unparseable
// Location" when it does not parse.
func Host(resp *http.Response) string {
	loc := resp.Header.Get(locationHeader)
	if loc == "" {
		loc = resp.Header.Get("Location")
	}
	if loc == "" {
		return ""
	}
	u, err := url.Parse(loc)
	if err == nil && resp.Request != nil && resp.Request.URL != nil {
		u, err = resp.Request.URL.Parse(loc)
	}
	if err != nil || u.Host == "" {
		return "an unparseable Location"
	}
	return u.Host
}

// DescribeStatus renders a 3xx answer for an error: its status and the host
// its Location pointed to (taken from the answer with Host), e.g. `307
// Temporary Redirect to host evil.example:8443 (redirects are not followed)`.
func DescribeStatus(code int, host string) string { return describe(code, host) }

func describe(code int, host string) string {
	s := fmt.Sprintf("%d %s", code, http.StatusText(code))
	switch host {
	case "":
		s += " without a Location"
	case "an unparseable Location":
		s += " to " + host
	default:
		s += " to host " + host
	}
	return s + " (redirects are not followed)"
}
