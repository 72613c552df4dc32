package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/secret"
)

// Slack posts to a Slack incoming webhook.
type Slack struct {
	name     string
	url      secret.Secret
	client   *http.Client
	renderer *Renderer
	redact   *redactor
	clock    func() time.Time
	logger   *zap.Logger
}

var _ Notifier = (*Slack)(nil)

// Notify implements Notifier.
func (s *Slack) Notify(ctx context.Context, m *Message) (bool, error) {
	out, err := s.renderer.Render(s.redact.message(m))
	if err != nil {
		return false, s.redact.newError(s.name, ReasonTemplate, false, 0, err, "render")
	}
	resp, herr := s.redact.postJSON(ctx, s.client, s.name, s.url, s.redact.scrubBytes(out.Slack), nil, s.clock())
	if herr != nil {
		return herr.Retryable, herr
	}
	if resp.status/100 != 2 {
		e := s.redact.statusError(s.name, resp)
		return e.Retryable, e
	}
	if err := slackResponseError(resp.body); err != "" {
		// Slack answers some failures with 200 and an error in the body
		// (Alertmanager's slackResponseHandler). The payload will not
		// become valid by waiting.
		e := s.redact.newError(s.name, ReasonRejected, false, resp.status, nil, "slack rejected the message: %s", err)
		return false, e
	}
	s.logger.Debug("slack message sent", zap.String("message_id", m.ID))
	return false, nil
}

// slackResponseError returns "" for a successful body: the plain text "ok"
// that incoming webhooks answer, or JSON {"ok": true} from the Web API. Any
// other body is the error to report.
func slackResponseError(body []byte) string {
	b := bytes.TrimSpace(body)
	if string(b) == "ok" {
		return ""
	}
	var api struct {
		OK    *bool  `json:"ok"`
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &api) == nil && api.OK != nil {
		if *api.OK {
			return ""
		}
		if api.Error != "" {
			return api.Error
		}
		return "ok: false"
	}
	if len(b) == 0 {
		return "empty response body"
	}
	return bodySnippet(b)
}
