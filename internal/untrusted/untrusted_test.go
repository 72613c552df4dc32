package untrusted

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTerminal(t *testing.T) {
	cases := map[string]string{
		"plain name":                            "plain name",
		"日本語 ok":                                "日本語 ok",
		"a\nb":                                  `a\nb`,
		"\x1b[2J\x1b]0;pwned\x07":               `\x1b[2J\x1b]0;pwned\x07`,
		"evil\u202egnp.exe":                     `evil\u202egnp.exe`,
		"zero\u200bwidth":                       `zero\u200bwidth`,
		"x\r\n2026-12-05 INFO applied token_id": `x\r\n2026-12-05 INFO applied token_id`,
		"bad\xffutf8":                           `bad\xffutf8`,
		"line\u2028sep":                         `line\u2028sep`,
		"tab\there":                             `tab\there`,
		"nul\x00":                               `nul\x00`,
		"del\x7f":                               `del\x7f`,
		"c1\u009b31m":                           `c1\u009b31m`,
	}
	for in, want := range cases {
		if got := Terminal(in); got != want {
			t.Errorf("Terminal(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMrkdwn(t *testing.T) {
	cases := map[string]string{
		"ci-deploy":                     "ci-deploy",
		"ab12`\n• *forged* <!channel>&": "ab12\u02cb\\n• \u2217forged\u2217 &lt;!channel&gt;&amp;",
		"_it_ ~st~":                     "\u02cdit\u02cd \u223cst\u223c",
	}
	for in, want := range cases {
		if got := Mrkdwn(in); got != want {
			t.Errorf("Mrkdwn(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzTerminal: whatever the input, the output is one line of valid UTF-8
// without a control, format or separator character, and Mrkdwn's output has
// no Slack markup character.
func FuzzTerminal(f *testing.F) {
	for _, s := range []string{"", "a\nb", "\x1b[31m", "\u202e", "\xff\xfe", "`*_~<>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Terminal(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Terminal(%q) = %q: invalid UTF-8", s, out)
		}
		for _, r := range out {
			if Hidden(r) {
				t.Fatalf("Terminal(%q) = %q keeps %U", s, out, r)
			}
		}
		if m := Mrkdwn(s); strings.ContainsAny(m, "`*_~<>\n") {
			t.Fatalf("Mrkdwn(%q) = %q keeps markup", s, m)
		}
	})
}

func TestClip(t *testing.T) {
	id := "2c9180835d2e5168015d32f890ca1581"
	if got := ClipID(id); got != id {
		t.Errorf("ClipID(%q) = %q, want it whole", id, got)
	}
	long := strings.Repeat("é", 40000)
	got := ClipID(long)
	if len(got) > 128+len("…") || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
		t.Errorf("ClipID of 80,000 bytes = %d bytes %q", len(got), got)
	}
}
