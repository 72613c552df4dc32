package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// Journal requests recorded before patch operations were typed
// (testdata/requests-before-typed-patch.jsonl, written by the code of the
// untyped PatchOp{Op, Path, Value any} from the values the engine recorded)
// read back as the typed operations and encode byte for byte as they were:
// the records a hash chain covers keep their bytes.
func TestRequestsBeforeTypedPatchEncodeAlike(t *testing.T) {
	data, err := os.ReadFile("testdata/requests-before-typed-patch.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Date(2026, 12, 10, 3, 0, 0, 123e6, time.UTC)
	want := [][]pat.PatchOp{
		{pat.Rename("narrowed-ci <deploy> & \"co\" \u2028 é 日本 \\ \t"), pat.SetScopes([]string{"idn:b", "<x>", "sp:scopes:default"})},
		{pat.SetExpiration(exp), pat.SetNeverExpires(false)},
		{pat.SetScopes([]string{})},
		{pat.SetEnabled(false)},
		{pat.SetEnabled(true)},
		nil,
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(lines), len(want))
	}
	for i, line := range lines {
		var r Request
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if !slices.Equal(r.Patch, want[i]) {
			t.Errorf("line %d: patch %v, want %v", i+1, r.Patch, want[i])
		}
		for _, patch := range [][]pat.PatchOp{r.Patch, want[i]} {
			b, err := json.Marshal(Request{Method: r.Method, Path: r.Path, Patch: patch})
			if err != nil || !bytes.Equal(b, line) {
				t.Errorf("line %d encodes as %s (%v), was %s", i+1, b, err, line)
			}
		}
	}
}
