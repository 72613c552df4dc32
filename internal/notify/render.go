package notify

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"reflect"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// templatesFS holds the default templates, one file per kind and part:
// templates/<kind>.<part>.tmpl with part subject, text, html or slack.
//
//go:embed templates/*.tmpl
var templatesFS embed.FS

// RenderOptions configure a Renderer.
type RenderOptions struct {
	// Templates replace the embedded defaults, part by part.
	Templates Templates
	// Clock is the time of rendering, used for the deadlines of digest
	// items not yet warned; nil means time.Now.
	Clock func() time.Time
	// Location is the time zone times are shown in; nil means UTC.
	Location *time.Location
}

// Renderer turns messages into what each channel sends. It is safe for
// concurrent use.
type Renderer struct {
	clock func() time.Time
	loc   *time.Location
	kinds map[Kind]*kindTemplates
}

type kindTemplates struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	slack   *texttemplate.Template
	html    *htmltemplate.Template
}

// Rendered is a message in every channel's form.
type Rendered struct {
	Subject string
	Text    string // plain-text email body
	HTML    string // HTML email body
	Slack   []byte // Slack incoming-webhook payload (Block Kit)
	Webhook []byte // generic webhook JSON body
}

// NewRenderer parses the default templates and the configured replacements;
// a template that does not parse is an error here, not at send time.
func NewRenderer(opts RenderOptions) (*Renderer, error) {
	r := &Renderer{clock: opts.Clock, loc: opts.Location, kinds: map[Kind]*kindTemplates{}}
	if r.clock == nil {
		r.clock = time.Now
	}
	if r.loc == nil {
		r.loc = time.UTC
	}
	var errs []error
	for _, k := range Kinds() {
		files := opts.Templates.forKind(k)
		kt := &kindTemplates{}
		var err error
		if kt.subject, err = r.parseText(k, "subject", files.Subject, nil); err != nil {
			errs = append(errs, err)
		}
		if kt.text, err = r.parseText(k, "text", files.Text, nil); err != nil {
			errs = append(errs, err)
		}
		if kt.slack, err = r.parseText(k, "slack", files.Slack, slackFuncs); err != nil {
			errs = append(errs, err)
		}
		if kt.html, err = r.parseHTML(k, files.HTML); err != nil {
			errs = append(errs, err)
		}
		r.kinds[k] = kt
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

func templateSource(k Kind, part, override string) (name string, src []byte, err error) {
	if override != "" {
		b, err := readFile(override)
		if err != nil {
			return "", nil, fmt.Errorf("%s %s template: %w", k, part, err)
		}
		return override, b, nil
	}
	name = fmt.Sprintf("templates/%s.%s.tmpl", k, part)
	b, err := templatesFS.ReadFile(name)
	if err != nil {
		return "", nil, fmt.Errorf("embedded %s: %w", name, err)
	}
	return name, b, nil
}

// slackFuncs replace funcs' entries for Slack templates. A Slack template
// sees every string of the message already through untrusted.SlackEntities
// (see slackEscaped), so its mrkdwn only has the formatting characters left
// to neutralise: untrusted.Mrkdwn again would show "&" as "&amp;".
var slackFuncs = map[string]any{"mrkdwn": untrusted.MrkdwnMarkup}

func (r *Renderer) parseText(k Kind, part, override string, extra map[string]any) (*texttemplate.Template, error) {
	name, src, err := templateSource(k, part, override)
	if err != nil {
		return nil, err
	}
	t, err := texttemplate.New(name).Option("missingkey=error").Funcs(r.funcs()).Funcs(extra).Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("parse %s %s template: %w", k, part, err)
	}
	return t, nil
}

func (r *Renderer) parseHTML(k Kind, override string) (*htmltemplate.Template, error) {
	name, src, err := templateSource(k, "html", override)
	if err != nil {
		return nil, err
	}
	t, err := htmltemplate.New(name).Option("missingkey=error").Funcs(r.funcs()).Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("parse %s html template: %w", k, err)
	}
	return t, nil
}

// view is what templates see: the message, with every digest deadline
// resolved, and the time of rendering.
type view struct {
	*Message
	Now time.Time
}

func (r *Renderer) funcs() map[string]any {
	return map[string]any{
		"time": func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.In(r.loc).Format("2006-01-02 15:04 MST")
		},
		"date":  func(t time.Time) string { return t.In(r.loc).Format("2006-01-02") },
		"days":  formatDays,
		"count": plural,
		"snooze": func(tokenID, snoozeFor string) string {
			if snoozeFor == "" {
				snoozeFor = "30d"
			}
			return fmt.Sprintf("patjanitor snooze %s --for %s --reason \"...\"", shellWord(tokenID), shellWord(snoozeFor))
		},
		// mrkdwn is for every value of a Slack template that others chose
		// (names, ids, reasons, error texts), also inside backticks.
		"mrkdwn": untrusted.Mrkdwn,
		"join":   strings.Join,
		"deref": func(t *time.Time) time.Time {
			if t == nil {
				return time.Time{}
			}
			return *t
		},
		"sub": func(a, b int) int { return a - b },
	}
}

// resolve copies m with each digest item's deadline set: the mark's deadline
// if it was warned, else now + grace (the clock starts when this delivery
// succeeds).
func resolve(m *Message, now time.Time) *Message {
	if m.Digest == nil {
		return m
	}
	c := *m
	d := *m.Digest
	d.Items = append([]DigestItem(nil), d.Items...)
	for i := range d.Items {
		if d.Items[i].Deadline == nil && !d.Items[i].NeedsOwner {
			t := now.Add(time.Duration(d.Items[i].Grace))
			d.Items[i].Deadline = &t
		}
	}
	c.Digest = &d
	return &c
}

// plainMessage returns a copy of m in which every string (token and owner
// names, ids, reasons quoting names, error texts, ...) is
// untrusted.Terminal's: one line, with control characters, bidi overrides
// and the like shown as visible escapes, and ordinary text of any script
// unchanged. A plain-text email has no syntax to escape them in, and a name
// with CR/LF would forge lines ("Approved by: security-team") in a mail that
// owners and the IAM team trust. The copy is escaped as a whole, not value by
// value in the templates, so that a custom template (notify.templates) is
// safe without calling a function, and a field added to a message later is
// covered without anyone remembering it. Strings that need no escaping (ids,
// policy names, outcomes) come out as they are, so templates may still
// compare them.
func plainMessage(m *Message) *Message { return mapStrings(m, untrusted.Terminal) }

// slackEscaped returns a copy of m in which every string is
// untrusted.SlackEntities': one line, and &, < and > as entities. In Slack's
// mrkdwn, <…> is a mention (<!channel> notifies everyone in the security
// channel) or a link with text of its own (<https://evil.example|Keep your
// token>), and a newline starts a forged bullet; a custom Slack template
// (notify.templates) that writes {{.TokenName}} without mrkdwn must not turn
// a token name into either. As with plainMessage, escaping the copy as a
// whole covers every field, present and future. The formatting characters
// (backtick, *, _, ~) are left to the template's mrkdwn: they change only how
// text looks, and outcomes and kinds ("would_apply", "guardrail_tripped")
// must stay comparable in templates.
func slackEscaped(m *Message) *Message { return mapStrings(m, untrusted.SlackEntities) }

// mapStrings returns a copy of m in which every string is f's.
func mapStrings(m *Message, f func(string) string) *Message {
	e := escaper{str: f, copies: map[escapedPointer]reflect.Value{}}
	return e.copy(reflect.ValueOf(m)).Interface().(*Message)
}

// escaper deep-copies a value, passing every string it reaches through
// pointers, interfaces, slices, arrays, maps and exported struct fields
// through str. Unexported fields (a time.Time's) are copied as they are.
type escaper struct {
	str func(string) string
	// copies maps each pointer already copied to its copy, so that a value
	// reached twice is copied once and a pointer cycle (no message type has
	// one today) ends instead of recursing until the stack overflows, which
	// would kill serve rather than fail a notification.
	copies map[escapedPointer]reflect.Value
}

type escapedPointer struct {
	t reflect.Type
	p uintptr
}

func (e escaper) copy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.String:
		out := reflect.New(v.Type()).Elem()
		out.SetString(e.str(v.String()))
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		key := escapedPointer{v.Type(), v.Pointer()}
		if out, ok := e.copies[key]; ok {
			return out
		}
		out := reflect.New(v.Type().Elem())
		e.copies[key] = out
		out.Elem().Set(e.copy(v.Elem()))
		return out
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			out.Index(i).Set(e.copy(v.Index(i)))
		}
		return out
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		return e.copy(v.Elem())
	case reflect.Array:
		out := reflect.New(v.Type()).Elem()
		for i := 0; i < v.Len(); i++ {
			out.Index(i).Set(e.copy(v.Index(i)))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(e.copy(it.Key()), e.copy(it.Value()))
		}
		return out
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		for i := 0; i < v.NumField(); i++ {
			if out.Field(i).CanSet() {
				out.Field(i).Set(e.copy(v.Field(i)))
			}
		}
		return out
	}
	return v
}

// Render produces every channel's form of m.
func (r *Renderer) Render(m *Message) (Rendered, error) {
	if err := m.Validate(); err != nil {
		return Rendered{}, err
	}
	kt := r.kinds[m.Kind]
	now := r.clock()
	v := view{Message: resolve(m, now), Now: now}
	// The subject and the plain-text body see every string of the message
	// escaped (see plainMessage); the HTML body is escaped by html/template,
	// the Slack text as a whole for links and mentions (see slackEscaped) and
	// by its mrkdwn function for formatting, and the webhook carries the data
	// as it is.
	pv := view{Message: plainMessage(v.Message), Now: now}
	sv := view{Message: slackEscaped(v.Message), Now: now}
	var out Rendered
	var b bytes.Buffer
	if err := kt.subject.Execute(&b, pv); err != nil {
		return Rendered{}, fmt.Errorf("render %s subject: %w", m.Kind, err)
	}
	// A subject is one line: templates may wrap, headers may not (a newline
	// in a header value would start a header of its own). What is left of
	// the control and format characters shows as escapes.
	out.Subject = truncate(untrusted.Terminal(strings.Join(strings.Fields(b.String()), " ")), 200)
	b.Reset()
	if err := kt.text.Execute(&b, pv); err != nil {
		return Rendered{}, fmt.Errorf("render %s text: %w", m.Kind, err)
	}
	out.Text = endLine(b.String())
	b.Reset()
	if err := kt.html.Execute(&b, v); err != nil {
		return Rendered{}, fmt.Errorf("render %s html: %w", m.Kind, err)
	}
	out.HTML = endLine(b.String())
	b.Reset()
	if err := kt.slack.Execute(&b, sv); err != nil {
		return Rendered{}, fmt.Errorf("render %s slack: %w", m.Kind, err)
	}
	var err error
	if out.Slack, err = slackPayload(out.Subject, b.String(), v.Message); err != nil {
		return Rendered{}, err
	}
	if out.Webhook, err = webhookPayload(out.Subject, out.Text, v.Message); err != nil {
		return Rendered{}, err
	}
	return out, nil
}

// Slack's Block Kit limits: header text 150 characters, section text 3000,
// 50 blocks per message.
const (
	slackHeaderMax  = 150
	slackSectionMax = 3000
	slackMaxBlocks  = 50
)

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackMessage struct {
	Text   string       `json:"text"` // the notification fallback
	Blocks []slackBlock `json:"blocks"`
}

// slackPayload lays out the rendered mrkdwn as a header, sections (split at
// blank lines to fit Slack's limits) and a context line.
func slackPayload(subject, body string, m *Message) ([]byte, error) {
	// The fallback text is mrkdwn too (Slack shows it in notifications), and
	// a custom subject template may put a name in it: entities for <, > and
	// &, as in the sections. The header block is plain_text, shown as it is.
	msg := slackMessage{Text: untrusted.SlackEntities(subject)}
	msg.Blocks = append(msg.Blocks, slackBlock{Type: "header", Text: &slackText{Type: "plain_text", Text: truncate(subject, slackHeaderMax)}})
	chunks := splitSections(strings.TrimSpace(body), slackSectionMax)
	room := slackMaxBlocks - 2
	if len(chunks) > room {
		chunks = append(chunks[:room-1], fmt.Sprintf("_…%d more sections not shown_", len(chunks)-room+1))
	}
	for _, c := range chunks {
		msg.Blocks = append(msg.Blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: c}})
	}
	ctx := "patjanitor " + string(m.Kind)
	if m.RunID != "" {
		ctx += " · run " + m.RunID
	}
	msg.Blocks = append(msg.Blocks, slackBlock{Type: "context", Elements: []slackText{{Type: "mrkdwn", Text: untrusted.Mrkdwn(ctx)}}})
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode slack payload: %w", err)
	}
	return b, nil
}

func splitSections(s string, max int) []string {
	if s == "" {
		return nil
	}
	var out []string
	var cur strings.Builder
	flush := func() {
		if t := strings.TrimSpace(cur.String()); t != "" {
			out = append(out, t)
		}
		cur.Reset()
	}
	for _, para := range strings.Split(s, "\n\n") {
		for len(para) > max { // a single oversized paragraph: cut it
			flush()
			cut := strings.LastIndex(para[:max], "\n")
			if cut <= 0 {
				cut = max
			}
			out = append(out, strings.TrimSpace(para[:cut]))
			para = para[cut:]
		}
		if cur.Len() > 0 && cur.Len()+2+len(para) > max {
			flush()
		}
		if cur.Len() > 0 {
			cur.WriteString("\n\n")
		}
		cur.WriteString(para)
	}
	flush()
	return out
}

// WebhookVersion is the version of the webhook JSON body. Receivers can
// branch on it; it changes only when a field changes meaning or goes away.
const WebhookVersion = 1

type webhookBody struct {
	Version   int       `json:"version"`
	ID        string    `json:"id"`
	Kind      Kind      `json:"kind"`
	Receiver  string    `json:"receiver"`
	RunID     string    `json:"runId,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	Subject   string    `json:"subject"`
	Text      string    `json:"text"`
	Summary   *Summary  `json:"summary,omitempty"`
	Digest    *Digest   `json:"digest,omitempty"`
	Notice    *Notice   `json:"notice,omitempty"`
	Failure   *Failure  `json:"failure,omitempty"`
	Test      *Test     `json:"test,omitempty"`
}

func webhookPayload(subject, text string, m *Message) ([]byte, error) {
	b, err := json.Marshal(webhookBody{
		Version: WebhookVersion, ID: m.ID, Kind: m.Kind, Receiver: m.Receiver, RunID: m.RunID, CreatedAt: m.CreatedAt.UTC(),
		Subject: subject, Text: text,
		Summary: m.Summary, Digest: m.Digest, Notice: m.Notice, Failure: m.Failure, Test: m.Test,
	})
	if err != nil {
		return nil, fmt.Errorf("encode webhook body: %w", err)
	}
	return b, nil
}

// shellWord quotes s for a POSIX shell unless it is plain (an id, a
// duration): the snooze command in a message is meant to be pasted, and a
// token id is whatever the tenant listed.
func shellWord(s string) string {
	plain := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:/@+=", r)) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func formatDays(d Duration) string {
	td := time.Duration(d)
	if td%(24*time.Hour) == 0 {
		return plural(int(td/(24*time.Hour)), "day")
	}
	return td.String()
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// endLine trims the blank lines templates leave at the end to one newline.
func endLine(s string) string { return strings.TrimRight(s, "\n\t ") + "\n" }

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
