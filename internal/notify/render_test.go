package notify

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	items := []SummaryItem{
		{Policy: "b", Action: "delete", Outcome: OutcomeApplied},
		{Policy: "a", Action: "patch", Outcome: OutcomeWouldApply},
		{Policy: "b", Action: "delete", Outcome: OutcomePending},
		{Policy: "b", Action: "delete", Outcome: OutcomeFailed},
		{Policy: "b", Action: "delete", Outcome: OutcomeAlreadyGone},
		{Policy: "b", Action: "report", Outcome: OutcomeSkipped},
	}
	rows, top, more := Summarize(items, 4)
	want := []SummaryRow{
		{Policy: "a", Action: "patch", Matched: 1, WouldApply: 1},
		{Policy: "b", Action: "delete", Matched: 4, Applied: 2, Pending: 1, Failed: 1},
		{Policy: "b", Action: "report", Matched: 1, Skipped: 1},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows = %+v", rows)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
	if len(top) != 4 || more != 2 || top[0].Policy != "b" {
		t.Errorf("top = %d items, more = %d", len(top), more)
	}
	s := Summary{Rows: rows}
	if tot := s.Totals(); tot.Matched != 6 || tot.Applied != 2 {
		t.Errorf("totals = %+v", tot)
	}
	if _, top, more := Summarize(items, 10); len(top) != 6 || more != 0 {
		t.Errorf("top all = %d, %d", len(top), more)
	}
}

func TestDigestDeadlineIsDeliveryTimePlusGrace(t *testing.T) {
	clk := newClock()
	r := newTestRenderer(t, clk)
	m := DigestMessage("mail", "run-1", t0, sampleDigest())
	out, err := r.Render(m)
	if err != nil {
		t.Fatal(err)
	}
	// Item 1 was warned: its deadline is fixed. Item 2 was not: rendering
	// (= sending) at t0 gives t0 + 14d.
	if !strings.Contains(out.Text, "deadline: not before 2026-12-09 03:00 UTC") || !strings.Contains(out.Text, "deadline: not before 2026-12-10 03:00 UTC") {
		t.Errorf("text deadlines:\n%s", out.Text)
	}
	// The same message sent three days later (it waited in the outbox).
	clk.Advance(72 * time.Hour)
	out, _ = r.Render(m)
	if !strings.Contains(out.Text, "not before 2026-12-09 03:00 UTC") || !strings.Contains(out.Text, "not before 2026-12-13 03:00 UTC") {
		t.Errorf("text deadlines after 3 days:\n%s", out.Text)
	}
	if m.Digest.Items[1].Deadline != nil {
		t.Error("Render modified the message")
	}
	var body webhookBody
	if err := json.Unmarshal(out.Webhook, &body); err != nil {
		t.Fatal(err)
	}
	if d := body.Digest.Items[1].Deadline; d == nil || !d.Equal(t0.Add(17*24*time.Hour)) {
		t.Errorf("webhook deadline = %v", d)
	}
	for _, want := range []string{
		"patjanitor snooze 2c9180835d2e5168015d32f890ca1584 --for 30d --reason",
		"ask iam-team@acme.example for a snooze",
		"use it",
		"old-report",
		"never used; created 2026-01-02T10:00:00.000Z",
	} {
		if !strings.Contains(out.Text, want) {
			t.Errorf("digest text lacks %q", want)
		}
		if !strings.Contains(out.HTML, want) {
			t.Errorf("digest html lacks %q", want)
		}
	}
	for _, want := range []string{"policy:   unused-90d", "action:   delete", "reason:   never used"} {
		if !strings.Contains(out.Text, want) {
			t.Errorf("digest text lacks %q", want)
		}
	}
	if out.Subject != "[patjanitor] Action needed: 2 personal access tokens of yours on https://acme.api.identitynow.com, earliest action 2026-12-09" {
		t.Errorf("subject = %q", out.Subject)
	}
}

func TestRenderEscapesUserControlledText(t *testing.T) {
	r := newTestRenderer(t, newClock())
	d := sampleDigest()
	d.Items[0].TokenName = "<!channel> <script>alert(1)</script> & co"
	out, err := r.Render(DigestMessage("x", "run-1", t0, d))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.HTML, "<script>") || !strings.Contains(out.HTML, "&lt;script&gt;") {
		t.Errorf("HTML not escaped:\n%s", out.HTML)
	}
	var slack slackMessage
	if err := json.Unmarshal(out.Slack, &slack); err != nil {
		t.Fatal(err)
	}
	for _, b := range slack.Blocks {
		if b.Text != nil && b.Type == "section" && (strings.Contains(b.Text.Text, "<!channel>") || !strings.Contains(b.Text.Text, "&lt;!channel&gt; &lt;script&gt;alert(1)&lt;/script&gt; &amp; co")) {
			t.Errorf("slack mrkdwn not escaped: %q", b.Text.Text)
		}
	}
}

func TestSubjectIsOneLine(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "subject.tmpl")
	if err := os.WriteFile(p, []byte("Line one\nline {{.Receiver}}\r\n\tthree\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := NewRenderer(RenderOptions{Templates: Templates{Test: TemplateFiles{Subject: p}}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.Render(TestMessage("rcv", t0))
	if err != nil {
		t.Fatal(err)
	}
	if out.Subject != "Line one line rcv three" {
		t.Errorf("subject = %q", out.Subject)
	}
}

func TestTemplateOverrides(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "digest.txt")
	html := filepath.Join(dir, "digest.html")
	_ = os.WriteFile(text, []byte("Custom for {{.Digest.Owner.Name}}: {{len .Digest.Items}} tokens"), 0o600)
	_ = os.WriteFile(html, []byte("<b>{{.Digest.Owner.Name}}</b>"), 0o600)
	r, err := NewRenderer(RenderOptions{Clock: newClock().Now, Templates: Templates{Digest: TemplateFiles{Text: text, HTML: html}}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.Render(DigestMessage("x", "r", t0, sampleDigest()))
	if err != nil {
		t.Fatal(err)
	}
	if out.Text != "Custom for Alice Example: 2 tokens\n" || out.HTML != "<b>Alice Example</b>\n" {
		t.Errorf("overrides not used: %q %q", out.Text, out.HTML)
	}
	if !strings.HasPrefix(out.Subject, "[patjanitor] Action needed") {
		t.Errorf("default subject not kept: %q", out.Subject)
	}

	bad := filepath.Join(dir, "bad.tmpl")
	_ = os.WriteFile(bad, []byte("{{.Digest.Owner.Name"), 0o600)
	_, err = NewRenderer(RenderOptions{Templates: Templates{Summary: TemplateFiles{Slack: bad}, Notice: TemplateFiles{Text: filepath.Join(dir, "missing")}}})
	if err == nil || !strings.Contains(err.Error(), "bad.tmpl") || !strings.Contains(err.Error(), "missing") {
		t.Errorf("bad templates error = %v", err)
	}

	// A template that refers to a field that does not exist fails at
	// render time with a template reason, not with a half-written message.
	odd := filepath.Join(dir, "odd.tmpl")
	_ = os.WriteFile(odd, []byte("{{.Digest.NoSuchField}}"), 0o600)
	r, err = NewRenderer(RenderOptions{Templates: Templates{Digest: TemplateFiles{Text: odd}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Render(DigestMessage("x", "r", t0, sampleDigest())); err == nil {
		t.Error("render with a bad field succeeded")
	}
}

func TestSlackPayloadRespectsBlockKitLimits(t *testing.T) {
	s := sampleSummary()
	item := s.Top[0]
	item.Reason = strings.Repeat("long reason ", 40)
	s.Top = nil
	for i := 0; i < 2000; i++ {
		s.Top = append(s.Top, item)
	}
	out, err := newTestRenderer(t, newClock()).Render(SummaryMessage("x", "run-1", t0, s))
	if err != nil {
		t.Fatal(err)
	}
	var msg slackMessage
	if err := json.Unmarshal(out.Slack, &msg); err != nil {
		t.Fatal(err)
	}
	if len(msg.Blocks) > slackMaxBlocks {
		t.Errorf("%d blocks", len(msg.Blocks))
	}
	for _, b := range msg.Blocks {
		if b.Text != nil && len(b.Text.Text) > slackSectionMax {
			t.Errorf("%s block of %d chars", b.Type, len(b.Text.Text))
		}
	}
	last := msg.Blocks[len(msg.Blocks)-2]
	if !strings.Contains(last.Text.Text, "more sections not shown") {
		t.Errorf("truncation not reported: %q", last.Text.Text)
	}
}

func TestMessageValidateAndIdentity(t *testing.T) {
	m := DigestMessage("mail", "run-1", t0, sampleDigest())
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if m.ID != "digest/mail/o-alice" || m.OwnerID() != "o-alice" || len(m.To) != 1 || m.To[0] != "alice@acme.example" {
		t.Errorf("digest message = %+v", m)
	}
	if keys := m.MarkKeys(); len(keys) != 2 || keys[1].TokenID != "2c9180835d2e5168015d32f890ca1584" || keys[1].Policy != "unused-90d" {
		t.Errorf("mark keys = %+v", keys)
	}
	// The fingerprint ignores order and text, and changes with the marks.
	d2 := sampleDigest()
	d2.Items[0], d2.Items[1] = d2.Items[1], d2.Items[0]
	d2.Items[0].Reason = "reworded"
	if fp := DigestMessage("mail", "run-2", t0, d2).Fingerprint(); fp != m.Fingerprint() {
		t.Error("fingerprint depends on order or reason text")
	}
	d2.Items[0].MarkedAt = d2.Items[0].MarkedAt.Add(time.Hour)
	if DigestMessage("mail", "run-2", t0, d2).Fingerprint() == m.Fingerprint() {
		t.Error("re-marking did not change the fingerprint")
	}
	if SummaryMessage("s", "r", t0, Summary{}).Fingerprint() != "" {
		t.Error("summary has a fingerprint")
	}

	bad := []*Message{
		{ID: "x", Kind: KindDigest, Receiver: "r", Digest: &Digest{Owner: Owner{ID: "o"}}},                                                   // no items
		{ID: "x", Kind: KindSummary, Receiver: "r", Digest: &Digest{}},                                                                       // wrong content
		{ID: "x", Kind: KindSummary, Receiver: "r", Summary: &Summary{}, Test: &Test{}},                                                      // two contents
		{ID: "", Kind: KindTest, Receiver: "r", Test: &Test{}},                                                                               // no id
		{ID: "x", Kind: "bogus", Receiver: "r"},                                                                                              // unknown kind
		{ID: "x", Kind: KindNotice, Receiver: "r", Notice: &Notice{Owner: Owner{Email: "a@b.example"}, Items: []NoticeItem{{TokenID: "t"}}}}, // no owner id, a person's address
		{ID: "x", Kind: KindFailure, Receiver: "", Failure: &Failure{}},                                                                      // no receiver
		{ID: "x", Kind: KindNotice, Receiver: "r", Notice: &Notice{Owner: Owner{ID: "o"}, Items: []NoticeItem{}}},                            // no items
	}
	for i, b := range bad {
		if err := b.Validate(); err == nil {
			t.Errorf("bad[%d] validated", i)
		}
	}
	// A token listed without an owner id (the API makes it optional): its
	// messages go to the fallback, or to the receiver's own recipients.
	for i, o := range []Owner{{Email: "iam@acme.example", Fallback: true}, {}} {
		if err := NoticeMessage("r", "run", t0, Notice{Owner: o, Items: []NoticeItem{{TokenID: "t"}}}).Validate(); err != nil {
			t.Errorf("ownerless[%d]: %v", i, err)
		}
	}
}

func TestMessageJSONRoundTrip(t *testing.T) {
	for _, m := range sampleMessages("r") {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var back Message
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		b2, _ := json.Marshal(&back)
		if string(b) != string(b2) {
			t.Errorf("%s does not round-trip:\n%s\n%s", m.Kind, b, b2)
		}
	}
}

// A notice about tokens listed without an owner id goes to the fallback
// address: it says why, without an empty "()" where the id would be.
func TestOwnerlessNoticeSaysWhyTheFallbackGetsIt(t *testing.T) {
	r := newTestRenderer(t, newClock())
	n := Notice{Tenant: "acme", Owner: Owner{Name: "(no owner listed)", Email: "iam@acme.example", Fallback: true},
		Items: []NoticeItem{{TokenID: "tok-none", TokenName: "orphan", Policy: "p", Action: "delete", Outcome: OutcomeApplied, At: t0}}}
	out, err := r.Render(NoticeMessage("mail", "run-1", t0, n))
	if err != nil {
		t.Fatal(err)
	}
	const why = "the tenant lists these tokens without an owner id"
	if !strings.Contains(out.Text, why) || strings.Contains(out.Text, "()") || !strings.Contains(out.HTML, why) || !strings.Contains(string(out.Slack), "no owner id listed") {
		t.Errorf("text:\n%s\nhtml:\n%s\nslack:\n%s", out.Text, out.HTML, out.Slack)
	}
}
