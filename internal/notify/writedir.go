package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// WriteDir renders msgs as their receivers would get them and writes one file
// per message into dir, for `plan --notifications-dir`: a Slack payload or a
// webhook body as indented JSON (.json), a mail as the complete MIME message
// (.eml). Nothing is sent and no secret is read, so a reviewer can run it
// without the production credentials; webhook files carry no signature
// headers for the same reason.
//
// Names are "<nnn>-<kind>-<receiver>[-<owner>].<ext>", numbered in the order
// of msgs, so the same plan writes the same files. It returns the paths.
func WriteDir(dir string, cfg Config, r *Renderer, msgs []*Message) ([]string, error) {
	// The messages name tokens, owners and their addresses: for the
	// directory's owner only.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("notifications dir: %w", err)
	}
	var paths []string
	for i, m := range msgs {
		rcv, ok := cfg.Receiver(m.Receiver)
		if !ok {
			return paths, fmt.Errorf("message %s: no receiver named %q", m.ID, m.Receiver)
		}
		out, err := r.Render(m)
		if err != nil {
			return paths, fmt.Errorf("message %s: %w", m.ID, err)
		}
		var data []byte
		ext := "json"
		switch rcv.Channel() {
		case ChannelSlack:
			data, err = indentJSON(out.Slack)
		case ChannelWebhook:
			data, err = indentJSON(out.Webhook)
		case ChannelEmail:
			ext = "eml"
			data, err = emlBytes(rcv.Email, out, m)
		default:
			err = fmt.Errorf("receiver %q has no channel", m.Receiver)
		}
		if err != nil {
			return paths, fmt.Errorf("message %s: %w", m.ID, err)
		}
		name := fmt.Sprintf("%03d-%s-%s", i+1, m.Kind, safeName(m.Receiver))
		if o := m.OwnerID(); o != "" {
			name += "-" + safeName(o)
		}
		p := filepath.Join(dir, name+"."+ext)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return paths, fmt.Errorf("write notification: %w", err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

func indentJSON(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return nil, fmt.Errorf("indent payload: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func emlBytes(c *EmailConfig, out Rendered, m *Message) ([]byte, error) {
	to := recipients(m, c.To)
	if len(to) == 0 {
		return nil, fmt.Errorf("no recipient (no owner email and no fallback, and no `to` configured)")
	}
	msg, err := buildMail(c.From, to, out, m, m.CreatedAt)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := msg.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("write mail: %w", err)
	}
	return buf.Bytes(), nil
}

// safeName keeps a file name portable: letters, digits, '-', '_' and '.'.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}
