package pat

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func ptrTime(t time.Time) *time.Time { return &t }
func ptrBool(b bool) *bool           { return &b }

func TestTokenJSONRoundTrip(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 678000000, time.UTC)
	for name, tok := range map[string]Token{
		"every field": {
			ID: "ef38f94347e94562b5bb8424a56397d8", Name: "CI deploy",
			Scope:                      ScopesOf("idn:all-personal-access-tokens:read", ScopeAll),
			Owner:                      Owner{Type: "IDENTITY", ID: "2c9180a46faadee4016fb4e018c20639", Name: "Support"},
			Created:                    created,
			LastUsed:                   ptrTime(created.Add(48 * time.Hour)),
			Managed:                    true,
			AccessTokenValiditySeconds: 36900,
			ExpirationDate:             ptrTime(created.AddDate(0, 6, 0)),
			UserAwareTokenNeverExpires: ptrBool(false),
		},
		"never used, never expires, null scope": {
			ID: "a", Name: "n", Scope: Scopes{Null: true}, Created: created,
			UserAwareTokenNeverExpires: ptrBool(true),
		},
		"empty scope": {ID: "b", Name: "n", Scope: ScopesOf(), Created: created},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := json.Marshal(tok)
			if err != nil {
				t.Fatal(err)
			}
			var got Token
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("unmarshal %s: %v", b, err)
			}
			if !reflect.DeepEqual(got, tok) {
				t.Fatalf("round trip changed the token\n got %#v\nwant %#v\njson %s", got, tok, b)
			}
		})
	}
}

func TestTokenMarshalShape(t *testing.T) {
	tok := Token{
		ID: "a", Name: "n", Scope: Scopes{Null: true},
		Created: time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.FixedZone("x", 3600)),
	}
	b, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["created"] != "2026-01-02T02:04:05.678Z" {
		t.Errorf("created = %v, want UTC milliseconds", m["created"])
	}
	if v, ok := m["lastUsed"]; !ok || v != nil {
		t.Errorf("lastUsed = %v (present %v), want an explicit null for never used", v, ok)
	}
	if v, ok := m["scope"]; !ok || v != nil {
		t.Errorf("scope = %v (present %v), want null", v, ok)
	}
	if _, ok := m["expirationDate"]; ok {
		t.Errorf("expirationDate present for a nil ExpirationDate: %s", b)
	}
	if _, ok := m["userAwareTokenNeverExpires"]; ok {
		t.Errorf("userAwareTokenNeverExpires present when nil: %s", b)
	}
	empty, _ := json.Marshal(Token{ID: "a", Scope: Scopes{}})
	if !strings.Contains(string(empty), `"scope":[]`) {
		t.Errorf("a zero non-null Scopes marshals as %s, want []", empty)
	}
}

func TestTokenScopeNullVersusEmpty(t *testing.T) {
	const head = `{"id":"a","name":"n","owner":{"id":"o"},"created":"2026-01-02T03:04:05.000Z"`
	tests := []struct {
		name      string
		json      string
		null      bool
		values    []string
		effective []string
	}{
		{"null", head + `,"scope":null}`, true, nil, []string{ScopeAll}},
		{"absent", head + `}`, true, nil, []string{ScopeAll}},
		{"empty", head + `,"scope":[]}`, false, []string{}, []string{}},
		{"listed", head + `,"scope":["sp:scopes:default"]}`, false, []string{"sp:scopes:default"}, []string{"sp:scopes:default"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tok Token
			if err := json.Unmarshal([]byte(tt.json), &tok); err != nil {
				t.Fatal(err)
			}
			if tok.Scope.Null != tt.null || !reflect.DeepEqual(tok.Scope.Values, tt.values) {
				t.Fatalf("scope = %#v, want Null=%v Values=%#v", tok.Scope, tt.null, tt.values)
			}
			if got := tok.Scope.Effective(); !reflect.DeepEqual(got, tt.effective) {
				t.Fatalf("Effective() = %#v, want %#v", got, tt.effective)
			}
			if got, want := tok.Scope.Has(ScopeAll), tt.null; got != want {
				t.Fatalf("Has(%s) = %v, want %v", ScopeAll, got, want)
			}
		})
	}
}

func TestTokenUnmarshalAPIShapes(t *testing.T) {
	// The v2025 list item from the spec, with a 6-digit lastUsed and a null
	// expirationDate (never expires).
	const v2025 = `{
	  "id": "86f1dc6fe8f54414950454cbb11278fa",
	  "name": "NodeJS Integration",
	  "scope": ["demo:personal-access-token-scope:first", "demo:personal-access-token-scope:second"],
	  "owner": {"type": "IDENTITY", "id": "2c9180a46faadee4016fb4e018c20639", "name": "Support"},
	  "created": "2017-07-11T18:45:37.098Z",
	  "lastUsed": "2023-01-04T18:58:17.486584Z",
	  "managed": false,
	  "accessTokenValiditySeconds": 36900,
	  "expirationDate": null,
	  "userAwareTokenNeverExpires": true,
	  "someFutureField": {"x": 1}
	}`
	var tok Token
	if err := json.Unmarshal([]byte(v2025), &tok); err != nil {
		t.Fatal(err)
	}
	want := Token{
		ID: "86f1dc6fe8f54414950454cbb11278fa", Name: "NodeJS Integration",
		Scope:                      ScopesOf("demo:personal-access-token-scope:first", "demo:personal-access-token-scope:second"),
		Owner:                      Owner{Type: "IDENTITY", ID: "2c9180a46faadee4016fb4e018c20639", Name: "Support"},
		Created:                    time.Date(2017, 7, 11, 18, 45, 37, 98000000, time.UTC),
		LastUsed:                   ptrTime(time.Date(2023, 1, 4, 18, 58, 17, 486584000, time.UTC)),
		AccessTokenValiditySeconds: 36900,
		UserAwareTokenNeverExpires: ptrBool(true),
	}
	if !reflect.DeepEqual(tok, want) {
		t.Fatalf("got %#v\nwant %#v", tok, want)
	}
	if tok.LastUsedString() != "2023-01-04T18:58:17.486Z" {
		t.Errorf("LastUsedString = %q", tok.LastUsedString())
	}
	never := Token{}
	if never.LastUsedString() != "never" {
		t.Errorf("LastUsedString of a never-used token = %q", never.LastUsedString())
	}

	// v3: a lenient offset timestamp and expirationDate present.
	const v3 = `{"id":"x","name":"n","scope":null,"owner":{},"created":"2026-01-02T04:04:05+01:00","lastUsed":null,"expirationDate":"2026-07-02T03:04:05.1Z"}`
	var tok3 Token
	if err := json.Unmarshal([]byte(v3), &tok3); err != nil {
		t.Fatal(err)
	}
	if !tok3.Created.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) || tok3.Created.Location() != time.UTC {
		t.Errorf("created = %v", tok3.Created)
	}
	if tok3.LastUsed != nil {
		t.Errorf("lastUsed null decoded as %v", tok3.LastUsed)
	}
	if tok3.ExpirationDate == nil || !tok3.ExpirationDate.Equal(time.Date(2026, 7, 2, 3, 4, 5, 100000000, time.UTC)) {
		t.Errorf("expirationDate = %v", tok3.ExpirationDate)
	}
	if tok3.UserAwareTokenNeverExpires != nil {
		t.Errorf("userAwareTokenNeverExpires absent decoded as %v", *tok3.UserAwareTokenNeverExpires)
	}
}

func TestTokenUnmarshalRejects(t *testing.T) {
	for name, in := range map[string]string{
		"no id":              `{"name":"n","created":"2026-01-02T03:04:05.000Z"}`,
		"no created":         `{"id":"a","name":"n"}`,
		"garbage created":    `{"id":"a","created":"last tuesday"}`,
		"garbage lastUsed":   `{"id":"a","created":"2026-01-02T03:04:05.000Z","lastUsed":"2026-01-02"}`,
		"garbage expiration": `{"id":"a","created":"2026-01-02T03:04:05.000Z","expirationDate":"6 Months from created date"}`,
		"numeric created":    `{"id":"a","created":1767323045}`,
		"scope not a list":   `{"id":"a","created":"2026-01-02T03:04:05.000Z","scope":"sp:scopes:all"}`,
		"scope of numbers":   `{"id":"a","created":"2026-01-02T03:04:05.000Z","scope":[1]}`,
		"null token":         `null`,
		"array":              `[]`,
	} {
		t.Run(name, func(t *testing.T) {
			tok := Token{ID: "untouched"}
			err := json.Unmarshal([]byte(in), &tok)
			if err == nil {
				t.Fatalf("Unmarshal(%s) = %#v, want an error", in, tok)
			}
			if tok.ID != "untouched" {
				t.Fatalf("a failed Unmarshal changed the token to %#v", tok)
			}
			if strings.Contains(name, "garbage") && !errors.Is(err, ErrBadTime) {
				t.Errorf("error %v does not wrap ErrBadTime", err)
			}
		})
	}
}

func TestScopesOf(t *testing.T) {
	if s := ScopesOf(); s.Null || s.Values == nil || len(s.Values) != 0 {
		t.Errorf("ScopesOf() = %#v, want a non-null empty list", s)
	}
	if s := ScopesOf("a"); s.Has("a") != true || s.Has(ScopeAll) {
		t.Errorf("ScopesOf(a).Has wrong: %#v", s)
	}
}

func TestListingString(t *testing.T) {
	cut := time.Date(2026, 8, 28, 5, 0, 0, 0, time.FixedZone("x", 2*3600))
	for _, tt := range []struct {
		l    Listing
		want string
	}{
		{Listing{Kind: ListLastUsedBefore, Cutoff: cut}, "lastUsed le 2026-08-28T03:00:00.000Z"},
		{Listing{Kind: ListNeverUsed}, "lastUsed isnull"},
		{Listing{Kind: ListAll}, "all tokens (no filter)"},
	} {
		if got := tt.l.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.l, got, tt.want)
		}
	}
}

func TestParseAPIVersion(t *testing.T) {
	for in, want := range map[string]APIVersion{"": V3, "v3": V3, "v2025": V2025, "v1": V1} {
		got, err := ParseAPIVersion(in)
		if err != nil || got != want {
			t.Errorf("ParseAPIVersion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"V3", "beta", "v2024", "3"} {
		if _, err := ParseAPIVersion(in); err == nil {
			t.Errorf("ParseAPIVersion(%q) accepted", in)
		}
	}
	if V3.ExpirationWritable() || !V2025.ExpirationWritable() || !V1.ExpirationWritable() {
		t.Error("ExpirationWritable: want false for v3, true for v2025 and v1")
	}
}

func TestPatchOpJSON(t *testing.T) {
	exp := time.Date(2026, 12, 26, 3, 0, 0, 123456789, time.FixedZone("x", 3600))
	ops := []PatchOp{SetScopes([]string{}), SetScopes(nil), SetScopes([]string{"<a>", "sp:scopes:default"}), Rename("ci & \"deploy\""),
		SetExpiration(exp), SetNeverExpires(false), SetEnabled(true)}
	b, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"op":"replace","path":"/scope","value":[]},{"op":"replace","path":"/scope","value":null},` +
		`{"op":"replace","path":"/scope","value":["\u003ca\u003e","sp:scopes:default"]},{"op":"replace","path":"/name","value":"ci \u0026 \"deploy\""},` +
		`{"op":"replace","path":"/expirationDate","value":"2026-12-26T02:00:00.123Z"},{"op":"replace","path":"/userAwareTokenNeverExpires","value":false},` +
		`{"op":"replace","path":"/enabled","value":true}]`
	if string(b) != want {
		t.Errorf("patch JSON = %s, want %s", b, want)
	}
	// Read back, every operation is the one written, by ==.
	var back []PatchOp
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for i := range ops {
		if back[i] != ops[i] {
			t.Errorf("op %d read back as %s, want %s", i, back[i], ops[i])
		}
	}
	if SetScopes([]string{}) == SetScopes(nil) || SetNeverExpires(false) == SetEnabled(false) || SetExpiration(exp) != SetExpiration(exp.UTC().Truncate(time.Millisecond)) {
		t.Error("== does not tell the operations apart as their JSON does")
	}
}

// TestParsePatchOpRefuses: anything outside the closed set is refused, naming
// what was wrong.
func TestParsePatchOpRefuses(t *testing.T) {
	for _, c := range []struct{ op, path, value, want string }{
		{"remove", PathExpirationDate, ``, `op "remove"`},
		{"replace", "/scope/0", `"x"`, `path "/scope/0"`},
		{"replace", PathName, `3`, "/name: want a string"},
		{"replace", PathName, `null`, "/name: the value is missing or null"},
		{"replace", PathExpirationDate, `"2026-12-26T03:00:00Z"`, "not in the form 2026-12-26T03:00:00.000Z"},
		{"replace", PathExpirationDate, `"soon"`, "/expirationDate: invalid timestamp"},
		{"replace", PathUserAwareTokenNeverExpires, `"false"`, "want true or false"},
		{"replace", PathScope, `["a",1]`, "want a list of strings"},
	} {
		_, err := ParsePatchOp(c.op, c.path, json.RawMessage(c.value))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParsePatchOp(%s %s %s) = %v, want an error naming %q", c.op, c.path, c.value, err, c.want)
		}
	}
}

// FuzzPatchOp: whatever UnmarshalJSON accepts is a fixed point: marshalled
// and read again it is the same operation (==) and the same bytes.
func FuzzPatchOp(f *testing.F) {
	for _, s := range []string{
		`{"op":"replace","path":"/name","value":"a <b> & c"}`,
		`{"op":"replace","path":"/scope","value":["sp:scopes:default","\ud800"]}`,
		`{"op":"replace","path":"/scope","value":null}`,
		`{"op":"replace","path":"/expirationDate","value":"2026-12-26T03:00:00.000Z"}`,
		`{"op":"replace","path":"/userAwareTokenNeverExpires","value":false}`,
		`{"op":"replace","path":"/enabled","value":true}`,
		`{"op":"remove","path":"/expirationDate"}`,
		`{"path":"/name","value":"x","op":"replace"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var op PatchOp
		if json.Unmarshal(data, &op) != nil {
			return
		}
		b, err := json.Marshal(op)
		if err != nil {
			t.Fatalf("accepted %s but cannot marshal it: %v", data, err)
		}
		var again PatchOp
		if err := json.Unmarshal(b, &again); err != nil || again != op {
			t.Fatalf("%s -> %s -> %v (%v)", data, b, again, err)
		}
		if b2, _ := json.Marshal(again); !bytes.Equal(b, b2) {
			t.Fatalf("not a fixed point: %s, %s", b, b2)
		}
	})
}
