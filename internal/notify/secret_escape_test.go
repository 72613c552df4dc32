package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"strings"
	"testing"
)

// TestHostileSecretSurvivesNoEscaping: a message that carries a secret by
// mistake (an engine error quoting it) is scrubbed before the channels escape
// it, not only after. Each channel's escaping rewrites characters a secret
// may hold: html/template writes + as &#43;, Slack's mrkdwn function swaps _
// and * for look-alikes, so a scrub of the rendered text alone would no
// longer find the secret, and the receiver would show it (a mail client
// decodes &#43;; a reader sees through ˍ). Neither the Slack text nor either
// part of the mail may carry it in any form a reader decodes.
func TestHostileSecretSurvivesNoEscaping(t *testing.T) {
	const hmacKey = "Hmac_S3cret+Key*0123456789~x"
	slackRec := newRecorder()
	_, slackURL := newServer(t, slackRec)
	_, hookURL := newServer(t, newRecorder())
	srv := startSMTP(t, true, smtpUser, smtpPass)
	clk := newClock()
	cfg := Config{Receivers: []Receiver{
		{Name: "slack", Slack: &SlackConfig{WebhookURLFile: writeSecret(t, "slack", slackURL)}},
		{Name: "hook", Webhook: &WebhookConfig{URLFile: writeSecret(t, "hook", hookURL), HMACSecretFile: writeSecret(t, "hmac", hmacKey)}},
		emailReceiver(srv, t, true, smtpUser, smtpPass),
	}}
	ns, err := Build(cfg, Deps{Clock: clk.Now, Renderer: newTestRenderer(t, clk)})
	if err != nil {
		t.Fatal(err)
	}
	f := sampleFailure()
	f.Kind, f.Error = FailureRun, fmt.Sprintf("signing with key %s failed", hmacKey)
	for _, r := range []string{"slack", "owner-mail"} {
		if _, err := ns[r].Notify(context.Background(), FailureMessage(r, "run-1", t0, f)); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
	}

	// What a Slack reader sees: the text with the look-alikes read as the
	// characters they stand for, and the entities decoded.
	reqs := slackRec.requests()
	if len(reqs) != 1 {
		t.Fatalf("slack received %d requests, want 1", len(reqs))
	}
	var payload struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(reqs[0].body, &payload); err != nil {
		t.Fatal(err)
	}
	seen := strings.NewReplacer("\u02cb", "`", "\u2217", "*", "\u02cd", "_", "\u223c", "~").Replace(html.UnescapeString(string(reqs[0].body)))
	if strings.Contains(seen, hmacKey) || strings.Contains(html.UnescapeString(payload.Text), hmacKey) {
		t.Errorf("slack payload shows the secret: %s", reqs[0].body)
	}
	if !strings.Contains(string(reqs[0].body), "signing with key") {
		t.Errorf("slack payload lost the error: %s", reqs[0].body)
	}

	mails := srv.received()
	if len(mails) != 1 {
		t.Fatalf("%d mails received, want 1", len(mails))
	}
	pm := parseMail(t, mails[0].data)
	for part, text := range map[string]string{"subject": pm.subject, "text": pm.text, "html": html.UnescapeString(pm.html)} {
		if strings.Contains(text, hmacKey) {
			t.Errorf("mail %s shows the secret: %s", part, text)
		}
		if part != "subject" && !strings.Contains(text, "signing with key") {
			t.Errorf("mail %s lost the error: %s", part, text)
		}
	}
}
