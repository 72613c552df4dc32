// Package approval is the two-person rule for enforcement: reviewers sign a
// saved plan file's exact bytes with their SSH keys (the SSHSIG format that
// `ssh-keygen -Y sign` and git's signed commits use, namespace
// "patjanitor-plan"), and apply counts the valid signatures by distinct
// principals of git's allowed_signers file.
//
// The signature format itself is github.com/hiddeco/sshsig; this package
// adds what patjanitor decides with it: the allowed signers and revoked keys
// files, the signature file holding one armored signature per reviewer, and
// the verdict on each signature (counted, or why not).
package approval

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/patjanitor/patjanitor/internal/regfile"
)

// Namespace is the SSHSIG namespace of a plan approval. A signature made for
// anything else (git commits are "git", files "file") never approves a plan.
const Namespace = "patjanitor-plan"

// MaxFileBytes caps the allowed signers, revoked keys and signature files: a
// few hundred keys fit many times over, and /dev/zero does not hang a run.
const MaxFileBytes = 1 << 20

// Signer is one line of an allowed signers file.
type Signer struct {
	// Line is the line number in the file, for messages.
	Line int
	// Principals is the principals field as written (comma-separated
	// patterns); a signature made with Key is attributed to it.
	Principals string
	// Namespaces, when set, are the namespace patterns the key may sign in.
	Namespaces []string
	// ValidAfter and ValidBefore bound when the key is accepted (zero: no
	// bound). They are compared with the time of the apply: a signature's own
	// time is the signer's claim, not proof.
	ValidAfter, ValidBefore time.Time
	Key                     ssh.PublicKey
}

// AllowedSigners is a parsed allowed signers file.
type AllowedSigners struct {
	File    string
	Signers []Signer
}

// LoadAllowedSigners reads and parses an allowed signers file (git's
// gpg.ssh.allowedSignersFile, ssh-keygen's ALLOWED SIGNERS format).
func LoadAllowedSigners(file string) (*AllowedSigners, error) {
	data, err := readSmallFile(file, false)
	if err != nil {
		return nil, err
	}
	return ParseAllowedSigners(file, data)
}

// ParseAllowedSigners parses an allowed signers file's content. Every line's
// error is reported, as file:line, together.
//
// Each line: principals [options] keytype base64-key [comment]. Options are
// namespaces="…", valid-after="…" and valid-before="…" (timestamps
// YYYYMMDD[HHMM[SS]], UTC with a trailing Z, else local time, as ssh-keygen
// reads them). cert-authority is refused: patjanitor verifies reviewers'
// own keys, not certificates.
func ParseAllowedSigners(file string, data []byte) (*AllowedSigners, error) {
	as := &AllowedSigners{File: file}
	if err := eachLine(file, data, func(n int, line string) error {
		s, err := parseSignerLine(line)
		if err != nil {
			return err
		}
		s.Line = n
		as.Signers = append(as.Signers, s)
		return nil
	}); err != nil {
		return nil, err
	}
	if len(as.Signers) == 0 {
		return nil, fmt.Errorf("%s: no signers: an allowed signers file lists at least one \"principal key\" line", file)
	}
	return as, nil
}

func parseSignerLine(line string) (Signer, error) {
	var s Signer
	principals, rest, err := nextField(line)
	if err != nil {
		return s, fmt.Errorf("principals: %w", err)
	}
	if principals == "" {
		return s, errors.New("missing principals")
	}
	s.Principals = principals
	if rest == "" {
		return s, errors.New("missing key after the principals")
	}
	// Options come before the key only when the next field is not a key
	// type, which is how ssh-keygen tells them apart too.
	if looksLikeKeyType(rest) {
		key, err := parseKey(rest)
		if err != nil {
			return s, fmt.Errorf("key: %w", err)
		}
		s.Key = key
		return s, nil
	}
	opts, rest, err := nextField(rest)
	if err != nil {
		return s, fmt.Errorf("options: %w", err)
	}
	if err := s.parseOptions(opts); err != nil {
		return s, err
	}
	if rest == "" {
		return s, errors.New("missing key after the options")
	}
	key, err := parseKey(rest)
	if err != nil {
		return s, fmt.Errorf("key: %w", err)
	}
	s.Key = key
	return s, nil
}

// nextField splits off the first whitespace-separated field; double quotes
// may enclose whitespace and commas.
func nextField(s string) (field, rest string, err error) {
	inQuote := false
	for i, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
		case !inQuote && (r == ' ' || r == '\t'):
			return s[:i], strings.TrimLeft(s[i:], " \t"), nil
		}
	}
	if inQuote {
		return "", "", errors.New("unterminated quote")
	}
	return s, "", nil
}

// looksLikeKeyType reports whether s starts with an SSH key type (ssh-ed25519,
// ecdsa-sha2-nistp256, sk-ssh-ed25519@openssh.com, ...) rather than options.
func looksLikeKeyType(s string) bool {
	for _, p := range []string{"ssh-", "ecdsa-", "sk-"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// parseKey reads "keytype base64 [comment]". ssh.ParseAuthorizedKey is not
// used because it would also accept authorized_keys options in front of the
// key, which here are the allowed signers options and mean something else.
func parseKey(s string) (ssh.PublicKey, error) {
	fields := strings.Fields(s)
	if len(fields) < 2 {
		return nil, errors.New("want \"keytype base64-key\"")
	}
	blob, err := base64.StdEncoding.DecodeString(fields[1])
	if err != nil {
		return nil, fmt.Errorf("%s key: not base64", fields[0])
	}
	key, err := ssh.ParsePublicKey(blob)
	if err != nil {
		return nil, fmt.Errorf("%s key: %w", fields[0], err)
	}
	if key.Type() != fields[0] {
		return nil, fmt.Errorf("the key is %s, the line says %s", key.Type(), fields[0])
	}
	if _, ok := key.(*ssh.Certificate); ok {
		return nil, errors.New("a certificate is not a signer key: list the reviewer's public key")
	}
	return key, nil
}

func (s *Signer) parseOptions(opts string) error {
	for _, opt := range splitOptions(opts) {
		name, value, hasValue := strings.Cut(opt, "=")
		name = strings.ToLower(name)
		unquote := func() (string, error) {
			if !hasValue || len(value) < 2 || value[0] != '"' || value[len(value)-1] != '"' {
				return "", fmt.Errorf("option %s wants a quoted value, e.g. %s=\"…\"", name, name)
			}
			return value[1 : len(value)-1], nil
		}
		switch name {
		case "cert-authority":
			return errors.New("cert-authority is not supported: list each reviewer's own public key")
		case "namespaces":
			v, err := unquote()
			if err != nil {
				return err
			}
			s.Namespaces = strings.Split(v, ",")
		case "valid-after", "valid-before":
			v, err := unquote()
			if err != nil {
				return err
			}
			t, err := parseSSHTime(v)
			if err != nil {
				return fmt.Errorf("option %s: %w", name, err)
			}
			if name == "valid-after" {
				s.ValidAfter = t
			} else {
				s.ValidBefore = t
			}
		default:
			return fmt.Errorf("unknown option %q (known: namespaces, valid-after, valid-before)", name)
		}
	}
	return nil
}

// splitOptions splits on commas outside double quotes.
func splitOptions(s string) []string {
	var out []string
	inQuote, start := false, 0
	for i, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
		case r == ',' && !inQuote:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// parseSSHTime reads ssh-keygen's YYYYMMDD[HHMM[SS]][Z].
func parseSSHTime(v string) (time.Time, error) {
	loc := time.Local
	if strings.HasSuffix(v, "Z") || strings.HasSuffix(v, "z") {
		loc, v = time.UTC, v[:len(v)-1]
	}
	layout := map[int]string{8: "20060102", 12: "200601021504", 14: "20060102150405"}[len(v)]
	if layout == "" {
		return time.Time{}, fmt.Errorf("%q is not YYYYMMDD[HHMM[SS]][Z]", v)
	}
	t, err := time.ParseInLocation(layout, v, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not YYYYMMDD[HHMM[SS]][Z]", v)
	}
	return t, nil
}

// allowsNamespace reports whether the line lets its key sign in ns.
func (s *Signer) allowsNamespace(ns string) bool {
	if len(s.Namespaces) == 0 {
		return true
	}
	for _, p := range s.Namespaces {
		if ok, _ := path.Match(p, ns); ok {
			return true
		}
	}
	return false
}

// find returns the lines that list key, in file order.
func (as *AllowedSigners) find(key ssh.PublicKey) []*Signer {
	want := key.Marshal()
	var out []*Signer
	for i := range as.Signers {
		if bytes.Equal(as.Signers[i].Key.Marshal(), want) {
			out = append(out, &as.Signers[i])
		}
	}
	return out
}

// RevokedKeys is a revoked keys file: public keys, one per line, whose
// signatures never count.
type RevokedKeys struct {
	File string
	keys map[string]bool
}

// LoadRevokedKeys reads a revoked keys file. OpenSSH's binary KRL format is
// refused with advice: list the revoked public keys instead.
func LoadRevokedKeys(file string) (*RevokedKeys, error) {
	data, err := readSmallFile(file, false)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(data, []byte("SSHKRL\n")) {
		return nil, fmt.Errorf("%s: a binary KRL is not supported: list the revoked public keys, one per line", file)
	}
	rk := &RevokedKeys{File: file, keys: map[string]bool{}}
	if err := eachLine(file, data, func(_ int, line string) error {
		key, err := parseKey(line)
		if err != nil {
			return err
		}
		rk.keys[string(key.Marshal())] = true
		return nil
	}); err != nil {
		return nil, err
	}
	return rk, nil
}

// eachLine calls fn with each line of data that is neither blank nor a
// comment (trimmed, numbered from 1) and reports every line's error, as
// file:line, together: a reviewer fixes the file in one go.
func eachLine(file string, data []byte, fn func(n int, line string) error) error {
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), MaxFileBytes)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if err := fn(n, line); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", file, n, err))
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", file, err))
	}
	return errors.Join(errs...)
}

// Revoked reports whether key is listed. A nil list revokes nothing.
func (rk *RevokedKeys) Revoked(key ssh.PublicKey) bool {
	return rk != nil && rk.keys[string(key.Marshal())]
}

// readSmallFile reads a regular file of at most MaxFileBytes: a FIFO or a
// device would block or never end, and a signature file is put next to a
// plan by whoever may write to serve's approved/ directory.
//
// It is opened without blocking and checked once open: a signature file in
// serve's approved directory may be a FIFO swapped in after any check of the
// path (package regfile). Links are followed unless noFollow (a file in
// approved/, see ReadDroppedSigFile): Kubernetes mounts the allowed signers
// file as one, and the paths of the other files are the operator's own.
func readSmallFile(file string, noFollow bool) ([]byte, error) {
	return regfile.ReadAll(file, MaxFileBytes, noFollow)
}
