package notify

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteDirRendersEveryMessageDeterministically(t *testing.T) {
	// Secret files that do not exist: a dry run must not need them.
	cfg := Config{
		Receivers: []Receiver{
			{Name: "security-slack", Slack: &SlackConfig{WebhookURLFile: "/nonexistent/slack-url"}},
			{Name: "siem", Webhook: &WebhookConfig{URLFile: "/nonexistent/siem-url", HMACSecretFile: "/nonexistent/hmac"}},
			{Name: "owner-mail", Email: &EmailConfig{Smarthost: "smtp.acme.example:587", From: "patjanitor@acme.example", To: []string{"security@acme.example"}, PasswordFile: "/nonexistent/p", UsernameFile: "/nonexistent/u"}},
		},
		Summary: []string{"security-slack", "siem"}, Owners: "owner-mail", Failures: []string{"security-slack"},
	}
	var msgs []*Message
	for _, r := range cfg.ReceiversFor(KindSummary) {
		msgs = append(msgs, SummaryMessage(r, "run-1", t0, sampleSummary()))
	}
	for _, r := range cfg.ReceiversFor(KindDigest) {
		msgs = append(msgs, DigestMessage(r, "run-1", t0, sampleDigest()))
	}
	for _, r := range cfg.ReceiversFor(KindNotice) {
		msgs = append(msgs, NoticeMessage(r, "run-1", t0, sampleNotice()))
	}
	for _, r := range cfg.ReceiversFor(KindFailure) {
		msgs = append(msgs, FailureMessage(r, "run-1", t0, sampleFailure()))
	}
	msgs = append(msgs, SummaryMessage("owner-mail", "run-1", t0, sampleSummary()))

	r := newTestRenderer(t, newClock())
	dir1, dir2 := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	paths, err := WriteDir(dir1, cfg, r, msgs)
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{
		"001-summary-security-slack.json",
		"002-summary-siem.json",
		"003-digest-owner-mail-o-alice.eml",
		"004-notice-owner-mail-o-bob.eml",
		"005-failure-security-slack.json",
		"006-summary-owner-mail.eml",
	}
	if len(paths) != len(wantNames) {
		t.Fatalf("paths = %v", paths)
	}
	for i, p := range paths {
		if filepath.Base(p) != wantNames[i] {
			t.Errorf("file %d = %s, want %s", i, filepath.Base(p), wantNames[i])
		}
	}
	if _, err := WriteDir(dir2, cfg, r, msgs); err != nil {
		t.Fatal(err)
	}
	for _, n := range wantNames {
		a, _ := os.ReadFile(filepath.Join(dir1, n))
		b, _ := os.ReadFile(filepath.Join(dir2, n))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between two dry runs", n)
		}
	}

	// The Slack file is the payload that would be posted.
	raw, _ := os.ReadFile(paths[0])
	out, _ := r.Render(msgs[0])
	var a, b any
	_ = json.Unmarshal(raw, &a)
	_ = json.Unmarshal(out.Slack, &b)
	if !jsonEqual(a, b) {
		t.Error("slack file is not the Slack payload")
	}
	// The digest mail parses, goes to the owner, has both parts.
	eml, _ := os.ReadFile(paths[2])
	pm := parseMail(t, eml)
	dout, _ := r.Render(msgs[2])
	if !strings.Contains(pm.header.Get("To"), "alice@acme.example") || pm.subject != dout.Subject ||
		strings.ReplaceAll(pm.text, "\r\n", "\n") != dout.Text || strings.ReplaceAll(pm.html, "\r\n", "\n") != dout.HTML {
		t.Errorf("digest eml: to %q subject %q", pm.header.Get("To"), pm.subject)
	}
	// The summary mail goes to the configured list.
	pm = parseMail(t, mustRead(t, paths[5]))
	if !strings.Contains(pm.header.Get("To"), "security@acme.example") {
		t.Errorf("summary eml To = %q", pm.header.Get("To"))
	}

	// A message for a receiver that does not exist is an error.
	if _, err := WriteDir(t.TempDir(), cfg, r, []*Message{TestMessage("ghost", t0)}); err == nil || !strings.Contains(err.Error(), `"ghost"`) {
		t.Errorf("unknown receiver: %v", err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
