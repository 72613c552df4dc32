package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/secret"
)

// The webhook signature headers.
const (
	HeaderTimestamp = "X-Patjanitor-Timestamp"
	HeaderSignature = "X-Patjanitor-Signature"
	HeaderKind      = "X-Patjanitor-Kind"
	// HeaderMessageID lets a receiver drop a message it already processed:
	// a retry after a lost response sends the same id again.
	HeaderMessageID = "X-Patjanitor-Message-Id"
)

// minHMACKeyLen is the shortest HMAC key accepted. HMAC-SHA256 keys shorter
// than the hash are weaker than they look, and short keys cannot be scrubbed
// from text reliably.
const minHMACKeyLen = 16

// Webhook posts a signed JSON body to a URL.
type Webhook struct {
	name     string
	url      secret.Secret
	key      secret.Secret
	client   *http.Client
	renderer *Renderer
	redact   *redactor
	clock    func() time.Time
	logger   *zap.Logger
}

var _ Notifier = (*Webhook)(nil)

// Notify implements Notifier.
func (w *Webhook) Notify(ctx context.Context, m *Message) (bool, error) {
	out, err := w.renderer.Render(w.redact.message(m))
	if err != nil {
		return false, w.redact.newError(w.name, ReasonTemplate, false, 0, err, "render")
	}
	body := w.redact.scrubBytes(out.Webhook)
	now := w.clock()
	ts, sig := Sign([]byte(w.key.Reveal()), now, body)
	h := http.Header{}
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, sig)
	h.Set(HeaderKind, string(m.Kind))
	h.Set(HeaderMessageID, m.ID)
	resp, herr := w.redact.postJSON(ctx, w.client, w.name, w.url, body, h, now)
	if herr != nil {
		return herr.Retryable, herr
	}
	if resp.status/100 != 2 {
		e := w.redact.statusError(w.name, resp)
		return e.Retryable, e
	}
	w.logger.Debug("webhook message sent", zap.String("message_id", m.ID))
	return false, nil
}

// Sign returns the header values that sign body at time t: the Unix seconds,
// and "sha256=" followed by the hex HMAC-SHA256 of "<seconds>.<body>".
// Binding the timestamp into the MAC is what lets a receiver reject replays.
func Sign(key []byte, t time.Time, body []byte) (timestamp, signature string) {
	timestamp = strconv.FormatInt(t.Unix(), 10)
	return timestamp, "sha256=" + hex.EncodeToString(mac(key, timestamp, body))
}

func mac(key []byte, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}
