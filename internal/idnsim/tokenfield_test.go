package idnsim

import "github.com/patjanitor/patjanitor/internal/pat"

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
			return Value{Kind: KindTime, Time: *t.LastUsed}, true
		case "created":
			return Value{Kind: KindTime, Time: t.Created}, true
		case "managed":
			return Value{Kind: KindBool, Bool: t.Managed}, true
		case "owner.id":
			return StringValue(t.Owner.ID), true
		case "scope":
			if t.Scope.Null {
				return NullValue(), true
			}
			return Value{Kind: KindList, List: t.Scope.Values}, true
		case "expirationDate":
			if t.ExpirationDate == nil {
				return NullValue(), true
			}
			return Value{Kind: KindTime, Time: *t.ExpirationDate}, true
		}
		return Value{}, false
	}
}
