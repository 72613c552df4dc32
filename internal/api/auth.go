package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/patjanitor/patjanitor/internal/httpx"
	"github.com/patjanitor/patjanitor/internal/redirect"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// tokenCache holds the current access token and fetches a new one when it is
// missing, about to expire, or was refused by the API.
//
// It does not use oauth2.ReuseTokenSource: that one judges expiry with the wall
// clock inside the oauth2 package, which tests cannot move, and it cannot be told
// to drop a token that the API has just refused. The fetch itself is
// clientcredentials.Config.Token (credentials in the form body).
type tokenCache struct {
	conf   clientcredentials.Config
	client *Client
	// redact removes the client secret, in every form it takes on the wire,
	// from what an error quotes of the token endpoint's answer: an endpoint
	// may echo the request (client_secret=abc%2Bdef%2F…).
	redact *secret.Redactor
	// secrets are the credentials the tenant sees besides the access tokens
	// (the client secret); listed redacts them and the access tokens issued
	// lately from what the tenant lists (scrub.go). It is rebuilt with each
	// new access token.
	secrets []secret.Secret
	issued  []secret.Secret // the last recentTokens access tokens, newest last
	listed  atomic.Pointer[secret.Redactor]

	// sem serialises fetches (one in flight; the others wait for its result)
	// while letting a waiter give up when its context ends, which a mutex held
	// across an HTTP exchange would not.
	sem     chan struct{}
	token   string
	refresh time.Time // when to fetch a new token; zero = only when refused
	// discover: the token URL was not configured, and a 404 from it may be
	// answered by looking it up once in /oauth/info (discovery.go).
	discover bool
}

// get returns a usable access token, fetching one if needed.
func (tc *tokenCache) get(ctx context.Context) (string, error) {
	select {
	case tc.sem <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-tc.sem }()
	if tc.token != "" && (tc.refresh.IsZero() || tc.client.now().Before(tc.refresh)) {
		return tc.token, nil
	}
	tok, refresh, err := tc.fetch(ctx)
	if err != nil {
		return "", err
	}
	tc.token, tc.refresh = tok, refresh
	tc.issued = append(tc.issued, secret.New(tok))
	if len(tc.issued) > recentTokens {
		tc.issued = tc.issued[len(tc.issued)-recentTokens:]
	}
	tc.listed.Store(secret.NewRedactor(append(slices.Clone(tc.secrets), tc.issued...)...))
	return tok, nil
}

// recentTokens is how many of the access tokens issued last are scrubbed
// from listings: the one in use and the few before it, which a tenant (or a
// proxy) that saw them could still echo. Older ones expired long ago (an
// access token lives about 12 minutes), and a serve that runs for months
// must not search every listed string for thousands of them.
const recentTokens = 4

// invalidate drops token if it is still the cached one (another goroutine may
// already have replaced it after the same 401).
func (tc *tokenCache) invalidate(ctx context.Context, token string) error {
	select {
	case tc.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-tc.sem }()
	if tc.token == token {
		tc.token, tc.refresh = "", time.Time{}
	}
	return nil
}

// fetch gets a new access token, retrying 429, 5xx and connection failures like
// any idempotent request. It returns the token and when to replace it: ahead of
// its expiry by a minute (as the docs advise), or by a quarter of its lifetime
// when that is shorter, so that a 15-second token is not refetched on every call.
func (tc *tokenCache) fetch(ctx context.Context) (string, time.Time, error) {
	c := tc.client
	for attempt := 1; ; attempt++ {
		var body bodyWatch
		hctx := context.WithValue(ctx, oauth2.HTTPClient, body.client(c.http))
		issued := c.now()
		start := time.Now()
		tok, err := tc.conf.Token(hctx)
		took := time.Since(start)
		if err == nil {
			c.obs.ObserveRequest(OpOAuthToken, http.StatusOK, took)
			if !httpguts.ValidHeaderFieldValue(tok.AccessToken) {
				// No Authorization header can carry it: every request
				// would fail in the transport, which reads as a
				// connection failure and was retried to exhaustion.
				// Asking again would get the same; the token itself is
				// never quoted.
				return "", time.Time{}, &Error{Operation: OpOAuthToken, Method: http.MethodPost, Path: tc.tokenURLPath(),
					ClientID: c.clientID, StatusCode: http.StatusOK, malformed: true,
					Messages: []string{"the access token holds a control character (CR or LF, or another one no HTTP header may carry): a hostile or broken token endpoint; not retried"}}
			}
			var refresh time.Time
			if life := expiresIn(tok); life > 0 {
				refresh = issued.Add(life - min(tokenRefreshLeadTime, life/4))
			}
			return tok.AccessToken, refresh, nil
		}
		if ctx.Err() != nil {
			c.obs.ObserveRequest(OpOAuthToken, 0, took)
			return "", time.Time{}, ctx.Err()
		}
		e, reason := tc.classify(err, body.err)
		c.obs.ObserveRequest(OpOAuthToken, e.StatusCode, took)
		if e.StatusCode == http.StatusNotFound && tc.discover {
			found, derr := tc.discoverTokenURL(ctx)
			if derr != nil {
				// Only this fetch fails: the client outlives a run (serve
				// keeps it per config generation), so the next fetch looks
				// again rather than meeting the same 404 until a restart.
				return "", time.Time{}, derr
			}
			tc.discover = false // once found: a 404 from the found endpoint is an error
			tc.conf.TokenURL = found
			attempt--
			continue
		}
		if reason == "" {
			return "", time.Time{}, e
		}
		if attempt >= c.maxAttempts {
			return "", time.Time{}, fmt.Errorf("%w after %d attempts: %w", ErrRetriesExhausted, attempt, e)
		}
		c.obs.ObserveRetry(OpOAuthToken, reason)
		if err := c.pause(ctx, attempt, e); err != nil {
			return "", time.Time{}, err
		}
	}
}

// classify turns a token-endpoint failure into an *Error naming the client id,
// and says whether it is worth another attempt. It goes by the error's type:
// oauth2's *RetrieveError is an answer (its status decides), a *url.Error is
// the transport's, and bodyErr is a failure to read the answer's body, which
// oauth2 reports only as text ("cannot fetch token: %v").
func (tc *tokenCache) classify(err, bodyErr error) (*Error, string) {
	c := tc.client
	e := &Error{Operation: OpOAuthToken, Method: http.MethodPost, Path: tc.tokenURLPath(), ClientID: c.clientID}
	defer e.redact(tc.redact)
	var re *oauth2.RetrieveError
	var ue *url.Error
	switch {
	case bodyErr != nil:
		// The connection broke while the answer was read: a connection
		// failure like any other.
		e.Err = bodyErr
		return e, ReasonConnection
	case errors.As(err, &re):
		if re.Response != nil {
			e.StatusCode = re.Response.StatusCode
			if redirect.Is(e.StatusCode) {
				// Not followed (the client's CheckRedirect), never retried,
				// and the body, which may repeat the Location, not quoted.
				e.Location = redirect.Host(re.Response)
				return e, ""
			}
			e.RetryAfter, e.hasRetryAfter = httpx.ParseRetryAfter(re.Response.Header.Get("Retry-After"), c.now())
		}
		if re.ErrorCode != "" {
			msg := re.ErrorCode
			if re.ErrorDescription != "" {
				msg += ": " + re.ErrorDescription
			}
			// Scrubbed before it is clipped (see fillFromBody); the
			// deferred redact cannot find a secret the clip cut short.
			e.Messages = []string{clip(tc.redact.Redact(msg))}
		} else {
			e.fillFromBody(re.Body, tc.redact)
		}
		if e.StatusCode >= 200 && e.StatusCode < 300 {
			// A 2xx carrying an OAuth "error" member: a refusal all the same.
			e.StatusCode = http.StatusBadRequest
		}
	case errors.As(err, &ue):
		e.Err = err
		if hostNotFound(err) {
			return e, ""
		}
	default:
		// A 2xx without a usable token (not JSON, no access_token).
		e.StatusCode = http.StatusOK
		e.malformed = true
		e.Err = err
	}
	switch {
	case e.StatusCode == 0:
		return e, ReasonConnection
	case e.StatusCode == http.StatusTooManyRequests:
		return e, ReasonRateLimited
	case retryableStatus(e.StatusCode):
		return e, ReasonServerError
	}
	return e, ""
}

// bodyWatch notes a failure to read the token endpoint's answer. oauth2
// reads the body itself and reports such a failure with %v, which loses its
// type; the transport wrapper keeps it, so that classify can tell a broken
// connection from a malformed answer without matching error text.
type bodyWatch struct{ err error }

// client returns a copy of hc whose transport wraps answers' bodies.
func (w *bodyWatch) client(hc *http.Client) *http.Client {
	cp := *hc
	base := cp.Transport
	if base == nil {
		base = http.DefaultTransport // what a nil Transport means to http.Client
	}
	cp.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := base.RoundTrip(r)
		if resp != nil && resp.Body != nil {
			resp.Body = &watchedBody{ReadCloser: resp.Body, w: w}
		}
		return resp, err
	})
	return &cp
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type watchedBody struct {
	io.ReadCloser
	w *bodyWatch
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && b.w.err == nil {
		b.w.err = err
	}
	return n, err
}

// expiresIn reads the token response's expires_in. clientcredentials keeps it
// only among the raw fields (a float64 from JSON, an int64 or string from a form
// body).
func expiresIn(t *oauth2.Token) time.Duration {
	if t.ExpiresIn > 0 {
		return time.Duration(t.ExpiresIn) * time.Second
	}
	switch v := t.Extra("expires_in").(type) {
	case float64:
		return time.Duration(v * float64(time.Second))
	case int64:
		return time.Duration(v) * time.Second
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			return time.Duration(n) * time.Second
		}
	}
	return 0
}
