package notify

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/secret"
)

// defaultEmailTimeout bounds one SMTP delivery (connect, STARTTLS, AUTH,
// DATA) when the config sets none.
const defaultEmailTimeout = 30 * time.Second

// Email sends mail through an SMTP smarthost with github.com/wneessen/go-mail.
type Email struct {
	name       string
	host       string
	port       int
	from       string
	to         []string
	hello      string
	username   secret.Secret
	password   secret.Secret
	requireTLS bool
	tlsConfig  *tls.Config
	timeout    time.Duration
	renderer   *Renderer
	redact     *redactor
	clock      func() time.Time
	logger     *zap.Logger
}

var _ Notifier = (*Email)(nil)

// Notify implements Notifier.
func (e *Email) Notify(ctx context.Context, m *Message) (bool, error) {
	out, err := e.renderer.Render(e.redact.message(m))
	if err != nil {
		return false, e.redact.newError(e.name, ReasonTemplate, false, 0, err, "render")
	}
	out.Subject, out.Text, out.HTML = e.redact.scrub(out.Subject), e.redact.scrub(out.Text), e.redact.scrub(out.HTML)
	to := recipients(m, e.to)
	if len(to) == 0 {
		return false, e.redact.newError(e.name, ReasonConfig, false, 0, nil, "message %s has no recipient (no owner email and no fallback, and no `to` configured)", m.ID)
	}
	msg, err := buildMail(e.from, to, out, m, e.clock())
	if err != nil {
		return false, e.redact.newError(e.name, ReasonConfig, false, 0, err, "build mail")
	}
	client, err := e.client()
	if err != nil {
		return false, e.redact.newError(e.name, ReasonConfig, false, 0, err, "smtp client")
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		ee := e.classify(ctx, err)
		return ee.Retryable, ee
	}
	e.logger.Debug("mail sent", zap.String("message_id", m.ID), zap.Int("recipients", len(to)))
	return false, nil
}

func recipients(m *Message, configured []string) []string {
	if len(m.To) > 0 {
		return m.To
	}
	return configured
}

func (e *Email) client() (*gomail.Client, error) {
	policy := gomail.TLSMandatory
	if !e.requireTLS {
		// Loopback only (Validate): use STARTTLS when offered.
		policy = gomail.TLSOpportunistic
	}
	opts := []gomail.Option{
		gomail.WithPort(e.port),
		gomail.WithTLSPolicy(policy),
		gomail.WithTLSConfig(e.tlsConfig),
		gomail.WithTimeout(e.timeout),
	}
	if e.hello != "" {
		opts = append(opts, gomail.WithHELO(e.hello))
	}
	if !e.username.IsZero() {
		auth := gomail.SMTPAuthAutoDiscover
		if !e.requireTLS {
			// Auto-discovery refuses PLAIN without TLS; go-mail's PLAIN
			// still sends credentials in clear only to localhost.
			auth = gomail.SMTPAuthPlain
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(e.username.Reveal()), gomail.WithPassword(e.password.Reveal()))
	}
	return gomail.NewClient(e.host, opts...)
}

// classify maps a go-mail error to a Reason. SMTP 4xx replies are transient
// by definition (RFC 5321), 5xx are not; authentication and TLS problems will
// not fix themselves; network errors are retried.
func (e *Email) classify(ctx context.Context, err error) *Error {
	if ctx.Err() != nil {
		return e.redact.newError(e.name, ReasonCanceled, true, 0, err, "smtp delivery canceled or timed out")
	}
	var se *gomail.SendError
	if errors.As(err, &se) {
		if se.IsTemp() {
			return e.redact.newError(e.name, ReasonServerError, true, se.ErrorCode(), err, "smtp")
		}
		if se.ErrorCode() == 0 {
			return e.redact.newError(e.name, ReasonConnection, true, 0, err, "smtp")
		}
		return e.redact.newError(e.name, ReasonRejected, false, se.ErrorCode(), err, "smtp")
	}
	var tpe *textproto.Error
	if errors.As(err, &tpe) {
		switch {
		case tpe.Code == 530 || tpe.Code == 534 || tpe.Code == 535:
			return e.redact.newError(e.name, ReasonAuth, false, tpe.Code, err, "smtp authentication")
		case tpe.Code >= 400 && tpe.Code < 500:
			return e.redact.newError(e.name, ReasonServerError, true, tpe.Code, err, "smtp")
		default:
			return e.redact.newError(e.name, ReasonRejected, false, tpe.Code, err, "smtp")
		}
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	if errors.As(err, &certErr) || errors.As(err, &unknownAuth) || errors.As(err, &hostErr) {
		return e.redact.newError(e.name, ReasonTLS, false, 0, err, "smtp TLS")
	}
	// go-mail reports a missing STARTTLS with a plain error: match its text.
	if strings.Contains(err.Error(), "STARTTLS") {
		return e.redact.newError(e.name, ReasonTLS, false, 0, err, "smtp TLS required")
	}
	if strings.Contains(err.Error(), "SMTP AUTH") {
		return e.redact.newError(e.name, ReasonAuth, false, 0, err, "smtp authentication")
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return e.redact.newError(e.name, ReasonConnection, true, 0, err, "smtp")
	}
	return e.redact.newError(e.name, ReasonConnection, true, 0, err, "smtp")
}

// buildMail assembles the multipart/alternative mail (text first, HTML
// second: clients show the last part they understand). The Message-ID, date
// and MIME boundary derive from the message, so a retry of the same message
// carries the same Message-ID (receivers can de-duplicate) and a dry run
// writes the same bytes every time.
func buildMail(from string, to []string, r Rendered, m *Message, now time.Time) (*gomail.Msg, error) {
	sum := sha256.Sum256([]byte(m.ID + "\x00" + m.CreatedAt.UTC().Format(time.RFC3339Nano)))
	tag := hex.EncodeToString(sum[:16])
	msg := gomail.NewMsg(gomail.WithBoundary("patjanitor-" + tag))
	if err := msg.From(from); err != nil {
		return nil, fmt.Errorf("from %q: %w", from, err)
	}
	if err := msg.To(to...); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	domain := "patjanitor.invalid"
	if a, err := mail.ParseAddress(from); err == nil {
		if i := strings.LastIndexByte(a.Address, '@'); i >= 0 {
			domain = a.Address[i+1:]
		}
	}
	msg.SetMessageIDWithValue(tag + "@" + domain)
	msg.SetDateWithValue(now)
	msg.Subject(r.Subject)
	// RFC 3834: tell auto-responders not to answer.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetGenHeader(gomail.Header(HeaderKind), string(m.Kind))
	if m.RunID != "" {
		msg.SetGenHeader("X-Patjanitor-Run-Id", m.RunID)
	}
	msg.SetUserAgent("patjanitor")
	msg.SetBodyString(gomail.TypeTextPlain, r.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, r.HTML)
	return msg, nil
}
