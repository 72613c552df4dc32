package notify

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

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
		// What a receiver does: verify with its own copy of the key and
		// its own clock (here a few seconds later).
		err := VerifySignature([]byte(testHMACKey), r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, clk.Now().Add(3*time.Second), 5*time.Minute)
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

func TestVerifySignature(t *testing.T) {
	key := []byte(testHMACKey)
	body := []byte(`{"kind":"test"}`)
	ts, sig := Sign(key, t0, body)
	cases := []struct {
		name          string
		key           []byte
		ts, sig, body string
		now           time.Time
		want          error
	}{
		{"valid", key, ts, sig, string(body), t0, nil},
		{"valid within skew", key, ts, sig, string(body), t0.Add(4 * time.Minute), nil},
		{"old timestamp (replay)", key, ts, sig, string(body), t0.Add(6 * time.Minute), ErrTimestampSkew},
		{"future timestamp", key, ts, sig, string(body), t0.Add(-6 * time.Minute), ErrTimestampSkew},
		{"tampered body", key, ts, sig, `{"kind":"digest"}`, t0, ErrSignatureInvalid},
		{"wrong key", []byte("another-key-0123456789"), ts, sig, string(body), t0, ErrSignatureInvalid},
		{"timestamp swapped", key, strconv.FormatInt(t0.Unix()+1, 10), sig, string(body), t0, ErrSignatureInvalid},
		{"missing signature", key, ts, "", string(body), t0, ErrSignatureMissing},
		{"missing timestamp", key, "", sig, string(body), t0, ErrSignatureMissing},
		{"no sha256 prefix", key, ts, strings.TrimPrefix(sig, "sha256="), string(body), t0, ErrSignatureInvalid},
		{"not hex", key, ts, "sha256=zz", string(body), t0, ErrSignatureInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifySignature(tc.key, tc.ts, tc.sig, []byte(tc.body), tc.now, 5*time.Minute)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("VerifySignature = %v, want %v", err, tc.want)
			}
		})
	}
	// A timestamp that is not a number but signed correctly is still refused.
	bad := "yesterday"
	s := "sha256=" + hexMAC(key, bad, body)
	if err := VerifySignature(key, bad, s, body, t0, time.Minute); !errors.Is(err, ErrTimestampSkew) {
		t.Errorf("non-numeric timestamp = %v", err)
	}
}

func hexMAC(key []byte, ts string, body []byte) string {
	const hexdigits = "0123456789abcdef"
	m := mac(key, ts, body)
	out := make([]byte, 0, 2*len(m))
	for _, b := range m {
		out = append(out, hexdigits[b>>4], hexdigits[b&0xf])
	}
	return string(out)
}

func FuzzVerifySignature(f *testing.F) {
	key := []byte(testHMACKey)
	ts, sig := Sign(key, t0, []byte(`{}`))
	f.Add(ts, sig, []byte(`{}`), int64(0))
	f.Add("", "", []byte(nil), int64(10))
	f.Add("1700000000", "sha256=00", []byte("x"), int64(-400))
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte, offset int64) {
		now := t0.Add(time.Duration(offset) * time.Second)
		err := VerifySignature(key, ts, sig, body, now, 5*time.Minute)
		if err == nil {
			// Accepted only if the MAC over exactly (ts, body) is the
			// signature (hex case aside) and ts is within the window.
			got, derr := hex.DecodeString(strings.TrimPrefix(sig, "sha256="))
			if derr != nil || !hmac.Equal(got, mac(key, ts, body)) {
				t.Fatalf("accepted a signature that is not ours: ts=%q sig=%q", ts, sig)
			}
			if d := now.Sub(mustUnix(t, ts)); d > 5*time.Minute || d < -5*time.Minute {
				t.Fatalf("accepted timestamp %q, %s from now", ts, d)
			}
		}
		// Signing and verifying always agree.
		ts2, sig2 := Sign(key, now, body)
		if err := VerifySignature(key, ts2, sig2, body, now, time.Second); err != nil {
			t.Fatalf("own signature rejected: %v", err)
		}
	})
}

func mustUnix(t *testing.T, ts string) time.Time {
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		t.Fatalf("accepted non-numeric timestamp %q", ts)
	}
	return time.Unix(n, 0)
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
