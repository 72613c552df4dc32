package notify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateReportsEveryProblem(t *testing.T) {
	f := false
	cfg := Config{
		Receivers: []Receiver{
			{Name: "a", Slack: &SlackConfig{WebhookURLFile: "/x", WebhookURLEnv: "X"}},
			{Name: "a", Webhook: &WebhookConfig{URLFile: "/u"}},
			{Name: "both", Slack: &SlackConfig{WebhookURLFile: "/x"}, Email: &EmailConfig{}},
			{Name: ""},
			{Name: "mail", Email: &EmailConfig{Smarthost: "smtp.acme.example:587", From: "not an address", To: []string{"ok@acme.example", "bad"}, RequireTLS: &f, UsernameFile: "/u"}},
			{Name: "mail2", Email: &EmailConfig{Smarthost: "smtp.acme.example", From: "p@acme.example"}},
		},
		Summary:        []string{"a", "missing"},
		Owners:         "nobody",
		Failures:       []string{"ghost"},
		DigestInterval: -1,
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{
		`notify.receivers[0] "a": slack: at most one of webhookUrlFile and webhookUrlEnv`,
		`notify.receivers[1] "a": duplicate receiver name`,
		`notify.receivers[1] "a": webhook: one of hmacSecretFile or hmacSecretEnv is required`,
		`notify.receivers[2] "both": exactly one of slack, webhook, email is required`,
		`notify.receivers[3]: name is required`,
		`notify.receivers[4] "mail": email: from "not an address"`,
		`notify.receivers[4] "mail": email: to[1] "bad"`,
		`notify.receivers[4] "mail": email: a username and a password go together`,
		`notify.receivers[4] "mail": email: requireTLS: false is allowed only for a loopback smarthost, not smtp.acme.example`,
		`notify.receivers[5] "mail2": email: smarthost: "smtp.acme.example" is not host:port`,
		`notify.summary[1]: no receiver named "missing"`,
		`notify.owners: no receiver named "nobody"`,
		`notify.failures[0]: no receiver named "ghost"`,
		`notify.digestInterval: must not be negative`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q", want)
		}
	}
	if t.Failed() {
		t.Logf("errors:\n%v", err)
	}
}

func TestValidateAcceptsDesignExample(t *testing.T) {
	f := false
	cfg := Config{
		Receivers: []Receiver{
			{Name: "security-slack", Slack: &SlackConfig{WebhookURLFile: "/run/secrets/patjanitor/slack-url"}},
			{Name: "siem", Webhook: &WebhookConfig{URLFile: "/run/secrets/patjanitor/siem-url", HMACSecretFile: "/run/secrets/patjanitor/siem-hmac"}},
			{Name: "owner-mail", Email: &EmailConfig{Smarthost: "smtp.acme.com:587", From: "patjanitor@acme.com", UsernameFile: "/u", PasswordFile: "/p"}},
			{Name: "local-relay", Email: &EmailConfig{Smarthost: "127.0.0.1:25", From: "Patjanitor <patjanitor@acme.com>", RequireTLS: &f}},
			{Name: "local-relay6", Email: &EmailConfig{Smarthost: "[::1]:25", From: "patjanitor@acme.com", RequireTLS: &f}},
		},
		Summary: []string{"security-slack", "siem"}, Owners: "owner-mail", Failures: []string{"security-slack"},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := cfg.ReceiversFor(KindDigest); len(got) != 1 || got[0] != "owner-mail" {
		t.Errorf("digest receivers = %v", got)
	}
	if got := cfg.ReceiversFor(KindSummary); len(got) != 2 {
		t.Errorf("summary receivers = %v", got)
	}
	if got := cfg.ReceiversFor(KindTest); got != nil {
		t.Errorf("test receivers = %v", got)
	}
}

func TestBuildReadsSecretsFromFilesAndEnvironment(t *testing.T) {
	env := map[string]string{"SLACK_URL": "https://hooks.slack.example/services/T1/B1/abcdefSECRET", "HMAC": "0123456789abcdef-key"}
	cfg := Config{Receivers: []Receiver{
		{Name: "s", Slack: &SlackConfig{WebhookURLEnv: "SLACK_URL"}},
		{Name: "w", Webhook: &WebhookConfig{URLFile: writeSecret(t, "u", "https://siem.example/in?token=abcdef123456"), HMACSecretEnv: "HMAC"}},
		{Name: "e", Email: &EmailConfig{Smarthost: "smtp.example:587", From: "p@example.com", UsernameFile: writeSecret(t, "user", "u"), PasswordEnv: "HMAC"}},
	}}
	ns, err := Build(cfg, Deps{Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ns["s"].(*Slack); !ok {
		t.Errorf("s is %T", ns["s"])
	}
	if _, ok := ns["w"].(*Webhook); !ok {
		t.Errorf("w is %T", ns["w"])
	}
	if e, ok := ns["e"].(*Email); !ok || e.host != "smtp.example" || e.port != 587 || !e.requireTLS {
		t.Errorf("e = %+v", ns["e"])
	}
}

func TestBuildErrorsNameTheSourceNotTheSecret(t *testing.T) {
	dir := t.TempDir()
	insecure := writeSecret(t, "insecure", "http://hooks.example.com/services/T/B/NOTLOOPBACKSECRET")
	ftp := writeSecret(t, "ftp", "ftp://files.example.com/FTPSECRETVALUE")
	garbage := writeSecret(t, "garbage", "ht!tp://%%zz GARBAGESECRET")
	short := writeSecret(t, "short", "tooshort")
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	cfg := Config{Receivers: []Receiver{
		{Name: "r1", Slack: &SlackConfig{WebhookURLFile: insecure}},
		{Name: "r2", Slack: &SlackConfig{WebhookURLFile: ftp}},
		{Name: "r3", Slack: &SlackConfig{WebhookURLFile: garbage}},
		{Name: "r4", Webhook: &WebhookConfig{URLFile: filepath.Join(dir, "absent"), HMACSecretFile: short}},
		{Name: "r5", Slack: &SlackConfig{WebhookURLEnv: "UNSET_VAR"}},
		{Name: "r6", Slack: &SlackConfig{WebhookURLFile: empty}},
		{Name: "r7", Email: &EmailConfig{Smarthost: "smtp.example:25", From: "a@example.com", CAFile: filepath.Join(dir, "ca.pem")}},
	}}
	_ = os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("not pem"), 0o600)
	_, err := Build(cfg, Deps{Getenv: func(string) string { return "" }})
	if err == nil {
		t.Fatal("Build accepted bad secrets")
	}
	msg := err.Error()
	for _, want := range []string{
		`notify receiver "r1": slack webhook: URL scheme must be https (http only for a loopback host)`,
		`notify receiver "r2": slack webhook: URL scheme must be https`,
		`notify receiver "r3": slack webhook: not a valid URL`,
		`notify receiver "r4": webhook: urlFile: read secret file`,
		`notify receiver "r4": webhook HMAC secret is shorter than 16 bytes`,
		`notify receiver "r5": slack: webhookUrlEnv: environment variable UNSET_VAR is empty or unset`,
		`notify receiver "r6": slack: webhookUrlFile: secret file ` + empty + ` is empty`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q", want)
		}
	}
	for _, leak := range []string{"NOTLOOPBACKSECRET", "FTPSECRETVALUE", "GARBAGESECRET", "tooshort", "hooks.example.com", "files.example.com"} {
		if strings.Contains(msg, leak) {
			t.Errorf("error leaks %q", leak)
		}
	}
	if t.Failed() {
		t.Logf("errors:\n%v", err)
	}
	// The CA file problem is reported once the secrets are fine.
	_, err = Build(Config{Receivers: cfg.Receivers[6:]}, Deps{})
	if err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("bad caFile: %v", err)
	}
}
