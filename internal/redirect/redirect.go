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
	"time"
)

// NoFollow returns a copy of hc that never follows a redirect: Do returns the
// 3xx response itself. A nil hc is a new client with the given timeout. The
// caller's client is not modified (it may be shared).
func NoFollow(hc *http.Client, timeout time.Duration) *http.Client {
	var c http.Client
	if hc != nil {
		c = *hc
	} else {
		c.Timeout = timeout
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// Is reports whether code is a redirection (3xx).
func Is(code int) bool { return code >= 300 && code <= 399 }

// Host returns the host (with port, if any) that resp's Location names,
// resolved against the request's URL, so that a relative Location names the
// server that sent it. "" when there is no Location; "an unparseable
// Location" when it does not parse.
func Host(resp *http.Response) string {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return ""
	}
	u, err := resp.Location()
	if err != nil || u.Host == "" {
		return "an unparseable Location"
	}
	return u.Host
}

// Describe renders a 3xx answer for an error: its status and where it
// pointed, e.g. `307 Temporary Redirect to host evil.example:8443 (redirects
// are not followed)`.
func Describe(resp *http.Response) string {
	return describe(resp.StatusCode, Host(resp))
}

// DescribeStatus is Describe for a status and a host already taken from the
// answer.
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
