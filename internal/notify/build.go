package notify

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/redirect"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// defaultHTTPTimeout bounds one Slack or webhook request when the caller
// gives no client. The dispatcher's context bounds the whole delivery.
const defaultHTTPTimeout = 30 * time.Second

// Deps are what Build needs besides configuration.
type Deps struct {
	// Logger is tagged per receiver; nil means a no-op logger.
	Logger *zap.Logger
	// HTTPClient sends Slack and webhook requests; nil means a new client
	// with a 30s timeout (never http.DefaultClient: no shared state).
	HTTPClient *http.Client
	// Renderer renders messages; nil means NewRenderer with cfg.Templates.
	Renderer *Renderer
	// Getenv reads …Env secrets; nil means os.Getenv.
	Getenv func(string) string
	// Clock stamps webhook signatures and mail dates; nil means time.Now.
	Clock func() time.Time
	// RootCAs, if set, replaces the system roots for SMTP STARTTLS (tests;
	// a receiver's caFile takes precedence).
	RootCAs *x509.CertPool
}

// Build turns configuration into one Notifier per receiver, keyed by name. It
// validates the configuration, reads every secret, and returns all problems
// together. Errors name receivers and files, never secret values.
func Build(cfg Config, deps Deps) (map[string]Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	// Never follow a redirect: the request would carry the signed payload
	// (and a webhook URL's secret query) wherever the Location points.
	deps.HTTPClient = redirect.NoFollow(deps.HTTPClient, defaultHTTPTimeout)
	if deps.Getenv == nil {
		deps.Getenv = os.Getenv
	}
	if deps.Clock == nil {
		deps.Clock = time.Now
	}
	if deps.Renderer == nil {
		r, err := NewRenderer(RenderOptions{Templates: cfg.Templates, Clock: deps.Clock})
		if err != nil {
			return nil, fmt.Errorf("notify templates: %w", err)
		}
		deps.Renderer = r
	}
	src := secretSource{getenv: deps.Getenv}

	// Secrets first, for every receiver, so that each notifier's redactor
	// knows all of them.
	type loaded struct {
		url, key, user, pass secret.Secret
		caPEM                []byte
	}
	var errs []error
	all := make([]loaded, len(cfg.Receivers))
	var secrets []secret.Secret
	for i, r := range cfg.Receivers {
		where := fmt.Sprintf("notify receiver %q", r.Name)
		var l loaded
		var err error
		switch r.Channel() {
		case ChannelSlack:
			if l.url, err = src.load(where+": slack", "webhookUrlFile", r.Slack.WebhookURLFile, "webhookUrlEnv", r.Slack.WebhookURLEnv); err == nil {
				_, err = checkURL(where+": slack webhook", l.url)
			}
			errs = append(errs, err)
		case ChannelWebhook:
			if l.url, err = src.load(where+": webhook", "urlFile", r.Webhook.URLFile, "urlEnv", r.Webhook.URLEnv); err == nil {
				_, err = checkURL(where+": webhook", l.url)
			}
			errs = append(errs, err)
			l.key, err = src.load(where+": webhook", "hmacSecretFile", r.Webhook.HMACSecretFile, "hmacSecretEnv", r.Webhook.HMACSecretEnv)
			if err == nil && len(l.key.Reveal()) < minHMACKeyLen {
				err = fmt.Errorf("%s: webhook HMAC secret is shorter than %d bytes", where, minHMACKeyLen)
			}
			errs = append(errs, err)
		case ChannelEmail:
			l.user, err = src.load(where+": email", "usernameFile", r.Email.UsernameFile, "usernameEnv", r.Email.UsernameEnv)
			errs = append(errs, err)
			l.pass, err = src.load(where+": email", "passwordFile", r.Email.PasswordFile, "passwordEnv", r.Email.PasswordEnv)
			errs = append(errs, err)
			if r.Email.CAFile != "" {
				l.caPEM, err = readCAFile(r.Email.CAFile)
				if err != nil {
					err = fmt.Errorf("%s: email: %w", where, err)
				}
				errs = append(errs, err)
			}
		}
		all[i] = l
		// The SMTP user name travels with the password in AUTH PLAIN's
		// base64; a server that quotes that line back quotes both.
		secrets = append(secrets, l.url, l.key, l.user, l.pass, secret.SMTPPlain(l.user, l.pass))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	red := newRedactor(secrets...)

	out := make(map[string]Notifier, len(cfg.Receivers))
	for i, r := range cfg.Receivers {
		l := all[i]
		logger := deps.Logger.Named("notify").With(zap.String("receiver", r.Name), zap.String("channel", string(r.Channel())))
		switch r.Channel() {
		case ChannelSlack:
			out[r.Name] = &Slack{name: r.Name, url: l.url, client: deps.HTTPClient, renderer: deps.Renderer, redact: red, clock: deps.Clock, logger: logger}
		case ChannelWebhook:
			out[r.Name] = &Webhook{name: r.Name, url: l.url, key: l.key, client: deps.HTTPClient, renderer: deps.Renderer, redact: red, clock: deps.Clock, logger: logger}
		case ChannelEmail:
			n, err := newEmail(r.Name, r.Email, l.user, l.pass, l.caPEM, deps, red, logger)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out[r.Name] = n
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func newEmail(name string, c *EmailConfig, user, pass secret.Secret, caPEM []byte, deps Deps, red *redactor, logger *zap.Logger) (*Email, error) {
	host, port, err := splitHostPort(c.Smarthost)
	if err != nil {
		return nil, fmt.Errorf("notify receiver %q: email smarthost: %w", name, err)
	}
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, RootCAs: deps.RootCAs}
	if len(caPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("notify receiver %q: email caFile %s holds no PEM certificate", name, c.CAFile)
		}
		tc.RootCAs = pool
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = defaultEmailTimeout
	}
	return &Email{
		name: name, host: host, port: port, from: c.From, to: append([]string(nil), c.To...), hello: c.Hello,
		username: user, password: pass, requireTLS: c.requireTLS(), tlsConfig: tc, timeout: timeout,
		renderer: deps.Renderer, redact: red, clock: deps.Clock, logger: logger,
	}, nil
}
