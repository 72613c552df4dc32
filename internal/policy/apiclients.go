package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/pat"
)

// Policies on OAuth API clients (resource: apiClients). They are validated
// here, kept apart from the token policies after Load (Config.ClientPolicies)
// and evaluated by their own evaluator, so the token engine never sees them
// and nothing of the token path had to learn about API clients.

// Resource is what a policy governs.
type Resource string

// The resources.
const (
	ResourcePATs       Resource = "personalAccessTokens" // the default
	ResourceAPIClients Resource = apiclient.Resource
)

// ActionDisable sets an API client's enabled to false (PATCH /enabled): the
// reversible step personal access tokens lack.
const ActionDisable Action = "disable"

// GrantTypeMatch tests an API client's grant types.
type GrantTypeMatch struct {
	// Any: the client has at least one of these grant types.
	Any []string `yaml:"any"`
}

// clientRank orders the API client actions: delete > disable > report.
func clientRank(a Action) int {
	switch a {
	case ActionDelete:
		return 3
	case ActionDisable:
		return 2
	case ActionReport:
		return 1
	}
	return 0
}

// AllPolicies returns the token and the API client policies, in that order:
// what the scheduler groups and the metrics name.
func (c *Config) AllPolicies() []*Policy {
	return append(slices.Clone(c.Policies), c.ClientPolicies...)
}

// FileClientPolicies returns the name of every apiClients policy in the
// file, also in a config narrowed by Only, as FilePolicies does for tokens:
// the marks of an API client policy are stale only when it left the file.
// Empty for a config not read from a file.
func (c *Config) FileClientPolicies() []string { return c.fileClientPolicies }

// splitResources moves the apiClients policies out of Policies.
func (c *Config) splitResources() {
	var pats []*Policy
	for _, p := range c.Policies {
		if p.Resource == ResourceAPIClients {
			c.ClientPolicies = append(c.ClientPolicies, p)
			c.fileClientPolicies = append(c.fileClientPolicies, p.Name)
			continue
		}
		pats = append(pats, p)
	}
	c.Policies = pats
}

// resource checks the policy's resource and reports whether it governs API
// clients. An omitted resource is personalAccessTokens (every config written
// before API clients keeps its meaning; the defaults make both "").
func (v *validator) resource(at string, p *Policy) bool {
	switch p.Resource {
	case "", ResourcePATs:
		for _, key := range []string{"disabledFor", "match.grantTypes", "match.enabled", "match.type"} {
			if v.d.has(at + "." + key) {
				v.errf(at+"."+key, "exists only for resource: apiClients (this policy governs personal access tokens)")
			}
		}
		return false
	case ResourceAPIClients:
		return true
	}
	if !v.d.bad[at+".resource"] {
		v.errf(at+".resource", "unknown resource %q (want personalAccessTokens or apiClients)", p.Resource)
	}
	return false
}

// clientOnlyTokenKeys are the conditions and settings of token policies that
// do not exist for API clients (they have no owner and no expiry).
var clientOnlyTokenKeys = []string{
	"match.ownerIds", "match.ownerStates", "match.ownerMissing", "match.neverExpires",
	"match.expiresWithin", "match.includeManaged", "patch", "expireIn",
}

// clientPolicy validates an apiClients policy (mode and schedule are checked
// by the caller).
func (v *validator) clientPolicy(at string, p *Policy) {
	for _, key := range clientOnlyTokenKeys {
		if v.d.has(at+"."+key) && !v.d.bad[at+"."+key] {
			v.errf(at+"."+key, "does not exist for resource: apiClients (API clients have no owner, no expiry and no managed flag)")
		}
	}
	v.clientMatch(at, p)

	switch {
	case v.d.bad[at+".action"]:
	case !v.d.has(at + ".action"):
		if !v.d.unknownIn[at] {
			v.errf(at, "action is required (report, disable or delete)")
		}
	case clientRank(p.Action) == 0:
		v.errf(at+".action", "unknown action %q for resource: apiClients (want report, disable or delete)", p.Action)
	}

	switch {
	case p.Action == ActionDelete && !v.d.has(at+".disabledFor"):
		if !v.d.unknownIn[at] && !v.d.bad[at+".action"] {
			v.errf(at, "disabledFor is required with action: delete on apiClients (a client is deleted only after patjanitor kept it disabled that long)")
		}
	case p.Action != ActionDelete && v.d.has(at+".disabledFor"):
		v.errf(at+".disabledFor", "only allowed with action: delete")
	default:
		v.positive(at+".disabledFor", p.DisabledFor)
	}
	if p.Action == ActionDelete && p.Match.Enabled != nil && *p.Match.Enabled {
		v.errf(at+".match.enabled", "contradicts action: delete (patjanitor disables a client first and deletes it only while it is disabled, so enabled: true would never let it delete)")
	}

	// The grace workflow of tokens, with the notify.apiClients receivers in
	// the owner's place (API clients have no owner).
	v.grace(at, p, "a disable or delete", len(v.c.Notify.APIClients) > 0,
		"needs notify.apiClients: the action waits for a delivered warning, and API clients have no owner, so without receivers for them none can be delivered")
}

func (v *validator) clientMatch(at string, p *Policy) {
	mat := at + ".match"
	if !v.matchGiven(at) {
		return
	}
	m := &p.Match
	for _, f := range []struct {
		key string
		d   time.Duration
	}{{"unusedFor", m.UnusedFor}, {"lastUsedOlderThan", m.LastUsedOlderThan}, {"createdOlderThan", m.CreatedOlderThan}} {
		v.positive(mat+"."+f.key, f.d)
	}
	if !m.NeverUsed { // a never-used client is judged by its exact created time
		v.lastUseThreshold(mat+".unusedFor", m.UnusedFor)
	}
	v.lastUseThreshold(mat+".lastUsedOlderThan", m.LastUsedOlderThan)
	v.onlyTrue(mat+".neverUsed", m.NeverUsed)
	if m.NeverUsed && m.LastUsedOlderThan > 0 {
		v.errf(mat+".neverUsed", "contradicts lastUsedOlderThan (a never-used client has no lastUsed, so nothing could match); unusedFor covers both")
	}
	v.scopes(mat+".scopes", m.Scopes)
	if m.GrantTypes != nil {
		gp := mat + ".grantTypes"
		if !v.d.has(gp+".any") && !v.d.tainted(gp) {
			v.errf(gp, "needs any")
		}
		v.list(gp+".any", m.GrantTypes.Any)
		for i, g := range m.GrantTypes.Any {
			if g != "" && !slices.Contains(apiclient.GrantTypes, g) {
				v.errf(fmt.Sprintf("%s.any[%d]", gp, i), "unknown grant type %q (want %s)", g, strings.Join(apiclient.GrantTypes, ", "))
			}
		}
	}
	if v.d.has(mat+".type") && !v.d.bad[mat+".type"] && m.Type != apiclient.TypeConfidential && m.Type != apiclient.TypePublic {
		v.errf(mat+".type", "unknown type %q (want %s or %s)", m.Type, apiclient.TypeConfidential, apiclient.TypePublic)
	}
	n := 0
	for _, b := range []bool{
		m.UnusedFor != 0, m.LastUsedOlderThan != 0, m.NeverUsed, m.CreatedOlderThan != 0,
		m.Scopes != nil, m.NameMatches != nil, m.GrantTypes != nil, m.Enabled != nil, m.Type != "",
	} {
		if b {
			n++
		}
	}
	if n == 0 && !v.d.tainted(mat) {
		v.errf(mat, "needs at least one condition (a policy without one would match every API client)")
	}
}

// ClientListings returns the fewest API client listing calls that hold every
// client a policy could match at now, by the same rules as Listings for
// tokens (the endpoint has the same lastUsed le and isnull filters). A
// maxActionsPercent makes it one unfiltered listing (a share of the whole
// client population); so does a delete policy, because a client patjanitor
// disabled must be seen again to be deleted whatever its lastUsed. No
// apiClients policy: no listing (nil).
func (c *Config) ClientListings(now time.Time) []pat.Listing {
	if len(c.ClientPolicies) == 0 {
		return nil
	}
	cp := Config{Policies: c.ClientPolicies, Limits: c.Limits}
	for _, p := range c.ClientPolicies {
		if p.Action == ActionDelete {
			return []pat.Listing{{Kind: pat.ListAll}}
		}
	}
	return cp.Listings(now)
}

// Skip reasons that exist for API clients only.
const (
	// SkipInternal: the client is internal to the tenant (internal: true).
	SkipInternal SkipReason = "internal"
	// SkipFlagsMissing: the tenant listed the client without internal or
	// enabled; it is treated as internal and enabled, never acted on.
	SkipFlagsMissing SkipReason = "flags-missing"
)

// ClientEnv is what an API client evaluation depends on besides the client.
type ClientEnv struct {
	// Now is the decision time.
	Now time.Time
	// ClientID is the credential patjanitor runs as: an API client with this
	// id (compared without regard to case) is never acted on.
	ClientID string
	// DisabledAt reports when patjanitor disabled the client (its state
	// store record), for delete's disabledFor. nil: no record of any.
	DisabledAt func(id string) (time.Time, bool)
}

// ClientDecision is what the apiClients policies decided for one client.
type ClientDecision struct {
	Matched bool
	// Policy is the winning policy (delete > disable > report, then file
	// order).
	Policy string
	Mode   Mode
	// Action is what happens this run: report, disable or delete. A delete
	// policy's action is disable while the client is enabled (quarantine
	// first), report while disabledFor has not passed, delete after.
	Action Action
	// PolicyAction is the winning policy's configured action.
	PolicyAction Action
	Reason       string
	AlsoMatched  []string
	// DisabledAt is patjanitor's record of disabling the client (delete
	// policies); DeleteAfter is when the delete is due.
	DisabledAt, DeleteAfter *time.Time
	Skip                    SkipReason
}

// EvaluateClient decides one API client. Exemptions, in order: the own
// credential, a client listed without internal or enabled (treated as
// internal), internal: true, exclude.tokenIds (ids), exclude.names.
func (c *Config) EvaluateClient(cl *apiclient.Client, env ClientEnv) ClientDecision {
	var matched []*Policy
	var win *Policy
	var clauses []string
	for _, p := range c.ClientPolicies {
		why, ok := clientMatches(p, cl, env.Now)
		if !ok {
			continue
		}
		matched = append(matched, p)
		if win == nil || clientRank(p.Action) > clientRank(win.Action) {
			win, clauses = p, why
		}
	}
	if win == nil {
		return ClientDecision{}
	}
	d := ClientDecision{Matched: true, Policy: win.Name, Mode: win.Mode, Action: win.Action, PolicyAction: win.Action, Reason: strings.Join(clauses, "; ")}
	for _, p := range matched {
		if p != win {
			d.AlsoMatched = append(d.AlsoMatched, p.Name)
		}
	}
	ex := c.exclusions()
	switch {
	case env.ClientID != "" && strings.EqualFold(cl.ID, env.ClientID):
		d.Skip = SkipOwnCredential
	case cl.Incomplete() != "":
		d.Skip = SkipFlagsMissing
	case cl.IsInternal():
		d.Skip = SkipInternal
	case hasKey(ex.ids, cl.ID):
		d.Skip = SkipExcludedID
	case ex.nameExcluded(cl.Name):
		d.Skip = SkipExcludedName
	}
	if d.Skip != "" || win.Action != ActionDelete {
		return d
	}
	// Delete: quarantine first. An enabled client is disabled; a disabled
	// one is deleted once patjanitor has kept it disabled for disabledFor.
	if cl.IsEnabled() {
		d.Action = ActionDisable
		d.Reason += fmt.Sprintf("; enabled: disabled first, deleted no sooner than disabledFor %s later", FormatDuration(win.DisabledFor))
		return d
	}
	var at time.Time
	ok := false
	if env.DisabledAt != nil {
		at, ok = env.DisabledAt(cl.ID)
	}
	if !ok {
		d.Action = ActionReport
		d.Reason += "; disabled, but not by patjanitor (no record): patjanitor deletes only clients it disabled itself"
		return d
	}
	due := at.Add(win.DisabledFor)
	d.DisabledAt, d.DeleteAfter = &at, &due
	if env.Now.Before(due) {
		d.Action = ActionReport
		d.Reason += fmt.Sprintf("; disabled by patjanitor at %s: delete due at %s (disabledFor %s)", pat.FormatTime(at), pat.FormatTime(due), FormatDuration(win.DisabledFor))
		return d
	}
	d.Reason += fmt.Sprintf("; disabled by patjanitor at %s, at or before %s (disabledFor %s)", pat.FormatTime(at), pat.FormatTime(env.Now.Add(-win.DisabledFor)), FormatDuration(win.DisabledFor))
	return d
}

// clientMatches reports whether every condition of p holds for cl, with one
// clause per condition for the reason.
func clientMatches(p *Policy, cl *apiclient.Client, now time.Time) ([]string, bool) {
	m := &p.Match
	var why []string
	if m.UnusedFor > 0 {
		cut := now.Add(-m.UnusedFor)
		switch {
		case cl.LastUsed != nil && cl.LastUsed.After(cut):
			return nil, false
		case cl.LastUsed != nil:
			why = append(why, fmt.Sprintf("lastUsed %s is at or before %s (unusedFor %s)", pat.FormatTime(*cl.LastUsed), pat.FormatTime(cut), FormatDuration(m.UnusedFor)))
		case cl.Created.After(cut):
			return nil, false
		default:
			why = append(why, fmt.Sprintf("never used; created %s is at or before %s (unusedFor %s)", pat.FormatTime(cl.Created), pat.FormatTime(cut), FormatDuration(m.UnusedFor)))
		}
	}
	if m.LastUsedOlderThan > 0 {
		cut := now.Add(-m.LastUsedOlderThan)
		if cl.LastUsed == nil || cl.LastUsed.After(cut) {
			return nil, false
		}
		why = append(why, fmt.Sprintf("lastUsed %s is at or before %s (lastUsedOlderThan %s)", pat.FormatTime(*cl.LastUsed), pat.FormatTime(cut), FormatDuration(m.LastUsedOlderThan)))
	}
	if m.NeverUsed {
		if cl.LastUsed != nil {
			return nil, false
		}
		why = append(why, "never used (lastUsed null)")
	}
	if m.CreatedOlderThan > 0 {
		cut := now.Add(-m.CreatedOlderThan)
		if cl.Created.After(cut) {
			return nil, false
		}
		why = append(why, fmt.Sprintf("created %s is at or before %s (createdOlderThan %s)", pat.FormatTime(cl.Created), pat.FormatTime(cut), FormatDuration(m.CreatedOlderThan)))
	}
	if m.Scopes != nil {
		if m.Scopes.Any != nil {
			if !holdsAny(cl.Scope, m.Scopes.Any) {
				return nil, false
			}
			why = append(why, fmt.Sprintf("scope %s holds one of %v", scopeText(cl.Scope), m.Scopes.Any))
		}
		if m.Scopes.Outside != nil {
			if !holdsOutside(cl.Scope, m.Scopes.Outside) {
				return nil, false
			}
			why = append(why, fmt.Sprintf("scope %s holds one outside %v", scopeText(cl.Scope), m.Scopes.Outside))
		}
	}
	if m.GrantTypes != nil {
		if !slices.ContainsFunc(cl.GrantTypes, func(g string) bool { return slices.Contains(m.GrantTypes.Any, g) }) {
			return nil, false
		}
		why = append(why, fmt.Sprintf("grantTypes %v hold one of %v", cl.GrantTypes, m.GrantTypes.Any))
	}
	if m.Enabled != nil {
		if cl.IsEnabled() != *m.Enabled {
			return nil, false
		}
		why = append(why, fmt.Sprintf("enabled is %t", *m.Enabled))
	}
	if m.Type != "" {
		if cl.Type != m.Type {
			return nil, false
		}
		why = append(why, "type is "+m.Type)
	}
	if m.NameMatches != nil {
		if !m.NameMatches.MatchString(cl.Name) {
			return nil, false
		}
		why = append(why, fmt.Sprintf("name %q matches %s", cl.Name, m.NameMatches))
	}
	// Disabling a disabled client would change nothing (and match forever).
	if p.Action == ActionDisable && !cl.IsEnabled() {
		return nil, false
	}
	return why, true
}

func scopeText(s pat.Scopes) string {
	if s.Null {
		return "null (sp:scopes:all)"
	}
	return fmt.Sprint(s.Values)
}

// ClientMatchString renders an apiClients policy's conditions as the file
// writes them: the shared ones as Match.String does, then grantTypes,
// enabled and type.
func ClientMatchString(m *Match) string {
	parts := []string{}
	if s := m.String(); s != "" {
		parts = append(parts, s)
	}
	if m.GrantTypes != nil {
		parts = append(parts, "grantTypes.any ["+strings.Join(m.GrantTypes.Any, ", ")+"]")
	}
	if m.Enabled != nil {
		parts = append(parts, fmt.Sprintf("enabled %t", *m.Enabled))
	}
	if m.Type != "" {
		parts = append(parts, "type "+m.Type)
	}
	return strings.Join(parts, ", ")
}

// clientNotify checks notify.apiClients: every name is a receiver.
func (v *validator) clientNotify() {
	n := &v.c.Notify
	names := map[string]bool{}
	for _, r := range n.Receivers {
		names[r.Name] = true
	}
	v.items("notify.apiClients", n.APIClients)
	for i, name := range n.APIClients {
		if name != "" && !names[name] {
			v.errf(fmt.Sprintf("notify.apiClients[%d]", i), "no receiver named %q", name)
		}
	}
}
