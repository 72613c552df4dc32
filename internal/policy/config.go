package policy

import (
	"regexp"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// Defaults applied by Load where the file says nothing.
const (
	DefaultSchedule           = "0 3 * * *"
	DefaultTimezone           = "UTC"
	DefaultMaxActionsPerRun   = 25
	DefaultMaxActionsPercent  = 10
	DefaultMaxActionsPerOwner = 5
	DefaultRateLimitRequests  = 100
	DefaultRateLimitPer       = 10 * time.Second
	// DefaultCredentialExpiryWarning is how long before patjanitor's own PAT
	// expires that runs start warning (log, plan header).
	DefaultCredentialExpiryWarning = 30 * 24 * time.Hour
	// DefaultRunTimeout bounds one run (plan, apply, a scheduled run of
	// serve): listing, owner lookups, waits and the start of mutations. A
	// 100,000-token tenant lists in seconds and 25 actions under the default
	// rate limit take under a minute; 30 minutes leaves room for a large
	// tenant's Retry-After storms without letting a tenant that never answers
	// block every later run of serve.
	DefaultRunTimeout = 30 * time.Minute
	// DefaultMaxListingBytes bounds the listing bodies one run reads,
	// together (tenant.maxListingBytes): 64 MiB, about 195,000 tokens. It
	// equals internal/api's default (a test checks); the memory limits in
	// deploy/ are measured for it.
	DefaultMaxListingBytes ByteSize = 64 << 20
	// MinMaxListingBytes is the smallest tenant.maxListingBytes accepted.
	MinMaxListingBytes ByteSize = 64 << 10
	// DefaultMaxClockSkew is how far the tenant's clock (the Date of its
	// listing answers) may be from this host's before a run is refused
	// (tenant.maxClockSkew). NTP keeps hosts within milliseconds; the Date
	// header has a resolution of one second. 5 minutes is the skew
	// Kerberos tolerates, far below every duration that decides anything
	// (the 30-minute settle margin, days of grace).
	DefaultMaxClockSkew = 5 * time.Minute
	// MaxMaxClockSkew is the largest tenant.maxClockSkew accepted. A host
	// that far ahead judges a confirmed change that much sooner than its
	// 30-minute settle margin says: at 15 minutes half the margin is left;
	// at 30 none would be, and a change the tenant has not yet shown in its
	// listing would be alerted as not in effect. A clock further off is
	// broken, not skewed.
	MaxMaxClockSkew = 15 * time.Minute
	// MinMaxClockSkew is the smallest tenant.maxClockSkew accepted: a Date
	// has whole seconds and arrives after the tenant wrote it, so a host
	// whose clock is right reads up to a second or two more; below 10s it
	// would be refused at random.
	MinMaxClockSkew = 10 * time.Second
)

// Config is a loaded policies.yaml: the tenant, the schedule, the guardrails,
// the exclusions and the policies, with defaults applied and everything
// validated. Treat it as immutable once loaded (ApplyEnv is the one sanctioned
// change, made before use); Only and ForceReport return modified copies.
type Config struct {
	// File is the path the config was loaded from, as given.
	File string `yaml:"-"`
	// Digest is "sha256:<hex>" of the file's bytes. Environment overrides are
	// not part of it.
	Digest string `yaml:"-"`
	// Warnings are problems that do not stop the load (ids not in the
	// tenant's form), with file, line and field; validate prints them.
	Warnings Errors `yaml:"-"`

	Tenant Tenant `yaml:"tenant"`
	// RunTimeout bounds each run (default DefaultRunTimeout). When it passes,
	// the run starts no new request or mutation (the ones in flight finish
	// and are journaled) and fails; a wait the tenant asks for (Retry-After)
	// that would end after it fails the run at once.
	RunTimeout time.Duration `yaml:"runTimeout"`
	// Schedule is the default cron schedule of every policy without its own
	// (5 fields or a descriptor such as @daily or @every 6h).
	Schedule string `yaml:"schedule"`
	// Timezone is the IANA name the schedules are read in; Location is it
	// loaded.
	Timezone string         `yaml:"timezone"`
	Location *time.Location `yaml:"-"`
	Limits   Limits         `yaml:"limits"`
	Exclude  Exclude        `yaml:"exclude"`
	Owners   Owners         `yaml:"owners"`
	Notify   Notify         `yaml:"notify"`
	// Approvals, when set, is the two-person rule: the actions it names are
	// carried out only from a saved plan signed by enough reviewers.
	Approvals *Approvals `yaml:"approvals"`
	// Policies in file order (the order breaks ties between equally
	// destructive policies). After Load these are the personal access token
	// policies only; the resource: apiClients ones are in ClientPolicies.
	Policies []*Policy `yaml:"policies"`
	// ClientPolicies are the resource: apiClients policies, in file order
	// (see apiclients.go). They never reach the token engine.
	ClientPolicies []*Policy `yaml:"-"`
	// fileClientPolicies are the names of the file's apiClients policies
	// (see FileClientPolicies).
	fileClientPolicies []string

	// envSecret is PATJANITOR_CLIENT_SECRET as ApplyEnv found it.
	envSecret secret.Secret
	// schedules are the parsed cron schedules by spec.
	schedules map[string]cron.Schedule
	// excluded are the exclusion lists as sets.
	excluded *exclusions
	// filePolicies are the names of every policy in the file, also in a
	// copy narrowed by Only.
	filePolicies []string
}

// FilePolicies returns the name of every policy in the file (of tokens and
// of API clients), in file order,
// also for a config narrowed by Only to one schedule's policies: state kept
// per policy (grace marks) is stale only when its policy left the file, not
// when another schedule is running.
func (c *Config) FilePolicies() []string { return c.filePolicies }

// Tenant says which tenant patjanitor works on and how it logs in.
type Tenant struct {
	// URL is the tenant's API base, e.g. https://acme.api.identitynow.com,
	// without a version path. Plain http:// only for loopback hosts.
	URL string `yaml:"url"`
	// APIVersion is v3 (the default), v2025 or v1.
	APIVersion pat.APIVersion `yaml:"apiVersion"`
	// ClientID is the id of the PAT patjanitor authenticates with. That token
	// is never acted on.
	ClientID string `yaml:"clientId"`
	// ClientSecretFile names the file holding the PAT's secret (relative paths
	// are resolved against the config file's directory). The secret itself is
	// never accepted in the config; PATJANITOR_CLIENT_SECRET wins over the file.
	ClientSecretFile string `yaml:"clientSecretFile"`
	// RateLimit is the client-side request budget (default 100 per 10s, the
	// tenant's own limit).
	RateLimit RateLimit `yaml:"rateLimit"`
	// MaxListingBytes bounds the listing bodies of one run, together
	// (default DefaultMaxListingBytes). A listing over it is incomplete data:
	// the run changes nothing and fails, naming the limit.
	MaxListingBytes ByteSize `yaml:"maxListingBytes"`
	// Unpaged declares that this tenant is known to return complete listings of
	// exactly 250 tokens. Without it, a listing of exactly 250 items is treated
	// as a silently capped page and stops every mutation of the run.
	Unpaged bool `yaml:"unpaged"`
	// BulkAPIVersion is the API version of the admin bulk update that the
	// expire action sends (PATCH /personal-access-tokens/v1/bulk-update),
	// whatever apiVersion the listing uses. Only v1 offers it, so v1 is the
	// default and the only accepted value; the key exists so that a later
	// version that adds it can be chosen without changing apiVersion.
	BulkAPIVersion pat.APIVersion `yaml:"bulkApiVersion"`
	// TokenURL is the OAuth token endpoint, for tenants whose endpoint is not
	// {url}/oauth/token (vanity domains). Optional: without it a 404 from
	// {url}/oauth/token makes the client ask {url}/oauth/info, and use its
	// tokenEndpoint only on the tenant's own registrable domain.
	TokenURL string `yaml:"tokenUrl"`
	// CredentialExpiryWarning is how long before patjanitor's own PAT
	// expires that every run warns (default 30d; 0 turns the warning off,
	// the metric stays).
	CredentialExpiryWarning time.Duration `yaml:"credentialExpiryWarning"`
	// MaxClockSkew is how far the Date of a listing answer may be from this
	// host's clock when the answer arrived (default DefaultMaxClockSkew, at
	// most MaxMaxClockSkew). Further off, either the host's clock is wrong
	// or a proxy served a stored answer: the run decides nothing.
	MaxClockSkew time.Duration `yaml:"maxClockSkew"`
}

// RateLimit is a request budget: Requests per Per. Requests -1 means no
// client-side limit (for the simulator and benchmarks).
type RateLimit struct {
	Requests int           `yaml:"requests"`
	Per      time.Duration `yaml:"per"`
}

// Limits are the guardrails. A run whose enforce-mode actions would exceed any
// of them acts on nothing. A limit written as 0 is no limit; an omitted one
// takes its default (25, 10 and 5).
type Limits struct {
	MaxActionsPerRun int `yaml:"maxActionsPerRun"`
	// MaxActionsPercent is a percentage (0-100) of the whole token population,
	// so while it is set every run lists every token.
	MaxActionsPercent  float64 `yaml:"maxActionsPercent"`
	MaxActionsPerOwner int     `yaml:"maxActionsPerOwner"`
}

// Exclude lists tokens no policy ever acts on.
type Exclude struct {
	TokenIDs []string `yaml:"tokenIds"`
	OwnerIDs []string `yaml:"ownerIds"`
	// Names are globs in path.Match syntax (*, ?, [a-z]); * does not match /.
	Names []string `yaml:"names"`
}

// Owners configures the owner lookup (identities by id) that notifications and
// the ownerStates and ownerMissing conditions need.
type Owners struct {
	Lookup        bool   `yaml:"lookup"`
	FallbackEmail string `yaml:"fallbackEmail"`
}

// Approvals is the approvals section.
type Approvals struct {
	// AllowedSignersFile is git's allowed_signers format: the reviewers'
	// principals and public keys (relative paths: against the config's
	// directory).
	AllowedSignersFile string `yaml:"allowedSignersFile"`
	// RevokedKeysFile lists public keys whose signatures never count.
	RevokedKeysFile string `yaml:"revokedKeysFile"`
	// Required is how many distinct principals must sign (default 2).
	Required int `yaml:"required"`
	// For are the actions that need approval (default: every mutating one).
	For []Action `yaml:"for"`
}

// DefaultApprovalsRequired is the two of the two-person rule.
const DefaultApprovalsRequired = 2

// Needs reports whether a carries out action only with approval. A nil
// Approvals needs none.
func (a *Approvals) Needs(action Action) bool {
	if a == nil {
		return false
	}
	for _, f := range a.For {
		if f == action {
			return true
		}
	}
	return false
}

// Notify is the notify section: receivers and which messages go where. The
// notify package owns its meaning; this package parses and validates it.
type Notify struct {
	Receivers []Receiver `yaml:"receivers"`
	// Summary, Owners and Failures name receivers.
	Summary  []string `yaml:"summary"`
	Owners   string   `yaml:"owners"`
	Failures []string `yaml:"failures"`
	// APIClients name the receivers of the notices about API client actions
	// (API clients have no owner to tell).
	APIClients     []string      `yaml:"apiClients"`
	DigestInterval time.Duration `yaml:"digestInterval"`
	Templates      Templates     `yaml:"templates"`
}

// Receiver is a named destination with exactly one channel.
type Receiver struct {
	Name    string           `yaml:"name"`
	Slack   *SlackReceiver   `yaml:"slack"`
	Webhook *WebhookReceiver `yaml:"webhook"`
	Email   *EmailReceiver   `yaml:"email"`
}

// SlackReceiver is a Slack incoming webhook; its URL is a secret, read from a
// file or an environment variable (exactly one of them).
type SlackReceiver struct {
	WebhookURLFile string `yaml:"webhookUrlFile"`
	WebhookURLEnv  string `yaml:"webhookUrlEnv"`
}

// WebhookReceiver is a generic JSON webhook signed with HMAC-SHA256.
type WebhookReceiver struct {
	URLFile        string `yaml:"urlFile"`
	URLEnv         string `yaml:"urlEnv"`
	HMACSecretFile string `yaml:"hmacSecretFile"`
	HMACSecretEnv  string `yaml:"hmacSecretEnv"`
}

// EmailReceiver is an SMTP smarthost.
type EmailReceiver struct {
	Smarthost    string   `yaml:"smarthost"`
	From         string   `yaml:"from"`
	To           []string `yaml:"to"`
	Hello        string   `yaml:"hello"`
	UsernameFile string   `yaml:"usernameFile"`
	UsernameEnv  string   `yaml:"usernameEnv"`
	PasswordFile string   `yaml:"passwordFile"`
	PasswordEnv  string   `yaml:"passwordEnv"`
	// RequireTLS is never nil after Load: true unless the file says false,
	// which is accepted only for a loopback smarthost.
	RequireTLS *bool         `yaml:"requireTLS"`
	CAFile     string        `yaml:"caFile"`
	Timeout    time.Duration `yaml:"timeout"`
}

// Templates replace the notify package's embedded templates, per kind of
// message.
type Templates struct {
	Summary TemplateFiles `yaml:"summary"`
	Digest  TemplateFiles `yaml:"digest"`
	Notice  TemplateFiles `yaml:"notice"`
	Failure TemplateFiles `yaml:"failure"`
	Test    TemplateFiles `yaml:"test"`
}

// TemplateFiles are template file paths for one kind of message.
type TemplateFiles struct {
	Subject string `yaml:"subject"`
	Text    string `yaml:"text"`
	HTML    string `yaml:"html"`
	Slack   string `yaml:"slack"`
}

// Mode says whether a policy's action is carried out.
type Mode string

// The modes.
const (
	ModeReport  Mode = "report"  // decide and report, change nothing (the default)
	ModeEnforce Mode = "enforce" // carry the action out
)

// Action is what a policy does to a matching token.
type Action string

// The actions, from least to most destructive.
const (
	ActionReport Action = "report" // list the token, change nothing, even in enforce mode
	ActionPatch  Action = "patch"  // JSON Patch of name and scope
	ActionExpire Action = "expire" // set expirationDate through the v1 bulk update
	ActionDelete Action = "delete" // delete the token
)

// Rank orders actions by destructiveness: delete 4, expire 3, patch 2,
// report 1, anything else 0. Among matching policies of the same mode the most
// destructive wins (enforce-mode ones come first: see precedence).
func (a Action) Rank() int {
	switch a {
	case ActionDelete:
		return 4
	case ActionExpire:
		return 3
	case ActionPatch:
		return 2
	case ActionReport:
		return 1
	}
	return 0
}

// Policy is one named rule: which tokens (Match) and what to do (Action).
type Policy struct {
	// Name is unique in the file, lowercase letters, digits and dashes.
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Mode is report (the default) or enforce.
	Mode Mode `yaml:"mode"`
	// Schedule is the policy's cron schedule: its own, or after Load the
	// config's default when it had none.
	Schedule string `yaml:"schedule"`
	Match    Match  `yaml:"match"`
	Action   Action `yaml:"action"`
	// Patch is set exactly when Action is patch.
	Patch *Patch `yaml:"patch"`
	// ExpireIn is set exactly when Action is expire: the new expirationDate
	// is the decision time plus ExpireIn.
	ExpireIn time.Duration `yaml:"expireIn"`
	// Grace (0 = none) defers the action: the owner is warned first and the
	// action happens no sooner than Grace after the warning was delivered.
	Grace time.Duration `yaml:"grace"`
	// Line is where the policy starts in the file.
	Line int `yaml:"-"`
	// Resource is what the policy governs: personalAccessTokens (the
	// default, "" after Load too) or apiClients (see apiclients.go).
	Resource Resource `yaml:"resource"`
	// DisabledFor (apiClients, action delete) is how long patjanitor must
	// have kept a client disabled before it deletes it.
	DisabledFor time.Duration `yaml:"disabledFor"`

	// c is the policy compiled for evaluation (nil for a Policy built by hand;
	// the evaluator then compiles it itself).
	c *compiled
}

// Match holds a policy's conditions. Every condition given must hold (AND); a
// zero field is a condition not given. At least one condition is required.
type Match struct {
	// UnusedFor: lastUsed <= now-UnusedFor, or never used and created <=
	// now-UnusedFor.
	UnusedFor time.Duration `yaml:"unusedFor"`
	// LastUsedOlderThan: lastUsed <= now-LastUsedOlderThan; a never-used token
	// does not match.
	LastUsedOlderThan time.Duration `yaml:"lastUsedOlderThan"`
	// NeverUsed: lastUsed is null.
	NeverUsed bool `yaml:"neverUsed"`
	// CreatedOlderThan: created <= now-CreatedOlderThan.
	CreatedOlderThan time.Duration `yaml:"createdOlderThan"`
	// Scopes tests the token's effective scopes (a null scope is
	// sp:scopes:all).
	Scopes *ScopeMatch `yaml:"scopes"`
	// NameMatches is an RE2 regexp searched in the token's name (unanchored:
	// write ^…$ to match the whole name).
	NameMatches *regexp.Regexp `yaml:"nameMatches"`
	// OwnerIDs: the token's owner id is one of these.
	OwnerIDs []string `yaml:"ownerIds"`
	// NeverExpires: expirationDate is null (v2025 and v1 only).
	NeverExpires bool `yaml:"neverExpires"`
	// ExpiresWithin: expirationDate <= now+ExpiresWithin (also an
	// expirationDate in the past; v2025 and v1 only).
	ExpiresWithin time.Duration `yaml:"expiresWithin"`
	// IncludeManaged is no condition: it lets the policy act on managed
	// tokens, which are skipped otherwise.
	IncludeManaged bool `yaml:"includeManaged"`
	// OwnerStates: the owner identity's identityState is one of these (needs
	// owners.lookup and owner data at evaluation).
	OwnerStates []string `yaml:"ownerStates"`
	// OwnerMissing: the tenant has no identity with the owner's id (needs
	// owners.lookup and owner data at evaluation).
	OwnerMissing bool `yaml:"ownerMissing"`
	// GrantTypes, Enabled and Type are API client conditions (resource:
	// apiClients only; see apiclients.go).
	GrantTypes *GrantTypeMatch `yaml:"grantTypes"`
	Enabled    *bool           `yaml:"enabled"`
	Type       string          `yaml:"type"`
}

// ScopeMatch tests the token's effective scopes.
type ScopeMatch struct {
	// Any: the token holds at least one of these.
	Any []string `yaml:"any"`
	// Outside: the token holds at least one scope that is not in this
	// allowed list.
	Outside []string `yaml:"outside"`
}

// Patch says how an action: patch changes a token. SetScopes excludes
// RemoveScopes and AddScopes.
type Patch struct {
	RemoveScopes []string `yaml:"removeScopes"`
	AddScopes    []string `yaml:"addScopes"`
	SetScopes    []string `yaml:"setScopes"`
	// NamePrefix is prepended to the name unless it already starts with it.
	NamePrefix string `yaml:"namePrefix"`
}

// Policy returns the named policy, or nil.
func (c *Config) Policy(name string) *Policy {
	for _, p := range c.Policies {
		if p.Name == name {
			return p
		}
	}
	return nil
}
