package plan

import (
	"fmt"
	"strings"
	"testing"
)

func TestDuplicateKey(t *testing.T) {
	many := make([]string, 100)
	for i := range many {
		many[i] = fmt.Sprintf(`"k%d":%d`, i, i)
	}
	for doc, want := range map[string]string{
		`{"a":1,"b":2}`:                             "",
		`[{"a":1},{"a":2}]`:                         "",
		`{"a":{"a":{"a":1}},"b":["a","a"]}`:         "",
		`{"a":"b","c":"a"}`:                         "",
		`{"items":[],"x":1,"items":[1]}`:            "items",
		`{"items":[], "\u0069tems":[1]}`:            "items",
		`{"o":[{"id":"x","id":"y"}]}`:               "id",
		`{"s":"\"a\":1","a":1}`:                     "",
		"{" + strings.Join(many, ",") + `,"k7":0}`:  "k7",
		"{" + strings.Join(many, ",") + `,"new":0}`: "",
		`{"a" : 1, "b": {"c": 1}, "a" : 2}`:         "a",
	} {
		key, _, dup := duplicateKey([]byte(doc))
		if (want != "") != dup || key != want {
			t.Errorf("%.60s: got %q %v, want %q", doc, key, dup, want)
		}
	}
}

// Read refuses a plan whose keys repeat, naming the key.
func TestReadRefusesDuplicateKeys(t *testing.T) {
	doc := `{"version":1,"tenant":"t","apiVersion":"v3","generatedAt":"2026-01-01T00:00:00Z","configDigest":"","planHash":"","population":0,"items":[],"items":[]}`
	if _, err := Read(strings.NewReader(doc)); err == nil || !strings.Contains(err.Error(), `duplicate key "items"`) {
		t.Fatalf("Read: %v", err)
	}
}
