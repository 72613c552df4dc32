package notify

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// A Slack or webhook receiver answered with a redirect: the message (with its
// signature, and the URL's secret path and query) goes nowhere else, the
// delivery fails for good (not retried), and the error names the status and
// the Location's host only.
func TestHostileNotifierRedirects(t *testing.T) {
	elsewhere := newRecorder()
	elsewhereSrv, _ := newServer(t, elsewhere)
	target := strings.TrimPrefix(elsewhereSrv.URL, "http://")
	for _, status := range []int{301, 302, 303, 307, 308} {
		for _, kind := range []string{"slack", "webhook"} {
			t.Run(fmt.Sprintf("%s %d", kind, status), func(t *testing.T) {
				rec := newRecorder(answer{status: status, body: "moved", header: map[string]string{"Location": elsewhereSrv.URL + "/steal?token=XyZ"}})
				_, secretURL := newServer(t, rec)
				var r Receiver
				if kind == "slack" {
					r = Receiver{Name: "r", Slack: &SlackConfig{WebhookURLFile: writeSecret(t, "url", secretURL)}}
				} else {
					r = Receiver{Name: "r", Webhook: &WebhookConfig{URLFile: writeSecret(t, "url", secretURL), HMACSecretFile: writeSecret(t, "hmac", "HmacS3cretKey-0123456789")}}
				}
				clk := newClock()
				ns, err := Build(Config{Receivers: []Receiver{r}}, Deps{Clock: clk.Now, Renderer: newTestRenderer(t, clk)})
				if err != nil {
					t.Fatal(err)
				}
				retry, err := ns["r"].Notify(context.Background(), FailureMessage("r", "run-1", t0, sampleFailure()))
				if err == nil || retry {
					t.Fatalf("Notify = retry %v, %v; want a permanent failure", retry, err)
				}
				if ReasonOf(err) != ReasonClientError {
					t.Errorf("reason %q", ReasonOf(err))
				}
				msg := err.Error()
				if !strings.Contains(msg, fmt.Sprint(status)) || !strings.Contains(msg, "host "+target) ||
					strings.Contains(msg, "steal") || strings.Contains(msg, "XyZ") || strings.Contains(msg, "s3cr3tPath") {
					t.Errorf("error %q: want the status and the Location host only", msg)
				}
				if n := len(rec.requests()); n != 1 {
					t.Errorf("the receiver got %d requests, want 1", n)
				}
				if got := elsewhere.requests(); len(got) != 0 {
					t.Fatalf("the redirect target received %d requests", len(got))
				}
			})
		}
	}
}

// credentialForms are the ways an SMTP server can quote the credentials
// back: each alone, in the forms the wire gives them, and the AUTH PLAIN
// response. Computed here, independently of the redactor.
func credentialForms(user, pass string) map[string]string {
	plain := "\x00" + user + "\x00" + pass
	out := map[string]string{"auth plain": base64.StdEncoding.EncodeToString([]byte(plain)),
		"auth plain raw": base64.RawStdEncoding.EncodeToString([]byte(plain))}
	for who, v := range map[string]string{"user": user, "password": pass} {
		j, _ := json.Marshal(v)
		out[who] = v
		out[who+" query-escaped"] = url.QueryEscape(v)
		out[who+" path-escaped"] = url.PathEscape(v)
		out[who+" json"] = string(j[1 : len(j)-1])
		out[who+" base64"] = base64.StdEncoding.EncodeToString([]byte(v))
		out[who+" base64 raw url"] = base64.RawURLEncoding.EncodeToString([]byte(v))
	}
	return out
}

// An SMTP server that answers AUTH with a 535 quoting the credentials, in
// each form they can take: neither the delivery error, nor the outbox, nor
// any log line carries them.
func TestHostileSMTPQuotesCredentials(t *testing.T) {
	const user, pass = "relay+mailer@acme.example", "p@ss+w/rd=Z&q 9"
	for name, form := range credentialForms(user, pass) {
		t.Run(name, func(t *testing.T) {
			srv := startSMTP(t, false, user, pass)
			srv.authErr = func(plainB64 string) error {
				quoted := form
				if strings.HasPrefix(name, "auth plain") {
					quoted = plainB64 // what the client really sent
					if name == "auth plain raw" {
						quoted = strings.TrimRight(plainB64, "=")
					}
				}
				return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "rejected AUTH PLAIN " + quoted}
			}
			core, logs := observer.New(zapcore.DebugLevel)
			env := newDispatchEnv(t)
			ns, err := Build(Config{Receivers: []Receiver{emailReceiver(srv, t, false, user, pass)}},
				Deps{Logger: zap.New(core), Clock: env.clk.Now, Renderer: newTestRenderer(t, env.clk)})
			if err != nil {
				t.Fatal(err)
			}
			disp, err := NewDispatcher(DispatcherOptions{Notifiers: ns, Outbox: env.store, Logger: zap.New(core), Clock: env.clk.Now, Sleep: env.sleep.Sleep})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := disp.Send(context.Background(), FailureMessage("owner-mail", "run-1", t0, sampleFailure()))
			if err != nil {
				t.Fatal(err)
			}
			if len(srv.auths()) == 0 {
				t.Fatal("the server saw no AUTH: the test exercises nothing")
			}
			var texts []string
			for _, r := range rep.Results {
				if r.Err == nil {
					t.Fatalf("%s: no error", r.Receiver)
				}
				if ReasonOf(r.Err) != ReasonAuth {
					t.Errorf("reason %q, want %q", ReasonOf(r.Err), ReasonAuth)
				}
				texts = append(texts, "result: "+r.Err.Error(), fmt.Sprintf("result %%+v: %+v", r.Err))
			}
			ob, _ := env.store.Outbox(context.Background())
			for _, e := range ob {
				texts = append(texts, "outbox lastError: "+e.LastError)
			}
			for _, e := range logs.All() {
				texts = append(texts, fmt.Sprintf("log: %s %v", e.Message, e.ContextMap()))
			}
			joined := strings.Join(texts, "\n")
			if !strings.Contains(joined, "535") || !strings.Contains(joined, "rejected AUTH PLAIN <secret>") {
				t.Errorf("the error no longer says what happened:\n%s", joined)
			}
			for fname, f := range credentialForms(user, pass) {
				if strings.Contains(joined, f) {
					t.Errorf("the %s form %q leaked:\n%s", fname, f, joined)
				}
			}
		})
	}
}
