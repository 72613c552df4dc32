package apiclient

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzClientJSON: decoding never panics, and what decodes encodes to a form
// that decodes again to the same encoding (the journal and the plan rely on
// it); a client without id or created is refused.
func FuzzClientJSON(f *testing.F) {
	for _, s := range []string{
		`{"id":"a","name":"n","created":"2026-01-02T03:04:05.123Z","scope":null,"internal":false,"enabled":true,"grantTypes":["CLIENT_CREDENTIALS"],"lastUsed":null}`,
		`{"id":"a","created":"2026-01-02T03:04:05Z"}`,
		`{"id":"a","created":"2026-01-02T03:04:05.123456789+02:00","modified":"2026-01-02T03:04:05Z","lastUsed":"2026-01-02T03:04Z","scope":[]}`,
		`{"id":"","created":"2026-01-02T03:04:05Z"}`,
		`{"id":"a","created":"garbage"}`,
		`{"id":"a","created":"2026-01-02T03:04:05Z","internal":null,"enabled":"yes"}`,
		`{"id":"a","created":"2026-01-02T03:04:05Z","businessName":null,"description":"d","type":"PUBLIC"}`,
		`[]`, `null`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Client
		if err := json.Unmarshal(b, &c); err != nil {
			return
		}
		if c.ID == "" {
			t.Fatalf("%s decoded without an id: %+v", b, c)
		}
		enc, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("encode %+v: %v", c, err)
		}
		var c2 Client
		if err := json.Unmarshal(enc, &c2); err != nil {
			t.Fatalf("%s re-encodes as %s, which does not decode: %v", b, enc, err)
		}
		enc2, _ := json.Marshal(c2)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %s then %s", enc, enc2)
		}
		if (c.Internal == nil) != (c2.Internal == nil) || (c.Enabled == nil) != (c2.Enabled == nil) {
			t.Fatalf("a missing internal or enabled did not survive: %s -> %s", b, enc)
		}
	})
}
