// Package secret holds credentials in a type that redacts itself, so that a client
// secret, a webhook URL or an SMTP password cannot reach a log line, an error, a
// report or the journal by accident: every formatting path prints Redacted.
package secret

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/patjanitor/patjanitor/internal/regfile"
)

// Redacted is what a Secret prints as.
const Redacted = "<secret>"

// Secret is a credential. Only Reveal returns its value.
type Secret struct{ value string }

// New wraps value.
func New(value string) Secret { return Secret{value: value} }

// MaxFileSize is the largest secret file FromFile reads. Client secrets,
// webhook URLs, HMAC keys and passwords are well under a kilobyte; the limit
// only keeps a wrong path (a log file, a disk image) from being read into
// memory.
const MaxFileSize = 64 << 10

// FromFile reads a secret from path, trimming surrounding white space (files
// written by editors and Kubernetes Secrets often end in a newline). Only a
// regular file (or a symbolic link to one, as Kubernetes mounts Secrets) of
// at most MaxFileSize bytes is read: a device (/dev/zero), a FIFO or a
// directory is refused, so a wrong path fails at once instead of blocking or
// reading forever. The file is opened without blocking and checked once open
// (package regfile): checking the path first and then opening it left a gap
// in which a FIFO swapped in (a link flipped) made the open wait for a
// writer, forever. The error names the file, never the content.
func FromFile(path string) (Secret, error) {
	b, err := regfile.ReadAll(path, MaxFileSize, false)
	if errors.Is(err, regfile.ErrNotRegular) || errors.Is(err, regfile.ErrTooLarge) {
		return Secret{}, fmt.Errorf("secret file %w", err)
	}
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
