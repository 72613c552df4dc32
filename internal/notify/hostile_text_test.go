package notify

import (
	"encoding/json"
	"strings"
	"testing"
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

// A subject is one header line: a newline in it would start a header.
func TestHostileSubjectHeaderInjection(t *testing.T) {
	f := sampleFailure()
	f.Tenant = "https://acme.example\r\nBcc: mallory@evil.example\x1b"
	out, err := newTestRenderer(t, newClock()).Render(FailureMessage("x", "run-1", t0, f))
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out.Subject, "\r\n\x1b") || !strings.Contains(out.Subject, `acme.example Bcc: mallory@evil.example\x1b`) {
		t.Fatalf("subject = %q", out.Subject)
	}
}
