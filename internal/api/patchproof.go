package api

import "github.com/patjanitor/patjanitor/internal/pat"

// PatchNotShown compares a listed token with operations the tenant confirmed
// and returns, for each operation whose value the token does not show, what
// it shows instead (the same words as an unconfirmed PATCH answer); nil when
// every change is in effect. A field the listing leaves out
// (userAwareTokenNeverExpires is not returned by every version) is unknown,
// not a contradiction: only a value that differs counts.
func PatchNotShown(ops []pat.PatchOp, listed *pat.Token) []string {
	var out []string
	for _, op := range ops {
		if op.Path() == pat.PathUserAwareTokenNeverExpires && listed.UserAwareTokenNeverExpires == nil {
			continue
		}
		if d := fieldDiff(op, listed); d != "" {
			out = append(out, d)
		}
	}
	return out
}
