// Package notifytest is a webhook receiver for tests: a server on loopback
// that checks every message's signature as a production receiver would, and
// keeps the decoded messages for the test to assert on.
package notifytest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/notify"
)

// Message is the part of the webhook body (notify's webhook JSON) tests look
// at.
type Message struct {
	ID      string          `json:"id"`
	Kind    notify.Kind     `json:"kind"`
	Summary *notify.Summary `json:"summary"`
	Digest  *notify.Digest  `json:"digest"`
	Notice  *notify.Notice  `json:"notice"`
	Failure *notify.Failure `json:"failure"`
}

// MaxSkew is how old a signature's timestamp may be.
const MaxSkew = 5 * time.Minute

// Receiver is a signed-webhook endpoint at URL(). A request with a bad
// signature or an undecodable body fails the test.
type Receiver struct {
	t    testing.TB
	key  []byte
	now  func() time.Time
	srv  *httptest.Server
	path string

	mu         sync.Mutex
	fail       int
	retryAfter string
	attempts   int
	got        []Message
}

// NewReceiver starts a receiver that serves path (a secret part of the URL,
// as real webhook URLs have) and verifies signatures with key against now
// (nil: time.Now). It is closed when the test ends.
func NewReceiver(t testing.TB, path, key string, now func() time.Time) *Receiver {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	r := &Receiver{t: t, key: []byte(key), now: now, path: path}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	if req.URL.Path != r.path {
		r.t.Errorf("webhook posted to %q, not the configured URL", req.URL.Path)
	}
	if err != nil {
		r.t.Errorf("webhook: read body: %v", err)
	}
	if err := VerifySignature(r.key, req.Header.Get(notify.HeaderTimestamp),
		req.Header.Get(notify.HeaderSignature), body, r.now(), MaxSkew); err != nil {
		r.t.Errorf("webhook signature: %v", err)
	}
	if r.fail != 0 {
		if r.retryAfter != "" {
			w.Header().Set("Retry-After", r.retryAfter)
		}
		w.WriteHeader(r.fail)
		return
	}
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		r.t.Errorf("webhook body: %v\n%s", err, body)
	}
	if k := req.Header.Get(notify.HeaderKind); k != string(m.Kind) {
		r.t.Errorf("%s header %q, body kind %q", notify.HeaderKind, k, m.Kind)
	}
	r.got = append(r.got, m)
	w.WriteHeader(http.StatusNoContent)
}

// URL is the full webhook URL, secret path included.
func (r *Receiver) URL() string { return r.srv.URL + r.path }

// Close stops the server: later deliveries fail to connect.
func (r *Receiver) Close() { r.srv.Close() }

// Fail makes the receiver answer status (0: accept again).
func (r *Receiver) Fail(status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail, r.retryAfter = status, ""
}

// Throttle makes the receiver answer 429 with Retry-After d (whole
// seconds): with d longer than the dispatcher's longest backoff the message
// is deferred to the next run at once, so a test of an undelivered message
// takes no wall time.
func (r *Receiver) Throttle(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail, r.retryAfter = http.StatusTooManyRequests, strconv.Itoa(int(d/time.Second))
}

// Take returns the messages accepted since the last Take.
func (r *Receiver) Take() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

// Attempts counts every request, accepted or not.
func (r *Receiver) Attempts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts
}

// OfKind returns the messages of one kind, in order.
func OfKind(msgs []Message, k notify.Kind) []Message {
	var out []Message
	for _, m := range msgs {
		if m.Kind == k {
			out = append(out, m)
		}
	}
	return out
}
