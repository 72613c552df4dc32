package idnsim

import (
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// The field values only the tests look up (the simulator's endpoints
// evaluate strings and nulls: StringValue, NullValue).

// TimeValue is a date-time field value.
func TimeValue(t time.Time) Value { return Value{Kind: KindTime, Time: t} }

// BoolValue is a boolean field value.
func BoolValue(b bool) Value { return Value{Kind: KindBool, Bool: b} }

// ListValue is a collection field value (for the ca operator).
func ListValue(items ...string) Value { return Value{Kind: KindList, List: items} }

// tokenField exposes a token's fields to Node.Eval, for the fuzz test's check
// that the compiled predicate and the generic evaluator agree.
func tokenField(t *pat.Token) func(string) (Value, bool) {
	return func(field string) (Value, bool) {
		switch field {
		case "id":
			return StringValue(t.ID), true
		case "name":
			return StringValue(t.Name), true
		case "lastUsed":
			if t.LastUsed == nil {
				return NullValue(), true
			}
			return TimeValue(*t.LastUsed), true
		case "created":
			return TimeValue(t.Created), true
		case "managed":
			return BoolValue(t.Managed), true
		case "owner.id":
			return StringValue(t.Owner.ID), true
		case "scope":
			if t.Scope.Null {
				return NullValue(), true
			}
			return ListValue(t.Scope.Values...), true
		case "expirationDate":
			if t.ExpirationDate == nil {
				return NullValue(), true
			}
			return TimeValue(*t.ExpirationDate), true
		}
		return Value{}, false
	}
}
