package plan

import (
	"bytes"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// Version is the plan document format this package writes and reads. A reader
// refuses other versions: a plan is an approval, and silently dropping a field
// a newer writer added could change what was approved.
const Version = 1

// Modes and actions as they appear in the document. They mirror the policy
// package's values; the plan keeps its own copy so that it can check a saved
// document without importing the policy engine.
const (
	ModeReport  = "report"
	ModeEnforce = "enforce"
	// ModeGrace is an enforce-mode item of a policy with a grace period
	// whose deadline has not passed (or whose owner has not been warned
	// yet): the token is marked, and nothing is done to it this run. Once
	// the deadline passes, the item is ModeEnforce with Marked and Deadline.
	ModeGrace = "grace"
	// ModeNeedsOwner is an enforce-mode patch of a token that patjanitor's
	// own identity does not own: real tenants refuse a PATCH of another
	// owner's token (only the owner may change its scopes or name), so no
	// request is sent; the owner is told what to change.
	ModeNeedsOwner = "needs-owner"

	ActionReport = "report"
	ActionDelete = "delete"
	ActionPatch  = "patch"
	ActionExpire = "expire"
)

// Plan is the plan document. Field order here is the order of the JSON keys and
// part of the canonical encoding the planHash is computed over.
type Plan struct {
	// Version is the document format, always Version when written.
	Version int
	// Tenant is the tenant base URL the plan was made for.
	Tenant string
	// APIVersion is the PAT API version ("v3", "v2025", "v1").
	APIVersion string
	// GeneratedAt is when the tenant was listed (written in UTC, milliseconds).
	GeneratedAt time.Time
	// RunID identifies the run that made the plan, when there was one.
	RunID string
	// ConfigDigest is the policy file's digest ("sha256:<hex>").
	ConfigDigest string
	// PlanHash is "sha256:<hex>" over the canonical encoding; set by Seal.
	PlanHash string
	// Population is the number of tokens in the tenant (the unfiltered
	// listing's count, or what the filtered listings returned).
	Population int
	// Caller is who the tenant says the run's credential is, from the claims
	// of its access token (nil when unknown: the token is not a JWT).
	Caller *Caller
	// Owners is the number of distinct token owners the listings showed.
	Owners int
	// CredentialExpires is when patjanitor's own PAT expires; nil when it
	// never expires or the listing does not show its expiry.
	CredentialExpires *time.Time
	// PartialView is non-empty when the credential sees only part of the
	// tenant, and says why: such a run is no evidence of a clean tenant, and
	// its enforce-mode actions are not carried out.
	PartialView string
	// Warnings are what an operator must act on that does not stop the run
	// (e.g. patjanitor's own PAT expires soon).
	Warnings []string
	// Listings are the listing calls the plan was made from.
	Listings []Listing
	// Error is non-empty when the data was incomplete: such a plan must not
	// be executed, and says why.
	Error string
	// Policies are the policies the run evaluated, in config order, so that
	// a report lists every one with its count, also a policy that matched
	// nothing (which no item would name). nil in a plan written before the
	// key existed: the key is then omitted, and the hash of such a plan is
	// unchanged.
	Policies []Policy
	// Items are the tokens a policy acts on (or reports), in plan order
	// (Items.Sort).
	Items Items
	// Skipped are tokens a policy matched but that are exempt.
	Skipped []Skipped
	// Guardrails are the configured limits and how the plan measures up.
	Guardrails []Guardrail
	// APIClients is the section on API clients (apiclients.go); nil, and
	// absent from the document, without apiClients policies.
	APIClients *Clients
}

// Caller is the identity a plan was made as (the access token's claims).
type Caller struct {
	ClientID   string `json:"clientId"`
	IdentityID string `json:"identityId"`
	UserName   string `json:"userName,omitempty"`
	// Authorities are the user levels, e.g. ORG_ADMIN ([] when none).
	Authorities []string `json:"authorities"`
}

// Listing is one listing call: the filters text sent ("" for every token), how
// many tokens it returned and, if it failed or looked truncated, why.
type Listing struct {
	Filter string `json:"filter"`
	Count  int    `json:"count"`
	Error  string `json:"error,omitempty"`
}

// Item is one token a policy decided on.
type Item struct {
	TokenID   string
	TokenName string
	OwnerID   string
	OwnerName string
	Created   time.Time
	// LastUsed is nil when the token was never used (JSON null).
	LastUsed *time.Time
	// ExpirationDate is nil when the token never expires or the API version
	// does not send it (the key is then omitted).
	ExpirationDate *time.Time
	// Scope keeps null (sp:scopes:all) apart from [] (nothing).
	Scope   pat.Scopes
	Managed bool
	Policy  string
	// Mode is ModeReport, ModeEnforce, ModeGrace or ModeNeedsOwner.
	Mode string
	// Action is ActionReport, ActionDelete, ActionPatch or ActionExpire.
	Action string
	// Reason names the fields and cutoffs that decided the match.
	Reason string
	// Patch are the JSON Patch operations of a patch or expire ([] otherwise).
	Patch []pat.PatchOp
	// AlsoMatched are the other policies that matched ([] when none).
	AlsoMatched []string
	// Marked and Deadline are set for policies with a grace period: when the
	// token was first marked, and when the action becomes due. Deadline is
	// nil while the owner's warning has not been delivered: the clock starts
	// on delivery.
	Marked   *time.Time
	Deadline *time.Time
}

// Mutating reports whether executing the item changes the tenant: an
// enforce-mode delete, patch or expire. Report-mode items, and the report
// action in either mode, change nothing.
func (it *Item) Mutating() bool {
	if it.Mode != ModeEnforce {
		return false
	}
	switch it.Action {
	case ActionDelete, ActionPatch, ActionExpire:
		return true
	}
	return false
}

// Policy is one policy of the run as configured (the mode after a forced dry
// run).
type Policy struct {
	Name   string `json:"name"`
	Mode   string `json:"mode"`
	Action string `json:"action"`
}

// Skipped is a token a policy matched that is exempt from any action, or a
// token whose listed data could not be used (Reason "undecodable: …", Policy
// "" when none matched).
type Skipped struct {
	TokenID   string `json:"tokenId"`
	TokenName string `json:"tokenName"`
	OwnerID   string `json:"ownerId"`
	Policy    string `json:"policy"`
	// Reason is the exemption: own-credential, managed, excluded-id, ...
	Reason string `json:"reason"`
}

// Guardrail is one configured limit: the limit, what the run wanted, and
// whether it tripped (then the run acts on nothing).
type Guardrail struct {
	Name    string  `json:"name"`
	Limit   float64 `json:"limit"`
	Wanted  int     `json:"wanted"`
	Tripped bool    `json:"tripped"`
	// Detail explains the measurement in words (optional).
	Detail string `json:"detail,omitempty"`
}

// MarshalJSON writes the document shape (compact): times in pat.TimeLayout,
// and [] for every empty list. It is the canonical encoding when PlanHash is
// empty.
func (p Plan) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	if err := newEncoder(&buf, false).plan(&p); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// MarshalJSON writes the item's document shape.
func (it Item) MarshalJSON() ([]byte, error) {
	var e encoder
	if err := e.item(&it); err != nil {
		return nil, err
	}
	return e.buf, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
