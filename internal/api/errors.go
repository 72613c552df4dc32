package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/patjanitor/patjanitor/internal/redirect"
	"github.com/patjanitor/patjanitor/internal/secret"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// Sentinels for errors.Is. They match an *Error by what the tenant answered, so
// callers can write errors.Is(err, api.ErrNotFound) without caring whether the
// error was wrapped on its way up.
var (
	// ErrNotFound matches a 404: on DeleteToken it means the token is already gone.
	ErrNotFound = &sentinel{"not found"}
	// ErrUnauthorized matches an authentication failure: a 401 from the API that a
	// fresh access token did not cure, or the token endpoint refusing the client
	// credentials.
	ErrUnauthorized = &sentinel{"unauthorized"}
	// ErrForbidden matches a 403: the credential lacks the right or scope (PATCH of
	// another owner's token, for one).
	ErrForbidden = &sentinel{"forbidden"}
	// ErrRateLimited matches a 429 (returned when the retries ran out).
	ErrRateLimited = &sentinel{"rate limited"}
	// ErrMalformedResponse matches a success response whose body could not be
	// decoded completely: truncated, not JSON, or not the documented shape.
	ErrMalformedResponse = &sentinel{"malformed response"}
	// ErrRedirect matches a 3xx answer. No request is ever sent where a
	// redirect points (see package redirect); it is never retried.
	ErrRedirect = &sentinel{"redirect"}
	// ErrUnconfirmed matches a success answer that does not show the change
	// that was asked for: a PATCH answered 200 with another token, or with
	// values other than the ones sent. The change cannot be counted as made.
	ErrUnconfirmed = &sentinel{"answer does not confirm the change"}
	// ErrRetriesExhausted is wrapped (together with the last attempt's *Error) when
	// every attempt failed with a retryable status or a connection error.
	ErrRetriesExhausted = errors.New("retries exhausted")
)

// sentinel is the type of the status sentinels; only *Error.Is matches them.
type sentinel struct{ name string }

func (s *sentinel) Error() string { return "api: " + s.name }

// Error is the failure of one API operation. Every error the Client returns
// either is an *Error or wraps one (errors.As), apart from context cancellation
// and configuration mistakes caught before any request.
type Error struct {
	// Operation is one of the Op* constants (also the metrics label).
	Operation string
	// Method and Path are the request's, the path without the query (it may hold
	// a token id, never a credential).
	Method, Path string
	// StatusCode is the HTTP status; 0 when no response arrived (connection error).
	StatusCode int
	// DetailCode, TrackingID, Messages and Causes come from the tenant's
	// ErrorResponseDto; Messages also carries the 401 "error" and 429 "message"
	// texts, which have their own body shapes. Each is scrubbed of the
	// credentials and clipped to maxErrorText.
	DetailCode string
	TrackingID string
	Messages   []string
	Causes     []string
	// ClientID is set on authentication failures and on every token-endpoint
	// failure: the client id concerned (the secret is never part of an error).
	ClientID string
	// Location is the host a 3xx answer pointed to ("" if it had no
	// Location): the host only, as a path or query may hold a credential.
	Location string
	// RetryAfter is the wait a 429 or 503 asked for (0 if none).
	RetryAfter time.Duration
	// Err is the underlying cause: a transport error, or the decoding error of a
	// malformed body.
	Err error

	malformed     bool
	unconfirmed   bool // a success status whose body contradicts the request
	hasRetryAfter bool // RetryAfter came from the header (it may be 0: "now")
}

// Error renders the operation, request, status and what the tenant said.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Operation)
	if e.Method != "" {
		fmt.Fprintf(&b, ": %s %s", e.Method, e.Path)
	}
	switch {
	case redirect.Is(e.StatusCode):
		if e.ClientID != "" {
			fmt.Fprintf(&b, ": client id %q", e.ClientID)
		}
		b.WriteString(": " + redirect.DescribeStatus(e.StatusCode, e.Location))
	case e.unconfirmed:
		fmt.Fprintf(&b, ": %d answer does not confirm the change", e.StatusCode)
	case e.malformed:
		if e.ClientID != "" {
			fmt.Fprintf(&b, ": client id %q", e.ClientID)
		}
		fmt.Fprintf(&b, ": %d response with a malformed body", e.StatusCode)
	case e.isAuth():
		fmt.Fprintf(&b, ": authentication failed for client id %q", e.ClientID)
		if e.StatusCode != 0 {
			fmt.Fprintf(&b, " (%d %s)", e.StatusCode, http.StatusText(e.StatusCode))
		}
	case e.StatusCode == 0:
		if e.ClientID != "" {
			fmt.Fprintf(&b, ": client id %q", e.ClientID)
		}
		b.WriteString(": no response")
	default:
		if e.ClientID != "" {
			fmt.Fprintf(&b, ": client id %q", e.ClientID)
		}
		fmt.Fprintf(&b, ": %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	var ids []string
	if e.DetailCode != "" {
		ids = append(ids, fmt.Sprintf("detailCode %q", e.DetailCode))
	}
	if e.TrackingID != "" {
		// Quoted like the detailCode: what the tenant chose, escaped, so a
		// newline or an ESC in it cannot forge a log line or a terminal.
		ids = append(ids, fmt.Sprintf("trackingId %q", e.TrackingID))
	}
	if e.RetryAfter > 0 {
		ids = append(ids, "Retry-After "+e.RetryAfter.String())
	}
	if len(ids) > 0 {
		b.WriteString(" (" + strings.Join(ids, ", ") + ")")
	}
	if len(e.Messages) > 0 {
		b.WriteString(": " + strings.Join(e.Messages, "; "))
	}
	if len(e.Causes) > 0 {
		b.WriteString(" (causes: " + strings.Join(e.Causes, "; ") + ")")
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying transport or decoding error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the package's sentinels by status.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrUnauthorized:
		return e.isAuth()
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	case ErrMalformedResponse:
		return e.malformed
	case ErrRedirect:
		return redirect.Is(e.StatusCode)
	case ErrUnconfirmed:
		return e.unconfirmed
	}
	return false
}

// isAuth: a 401 anywhere, or the token endpoint refusing the credentials (RFC 6749
// says 400 invalid_client; tenants also answer 401).
func (e *Error) isAuth() bool {
	if e.malformed {
		return false
	}
	if e.StatusCode == http.StatusUnauthorized {
		return true
	}
	return e.Operation == OpOAuthToken && e.StatusCode >= 400 && e.StatusCode < 500 &&
		e.StatusCode != http.StatusTooManyRequests
}

// maxErrorBody bounds how much of an error response is read: the documented bodies
// are a few hundred bytes, and a misbehaving proxy must not make us buffer megabytes.
const maxErrorBody = 64 << 10

// maxErrorText bounds one message taken from an error body, so that an HTML error
// page from a proxy does not become a kilobyte-long log line.
const maxErrorText = 512

// errorBody is the union of the documented error shapes: ErrorResponseDto (400,
// 403, 404, 500), the 401 {"error": …} (a string in the spec's example, an object
// in the Go SDK's generated model) and the 429 {"message": …}.
type errorBody struct {
	DetailCode string            `json:"detailCode"`
	TrackingID string            `json:"trackingId"`
	Messages   []errorMessageDto `json:"messages"`
	Causes     []errorMessageDto `json:"causes"`
	Error      json.RawMessage   `json:"error"`
	Message    json.RawMessage   `json:"message"`
}

type errorMessageDto struct {
	Locale string `json:"locale"`
	Text   string `json:"text"`
}

// fillFromBody decodes what it can of an error body into e. Bodies that are not
// JSON (a proxy's HTML page) become one truncated message, so the operator still
// sees something. Each text is scrubbed of the redactors' secrets before it
// is clipped: clipped first, a secret that straddles the clip edge would be
// quoted all but its last characters, which no whole form of it matches.
// The detailCode and trackingId are such texts too: a hostile tenant or a
// proxy chooses their length like a message's.
func (e *Error) fillFromBody(body []byte, rs ...*secret.Redactor) {
	quote := func(s string) string { return clip(redactWith(s, rs)) }
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return
	}
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		e.Messages = append(e.Messages, quote(string(body)))
		return
	}
	e.DetailCode = quote(eb.DetailCode)
	e.TrackingID = quote(eb.TrackingID)
	for _, m := range eb.Messages {
		if m.Text != "" {
			e.Messages = append(e.Messages, quote(m.Text))
		}
	}
	for _, m := range eb.Causes {
		if m.Text != "" {
			e.Causes = append(e.Causes, quote(m.Text))
		}
	}
	if s := rawText(eb.Error); s != "" {
		e.Messages = append(e.Messages, quote(s))
	}
	if s := rawText(eb.Message); s != "" {
		e.Messages = append(e.Messages, quote(s))
	}
}

// rawText renders a field whose type the spec leaves open: a string as itself
// (trimmed: the 429 text is " Rate Limit Exceeded "), an object by its usual
// message members or else as compact JSON. The text is not clipped (the
// caller scrubs it first).
func rawText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	var obj map[string]any
	if json.Unmarshal(raw, &obj) == nil {
		for _, k := range []string{"message", "error_description", "text", "error"} {
			if v, ok := obj[k].(string); ok && strings.TrimSpace(v) != "" {
				return strings.TrimSpace(v)
			}
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) == nil {
		return buf.String()
	}
	return string(raw)
}

// redactWith returns s with the secrets of every redactor in rs replaced.
func redactWith(s string, rs []*secret.Redactor) string {
	for _, r := range rs {
		s = r.Redact(s) // a nil Redactor redacts nothing
	}
	return s
}

func clip(s string) string { return untrusted.Clip(s, maxErrorText) }

// redact removes every form of the redactors' secrets from what e quotes of
// an answer: a server may echo the request, credential included. An
// underlying error whose text changes is replaced by that text (its type is
// lost, which only matters for errors that quoted a secret).
func (e *Error) redact(rs ...*secret.Redactor) {
	for _, r := range rs {
		if r == nil {
			continue
		}
		for i := range e.Messages {
			e.Messages[i] = r.Redact(e.Messages[i])
		}
		for i := range e.Causes {
			e.Causes[i] = r.Redact(e.Causes[i])
		}
		e.DetailCode, e.TrackingID = r.Redact(e.DetailCode), r.Redact(e.TrackingID)
		if e.Err != nil {
			if msg := e.Err.Error(); r.Redact(msg) != msg {
				e.Err = errors.New(r.Redact(msg))
			}
		}
	}
}
