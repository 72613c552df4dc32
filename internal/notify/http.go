package notify

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/patjanitor/patjanitor/internal/buildinfo"
	"github.com/patjanitor/patjanitor/internal/httpx"
	"github.com/patjanitor/patjanitor/internal/redirect"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// maxErrorBody is how much of a response body goes into an error: enough for
// Slack's "invalid_blocks" or a JSON error, not a whole HTML error page.
const maxErrorBody = 256

// httpResponse is what postJSON returns on a completed exchange.
type httpResponse struct {
	status     int
	body       []byte // at most maxErrorBody+1 bytes
	retryAfter time.Duration
	location   string // a 3xx's Location host (never its path or query)
}

// postJSON sends body to the secret URL and reads a bounded part of the
// answer. The rest of the body is drained (bounded) so the connection can be
// reused, as Alertmanager's Drain does. A transport error comes back
// classified and with the URL removed.
func (r *redactor) postJSON(ctx context.Context, client *http.Client, receiver string, u secret.Secret, body []byte, header http.Header, now time.Time) (httpResponse, *Error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.Reveal(), bytes.NewReader(body))
	if err != nil {
		// NewRequest errors quote the URL too.
		return httpResponse{}, r.newError(receiver, ReasonConfig, false, 0, nil, "build request: invalid URL or method")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "patjanitor/"+buildinfo.Version)
	resp, err := client.Do(req)
	if err != nil {
		return httpResponse{}, r.transportError(ctx, receiver, err)
	}
	defer httpx.Drain(resp.Body)
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+1))
	if err != nil {
		return httpResponse{}, r.transportError(ctx, receiver, fmt.Errorf("read response: %w", err))
	}
	ra, _ := httpx.ParseRetryAfter(resp.Header.Get("Retry-After"), now)
	out := httpResponse{status: resp.StatusCode, body: b, retryAfter: ra}
	if redirect.Is(resp.StatusCode) {
		out.location = redirect.Host(resp)
	}
	return out, nil
}

// statusError classifies a non-2xx answer, quoting a bounded, scrubbed part
// of its body.
func (r *redactor) statusError(receiver string, resp httpResponse) *Error {
	retry, reason := ClassifyStatus(resp.status)
	if redirect.Is(resp.status) {
		// Not followed (Build's client), not retried, and the body, which
		// usually repeats the Location, not quoted.
		return r.newError(receiver, reason, retry, resp.status, nil, "HTTP %s", redirect.DescribeStatus(resp.status, resp.location))
	}
	e := r.newError(receiver, reason, retry, resp.status, nil, "HTTP %d: %s", resp.status, bodySnippet(resp.body))
	e.RetryAfter = resp.retryAfter
	return e
}

func bodySnippet(b []byte) string {
	if len(b) > maxErrorBody {
		return fmt.Sprintf("%q…", b[:maxErrorBody])
	}
	return fmt.Sprintf("%q", b)
}
