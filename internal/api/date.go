package api

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// DateFunc receives the Date header (RFC 9110, section 6.6.1) of a
// successful answer as soon as its headers arrive, before the body is read:
// date is the tenant's clock when it answered, and ok is false when the
// header was absent or not an HTTP date (a proxy may strip it). A call whose
// attempts are retried reports each successful answer; the last one is the
// answer the call returns. An answer with several Date fields reports each
// one: a proxy that adds a Date of its own (or a garbled one) beside a stored
// answer's must not make the answer read as one without a Date, which the
// caller lets pass unchecked.
type DateFunc func(date time.Time, ok bool)

type dateKey struct{}

// WithDate returns a context under which every call reports the Date of
// its successful answers to f. The caller reads its own clock inside f: the
// moment the headers arrived is the moment to compare the tenant's Date
// with, not the end of a listing whose body takes seconds to read. (A hook
// carried by the context, as net/http/httptrace does, so that the listing
// methods and the interfaces that declare them keep their signatures.)
func WithDate(ctx context.Context, f DateFunc) context.Context {
	return context.WithValue(ctx, dateKey{}, f)
}

// reportDate hands h's Date to the DateFunc of ctx, if any, read by
// parseDate.
func reportDate(ctx context.Context, h http.Header) {
	f, _ := ctx.Value(dateKey{}).(DateFunc)
	if f == nil {
		return
	}
	v := h.Values("Date")
	if len(v) == 0 {
		f(time.Time{}, false)
		return
	}
	for _, d := range v {
		t, err := parseDate(d)
		f(t, err == nil)
	}
}

// parseDate reads an HTTP date with http.ParseTime, which is strict: only
// the three formats RFC 9110 allows a recipient to accept. Those allow a
// leap second (23:59:60), which time.Parse rejects: read as the second
// after 23:59:59, or the answer would read as one without a Date, and a run
// whose other answers have one would be refused as mixed.
func parseDate(v string) (time.Time, error) {
	t, err := http.ParseTime(v)
	if err != nil && strings.Contains(v, ":60 ") {
		if t, lerr := http.ParseTime(strings.Replace(v, ":60 ", ":59 ", 1)); lerr == nil {
			return t.Add(time.Second), nil
		}
	}
	return t, err
}
