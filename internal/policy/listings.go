package policy

import (
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// Listings returns the fewest listing calls whose results together hold every
// token any policy could match at now (the same now that Evaluate gets).
//
// The API filters on lastUsed only (le and isnull). A policy is bounded by
// last use when every token it matches has lastUsed at or before a cutoff, or
// null:
//   - unusedFor d: lastUsed <= now-d, or null (never used);
//   - lastUsedOlderThan d: lastUsed <= now-d, never null;
//   - neverUsed: null only;
//   - together (AND) the tightest of them: unusedFor with lastUsedOlderThan
//     is lastUsed <= the earlier cutoff, never null.
//
// When every policy is bounded, the calls are `lastUsed le <the latest
// cutoff>` (if any policy admits a used token) and `lastUsed isnull` (if any
// admits a never-used one). One policy without such a bound, or a
// limits.maxActionsPercent (a share of the whole population, which only an
// unfiltered listing counts), makes it one unfiltered listing instead.
//
// The le cutoff is rounded up to the millisecond, the precision of the
// filter: the listing may return a token a little newer than a policy's
// cutoff (evaluation then rejects it) but never misses one.
//
// A config without policies needs no listing (nil).
func (c *Config) Listings(now time.Time) []pat.Listing {
	if len(c.Policies) == 0 {
		// Also with maxActionsPercent: a share of a population that no
		// policy acts on is nothing to count (a schedule of apiClients
		// policies only must not list every token).
		return nil
	}
	all := []pat.Listing{{Kind: pat.ListAll}}
	if c.Limits.MaxActionsPercent > 0 {
		return all
	}
	var (
		latest           time.Time
		needLe, needNull bool
	)
	for _, p := range c.Policies {
		m := &p.Match
		switch {
		case m.NeverUsed && m.LastUsedOlderThan > 0:
			// Contradictory: matches nothing (Load refuses it).
		case m.NeverUsed:
			needNull = true
		case m.UnusedFor > 0 || m.LastUsedOlderThan > 0:
			longest := max(m.UnusedFor, m.LastUsedOlderThan)
			cut := now.Add(-longest)
			if !needLe || cut.After(latest) {
				latest = cut
			}
			needLe = true
			if m.LastUsedOlderThan == 0 {
				needNull = true // unusedFor admits never-used tokens
			}
		default:
			return all
		}
	}
	var out []pat.Listing
	if needLe {
		out = append(out, pat.Listing{Kind: pat.ListLastUsedBefore, Cutoff: ceilMillisecond(latest)})
	}
	if needNull {
		out = append(out, pat.Listing{Kind: pat.ListNeverUsed})
	}
	return out
}

// ceilMillisecond rounds t up to a whole millisecond, in UTC.
func ceilMillisecond(t time.Time) time.Time {
	t = t.UTC().Round(0)
	tr := t.Truncate(time.Millisecond)
	if tr.Before(t) {
		tr = tr.Add(time.Millisecond)
	}
	return tr
}

// Only returns a copy of the config restricted to the named policies (in file
// order); names that are not policies are ignored. The daemon runs each
// schedule group this way. The receiver is not modified.
func (c *Config) Only(names ...string) *Config {
	cp := *c
	cp.Policies, cp.ClientPolicies = nil, nil
	for _, p := range c.Policies {
		if contains(names, p.Name) {
			pc := *p
			cp.Policies = append(cp.Policies, &pc)
		}
	}
	for _, p := range c.ClientPolicies {
		if contains(names, p.Name) {
			pc := *p
			cp.ClientPolicies = append(cp.ClientPolicies, &pc)
		}
	}
	return &cp
}

// ForceReport returns a copy of the config with every policy in report mode
// (serve --dry-run). Digest stays the file's. The receiver is not modified.
func (c *Config) ForceReport() *Config {
	cp := *c
	cp.Policies = make([]*Policy, len(c.Policies))
	for i, p := range c.Policies {
		pc := *p
		pc.Mode = ModeReport
		cp.Policies[i] = &pc
	}
	cp.ClientPolicies = make([]*Policy, len(c.ClientPolicies))
	for i, p := range c.ClientPolicies {
		pc := *p
		pc.Mode = ModeReport
		cp.ClientPolicies[i] = &pc
	}
	return &cp
}
