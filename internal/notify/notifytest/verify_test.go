package notifytest

import (
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/notify"
)

const testHMACKey = "hmac-key-0123456789abcdef"

var t0 = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)

// What notify.Sign writes, VerifySignature accepts, and nothing else.
func TestVerifySignature(t *testing.T) {
	key := []byte(testHMACKey)
	body := []byte(`{"kind":"test"}`)
	ts, sig := notify.Sign(key, t0, body)
	cases := []struct {
		name          string
		key           []byte
		ts, sig, body string
		now           time.Time
		want          error
	}{
		{"valid", key, ts, sig, string(body), t0, nil},
		{"valid within skew", key, ts, sig, string(body), t0.Add(4 * time.Minute), nil},
		{"old timestamp (replay)", key, ts, sig, string(body), t0.Add(6 * time.Minute), ErrTimestampSkew},
		{"future timestamp", key, ts, sig, string(body), t0.Add(-6 * time.Minute), ErrTimestampSkew},
		{"tampered body", key, ts, sig, `{"kind":"digest"}`, t0, ErrSignatureInvalid},
		{"wrong key", []byte("another-key-0123456789"), ts, sig, string(body), t0, ErrSignatureInvalid},
		{"timestamp swapped", key, strconv.FormatInt(t0.Unix()+1, 10), sig, string(body), t0, ErrSignatureInvalid},
		{"missing signature", key, ts, "", string(body), t0, ErrSignatureMissing},
		{"missing timestamp", key, "", sig, string(body), t0, ErrSignatureMissing},
		{"no sha256 prefix", key, ts, strings.TrimPrefix(sig, "sha256="), string(body), t0, ErrSignatureInvalid},
		{"not hex", key, ts, "sha256=zz", string(body), t0, ErrSignatureInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifySignature(tc.key, tc.ts, tc.sig, []byte(tc.body), tc.now, 5*time.Minute)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("VerifySignature = %v, want %v", err, tc.want)
			}
		})
	}
	// A timestamp that is not a number but signed correctly is still refused.
	bad := "yesterday"
	s := "sha256=" + hex.EncodeToString(MAC(key, bad, body))
	if err := VerifySignature(key, bad, s, body, t0, time.Minute); !errors.Is(err, ErrTimestampSkew) {
		t.Errorf("non-numeric timestamp = %v", err)
	}
}

func FuzzVerifySignature(f *testing.F) {
	key := []byte(testHMACKey)
	ts, sig := notify.Sign(key, t0, []byte(`{}`))
	f.Add(ts, sig, []byte(`{}`), int64(0))
	f.Add("", "", []byte(nil), int64(10))
	f.Add("1700000000", "sha256=00", []byte("x"), int64(-400))
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte, offset int64) {
		now := t0.Add(time.Duration(offset) * time.Second)
		err := VerifySignature(key, ts, sig, body, now, 5*time.Minute)
		if err == nil {
			// Accepted only if the MAC over exactly (ts, body) is the
			// signature (hex case aside) and ts is within the window.
			got, derr := hex.DecodeString(strings.TrimPrefix(sig, "sha256="))
			if derr != nil || !hmac.Equal(got, MAC(key, ts, body)) {
				t.Fatalf("accepted a signature that is not ours: ts=%q sig=%q", ts, sig)
			}
			if d := now.Sub(mustUnix(t, ts)); d > 5*time.Minute || d < -5*time.Minute {
				t.Fatalf("accepted timestamp %q, %s from now", ts, d)
			}
		}
		// Signing and verifying always agree.
		ts2, sig2 := notify.Sign(key, now, body)
		if err := VerifySignature(key, ts2, sig2, body, now, time.Second); err != nil {
			t.Fatalf("own signature rejected: %v", err)
		}
	})
}

func mustUnix(t *testing.T, ts string) time.Time {
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		t.Fatalf("accepted non-numeric timestamp %q", ts)
	}
	return time.Unix(n, 0)
}
