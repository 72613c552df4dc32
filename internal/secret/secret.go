// Package secret holds credentials in a type that redacts itself, so that a client
// secret, a webhook URL or an SMTP password cannot reach a log line, an error, a
// report or the journal by accident: every formatting path prints Redacted.
package secret

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Redacted is what a Secret prints as.
const Redacted = "<secret>"

// Secret is a credential. Only Reveal returns its value.
type Secret struct{ value string }

// New wraps value.
func New(value string) Secret { return Secret{value: value} }

// FromFile reads a secret from path, trimming surrounding white space (files
// written by editors and Kubernetes Secrets often end in a newline). The error
// names the file, never the content.
func FromFile(path string) (Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Secret{}, fmt.Errorf("read secret file: %w", err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return Secret{}, fmt.Errorf("secret file %s is empty", path)
	}
	return Secret{value: v}, nil
}

// Reveal returns the value, for the one place that must send it.
func (s Secret) Reveal() string { return s.value }

// IsZero reports whether no secret is set.
func (s Secret) IsZero() bool { return s.value == "" }

// String implements fmt.Stringer.
func (s Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer, so %#v is safe too.
func (s Secret) GoString() string { return Redacted }

// Format implements fmt.Formatter: every verb prints Redacted.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalYAML implements yaml.Marshaler.
func (s Secret) MarshalYAML() (any, error) { return Redacted, nil }

// MarshalText implements encoding.TextMarshaler (zap's reflection and others).
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }
