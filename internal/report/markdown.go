package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/patjanitor/patjanitor/internal/plan"
)

// md makes untrusted text safe inside a Markdown table cell: hidden
// characters become visible escapes (so a newline cannot end the row), and
// the characters that start inline Markdown or HTML markup, the cell
// separator | among them, are backslash-escaped (CommonMark lets any ASCII
// punctuation be escaped). Raw HTML is therefore never passed through: < is
// \<. Block markup (#, >, -, 1.) cannot start inside a table cell.
//
// The report is pasted into GitHub comments, where "@org/team" in a token's
// name would ping the team and "#123" link an issue: GitHub finds those in
// the rendered text, after the escapes are undone, so a backslash does not
// stop them. It leaves code spans alone, so each such fragment goes into
// one (see ping). A code span shows its text as it is: the comment reads
// the same, and a name or id copied from it is the token's (a zero-width
// character after the @ would be copied along; &#64; is text again by the
// time GitHub looks).
func md(s string) string {
	s = visible(s)
	var b strings.Builder
	word := false // the text before i ends in a word character
	for i := 0; i < len(s); {
		if n := ping(s[i:], word); n > 0 {
			// Fragments that follow each other share one span: two spans
			// side by side would read as one opened by "``".
			for m := ping(s[i+n:], false); m > 0; m = ping(s[i+n:], false) {
				n += m
			}
			b.WriteByte('`')
			b.WriteString(s[i : i+n])
			b.WriteByte('`')
			i, word = i+n, false // a code span ends GitHub's text node
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch r {
		case '\\', '`', '*', '_', '[', ']', '<', '>', '|', '~', '&':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
		i += size
		word = r < utf8.RuneSelf && isWord(byte(r))
	}
	return b.String()
}

// ping returns the length of the text at the start of s that GitHub would
// turn into a mention or a reference (0: none): @user or @org/team after a
// non-word character (word: s follows one; an e-mail address is no
// mention), #123 anywhere (repo#123 links too), GH-123 after a non-word
// character. The fragment holds only letters, digits, -, _ and /, which
// need no escape and mean the same in a code span.
func ping(s string, word bool) int {
	switch {
	case len(s) > 1 && s[0] == '@' && !word && isAlnum(s[1]):
		n := 1 + nameLen(s[1:])
		if n+1 < len(s) && s[n] == '/' && isAlnum(s[n+1]) {
			n += 1 + nameLen(s[n+1:])
		}
		return n
	case len(s) > 1 && s[0] == '#' && isDigit(s[1]):
		return 1 + digitsLen(s[1:])
	case len(s) > 3 && !word && strings.EqualFold(s[:3], "gh-") && isDigit(s[3]):
		return 3 + digitsLen(s[3:])
	}
	return 0
}

func nameLen(s string) int {
	n := 0
	for n < len(s) && (isWord(s[n]) || s[n] == '-') {
		n++
	}
	return n
}

func digitsLen(s string) int {
	n := 0
	for n < len(s) && isDigit(s[n]) {
		n++
	}
	return n
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlnum(c byte) bool { return isDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }
func isWord(c byte) bool  { return isAlnum(c) || c == '_' }

func renderMarkdown(w io.Writer, p *plan.Plan) error {
	bw := bufio.NewWriter(w)
	line := func(format string, args ...any) {
		fmt.Fprintf(bw, format, args...)
		bw.WriteByte('\n')
	}
	row := func(cells ...string) { line("| %s |", strings.Join(cells, " | ")) }
	s := summarize(p)

	line("# patjanitor plan")
	line("")
	line("**%s**", md(s.Verdict))
	line("")
	row("", "")
	row("---", "---")
	row("Tenant", md(p.Tenant))
	row("API version", md(p.APIVersion))
	row("Generated", md(timeText(p.GeneratedAt)))
	if p.RunID != "" {
		row("Run", md(p.RunID))
	}
	row("Config digest", md(p.ConfigDigest))
	hash := p.PlanHash
	if hash == "" {
		hash = "(not sealed)"
	}
	row("Plan hash", md(hash))
	row("Population", md(plural(p.Population, "token")))
	for _, l := range p.Listings {
		row("Listing", md(listingText(l)))
	}
	for _, l := range viewLines(p) {
		row(md(strings.ToUpper(l.Label[:1])+l.Label[1:]), md(l.Value))
	}
	row("Decided", md(s.Decided))
	for _, n := range viewNotices(p) {
		line("")
		line("> **%s**", md(n))
	}
	if p.Error != "" {
		line("")
		line("> **Incomplete data:** %s. Nothing will be changed.", md(p.Error))
	}

	line("")
	line("## Policies")
	line("")
	if len(s.Counts.Policies) == 0 {
		line("No token matched a policy.")
	} else {
		row("Policy", "Mode", "Action", "Tokens", "Pending")
		row("---", "---", "---", "---:", "---:")
		for _, pc := range s.Counts.Policies {
			row(md(pc.Policy), md(pc.Mode), md(pc.Action), fmt.Sprint(pc.Items), fmt.Sprint(pc.Pending))
		}
	}

	line("")
	line("## Guardrails")
	line("")
	if len(p.Guardrails) == 0 {
		line("None configured.")
	} else {
		row("Guardrail", "Limit", "Wanted", "Status", "Detail")
		row("---", "---:", "---:", "---", "---")
		for _, g := range p.Guardrails {
			status := "ok"
			if g.Tripped {
				status = "**TRIPPED**"
			}
			row(md(g.Name), number(g.Limit), fmt.Sprint(g.Wanted), status, md(g.Detail))
		}
	}

	line("")
	line("## Items")
	if p.Items.Len() == 0 {
		line("")
		line("Nothing to do.")
	}
	for _, g := range groups(p) {
		line("")
		line("### %s", md(groupHeading(&g, s)))
		line("")
		row("Token", "ID", "Owner", "Created", "Last used", "Reason", "Patch", "Also matched")
		row("---", "---", "---", "---", "---", "---", "---", "---")
		for it := range g.All() {
			ops, err := patchOps(&it)
			if err != nil {
				return err
			}
			var patch []string
			for _, o := range ops {
				patch = append(patch, md(o.String()))
			}
			row(md(it.TokenName), md(it.TokenID), md(ownerText(&it)), md(timeText(it.Created)),
				md(lastUsedText(it.LastUsed)), md(it.Reason), strings.Join(patch, "<br>"),
				md(strings.Join(it.AlsoMatched, ", ")))
		}
	}

	line("")
	line("## Skipped")
	line("")
	if len(p.Skipped) == 0 {
		line("No token was exempt.")
	} else {
		row("Token", "ID", "Owner ID", "Policy", "Reason")
		row("---", "---", "---", "---", "---")
		for _, sk := range p.Skipped {
			row(md(sk.TokenName), md(sk.TokenID), md(sk.OwnerID), md(sk.Policy), md(sk.Reason))
		}
	}
	markdownClients(line, row, p.APIClients) // apiclients.go
	return bw.Flush()
}
