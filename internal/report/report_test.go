package report

import (
	"bytes"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)

func tp(t time.Time) *time.Time { return &t }

// fixture is the plan the golden files render: three policies in both modes,
// every action, a tripped guardrail, long names, a long reason, a null
// scope, a never-used token and skipped tokens.
func fixture() *plan.Plan {
	cutoff := "2026-08-28T03:00:00.000Z"
	p := &plan.Plan{
		Version: plan.Version, Tenant: "https://acme.api.identitynow.com", APIVersion: "v2025",
		GeneratedAt: t0, RunID: "20261126T030000Z-5e1f0c2a",
		ConfigDigest: "sha256:3b6c0c1f1d2a7be0e8c4f1a9f0a4c6a1d9d0e6b2c4a8f7e3d1b5a9c7e2f4d6b8",
		Population:   1234,
		Listings:     []plan.Listing{{Filter: "", Count: 1234}},
		Policies: []plan.Policy{
			{Name: "unused-90d", Mode: plan.ModeEnforce, Action: plan.ActionDelete},
			{Name: "full-access", Mode: plan.ModeReport, Action: plan.ActionPatch},
			{Name: "never-expires", Mode: plan.ModeEnforce, Action: plan.ActionExpire},
			{Name: "watch-list", Mode: plan.ModeEnforce, Action: plan.ActionReport},
			{Name: "matches-nothing", Mode: plan.ModeEnforce, Action: plan.ActionDelete},
		},
		Items: plan.NewItems(
			plan.Item{
				TokenID: "2c9180835d2e5168015d32f890ca1581", TokenName: "terraform-provider-sailpoint-ci-production-east",
				OwnerID: "2c9180867624cbd7017642d6c8c24d6f", OwnerName: "Ann Example",
				Created: t0.AddDate(-2, 0, 0), LastUsed: tp(t0.AddDate(0, -7, 0)), Scope: pat.ScopesOf("sp:scopes:all"),
				Policy: "unused-90d", Mode: plan.ModeEnforce, Action: plan.ActionDelete,
				Reason:      "lastUsed 2026-04-26T03:00:00.000Z is before cutoff " + cutoff + " (unusedFor 90d); the token also holds sp:scopes:all, which the full-access policy reports",
				AlsoMatched: []string{"full-access"},
			},
			plan.Item{
				TokenID: "2c9180835d2e5168015d32f890ca1582", TokenName: "old-report-bot",
				OwnerID: "2c9180867624cbd7017642d6c8c24d6f", OwnerName: "Ann Example",
				Created: t0.AddDate(-1, 0, 0), Scope: pat.ScopesOf("idn:sources:read"),
				Policy: "unused-90d", Mode: plan.ModeEnforce, Action: plan.ActionDelete,
				Reason: "never used; created 2025-11-26T03:00:00.000Z is before cutoff " + cutoff + " (unusedFor 90d)",
			},
			plan.Item{
				TokenID: "2c9180835d2e5168015d32f890ca1583", TokenName: "laptop",
				OwnerID: "2c9180867624cbd7017642d6c8c24d70", OwnerName: "Bob Example",
				Created: t0.AddDate(-1, -2, 0), LastUsed: tp(t0.AddDate(0, -5, 0)), Scope: pat.ScopesOf("sp:scopes:default"),
				Policy: "unused-90d", Mode: plan.ModeEnforce, Action: plan.ActionDelete,
				Reason: "lastUsed 2026-06-26T03:00:00.000Z is before cutoff " + cutoff + " (unusedFor 90d)",
			},
			plan.Item{
				TokenID: "2c9180835d2e5168015d32f890ca1584", TokenName: "jenkins",
				OwnerID: "2c9180867624cbd7017642d6c8c24d71", OwnerName: "",
				Created: t0.AddDate(0, -3, 0), LastUsed: tp(t0.AddDate(0, 0, -1)), Scope: pat.Scopes{Null: true},
				Policy: "full-access", Mode: plan.ModeReport, Action: plan.ActionPatch,
				Reason: "scope is null, which counts as sp:scopes:all (scopes any [sp:scopes:all])",
				Patch: []pat.PatchOp{
					pat.SetScopes([]string{"sp:scopes:default"}),
				},
			},
			plan.Item{
				TokenID: "2c9180835d2e5168015d32f890ca1585", TokenName: "forever",
				OwnerID: "2c9180867624cbd7017642d6c8c24d70", OwnerName: "Bob Example",
				Created: t0.AddDate(0, -1, 0), LastUsed: tp(t0.AddDate(0, 0, -2)), Scope: pat.ScopesOf("idn:all"),
				Policy: "never-expires", Mode: plan.ModeEnforce, Action: plan.ActionExpire,
				Reason: "expirationDate is null: the token never expires (neverExpires)",
				Patch: []pat.PatchOp{
					pat.SetExpiration(t0.AddDate(0, 0, 14)),
				},
				Marked: tp(t0.AddDate(0, 0, -14)), Deadline: tp(t0),
			},
			plan.Item{
				TokenID: "2c9180835d2e5168015d32f890ca1586", TokenName: "svc-sync",
				OwnerID: "2c9180867624cbd7017642d6c8c24d72", OwnerName: "Carol Example",
				Created: t0.AddDate(0, -9, 0), LastUsed: tp(t0.AddDate(0, -1, 0)), Scope: pat.ScopesOf(),
				Policy: "watch-list", Mode: plan.ModeEnforce, Action: plan.ActionReport,
				Reason: "name matches ^svc- (nameMatches)",
			},
		),
		Skipped: []plan.Skipped{
			{TokenID: "2c9180835d2e5168015d32f890ca15ff", TokenName: "patjanitor", OwnerID: "2c9180867624cbd7017642d6c8c24d73", Policy: "unused-90d", Reason: "own-credential"},
			{TokenID: "2c9180835d2e5168015d32f890ca15fe", TokenName: "idn-managed", OwnerID: "2c9180867624cbd7017642d6c8c24d74", Policy: "full-access", Reason: "managed"},
			{TokenID: "2c9180835d2e5168015d32f890ca15fd", TokenName: "break-glass-1", OwnerID: "2c9180867624cbd7017642d6c8c24d73", Policy: "unused-90d", Reason: "excluded-name"},
		},
		Guardrails: []plan.Guardrail{
			{Name: "maxActionsPerRun", Limit: 25, Wanted: 4, Detail: "4 actions wanted, at most 25 per run"},
			{Name: "maxActionsPercent", Limit: 10, Wanted: 4, Detail: "4 actions wanted, at most 10% of the 1234 tokens = 123"},
			{Name: "maxActionsPerOwner", Limit: 1, Wanted: 2, Tripped: true,
				Detail: "2 actions wanted on the tokens of owner 2c9180867624cbd7017642d6c8c24d6f, at most 1 per owner"},
		},
	}
	p.Items.Sort()
	if err := p.Seal(); err != nil {
		panic(err)
	}
	return p
}

var goldenExt = map[string]string{
	FormatTable: "txt", FormatJSON: "json", FormatMarkdown: "md", FormatCSV: "csv", FormatHTML: "html",
}

func render(t *testing.T, p *plan.Plan, format string) string {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, p, format); err != nil {
		t.Fatalf("Render %s: %v", format, err)
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	p := fixture()
	input := filepath.Join("testdata", "plan.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := plan.Write(&b, p); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(input, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The fixed plan in testdata, read as apply would read it, renders
	// exactly like the plan built in memory.
	f, err := os.Open(input)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := plan.Read(f)
	_ = f.Close()
	if err != nil {
		t.Fatalf("read %s: %v", input, err)
	}
	if err := saved.VerifyHash(); err != nil {
		t.Fatalf("%s: %v (run go test -update after changing the fixture)", input, err)
	}
	for _, format := range Formats() {
		t.Run(format, func(t *testing.T) {
			got := render(t, p, format)
			if fromFile := render(t, saved, format); fromFile != got {
				t.Fatalf("the plan read from %s renders differently from the plan built in memory", input)
			}
			path := filepath.Join("testdata", "golden", "plan."+goldenExt[format])
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/report -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s (run go test ./internal/report -update and review the diff):\n%s", format, path, got)
			}
		})
	}
}

// normalize undoes each format's escaping and layout, enough to search for
// a plain value: HTML entities, Markdown backslashes, table wrapping.
func normalize(format, s string) string {
	switch format {
	case FormatHTML:
		s = html.UnescapeString(s)
	case FormatMarkdown:
		s = regexp.MustCompile(`\\([[:punct:]])`).ReplaceAllString(s, "$1")
	}
	return strings.Join(strings.Fields(s), " ")
}

func TestEveryFormatCarriesEveryItem(t *testing.T) {
	p := fixture()
	for _, format := range Formats() {
		out := render(t, p, format)
		norm := normalize(format, out)
		if format == FormatJSON {
			norm = out // reasons are JSON strings; these contain nothing to escape
		}
		for _, it := range p.Items.All() {
			if !strings.Contains(out, it.TokenID) {
				t.Errorf("%s lacks token id %s", format, it.TokenID)
			}
			if !strings.Contains(norm, strings.Join(strings.Fields(it.Reason), " ")) {
				t.Errorf("%s lacks the reason of %s: %q", format, it.TokenID, it.Reason)
			}
		}
		if format == FormatCSV {
			continue // the CSV is the items only (documented)
		}
		for _, s := range p.Skipped {
			if !strings.Contains(out, s.TokenID) || !strings.Contains(norm, s.Reason) {
				t.Errorf("%s lacks skipped token %s or its reason %q", format, s.TokenID, s.Reason)
			}
		}
		for _, g := range p.Guardrails {
			if !strings.Contains(norm, g.Name) {
				t.Errorf("%s lacks guardrail %s", format, g.Name)
			}
		}
		if format != FormatJSON && !strings.Contains(out, "TRIPPED") {
			t.Errorf("%s does not show the tripped guardrail", format)
		}
	}
}

func renderTableWidth(t *testing.T, p *plan.Plan, o Options) string {
	t.Helper()
	var b bytes.Buffer
	if err := RenderOptions(&b, p, FormatTable, o); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestTableFitsTerminal: at 80 and at 200 columns every line fits, every id
// stands whole in its row, every reason is there word for word with no word
// split across lines, and a name is shortened only when it must be (at 80),
// then given whole under its row.
func TestTableFitsTerminal(t *testing.T) {
	p := fixture()
	long := "terraform-provider-sailpoint-ci-production-east"
	for _, width := range []int{80, 200} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			out := renderTableWidth(t, p, Options{Width: width})
			lines := strings.Split(out, "\n")
			fields := map[string]bool{}
			for i, l := range lines {
				if n := utf8.RuneCountInString(l); n > width {
					t.Errorf("line %d is %d columns: %q", i+1, n, l)
				}
				for _, f := range strings.Fields(l) {
					fields[f] = true
				}
			}
			for _, it := range p.Items.All() {
				if !fields[it.TokenID] {
					t.Errorf("id %s is not whole on a line", it.TokenID)
				}
				for _, w := range strings.Fields(it.Reason) {
					if !fields[w] {
						t.Errorf("reason word %q of %s is split or missing", w, it.TokenID)
					}
				}
			}
			for _, sk := range p.Skipped {
				if !fields[sk.TokenID] {
					t.Errorf("skipped id %s is not whole on a line", sk.TokenID)
				}
			}
			row := ""
			for _, l := range lines {
				if strings.Contains(l, "2c9180835d2e5168015d32f890ca1581") {
					row = l
					break
				}
			}
			switch width {
			case 200:
				if !strings.HasPrefix(strings.TrimSpace(row), long+" ") || strings.Contains(out, "…") {
					t.Errorf("at 200 columns a name is shortened: %q", row)
				}
			case 80:
				if !strings.Contains(row, "…") || !strings.Contains(out, "name: "+long) {
					t.Errorf("at 80 columns the long name is neither shortened in its row nor given whole under it:\n%s", out)
				}
			}
		})
	}
	out := render(t, p, FormatTable)
	if out != renderTableWidth(t, p, Options{Width: DefaultWidth}) {
		t.Error("Render does not lay the table out for DefaultWidth")
	}
	// Groups that change the tenant come before report-only groups.
	if a, b := strings.Index(out, "never-expires: enforce expire"), strings.Index(out, "full-access: report patch"); a < 0 || b < 0 || a > b {
		t.Errorf("enforce group at %d, report group at %d", a, b)
	}
	if !strings.Contains(normalize(FormatTable, out), "Nothing will be changed: guardrail maxActionsPerOwner (limit 1, wanted 2) tripped") {
		t.Error("the verdict does not say the guardrail blocks the run")
	}
}

// TestEveryPolicyListed: a policy of the run that matched nothing is listed
// with 0 in every format that lists policies (the CSV is one row per item and
// has none), and gets no empty item group.
func TestEveryPolicyListed(t *testing.T) {
	p := fixture()
	checks := map[string]*regexp.Regexp{
		FormatTable:    regexp.MustCompile(`(?m)^  matches-nothing +enforce +delete +0 +0$`),
		FormatMarkdown: regexp.MustCompile(`(?m)^\| matches-nothing \| enforce \| delete \| 0 \| 0 \|$`),
		FormatHTML:     regexp.MustCompile(`<tr><td>matches-nothing</td><td>enforce</td><td>delete</td><td class="num">0</td><td class="num">0</td></tr>`),
		FormatJSON:     regexp.MustCompile(`"name": "matches-nothing",\s+"mode": "enforce",\s+"action": "delete"`),
	}
	for format, re := range checks {
		out := render(t, p, format)
		if !re.MatchString(out) {
			t.Errorf("%s does not list the policy that matched nothing with 0:\n%s", format, out)
		}
		if strings.Contains(out, "matches-nothing: enforce delete") {
			t.Errorf("%s shows an empty group for the policy that matched nothing", format)
		}
	}
}

// TestBlockedLabels: when a guardrail trips (or the data is incomplete), no
// heading or badge says the group changes the tenant: it says blocked.
func TestBlockedLabels(t *testing.T) {
	for name, p := range map[string]*plan.Plan{"guardrail": fixture(), "incomplete": func() *plan.Plan {
		p := fixture()
		p.Guardrails = nil
		p.Error = "listing failed"
		return p
	}()} {
		t.Run(name, func(t *testing.T) {
			for _, format := range []string{FormatTable, FormatMarkdown, FormatHTML} {
				out := render(t, p, format)
				if strings.Contains(strings.ToLower(out), "changes the tenant") {
					t.Errorf("%s of a blocked plan says a group changes the tenant", format)
				}
			}
			table := normalize(FormatTable, render(t, p, FormatTable))
			want := "unused-90d: enforce delete, 3 tokens (BLOCKED: "
			if !strings.Contains(table, want) {
				t.Errorf("table lacks %q", want)
			}
			if !strings.Contains(render(t, p, FormatHTML), `<span class="badge blocked-badge">blocked: nothing changes</span>`) {
				t.Error("HTML lacks the blocked badge")
			}
		})
	}
	p := fixture()
	p.Guardrails = p.Guardrails[:2]
	for _, format := range []string{FormatTable, FormatMarkdown} {
		if !strings.Contains(render(t, p, format), "(CHANGES THE TENANT)") {
			t.Errorf("%s of an unblocked plan lacks CHANGES THE TENANT", format)
		}
	}
	if !strings.Contains(render(t, p, FormatHTML), `<span class="badge changes">changes the tenant</span>`) {
		t.Error("HTML of an unblocked plan lacks the changes badge")
	}
}

// TestChangesOnly: the confirmation summary lists the policies (0 included),
// the guardrails and the items that change the tenant, and only counts the
// rest.
func TestChangesOnly(t *testing.T) {
	p := fixture()
	p.Guardrails = p.Guardrails[:2]
	out := renderTableWidth(t, p, Options{ChangesOnly: true})
	for _, want := range []string{"2c9180835d2e5168015d32f890ca1581", "2c9180835d2e5168015d32f890ca1585", "matches-nothing", "maxActionsPercent",
		"Not listed here: 2 items that change nothing (report only) and 3 skipped tokens (exempt)."} {
		if !strings.Contains(normalize(FormatTable, out), want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	for _, hidden := range []string{"2c9180835d2e5168015d32f890ca1584", "2c9180835d2e5168015d32f890ca1586", "2c9180835d2e5168015d32f890ca15ff"} {
		if strings.Contains(out, hidden) {
			t.Errorf("summary lists %s, which changes nothing", hidden)
		}
	}
}

// nasty is text a token owner controls, built to break each format.
const nasty = "=cmd|' /C calc'!A0 <script>alert(1)</script>, \"quoted\" | pipe\nnewline\x1b[2J\u202eevil\u200b"

func nastyPlan() *plan.Plan {
	p := &plan.Plan{
		Version: plan.Version, Tenant: "https://acme.api.identitynow.com", APIVersion: "v3", GeneratedAt: t0,
		Items: plan.NewItems(plan.Item{
			TokenID: "id-1", TokenName: nasty, OwnerID: "o1", OwnerName: "@owner <b>bold</b>",
			Created: t0, Scope: pat.ScopesOf("a<b"), Policy: "p", Mode: plan.ModeEnforce, Action: plan.ActionPatch,
			Reason: "name matches =cmd <i>x</i> | y",
			Patch:  []pat.PatchOp{pat.Rename("-" + nasty)},
		}),
		Skipped: []plan.Skipped{{TokenID: "id-2", TokenName: nasty, OwnerID: "o2", Policy: "p", Reason: "managed"}},
	}
	if err := p.Seal(); err != nil {
		panic(err)
	}
	return p
}

func TestEscaping(t *testing.T) {
	p := nastyPlan()

	t.Run("html", func(t *testing.T) {
		out := render(t, p, FormatHTML)
		for _, bad := range []string{"<script>", "<b>bold", "<i>x", "\x1b", "\u202e", "\u200b", "<link", "<img", "http://", "@import", "url("} {
			if strings.Contains(out, bad) {
				t.Errorf("HTML contains %q", bad)
			}
		}
		if !strings.Contains(out, "&lt;script&gt;") {
			t.Error("HTML does not show the escaped script tag")
		}
		if !strings.Contains(out, `\x1b[2J\u202eevil\u200b`) {
			t.Error("HTML does not show the hidden characters as escapes")
		}
		if !strings.Contains(out, "Content-Security-Policy") {
			t.Error("HTML has no Content-Security-Policy")
		}
	})

	t.Run("markdown", func(t *testing.T) {
		out := render(t, p, FormatMarkdown)
		for _, bad := range []string{"<script>", "<b>", "<i>", "\x1b", "\u202e"} {
			if strings.Contains(out, bad) {
				t.Errorf("Markdown contains %q", bad)
			}
		}
		// Each table row keeps its cell count: unescaped pipes only.
		unescaped := regexp.MustCompile(`(^|[^\\])\|`)
		for _, l := range strings.Split(out, "\n") {
			if !strings.Contains(l, "id-1") || !strings.HasPrefix(l, "|") {
				continue
			}
			if n := len(unescaped.FindAllString(l, -1)); n != 9 {
				t.Errorf("item row has %d cell separators, want 9: %s", n, l)
			}
		}
		if strings.Contains(out, "newline\n") {
			t.Error("a newline in a name broke a table row")
		}
	})

	t.Run("csv", func(t *testing.T) {
		out := render(t, p, FormatCSV)
		rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil {
			t.Fatalf("the CSV does not parse: %v", err)
		}
		if len(rows) != 2 || len(rows[0]) != 12 || len(rows[1]) != 12 {
			t.Fatalf("rows %d, header %d cells", len(rows), len(rows[0]))
		}
		row := map[string]string{}
		for i, h := range rows[0] {
			row[h] = rows[1][i]
		}
		if row["tokenName"] != "'"+nasty {
			t.Errorf("tokenName = %q, want the name behind a quote", row["tokenName"])
		}
		if row["ownerName"] != "'@owner <b>bold</b>" {
			t.Errorf("ownerName = %q", row["ownerName"])
		}
		if row["reason"] != p.Items.At(0).Reason {
			t.Errorf("reason = %q", row["reason"])
		}
		if row["scope"] != `["a<b"]` || !strings.HasPrefix(row["patch"], `[{"op":"replace","path":"/name","value":"-=cmd`) {
			t.Errorf("scope %q patch %q", row["scope"], row["patch"])
		}
		for _, r := range rows {
			for _, c := range r {
				if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
					t.Errorf("cell starts with a formula character: %q", c)
				}
			}
		}
	})

	t.Run("table", func(t *testing.T) {
		out := render(t, p, FormatTable)
		for _, bad := range []string{"\x1b", "\u202e", "\u200b", "newline\n"} {
			if strings.Contains(out, bad) {
				t.Errorf("table contains %q", bad)
			}
		}
		if !strings.Contains(out, `name matches =cmd <i>x</i> | y`) {
			t.Error("the reason is not shown verbatim")
		}
	})

	t.Run("json", func(t *testing.T) {
		out := render(t, p, FormatJSON)
		q, err := plan.Read(strings.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		if q.Items.At(0).TokenName != nasty || q.VerifyHash() != nil {
			t.Error("the JSON does not carry the name exactly")
		}
	})
}

func TestVisible(t *testing.T) {
	for in, want := range map[string]string{
		"plain":               "plain",
		"Zoë 東京":              "Zoë 東京",
		"a\nb\tc\rd":          `a\nb\tc\rd`,
		"\x1b[31mred":         `\x1b[31mred`,
		"\x7f":                `\x7f`,
		"\u0085":              `\u0085`,
		"rtl\u202eevil":       `rtl\u202eevil`,
		"zero\u200bwidth":     `zero\u200bwidth`,
		"bom\ufeff":           `bom\ufeff`,
		"sep\u2028x":          `sep\u2028x`,
		"bad\xffutf8":         `bad\xffutf8`,
		"\U0001F600 emoji ok": "\U0001F600 emoji ok",
	} {
		if got := visible(in); got != want {
			t.Errorf("visible(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWrapKeepsEveryWord(t *testing.T) {
	text := "lastUsed 2026-04-26T03:00:00.000Z is before cutoff 2026-08-28T03:00:00.000Z (unusedFor 90d) " +
		strings.Repeat("x", 50)
	lines := wrap(text, 30)
	if strings.Join(lines, " ") != text {
		t.Fatalf("wrap lost text: %q", lines)
	}
	for _, l := range lines {
		if utf8.RuneCountInString(l) > 30 && strings.Contains(l, " ") {
			t.Errorf("line over width with a break opportunity: %q", l)
		}
	}
	if got := truncate("abcdef", 4); got != "abc…" {
		t.Errorf("truncate = %q", got)
	}
	if got := truncate("abc", 4); got != "abc" {
		t.Errorf("truncate = %q", got)
	}
}

func TestEmptyAndBlockedPlans(t *testing.T) {
	empty := &plan.Plan{Version: plan.Version, Tenant: "https://t.example", APIVersion: "v3", GeneratedAt: t0}
	for _, format := range Formats() {
		out := render(t, empty, format)
		if format == FormatTable && !strings.Contains(out, "Nothing will be changed: no enforce-mode action.") {
			t.Errorf("empty table: %s", out)
		}
	}
	incomplete := fixture()
	incomplete.Error = "listing \"lastUsed isnull\" returned exactly 250 tokens"
	for _, format := range []string{FormatTable, FormatMarkdown, FormatHTML} {
		out := normalize(format, render(t, incomplete, format))
		if !strings.Contains(out, "Nothing will be changed: the data is incomplete") {
			t.Errorf("%s does not say the incomplete plan changes nothing", format)
		}
	}
}

func TestUnknownFormat(t *testing.T) {
	err := Render(&bytes.Buffer{}, fixture(), "yaml")
	if !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), "table") {
		t.Fatalf("Render yaml = %v", err)
	}
	if err := Render(&bytes.Buffer{}, nil, FormatTable); err == nil {
		t.Fatal("Render of a nil plan succeeded")
	}
}

// failWriter fails after n bytes.
type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWriteErrorsReturned(t *testing.T) {
	for _, format := range Formats() {
		if err := Render(&failWriter{n: 100}, fixture(), format); err == nil {
			t.Errorf("%s: a failing writer gave no error", format)
		}
	}
}
