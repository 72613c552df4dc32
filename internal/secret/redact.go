package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// MinRedactLen is the shortest value a Redactor looks for: a shorter one would
// redact ordinary words. Client secrets, webhook URLs and HMAC keys are far
// longer; a password this short is left unscrubbed (no code path prints it).
const MinRedactLen = 6

// Redactor replaces every form a set of secrets takes on the wire with
// Redacted. A server that echoes a request back does not echo the secret as it
// is held but as it was sent: URL-encoded in a form body or query
// (client_secret=abc%2Bdef), base64 inside an HTTP Basic or SMTP AUTH PLAIN
// credential, escaped inside a JSON string. Each of those is searched for.
//
// The zero value and nil redact nothing. A Redactor is immutable and safe for
// concurrent use.
type Redactor struct {
	forms []string // longest first, so a whole form goes before its parts
}

// NewRedactor returns a Redactor for the given secrets; zero and short ones
// (under MinRedactLen) are ignored.
func NewRedactor(secrets ...Secret) *Redactor {
	seen := map[string]bool{}
	var forms []string
	for _, s := range secrets {
		if len(s.value) < MinRedactLen {
			continue
		}
		for _, f := range Forms(s.value) {
			if !seen[f] {
				seen[f] = true
				forms = append(forms, f)
			}
		}
	}
	slices.SortStableFunc(forms, func(a, b string) int { return len(b) - len(a) })
	return &Redactor{forms: forms}
}

// SMTPPlain is the SASL PLAIN response "\x00user\x00password" (RFC 4616) that an
// SMTP client sends, base64-encoded, in AUTH PLAIN. It is a secret of its own:
// a server that quotes the AUTH line back quotes its base64, in which neither
// the user nor the password appears on its own at a fixed alignment.
func SMTPPlain(user, password Secret) Secret {
	if password.IsZero() {
		return Secret{}
	}
	return Secret{value: "\x00" + user.value + "\x00" + password.value}
}

// Redact returns s with every form of every secret replaced by Redacted.
func (r *Redactor) Redact(s string) string {
	// The shortest form last: a shorter string (most listed names, against
	// a client secret of 40 characters or an access token of hundreds)
	// holds none, which one comparison tells.
	if r == nil || len(r.forms) == 0 || len(s) < len(r.forms[len(r.forms)-1]) {
		return s
	}
	for _, f := range r.forms {
		if strings.Contains(s, f) {
			s = strings.ReplaceAll(s, f, Redacted)
		}
	}
	return s
}

// RedactBytes is Redact for a byte slice; it returns b itself when nothing
// was found.
func (r *Redactor) RedactBytes(b []byte) []byte {
	if r == nil {
		return b
	}
	for _, f := range r.forms {
		if bytes.Contains(b, []byte(f)) {
			return []byte(r.Redact(string(b)))
		}
	}
	return b
}

// Forms returns the strings a Redactor searches for to catch v in any of its
// wire forms:
//
//   - v itself;
//   - URL query encoding (url.QueryEscape, "+" for a space) and path encoding
//     (url.PathEscape), each also with lower-case hex digits, which some
//     servers write when they re-encode;
//   - Go string quoting (%q, as error texts quote a server's words), of each
//     of the forms above except base64, which it leaves unchanged;
//   - JSON string escaping (encoding/json with and without HTML escaping, and
//     with "/" escaped as "\/", as PHP and Java encoders do), of v and of its
//     URL encodings;
//   - base64, standard and URL alphabets: the encoding of v with and without
//     padding, and, for v starting at each of the three byte offsets modulo 3
//     inside a longer encoded value (HTTP Basic "id:secret", SMTP AUTH PLAIN
//     "\x00user\x00password"), the characters that depend on v's bytes alone.
//
// Forms shorter than MinRedactLen characters are left out unless they are v
// itself: base64 of a short secret at an awkward offset has too few
// characters of its own to be told from ordinary text.
func Forms(v string) []string {
	if v == "" {
		return nil
	}
	out := []string{v}
	add := func(f string) {
		if len(f) >= min(MinRedactLen, len(v)) && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	qe, pe := url.QueryEscape(v), url.PathEscape(v)
	for _, f := range []string{qe, pe, lowerHex(qe), lowerHex(pe)} {
		add(f)
	}
	for _, base := range []string{v, qe, pe} {
		for _, f := range jsonForms(base) {
			add(f)
		}
	}
	// Go's %q (strconv.Quote), which error texts use to quote what a server
	// said, of v and of its JSON forms (a JSON error body quoted by %q).
	for _, f := range slices.Clone(out) {
		add(goQuoted(f, false))
		add(goQuoted(f, true))
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		add(enc.EncodeToString([]byte(v)))
		add(enc.WithPadding(base64.NoPadding).EncodeToString([]byte(v)))
		for off := range 3 {
			// v starts at byte offset off (mod 3) of the encoded value: the
			// first 3-off bytes share a quantum with what precedes, and a
			// trailing partial quantum shares one with what follows. The
			// whole quanta in between encode to the same characters
			// wherever v sits.
			skip := (3 - off) % 3
			if skip >= len(v) {
				continue
			}
			mid := v[skip:]
			mid = mid[:len(mid)/3*3]
			if mid == "" {
				continue
			}
			add(enc.WithPadding(base64.NoPadding).EncodeToString([]byte(mid)))
		}
	}
	return out
}

// jsonForms are the ways JSON encoders write v inside a string literal
// (without the quotes).
func jsonForms(v string) []string {
	var out []string
	b, _ := json.Marshal(v) // a string always marshals
	out = append(out, string(b[1:len(b)-1]))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	plain := strings.TrimSuffix(buf.String(), "\n")
	out = append(out, plain[1:len(plain)-1])
	for _, f := range out[:2] {
		if strings.Contains(f, "/") {
			out = append(out, strings.ReplaceAll(f, "/", `\/`))
		}
	}
	return out
}

// goQuoted is strconv.Quote (or QuoteToASCII) of s without the quotes.
func goQuoted(s string, ascii bool) string {
	q := strconv.Quote(s)
	if ascii {
		q = strconv.QuoteToASCII(s)
	}
	return q[1 : len(q)-1]
}

// lowerHex rewrites the hex digits of %XX escapes in lower case.
func lowerHex(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			for j := i + 1; j <= i+2; j++ {
				if b[j] >= 'A' && b[j] <= 'F' {
					b[j] += 'a' - 'A'
				}
			}
			i += 2
		}
	}
	return string(b)
}
