package policy

import (
	"strconv"
	"strings"
)

// String renders the conditions as the file would write them, in the
// documented order: `unusedFor 90d, scopes.any [sp:scopes:all], includeManaged`.
func (m *Match) String() string {
	var parts []string
	add := func(s string) { parts = append(parts, s) }
	if m.UnusedFor > 0 {
		add("unusedFor " + FormatDuration(m.UnusedFor))
	}
	if m.LastUsedOlderThan > 0 {
		add("lastUsedOlderThan " + FormatDuration(m.LastUsedOlderThan))
	}
	if m.NeverUsed {
		add("neverUsed")
	}
	if m.CreatedOlderThan > 0 {
		add("createdOlderThan " + FormatDuration(m.CreatedOlderThan))
	}
	if m.Scopes != nil && m.Scopes.Any != nil {
		add("scopes.any [" + strings.Join(m.Scopes.Any, ", ") + "]")
	}
	if m.Scopes != nil && m.Scopes.Outside != nil {
		add("scopes.outside [" + strings.Join(m.Scopes.Outside, ", ") + "]")
	}
	if m.NameMatches != nil {
		add("nameMatches " + strconv.Quote(m.NameMatches.String()))
	}
	if m.OwnerIDs != nil {
		add("ownerIds [" + strings.Join(m.OwnerIDs, ", ") + "]")
	}
	if m.NeverExpires {
		add("neverExpires")
	}
	if m.ExpiresWithin > 0 {
		add("expiresWithin " + FormatDuration(m.ExpiresWithin))
	}
	if m.OwnerStates != nil {
		add("ownerStates [" + strings.Join(m.OwnerStates, ", ") + "]")
	}
	if m.OwnerMissing {
		add("ownerMissing")
	}
	if m.IncludeManaged {
		add("includeManaged")
	}
	return strings.Join(parts, ", ")
}

// String renders the patch: `removeScopes [sp:scopes:all], addScopes
// [sp:scopes:default], namePrefix "revoked-"`.
func (p *Patch) String() string {
	var parts []string
	if p.RemoveScopes != nil {
		parts = append(parts, "removeScopes ["+strings.Join(p.RemoveScopes, ", ")+"]")
	}
	if p.AddScopes != nil {
		parts = append(parts, "addScopes ["+strings.Join(p.AddScopes, ", ")+"]")
	}
	if p.SetScopes != nil {
		parts = append(parts, "setScopes ["+strings.Join(p.SetScopes, ", ")+"]")
	}
	if p.NamePrefix != "" {
		parts = append(parts, "namePrefix "+strconv.Quote(p.NamePrefix))
	}
	return strings.Join(parts, ", ")
}
