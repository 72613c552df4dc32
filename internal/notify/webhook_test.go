package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/fakeclock"
)

const testHMACKey = "hmac-key-0123456789abcdef"

func buildWebhook(t *testing.T, url string, clk *fakeclock.Clock) Notifier {
	t.Helper()
	cfg := Config{Receivers: []Receiver{{Name: "siem", Webhook: &WebhookConfig{
		URLFile: writeSecret(t, "url", url), HMACSecretFile: writeSecret(t, "hmac", testHMACKey),
	}}}}
	ns, err := Build(cfg, Deps{Clock: clk.Now, Renderer: newTestRenderer(t, clk)})
	if err != nil {
		t.Fatal(err)
	}
	return ns["siem"]
}

func TestWebhookSignedPayloadGolden(t *testing.T) {
	clk := newClock()
	rec := newRecorder(answer{status: 202})
	var verifyErrs []error
	rec.inspect = func(r *http.Request, body []byte) {
		// What a receiver does (notifytest.VerifySignature does it all):
		// the HMAC-SHA256 of "<timestamp>.<body>" with its own copy of the
		// key, compared in constant time.
		h := hmac.New(sha256.New, []byte(testHMACKey))
		h.Write([]byte(r.Header.Get(HeaderTimestamp) + "."))
		h.Write(body)
		var err error
		if got, _ := hex.DecodeString(strings.TrimPrefix(r.Header.Get(HeaderSignature), "sha256=")); !hmac.Equal(got, h.Sum(nil)) {
			err = errors.New("signature does not match")
		}
		verifyErrs = append(verifyErrs, err)
	}
	_, url := newServer(t, rec)
	n := buildWebhook(t, url, clk)
	for i, m := range sampleMessages("siem") {
		if retry, err := n.Notify(context.Background(), m); err != nil || retry {
			t.Fatalf("%s: Notify = %v, %v", m.Kind, retry, err)
		}
		req := rec.requests()[i]
		if verifyErrs[i] != nil {
			t.Errorf("%s: receiver rejected the signature: %v", m.Kind, verifyErrs[i])
		}
		if ts := req.header.Get(HeaderTimestamp); ts != strconv.FormatInt(t0.Unix(), 10) {
			t.Errorf("timestamp header = %q", ts)
		}
		if sig := req.header.Get(HeaderSignature); !strings.HasPrefix(sig, "sha256=") || len(sig) != len("sha256=")+64 {
			t.Errorf("signature header = %q", sig)
		}
		if req.header.Get(HeaderKind) != string(m.Kind) || req.header.Get(HeaderMessageID) != m.ID {
			t.Errorf("kind/id headers = %q %q", req.header.Get(HeaderKind), req.header.Get(HeaderMessageID))
		}
		if strings.Contains(string(req.body), testHMACKey) {
			t.Error("HMAC key in body")
		}
		checkGolden(t, "webhook_"+string(m.Kind)+".json", req.body)
	}
}

func TestWebhookFailureClassification(t *testing.T) {
	cases := []struct {
		answer     answer
		wantRetry  bool
		wantReason Reason
	}{
		{answer{status: 500, body: "boom"}, true, ReasonServerError},
		{answer{status: 502}, true, ReasonServerError},
		{answer{status: 503, header: map[string]string{"Retry-After": "120"}}, true, ReasonServerError},
		{answer{status: 429}, true, ReasonRateLimited},
		{answer{status: 400, body: `{"error":"bad"}`}, false, ReasonClientError},
		{answer{status: 401}, false, ReasonAuth},
		{answer{status: 404}, false, ReasonClientError},
		{answer{status: 413}, false, ReasonClientError},
	}
	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.answer.status), func(t *testing.T) {
			_, url := newServer(t, newRecorder(tc.answer))
			retry, err := buildWebhook(t, url, newClock()).Notify(context.Background(), TestMessage("siem", t0))
			if err == nil || retry != tc.wantRetry || ReasonOf(err) != tc.wantReason {
				t.Errorf("Notify = %v, %v (reason %q)", retry, err, ReasonOf(err))
			}
			var ne *Error
			if errors.As(err, &ne) && ne.StatusCode != tc.answer.status {
				t.Errorf("StatusCode = %d", ne.StatusCode)
			}
		})
	}
	// 2xx other than 200 is success.
	_, url := newServer(t, newRecorder(answer{status: 204}))
	if _, err := buildWebhook(t, url, newClock()).Notify(context.Background(), TestMessage("siem", t0)); err != nil {
		t.Errorf("204: %v", err)
	}
}
