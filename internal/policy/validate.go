package policy

import (
	"fmt"
	"math"
	"net"
	"net/mail"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// identityStates are the identityState values ownerStates accepts (the
// public-identities API's enum).
var identityStates = []string{"ACTIVE", "INACTIVE_SHORT_TERM", "INACTIVE_LONG_TERM"}

var policyNameRE = regexp.MustCompile(`^[a-z0-9-]+$`)

// maxPolicyNameLen keeps names usable as metric label values and in reports.
const maxPolicyNameLen = 63

// validator is the third step of Parse: it checks the decoded and defaulted
// config, reporting at the lines the decoder recorded. It only reads c: it
// never assigns to it (TestValidateDoesNotMutate), so that what the file
// says and what the defaults filled in are settled before anything is
// judged, and validating twice reports the same.
type validator struct {
	c    *Config
	d    *decoder
	errs *errorList
	// warns are problems that do not stop the load (validate prints them).
	warns *errorList
	// versionKnown is false when tenant.apiVersion is invalid, so that
	// version-dependent checks do not pile up on that one mistake.
	versionKnown bool
	// minEvery is the shortest @every schedule accepted.
	minEvery time.Duration

	// What checking parsed, for the loaded config: the cron schedules by
	// spec and the time zone (Location).
	parsed   map[string]cron.Schedule
	location *time.Location
}

func (v *validator) errf(path, format string, args ...any) {
	v.errs.add(v.d.line(path), path, fmt.Sprintf(format, args...))
}

func (v *validator) warnf(path, format string, args ...any) {
	// Past maxErrors more lines do not help (and an alias bomb would make
	// millions).
	if v.warns != nil && len(v.warns.errs) < maxErrors {
		v.warns.add(v.d.line(path), path, fmt.Sprintf(format, args...))
	}
}

// ids warns about each id of a list that is not in the tenant's form (32
// lowercase hex). It still works, compared without regard to case, but an
// id in another form is most often a typo or a name pasted in its place,
// and an exclusion that names nothing protects nothing, silently.
func (v *validator) ids(path string, ids []string) {
	for i, id := range ids {
		if !pat.CanonicalID(id) && (v.warns == nil || len(v.warns.errs) < maxErrors) {
			v.id(fmt.Sprintf("%s[%d]", path, i), id)
		}
	}
}

func (v *validator) id(path, id string) {
	if pat.CanonicalID(id) || strings.TrimSpace(id) == "" || v.d.bad[path] {
		return
	}
	v.warnf(path, "%s", IDWarning(id))
}

// IDWarning says what is unusual about an id that is not 32 lowercase hex
// characters (for validate's warnings, also about PATJANITOR_CLIENT_ID).
func IDWarning(id string) string {
	msg := fmt.Sprintf("%q is not 32 lowercase hex characters, the form of the tenant's ids", id)
	if k := pat.IDKey(id); k != id && pat.CanonicalID(k) {
		return msg + fmt.Sprintf("; it is compared without regard to case, as %q", k)
	}
	return msg + "; check that it is an id and not a name (it is compared without regard to case)"
}

// nonEmpty reports an explicitly empty string at path.
func (v *validator) nonEmpty(path, value, hint string) bool {
	if v.d.bad[path] {
		return false
	}
	if v.d.has(path) && strings.TrimSpace(value) == "" {
		v.errf(path, "must not be empty%s", hint)
		return false
	}
	return true
}

// positive checks a duration that was given.
func (v *validator) positive(path string, d time.Duration) {
	if v.d.has(path) && !v.d.bad[path] && d <= 0 {
		v.errf(path, "must be greater than 0")
	}
}

// minLastUseThreshold is the shortest unusedFor or lastUsedOlderThan a
// policy may have. The tenant updates lastUsed at most once a day
// (documented for tokens and API clients alike): a credential in use all
// day still shows its first use of the day in the evening. A shorter
// threshold therefore matches, at some hour of every day, credentials that
// were used minutes before, and a delete, disable or expire then ends one
// that is in use. (The simulator keeps the first use of each UTC day.)
const minLastUseThreshold = 24 * time.Hour

// lastUseThreshold checks a threshold compared with lastUsed (unusedFor,
// lastUsedOlderThan) that was given and is positive: at least a day.
func (v *validator) lastUseThreshold(path string, d time.Duration) {
	if v.d.has(path) && !v.d.bad[path] && d > 0 && d < minLastUseThreshold {
		v.errf(path, "%s is shorter than a day: the tenant updates lastUsed at most once a day, so a credential in use can show a lastUsed up to a day old and would match; use 1d or more", FormatDuration(d))
	}
}

// onlyTrue rejects an explicit false for a condition that only has meaning as
// true (false would silently be "no condition").
func (v *validator) onlyTrue(path string, b bool) {
	if v.d.has(path) && !v.d.bad[path] && !b {
		v.errf(path, "only true is meaningful (remove the key rather than set it to false)")
	}
}

// list checks a list that was given: not empty, no empty items.
func (v *validator) list(path string, items []string) {
	if !v.d.has(path) || v.d.bad[path] {
		return
	}
	if len(items) == 0 {
		v.errf(path, "must not be empty")
		return
	}
	v.items(path, items)
}

// items checks that no item of a list is empty (the list itself may be).
func (v *validator) items(path string, items []string) {
	for i, s := range items {
		if ip := fmt.Sprintf("%s[%d]", path, i); strings.TrimSpace(s) == "" && !v.d.bad[ip] {
			v.errf(ip, "must not be empty")
		}
	}
}

func (v *validator) validate() {
	v.tenant()
	v.schedules()
	v.limits()
	v.exclude()
	v.owners()
	v.notify()
	v.clientNotify() // apiclients.go
	v.approvals()
	v.policies()
}

// approvals checks the approvals section. The files are read by the
// approval package, at load time of every command (validate included), not
// here: this package does no I/O.
func (v *validator) approvals() {
	a := v.c.Approvals
	if a == nil {
		if v.d.has("approvals") {
			v.errf("approvals", "must not be empty: give at least allowedSignersFile")
		}
		return
	}
	if a.AllowedSignersFile == "" {
		if !v.d.bad["approvals.allowedSignersFile"] {
			v.errf("approvals", "allowedSignersFile is required (git's allowed_signers format: principal and public key per line)")
		}
	}
	if v.d.has("approvals.required") && a.Required < 1 && !v.d.bad["approvals.required"] {
		v.errf("approvals.required", "must be at least 1 (remove the approvals section to approve nothing)")
	}
	if !v.d.has("approvals.for") {
		return
	}
	if len(a.For) == 0 && !v.d.bad["approvals.for"] {
		v.errf("approvals.for", "must not be empty (remove the approvals section to approve nothing)")
	}
	for i, act := range a.For {
		if act.Rank() < ActionPatch.Rank() && act != ActionDisable {
			v.errf(fmt.Sprintf("approvals.for[%d]", i), "%q is not a mutating action (want delete, expire, patch or disable)", act)
		}
	}
}

func (v *validator) tenant() {
	t := v.c.Tenant
	if v.nonEmpty("tenant.url", t.URL, "") && t.URL != "" {
		if err := CheckTenantURL(t.URL); err != nil {
			v.errf("tenant.url", "%v", err)
		}
	}
	v.versionKnown = false
	if v.nonEmpty("tenant.apiVersion", string(t.APIVersion), " (omit the key for v3)") {
		if _, err := pat.ParseAPIVersion(string(t.APIVersion)); err != nil {
			v.errf("tenant.apiVersion", "%v", err)
		} else {
			v.versionKnown = true
		}
	}
	// expire goes through the admin bulk update, which only v1 has (a
	// per-token PATCH of another owner's token is refused by real tenants).
	if v.d.has("tenant.bulkApiVersion") && v.nonEmpty("tenant.bulkApiVersion", string(t.BulkAPIVersion), " (omit the key for v1)") {
		if ver, err := pat.ParseAPIVersion(string(t.BulkAPIVersion)); err != nil || ver != pat.V1 {
			v.errf("tenant.bulkApiVersion", "%q: only v1 offers the bulk update of personal access tokens (/personal-access-tokens/v1/bulk-update)", t.BulkAPIVersion)
		}
	}
	v.nonEmpty("tenant.clientId", t.ClientID, "")
	v.id("tenant.clientId", t.ClientID)
	v.nonEmpty("tenant.clientSecretFile", t.ClientSecretFile, "")

	if v.d.has("tenant.tokenUrl") {
		if err := CheckTokenURL(t.TokenURL); err != nil {
			v.errf("tenant.tokenUrl", "%v", err)
		}
	}

	if r := t.RateLimit.Requests; v.d.has("tenant.rateLimit.requests") && !v.d.bad["tenant.rateLimit.requests"] && (r == 0 || r < -1) {
		v.errf("tenant.rateLimit.requests", "must be at least 1 (or -1 for no client-side limit)")
	}
	v.positive("tenant.rateLimit.per", t.RateLimit.Per)
	if v.d.has("tenant.maxListingBytes") && !v.d.bad["tenant.maxListingBytes"] && t.MaxListingBytes < MinMaxListingBytes {
		v.errf("tenant.maxListingBytes", "must be at least %s (the default is %s)", MinMaxListingBytes, DefaultMaxListingBytes)
	}
	if v.d.has("tenant.maxClockSkew") && !v.d.bad["tenant.maxClockSkew"] && (t.MaxClockSkew < MinMaxClockSkew || t.MaxClockSkew > MaxMaxClockSkew) {
		// No way to turn the check off: a proxy that strips Date already
		// skips it (with a warning), and a clock that is off must not act.
		v.errf("tenant.maxClockSkew", "must be at least %s (a Date header has whole seconds) and at most %s (half the 30-minute settle margin of confirmed changes); the default is %s", MinMaxClockSkew, MaxMaxClockSkew, DefaultMaxClockSkew)
	}
	v.positive("runTimeout", v.c.RunTimeout)
}

func (v *validator) schedules() {
	c := v.c
	v.parsed = map[string]cron.Schedule{}
	if v.nonEmpty("schedule", c.Schedule, " (omit the key for "+strconv.Quote(DefaultSchedule)+")") {
		v.schedule("schedule", c.Schedule)
	}
	v.location = time.UTC
	if v.nonEmpty("timezone", c.Timezone, " (omit the key for UTC)") {
		loc, err := loadLocation(c.Timezone)
		if err != nil {
			v.errf("timezone", "%v", err)
		} else {
			v.location = loc
		}
	}
}

// schedule parses spec once and remembers it.
func (v *validator) schedule(path, spec string) {
	if _, ok := v.parsed[spec]; ok {
		return
	}
	s, err := parseSchedule(spec, v.minEvery)
	if err != nil {
		v.errf(path, "%v", err)
		return
	}
	v.parsed[spec] = s
}

func (v *validator) limits() {
	l := v.c.Limits
	for _, n := range []struct {
		key string
		val int
	}{{"maxActionsPerRun", l.MaxActionsPerRun}, {"maxActionsPerOwner", l.MaxActionsPerOwner}} {
		if path := "limits." + n.key; v.d.has(path) && n.val < 0 {
			v.errf(path, "must not be negative (0 means no limit)")
		}
	}
	if p := l.MaxActionsPercent; v.d.has("limits.maxActionsPercent") && (math.IsNaN(p) || p < 0 || p > 100) {
		v.errf("limits.maxActionsPercent", "must be between 0 and 100 (0 means no limit)")
	}
}

func (v *validator) exclude() {
	e := v.c.Exclude
	v.items("exclude.tokenIds", e.TokenIDs)
	v.items("exclude.ownerIds", e.OwnerIDs)
	v.ids("exclude.tokenIds", e.TokenIDs)
	v.ids("exclude.ownerIds", e.OwnerIDs)
	v.items("exclude.names", e.Names)
	for i, g := range e.Names {
		if _, err := path.Match(g, ""); err != nil {
			v.errf(fmt.Sprintf("exclude.names[%d]", i), "bad glob %q: %v", g, err)
		}
	}
}

func (v *validator) owners() {
	o := v.c.Owners
	if v.nonEmpty("owners.fallbackEmail", o.FallbackEmail, "") && o.FallbackEmail != "" {
		if _, err := mail.ParseAddress(o.FallbackEmail); err != nil {
			v.errf("owners.fallbackEmail", "%q is not an email address", o.FallbackEmail)
		}
	}
}

func (v *validator) notify() {
	n := v.c.Notify
	names := map[string]int{}
	for i := range n.Receivers {
		r := n.Receivers[i]
		at := fmt.Sprintf("notify.receivers[%d]", i)
		switch {
		case strings.TrimSpace(r.Name) == "":
			v.errf(at+".name", "is required")
		default:
			if first, dup := names[r.Name]; dup {
				v.errf(at+".name", "duplicate receiver name (first at notify.receivers[%d])", first)
			} else {
				names[r.Name] = i
			}
		}
		channels := 0
		if r.Slack != nil {
			channels++
			v.oneOf(at+".slack", "webhookUrlFile", r.Slack.WebhookURLFile, "webhookUrlEnv", r.Slack.WebhookURLEnv, true)
		}
		if r.Webhook != nil {
			channels++
			v.oneOf(at+".webhook", "urlFile", r.Webhook.URLFile, "urlEnv", r.Webhook.URLEnv, true)
			v.oneOf(at+".webhook", "hmacSecretFile", r.Webhook.HMACSecretFile, "hmacSecretEnv", r.Webhook.HMACSecretEnv, true)
		}
		if r.Email != nil {
			channels++
			v.email(at+".email", r.Email)
		}
		if channels != 1 && !v.d.tainted(at) {
			v.errf(at, "needs exactly one of slack, webhook or email")
		}
	}
	route := func(path, name string) {
		if _, ok := names[name]; !ok {
			v.errf(path, "no receiver named %q", name)
		}
	}
	for i, name := range n.Summary {
		route(fmt.Sprintf("notify.summary[%d]", i), name)
	}
	for i, name := range n.Failures {
		route(fmt.Sprintf("notify.failures[%d]", i), name)
	}
	if v.nonEmpty("notify.owners", n.Owners, "") && n.Owners != "" {
		route("notify.owners", n.Owners)
	}
	v.positive("notify.digestInterval", n.DigestInterval)
	for _, tf := range []struct {
		kind string
		f    TemplateFiles
	}{{"summary", n.Templates.Summary}, {"digest", n.Templates.Digest}, {"notice", n.Templates.Notice}, {"failure", n.Templates.Failure}, {"test", n.Templates.Test}} {
		for _, p := range []struct{ key, s string }{{"subject", tf.f.Subject}, {"text", tf.f.Text}, {"html", tf.f.HTML}, {"slack", tf.f.Slack}} {
			v.nonEmpty("notify.templates."+tf.kind+"."+p.key, p.s, "")
		}
	}
}

// oneOf checks a secret given as a file or an environment variable.
func (v *validator) oneOf(at, fileKey, file, envKey, env string, required bool) {
	v.nonEmpty(at+"."+fileKey, file, "")
	v.nonEmpty(at+"."+envKey, env, "")
	switch {
	case file != "" && env != "":
		v.errf(at+"."+envKey, "give %s or %s, not both", fileKey, envKey)
	case required && file == "" && env == "" && !v.d.has(at+"."+fileKey) && !v.d.has(at+"."+envKey) && !v.d.unknownIn[at]:
		v.errf(at, "needs %s or %s (secrets are never written in the config)", fileKey, envKey)
	}
}

func (v *validator) email(at string, e *EmailReceiver) {
	host := ""
	switch h, port, err := net.SplitHostPort(e.Smarthost); {
	case v.d.bad[at+".smarthost"]:
	case !v.d.has(at + ".smarthost"):
		v.errf(at, "needs smarthost (host:port)")
	case err != nil || h == "":
		v.errf(at+".smarthost", "%q is not host:port", e.Smarthost)
	case !validPort(port):
		v.errf(at+".smarthost", "%q has a bad port", e.Smarthost)
	default:
		host = h
	}
	switch _, err := mail.ParseAddress(e.From); {
	case v.d.bad[at+".from"]:
	case !v.d.has(at + ".from"):
		v.errf(at, "needs from (the sender address)")
	case err != nil:
		v.errf(at+".from", "%q is not an email address", e.From)
	}
	for i, to := range e.To {
		if _, err := mail.ParseAddress(to); err != nil {
			v.errf(fmt.Sprintf("%s.to[%d]", at, i), "%q is not an email address", to)
		}
	}
	v.nonEmpty(at+".hello", e.Hello, "")
	v.oneOf(at, "usernameFile", e.UsernameFile, "usernameEnv", e.UsernameEnv, false)
	v.oneOf(at, "passwordFile", e.PasswordFile, "passwordEnv", e.PasswordEnv, false)
	hasUser := e.UsernameFile != "" || e.UsernameEnv != ""
	hasPass := e.PasswordFile != "" || e.PasswordEnv != ""
	if hasUser != hasPass && !v.d.unknownIn[at] {
		v.errf(at, "a username and a password go together (give both or neither)")
	}
	if e.RequireTLS != nil && !*e.RequireTLS && host != "" && !isLoopback(host) {
		v.errf(at+".requireTLS", "false is allowed only for a loopback smarthost (localhost, 127.0.0.1, ::1), not %s", host)
	}
	v.nonEmpty(at+".caFile", e.CAFile, "")
	v.positive(at+".timeout", e.Timeout)
}

func (v *validator) policies() {
	c := v.c
	if len(c.Policies) == 0 {
		if !v.d.bad["policies"] && !v.d.unknownIn[""] && !v.d.bad[""] {
			v.errf("policies", "at least one policy is required")
		}
		return
	}
	firstByName := map[string]int{}
	for i, p := range c.Policies {
		at := fmt.Sprintf("policies[%d]", i)
		if v.d.bad[at] {
			continue // already reported as not a mapping
		}
		switch {
		case !v.d.has(at + ".name"):
			if !v.d.unknownIn[at] {
				v.errf(at, "name is required")
			}
		case v.d.bad[at+".name"]:
		case !policyNameRE.MatchString(p.Name):
			v.errf(at+".name", "%q must be lowercase letters, digits and dashes ([a-z0-9-]+)", p.Name)
		case len(p.Name) > maxPolicyNameLen:
			v.errf(at+".name", "is longer than %d characters", maxPolicyNameLen)
		default:
			if first, dup := firstByName[p.Name]; dup {
				v.errf(at+".name", "duplicate policy name (first at policies[%d], line %d)", first, c.Policies[first].Line)
			} else {
				firstByName[p.Name] = i
			}
		}
		v.policy(at, p)
	}
}

func (v *validator) policy(at string, p *Policy) {
	if v.d.has(at+".mode") && p.Mode != ModeReport && p.Mode != ModeEnforce {
		v.errf(at+".mode", "unknown mode %q (want report or enforce)", p.Mode)
	}
	if v.d.has(at+".schedule") && v.nonEmpty(at+".schedule", p.Schedule, " (omit the key for the default schedule)") {
		v.schedule(at+".schedule", p.Schedule)
	}
	if v.resource(at, p) {
		v.clientPolicy(at, p) // apiclients.go
		return
	}
	v.match(at, p)

	switch {
	case v.d.bad[at+".action"]:
	case !v.d.has(at + ".action"):
		if !v.d.unknownIn[at] {
			v.errf(at, "action is required (report, delete, patch or expire)")
		}
	case p.Action == ActionDisable:
		v.errf(at+".action", "disable is an action of resource: apiClients (personal access tokens cannot be disabled)")
	case p.Action.Rank() == 0:
		v.errf(at+".action", "unknown action %q (want report, delete, patch or expire)", p.Action)
	}

	switch {
	case p.Action == ActionPatch && p.Patch == nil:
		if !v.d.unknownIn[at] {
			v.errf(at, "patch is required with action: patch")
		}
	case p.Action != ActionPatch && p.Patch != nil:
		v.errf(at+".patch", "only allowed with action: patch")
	case p.Patch != nil:
		v.patch(at+".patch", p.Patch)
	}

	switch {
	case p.Action == ActionExpire && !v.d.has(at+".expireIn"):
		if !v.d.unknownIn[at] {
			v.errf(at, "expireIn is required with action: expire")
		}
	case p.Action != ActionExpire && v.d.has(at+".expireIn"):
		v.errf(at+".expireIn", "only allowed with action: expire")
	default:
		v.positive(at+".expireIn", p.ExpireIn)
	}

	v.grace(at, p, "a delete, patch or expire", v.c.Notify.Owners != "",
		"needs notify.owners: the action waits for a delivered warning, and without a receiver for owners none can be delivered")
}

// grace checks a policy's grace: it defers an action (defers names the ones
// that can be) until a warning was delivered, so it needs receivers
// (hasReceiver; noReceiver says which).
func (v *validator) grace(at string, p *Policy, defers string, hasReceiver bool, noReceiver string) {
	if !v.d.has(at+".grace") || v.d.bad[at+".grace"] {
		return
	}
	switch {
	case p.Grace <= 0:
		v.errf(at+".grace", "must be greater than 0")
	case p.Action == ActionReport:
		v.errf(at+".grace", "has no meaning for action: report (it defers %s)", defers)
	case !hasReceiver:
		v.errf(at+".grace", "%s", noReceiver)
	}
}

func (v *validator) match(at string, p *Policy) {
	mat := at + ".match"
	if !v.matchGiven(at) {
		return
	}
	m := &p.Match
	c := v.c
	for _, f := range []struct {
		key string
		d   time.Duration
	}{{"unusedFor", m.UnusedFor}, {"lastUsedOlderThan", m.LastUsedOlderThan}, {"createdOlderThan", m.CreatedOlderThan}, {"expiresWithin", m.ExpiresWithin}} {
		v.positive(mat+"."+f.key, f.d)
	}
	if !m.NeverUsed { // a never-used token is judged by its exact created time
		v.lastUseThreshold(mat+".unusedFor", m.UnusedFor)
	}
	v.lastUseThreshold(mat+".lastUsedOlderThan", m.LastUsedOlderThan)
	v.onlyTrue(mat+".neverUsed", m.NeverUsed)
	v.onlyTrue(mat+".neverExpires", m.NeverExpires)
	v.onlyTrue(mat+".ownerMissing", m.OwnerMissing)
	if m.NeverUsed && m.LastUsedOlderThan > 0 {
		v.errf(mat+".neverUsed", "contradicts lastUsedOlderThan (a never-used token has no lastUsed, so nothing could match); unusedFor covers both")
	}
	v.scopes(mat+".scopes", m.Scopes)
	v.list(mat+".ownerIds", m.OwnerIDs)
	v.ids(mat+".ownerIds", m.OwnerIDs)
	if v.versionKnown && !c.Tenant.APIVersion.ExpirationWritable() {
		for _, key := range []string{"neverExpires", "expiresWithin"} {
			if v.d.has(mat + "." + key) {
				v.errf(mat+"."+key, "needs an API version where expirationDate can be null (v2025 or v1); tenant.apiVersion is %s, whose expirationDate is not reliable", c.Tenant.APIVersion)
			}
		}
	}
	v.list(mat+".ownerStates", m.OwnerStates)
	for i, s := range m.OwnerStates {
		if s != "" && !contains(identityStates, s) {
			v.errf(fmt.Sprintf("%s.ownerStates[%d]", mat, i), "unknown identityState %q (want %s)", s, strings.Join(identityStates, ", "))
		}
	}
	if !c.Owners.Lookup {
		for _, key := range []string{"ownerStates", "ownerMissing"} {
			if v.d.has(mat + "." + key) {
				v.errf(mat+"."+key, "needs owners.lookup: true (the owner's identity must be looked up)")
			}
		}
	}
	if m.conditions() == 0 && !v.d.tainted(mat) {
		v.errf(mat, "needs at least one condition (a policy without one would match every token)")
	}
}

// matchGiven reports whether the policy at has a match section to check,
// and reports a missing one (unless a misspelled key is the likely cause).
func (v *validator) matchGiven(at string) bool {
	mat := at + ".match"
	if !v.d.has(mat) {
		if !v.d.unknownIn[at] {
			v.errf(at, "match is required (at least one condition)")
		}
		return false
	}
	return !v.d.bad[mat]
}

// scopes checks a scopes condition (at sp), if given.
func (v *validator) scopes(sp string, s *ScopeMatch) {
	if s == nil {
		return
	}
	if !v.d.has(sp+".any") && !v.d.has(sp+".outside") && !v.d.tainted(sp) {
		v.errf(sp, "needs any or outside")
	}
	v.list(sp+".any", s.Any)
	v.list(sp+".outside", s.Outside)
}

// conditions counts the conditions given (includeManaged is not one).
func (m *Match) conditions() int {
	n := 0
	for _, b := range []bool{
		m.UnusedFor != 0, m.LastUsedOlderThan != 0, m.NeverUsed, m.CreatedOlderThan != 0,
		m.Scopes != nil, m.NameMatches != nil, m.OwnerIDs != nil, m.NeverExpires,
		m.ExpiresWithin != 0, m.OwnerStates != nil, m.OwnerMissing,
	} {
		if b {
			n++
		}
	}
	return n
}

func (v *validator) patch(at string, p *Patch) {
	has := func(k string) bool { return v.d.has(at + "." + k) }
	if v.d.bad[at] {
		return
	}
	if !has("removeScopes") && !has("addScopes") && !has("setScopes") && !has("namePrefix") && !v.d.unknownIn[at] {
		v.errf(at, "must change something: give removeScopes, addScopes, setScopes or namePrefix")
		return
	}
	if has("setScopes") && (has("removeScopes") || has("addScopes")) {
		v.errf(at+".setScopes", "cannot be combined with removeScopes or addScopes (setScopes replaces the whole list)")
	}
	v.list(at+".removeScopes", p.RemoveScopes)
	v.list(at+".addScopes", p.AddScopes)
	v.list(at+".setScopes", p.SetScopes)
	for i, s := range p.AddScopes {
		if s != "" && contains(p.RemoveScopes, s) {
			v.errf(fmt.Sprintf("%s.addScopes[%d]", at, i), "%q is also in removeScopes", s)
		}
	}
	v.nonEmpty(at+".namePrefix", p.NamePrefix, "")
}

func validPort(s string) bool {
	p, err := strconv.Atoi(s)
	return err == nil && p >= 1 && p <= 65535
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// isLoopback reports whether host is localhost or a loopback IP. Other names
// are not resolved: DNS must not be able to turn TLS off.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
