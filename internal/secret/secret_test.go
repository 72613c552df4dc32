package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"gopkg.in/yaml.v3"
)

const value = "hunter2-very-secret"

// TestNeverPrinted formats a Secret, alone and inside a struct, through every
// path a log line, an error or a report could take.
func TestNeverPrinted(t *testing.T) {
	s := New(value)
	holder := struct {
		Name   string
		Secret Secret
	}{"x", s}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, holder))
	}
	outs = append(outs, fmt.Sprint(s), s.String(), fmt.Errorf("login: %v", s).Error())
	j, err := json.Marshal(holder)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(holder)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j), string(y))

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "s", s, "h", holder)
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	zl := zap.New(zapcore.NewCore(enc, zapcore.AddSync(&buf), zap.DebugLevel))
	zl.Info("m", zap.Any("s", s), zap.Any("h", holder), zap.Stringer("st", s))
	outs = append(outs, buf.String())

	for _, o := range outs {
		if strings.Contains(o, value) {
			t.Errorf("secret leaked: %s", o)
		}
	}
	var back struct{ Secret string }
	if err := json.Unmarshal(j, &back); err != nil || back.Secret != Redacted {
		t.Errorf("JSON %s: Secret = %q, want %q (%v)", j, back.Secret, Redacted, err)
	}
	if s.Reveal() != value {
		t.Errorf("Reveal = %q", s.Reveal())
	}
}

func TestFromFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "secret")
	if err := os.WriteFile(p, []byte("  "+value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := FromFile(p)
	if err != nil || s.Reveal() != value {
		t.Fatalf("FromFile = %q, %v", s.Reveal(), err)
	}

	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := FromFile(empty); err == nil || !strings.Contains(err.Error(), empty) {
		t.Errorf("empty file: err = %v, want one naming %s", err, empty)
	}
	if _, err := FromFile(filepath.Join(dir, "missing")); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: err = %v", err)
	}
	if !(Secret{}).IsZero() || s.IsZero() {
		t.Error("IsZero is wrong")
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}
