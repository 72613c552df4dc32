package idnsim

import (
	"fmt"
	"strings"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// patFilterSupport is the support list the PAT list endpoint documents:
// "Filtering is supported for the following fields and operators: lastUsed: le,
// isnull".
const patFilterSupport = "supported: lastUsed le <date-time>, lastUsed isnull"

// CompilePATFilter parses a filters query value for the PAT list endpoint and
// returns the predicate it selects. It accepts exactly the documented forms,
// "lastUsed le <unquoted RFC 3339 date-time>" and "lastUsed isnull"; everything
// else the grammar allows (other fields or operators, and/or/not composites,
// quoted dates) is an error whose text the 400 response carries.
//
// Composites are refused on purpose: whether the real service accepts
// "lastUsed le X or lastUsed isnull" is undocumented, so the simulator
// takes the strict reading and a client that relied on it would fail here
// rather than in production. An empty value means no filter (nil predicate).
func CompilePATFilter(s string) (func(*pat.Token) bool, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	n, err := ParseFilter(s)
	if err != nil {
		return nil, fmt.Errorf("invalid filter %q: %w", s, err)
	}
	switch n := n.(type) {
	case *Logical:
		return nil, fmt.Errorf("composite operator %q is not supported by this endpoint; %s", n.Op, patFilterSupport)
	case *Not:
		return nil, fmt.Errorf("composite operator \"not\" is not supported by this endpoint; %s", patFilterSupport)
	case *Compare:
		if n.Field != "lastUsed" {
			return nil, fmt.Errorf("filtering on field %q is not supported; %s", n.Field, patFilterSupport)
		}
		switch n.Op {
		case "isnull":
			return func(t *pat.Token) bool { return t.LastUsed == nil }, nil
		case "le":
			v := n.Values[0]
			if v.Kind != KindTime {
				return nil, fmt.Errorf("operator \"le\" on lastUsed needs an unquoted RFC 3339 date-time, got %s %s", v.Kind, n.Values[0].quoted())
			}
			cutoff := v.Time
			return func(t *pat.Token) bool { return t.LastUsed != nil && !t.LastUsed.After(cutoff) }, nil
		}
		return nil, fmt.Errorf("operator %q is not supported for field \"lastUsed\"; %s", n.Op, patFilterSupport)
	}
	return nil, fmt.Errorf("unsupported filter %q", s)
}

func (v Value) quoted() string {
	var b strings.Builder
	v.render(&b)
	return b.String()
}
