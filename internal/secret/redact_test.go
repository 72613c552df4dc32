package secret

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// wireForms are the forms a secret takes on the wire, computed here
// independently of Forms: what a server may echo back.
func wireForms(v string) map[string]string {
	j, _ := json.Marshal(v)
	out := map[string]string{
		"verbatim":            v,
		"query-escaped":       url.QueryEscape(v),
		"path-escaped":        url.PathEscape(v),
		"json":                string(j[1 : len(j)-1]),
		"json of query":       strings.Trim(mustJSON(url.QueryEscape(v)), `"`),
		"base64 std":          base64.StdEncoding.EncodeToString([]byte(v)),
		"base64 std raw":      base64.RawStdEncoding.EncodeToString([]byte(v)),
		"base64 url":          base64.URLEncoding.EncodeToString([]byte(v)),
		"base64 url raw":      base64.RawURLEncoding.EncodeToString([]byte(v)),
		"query, lower hex":    strings.ToLower(url.QueryEscape(v)), // only used when v has no letters that change
		"json, slash-escaped": strings.ReplaceAll(string(j[1:len(j)-1]), "/", `\/`),
		"go-quoted":           unquote(strconv.Quote(v)),
		"go-quoted json":      unquote(strconv.Quote(string(j[1 : len(j)-1]))),
	}
	if strings.ToLower(v) != v {
		delete(out, "query, lower hex")
	}
	return out
}

// unquote drops the enclosing quotes (only those).
func unquote(q string) string { return q[1 : len(q)-1] }

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// checkRedacted fails when any wire form of any of the secrets survives in s.
func checkRedacted(t *testing.T, what, s string, secrets ...string) {
	t.Helper()
	for _, v := range secrets {
		for name, f := range wireForms(v) {
			if f != "" && strings.Contains(s, f) {
				t.Errorf("%s: the %s form %q of a secret survives in %q", what, name, f, s)
			}
		}
	}
}

const (
	// Every character class a form changes: '+' and '/' (URL and base64),
	// '%', ' ', '&', '=', '"', '\\', '<', a control character and UTF-8.
	nasty    = `abc+def/ghi jk%lm&n=o"p\q<r>s` + "\x01tü"
	smtpUser = "mailer@acme.example"
	smtpPass = "p@ss+w/rd=Z"
)

func TestRedactorEveryForm(t *testing.T) {
	r := NewRedactor(New(nasty), New(smtpUser), New(smtpPass), SMTPPlain(New(smtpUser), New(smtpPass)), New("short"))
	plain := "\x00" + smtpUser + "\x00" + smtpPass
	for _, v := range []string{nasty, smtpUser, smtpPass, plain} {
		for name, f := range wireForms(v) {
			got := r.Redact("before " + f + " after")
			if got != "before "+Redacted+" after" {
				t.Errorf("%s form %q: Redact = %q", name, f, got)
			}
			checkRedacted(t, name, got, nasty, smtpUser, smtpPass, plain)
		}
	}
	// An SMTP 535 that quotes the AUTH PLAIN line.
	auth := "535 5.7.8 bad credentials in AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte(plain))
	got := r.Redact(auth)
	checkRedacted(t, "AUTH PLAIN", got, smtpUser, smtpPass, plain)
	if !strings.HasPrefix(got, "535 5.7.8 bad credentials in AUTH PLAIN ") || !strings.Contains(got, Redacted) {
		t.Errorf("AUTH PLAIN line: %q", got)
	}
	// HTTP Basic: the secret at an offset of a longer base64 value.
	for _, id := range []string{"a", "ab", "abc"} {
		basic := base64.StdEncoding.EncodeToString([]byte(id + ":" + nasty))
		if got := r.Redact("Authorization: Basic " + basic); strings.Contains(got, basic) || !strings.Contains(got, Redacted) {
			t.Errorf("Basic %s:<secret> = %q, want the secret's part redacted", id, got)
		}
	}
	// Short values are not looked for; ordinary text is left alone.
	if got := r.Redact("a short text"); got != "a short text" {
		t.Errorf("Redact = %q", got)
	}
	var nilR *Redactor
	if nilR.Redact("x") != "x" || string(nilR.RedactBytes([]byte("x"))) != "x" {
		t.Error("a nil Redactor changed its input")
	}
	if b := []byte("nothing here"); &r.RedactBytes(b)[0] != &b[0] {
		t.Error("RedactBytes copied a clean slice")
	}
	if !SMTPPlain(New("u"), Secret{}).IsZero() {
		t.Error("SMTPPlain without a password is not zero")
	}
}

// FuzzRedactor: for a random secret, every wire form of it, embedded in
// random text, is gone after redaction, and so is the secret inside HTTP Basic
// and SMTP AUTH PLAIN base64.
func FuzzRedactor(f *testing.F) {
	f.Add("hunter2-very-secret", "user", "prefix ", " suffix")
	f.Add(nasty, smtpUser, "", "")
	f.Add("abc%2Bdef%2F", "x", "client_secret=", "&grant_type=client_credentials")
	f.Add("é\u2028\x7f\xffzz", "ü", `{"error":"`, `"}`)
	f.Add("aaaaaaaaaa", "aaaa", "aaaa", "aaaa")
	f.Add("ab+/ab+/ab+/", "id", "Basic ", "")
	f.Fuzz(func(t *testing.T, v, user, prefix, suffix string) {
		if len(v) < MinRedactLen || strings.ContainsAny(v, "<>") || strings.Contains(Redacted, v) {
			// A secret made of the marker's own characters would be
			// "found" in the marker itself.
			t.Skip()
		}
		r := NewRedactor(New(v), SMTPPlain(New(user), New(v)))
		for name, form := range wireForms(v) {
			out := r.Redact(prefix + form + suffix)
			for name2, f2 := range wireForms(v) {
				if strings.Contains(out, f2) {
					t.Fatalf("%s form embedded: the %s form %q survives in %q", name, name2, f2, out)
				}
			}
		}
		if len(v) >= MinRedactLen+2 {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
				for _, pre := range []string{"\x00" + user + "\x00", user + ":", "x" + user + ":"} {
					b := enc.EncodeToString([]byte(pre + v))
					if out := r.Redact(prefix + b + suffix); strings.Contains(out, b) {
						t.Fatalf("base64 of %q+secret survives in %q", pre, out)
					}
				}
			}
		}
	})
}
