package notify

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/patjanitor/patjanitor/internal/secret"
)

// Config mirrors the `notify:` section of policies.yaml. The policy package
// parses the YAML; an adapter copies it into these plain types. No secret is
// accepted inline: each one names a file (…File) or an environment variable
// (…Env).
type Config struct {
	Receivers []Receiver
	Summary   []string // receivers of the run summary
	Owners    string   // receiver of owner digests and notices ("" = none)
	Failures  []string // receivers of failure alerts
	// DigestInterval: a digest with the same marks as the owner's last
	// delivered one is not sent again within this interval. 0 means
	// DefaultDigestInterval.
	DigestInterval time.Duration
	Templates      Templates
}

// DefaultDigestInterval is one week: a reminder per week is what people
// tolerate for a warning they already got.
const DefaultDigestInterval = 7 * 24 * time.Hour

// Receiver is a named destination with exactly one channel.
type Receiver struct {
	Name    string
	Slack   *SlackConfig
	Webhook *WebhookConfig
	Email   *EmailConfig
}

// SlackConfig is a Slack incoming webhook.
type SlackConfig struct {
	WebhookURLFile string // file holding the webhook URL
	WebhookURLEnv  string // or: environment variable holding it
}

// WebhookConfig is a generic JSON webhook, signed with HMAC-SHA256.
type WebhookConfig struct {
	URLFile        string
	URLEnv         string
	HMACSecretFile string
	HMACSecretEnv  string
}

// EmailConfig is an SMTP smarthost.
type EmailConfig struct {
	Smarthost string   // host:port
	From      string   // sender address
	To        []string // recipients of summaries and failures; owner messages go to the owner
	// Hello is the EHLO name; "" means the local host name.
	Hello        string
	UsernameFile string
	UsernameEnv  string
	PasswordFile string
	PasswordEnv  string
	// RequireTLS (default true) makes STARTTLS mandatory. false is accepted
	// only for a loopback smarthost (a local relay), and then STARTTLS is
	// still used when offered.
	RequireTLS *bool
	// CAFile is a PEM bundle to trust instead of the system roots (a
	// private mail relay).
	CAFile string
	// Timeout bounds one delivery; 0 means 30s.
	Timeout time.Duration
}

// Templates replaces the embedded templates: each path, if set, is read
// instead of the default for that part.
type Templates struct {
	Summary, Digest, Notice, Failure, Test TemplateFiles
}

// TemplateFiles are the template files of one kind of message.
type TemplateFiles struct {
	// Subject and Text see every string of the message with control
	// characters and bidi overrides as visible escapes (one line each).
	Subject string // text/template, one line
	Text    string // text/template, the plain-text email body
	HTML    string // html/template, the HTML email body
	Slack   string // text/template, Slack mrkdwn
}

func (t Templates) forKind(k Kind) TemplateFiles {
	switch k {
	case KindSummary:
		return t.Summary
	case KindDigest:
		return t.Digest
	case KindNotice:
		return t.Notice
	case KindFailure:
		return t.Failure
	case KindTest:
		return t.Test
	}
	return TemplateFiles{}
}

// Channel names a receiver's channel.
type Channel string

// The channels.
const (
	ChannelSlack   Channel = "slack"
	ChannelWebhook Channel = "webhook"
	ChannelEmail   Channel = "email"
)

// Channel returns the receiver's channel, or "" if it has none or several.
func (r Receiver) Channel() Channel {
	n := 0
	var c Channel
	if r.Slack != nil {
		n, c = n+1, ChannelSlack
	}
	if r.Webhook != nil {
		n, c = n+1, ChannelWebhook
	}
	if r.Email != nil {
		n, c = n+1, ChannelEmail
	}
	if n != 1 {
		return ""
	}
	return c
}

// Receiver returns the named receiver.
func (c Config) Receiver(name string) (Receiver, bool) {
	for _, r := range c.Receivers {
		if r.Name == name {
			return r, true
		}
	}
	return Receiver{}, false
}

// Validate checks the configuration without reading any secret (so
// `patjanitor validate` works where the secrets are not mounted). All
// problems are returned together.
func (c Config) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, r := range c.Receivers {
		where := fmt.Sprintf("notify.receivers[%d] %q", i, r.Name)
		if r.Name == "" {
			errs = append(errs, fmt.Errorf("notify.receivers[%d]: name is required", i))
		} else if seen[r.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate receiver name", where))
		}
		seen[r.Name] = true
		switch r.Channel() {
		case "":
			errs = append(errs, fmt.Errorf("%s: exactly one of slack, webhook, email is required", where))
		case ChannelSlack:
			errs = append(errs, oneOf(where+": slack", "webhookUrlFile", r.Slack.WebhookURLFile, "webhookUrlEnv", r.Slack.WebhookURLEnv, true))
		case ChannelWebhook:
			errs = append(errs,
				oneOf(where+": webhook", "urlFile", r.Webhook.URLFile, "urlEnv", r.Webhook.URLEnv, true),
				oneOf(where+": webhook", "hmacSecretFile", r.Webhook.HMACSecretFile, "hmacSecretEnv", r.Webhook.HMACSecretEnv, true))
		case ChannelEmail:
			errs = append(errs, r.Email.validate(where+": email"))
		}
	}
	route := func(field, name string) {
		if _, ok := c.Receiver(name); !ok {
			errs = append(errs, fmt.Errorf("notify.%s: no receiver named %q", field, name))
		}
	}
	for i, n := range c.Summary {
		route(fmt.Sprintf("summary[%d]", i), n)
	}
	for i, n := range c.Failures {
		route(fmt.Sprintf("failures[%d]", i), n)
	}
	if c.Owners != "" {
		route("owners", c.Owners)
	}
	if c.DigestInterval < 0 {
		errs = append(errs, fmt.Errorf("notify.digestInterval: must not be negative"))
	}
	return errors.Join(errs...)
}

func oneOf(where, fileKey, file, envKey, env string, required bool) error {
	switch {
	case file != "" && env != "":
		return fmt.Errorf("%s: at most one of %s and %s", where, fileKey, envKey)
	case required && file == "" && env == "":
		return fmt.Errorf("%s: one of %s or %s is required (secrets are never inline)", where, fileKey, envKey)
	}
	return nil
}

func (e *EmailConfig) validate(where string) error {
	var errs []error
	host, port, err := splitHostPort(e.Smarthost)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: smarthost: %w", where, err))
	}
	if _, err := mail.ParseAddress(e.From); err != nil {
		errs = append(errs, fmt.Errorf("%s: from %q: %w", where, e.From, err))
	}
	for i, to := range e.To {
		if _, err := mail.ParseAddress(to); err != nil {
			errs = append(errs, fmt.Errorf("%s: to[%d] %q: %w", where, i, to, err))
		}
	}
	errs = append(errs,
		oneOf(where, "usernameFile", e.UsernameFile, "usernameEnv", e.UsernameEnv, false),
		oneOf(where, "passwordFile", e.PasswordFile, "passwordEnv", e.PasswordEnv, false))
	hasUser := e.UsernameFile != "" || e.UsernameEnv != ""
	hasPass := e.PasswordFile != "" || e.PasswordEnv != ""
	if hasUser != hasPass {
		errs = append(errs, fmt.Errorf("%s: a username and a password go together", where))
	}
	if !e.requireTLS() && err == nil && !isLoopback(host) {
		errs = append(errs, fmt.Errorf("%s: requireTLS: false is allowed only for a loopback smarthost, not %s", where, host))
	}
	_ = port
	if e.Timeout < 0 {
		errs = append(errs, fmt.Errorf("%s: timeout must not be negative", where))
	}
	return errors.Join(errs...)
}

func (e *EmailConfig) requireTLS() bool { return e.RequireTLS == nil || *e.RequireTLS }

func splitHostPort(hp string) (string, int, error) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port: %w", hp, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("%q: bad port", hp)
	}
	if host == "" {
		return "", 0, fmt.Errorf("%q: empty host", hp)
	}
	return host, port, nil
}

// isLoopback reports whether host is localhost or a loopback IP. Names other
// than "localhost" are not resolved: a DNS answer must not be able to turn
// TLS off.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// secretSource reads secrets from files or the environment.
type secretSource struct {
	getenv func(string) string
}

func (s secretSource) load(where, fileKey, file, envKey, env string) (secret.Secret, error) {
	switch {
	case file != "":
		v, err := secret.FromFile(file)
		if err != nil {
			return secret.Secret{}, fmt.Errorf("%s: %s: %w", where, fileKey, err)
		}
		return v, nil
	case env != "":
		v := strings.TrimSpace(s.getenv(env))
		if v == "" {
			return secret.Secret{}, fmt.Errorf("%s: %s: environment variable %s is empty or unset", where, envKey, env)
		}
		return secret.New(v), nil
	}
	return secret.Secret{}, nil
}

// checkURL validates a secret URL without ever printing it: https, or http
// only for a loopback host (tests, a local relay).
func checkURL(where string, s secret.Secret) (*url.URL, error) {
	u, err := url.Parse(s.Reveal())
	if err != nil {
		// url.Parse errors quote the input: do not wrap them.
		return nil, fmt.Errorf("%s: not a valid URL", where)
	}
	switch {
	case u.Host == "":
		return nil, fmt.Errorf("%s: URL has no host", where)
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return nil, fmt.Errorf("%s: URL scheme must be https (http only for a loopback host)", where)
	}
	return u, nil
}

func readCAFile(path string) ([]byte, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("read caFile: %w", err)
	}
	return b, nil
}
