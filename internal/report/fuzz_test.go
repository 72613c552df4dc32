package report

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/plan"
)

// FuzzRender: every plan that plan.Read accepts renders in every format
// without error, and no hidden character of its text reaches the table.
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
		}
	})
}
