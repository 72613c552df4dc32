package report

import (
	"regexp"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
)

// What GitHub links in the text of a comment outside code spans, links
// and pre blocks (html-pipeline's MentionFilter, TeamMentionFilter and
// IssueReferenceFilter patterns, whose IGNORE_PARENTS are pre, code and
// a): a user or team @mention after a non-word character, an issue
// reference #N (also repo#N, org/repo#N) and GH-N.
var (
	ghMention = regexp.MustCompile(`(?i)(?:^|[^a-z0-9_])@[a-z0-9]`)
	ghIssue   = regexp.MustCompile(`(?i)#[0-9]|\bgh-[0-9]`)
)

// shownText is the text GitHub shows for a Markdown fragment written by md
// (outside tables' own syntax): the code spans' content as it is, the
// backslash escapes undone. out is the text outside the code spans, where
// GitHub looks for mentions and references.
func shownText(t *testing.T, s string) (shown, out string) {
	t.Helper()
	var sh, o strings.Builder
	code := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case code && c == '`':
			code = false
			o.WriteByte(' ') // a code span separates the text around it
		case code:
			sh.WriteByte(c)
		case c == '\\' && i+1 < len(s):
			i++
			sh.WriteByte(s[i])
			o.WriteByte(s[i])
		case c == '`':
			code = true
			o.WriteByte(' ')
		default:
			sh.WriteByte(c)
			o.WriteByte(c)
		}
	}
	if code {
		t.Fatalf("%q leaves a code span open", s)
	}
	return sh.String(), o.String()
}

// checkNoPing fails if GitHub would ping or link anything in the Markdown
// text md(s), or if it would not show s as it is (a reviewer copies a
// token's name or id from the rendered comment).
func checkNoPing(t *testing.T, s string) {
	t.Helper()
	got := md(s)
	shown, out := shownText(t, got)
	if want := visible(s); shown != want {
		t.Errorf("md(%q) = %q shows %q, want %q", s, got, shown, want)
	}
	if m := ghMention.FindString(out); m != "" {
		t.Errorf("md(%q) = %q: GitHub mentions %q", s, got, m)
	}
	if m := ghIssue.FindString(out); m != "" {
		t.Errorf("md(%q) = %q: GitHub links %q", s, got, m)
	}
}

// Token names, owner names, ids and reasons come from the tenant: in a plan
// pasted into a pull request, "@org/security-team please approve" pinged
// the team and "#123" linked an issue. md puts each such fragment in a code
// span, where GitHub neither mentions nor links, and the comment still
// shows the text as it is: copied from it, the name is the token's. Other
// @ (an e-mail address, an @ before a space) are left as they are.
func TestHostileMarkdownDoesNotPingOrLink(t *testing.T) {
	for _, s := range []string{
		"@org/security-team please approve",
		"ping @alice, @bob-2 and @Carol_x",
		"fixes #123 and acme/infra#7, GH-42, gh-9",
		"(@alice)", "x\\@alice", "é@alice", "\n@alice", "@@alice", "@-x @_x",
		"#1#2##3", "a#9", "`@alice`", "*@alice*", "[@alice](https://x)",
		"ops@acme.example", "@ alone", "# 12", "C#", "@",
	} {
		checkNoPing(t, s)
	}
	for s, want := range map[string]string{
		"@org/security-team please approve": "`@org/security-team` please approve",
		"fixes #123, GH-42":                 "fixes `#123`, `GH-42`",
		"ops@acme.example":                  "ops@acme.example",
		"@ alone":                           "@ alone",
	} {
		if got := md(s); got != want {
			t.Errorf("md(%q) = %q, want %q", s, got, want)
		}
	}
}

// The rendered plan: every cell of tenant text (token and owner names, ids,
// reasons, skipped tokens, API clients) pings nobody and links nothing, and
// the other formats are unchanged by it.
func TestHostileMarkdownPlanDoesNotPing(t *testing.T) {
	const name = "@org/security-team please approve #123"
	p := &plan.Plan{
		Version: plan.Version, Tenant: "https://acme.api.identitynow.com", APIVersion: "v3", GeneratedAt: t0,
		Items: plan.NewItems(plan.Item{
			TokenID: "#1", TokenName: name, OwnerID: "@o1", OwnerName: "@alice",
			Created: t0, Scope: pat.ScopesOf("sp:scopes:all"), Policy: "p", Mode: plan.ModeEnforce, Action: plan.ActionDelete,
			Reason: "name matches " + name,
		}),
		Skipped: []plan.Skipped{{TokenID: "id-2", TokenName: "GH-7 @bob", OwnerID: "o2", Policy: "p", Reason: "managed"}},
		APIClients: &plan.Clients{
			Items: []plan.ClientItem{{ClientID: "c-1", Name: "@infra/owners", Policy: "p", Mode: plan.ModeReport, Action: plan.ActionReport, Reason: "#5"}},
		},
	}
	if err := p.Seal(); err != nil {
		t.Fatal(err)
	}
	out := render(t, p, FormatMarkdown)
	for _, want := range []string{"`@org/security-team` please approve `#123`", "`@alice`", "`GH-7` `@bob`", "`@infra/owners`"} {
		if !strings.Contains(out, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		_, text := shownText(t, l)
		if m := ghMention.FindString(text); m != "" {
			t.Errorf("GitHub mentions %q in %q", m, l)
		}
		if m := ghIssue.FindString(text); m != "" {
			t.Errorf("GitHub links %q in %q", m, l)
		}
	}
	for _, f := range []string{FormatTable, FormatCSV, FormatJSON} {
		if o := render(t, p, f); strings.Contains(o, "`@") || strings.Contains(o, "`#") {
			t.Errorf("%s carries Markdown's code spans:\n%s", f, o)
		}
	}
}

// FuzzMarkdownCell: whatever the text, md shows it as visible shows it,
// opens no code span it does not close, and leaves nothing GitHub would
// mention or link outside a code span.
func FuzzMarkdownCell(f *testing.F) {
	for _, s := range []string{"@org/security-team please approve", "#123", "GH-42", "a\\@b`c`", "é@x", "ops@acme.example", nasty} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkNoPing(t, s) })
}
