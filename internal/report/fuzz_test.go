package report

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
)

// FuzzRender: every plan that plan.Read accepts renders in every format
// without error, no hidden character of its text reaches the table, and
// nothing of it pings or links in the Markdown pasted into GitHub.
func FuzzRender(f *testing.F) {
	seed, err := os.ReadFile("testdata/plan.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	var b bytes.Buffer
	if err := plan.Write(&b, nastyPlan()); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := plan.Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, format := range Formats() {
			var out bytes.Buffer
			if err := Render(&out, p, format); err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			if format == FormatTable && strings.ContainsAny(out.String(), "\x1b\r\u202e\u200b") {
				t.Fatalf("table carries a hidden character:\n%q", out.String())
			}
			if format == FormatMarkdown {
				// Nothing a GitHub comment would turn into a mention or
				// an issue link (markdown_mentions_test.go).
				for l := range strings.Lines(out.String()) {
					_, text := shownText(t, l)
					if m := ghMention.FindString(text) + ghIssue.FindString(text); m != "" {
						t.Fatalf("GitHub would link %q in %q", m, l)
					}
				}
			}
		}
	})
}

// FuzzPatchText: the reports render a patch from its typed operations as
// its JSON reads, decoded and written again without HTML escaping (the path
// through the plan's JSON they took before).
func FuzzPatchText(f *testing.F) {
	f.Add("ci <deploy> & \u2028", "sp:scopes:all", "idn:sources:read", int64(1767225600123), true, false)
	f.Add("\xff\xfe", "", "a\"b\\c", int64(0), false, true)
	f.Fuzz(func(t *testing.T, name, s1, s2 string, ms int64, never, nullScope bool) {
		scopes := []string{s1, s2}
		if nullScope {
			scopes = nil
		}
		it := &plan.Item{TokenID: "t", Patch: []pat.PatchOp{
			pat.Rename(name), pat.SetScopes(scopes),
			pat.SetExpiration(time.UnixMilli(ms % 253402300800000).UTC()), pat.SetNeverExpires(never),
		}}
		enc, err := json.Marshal(it.Patch)
		if err != nil {
			t.Fatal(err)
		}
		wantJSON, err := jsonText(enc)
		if err != nil {
			t.Fatal(err)
		}
		gotJSON, err := patchJSON(it)
		if err != nil || gotJSON != wantJSON {
			t.Fatalf("patchJSON = %q, %v; want %q", gotJSON, err, wantJSON)
		}
		var decoded []struct {
			Op, Path string
			Value    json.RawMessage
		}
		if err := json.Unmarshal(enc, &decoded); err != nil {
			t.Fatal(err)
		}
		ops, err := patchOps(it)
		if err != nil || len(ops) != len(decoded) {
			t.Fatalf("patchOps = %v, %v", ops, err)
		}
		for i, d := range decoded {
			v, err := jsonText(d.Value)
			if err != nil {
				t.Fatal(err)
			}
			if want := (op{Op: d.Op, Path: d.Path, Value: v}); ops[i] != want {
				t.Fatalf("op %d = %+v; want %+v", i, ops[i], want)
			}
		}
	})
}
