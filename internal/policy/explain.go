package policy

import (
	"strconv"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// explain states why ep matched t: one clause per condition, in the order the
// conditions are documented, joined by "; ". Every clause names the token's
// field, its value, the cutoff and the condition, e.g. `lastUsed
// 2026-05-01T10:00:00.000Z is before cutoff 2026-08-28T03:00:00.000Z
// (unusedFor 90d)`. It runs for every matched token, so it builds the string
// in one buffer, with the condition texts prepared at load.
func (e *Evaluator) explain(ep *evalPolicy, t *pat.Token) string {
	c := ep.c
	b := make([]byte, 0, 160)
	sep := func() {
		if len(b) > 0 {
			b = append(b, "; "...)
		}
	}
	if c.unusedFor > 0 {
		sep()
		if t.LastUsed != nil {
			b = append(b, "lastUsed "...)
			b = appendCutoff(b, *t.LastUsed, ep.unusedCut, c.unusedSuffix)
		} else {
			b = append(b, "never used; created "...)
			b = appendCutoff(b, t.Created, ep.unusedCut, c.unusedSuffix)
		}
	}
	if c.lastUsedOlderThan > 0 && t.LastUsed != nil {
		sep()
		b = append(b, "lastUsed "...)
		b = appendCutoff(b, *t.LastUsed, ep.lastUsedCut, c.lastUsedSuffix)
	}
	if c.neverUsed {
		sep()
		b = append(b, "lastUsed is null: never used (neverUsed)"...)
	}
	if c.createdOlderThan > 0 {
		sep()
		b = append(b, "created "...)
		b = appendCutoff(b, t.Created, ep.createdCut, c.createdSuffix)
	}
	if c.hasScopesAny {
		sep()
		b = appendScopes(b, t.Scope, c.scopesAny, true)
		b = append(b, " (scopes.any)"...)
	}
	if c.hasScopesOutside {
		sep()
		b = appendScopes(b, t.Scope, c.scopesOutside, false)
		b = append(b, " outside the allowed scopes (scopes.outside)"...)
	}
	if c.nameRE != nil {
		sep()
		b = append(b, "name "...)
		b = strconv.AppendQuote(b, t.Name)
		b = append(b, " matches "...)
		b = strconv.AppendQuote(b, c.nameRE.String())
		b = append(b, " (nameMatches)"...)
	}
	if c.owners != nil {
		sep()
		b = append(b, "owner "+t.Owner.ID+" is listed (ownerIds)"...)
	}
	if c.neverExpires {
		sep()
		b = append(b, "expirationDate is null: never expires"...)
		if t.UserAwareTokenNeverExpires != nil && *t.UserAwareTokenNeverExpires {
			b = append(b, ", userAwareTokenNeverExpires true"...)
		}
		b = append(b, " (neverExpires)"...)
	}
	if c.expiresWithin > 0 && t.ExpirationDate != nil {
		sep()
		b = append(b, "expirationDate "...)
		b = appendCutoff(b, *t.ExpirationDate, ep.expiresCut, c.expiresSuffix)
	}
	if c.needsOwner {
		var info OwnerInfo
		ok := false
		if e.env.Owner != nil {
			info, ok = e.env.Owner(t.Owner.ID)
		}
		if !ok {
			sep()
			b = append(b, "owner "+t.Owner.ID+" unknown: no owner data this run ("+ownerConds(c)+")"...)
		} else {
			if c.ownerStates != nil {
				sep()
				b = append(b, "owner "+t.Owner.ID+" identityState "+info.State+" (ownerStates)"...)
			}
			if c.ownerMissing {
				sep()
				b = append(b, "owner "+t.Owner.ID+" has no identity in the tenant (ownerMissing)"...)
			}
		}
	}
	return string(b)
}

// ownerConds names the policy's owner conditions, as the reason clauses end.
func ownerConds(c *compiled) string {
	switch {
	case c.ownerStates != nil && c.ownerMissing:
		return "ownerStates, ownerMissing"
	case c.ownerMissing:
		return "ownerMissing"
	}
	return "ownerStates"
}

// appendCutoff writes "<t> is before cutoff <cut> (unusedFor 90d)", or "is at
// cutoff" on the boundary (which matches: conditions are <=).
func appendCutoff(b []byte, t, cut time.Time, suffix string) []byte {
	b = appendTime(b, t)
	if t.Equal(cut) {
		b = append(b, " is at cutoff "...)
	} else {
		b = append(b, " is before cutoff "...)
	}
	b = appendTime(b, cut)
	return append(b, suffix...)
}

// appendTime appends t as pat.FormatTime renders it (UTC, milliseconds,
// truncated), without time.Format's layout interpretation.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return append(b, pat.FormatTime(t)...)
	}
	hour, minute, sec := t.Clock()
	msec := t.Nanosecond() / int(time.Millisecond)
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, msec, 3)
	return append(b, 'Z')
}

func appendDigits(b []byte, v, width int) []byte {
	var buf [4]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, buf[:width]...)
}

// appendScopes writes "holds a, b" for the token's effective scopes that are
// in set (in=true) or not in it (in=false), after the note a null scope needs.
func appendScopes(b []byte, s pat.Scopes, set []string, in bool) []byte {
	if s.Null {
		b = append(b, "scope null counts as "+pat.ScopeAll+"; "...)
	}
	b = append(b, "holds "...)
	first := true
	eff := s.Effective()
	for i, v := range eff {
		if contains(set, v) != in || contains(eff[:i], v) {
			continue
		}
		if !first {
			b = append(b, ", "...)
		}
		b = append(b, v...)
		first = false
	}
	return b
}
