package policy

import (
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// compiled is a policy in the form evaluation wants: flags and durations
// flattened, sets built once at load.
type compiled struct {
	action Action
	// rank is the policy's precedence among the matches of one token:
	// precedence(mode, action). It is fixed when the policy is compiled, so
	// that a copy forced to report mode (serve --dry-run) decides the same
	// winners as the real run would: a dry run previews the real decisions.
	rank int

	unusedFor, lastUsedOlderThan, createdOlderThan, expiresWithin time.Duration
	neverUsed, neverExpires, includeManaged, ownerMissing         bool

	hasScopesAny, hasScopesOutside bool
	scopesAny, scopesOutside       []string
	nameRE                         *regexp.Regexp
	owners                         map[string]struct{} // by pat.IDKey; nil: no ownerIds condition
	ownerStates                    []string            // nil: no ownerStates condition
	needsOwner                     bool

	// The condition names as reasons end their clauses: " (unusedFor 90d)".
	unusedSuffix, lastUsedSuffix, createdSuffix, expiresSuffix string

	// patch
	namePrefix       string
	remove, add, set []string
	hasSet           bool
	expireIn         time.Duration
}

func compilePolicy(p *Policy) *compiled {
	m := &p.Match
	c := &compiled{
		action:            p.Action,
		rank:              precedence(p.Mode, p.Action),
		unusedFor:         m.UnusedFor,
		lastUsedOlderThan: m.LastUsedOlderThan,
		createdOlderThan:  m.CreatedOlderThan,
		expiresWithin:     m.ExpiresWithin,
		neverUsed:         m.NeverUsed,
		neverExpires:      m.NeverExpires,
		includeManaged:    m.IncludeManaged,
		ownerMissing:      m.OwnerMissing,
		nameRE:            m.NameMatches,
		ownerStates:       m.OwnerStates,
		needsOwner:        m.OwnerMissing || m.OwnerStates != nil,
		expireIn:          p.ExpireIn,
	}
	suffix := func(cond string, d time.Duration) string { return " (" + cond + " " + FormatDuration(d) + ")" }
	c.unusedSuffix = suffix("unusedFor", m.UnusedFor)
	c.lastUsedSuffix = suffix("lastUsedOlderThan", m.LastUsedOlderThan)
	c.createdSuffix = suffix("createdOlderThan", m.CreatedOlderThan)
	c.expiresSuffix = suffix("expiresWithin", m.ExpiresWithin)
	if m.Scopes != nil {
		c.hasScopesAny, c.scopesAny = m.Scopes.Any != nil, m.Scopes.Any
		c.hasScopesOutside, c.scopesOutside = m.Scopes.Outside != nil, m.Scopes.Outside
	}
	if m.OwnerIDs != nil {
		c.owners = make(map[string]struct{}, len(m.OwnerIDs))
		for _, id := range m.OwnerIDs {
			c.owners[pat.IDKey(id)] = struct{}{}
		}
	}
	if p.Action == ActionPatch && p.Patch != nil {
		c.namePrefix = p.Patch.NamePrefix
		c.remove = p.Patch.RemoveScopes
		c.add = dedupe(p.Patch.AddScopes)
		c.hasSet = p.Patch.SetScopes != nil
		c.set = dedupe(p.Patch.SetScopes)
	}
	return c
}

// exclusions are the exclude lists as sets.
type exclusions struct {
	ids, owners map[string]struct{} // by pat.IDKey
	names       []glob
}

// glob is an exclude.names pattern with path.Match semantics. The usual
// shapes, an exact name or "literal*" (break-glass-*), skip the general
// matcher: it runs for every matched token.
type glob struct {
	pattern string
	kind    globKind
	literal string // the name (globExact) or the prefix (globPrefix)
}

type globKind int

const (
	globGeneral globKind = iota
	globExact
	globPrefix
)

func compileGlob(p string) glob {
	switch i := strings.IndexAny(p, `*?[\`); {
	case i < 0:
		return glob{pattern: p, kind: globExact, literal: p}
	case i == len(p)-1 && p[i] == '*':
		return glob{pattern: p, kind: globPrefix, literal: p[:i]}
	}
	return glob{pattern: p, kind: globGeneral}
}

func (g *glob) match(name string) bool {
	switch g.kind {
	case globExact:
		return name == g.literal
	case globPrefix:
		// In path.Match a * does not cross a /.
		return strings.HasPrefix(name, g.literal) && !strings.Contains(name[len(g.literal):], "/")
	}
	ok, _ := path.Match(g.pattern, name)
	return ok
}

func compileExclusions(e *Exclude) *exclusions {
	// Keyed by IDKey: the tenant takes ids in any case, so an exclusion
	// spelled in capitals must still protect the token.
	set := func(list []string) map[string]struct{} {
		m := make(map[string]struct{}, len(list))
		for _, s := range list {
			m[pat.IDKey(s)] = struct{}{}
		}
		return m
	}
	x := &exclusions{ids: set(e.TokenIDs), owners: set(e.OwnerIDs)}
	for _, p := range e.Names {
		x.names = append(x.names, compileGlob(p))
	}
	return x
}

// nameExcluded reports whether name matches one of the globs.
func (x *exclusions) nameExcluded(name string) bool {
	for i := range x.names {
		if x.names[i].match(name) {
			return true
		}
	}
	return false
}

// enforceRank lifts every enforce-mode policy above every report-mode one,
// whatever the actions (Action.Rank is at most 4).
const enforceRank = 10

// precedence orders the policies that match one token: enforce mode before
// report mode, then the most destructive action; file order breaks ties.
//
// Why mode first: with "most destructive wins" alone, a report-mode policy
// earlier in the file with the same action wins every token it shares with an
// enforce-mode one, so switching a policy to enforce acted on almost none of
// its matches (the shipped enforce overlay's never-used-30d lost 35 of 36
// tokens to the report-mode unused-90d). Turning a policy to enforce
// must make it act on what it matches.
func precedence(m Mode, a Action) int {
	r := a.Rank()
	if m == ModeEnforce {
		r += enforceRank
	}
	return r
}

// compile prepares a loaded config for evaluation.
func (c *Config) compile() {
	for _, p := range c.Policies {
		p.c = compilePolicy(p)
	}
	c.excluded = compileExclusions(&c.Exclude)
}

func dedupe(list []string) []string {
	if list == nil {
		return nil
	}
	out := make([]string, 0, len(list))
	for _, s := range list {
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
