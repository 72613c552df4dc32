package notify

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/fakeclock"
)

// writeSecret writes value to a 0600 file and returns its path.
func writeSecret(t *testing.T, name, value string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// recorder is an httptest receiver that records requests and answers with
// the next scripted response (the last one repeats).
type recorder struct {
	mu      sync.Mutex
	reqs    []recordedRequest
	answers []answer
	inspect func(r *http.Request, body []byte) // optional, runs in the handler
}

type recordedRequest struct {
	method, path string
	header       http.Header
	body         []byte
}

type answer struct {
	status int
	body   string
	header map[string]string
}

func newRecorder(answers ...answer) *recorder {
	if len(answers) == 0 {
		answers = []answer{{status: 200, body: "ok"}}
	}
	return &recorder{answers: answers}
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, recordedRequest{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body})
	a := rc.answers[0]
	if len(rc.answers) > 1 {
		rc.answers = rc.answers[1:]
	}
	inspect := rc.inspect
	rc.mu.Unlock()
	if inspect != nil {
		inspect(r, body)
	}
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func (rc *recorder) requests() []recordedRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]recordedRequest(nil), rc.reqs...)
}

// newServer starts rc on 127.0.0.1 (httptest's default) and returns the
// secret webhook URL: the path is the credential, as with Slack.
func newServer(t *testing.T, h http.Handler) (srv *httptest.Server, secretURL string) {
	t.Helper()
	srv = httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, srv.URL + "/services/T0001/B0002/s3cr3tPathTokenXyZ"
}

func buildSlack(t *testing.T, url string, clk *fakeclock.Clock) Notifier {
	t.Helper()
	cfg := Config{Receivers: []Receiver{{Name: "sec-slack", Slack: &SlackConfig{WebhookURLFile: writeSecret(t, "slack-url", url)}}}}
	ns, err := Build(cfg, Deps{Clock: clk.Now, Renderer: newTestRenderer(t, clk)})
	if err != nil {
		t.Fatal(err)
	}
	return ns["sec-slack"]
}

func TestSlackPayloadGolden(t *testing.T) {
	rec := newRecorder()
	_, url := newServer(t, rec)
	n := buildSlack(t, url, newClock())
	for i, m := range sampleMessages("sec-slack") {
		retry, err := n.Notify(context.Background(), m)
		if err != nil || retry {
			t.Fatalf("%s: Notify = %v, %v", m.Kind, retry, err)
		}
		req := rec.requests()[i]
		if req.method != http.MethodPost || req.path != "/services/T0001/B0002/s3cr3tPathTokenXyZ" {
			t.Errorf("%s %s", req.method, req.path)
		}
		if ct := req.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		if ua := req.header.Get("User-Agent"); !strings.HasPrefix(ua, "patjanitor/") {
			t.Errorf("User-Agent = %q", ua)
		}
		checkGolden(t, "slack_"+string(m.Kind)+".json", req.body)
	}
}

func TestSlackFailureClassification(t *testing.T) {
	cases := []struct {
		name       string
		answer     answer
		wantErr    bool
		wantRetry  bool
		wantReason Reason
		wantInErr  string
		retryAfter time.Duration
	}{
		{name: "200 ok", answer: answer{status: 200, body: "ok"}},
		{name: "200 ok with newline", answer: answer{status: 200, body: "ok\n"}},
		{name: "200 json ok", answer: answer{status: 200, body: `{"ok":true}`}},
		{name: "200 with error text", answer: answer{status: 200, body: "invalid_blocks"}, wantErr: true, wantReason: ReasonRejected, wantInErr: "invalid_blocks"},
		{name: "200 json not ok", answer: answer{status: 200, body: `{"ok":false,"error":"channel_not_found"}`}, wantErr: true, wantReason: ReasonRejected, wantInErr: "channel_not_found"},
		{name: "200 empty", answer: answer{status: 200}, wantErr: true, wantReason: ReasonRejected, wantInErr: "empty response body"},
		{name: "400 invalid payload", answer: answer{status: 400, body: "invalid_payload"}, wantErr: true, wantReason: ReasonClientError, wantInErr: "HTTP 400"},
		{name: "403 action prohibited", answer: answer{status: 403, body: "action_prohibited"}, wantErr: true, wantReason: ReasonAuth},
		{name: "404 no service", answer: answer{status: 404, body: "no_service"}, wantErr: true, wantReason: ReasonClientError, wantInErr: "no_service"},
		{name: "410 channel archived", answer: answer{status: 410, body: "channel_is_archived"}, wantErr: true, wantReason: ReasonClientError},
		{name: "429", answer: answer{status: 429, body: "rate_limited", header: map[string]string{"Retry-After": "7"}}, wantErr: true, wantRetry: true, wantReason: ReasonRateLimited, retryAfter: 7 * time.Second},
		{name: "500", answer: answer{status: 500, body: "rollup_error"}, wantErr: true, wantRetry: true, wantReason: ReasonServerError},
		{name: "503", answer: answer{status: 503}, wantErr: true, wantRetry: true, wantReason: ReasonServerError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, url := newServer(t, newRecorder(tc.answer))
			n := buildSlack(t, url, newClock())
			retry, err := n.Notify(context.Background(), TestMessage("sec-slack", t0))
			if (err != nil) != tc.wantErr || retry != tc.wantRetry {
				t.Fatalf("Notify = retry %v, err %v", retry, err)
			}
			if err == nil {
				return
			}
			var ne *Error
			if !errors.As(err, &ne) {
				t.Fatalf("error %T is not *Error", err)
			}
			if ne.Reason != tc.wantReason || ne.Retryable != tc.wantRetry || ne.RetryAfter != tc.retryAfter {
				t.Errorf("error = %+v", ne)
			}
			if !strings.Contains(err.Error(), tc.wantInErr) || !strings.Contains(err.Error(), `receiver "sec-slack"`) {
				t.Errorf("error text %q", err)
			}
			if strings.Contains(err.Error(), "s3cr3tPathTokenXyZ") {
				t.Errorf("secret in error: %q", err)
			}
		})
	}
}

func TestSlackTransportErrorIsRetriedAndRedacted(t *testing.T) {
	srv, url := newServer(t, newRecorder())
	srv.Close() // connection refused
	n := buildSlack(t, url, newClock())
	retry, err := n.Notify(context.Background(), TestMessage("sec-slack", t0))
	if !retry || ReasonOf(err) != ReasonConnection {
		t.Fatalf("Notify = %v, %v", retry, err)
	}
	if strings.Contains(err.Error(), "s3cr3tPathTokenXyZ") || strings.Contains(err.Error(), "/services/") {
		t.Errorf("URL in error: %q", err)
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if strings.Contains(e.Error(), "s3cr3tPathTokenXyZ") {
			t.Errorf("URL in wrapped error %T: %q", e, e)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	retry, err = n.Notify(ctx, TestMessage("sec-slack", t0))
	if !retry || ReasonOf(err) != ReasonCanceled || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("canceled Notify = %v, %v", retry, err)
	}
}
