package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// docTable returns the rows of the first Markdown table after the heading
// (a line equal to heading) in file, each row as its cells.
func docTable(t *testing.T, file, heading string) [][]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("%s has no heading %q", file, heading)
	}
	var rows [][]string
	for _, line := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(line, "|") {
			if len(rows) > 0 {
				break // the end of the table
			}
			continue
		}
		// A | inside a code span is written \|.
		line = strings.ReplaceAll(line, `\|`, "\x00")
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(strings.ReplaceAll(cells[i], "\x00", "|"))
		}
		rows = append(rows, cells)
	}
	if len(rows) < 3 {
		t.Fatalf("%s: no table under %q", file, heading)
	}
	return rows[2:] // without the header and the --- line
}

// codeSpans returns the text of each `code span` in s.
func codeSpans(s string) []string {
	parts := strings.Split(s, "`")
	var out []string
	for i := 1; i < len(parts); i += 2 {
		out = append(out, parts[i])
	}
	return out
}

var docFlagRE = regexp.MustCompile(`(?:^|[\s(\[])(--?[a-z][a-z0-9.-]*)`)

// lookupFlag finds a flag the way the command line does: the command's own,
// then the persistent flags it inherits.
func lookupFlag(cmd *cobra.Command, name string) *pflag.Flag {
	if short, ok := strings.CutPrefix(name, "-"); ok && !strings.HasPrefix(short, "-") {
		if f := cmd.Flags().ShorthandLookup(short); f != nil {
			return f
		}
		return cmd.InheritedFlags().ShorthandLookup(short)
	}
	long := strings.TrimPrefix(name, "--")
	if f := cmd.Flags().Lookup(long); f != nil {
		return f
	}
	return cmd.InheritedFlags().Lookup(long)
}

// TestREADMECommandTable: every command README.md's command table names is
// a command of the CLI, every flag a row shows is a flag of a command of
// that row, and every command of the CLI has a row. A user copies these
// lines; a renamed flag or a command left out of the table is a doc that
// lies.
func TestREADMECommandTable(t *testing.T) {
	root := newRootCmd(Streams{In: strings.NewReader(""), Out: &strings.Builder{}, Err: &strings.Builder{}})
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	root.InitDefaultVersionFlag()
	documented := map[string]bool{}
	for _, row := range docTable(t, "../../README.md", "## Commands") {
		var cmds []*cobra.Command
		for _, span := range codeSpans(row[0]) {
			var words []string
			for _, w := range strings.Fields(strings.TrimPrefix(span, "patjanitor ")) {
				if w != strings.ToLower(w) || strings.HasPrefix(w, "-") || strings.HasPrefix(w, "[") || strings.ContainsAny(w, `"…`) {
					break // an argument (TOKEN_ID, [PLAN]) or a flag
				}
				words = append(words, w)
			}
			if len(words) == 0 {
				continue
			}
			cmd, _, err := root.Find(words)
			if err != nil || cmd.CommandPath() != "patjanitor "+strings.Join(words, " ") {
				t.Errorf("README.md's command table names `patjanitor %s`, which is no command (%v)", strings.Join(words, " "), err)
				continue
			}
			cmds = append(cmds, cmd)
			documented[cmd.CommandPath()] = true
		}
		if len(cmds) == 0 {
			t.Errorf("README.md's command table: no command in the row %q", row[0])
			continue
		}
		// patjanitor --version is the root's own flag.
		cmds = append(cmds, root)
		for _, span := range codeSpans(strings.Join(row, " ")) {
			if f := strings.Fields(span); len(f) > 0 && !isPatjanitorWord(root, f[0]) {
				continue // another program's command line (ssh-keygen -Y sign -n …), or no command
			}
			for _, m := range docFlagRE.FindAllStringSubmatch(span, -1) {
				if !slices.ContainsFunc(cmds, func(c *cobra.Command) bool { return lookupFlag(c, m[1]) != nil }) {
					t.Errorf("README.md's command table shows %s in the row of %q, which none of its commands has", m[1], row[0])
				}
			}
		}
	}
	for _, cmd := range root.Commands() {
		if cmd.Hidden || cmd.Name() == "help" || cmd.Name() == "completion" {
			continue
		}
		var paths []string
		if cmd.HasSubCommands() {
			for _, sub := range cmd.Commands() {
				paths = append(paths, sub.CommandPath())
			}
		} else {
			paths = append(paths, cmd.CommandPath())
		}
		for _, p := range paths {
			if !documented[p] {
				t.Errorf("README.md's command table has no row for `%s`", p)
			}
		}
	}
}

// isPatjanitorWord reports whether a code span starting with w is a
// patjanitor command line or flag: patjanitor, a command's name, a flag.
func isPatjanitorWord(root *cobra.Command, w string) bool {
	if w == "patjanitor" || strings.HasPrefix(w, "-") {
		return true
	}
	cmd, _, err := root.Find([]string{w})
	return err == nil && cmd != root
}

// TestOperationsServeFlagTable: docs/operations.md's serve flags table
// lists exactly serve's own flags, each with its default as --help shows it.
func TestOperationsServeFlagTable(t *testing.T) {
	root := newRootCmd(Streams{In: strings.NewReader(""), Out: &strings.Builder{}, Err: &strings.Builder{}})
	serve, _, err := root.Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, row := range docTable(t, "../../docs/operations.md", "### serve flags") {
		name := strings.Trim(row[0], "`")
		f := lookupFlag(serve, name)
		if f == nil {
			t.Errorf("docs/operations.md's serve flags table lists %s, which serve does not have", name)
			continue
		}
		listed[f.Name] = true
		def := strings.Trim(row[1], "`")
		switch {
		case f.Value.Type() == "bool":
			if def != "off" {
				t.Errorf("serve flags table: %s default %q, want off", name, row[1])
			}
		case f.DefValue == "" || f.DefValue == "0s":
			// none, or a path derived from --state-dir: said in words
		case def != f.DefValue && !(f.Value.Type() == "duration" && strings.HasSuffix(f.DefValue, def)):
			t.Errorf("serve flags table: %s default %q, --help says %q", name, row[1], f.DefValue)
		}
	}
	serve.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
		if !f.Hidden && f.Name != "help" && !listed[f.Name] {
			t.Errorf("docs/operations.md's serve flags table has no row for --%s", f.Name)
		}
	})
}

// githubAnchors returns the anchors GitHub gives the headings of a Markdown
// file: lower case, punctuation other than - and _ dropped, spaces to
// dashes (headings inside code fences are none).
func githubAnchors(t *testing.T, file string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	fence := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
		}
		if fence || !strings.HasPrefix(line, "#") {
			continue
		}
		var a strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#"))) {
			switch {
			case r == ' ':
				a.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
				a.WriteRune(r)
			}
		}
		anchors[a.String()] = true
	}
	return anchors
}

var mdLinkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestDocsLinksResolve: every relative link of README.md and docs/*.md
// names a file of the repository and, with #anchor, one of its headings;
// docs/policies.md's Contents lists every section (##) of the page.
func TestDocsLinksResolve(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../README.md")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLinkRE.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			dest := file
			if path != "" {
				dest = filepath.Join(filepath.Dir(file), path)
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s links to %s, which does not exist", file, target)
					continue
				}
			}
			if anchor != "" && !githubAnchors(t, dest)[anchor] {
				t.Errorf("%s links to %s: %s has no such heading", file, target, dest)
			}
		}
	}
	b, err := os.ReadFile("../../docs/policies.md")
	if err != nil {
		t.Fatal(err)
	}
	_, contents, _ := strings.Cut(string(b), "\n## Contents\n")
	contents, _, _ = strings.Cut(contents, "\n## ")
	for _, line := range strings.Split(string(b), "\n") {
		h, ok := strings.CutPrefix(line, "## ")
		if !ok || h == "Contents" {
			continue
		}
		if !strings.Contains(contents, "["+h+"](#") {
			t.Errorf("docs/policies.md's Contents does not list the section %q", h)
		}
	}
}

// docCommandLines returns the patjanitor command lines of README.md and
// docs/*.md: the code spans that start with "patjanitor ", and the commands
// of the sh and console blocks (a line's commands split at &&, |, ; and &,
// continuation lines joined, comments, redirections and VAR=value prefixes
// dropped), each with the file it is in.
func docCommandLines(t *testing.T) [][2]string {
	t.Helper()
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../README.md")
	spanRE := regexp.MustCompile("`((?:bin/)?patjanitor [^`\n]+)`")
	blockRE := regexp.MustCompile("(?s)```(?:sh|console)\n(.*?)```")
	splitRE := regexp.MustCompile(`\s*(?:&&|\|\||\||;|&)\s*`)
	var out [][2]string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range spanRE.FindAllStringSubmatch(string(b), -1) {
			out = append(out, [2]string{f, m[1]})
		}
		for _, m := range blockRE.FindAllStringSubmatch(string(b), -1) {
			block := strings.ReplaceAll(m[1], "\\\n", " ")
			for _, line := range strings.Split(block, "\n") {
				line = strings.TrimPrefix(strings.TrimSpace(line), "$ ")
				if i := strings.Index(line, " #"); i >= 0 {
					line = line[:i]
				}
				for _, part := range splitRE.Split(line, -1) {
					fields := strings.Fields(part)
					for len(fields) > 0 && strings.Contains(fields[0], "=") {
						fields = fields[1:] // PATJANITOR_CLIENT_ID=… patjanitor plan
					}
					part = strings.Join(fields, " ")
					if strings.HasPrefix(part, "patjanitor ") || strings.HasPrefix(part, "bin/patjanitor ") {
						out = append(out, [2]string{f, part})
					}
				}
			}
		}
	}
	return out
}

// shellWords splits a command line as sh does for these lines: words at
// blanks, '…' and "…" quoting, redirections (> FILE, < FILE) left out.
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	var out []string
	for i := 0; i < len(words); i++ {
		if words[i] == ">" || words[i] == "<" || words[i] == ">>" {
			i++ // and its file
			continue
		}
		out = append(out, words[i])
	}
	return out
}

// TestDocsCommandLinesParse: every patjanitor command line in README.md and
// docs/*.md names a command that exists and only flags that command takes
// (the flags' values are not judged: N, TOKEN_ID and … are placeholders).
// A command or flag renamed without its docs fails here.
func TestDocsCommandLinesParse(t *testing.T) {
	lines := docCommandLines(t)
	if len(lines) < 40 {
		t.Fatalf("found only %d command lines in the docs: %q", len(lines), lines)
	}
	for _, l := range lines {
		file, line := l[0], l[1]
		args := normalizeArgs(shellWords(line)[1:])
		root := newRootCmd(Streams{In: strings.NewReader(""), Out: &strings.Builder{}, Err: &strings.Builder{}})
		root.InitDefaultHelpCmd()
		root.InitDefaultCompletionCmd()
		root.InitDefaultVersionFlag()
		cmd, rest, err := root.Find(args)
		if err != nil {
			t.Errorf("%s: `%s`: %v", file, line, err)
			continue
		}
		if err := cmd.ParseFlags(rest); err != nil && strings.Contains(err.Error(), "unknown") {
			t.Errorf("%s: `%s`: %v", file, line, err)
		}
	}
}

var commentBreakRE = regexp.MustCompile(`\s*\n\s*(//)?\s*`)

// TestSourceDocReferencesResolve: the section a message or comment of the
// code sends the reader to (docs/operations.md, "Rotating patjanitor's PAT")
// is a heading of that page (the quoted text starts it).
func TestSourceDocReferencesResolve(t *testing.T) {
	// A quoted section may be broken over two comment lines ("The
	// remaining\n// waits"): the line break and the // are one space.
	refRE := regexp.MustCompile(`docs/([a-z]+\.md),? *\(?\\?"([^"\\]+)\\?"`)
	headings := map[string][]string{}
	found := 0
	err := filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range refRE.FindAllStringSubmatch(string(b), -1) {
			doc, section := m[1], commentBreakRE.ReplaceAllString(m[2], " ")
			if headings[doc] == nil {
				headings[doc] = docHeadings(t, "../../docs/"+doc)
			}
			found++
			if !slices.ContainsFunc(headings[doc], func(h string) bool { return strings.HasPrefix(h, section) }) {
				t.Errorf("%s refers to docs/%s, %q: no heading of that page starts so", path, doc, section)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 8 {
		t.Fatalf("found only %d references to docs sections in the code", found)
	}
}

// docHeadings returns the text of the headings of a Markdown file, code
// spans' backticks dropped.
func docHeadings(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var hs []string
	fence := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
		}
		if !fence && strings.HasPrefix(line, "#") {
			hs = append(hs, strings.ReplaceAll(strings.TrimSpace(strings.TrimLeft(line, "#")), "`", ""))
		}
	}
	return hs
}

// TestREADMELayoutListsEveryPackage: README.md's layout names every package
// directly under internal/ (buildinfo and testmain were missing).
func TestREADMELayoutListsEveryPackage(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(b), "\n## Layout\n")
	if !ok {
		t.Fatal("README.md has no ## Layout")
	}
	layout, _, _ = strings.Cut(layout, "\n## ")
	entries, err := os.ReadDir("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && !regexp.MustCompile(`internal/`+regexp.QuoteMeta(e.Name())+`\b`).MatchString(layout) {
			t.Errorf("README.md's layout does not name internal/%s", e.Name())
		}
	}
}
