package pat

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// PatchOp is one change patjanitor makes, sent as a JSON Patch "replace"
// operation (JsonPatchOperation in the spec; a list of them goes with
// Content-Type application/json-patch+json). The set is closed: Rename,
// SetScopes, SetExpiration, SetNeverExpires and, for an API client, SetEnabled
// build every operation there is, each holding its value in the one form it
// is sent, planned, sealed and journaled in. Two operations are the same
// change exactly when they are ==.
type PatchOp struct {
	path string
	// text is the name, the expiration date in the API's millisecond form,
	// or the scopes as their JSON array (a string keeps the type comparable).
	text string
	flag bool
}

// Patchable paths. /expirationDate and /userAwareTokenNeverExpires are writable only
// from v2025 on (and in v1).
const (
	PathName                       = "/name"
	PathScope                      = "/scope"
	PathExpirationDate             = "/expirationDate"
	PathUserAwareTokenNeverExpires = "/userAwareTokenNeverExpires"
	// PathEnabled is the one path patjanitor patches on an API client.
	PathEnabled = "/enabled"
)

// Rename sets a token's name. Like every string of an operation, invalid
// UTF-8 becomes U+FFFD here, as JSON would send it, so that an operation
// equals itself read back from its JSON.
func Rename(name string) PatchOp {
	return PatchOp{path: PathName, text: strings.ToValidUTF8(name, "\uFFFD")}
}

// SetScopes sets a token's scopes (in this order; nil is sent as null).
func SetScopes(scopes []string) PatchOp {
	if scopes != nil {
		valid := make([]string, len(scopes))
		for i, s := range scopes {
			valid[i] = strings.ToValidUTF8(s, "\uFFFD")
		}
		scopes = valid
	}
	b, err := json.Marshal(scopes)
	if err != nil { // a []string always encodes
		panic(err)
	}
	return PatchOp{path: PathScope, text: string(b)}
}

// SetExpiration sets a token's expiration date, to the millisecond.
func SetExpiration(t time.Time) PatchOp {
	return PatchOp{path: PathExpirationDate, text: FormatTime(t)}
}

// SetNeverExpires sets a token's userAwareTokenNeverExpires.
func SetNeverExpires(never bool) PatchOp {
	return PatchOp{path: PathUserAwareTokenNeverExpires, flag: never}
}

// SetEnabled enables or disables an API client.
func SetEnabled(enabled bool) PatchOp { return PatchOp{path: PathEnabled, flag: enabled} }

// Op is the JSON Patch operation: always "replace", which is why a request
// of these operations may be repeated (applying it twice is applying it once).
func (op PatchOp) Op() string { return "replace" }

// Path is the field the operation writes.
func (op PatchOp) Path() string { return op.path }

// Name is the name a Rename sets.
func (op PatchOp) Name() (string, bool) { return op.text, op.path == PathName }

// Scopes are the scopes a SetScopes sets (nil: null).
func (op PatchOp) Scopes() ([]string, bool) {
	if op.path != PathScope {
		return nil, false
	}
	var s []string
	_ = json.Unmarshal([]byte(op.text), &s) // written by SetScopes or UnmarshalJSON
	return s, true
}

// Expiration is the date a SetExpiration sets.
func (op PatchOp) Expiration() (time.Time, bool) {
	if op.path != PathExpirationDate {
		return time.Time{}, false
	}
	t, err := ParseTime(op.text)
	return t, err == nil
}

// Flag is the value a SetNeverExpires or SetEnabled sets.
func (op PatchOp) Flag() (bool, bool) {
	return op.flag, op.path == PathUserAwareTokenNeverExpires || op.path == PathEnabled
}

// Value is the operation's value as JSON: what is sent, planned and journaled.
func (op PatchOp) Value() []byte {
	switch op.path {
	case PathName:
		b, _ := json.Marshal(op.text) // a string always encodes
		return b
	case PathExpirationDate:
		return []byte(`"` + op.text + `"`) // digits, '-', ':', '.', 'T', 'Z'
	case PathScope:
		return []byte(op.text)
	case PathUserAwareTokenNeverExpires, PathEnabled:
		if op.flag {
			return []byte("true")
		}
		return []byte("false")
	}
	return []byte("null") // the zero PatchOp
}

// String is the operation's JSON.
func (op PatchOp) String() string {
	b, _ := op.MarshalJSON()
	return string(b)
}

// MarshalJSON writes {"op":"replace","path":...,"value":...}.
func (op PatchOp) MarshalJSON() ([]byte, error) {
	if op.path == "" {
		return nil, fmt.Errorf("patch operation without a path")
	}
	b := append([]byte(`{"op":"replace","path":"`), op.path...)
	b = append(b, `","value":`...)
	return append(append(b, op.Value()...), '}'), nil
}

// UnmarshalJSON reads what MarshalJSON writes: a replace of one of the
// closed set's paths with a value of that path's type. Anything else is
// refused, naming what was wrong.
func (op *PatchOp) UnmarshalJSON(data []byte) error {
	var w struct {
		Op    string          `json:"op"`
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	got, err := ParsePatchOp(w.Op, w.Path, w.Value)
	if err != nil {
		return err
	}
	*op = got
	return nil
}

// ParsePatchOp builds the operation a JSON Patch op, path and value (JSON)
// stand for, or says why it is none of the closed set.
func ParsePatchOp(kind, path string, value json.RawMessage) (PatchOp, error) {
	if kind != "replace" {
		return PatchOp{}, fmt.Errorf("op %q: want replace", kind)
	}
	if len(value) == 0 || (string(value) == "null" && path != PathScope) {
		return PatchOp{}, fmt.Errorf("%s: the value is missing or null", path)
	}
	switch path {
	case PathName:
		var s string
		if err := json.Unmarshal(value, &s); err != nil {
			return PatchOp{}, fmt.Errorf("%s: want a string: %w", path, err)
		}
		return Rename(s), nil
	case PathScope:
		var s []string
		if err := json.Unmarshal(value, &s); err != nil {
			return PatchOp{}, fmt.Errorf("%s: want a list of strings: %w", path, err)
		}
		return SetScopes(s), nil
	case PathExpirationDate:
		var s string
		if err := json.Unmarshal(value, &s); err != nil {
			return PatchOp{}, fmt.Errorf("%s: want a date: %w", path, err)
		}
		t, err := ParseTime(s)
		if err != nil {
			return PatchOp{}, fmt.Errorf("%s: %w", path, err)
		}
		if op := SetExpiration(t); op.text == s {
			return op, nil
		}
		return PatchOp{}, fmt.Errorf("%s: %q is not in the form %s", path, s, FormatTime(t))
	case PathUserAwareTokenNeverExpires, PathEnabled:
		var b bool
		if err := json.Unmarshal(value, &b); err != nil {
			return PatchOp{}, fmt.Errorf("%s: want true or false: %w", path, err)
		}
		return PatchOp{path: path, flag: b}, nil
	}
	return PatchOp{}, fmt.Errorf("path %q: want %s, %s, %s, %s or %s", path, PathName, PathScope, PathExpirationDate, PathUserAwareTokenNeverExpires, PathEnabled)
}
