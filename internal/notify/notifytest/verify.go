package notifytest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Signature verification errors.
var (
	ErrSignatureMissing = errors.New("signature or timestamp header missing")
	ErrSignatureInvalid = errors.New("signature does not match")
	ErrTimestampSkew    = errors.New("timestamp outside the allowed window")
)

// VerifySignature checks a request's X-Patjanitor-Timestamp and
// X-Patjanitor-Signature header values against body, as a receiver of the
// webhook does, following the recipe the receivers are given (an HMAC-SHA256
// over "<timestamp>.<body>"), not patjanitor's own signing code. It rejects a
// timestamp more than maxSkew away from now in either direction (an old
// request replayed, or a clock far off), and compares MACs in constant time.
// The MAC is checked before the timestamp so that a forged request learns
// nothing about the window.
func VerifySignature(key []byte, timestamp, signature string, body []byte, now time.Time, maxSkew time.Duration) error {
	if timestamp == "" || signature == "" {
		return ErrSignatureMissing
	}
	hexSig, ok := strings.CutPrefix(signature, "sha256=")
	if !ok {
		return fmt.Errorf("%w: signature must start with sha256=", ErrSignatureInvalid)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: signature is not hex", ErrSignatureInvalid)
	}
	if !hmac.Equal(got, MAC(key, timestamp, body)) {
		return ErrSignatureInvalid
	}
	secs, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not Unix seconds", ErrTimestampSkew, timestamp)
	}
	d := now.Sub(time.Unix(secs, 0))
	if d < 0 {
		d = -d
	}
	if d > maxSkew {
		return fmt.Errorf("%w: %s from now, allowed %s", ErrTimestampSkew, d.Truncate(time.Second), maxSkew)
	}
	return nil
}

// MAC is the HMAC-SHA256 of "<timestamp>.<body>" under key.
func MAC(key []byte, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}
