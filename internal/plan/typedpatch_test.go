package plan

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// A plan written before patch operations were typed (by the code of the
// untyped PatchOp{Op, Path, Value any}: testdata/plan-before-typed-patch.json,
// every kind of operation the policies build, strings escaped the HTML way)
// still reads, verifies, writes back byte for byte and seals to the same hash;
// its operations are the typed ones, by ==.
func TestPlanBeforeTypedPatchReadsAndResealsAlike(t *testing.T) {
	old, err := os.ReadFile("testdata/plan-before-typed-patch.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Read(bytes.NewReader(old))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if err := p.VerifyHash(); err != nil {
		t.Fatalf("VerifyHash: %v", err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, p); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), old) {
		t.Fatalf("written back differently:\n%s", buf.Bytes())
	}
	sealed := p.PlanHash
	if err := p.Seal(); err != nil || p.PlanHash != sealed {
		t.Fatalf("sealed again: %s, %v; the file says %s", p.PlanHash, err, sealed)
	}
	exp := time.Date(2026, 12, 10, 3, 0, 0, 123e6, time.UTC)
	want := map[string][]pat.PatchOp{
		"a1": {pat.Rename("narrowed-ci <deploy> & \"co\" \u2028 é 日本 \\ \t"), pat.SetScopes([]string{"idn:b", "<x>", "sp:scopes:default"})},
		"b2": {pat.SetScopes([]string{})},
		"c3": {pat.SetExpiration(exp), pat.SetNeverExpires(false)},
		"d4": {pat.SetExpiration(exp)},
	}
	for _, it := range p.Items.All() {
		if !slices.Equal(it.Patch, want[it.TokenID]) {
			t.Errorf("%s: patch %v, want %v", it.TokenID, it.Patch, want[it.TokenID])
		}
	}
}

// An operation outside the closed set is refused by Read, naming the item,
// the operation and what was wrong.
func TestReadRefusesOperationsOutsideTheSet(t *testing.T) {
	old, err := os.ReadFile("testdata/plan-before-typed-patch.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ from, to, want string }{
		{`"op": "replace",
          "path": "/name"`, `"op": "add",
          "path": "/name"`, `items[1] "a1": patch[0]: op "add": want replace`},
		{`"path": "/userAwareTokenNeverExpires",
          "value": false`, `"path": "/userAwareTokenNeverExpires",
          "value": null`, `items[2] "c3": patch[1]: /userAwareTokenNeverExpires: the value is missing or null`},
		{`"path": "/scope",
          "value": []`, `"path": "/owner",
          "value": []`, `items[3] "b2": patch[0]: path "/owner"`},
		{`"value": "2026-12-10T03:00:00.123Z"`, `"value": "2026-12-10T03:00:00.123456Z"`, `items[0] "d4": patch[0]: /expirationDate: "2026-12-10T03:00:00.123456Z" is not in the form 2026-12-10T03:00:00.123Z`},
	} {
		doc := strings.Replace(string(old), c.from, c.to, 1)
		if doc == string(old) {
			t.Fatalf("%q not in the plan", c.from)
		}
		_, err := Read(strings.NewReader(doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Read with %s: %v, want an error naming %q", c.to, err, c.want)
		}
	}
}
