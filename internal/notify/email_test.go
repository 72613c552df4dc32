package notify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/patjanitor/patjanitor/internal/fakeclock"
)

// smtpServer is an in-process SMTP server (github.com/emersion/go-smtp)
// speaking the real protocol on 127.0.0.1: EHLO, STARTTLS, AUTH PLAIN, MAIL,
// RCPT, DATA.
type smtpServer struct {
	addr   string
	caFile string // PEM of the self-signed certificate, for the client

	mu       sync.Mutex
	mails    []receivedMail
	authSeen []string // "user:password" pairs presented
	user     string
	pass     string
	rcptErr  error // returned from RCPT if set
	// authErr, if set, answers AUTH instead of the user/pass check: it gets
	// the base64 AUTH PLAIN response the client sent, to quote it back.
	authErr func(plainB64 string) error
}

type receivedMail struct {
	from  string
	to    []string
	data  []byte
	tls   bool // the session was encrypted when DATA arrived
	authd string
}

type smtpSession struct {
	srv   *smtpServer
	conn  *smtp.Conn
	from  string
	to    []string
	authd string
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		s.srv.mu.Lock()
		defer s.srv.mu.Unlock()
		s.srv.authSeen = append(s.srv.authSeen, username+":"+password)
		if s.srv.authErr != nil {
			return s.srv.authErr(base64.StdEncoding.EncodeToString([]byte(identity + "\x00" + username + "\x00" + password)))
		}
		if username != s.srv.user || password != s.srv.pass {
			return smtp.ErrAuthFailed
		}
		s.authd = username
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.srv.user != "" && s.authd == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.srv.mu.Lock()
	err := s.srv.rcptErr
	s.srv.mu.Unlock()
	if err != nil {
		return err
	}
	s.to = append(s.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	s.srv.mails = append(s.srv.mails, receivedMail{from: s.from, to: s.to, data: b, tls: isTLS, authd: s.authd})
	return nil
}

func (s *smtpSession) Reset()        { s.from, s.to = "", nil }
func (s *smtpSession) Logout() error { return nil }

// startSMTP starts a server; withTLS enables STARTTLS with a certificate
// generated here for 127.0.0.1.
func startSMTP(t *testing.T, withTLS bool, user, pass string) *smtpServer {
	t.Helper()
	srv := &smtpServer{user: user, pass: pass}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{srv: srv, conn: c}, nil
	}))
	s.Domain = "mail.test"
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.AllowInsecureAuth = !withTLS
	if withTLS {
		cert, pemBytes := selfSignedCert(t)
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		srv.caFile = filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(srv.caFile, pemBytes, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.addr = l.Addr().String()
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() { _ = s.Close() })
	return srv
}

func selfSignedCert(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "patjanitor test smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pemBytes
}

func (s *smtpServer) received() []receivedMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]receivedMail(nil), s.mails...)
}

func (s *smtpServer) auths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.authSeen...)
}

const (
	smtpUser = "patjanitor-relay"
	smtpPass = "Sup3r-Secret-SMTP-Passw0rd"
)

func emailReceiver(srv *smtpServer, t *testing.T, requireTLS bool, user, pass string) Receiver {
	ec := &EmailConfig{Smarthost: srv.addr, From: "patjanitor@acme.example", To: []string{"security@acme.example"}, CAFile: srv.caFile, Timeout: 10 * time.Second}
	if !requireTLS {
		f := false
		ec.RequireTLS = &f
	}
	if user != "" {
		ec.UsernameFile = writeSecret(t, "user", user)
		ec.PasswordFile = writeSecret(t, "pass", pass)
	}
	return Receiver{Name: "owner-mail", Email: ec}
}

func buildEmail(t *testing.T, r Receiver, clk *fakeclock.Clock) Notifier {
	t.Helper()
	ns, err := Build(Config{Receivers: []Receiver{r}}, Deps{Clock: clk.Now, Renderer: newTestRenderer(t, clk)})
	if err != nil {
		t.Fatal(err)
	}
	return ns[r.Name]
}

// parsedMail is a received mail split into its parts.
type parsedMail struct {
	header    mail.Header
	subject   string
	text      string
	html      string
	textCType string
}

func parseMail(t *testing.T, raw []byte) parsedMail {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse mail: %v\n%s", err, raw)
	}
	dec := new(mime.WordDecoder)
	subj, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	pm := parsedMail{header: msg.Header, subject: subj}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type = %q (%v)", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart() // decodes quoted-printable
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch ct {
		case "text/plain":
			pm.text, pm.textCType = string(b), p.Header.Get("Content-Type")
		case "text/html":
			pm.html = string(b)
		default:
			t.Errorf("unexpected part %q", ct)
		}
	}
	return pm
}

func TestEmailSTARTTLSAuthAndMultipart(t *testing.T) {
	srv := startSMTP(t, true, smtpUser, smtpPass)
	clk := newClock()
	n := buildEmail(t, emailReceiver(srv, t, true, smtpUser, smtpPass), clk)

	m := DigestMessage("owner-mail", "run-1", t0, sampleDigest())
	if retry, err := n.Notify(context.Background(), m); err != nil {
		t.Fatalf("Notify = %v, %v", retry, err)
	}
	mails := srv.received()
	if len(mails) != 1 {
		t.Fatalf("%d mails", len(mails))
	}
	got := mails[0]
	if !got.tls {
		t.Error("mail was sent without STARTTLS")
	}
	if got.authd != smtpUser {
		t.Errorf("authenticated as %q", got.authd)
	}
	if a := srv.auths(); len(a) != 1 || a[0] != smtpUser+":"+smtpPass {
		t.Errorf("AUTH PLAIN credentials received = %q", a)
	}
	if got.from != "patjanitor@acme.example" || len(got.to) != 1 || got.to[0] != "alice@acme.example" {
		t.Errorf("envelope from %q to %q (the owner, not the configured list)", got.from, got.to)
	}
	pm := parseMail(t, got.data)
	if f := pm.header.Get("From"); !strings.Contains(f, "patjanitor@acme.example") {
		t.Errorf("From = %q", f)
	}
	if to := pm.header.Get("To"); !strings.Contains(to, "alice@acme.example") {
		t.Errorf("To = %q", to)
	}
	want, _ := newTestRenderer(t, clk).Render(m)
	if pm.subject != want.Subject {
		t.Errorf("Subject = %q, want %q", pm.subject, want.Subject)
	}
	if strings.ReplaceAll(pm.text, "\r\n", "\n") != want.Text {
		t.Errorf("text part differs:\n%q\nwant\n%q", pm.text, want.Text)
	}
	if strings.ReplaceAll(pm.html, "\r\n", "\n") != want.HTML {
		t.Errorf("html part differs:\n%q\nwant\n%q", pm.html, want.HTML)
	}
	if !strings.Contains(pm.textCType, "charset") {
		t.Errorf("text part Content-Type = %q", pm.textCType)
	}
	if pm.header.Get("Auto-Submitted") != "auto-generated" || pm.header.Get(HeaderKind) != "digest" {
		t.Errorf("headers: %v", pm.header)
	}
	if id := pm.header.Get("Message-Id"); !strings.HasSuffix(id, "@acme.example>") {
		t.Errorf("Message-Id = %q", id)
	}
	if strings.Contains(string(got.data), smtpPass) {
		t.Error("password in the mail")
	}

	// A summary goes to the configured recipients.
	if _, err := n.Notify(context.Background(), SummaryMessage("owner-mail", "run-1", t0, sampleSummary())); err != nil {
		t.Fatal(err)
	}
	if to := srv.received()[1].to; len(to) != 1 || to[0] != "security@acme.example" {
		t.Errorf("summary to %q", to)
	}
}

func TestEmailRequireTLSFailsWithoutSTARTTLS(t *testing.T) {
	srv := startSMTP(t, false, smtpUser, smtpPass)
	n := buildEmail(t, emailReceiver(srv, t, true, smtpUser, smtpPass), newClock())
	retry, err := n.Notify(context.Background(), TestMessage("owner-mail", t0))
	if err == nil {
		t.Fatal("sent without TLS although requireTLS is true")
	}
	if retry || ReasonOf(err) != ReasonTLS {
		t.Errorf("Notify = retry %v, reason %q, %v", retry, ReasonOf(err), err)
	}
	if len(srv.received()) != 0 || len(srv.auths()) != 0 {
		t.Error("mail or credentials reached a server without TLS")
	}
	if strings.Contains(err.Error(), smtpPass) {
		t.Errorf("password in error: %v", err)
	}
}

func TestEmailLoopbackWithoutTLS(t *testing.T) {
	srv := startSMTP(t, false, smtpUser, smtpPass)
	n := buildEmail(t, emailReceiver(srv, t, false, smtpUser, smtpPass), newClock())
	if _, err := n.Notify(context.Background(), TestMessage("owner-mail", t0)); err != nil {
		t.Fatalf("loopback relay without TLS: %v", err)
	}
	if m := srv.received(); len(m) != 1 || m[0].tls || m[0].authd != smtpUser {
		t.Errorf("received = %+v", m)
	}
}

func TestEmailFailureClassification(t *testing.T) {
	t.Run("wrong password", func(t *testing.T) {
		srv := startSMTP(t, true, smtpUser, smtpPass)
		n := buildEmail(t, emailReceiver(srv, t, true, smtpUser, "wrong-password-123"), newClock())
		retry, err := n.Notify(context.Background(), TestMessage("owner-mail", t0))
		t.Logf("error: %v", err)
		if err == nil || retry || ReasonOf(err) != ReasonAuth {
			t.Errorf("Notify = %v, %v (reason %q)", retry, err, ReasonOf(err))
		}
		if err != nil && strings.Contains(err.Error(), "wrong-password-123") {
			t.Errorf("password in error: %v", err)
		}
	})
	t.Run("temporary rejection", func(t *testing.T) {
		srv := startSMTP(t, true, smtpUser, smtpPass)
		srv.rcptErr = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		n := buildEmail(t, emailReceiver(srv, t, true, smtpUser, smtpPass), newClock())
		retry, err := n.Notify(context.Background(), TestMessage("owner-mail", t0))
		t.Logf("error: %v", err)
		if err == nil || !retry || ReasonOf(err) != ReasonServerError {
			t.Errorf("Notify = %v, %v (reason %q)", retry, err, ReasonOf(err))
		}
	})
	t.Run("permanent rejection", func(t *testing.T) {
		srv := startSMTP(t, true, smtpUser, smtpPass)
		srv.rcptErr = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		n := buildEmail(t, emailReceiver(srv, t, true, smtpUser, smtpPass), newClock())
		retry, err := n.Notify(context.Background(), TestMessage("owner-mail", t0))
		t.Logf("error: %v", err)
		if err == nil || retry || ReasonOf(err) != ReasonRejected {
			t.Errorf("Notify = %v, %v (reason %q)", retry, err, ReasonOf(err))
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		srv := startSMTP(t, true, smtpUser, smtpPass)
		r := emailReceiver(srv, t, true, smtpUser, smtpPass)
		_, other := selfSignedCert(t) // trust a different certificate
		r.Email.CAFile = filepath.Join(t.TempDir(), "other.pem")
		_ = os.WriteFile(r.Email.CAFile, other, 0o600)
		retry, err := buildEmail(t, r, newClock()).Notify(context.Background(), TestMessage("owner-mail", t0))
		t.Logf("error: %v", err)
		if err == nil || retry || ReasonOf(err) != ReasonTLS {
			t.Errorf("Notify = %v, %v (reason %q)", retry, err, ReasonOf(err))
		}
		if len(srv.auths()) != 0 {
			t.Error("credentials sent to an untrusted server")
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := l.Addr().String()
		_ = l.Close()
		r := Receiver{Name: "owner-mail", Email: &EmailConfig{Smarthost: addr, From: "p@acme.example", To: []string{"s@acme.example"}, Timeout: 5 * time.Second}}
		retry, err := buildEmail(t, r, newClock()).Notify(context.Background(), TestMessage("owner-mail", t0))
		t.Logf("error: %v", err)
		if err == nil || !retry || ReasonOf(err) != ReasonConnection {
			t.Errorf("Notify = %v, %v (reason %q)", retry, err, ReasonOf(err))
		}
	})
	t.Run("no recipient", func(t *testing.T) {
		srv := startSMTP(t, true, smtpUser, smtpPass)
		r := emailReceiver(srv, t, true, smtpUser, smtpPass)
		r.Email.To = nil
		retry, err := buildEmail(t, r, newClock()).Notify(context.Background(), SummaryMessage("owner-mail", "r", t0, sampleSummary()))
		if err == nil || retry || ReasonOf(err) != ReasonConfig {
			t.Errorf("Notify = %v, %v", retry, err)
		}
	})
}
