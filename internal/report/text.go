package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// visible returns s with every character that could change how the rest of
// a report is displayed replaced by a visible escape (\n, \x1b, \u202e):
// untrusted.Terminal, the one escaping every terminal output shares.
// Printable ASCII, what nearly every id, name and reason is, is returned
// without a call: the table shows several strings per item.
func visible(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return untrusted.Terminal(s)
		}
	}
	return s
}

// visibleLen is visible(s) and its length in runes, in one pass over the
// printable ASCII that nearly every cell of a table is.
func visibleLen(s string) (string, int) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			v := untrusted.Terminal(s)
			return v, utf8.RuneCountInString(v)
		}
	}
	return s, len(s)
}

// visibleWidth is the length in runes of visible(string(b)), without
// making the string when b is printable ASCII (an id read into a buffer).
func visibleWidth(b []byte) int {
	for _, c := range b {
		if c < 0x20 || c >= 0x7f {
			_, n := visibleLen(string(b))
			return n
		}
	}
	return len(b)
}

// truncate shortens s to at most n characters (runes), ending a shortened
// string with an ellipsis.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 1 {
		return "…"
	}
	runes := []rune(s)
	return string(runes[:n-1]) + "…"
}

// pad fills s with spaces to n characters (runes).
func pad(s string, n int) string {
	if k := utf8.RuneCountInString(s); k < n {
		return s + strings.Repeat(" ", n-k)
	}
	return s
}

// wrap breaks text into lines of at most width characters at spaces. Words
// longer than width (a long timestamp, a URL) stay whole on a line of their
// own: a report never cuts a value it states. Words are what strings.Fields
// finds and a line joins its words with one space; a line whose words are
// one space apart in text is a substring of it (no copy: the table wraps a
// reason or two per item).
func wrap(text string, width int) []string {
	var lines []string
	line, n := "", 0    // the line so far and its length in runes
	start, end := 0, -1 // line is text[start:end] while end >= 0
	first := true
	for i := 0; ; {
		ws, we, k := nextField(text, i)
		if ws < 0 {
			break
		}
		i = we
		w := text[ws:we]
		switch {
		case first:
			line, n, start, end = w, k, ws, we
			first = false
		case n+1+k > width:
			lines = append(lines, line)
			line, n, start, end = w, k, ws, we
		case end >= 0 && ws == end+1 && text[end] == ' ':
			end = we
			line, n = text[start:end], n+1+k
		default:
			line, n, end = line+" "+w, n+1+k, -1
		}
	}
	return append(lines, line)
}

// nextField returns the bounds of the first word of text at or after i, as
// strings.Fields splits (unicode.IsSpace), and its length in runes (an
// invalid byte counting one, as in utf8.RuneCountInString), or -1, -1, 0
// when there is none.
func nextField(text string, i int) (start, end, runes int) {
	start = -1
	for i < len(text) {
		var space bool
		size := 1
		if c := text[i]; c < utf8.RuneSelf {
			space = asciiSpace(c)
		} else {
			var r rune
			r, size = utf8.DecodeRuneInString(text[i:])
			space = unicode.IsSpace(r)
		}
		if space {
			if start >= 0 {
				return start, i, runes
			}
		} else {
			if start < 0 {
				start = i
			}
			runes++
		}
		i += size
	}
	if start < 0 {
		return -1, -1, 0
	}
	return start, len(text), runes
}

// asciiSpace reports whether c (below utf8.RuneSelf) is a space to
// unicode.IsSpace.
func asciiSpace(c byte) bool {
	switch c {
	case '\t', '\n', '\v', '\f', '\r', ' ':
		return true
	}
	return false
}

// oneLine reports whether wrap(text, width) is text itself, on one line:
// ASCII words one space apart, without a space before the first or after
// the last, that fit the width or are a single word. It lets the table write
// a reason as it is, without slicing it into lines: nearly every reason is
// such a line.
func oneLine(text string, width int) bool {
	spaced := false
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c >= utf8.RuneSelf {
			return false
		}
		if asciiSpace(c) {
			if c != ' ' || i == 0 || i == len(text)-1 || text[i-1] == ' ' {
				return false
			}
			spaced = true
		}
	}
	return len(text) <= width || !spaced
}

// ownerText is the owner's display name, or its id when the name is empty.
func ownerText(it *plan.Item) string {
	if it.OwnerName != "" {
		return it.OwnerName
	}
	return it.OwnerID
}

func timeText(t time.Time) string { return pat.FormatTime(t) }

func lastUsedText(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return pat.FormatTime(*t)
}

// appendDate appends the day of t (UTC) as dateText writes it,
// 2006-01-02, without parsing the layout for each of a table's rows
// (FuzzAppendDate holds it to dateText).
func appendDate(dst []byte, t time.Time) []byte {
	y, m, d := t.UTC().Date()
	if y < 0 || y > 9999 {
		return t.UTC().AppendFormat(dst, "2006-01-02")
	}
	return append(dst, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10))
}

// dateText is the day of t (UTC), or "never".
func dateText(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format("2006-01-02")
}

// scopeText shows a scope for people: a null scope says what it means.
func scopeText(s pat.Scopes) string {
	switch {
	case s.Null:
		return "null (= " + pat.ScopeAll + ")"
	case len(s.Values) == 0:
		return "[] (none)"
	}
	return strings.Join(s.Values, " ")
}

// op is a patch operation as the reports show it, its value as JSON.
type op struct {
	Op, Path, Value string
}

func (o op) String() string {
	if o.Value == "" {
		return o.Op + " " + o.Path
	}
	return o.Op + " " + o.Path + " " + o.Value
}

// patchOps renders an item's patch exactly as the plan document does (same
// canonical values), so that every format states the same operation.
func patchOps(it *plan.Item) ([]op, error) { return patchOpsOf(it.TokenID, it.Patch) }

// patchOpsOf is patchOps of the patch of the token tokenID.
func patchOpsOf(tokenID string, patch []pat.PatchOp) ([]op, error) {
	if len(patch) == 0 {
		return nil, nil
	}
	out := make([]op, len(patch))
	for i, o := range patch {
		v, err := jsonText(o.Value())
		if err != nil {
			return nil, fmt.Errorf("token %s: patch[%d]: %w", tokenID, i, err)
		}
		out[i] = op{Op: o.Op(), Path: o.Path(), Value: v}
	}
	return out, nil
}

// jsonText re-encodes a JSON value compactly without HTML escaping (each
// format escapes for itself).
func jsonText(raw json.RawMessage) (string, error) {
	if plainJSON(raw) {
		return string(raw), nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	return marshalText(v)
}

// plainJSON reports whether raw is valid JSON that decoding and encoding
// again (jsonText) would give back byte for byte: compact, ASCII, without an
// escape in a string (no HTML escape to undo, no \u2028) and without an
// object (whose keys decoding would sort). The plan's patch values (a scope
// list, a date-time, a flag) are nearly always such; re-encoding them cost
// two JSON codecs and a 4 KiB read buffer per item of the table.
// FuzzJSONText holds the shortcut to the full path.
func plainJSON(raw []byte) bool {
	inString := false
	for _, c := range raw {
		switch {
		case c < 0x20 || c >= 0x7f || c == '\\':
			return false
		case c == '"':
			inString = !inString
		case inString:
		case c == ' ' || c == '{':
			return false
		}
	}
	return json.Valid(raw)
}

func marshalText(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// summary is what a reviewer reads first, shared by the human formats.
type summary struct {
	Counts plan.Counts
	// Decided: "15 tokens: 5 to change (enforce), 10 report only; 3
	// skipped (exempt)".
	Decided string
	// Verdict: what applying this plan would do, in one sentence.
	Verdict string
	// Blocked is true when the plan can change nothing: its data is
	// incomplete or a guardrail tripped. BlockedBy says which, briefly
	// ("guardrail maxActionsPerRun tripped"), for the group headings.
	Blocked   bool
	BlockedBy string
}

func summarize(p *plan.Plan) summary {
	c := p.Counts()
	s := summary{Counts: c}
	grace := c.ByMode[plan.ModeGrace]
	if grace > 0 {
		s.Decided = fmt.Sprintf("%s: %d to change (enforce), %d waiting for a grace period, %d report only; %d skipped (exempt)",
			plural(c.Items, "token"), c.Pending, grace, c.Items-c.Pending-grace, c.Skipped)
	} else {
		s.Decided = fmt.Sprintf("%s: %d to change (enforce), %d report only; %d skipped (exempt)",
			plural(c.Items, "token"), c.Pending, c.Items-c.Pending, c.Skipped)
	}

	perAction := map[string]int{}
	for _, it := range p.Pending() {
		perAction[it.Action]++
	}
	var parts []string
	for _, a := range []string{plan.ActionDelete, plan.ActionPatch, plan.ActionExpire} {
		if perAction[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", perAction[a], a))
		}
	}
	tripped := p.Tripped()
	switch {
	case p.Error != "":
		s.Blocked, s.BlockedBy = true, "incomplete data"
		s.Verdict = "Nothing will be changed: the data is incomplete (" + p.Error + ")."
	case len(tripped) > 0:
		s.Blocked = true
		var ts, names []string
		for _, g := range tripped {
			ts = append(ts, fmt.Sprintf("%s (limit %s, wanted %d)", g.Name, number(g.Limit), g.Wanted))
			names = append(names, g.Name)
		}
		s.BlockedBy = "guardrail " + strings.Join(names, ", ") + " tripped"
		s.Verdict = "Nothing will be changed: guardrail " + strings.Join(ts, ", ") + " tripped; the run acts on nothing."
	case c.Pending == 0 && grace == 0:
		s.Verdict = "Nothing will be changed: no enforce-mode action."
	case c.Pending == 0:
		s.Verdict = "Nothing in the tenant will be changed: no enforce-mode action is due."
	default:
		s.Verdict = fmt.Sprintf("Applying this plan changes %s: %s.", plural(c.Pending, "token"), strings.Join(parts, ", "))
	}
	if n := c.ByMode[plan.ModeNeedsOwner]; n > 0 {
		// Counted with "report only" above (nothing is sent), said apart
		// here: the policy is enforced, and only the owners can carry it out.
		s.Verdict += fmt.Sprintf(" %s of enforce-mode patch policies need their owners (the API lets only a token's owner change its scopes): no request is sent for them.",
			plural(n, "token"))
	}
	if grace > 0 && !s.Blocked {
		// Marking is not a change in the tenant, but it is not nothing
		// either: the owners get a warning and a deadline.
		s.Verdict += fmt.Sprintf(" %s of policies with a grace period will be marked (or stay marked) and their owners warned; each is acted on only after its deadline.",
			plural(grace, "token"))
	}
	return s
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// number formats a guardrail limit: 25, 0.5.
func number(f float64) string { return fmt.Sprintf("%g", f) }

// listingText describes one listing call.
func listingText(l plan.Listing) string {
	f := l.Filter
	if f == "" {
		f = "all tokens (no filter)"
	}
	s := fmt.Sprintf("%s: %s", f, plural(l.Count, "token"))
	if l.Error != "" {
		s += " (FAILED: " + l.Error + ")"
	}
	return s
}
