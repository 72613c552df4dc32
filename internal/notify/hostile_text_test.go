package notify

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// Token names, ids, owner names, reasons and error texts are others' text;
// in Slack they must not close the code span an id is shown in, start a
// bullet line of their own, format text or mention anyone.
func TestHostileSlackTextEscapesMrkdwn(t *testing.T) {
	const (
		evilID   = "2c91`\n• *deleted* `x"
		evilName = "ok` <!channel>\n• *token* _applied_ ~gone~ \x1b[2J\u202e"
	)
	s := sampleSummary()
	for i := range s.Top {
		s.Top[i].TokenID, s.Top[i].TokenName, s.Top[i].OwnerName, s.Top[i].Reason = evilID, evilName, evilName, evilName
	}
	d := sampleDigest()
	for i := range d.Items {
		d.Items[i].TokenID, d.Items[i].TokenName, d.Items[i].Reason = evilID, evilName, evilName
	}
	d.Owner.Name = evilName
	n := sampleNotice()
	for i := range n.Items {
		n.Items[i].TokenID, n.Items[i].TokenName, n.Items[i].Reason, n.Items[i].Detail = evilID, evilName, evilName, evilName
	}
	f := sampleFailure()
	f.Error = "tenant said: ```" + evilName
	msgs := []*Message{
		SummaryMessage("x", "run-1", t0, s), DigestMessage("x", "run-1", t0, d),
		NoticeMessage("x", "run-1", t0, n), FailureMessage("x", "run-1", t0, f),
	}
	r := newTestRenderer(t, newClock())
	for _, m := range msgs {
		out, err := r.Render(m)
		if err != nil {
			t.Fatal(err)
		}
		var slack slackMessage
		if err := json.Unmarshal(out.Slack, &slack); err != nil {
			t.Fatal(err)
		}
		for _, b := range slack.Blocks {
			if b.Text == nil || b.Text.Type != "mrkdwn" {
				continue
			}
			txt := b.Text.Text
			for _, bad := range []string{"<!channel>", "*deleted*", "*token*", "_applied_", "~gone~", "\x1b", "\u202e", "• *deleted", "\n• *token"} {
				if strings.Contains(txt, bad) {
					t.Errorf("%s: slack text holds %q:\n%s", m.Kind, bad, txt)
				}
			}
			// Every backtick is the template's: an even number per line,
			// so no value opened or closed a code span.
			for _, line := range strings.Split(txt, "\n") {
				if strings.Count(line, "`")%2 != 0 {
					t.Errorf("%s: unbalanced backticks in %q", m.Kind, line)
				}
			}
			if m.Kind != KindFailure && !strings.Contains(txt, "2c91\u02cb\\n• \u2217deleted\u2217 \u02cbx") {
				t.Errorf("%s: the id is not shown escaped:\n%s", m.Kind, txt)
			}
		}
		// The webhook body keeps the data as data.
		var hook map[string]any
		if err := json.Unmarshal(out.Webhook, &hook); err != nil {
			t.Fatal(err)
		}
		if m.Kind != KindFailure && !strings.Contains(string(out.Webhook), `2c91`+"`"+`\n• *deleted* `+"`x") {
			t.Errorf("%s: webhook does not carry the id as it is: %s", m.Kind, out.Webhook)
		}
	}
}

// The snooze command an owner is told to paste quotes an id that is not
// plain, so that it cannot run anything else.
func TestHostileSnoozeCommandQuoted(t *testing.T) {
	d := sampleDigest()
	d.Items[0].TokenID = "x; rm -rf ~ '"
	out, err := newTestRenderer(t, newClock()).Render(DigestMessage("x", "run-1", t0, d))
	if err != nil {
		t.Fatal(err)
	}
	if want := `patjanitor snooze 'x; rm -rf ~ '\''' --for 30d`; !strings.Contains(out.Text, want) {
		t.Fatalf("text body lacks %q:\n%s", want, out.Text)
	}
}

// A subject is one header line: a newline in it would start a header. A
// value's CR/LF shows as escapes, like in the plain-text body.
func TestHostileSubjectHeaderInjection(t *testing.T) {
	f := sampleFailure()
	f.Tenant = "https://acme.example\r\nBcc: mallory@evil.example\x1b"
	out, err := newTestRenderer(t, newClock()).Render(FailureMessage("x", "run-1", t0, f))
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out.Subject, "\r\n\x1b") || !strings.Contains(out.Subject, `acme.example\r\nBcc: mallory@evil.example\x1b`) {
		t.Fatalf("subject = %q", out.Subject)
	}
}

// plainForgery is a token or owner name that, shown raw in a plain-text
// email, forges an approval line, clears a terminal showing the mail and
// reverses what follows it.
const plainForgery = "ci\r\nApproved by: security-team\r\n\x1b[2J\u202egnp.exe"

// plainForgeryShown is how the plain-text body must show it: one line, the
// characters as visible escapes.
const plainForgeryShown = `ci\r\nApproved by: security-team\r\n\x1b[2J\u202egnp.exe`

// checkPlainText fails unless text (a plain-text body or subject as the
// receiver got it) holds none of plainForgery's characters raw, shows it
// escaped, and keeps the ordinary names in want as they are.
func checkPlainText(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, bad := range []string{"\x1b", "\u202e"} {
		if strings.Contains(text, bad) {
			t.Errorf("%s holds %q raw:\n%s", what, bad, text)
		}
	}
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "Approved by") {
			t.Errorf("%s has a forged line %q:\n%s", what, line, text)
		}
	}
	for _, w := range append([]string{plainForgeryShown}, want...) {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}

// Token and owner names are the tenant's (an owner names their own token):
// in the plain-text part of an email, as the SMTP server received it, a name
// with CR/LF, ESC or U+202E stays one line with the characters shown as
// escapes, while ordinary non-ASCII names pass unchanged. The HTML part
// escapes by html/template, and the webhook JSON keeps the data as it is.
func TestHostilePlainTextEmailEscapesTenantText(t *testing.T) {
	const jose, cjk = "José Müller", "山田太郎の鍵"
	d := sampleDigest()
	d.Owner.Name = plainForgery
	d.Items[0].TokenName = plainForgery
	d.Items[0].Reason = "token " + plainForgery + " was never used"
	d.Items[1].TokenName = cjk
	s := sampleSummary()
	s.Top[0].TokenName, s.Top[0].OwnerName, s.Top[0].Reason = plainForgery, plainForgery, "name "+plainForgery
	s.Top[1].TokenName, s.Top[1].OwnerName = cjk, jose

	srv := startSMTP(t, true, smtpUser, smtpPass)
	clk := newClock()
	n := buildEmail(t, emailReceiver(srv, t, true, smtpUser, smtpPass), clk)
	for _, m := range []*Message{DigestMessage("owner-mail", "run-1", t0, d), SummaryMessage("owner-mail", "run-1", t0, s)} {
		if _, err := n.Notify(context.Background(), m); err != nil {
			t.Fatalf("%s: %v", m.Kind, err)
		}
	}
	mails := srv.received()
	if len(mails) != 2 {
		t.Fatalf("%d mails received, want 2", len(mails))
	}
	digest, summary := parseMail(t, mails[0].data), parseMail(t, mails[1].data)
	checkPlainText(t, "digest text part", digest.text, cjk, "Hello "+plainForgeryShown+",", "token "+plainForgeryShown+" was never used")
	checkPlainText(t, "summary text part", summary.text, cjk, "owner "+jose+":", "name "+plainForgeryShown)
	for _, pm := range []parsedMail{digest, summary} {
		if !strings.Contains(pm.html, "Approved by: security-team") {
			t.Errorf("html part lost the name: %s", pm.html)
		}
	}

	// A custom template applies no function and still gets the escaped
	// names, in the subject too.
	dir := t.TempDir()
	subj, text := filepath.Join(dir, "subject.tmpl"), filepath.Join(dir, "text.tmpl")
	if err := os.WriteFile(subj, []byte("Tokens of {{.Digest.Owner.Name}}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(text, []byte("{{range .Digest.Items}}{{.TokenName}} / {{.Reason}}\n{{end}}"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := NewRenderer(RenderOptions{Clock: clk.Now, Templates: Templates{Digest: TemplateFiles{Subject: subj, Text: text}}})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := Build(Config{Receivers: []Receiver{emailReceiver(srv, t, true, smtpUser, smtpPass)}}, Deps{Clock: clk.Now, Renderer: r})
	if err != nil {
		t.Fatal(err)
	}
	m := DigestMessage("owner-mail", "run-1", t0, d)
	if _, err := ns["owner-mail"].Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if mails = srv.received(); len(mails) != 3 {
		t.Fatalf("%d mails received, want 3", len(mails))
	}
	custom := parseMail(t, mails[2].data)
	checkPlainText(t, "custom subject", custom.subject, "Tokens of "+plainForgeryShown)
	checkPlainText(t, "custom text", custom.text, cjk+" / ")
	out, err := r.Render(m)
	if err != nil {
		t.Fatal(err)
	}

	// The webhook's data is data: JSON carries the names as they are.
	var hook struct {
		Text   string `json:"text"`
		Digest Digest `json:"digest"`
	}
	if err := json.Unmarshal(out.Webhook, &hook); err != nil {
		t.Fatal(err)
	}
	if hook.Digest.Owner.Name != plainForgery || hook.Digest.Items[0].TokenName != plainForgery || hook.Digest.Items[1].TokenName != cjk {
		t.Errorf("webhook data changed: owner %q, tokens %q, %q", hook.Digest.Owner.Name, hook.Digest.Items[0].TokenName, hook.Digest.Items[1].TokenName)
	}
	if hook.Text != out.Text {
		t.Errorf("webhook text %q, rendered text %q", hook.Text, out.Text)
	}
	// The message itself (stored in the outbox) is not changed by rendering.
	if m.Digest.Owner.Name != plainForgery {
		t.Errorf("rendering changed the message: %q", m.Digest.Owner.Name)
	}
}

// The escaping copy of a message follows pointers. A type with a pointer
// cycle (no message type has one today, but a field added later could)
// must give a copy with the same cycle instead of recursing until the
// stack overflows, which kills the process (serve) rather than failing a
// notification; a pointer reached twice is copied once.
func TestEscapingCopyEndsOnPointerCycles(t *testing.T) {
	type node struct {
		Name  string
		Next  *node
		Alias *node
	}
	a := &node{Name: "a\r\nApproved by: security-team"}
	b := &node{Name: "b\x1b[2J", Next: a}
	a.Next, a.Alias, b.Alias = b, a, a

	e := escaper{str: untrusted.Terminal, copies: map[escapedPointer]reflect.Value{}}
	c := e.copy(reflect.ValueOf(a)).Interface().(*node)
	if c == a || c.Next == b {
		t.Fatal("the copy shares nodes with the original")
	}
	if c.Name != `a\r\nApproved by: security-team` || c.Next.Name != `b\x1b[2J` {
		t.Fatalf("names not escaped: %q, %q", c.Name, c.Next.Name)
	}
	if c.Next.Next != c || c.Alias != c || c.Next.Alias != c {
		t.Fatal("the copy does not keep the cycle and the shared pointer")
	}
	if a.Name != "a\r\nApproved by: security-team" {
		t.Fatal("the original was changed")
	}
}
