package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/patjanitor/patjanitor/internal/secret"
)

// Reason classifies a failed delivery. The set is fixed so it can be a metric
// label and so dashboards can rely on it.
type Reason string

// The reasons.
const (
	ReasonClientError Reason = "client_error" // other 4xx: the request is wrong; permanent
	ReasonAuth        Reason = "auth_error"   // 401/403, SMTP 530/535: bad credentials; permanent
	ReasonRateLimited Reason = "rate_limited" // 429: retried, honouring Retry-After
	ReasonServerError Reason = "server_error" // 5xx, SMTP 4xx: retried
	ReasonConnection  Reason = "connection"   // transport errors: retried
	ReasonRejected    Reason = "rejected"     // Slack 200 with an error body, SMTP 5xx: permanent
	ReasonTLS         Reason = "tls"          // no STARTTLS where required, bad certificate: permanent
	ReasonConfig      Reason = "config"       // no recipient, unknown receiver, bad message: permanent
	ReasonTemplate    Reason = "template"     // rendering failed: permanent
	ReasonCanceled    Reason = "canceled"     // the run's context ended: retried on the next run
	ReasonExpired     Reason = "expired"      // waited in the outbox longer than allowed: dropped
)

// Error is a failed delivery. Its text names the receiver and never contains
// a secret: URLs are removed from net/http errors and every secret value the
// notifier knows is replaced with secret.Redacted.
type Error struct {
	Receiver   string
	Reason     Reason
	StatusCode int           // HTTP status, or SMTP reply code; 0 if none
	Retryable  bool          // the same message may succeed later
	RetryAfter time.Duration // a server's Retry-After, if it sent one
	msg        string
	err        error
}

func (e *Error) Error() string {
	return fmt.Sprintf("notify receiver %q: %s", e.Receiver, e.msg)
}

// Unwrap returns the underlying error, with any *url.Error (which quotes the
// secret request URL) already peeled off.
func (e *Error) Unwrap() error { return e.err }

// ReasonOf returns the Reason of err's *Error, or "" if it has none.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// ClassifyStatus maps an HTTP status to (retry, reason). 2xx is success and
// returns ("", false). 429 and 5xx are retried, unlike Alertmanager's default,
// because both mean "not now"; any other status is permanent.
func ClassifyStatus(code int) (retry bool, reason Reason) {
	switch {
	case code >= 200 && code < 300:
		return false, ""
	case code == http.StatusTooManyRequests:
		return true, ReasonRateLimited
	case code >= 500:
		return true, ReasonServerError
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return false, ReasonAuth
	default:
		return false, ReasonClientError
	}
}

// redactor replaces known secret values in text, in every form they take on
// the wire (secret.Redactor). Notifiers hold one with every secret Build
// loaded, so even a secret echoed back by a server (an SMTP 535 quoting the
// AUTH PLAIN line, a webhook quoting its URL-encoded query) or put in a
// message by mistake is caught before it reaches a log or a payload.
type redactor struct{ r *secret.Redactor }

func newRedactor(secrets ...secret.Secret) *redactor {
	all := make([]secret.Secret, 0, 2*len(secrets))
	for _, s := range secrets {
		all = append(all, s)
		all = append(all, urlParts(s)...)
	}
	return &redactor{r: secret.NewRedactor(all...)}
}

// urlParts are the secret parts of a webhook URL, to be caught on their own:
// the path and query (hooks.slack.com/services/T…/B…/X…), the last path
// segment (Slack's token) and each query value (?token=…), the last two
// decoded, as a server that echoes them may have decoded them first. The
// redactor derives the encoded forms. Nothing for a value that is not a URL.
func urlParts(s secret.Secret) []secret.Secret {
	u, err := url.Parse(s.Reveal())
	if err != nil || u.Host == "" {
		return nil
	}
	parts := []string{u.RequestURI(), u.EscapedPath(), u.RawQuery}
	if i := strings.LastIndexByte(u.Path, '/'); i >= 0 {
		parts = append(parts, u.Path[i+1:])
	}
	for _, vs := range u.Query() {
		parts = append(parts, vs...)
	}
	out := make([]secret.Secret, 0, len(parts))
	for _, p := range parts {
		out = append(out, secret.New(p))
	}
	return out
}

func (r *redactor) scrub(s string) string {
	if r == nil {
		return s
	}
	return r.r.Redact(s)
}

// message returns m, or a copy of it with every string scrubbed when one
// holds a secret. It is for rendering: the channels escape what they show
// (html/template writes + as &#43;, Slack's mrkdwn swaps _ and * for
// look-alikes), and a secret escaped is a form the scrub of the rendered
// text no longer finds, while a reader still sees it. The message itself
// (the outbox's data, its ids) is left alone.
func (r *redactor) message(m *Message) *Message {
	if r == nil {
		return m
	}
	return mapStrings(m, r.scrub)
}

func (r *redactor) scrubBytes(b []byte) []byte {
	if r == nil {
		return b
	}
	return r.r.RedactBytes(b)
}

// newError builds an *Error. cause may be nil.
func (r *redactor) newError(receiver string, reason Reason, retry bool, status int, cause error, format string, args ...any) *Error {
	cause = stripURL(cause)
	msg := fmt.Sprintf(format, args...)
	if cause != nil {
		msg += ": " + cause.Error()
	}
	return &Error{Receiver: receiver, Reason: reason, Retryable: retry, StatusCode: status, msg: r.scrub(msg), err: cause}
}

// stripURL replaces a *url.Error, whose text is `Post "<url>": <cause>`, with
// its cause: the URL of a webhook is a credential (Alertmanager's RedactURL).
func stripURL(err error) error {
	var ue *url.Error
	if err != nil && errors.As(err, &ue) {
		return fmt.Errorf("%s request: %w", strings.ToUpper(ue.Op), ue.Err)
	}
	return err
}

// transportError classifies an error from http.Client.Do.
func (r *redactor) transportError(ctx context.Context, receiver string, err error) *Error {
	if ctx.Err() != nil {
		return r.newError(receiver, ReasonCanceled, true, 0, context.Cause(ctx), "request canceled")
	}
	return r.newError(receiver, ReasonConnection, true, 0, err, "send")
}
