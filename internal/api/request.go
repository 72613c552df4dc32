package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/patjanitor/patjanitor/internal/httpx"
	"github.com/patjanitor/patjanitor/internal/redirect"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// call describes one API operation for do.
type call struct {
	op          string
	method      string
	path        string // escaped, relative to the tenant base
	query       url.Values
	body        []byte
	contentType string
	// replayable: sending the request again after it may have reached the
	// tenant does no harm (GET, DELETE, a PATCH of replace ops). A create is
	// not: a second POST could make a second token.
	replayable bool
	// want is the documented success status.
	want int
	// decode reads a success body (nil: the body is discarded). It runs once per
	// attempt and must only publish its result when it returns nil.
	decode func(io.Reader) error
}

// attemptResult is what one exchange came to.
type attemptResult struct {
	err    *Error
	reason string // a Reason* when another attempt may help, "" when final
	sent   bool   // the request may have reached the tenant
}

// do runs cl with authentication, rate limiting and retries.
//
// Retry rules: a 401 drops the access token and repeats the request once with a
// new one (not counted as an attempt); a second 401 is an authentication error
// naming the client id. 429 waits for Retry-After (seconds or an HTTP date), or
// backs off without one. 5xx other than 501, and connection failures, back off
// and repeat, unless the request is not replayable and may have reached the
// tenant. Everything is bounded by ctx and MaxAttempts.
func (c *Client) do(ctx context.Context, cl *call) error {
	refreshed := false
	ambiguous := false // an earlier attempt may have taken effect
	for attempt := 1; ; attempt++ {
		token, err := c.auth.get(ctx)
		if err != nil {
			return err
		}
		if err := c.waitTurn(ctx, cl.op); err != nil {
			return err
		}
		res := c.attempt(ctx, cl, token)
		if res.err == nil {
			return nil
		}
		e := res.err
		if ctx.Err() != nil {
			return e
		}
		if ambiguous && cl.method == http.MethodDelete && e.StatusCode == http.StatusNotFound {
			// An earlier attempt failed in a way that may have deleted the
			// token (a 5xx, or a connection that broke after the request went
			// out); the 404 says it is gone, most likely by our own hand.
			return nil
		}
		switch res.reason {
		case "":
			return e
		case ReasonUnauthorized:
			if refreshed {
				e.ClientID = c.clientID
				return e
			}
			refreshed = true
			c.obs.ObserveRetry(cl.op, ReasonUnauthorized)
			if err := c.auth.invalidate(ctx, token); err != nil {
				return err
			}
			attempt--
			continue
		case ReasonServerError, ReasonConnection:
			if res.sent {
				if !cl.replayable {
					return fmt.Errorf("%w (not retried: the request may have taken effect; check before repeating it)", e)
				}
				ambiguous = true
			}
		}
		if attempt >= c.maxAttempts {
			return fmt.Errorf("%w after %d attempts: %w", ErrRetriesExhausted, attempt, e)
		}
		c.obs.ObserveRetry(cl.op, res.reason)
		if err := c.pause(ctx, attempt, e); err != nil {
			return err
		}
	}
}

// retryableStatus: 5xx except 501 Not Implemented, which no retry will change.
func retryableStatus(code int) bool {
	return code >= 500 && code <= 599 && code != http.StatusNotImplemented
}

// attempt performs one exchange.
func (c *Client) attempt(ctx context.Context, cl *call, token string) attemptResult {
	e := &Error{Operation: cl.op, Method: cl.method, Path: cl.path}
	u := c.base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	// wrote tells an ambiguous connection failure (the request, or part of it,
	// went out) from one where nothing reached the tenant (a refused dial).
	var wrote atomic.Bool
	tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteHeaders: func() { wrote.Store(true) },
	})
	req, err := http.NewRequestWithContext(tctx, cl.method, u, body)
	if err != nil {
		e.Err = err
		return attemptResult{err: e}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if cl.contentType != "" {
		req.Header.Set("Content-Type", cl.contentType)
	}

	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.obs.ObserveRequest(cl.op, 0, time.Since(start))
		e.Err = err
		if hostNotFound(err) {
			// No retry will make the name resolve; fail now.
			return attemptResult{err: e}
		}
		return attemptResult{err: e, reason: ReasonConnection, sent: wrote.Load()}
	}
	defer httpx.Drain(resp.Body) // read to the end (bounded), so the connection can be reused
	e.StatusCode = resp.StatusCode

	if redirect.Is(resp.StatusCode) {
		// The client does not follow redirects (see package redirect). The
		// body is not quoted: it typically repeats the Location, path and
		// query included.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		c.obs.ObserveRequest(cl.op, resp.StatusCode, time.Since(start))
		e.Location = redirect.Host(resp)
		return attemptResult{err: e, sent: true}
	}

	if success(cl, resp.StatusCode) {
		reportDate(ctx, resp.Header)
		rt := &readTracker{r: resp.Body, size: resp.ContentLength}
		var derr error
		if cl.decode != nil {
			derr = cl.decode(rt)
		}
		c.obs.ObserveRequest(cl.op, resp.StatusCode, time.Since(start))
		if derr == nil {
			return attemptResult{}
		}
		e.Err = derr
		// What a success body holds is quoted by its decode error and by
		// a PATCH answer that does not confirm the change: it may echo the
		// access token like an error body. (The checks below use derr,
		// whose types redaction may drop from e.Err.)
		e.redact(c.answerRedactors(token)...)
		if errors.As(derr, new(*sinkError)) {
			// The consumer of a streamed listing refused it: final.
			return attemptResult{err: e}
		}
		var ue *unconfirmedError
		if errors.As(derr, &ue) {
			// A complete answer that contradicts the request: final.
			e.unconfirmed = true
			return attemptResult{err: e}
		}
		if rt.err != nil {
			// The connection broke mid-body: the listing is incomplete, and
			// asking again (for a replayable request) is the cure.
			return attemptResult{err: e, reason: ReasonConnection, sent: true}
		}
		// A body over a size limit is not malformed, and asking again
		// would get the same body.
		e.malformed = !errors.As(derr, new(*LimitError))
		return attemptResult{err: e}
	}

	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	c.obs.ObserveRequest(cl.op, resp.StatusCode, time.Since(start))
	// An error body may echo the request: the access token, in any form.
	// Scrubbed as it is read, before a long message is clipped.
	red := c.answerRedactors(token)
	e.fillFromBody(data, red...)
	e.redact(red...)
	if d, ok := httpx.ParseRetryAfter(resp.Header.Get("Retry-After"), c.now()); ok {
		e.RetryAfter, e.hasRetryAfter = d, true
	}
	res := attemptResult{err: e, sent: true}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		res.reason = ReasonUnauthorized
	case resp.StatusCode == http.StatusTooManyRequests:
		res.reason = ReasonRateLimited
		res.sent = false // refused at the gateway: nothing happened
	case retryableStatus(resp.StatusCode):
		res.reason = ReasonServerError
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		e.Messages = append(e.Messages, fmt.Sprintf("unexpected success status (the API documents %d)", cl.want))
	}
	return res
}

// answerRedactors are what an API answer quoted in an error is scrubbed
// of: the access token of the request, the client secret, and the access
// tokens issued lately, which a listing is scrubbed of too (scrub.go). A
// tenant or a proxy that answered 401 to make the client fetch a new token
// can echo the one before, which may still be valid.
func (c *Client) answerRedactors(token string) []*secret.Redactor {
	return []*secret.Redactor{secret.NewRedactor(secret.New(token)), c.auth.redact, c.listedRedactor()}
}

// hostNotFound reports a DNS answer that the name does not exist.
func hostNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// success: the documented status only. Another 2xx is not taken for it: a
// proxy or sign-in page that answers 200 with HTML has not deleted anything,
// and recording it as applied would put a deletion that did not happen into
// the journal. It is an error with its real status; the next run's listing
// shows what the tenant did.
func success(cl *call, code int) bool {
	return code == cl.want
}

// readTracker remembers a read failure of the underlying body, to tell a
// connection that broke mid-body from a body that is complete but malformed
// (both reach the JSON decoder as an unexpected EOF or syntax error).
type readTracker struct {
	r    io.Reader
	err  error
	size int64 // the body's Content-Length; -1 when unknown
}

func (t *readTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && t.err == nil {
		t.err = err
	}
	return n, err
}
