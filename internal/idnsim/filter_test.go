package idnsim

import (
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

func TestParseFilterValid(t *testing.T) {
	tests := []struct{ in, canonical string }{
		{"lastUsed le 2023-02-05T10:59:27.214Z", "lastUsed le 2023-02-05T10:59:27.214Z"},
		{"lastUsed isnull", "lastUsed isnull"},
		{"  lastUsed\tisnull  ", "lastUsed isnull"},
		{"created gt 2018-12-18T23:05:55Z", "created gt 2018-12-18T23:05:55Z"},
		{"pr accountRequestInfo", "pr accountRequestInfo"},
		{`id in ( "a" , "b" )`, `id in ("a","b")`},
		{`groups ca ("Venezia","Firenze")`, `groups ca ("Venezia","Firenze")`},
		{`identitySummary.id eq "2c91808568c529c60168cca6f90c1313"`, `identitySummary.id eq "2c91808568c529c60168cca6f90c1313"`},
		{"daysUntilEscalation ge 7", "daysUntilEscalation ge 7"},
		{"x eq -1.5e3", "x eq -1.5e3"},
		{"enabled eq true", "enabled eq true"},
		{`name eq "say \"hi\" \\ ok"`, `name eq "say \"hi\" \\ ok"`},
		{`name co "Rajesh"`, `name co "Rajesh"`},
		// Precedence: not > and > or (the docs' example).
		{"not a eq 1 or b eq 2 and c eq 3", "not a eq 1 or (b eq 2 and c eq 3)"},
		{"a eq 1 and (b eq 2 or c eq 3)", "a eq 1 and (b eq 2 or c eq 3)"},
		{"a eq 1 and b eq 2 and c eq 3", "(a eq 1 and b eq 2) and c eq 3"},
		{"not (a isnull or b isnull)", "not (a isnull or b isnull)"},
		{"((lastUsed isnull))", "lastUsed isnull"},
	}
	for _, tc := range tests {
		n, err := ParseFilter(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := n.String(); got != tc.canonical {
			t.Errorf("%q renders as %q, want %q", tc.in, got, tc.canonical)
		}
	}
}

func TestParseFilterInvalid(t *testing.T) {
	tests := []struct{ in, msg string }{
		{"", "empty filter at position 0"},
		{"   ", "empty filter at position 0"},
		{`name eq Rajesh`, `unexpected value "Rajesh" (strings must be in double quotes) at position 8`},
		{`name EQ "x"`, `operator "EQ" must be lowercase at position 5`},
		{`name foo "x"`, `unknown operator "foo" at position 5`},
		{`name eq "x`, `unterminated string at position 8`},
		{`name eq "a\n"`, `invalid escape "\n" in string (only \" and \\ are allowed) at position 10`},
		{`lastUsed pr`, `"pr" is a prefix operator: write "pr lastUsed" at position 9`},
		{`pr "x"`, `expected a field name after "pr" but found "x" at position 3`},
		{`and eq 1`, `expected a field name but found "and" at position 0`},
		{`(`, `unexpected end of filter (expected a field name, "not", "pr" or "(") at position 1`},
		{`a eq 1 b eq 2`, `unexpected "b" after a complete expression (expected "and", "or" or end of filter) at position 7`},
		{`a eq 1 or`, `unexpected end of filter (expected a field name, "not", "pr" or "(") at position 9`},
		{`id in "a"`, `expected "(" after "in" but found "a" at position 6`},
		{`id in ("a" "b")`, `expected "," or ")" in the "in" list but found "b" at position 11`},
		{`id in ()`, `expected a value but found ")" at position 7`},
		{`a eq ,`, `expected a value but found "," at position 5`},
		{`1abc eq 1`, `expected a field name but found "1abc" at position 0`},
		{`a..b eq 1`, `expected a field name but found "a..b" at position 0`},
		{`created gt 2018-12-18T25:05:55Z`, `invalid date-time "2018-12-18T25:05:55Z" (want RFC 3339, e.g. 2026-08-28T03:00:00.000Z) at position 11`},
		{`a eq 0x10`, `unexpected value "0x10" (strings must be in double quotes) at position 5`},
		{"a eq \"\xff\"", "filter is not valid UTF-8 at position 0"},
		{strings.Repeat("(", 65) + "a isnull" + strings.Repeat(")", 65), "filter nested deeper than 64 levels at position 64"},
		{strings.Repeat("not ", 65) + "a isnull", "filter nested deeper than 64 levels at position 256"},
		{strings.Repeat("a", maxFilterLen+1), "filter longer than 8192 bytes at position 8192"},
	}
	for _, tc := range tests {
		_, err := ParseFilter(tc.in)
		if err == nil {
			t.Errorf("%.40q parsed", tc.in)
			continue
		}
		if err.Error() != tc.msg {
			t.Errorf("%.40q:\n got %s\nwant %s", tc.in, err, tc.msg)
		}
	}
}

func TestFilterEval(t *testing.T) {
	lu := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	used := pat.Token{ID: "t1", Name: "Jenkins-Prod", Created: lu.Add(-time.Hour), LastUsed: &lu, Scope: pat.ScopesOf("a:b", "c:d"), Owner: pat.Owner{ID: "o1"}}
	never := pat.Token{ID: "t2", Name: "temp", Created: lu, Scope: pat.Scopes{Null: true}, Managed: true}
	tests := []struct {
		filter      string
		used, never bool
	}{
		{"lastUsed le 2026-05-01T10:00:00.000Z", true, false},
		{"lastUsed le 2026-05-01T09:59:59.999Z", false, false},
		{"lastUsed lt 2026-05-01T10:00:00.000Z", false, false},
		{"lastUsed ge 2026-05-01T10:00:00.000Z", true, false},
		{"lastUsed isnull", false, true},
		{"pr lastUsed", true, false},
		{"not lastUsed isnull", true, false},
		{"lastUsed le 2026-06-01T00:00:00Z or lastUsed isnull", true, true},
		{"lastUsed ne 2026-05-01T10:00:00Z", false, false}, // null compares false, even ne
		{`name eq "jenkins-prod"`, true, false},            // case-insensitive
		{`name ne "temp"`, true, false},
		{`name sw "JENK"`, true, false},
		{`name co "mp"`, false, true},
		{`id in ("t2","t3")`, false, true},
		{`scope ca ("a:b","C:D")`, true, false},
		{`scope ca ("a:b","x")`, false, false},
		{`managed eq true`, false, true},
		{`managed eq "true"`, false, false}, // kinds differ
		{`owner.id eq "o1" and name sw "j"`, true, false},
		{`nosuchfield isnull`, true, true},
		{`created gt 2026-05-01T09:30:00Z`, false, true},
	}
	for _, tc := range tests {
		n, err := ParseFilter(tc.filter)
		if err != nil {
			t.Fatalf("%s: %v", tc.filter, err)
		}
		if got := n.Eval(tokenField(&used)); got != tc.used {
			t.Errorf("%s on the used token: %v", tc.filter, got)
		}
		if got := n.Eval(tokenField(&never)); got != tc.never {
			t.Errorf("%s on the never-used token: %v", tc.filter, got)
		}
	}
}
