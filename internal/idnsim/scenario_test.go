package idnsim

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

func TestGoldenScenario(t *testing.T) {
	s, sc, err := LoadScenarioFile("testdata/golden.yaml", Options{Clock: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	if sc.Now == nil || !sc.Now.Equal(t0) {
		t.Fatalf("now %v", sc.Now)
	}
	toks := s.Tokens()
	if len(toks) != 15 || len(s.Identities()) != 5 {
		t.Fatalf("%d tokens, %d identities", len(toks), len(s.Identities()))
	}
	admin := s.Admin()
	if admin.ClientID != "ad000000000000000000000000000c1d" || admin.ClientSecret != "9f1c2e7a5b3d4c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a" {
		t.Fatalf("admin %+v", admin)
	}
	byID := map[string]pat.Token{}
	for _, tk := range toks {
		byID[tk.ID] = tk
	}
	legacy := byID["b0b00000000000000000000000000202"]
	if !legacy.Scope.Null || legacy.ExpirationDate != nil || legacy.Owner.Name != "Bob Tanaka" {
		t.Errorf("legacy-integration %+v", legacy)
	}
	ghost := byID["0000000000000000000000000000de01"]
	if ghost.Owner.Name != "Former Employee" {
		t.Errorf("ghost owner %+v", ghost.Owner)
	}
	if lu := byID["da7e0000000000000000000000000403"].LastUsed; lu == nil || !lu.Equal(t0.Add(-90*24*time.Hour)) {
		t.Errorf("airflow-dag lastUsed %v", lu)
	}
	if !byID["ca700000000000000000000000000301"].Managed {
		t.Error("workflow-onboarding is not managed")
	}
	// The admin credential logs in (over HTTP).
	e := &env{t: t, sim: s, clock: newClock()}
	e.srv = newTestServer(t, s)
	e.admin()
}

func TestScenarioFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("scenario files %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, sc, err := LoadScenarioFile(f, Options{Clock: newClock().Now})
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Tokens()) < len(sc.Tokens) {
				t.Fatalf("%d tokens loaded of %d", len(s.Tokens()), len(sc.Tokens))
			}
			if _, ok := s.Token(s.Admin().ClientID); !ok {
				t.Fatal("the admin PAT is not a token")
			}
		})
	}
}

func TestScenarioRelativeTimesAndOptions(t *testing.T) {
	const doc = `
options: {rateLimit: 2, rateWindow: 1m, accessTokenTTL: 90s, patchOthers: true, pageCap: 5}
identities: [{id: i1, name: Ida One}]
tokens:
  - {id: t1, name: a, owner: i1, secret: pw, created: -2w, lastUsed: -36h, expirationDate: +1.5d}
  - {id: t2, name: b, owner: i1, created: now}
`
	c := newClock()
	s := New(Options{Clock: c.Now})
	if err := s.LoadScenario(strings.NewReader(doc)); err != nil {
		t.Fatal(err)
	}
	t1, _ := s.Token("t1")
	if !t1.Created.Equal(t0.Add(-14*24*time.Hour)) || !t1.LastUsed.Equal(t0.Add(-36*time.Hour)) || !t1.ExpirationDate.Equal(t0.Add(36*time.Hour)) {
		t.Fatalf("relative times: %+v", t1)
	}
	if sc := t1.Scope; sc.Null || len(sc.Values) != 1 || sc.Values[0] != pat.ScopeAll {
		t.Fatalf("omitted scope %+v, want [sp:scopes:all]", t1.Scope)
	}
	// No admin in the file: a generated org admin logs in.
	if _, ok := s.Token(s.Admin().ClientID); !ok || len(s.Tokens()) != 3 {
		t.Fatalf("generated admin missing: %d tokens", len(s.Tokens()))
	}
	if !s.set.patchOthers || s.set.pageCap != 5 || s.set.accessTokenTTL != 90*time.Second || s.limiter.n != 2 || s.limiter.window != time.Minute {
		t.Fatalf("options not applied: %+v n=%d w=%v", s.set, s.limiter.n, s.limiter.window)
	}
}

func TestScenarioErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"unknown key", "tokens:\n  - name: a\n    owner: o\n    color: red\n",
			[]string{"bad.yaml: yaml: unmarshal errors:\n  line 4: field color not found"}},
		{"duplicate key", "tokens:\n  - name: a\n    name: b\n    owner: o\n",
			[]string{`line 3: mapping key "name" already defined at line 2`}},
		{"wrong type", "tokens:\n  - name: a\n    owner: o\n    managed: maybe\n",
			[]string{"line 4: cannot unmarshal !!str `maybe` into bool"}},
		{"bad time", "tokens:\n  - name: a\n    owner: o\n    created: yesterday\n",
			[]string{`bad.yaml:4: tokens[0] "a": created: "yesterday" is neither an RFC 3339 date-time nor a relative time like -90d`}},
		{"all errors together", "identities:\n  - name: Nameless\ntokens:\n  - owner: o\n  - name: x\n    owner: o\n    lastUsed: -10d\n    created: -1d\n  - name: y\n    owner: o\n    accessTokenValiditySeconds: 5\n    scope: {a: b}\n",
			[]string{
				"bad.yaml:2: identities[0]: id is required",
				"bad.yaml:4: tokens[0]: name is required",
				`bad.yaml:7: tokens[1] "x": lastUsed 2026-11-16T03:00:00.000Z is before created 2026-11-25T03:00:00.000Z`,
				`bad.yaml:11: tokens[2] "y": accessTokenValiditySeconds 5 is not between 15 and 43200`,
				`bad.yaml:12: tokens[2] "y": scope must be a list of strings or null`,
			}},
		{"duplicates", "tokens:\n  - {id: t1, name: a, owner: o}\n  - {id: t1, name: a, owner: o}\n",
			[]string{`bad.yaml:3: tokens[1] "a": duplicate token id "t1"`, `bad.yaml:3: tokens[1] "a": owner o already has a token with this name`}},
		{"too many tokens", "tokens:\n" + manyTokens(11),
			[]string{`bad.yaml:12: tokens[10] "t10": owner o has more than 10 tokens`}},
		{"unknown admin", "admin: nope\ntokens: [{name: a, owner: o}]\n", []string{`bad.yaml:1: admin: "nope" is not the id of a token in this scenario`}},
		{"bad identity state", "identities: [{id: i, name: I, identityState: GONE, manager: m}]\n",
			[]string{`bad.yaml:1: identities[0]: identityState "GONE" is not ACTIVE`, `bad.yaml:1: identities[0]: manager "m" is not an identity`}},
		{"bad options", "options:\n  rateWindow: soon\n  pageCap: -1\n",
			[]string{`bad.yaml:2: options.rateWindow: "soon" is not a positive duration`, `bad.yaml:3: options.pageCap: must not be negative`}},
		{"bad now", "now: tomorrow\n", []string{`bad.yaml:1: now: "tomorrow" is not an RFC 3339 date-time`}},
		{"empty", "", []string{"bad.yaml: empty scenario"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScenario("bad.yaml", []byte(tc.doc), t0)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%s\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
	// A file's errors name the file.
	path := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(path, []byte("tokens:\n  - name: a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadScenarioFile(path, Options{}); err == nil || !strings.Contains(err.Error(), `broken.yaml:2: tokens[0] "a": owner is required`) {
		t.Fatalf("file error: %v", err)
	}
}

func manyTokens(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("  - {name: t" + strconv.Itoa(i) + ", owner: o}\n")
	}
	return b.String()
}

// Without a clock of the caller's (patjanitor sim --scenario), a scenario
// written for a past now is moved forward to the wall clock, on which the
// simulator runs: its tokens are as stale, and expire as far ahead, as
// written, and its answers' Date is the wall clock's, as a tenant's is.
func TestScenarioFileMovedForwardToNow(t *testing.T) {
	before := time.Now()
	s, sc, err := LoadScenarioFile("testdata/golden.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	written, err := ReadScenarioFile("testdata/golden.yaml", before)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Now == nil || sc.Now.Before(before.Truncate(time.Millisecond)) || sc.Now.After(time.Now()) {
		t.Fatalf("scenario now %v, want the wall clock at the load (%v)", sc.Now, before)
	}
	d := sc.Now.Sub(*written.Now)
	byID := map[string]pat.Token{}
	for _, tk := range s.Tokens() {
		byID[tk.ID] = tk
	}
	for _, w := range written.Tokens {
		got := byID[w.Token.ID]
		if !got.Created.Equal(w.Token.Created.Add(d)) {
			t.Errorf("%s created %v, want %v moved by %v", w.Token.ID, got.Created, w.Token.Created, d)
		}
		for _, tt := range []struct {
			name      string
			got, want *time.Time
		}{{"lastUsed", got.LastUsed, w.Token.LastUsed}, {"expirationDate", got.ExpirationDate, w.Token.ExpirationDate}} {
			if (tt.got == nil) != (tt.want == nil) || (tt.got != nil && !tt.got.Equal(tt.want.Add(d))) {
				t.Errorf("%s %s %v, want %v moved by %v", w.Token.ID, tt.name, tt.got, tt.want, d)
			}
		}
	}
	if now := s.now(); time.Until(now).Abs() > time.Minute {
		t.Errorf("simulator clock %v, want the wall clock", now)
	}
}
