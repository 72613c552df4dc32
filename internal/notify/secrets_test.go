package notify

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/patjanitor/patjanitor/internal/secret"
)

// TestNoSecretLeaks drives every notifier into failures (a server that echoes
// the request path, a refused connection, an SMTP server that quotes the
// password back) and a message that carries secrets by mistake, then checks
// errors, the outbox, every log entry at debug level, and what the servers
// received.
func TestNoSecretLeaks(t *testing.T) {
	const (
		slackPath = "/services/T0LEAK/B0LEAK/SlackS3cretPath"
		hookPath  = "/ingest/WebhookS3cretPath"
		hookQuery = "token=WebhookS3cretQuery"
		hmacKey   = "HmacS3cretKey-0123456789"
	)
	// Slack: answers 500 with a body that quotes the secret path.
	slackRec := newRecorder(answer{status: 500, body: "no_service for " + slackPath})
	slackSrv, _ := newServer(t, slackRec)
	slackURL := slackSrv.URL + slackPath
	// Webhook: nothing listens (a *url.Error naming the URL).
	hookSrv, _ := newServer(t, newRecorder())
	hookURL := hookSrv.URL + hookPath + "?" + hookQuery
	hookSrv.Close()
	// SMTP: rejects RCPT with a message that quotes the password.
	smtpSrv := startSMTP(t, true, smtpUser, smtpPass)
	smtpSrv.rcptErr = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "policy says no to " + smtpPass}
	secrets := []string{slackURL, slackPath, hookURL, hookPath, hookQuery, hmacKey, smtpPass, url.QueryEscape(hookQuery)}

	core, logs := observer.New(zapcore.DebugLevel)
	logger := zap.New(core)
	env := newDispatchEnv(t)
	mail := emailReceiver(smtpSrv, t, true, smtpUser, smtpPass)
	cfg := Config{Receivers: []Receiver{
		{Name: "slack", Slack: &SlackConfig{WebhookURLFile: writeSecret(t, "slack", slackURL)}},
		{Name: "hook", Webhook: &WebhookConfig{URLFile: writeSecret(t, "hook", hookURL), HMACSecretFile: writeSecret(t, "hmac", hmacKey)}},
		mail,
	}}
	ns, err := Build(cfg, Deps{Logger: logger, Clock: env.clk.Now, Renderer: newTestRenderer(t, env.clk)})
	if err != nil {
		t.Fatal(err)
	}
	disp, err := NewDispatcher(DispatcherOptions{Notifiers: ns, Outbox: env.store, Logger: logger, Clock: env.clk.Now, Sleep: env.sleep.Sleep})
	if err != nil {
		t.Fatal(err)
	}

	// A failure whose text carries secrets (an engine bug): notifiers scrub
	// what they know before sending.
	f := sampleFailure()
	f.Kind, f.Error = FailureRun, fmt.Sprintf("post %s failed; key %s; password %s", hookURL, hmacKey, smtpPass)
	var msgs []*Message
	for _, r := range []string{"slack", "hook", "owner-mail"} {
		msgs = append(msgs, FailureMessage(r, "run-1", t0, f))
	}
	rep, err := disp.Send(context.Background(), msgs...)
	if err != nil {
		t.Fatal(err)
	}

	var texts []string
	for _, r := range rep.Results {
		if r.Outcome == Sent {
			t.Errorf("%s: unexpectedly sent", r.Receiver)
		}
		if r.Err == nil {
			t.Fatalf("%s: no error", r.Receiver)
		}
		texts = append(texts, "result error: "+r.Err.Error())
	}
	ob, _ := env.store.Outbox(context.Background())
	for _, e := range ob {
		texts = append(texts, "outbox lastError: "+e.LastError, "outbox payload: "+string(e.Payload))
	}
	for _, e := range logs.All() {
		texts = append(texts, fmt.Sprintf("log: %s %v", e.Message, e.ContextMap()))
	}
	for _, req := range slackRec.requests() {
		texts = append(texts, "slack body: "+string(req.body))
	}
	texts = append(texts, fmt.Sprintf("notifiers: %v %+v", ns, ns))

	if len(logs.All()) == 0 {
		t.Fatal("no logs observed")
	}
	if len(slackRec.requests()) == 0 {
		t.Fatal("slack server received nothing")
	}
	for _, text := range texts {
		for _, s := range secrets {
			// The outbox keeps the message as the engine gave it: that is
			// the engine's data, not a notifier leak. Everything else
			// must be clean.
			if strings.HasPrefix(text, "outbox payload: ") {
				continue
			}
			if strings.Contains(text, s) {
				t.Errorf("secret %q leaked in %s", s, text)
			}
		}
	}
	// The errors still say what went wrong.
	joined := strings.Join(texts, "\n")
	for _, want := range []string{`HTTP 500: "no_service for <secret>"`, "connection refused", "policy says no to <secret>"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no %q in:\n%s", want, joined)
		}
	}
}

func TestRedactorCatchesURLPathAlone(t *testing.T) {
	r := newRedactor(secretOf("https://hooks.slack.com/services/T1/B2/XYZsecret"), secretOf("abc"))
	got := r.scrub("POST https://hooks.slack.com/services/T1/B2/XYZsecret and /services/T1/B2/XYZsecret and abc")
	if got != "POST <secret> and <secret> and abc" {
		t.Errorf("scrub = %q", got)
	}
	// Values too short to scrub safely are left alone (and never accepted
	// as HMAC keys).
	if r.scrub("abc") != "abc" {
		t.Error("short value scrubbed")
	}
}

func TestStatusCodeClassification(t *testing.T) {
	for code, want := range map[int]struct {
		retry  bool
		reason Reason
	}{
		200: {false, ""}, 204: {false, ""}, 400: {false, ReasonClientError}, 401: {false, ReasonAuth}, 403: {false, ReasonAuth},
		404: {false, ReasonClientError}, 408: {false, ReasonClientError}, 429: {true, ReasonRateLimited}, 500: {true, ReasonServerError},
		502: {true, ReasonServerError}, 503: {true, ReasonServerError}, 504: {true, ReasonServerError},
	} {
		retry, reason := ClassifyStatus(code)
		if retry != want.retry || reason != want.reason {
			t.Errorf("ClassifyStatus(%d) = %v, %q", code, retry, reason)
		}
	}
}

func secretOf(v string) secret.Secret { return secret.New(v) }
