package notify

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A custom Slack template (notify.templates) that writes a token name
// without mrkdwn must not let the name mention the channel, link to another
// site under text of its own, or start a line of its own: in mrkdwn <!channel>
// notifies everyone in the security channel and <https://…|text> is a link
// that reads as patjanitor's advice. The plain-text email is already safe
// without a function (TestHostilePlainTextEmailEscapesTenantText); Slack was
// not: the template saw the names as the tenant listed them.
func TestHostileCustomSlackTemplateWithoutMrkdwn(t *testing.T) {
	const (
		evilName  = "<!channel> <https://evil.example/keep?t=1&x=2|Keep your token: sign in here>\n• *all tokens deleted*"
		evilOwner = "<@U0ADMIN> R&D"
	)
	dir := t.TempDir()
	tmpl, subj := filepath.Join(dir, "summary.slack.tmpl"), filepath.Join(dir, "summary.subject.tmpl")
	if err := os.WriteFile(subj, []byte("Summary: {{(index .Summary.Top 0).TokenName}}"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The template applies no function to the names, and compares an
	// outcome: escaping must leave patjanitor's own values comparable.
	src := "{{range .Summary.Top}}{{.TokenName}} of {{.OwnerName}}{{if eq .Outcome \"would_apply\"}} (would apply){{end}}\n{{end}}"
	if err := os.WriteFile(tmpl, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	r, err := NewRenderer(RenderOptions{Clock: clk.Now, Templates: Templates{Summary: TemplateFiles{Slack: tmpl, Subject: subj}}})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	_, url := newServer(t, rec)
	cfg := Config{Receivers: []Receiver{{Name: "sec-slack", Slack: &SlackConfig{WebhookURLFile: writeSecret(t, "slack-url", url)}}}}
	ns, err := Build(cfg, Deps{Clock: clk.Now, Renderer: r})
	if err != nil {
		t.Fatal(err)
	}
	s := sampleSummary()
	s.Top = s.Top[:1]
	s.Top[0].TokenName, s.Top[0].OwnerName, s.Top[0].Outcome = evilName, evilOwner, OutcomeWouldApply
	m := SummaryMessage("sec-slack", "run-1", t0, s)
	if retry, err := ns["sec-slack"].Notify(context.Background(), m); err != nil || retry {
		t.Fatalf("Notify = %v, %v", retry, err)
	}
	reqs := rec.requests()
	if len(reqs) != 1 {
		t.Fatalf("slack received %d requests, want 1", len(reqs))
	}
	var got slackMessage
	if err := json.Unmarshal(reqs[0].body, &got); err != nil {
		t.Fatalf("slack received %s: %v", reqs[0].body, err)
	}
	// The notification fallback (top-level text, mrkdwn) carries the custom
	// subject: entities there too; the header block is plain_text.
	if strings.Contains(got.Text, "<") || !strings.HasPrefix(got.Text, "Summary: &lt;!channel&gt; &lt;https://evil.example/keep?t=1&amp;x=2|") {
		t.Errorf("slack fallback text %q", got.Text)
	}
	var sections []string
	for _, b := range got.Blocks {
		if b.Type == "section" && b.Text != nil {
			sections = append(sections, b.Text.Text)
		}
	}
	if len(sections) != 1 {
		t.Fatalf("slack received sections %q, want 1", sections)
	}
	txt := sections[0]
	for _, bad := range []string{"<!channel>", "<https://", "<@U0ADMIN>", "\n•", "&amp;amp;"} {
		if strings.Contains(txt, bad) {
			t.Errorf("slack received %q in:\n%s", bad, txt)
		}
	}
	want := `&lt;!channel&gt; &lt;https://evil.example/keep?t=1&amp;x=2|Keep your token: sign in here&gt;\n• *all tokens deleted* of &lt;@U0ADMIN&gt; R&amp;D (would apply)`
	if txt != want {
		t.Errorf("slack section\n got %q\nwant %q", txt, want)
	}
	// The default template's mrkdwn still escapes once: a name with & is
	// shown as "&", not "&amp;".
	s = sampleSummary()
	s.Top[0].TokenName = "R&D <x>"
	out, err := newTestRenderer(t, clk).Render(SummaryMessage("sec-slack", "run-1", t0, s))
	if err != nil {
		t.Fatal(err)
	}
	if body := string(out.Slack); !strings.Contains(body, `R\u0026amp;D \u0026lt;x\u0026gt;`) || strings.Contains(body, "amp;amp;") {
		t.Errorf("default slack template shows the name escaped other than once: %s", body)
	}
	// The webhook payload and the stored message keep the name as listed.
	if m.Summary.Top[0].TokenName != evilName {
		t.Errorf("rendering changed the message: %q", m.Summary.Top[0].TokenName)
	}
}
