package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// FuzzLoad: Parse never panics (nor hides a panic as its "internal error"),
// every error it returns is a positioned FieldError of this file, and a config
// it accepts evaluates and plans without trouble. The seeds are every config
// in testdata and the shipped examples; testdata/fuzz/FuzzLoad keeps inputs
// fuzzing found interesting.
func FuzzLoad(f *testing.F) {
	var seeds []string
	for _, pattern := range []string{"testdata/valid/*.yaml", "testdata/invalid/*.yaml", "../../policies.yaml", "../../examples/*.yaml"} {
		m, _ := filepath.Glob(pattern)
		seeds = append(seeds, m...)
	}
	if len(seeds) < 20 {
		f.Fatalf("only %d seed files", len(seeds))
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	tk := tok(func(t *pat.Token) { t.LastUsed = nil; t.Scope = pat.Scopes{Null: true} })
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.yaml"
		cfg, err := Parse(name, data)
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatalf("a panic inside Parse: %v", err)
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %T is not Errors: %v", err, err)
			}
			lines := countLines(data)
			for _, e := range errs {
				if e.File != name || e.Line < 1 || e.Line > lines {
					t.Fatalf("error without a valid position (file has %d lines): %+v", lines, e)
				}
				if !strings.HasPrefix(e.Error(), name+":"+strconv.Itoa(e.Line)+": ") {
					t.Fatalf("rendered without its position: %q", e.Error())
				}
			}
			return
		}
		if cfg == nil || len(cfg.Policies) == 0 || cfg.Location == nil {
			t.Fatalf("accepted an unusable config: %+v", cfg)
		}
		if _, err := cfg.ScheduleGroups(); err != nil {
			t.Fatalf("accepted, but its schedules do not parse: %v", err)
		}
		if len(cfg.Listings(testNow)) == 0 {
			t.Fatal("accepted, but plans no listing")
		}
		_ = cfg.Evaluate(tk, Env{Now: testNow, ClientID: "x"})
	})
}

// countLines counts lines the way YAML does: \n, \r\n, \r and (yaml.v3)
// U+0085, U+2028, U+2029 each end one.
func countLines(data []byte) int {
	s := strings.ReplaceAll(string(data), "\r\n", "\n")
	n := 1
	for _, r := range s {
		switch r {
		case '\n', '\r', '\u0085', '\u2028', '\u2029':
			n++
		}
	}
	return n
}
