// Package untrusted shows text that others chose (token and owner names,
// ids as listed, server error messages, snooze reasons) on surfaces where a
// character could do more than be read: a terminal, where ESC starts a
// control sequence, a newline forges a log line and U+202E reverses what
// follows; and Slack, whose mrkdwn turns backticks, *, _ and ~ into markup
// and <…> into links and mentions; and an error text or a log line, where
// an id of 64 KiB says no more than its start (ClipID).
//
// Every human-facing renderer calls Terminal or Mrkdwn; the data formats
// (the plan document, JSON payloads, CSV written to a file, the journal)
// keep the text as it is, escaped by their own syntax.
package untrusted

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Terminal returns s with every character that could change how the rest of
// the output is displayed replaced by a visible escape: control characters
// (newline as \n, ESC as \x1b, ...), format characters (zero-width spaces,
// bidirectional overrides such as \u202e), line and paragraph separators and
// invalid UTF-8 bytes (\xff). A backslash stays a backslash: the escapes are
// for a reader, not a parser. Printable text, including non-Latin scripts,
// is left alone, and s itself is returned when it needs nothing.
func Terminal(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || Hidden(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case Hidden(r) && r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case Hidden(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// Hidden reports whether r is a control or format character (Cc, Cf: this
// includes the bidirectional controls and zero-width characters) or a line or
// paragraph separator: the characters Terminal escapes, and the ones a
// format with escapes of its own (JSON's \u) must write escaped on a
// terminal.
func Hidden(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}

// slackEntities escapes the three characters Slack documents as needing
// escapes. They are the ones with power beyond looks: <…> makes a link with
// text of its own (<https://evil.example|Keep your token>) or a mention
// (<!channel>, <@U123>) that notifies people.
var slackEntities = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// mrkdwnMarkup neutralises Slack's formatting characters. They have no
// escape in mrkdwn at all, so each is replaced by a look-alike that is not
// markup: a backtick can then neither close the code span an id is shown in
// nor open one, and *, _ and ~ cannot make bold, italic or struck text.
var mrkdwnMarkup = strings.NewReplacer(
	"`", "\u02cb", // MODIFIER LETTER GRAVE ACCENT
	"*", "\u2217", // ASTERISK OPERATOR
	"_", "\u02cd", // MODIFIER LETTER LOW MACRON
	"~", "\u223c", // TILDE OPERATOR
)

// Mrkdwn returns s for Slack mrkdwn text, also inside a code span: Terminal's
// visible escapes (one line stays one line: a newline cannot start a forged
// bullet), then Slack's markup characters neutralised. It is
// MrkdwnMarkup(SlackEntities(s)).
func Mrkdwn(s string) string { return MrkdwnMarkup(SlackEntities(s)) }

// SlackEntities returns s with Terminal's visible escapes and &, < and > as
// entities, and nothing else changed: text that can no longer link, mention
// or forge a line in Slack, and that still compares equal to itself when it
// held none of those (an outcome such as "would_apply" stays as it is).
// Applied twice it escapes the entities twice; apply it once.
func SlackEntities(s string) string { return slackEntities.Replace(Terminal(s)) }

// MrkdwnMarkup returns s with Slack's formatting characters (backtick, *, _
// and ~) replaced by look-alikes; it is idempotent, and with SlackEntities
// before it, it is Mrkdwn.
func MrkdwnMarkup(s string) string { return mrkdwnMarkup.Replace(s) }

// maxID is how much of an id ClipID keeps: real ids (32 hex characters, a
// UUID) are far shorter and stay whole.
const maxID = 128

// ClipID returns an id others chose (a token's, an owner's, an API
// client's, as listed: up to 64 KiB) for an error text or a log line: whole
// when it is at most 128 bytes, else its start and "…". The text says which
// object it is about without carrying all of it to the log, the journal or
// a chat.
func ClipID(s string) string { return Clip(s, maxID) }

// Clip returns s cut to at most n bytes at a character boundary, with "…"
// after the cut; s itself when it is no longer.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
