package policy

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// now is the decision time of the evaluation tests: 90 days before it is
// 2026-08-28T03:00:00Z.
var testNow = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)

const ms = time.Millisecond

func mustParse(t testing.TB, yaml string) *Config {
	t.Helper()
	cfg, err := Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("Parse:\n%s\n%v", yaml, err)
	}
	return cfg
}

// onePolicy is a config with one policy: match (flow mapping text), action.
func onePolicy(t testing.TB, version, match, action string) *Config {
	t.Helper()
	return mustParse(t, "tenant: {apiVersion: "+version+"}\nowners: {lookup: true}\npolicies:\n  - name: p\n    match: "+match+"\n    action: "+action+"\n")
}

func tp(t time.Time) *time.Time { return &t }
func bp(b bool) *bool           { return &b }

// tok is a token used yesterday, created a year ago, with a fine-grained
// scope; each case changes what it tests.
func tok(mod func(*pat.Token)) *pat.Token {
	t := &pat.Token{
		ID: "tok1", Name: "ci-deploy", Owner: pat.Owner{Type: "IDENTITY", ID: "owner1", Name: "Alison"},
		Scope:    pat.ScopesOf("idn:sources:read"),
		Created:  testNow.Add(-365 * Day),
		LastUsed: tp(testNow.Add(-Day)),
	}
	if mod != nil {
		mod(t)
	}
	return t
}

func TestConditionsAtBoundaries(t *testing.T) {
	cut90 := testNow.Add(-90 * Day) // 2026-08-28T03:00:00Z
	cut30 := testNow.Add(-30 * Day)
	exp14 := testNow.Add(14 * Day)
	owners := map[string]OwnerInfo{
		"gone":   {Missing: true},
		"leaver": {State: "INACTIVE_LONG_TERM"},
		"active": {State: "ACTIVE"},
	}
	lookup := func(id string) (OwnerInfo, bool) { i, ok := owners[id]; return i, ok }

	tests := []struct {
		name    string
		version string // "" = v3
		match   string
		token   *pat.Token
		noOwner bool   // no owner lookup in Env
		want    string // the reason; "" = no match
	}{
		// unusedFor
		{"unusedFor: lastUsed exactly at the cutoff", "", "{unusedFor: 90d}",
			tok(func(t *pat.Token) { t.LastUsed = tp(cut90) }),
			false, "lastUsed 2026-08-28T03:00:00.000Z is at cutoff 2026-08-28T03:00:00.000Z (unusedFor 90d)"},
		{"unusedFor: lastUsed 1ms before the cutoff", "", "{unusedFor: 90d}",
			tok(func(t *pat.Token) { t.LastUsed = tp(cut90.Add(-ms)) }),
			false, "lastUsed 2026-08-28T02:59:59.999Z is before cutoff 2026-08-28T03:00:00.000Z (unusedFor 90d)"},
		{"unusedFor: lastUsed 1ms after the cutoff", "", "{unusedFor: 90d}",
			tok(func(t *pat.Token) { t.LastUsed = tp(cut90.Add(ms)) }), false, ""},
		{"unusedFor: used long ago, created recently (lastUsed decides)", "", "{unusedFor: 90d}",
			tok(func(t *pat.Token) { t.LastUsed = tp(cut90.Add(-Day)); t.Created = cut90.Add(-2 * Day) }),
			false, "lastUsed 2026-08-27T03:00:00.000Z is before cutoff 2026-08-28T03:00:00.000Z (unusedFor 90d)"},
		{"unusedFor: never used, created exactly at the cutoff", "", "{unusedFor: 90d}",
			tok(func(t *pat.Token) { t.LastUsed = nil; t.Created = cut90 }),
			false, "never used; created 2026-08-28T03:00:00.000Z is at cutoff 2026-08-28T03:00:00.000Z (unusedFor 90d)"},
		{"unusedFor: never used, created 1ms after the cutoff", "", "{unusedFor: 90d}",
			tok(func(t *pat.Token) { t.LastUsed = nil; t.Created = cut90.Add(ms) }), false, ""},
		{"unusedFor: never used but created yesterday", "", "{unusedFor: 90d}",
			tok(func(t *pat.Token) { t.LastUsed = nil; t.Created = testNow.Add(-Day) }), false, ""},

		// lastUsedOlderThan
		{"lastUsedOlderThan: exactly at the cutoff", "", "{lastUsedOlderThan: 30d}",
			tok(func(t *pat.Token) { t.LastUsed = tp(cut30) }),
			false, "lastUsed 2026-10-27T03:00:00.000Z is at cutoff 2026-10-27T03:00:00.000Z (lastUsedOlderThan 30d)"},
		{"lastUsedOlderThan: 1ms after", "", "{lastUsedOlderThan: 30d}",
			tok(func(t *pat.Token) { t.LastUsed = tp(cut30.Add(ms)) }), false, ""},
		{"lastUsedOlderThan: never used does not match", "", "{lastUsedOlderThan: 30d}",
			tok(func(t *pat.Token) { t.LastUsed = nil; t.Created = testNow.Add(-1000 * Day) }), false, ""},

		// neverUsed
		{"neverUsed: never used", "", "{neverUsed: true}",
			tok(func(t *pat.Token) { t.LastUsed = nil }), false, "lastUsed is null: never used (neverUsed)"},
		{"neverUsed: used", "", "{neverUsed: true}", tok(nil), false, ""},
		{"neverUsed and createdOlderThan: created yesterday", "", "{neverUsed: true, createdOlderThan: 30d}",
			tok(func(t *pat.Token) { t.LastUsed = nil; t.Created = testNow.Add(-Day) }), false, ""},

		// createdOlderThan
		{"createdOlderThan: exactly at the cutoff", "", "{createdOlderThan: 30d}",
			tok(func(t *pat.Token) { t.Created = cut30 }),
			false, "created 2026-10-27T03:00:00.000Z is at cutoff 2026-10-27T03:00:00.000Z (createdOlderThan 30d)"},
		{"createdOlderThan: 1ms before", "", "{createdOlderThan: 30d}",
			tok(func(t *pat.Token) { t.Created = cut30.Add(-ms) }),
			false, "created 2026-10-27T02:59:59.999Z is before cutoff 2026-10-27T03:00:00.000Z (createdOlderThan 30d)"},
		{"createdOlderThan: 1ms after", "", "{createdOlderThan: 30d}",
			tok(func(t *pat.Token) { t.Created = cut30.Add(ms) }), false, ""},

		// scopes.any
		{"scopes.any: null scope counts as sp:scopes:all", "", `{scopes: {any: ["sp:scopes:all"]}}`,
			tok(func(t *pat.Token) { t.Scope = pat.Scopes{Null: true} }),
			false, "scope null counts as sp:scopes:all; holds sp:scopes:all (scopes.any)"},
		{"scopes.any: empty scope holds nothing", "", `{scopes: {any: ["sp:scopes:all"]}}`,
			tok(func(t *pat.Token) { t.Scope = pat.ScopesOf() }), false, ""},
		{"scopes.any: explicit sp:scopes:all", "", `{scopes: {any: ["sp:scopes:all", "idn:x"]}}`,
			tok(func(t *pat.Token) { t.Scope = pat.ScopesOf("idn:y", "sp:scopes:all", "idn:x") }),
			false, "holds sp:scopes:all, idn:x (scopes.any)"},
		{"scopes.any: other scopes", "", `{scopes: {any: ["sp:scopes:all"]}}`, tok(nil), false, ""},

		// scopes.outside
		{"scopes.outside: null scope is outside", "", `{scopes: {outside: ["sp:scopes:default"]}}`,
			tok(func(t *pat.Token) { t.Scope = pat.Scopes{Null: true} }),
			false, "scope null counts as sp:scopes:all; holds sp:scopes:all outside the allowed scopes (scopes.outside)"},
		{"scopes.outside: null scope, sp:scopes:all allowed", "", `{scopes: {outside: ["sp:scopes:all"]}}`,
			tok(func(t *pat.Token) { t.Scope = pat.Scopes{Null: true} }), false, ""},
		{"scopes.outside: empty scope is inside", "", `{scopes: {outside: ["sp:scopes:default"]}}`,
			tok(func(t *pat.Token) { t.Scope = pat.ScopesOf() }), false, ""},
		{"scopes.outside: some outside", "", `{scopes: {outside: ["sp:scopes:default"]}}`,
			tok(func(t *pat.Token) { t.Scope = pat.ScopesOf("sp:scopes:default", "idn:a", "idn:b") }),
			false, "holds idn:a, idn:b outside the allowed scopes (scopes.outside)"},
		{"scopes.outside: all allowed", "", `{scopes: {outside: ["sp:scopes:default", "idn:sources:read"]}}`, tok(nil), false, ""},

		// nameMatches (unanchored unless the regexp anchors)
		{"nameMatches: matches", "", `{nameMatches: "^ci-"}`, tok(nil), false, `name "ci-deploy" matches "^ci-" (nameMatches)`},
		{"nameMatches: anchored, not at the start", "", `{nameMatches: "^ci-"}`,
			tok(func(t *pat.Token) { t.Name = "my-ci-deploy" }), false, ""},
		{"nameMatches: unanchored finds a substring", "", `{nameMatches: "deploy"}`, tok(nil), false, `name "ci-deploy" matches "deploy" (nameMatches)`},

		// ownerIds
		{"ownerIds: listed", "", "{ownerIds: [x, owner1]}", tok(nil), false, "owner owner1 is listed (ownerIds)"},
		{"ownerIds: not listed", "", "{ownerIds: [x]}", tok(nil), false, ""},

		// neverExpires (v2025)
		{"neverExpires: null expirationDate", "v2025", "{neverExpires: true}",
			tok(func(t *pat.Token) { t.ExpirationDate = nil }), false, "expirationDate is null: never expires (neverExpires)"},
		{"neverExpires: with the acknowledgement", "v2025", "{neverExpires: true}",
			tok(func(t *pat.Token) { t.UserAwareTokenNeverExpires = bp(true) }),
			false, "expirationDate is null: never expires, userAwareTokenNeverExpires true (neverExpires)"},
		{"neverExpires: has a date", "v1", "{neverExpires: true}",
			tok(func(t *pat.Token) { t.ExpirationDate = tp(testNow.Add(400 * Day)) }), false, ""},

		// expiresWithin (v2025)
		{"expiresWithin: exactly at the cutoff", "v2025", "{expiresWithin: 14d}",
			tok(func(t *pat.Token) { t.ExpirationDate = tp(exp14) }),
			false, "expirationDate 2026-12-10T03:00:00.000Z is at cutoff 2026-12-10T03:00:00.000Z (expiresWithin 14d)"},
		{"expiresWithin: 1ms after", "v2025", "{expiresWithin: 14d}",
			tok(func(t *pat.Token) { t.ExpirationDate = tp(exp14.Add(ms)) }), false, ""},
		{"expiresWithin: already expired", "v2025", "{expiresWithin: 14d}",
			tok(func(t *pat.Token) { t.ExpirationDate = tp(testNow.Add(-Day)) }),
			false, "expirationDate 2026-11-25T03:00:00.000Z is before cutoff 2026-12-10T03:00:00.000Z (expiresWithin 14d)"},
		{"expiresWithin: never expires", "v2025", "{expiresWithin: 14d}", tok(nil), false, ""},

		// owner conditions
		{"ownerStates: matches", "", "{ownerStates: [INACTIVE_LONG_TERM]}",
			tok(func(t *pat.Token) { t.Owner.ID = "leaver" }), false, "owner leaver identityState INACTIVE_LONG_TERM (ownerStates)"},
		{"ownerStates: active", "", "{ownerStates: [INACTIVE_LONG_TERM]}",
			tok(func(t *pat.Token) { t.Owner.ID = "active" }), false, ""},
		{"ownerStates: missing identity has no state", "", "{ownerStates: [INACTIVE_LONG_TERM]}",
			tok(func(t *pat.Token) { t.Owner.ID = "gone" }), false, ""},
		{"ownerMissing: missing", "", "{ownerMissing: true}",
			tok(func(t *pat.Token) { t.Owner.ID = "gone" }), false, "owner gone has no identity in the tenant (ownerMissing)"},
		{"ownerMissing: exists", "", "{ownerMissing: true}",
			tok(func(t *pat.Token) { t.Owner.ID = "active" }), false, ""},

		// AND of conditions, in the documented order
		{"every condition must hold", "", `{unusedFor: 90d, scopes: {any: ["sp:scopes:all"]}, nameMatches: "^ci-"}`,
			tok(func(t *pat.Token) { t.LastUsed = nil; t.Created = cut90.Add(-Day); t.Scope = pat.Scopes{Null: true} }),
			false, `never used; created 2026-08-27T03:00:00.000Z is before cutoff 2026-08-28T03:00:00.000Z (unusedFor 90d); scope null counts as sp:scopes:all; holds sp:scopes:all (scopes.any); name "ci-deploy" matches "^ci-" (nameMatches)`},
		{"one condition failing is no match", "", `{unusedFor: 90d, scopes: {any: ["sp:scopes:all"]}}`,
			tok(func(t *pat.Token) { t.LastUsed = nil; t.Created = cut90.Add(-Day) }), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.version
			if v == "" {
				v = "v3"
			}
			cfg := onePolicy(t, v, tt.match, "report")
			env := Env{Now: testNow, ClientID: "janitor", Owner: lookup}
			if tt.noOwner {
				env.Owner = nil
			}
			d := cfg.Evaluate(tt.token, env)
			if tt.want == "" {
				if !reflect.DeepEqual(d, Decision{}) {
					t.Fatalf("matched: %+v", d)
				}
				return
			}
			if !d.Matched || d.Policy != "p" || d.Action != ActionReport || d.Mode != ModeReport || d.Skip != "" {
				t.Fatalf("decision %+v", d)
			}
			if d.Reason != tt.want {
				t.Errorf("reason\n got %s\nwant %s", d.Reason, tt.want)
			}
		})
	}
}

// ownerUnknownRules ranks a gentler policy with an owner condition (a long
// grace for active owners) above a delete of every unused token, with the
// same mode and action: the first in the file wins while the owner is known.
const ownerUnknownRules = `
tenant: {apiVersion: v3, clientId: janitor}
owners: {lookup: true}
exclude:
  tokenIds: [excluded-token]
policies:
  - name: keep-active
    mode: enforce
    match: {ownerStates: [ACTIVE], unusedFor: 90d, nameMatches: "^ci-"}
    action: delete
  - name: unused-delete
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
  - name: unused-report
    match: {unusedFor: 30d}
    action: report
  - name: gone-report
    match: {ownerMissing: true}
    action: report
`

// Without owner data, a policy with owner conditions whose other conditions
// hold, and which would win over every policy that matched, leaves the token
// skipped as owner-unknown: it is not handed to the next policy. One whose
// other conditions do not hold, or that would lose anyway, changes nothing.
func TestOwnerUnknownStopsLowerPolicies(t *testing.T) {
	cfg := mustParse(t, ownerUnknownRules)
	known := func(id string) (OwnerInfo, bool) {
		if id == "active" {
			return OwnerInfo{State: "ACTIVE"}, true
		}
		return OwnerInfo{}, false // the lookup failed for the others
	}
	stale := func(mod func(*pat.Token)) *pat.Token {
		return tok(func(t *pat.Token) {
			t.LastUsed = tp(testNow.Add(-100 * Day))
			t.Owner.ID = "unknown"
			if mod != nil {
				mod(t)
			}
		})
	}
	tests := []struct {
		name   string
		token  *pat.Token
		owner  func(string) (OwnerInfo, bool)
		policy string
		skip   SkipReason
		also   []string
	}{
		{"owner known: the first in the file wins", stale(func(t *pat.Token) { t.Owner.ID = "active" }), known,
			"keep-active", "", []string{"unused-delete", "unused-report"}},
		{"owner unknown: the policy that would win is skipped, not the next", stale(nil), known,
			"keep-active", SkipOwnerUnknown, nil},
		{"no lookup at all is no owner data", stale(nil), nil,
			"keep-active", SkipOwnerUnknown, nil},
		{"other conditions of the owner policy do not hold: the next decides", stale(func(t *pat.Token) { t.Name = "build" }), known,
			"unused-delete", "", []string{"unused-report"}},
		{"an owner policy that would lose anyway changes nothing", tok(func(t *pat.Token) {
			t.LastUsed = tp(testNow.Add(-40 * Day))
			t.Owner.ID = "unknown"
		}), known, "unused-report", "", nil},
		{"an exclusion still comes first", stale(func(t *pat.Token) { t.ID = "excluded-token" }), known,
			"keep-active", SkipExcludedID, nil},
		{"own credential still comes first", stale(func(t *pat.Token) { t.ID = "JANITOR" }), known,
			"keep-active", SkipOwnCredential, nil},
		{"managed: a policy without includeManaged is not judged", stale(func(t *pat.Token) { t.Managed = true }), known,
			"unused-delete", SkipManaged, []string{"unused-report"}},
		{"no owner id: nothing to look up, the owner conditions do not hold", stale(func(t *pat.Token) { t.Owner.ID = "" }), known,
			"unused-delete", "", []string{"unused-report"}},
		{"the only candidate is skipped too", tok(func(t *pat.Token) { t.Owner.ID = "unknown" }), known,
			"gone-report", SkipOwnerUnknown, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := cfg.Evaluate(tt.token, Env{Now: testNow, ClientID: "janitor", Owner: tt.owner})
			if !d.Matched || d.Policy != tt.policy || d.Skip != tt.skip || !reflect.DeepEqual(d.AlsoMatched, tt.also) {
				t.Fatalf("decision %+v\nwant policy %s skip %q also %v", d, tt.policy, tt.skip, tt.also)
			}
			if d.Skip != "" && d.Patch != nil {
				t.Errorf("a skipped token has a patch: %v", d.Patch)
			}
			if d.Skip == SkipOwnerUnknown && !strings.Contains(d.Reason, "owner unknown unknown: no owner data this run (") {
				t.Errorf("reason %q does not say the owner is unknown", d.Reason)
			}
		})
	}
}

// decisionRules is a v2025 config with one policy of each action, all
// matching any token unused for 90 days, plus a second delete.
const decisionRules = `
tenant: {apiVersion: v2025, clientId: janitor}
exclude:
  tokenIds: [excluded-token]
  ownerIds: [excluded-owner]
  names: ["break-glass-*"]
policies:
  - name: a-report
    match: {unusedFor: 90d}
    action: report
  - name: b-patch
    mode: enforce
    match: {unusedFor: 90d}
    action: patch
    patch: {namePrefix: "stale-"}
  - name: c-delete
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
  - name: d-expire
    match: {unusedFor: 90d}
    action: expire
    expireIn: 30d
  - name: e-delete-too
    match: {unusedFor: 90d}
    action: delete
  - name: f-managed-report
    match: {unusedFor: 90d, includeManaged: true}
    action: report
`

func TestDecisionRules(t *testing.T) {
	cfg := mustParse(t, decisionRules)
	env := Env{Now: testNow, ClientID: "janitor"}
	stale := func(mod func(*pat.Token)) *pat.Token {
		return tok(func(t *pat.Token) {
			t.LastUsed = tp(testNow.Add(-100 * Day))
			if mod != nil {
				mod(t)
			}
		})
	}
	tests := []struct {
		name   string
		token  *pat.Token
		policy string
		action Action
		skip   SkipReason
		also   []string
	}{
		{"most destructive wins, first in file among equals", stale(nil),
			"c-delete", ActionDelete, "", []string{"a-report", "b-patch", "d-expire", "e-delete-too", "f-managed-report"}},
		{"own credential", stale(func(t *pat.Token) { t.ID = "janitor" }),
			"c-delete", ActionDelete, SkipOwnCredential, []string{"a-report", "b-patch", "d-expire", "e-delete-too", "f-managed-report"}},
		{"own credential even when managed and a policy includes managed", stale(func(t *pat.Token) { t.ID = "janitor"; t.Managed = true }),
			"c-delete", ActionDelete, SkipOwnCredential, []string{"a-report", "b-patch", "d-expire", "e-delete-too", "f-managed-report"}},
		{"excluded by id", stale(func(t *pat.Token) { t.ID = "excluded-token" }),
			"c-delete", ActionDelete, SkipExcludedID, []string{"a-report", "b-patch", "d-expire", "e-delete-too", "f-managed-report"}},
		{"excluded by owner", stale(func(t *pat.Token) { t.Owner.ID = "excluded-owner" }),
			"c-delete", ActionDelete, SkipExcludedOwner, []string{"a-report", "b-patch", "d-expire", "e-delete-too", "f-managed-report"}},
		{"excluded by name", stale(func(t *pat.Token) { t.Name = "break-glass-ops" }),
			"c-delete", ActionDelete, SkipExcludedName, []string{"a-report", "b-patch", "d-expire", "e-delete-too", "f-managed-report"}},
		{"managed: only includeManaged policies count", stale(func(t *pat.Token) { t.Managed = true }),
			"f-managed-report", ActionReport, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := cfg.Evaluate(tt.token, env)
			if !d.Matched || d.Policy != tt.policy || d.Action != tt.action || d.Skip != tt.skip || !reflect.DeepEqual(d.AlsoMatched, tt.also) {
				t.Fatalf("decision %+v\nwant policy %s action %s skip %q also %v", d, tt.policy, tt.action, tt.skip, tt.also)
			}
			if want := "lastUsed 2026-08-18T03:00:00.000Z is before cutoff 2026-08-28T03:00:00.000Z (unusedFor 90d)"; d.Reason != want {
				t.Errorf("reason %q", d.Reason)
			}
			if d.Skip != "" && d.Patch != nil {
				t.Errorf("a skipped decision carries a patch: %v", d.Patch)
			}
		})
	}

	// Without an includeManaged policy a managed token is skipped.
	noManaged := cfg.Only("a-report", "c-delete")
	d := noManaged.Evaluate(stale(func(t *pat.Token) { t.Managed = true }), env)
	if !d.Matched || d.Skip != SkipManaged || d.Policy != "c-delete" || !reflect.DeepEqual(d.AlsoMatched, []string{"a-report"}) {
		t.Errorf("managed without includeManaged: %+v", d)
	}
	// The precedence order: take the winner away, one by one. Enforce mode
	// first (c-delete, then b-patch, a patch, over the report-mode expire),
	// then the most destructive.
	order := []string{"c-delete", "b-patch", "d-expire", "a-report"}
	for i, want := range order {
		sub := cfg.Only(order[i:]...)
		if d := sub.Evaluate(stale(nil), env); d.Policy != want {
			t.Errorf("among %v: winner %s, want %s", order[i:], d.Policy, want)
		}
	}
	// Not matching at all: the zero Decision, also for the own credential.
	for _, tk := range []*pat.Token{tok(nil), tok(func(t *pat.Token) { t.ID = "janitor" })} {
		if d := cfg.Evaluate(tk, env); !reflect.DeepEqual(d, Decision{}) {
			t.Errorf("fresh token %s: %+v", tk.ID, d)
		}
	}
	// Mode comes from the winner.
	if d := cfg.Evaluate(stale(nil), env); d.Mode != ModeEnforce {
		t.Errorf("mode %s", d.Mode)
	}
}

func TestPatchOps(t *testing.T) {
	full := mustParse(t, `
tenant: {apiVersion: v2025}
policies:
  - name: full-access
    match: {scopes: {any: ["sp:scopes:all"]}}
    action: patch
    patch: {removeScopes: ["sp:scopes:all"], addScopes: ["sp:scopes:default"], namePrefix: "narrowed-"}
  - name: set
    match: {scopes: {outside: ["sp:scopes:default", "idn:a"]}}
    action: patch
    patch: {setScopes: ["idn:a", "sp:scopes:default", "idn:a"]}
  - name: strip
    match: {scopes: {any: ["idn:x"]}}
    action: patch
    patch: {removeScopes: ["idn:x"]}
  - name: expire
    match: {unusedFor: 30d}
    action: expire
    expireIn: 30d
`)
	env := Env{Now: testNow}
	// op is the operation as the API receives it: path and JSON value.
	op := func(path, value string) pat.PatchOp {
		o, err := pat.ParsePatchOp("replace", path, json.RawMessage(value))
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	tests := []struct {
		name   string
		policy string
		token  *pat.Token
		want   []pat.PatchOp // nil: the policy does not match
	}{
		{"null scope", "full-access", tok(func(t *pat.Token) { t.Scope = pat.Scopes{Null: true} }),
			[]pat.PatchOp{op("/name", `"narrowed-ci-deploy"`), op("/scope", `["sp:scopes:default"]`)}},
		{"other scopes kept, order kept", "full-access", tok(func(t *pat.Token) { t.Scope = pat.ScopesOf("idn:b", "sp:scopes:all", "idn:a") }),
			[]pat.PatchOp{op("/name", `"narrowed-ci-deploy"`), op("/scope", `["idn:b", "idn:a", "sp:scopes:default"]`)}},
		{"already prefixed: only the scope", "full-access", tok(func(t *pat.Token) {
			t.Name = "narrowed-x"
			t.Scope = pat.ScopesOf("sp:scopes:all", "sp:scopes:default")
		}),
			[]pat.PatchOp{op("/scope", `["sp:scopes:default"]`)}},
		{"setScopes", "set", tok(func(t *pat.Token) { t.Scope = pat.ScopesOf("sp:scopes:all") }),
			[]pat.PatchOp{op("/scope", `["idn:a", "sp:scopes:default"]`)}},
		{"setScopes: same set in another order changes nothing", "set", tok(func(t *pat.Token) { t.Scope = pat.ScopesOf("sp:scopes:default", "idn:a", "idn:b") }),
			[]pat.PatchOp{op("/scope", `["idn:a", "sp:scopes:default"]`)}},
		{"removeScopes leaving no scope is refused", "strip", tok(func(t *pat.Token) { t.Scope = pat.ScopesOf("idn:x") }), nil},
		{"removeScopes leaving others", "strip", tok(func(t *pat.Token) { t.Scope = pat.ScopesOf("idn:x", "idn:y") }),
			[]pat.PatchOp{op("/scope", `["idn:y"]`)}},
		{"expire a never-expiring token", "expire", tok(func(t *pat.Token) {
			t.LastUsed = nil
			t.UserAwareTokenNeverExpires = bp(true)
		}), []pat.PatchOp{op("/expirationDate", `"2026-12-26T03:00:00.000Z"`), op("/userAwareTokenNeverExpires", "false")}},
		{"expire a token expiring later", "expire", tok(func(t *pat.Token) {
			t.LastUsed = nil
			t.ExpirationDate = tp(testNow.Add(31 * Day))
		}), []pat.PatchOp{op("/expirationDate", `"2026-12-26T03:00:00.000Z"`)}},
		{"expire never extends", "expire", tok(func(t *pat.Token) {
			t.LastUsed = nil
			t.ExpirationDate = tp(testNow.Add(30 * Day))
		}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := full.Only(tt.policy).Evaluate(tt.token, env)
			if tt.want == nil {
				if d.Matched {
					t.Fatalf("matched: %+v", d)
				}
				return
			}
			if d.Policy != tt.policy || !slices.Equal(d.Patch, tt.want) {
				t.Fatalf("decision %+v\nwant patch %+v", d, tt.want)
			}
			// The ops are what the API receives.
			if _, err := json.Marshal(d.Patch); err != nil {
				t.Fatal(err)
			}
		})
	}
	// A patch that changes nothing is no match: a token already narrowed
	// and prefixed is left alone (else it would be patched every run).
	done := tok(func(t *pat.Token) { t.Name = "narrowed-ci"; t.Scope = pat.ScopesOf("sp:scopes:default") })
	for _, name := range []string{"full-access", "set"} {
		if d := full.Only(name).Evaluate(done, env); d.Matched {
			t.Errorf("%s matched a token it would not change: %+v", name, d)
		}
	}
	// The same null-scope token with setScopes [sp:scopes:all] changes
	// nothing either.
	same := mustParse(t, `policies: [{name: s, match: {nameMatches: ci}, action: patch, patch: {setScopes: ["sp:scopes:all"]}}]`)
	if d := same.Evaluate(tok(func(t *pat.Token) { t.Scope = pat.Scopes{Null: true} }), env); d.Matched {
		t.Errorf("null scope set to sp:scopes:all matched: %+v", d)
	}
}

func TestOnlyAndForceReportCopy(t *testing.T) {
	cfg := mustParse(t, decisionRules)
	only := cfg.Only("c-delete", "nope", "a-report")
	if len(only.Policies) != 2 || only.Policies[0].Name != "a-report" || only.Policies[1].Name != "c-delete" {
		t.Fatalf("Only: %v", names(only.Policies))
	}
	fr := cfg.ForceReport()
	for _, p := range fr.Policies {
		if p.Mode != ModeReport {
			t.Errorf("ForceReport: %s is %s", p.Name, p.Mode)
		}
	}
	if cfg.Policy("c-delete").Mode != ModeEnforce || len(cfg.Policies) != 6 {
		t.Errorf("the original changed")
	}
	if fr.Digest != cfg.Digest {
		t.Errorf("digest changed")
	}
	env := Env{Now: testNow, ClientID: "janitor"}
	stale := tok(func(t *pat.Token) { t.LastUsed = tp(testNow.Add(-100 * Day)) })
	if d := fr.Evaluate(stale, env); d.Mode != ModeReport || d.Policy != "c-delete" {
		t.Errorf("ForceReport decision %+v", d)
	}
}

func names(ps []*Policy) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

// A Config built in code (not loaded) evaluates the same as a loaded one.
func TestEvaluateHandBuiltConfig(t *testing.T) {
	loaded := mustParse(t, decisionRules)
	hand := &Config{Tenant: loaded.Tenant, Exclude: loaded.Exclude, Limits: loaded.Limits}
	for _, p := range loaded.Policies {
		pc := *p
		pc.c = nil
		hand.Policies = append(hand.Policies, &pc)
	}
	env := Env{Now: testNow, ClientID: "janitor"}
	for _, tk := range []*pat.Token{
		tok(func(t *pat.Token) { t.LastUsed = tp(testNow.Add(-100 * Day)) }),
		tok(func(t *pat.Token) { t.LastUsed = nil; t.Name = "break-glass-1"; t.Created = testNow.Add(-100 * Day) }),
		tok(nil),
	} {
		if a, b := loaded.Evaluate(tk, env), hand.Evaluate(tk, env); !reflect.DeepEqual(a, b) {
			t.Errorf("loaded %+v\nhand %+v", a, b)
		}
	}
}

func TestApplyEnvAndClientSecret(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "policies.yaml")
	if err := os.WriteFile(cfgPath, []byte("tenant: {url: https://acme.api.identitynow.com, clientId: file-id, clientSecretFile: secret.txt}\npolicies: [{name: p, match: {neverUsed: true}, action: report}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("from-the-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cfg.ClientSecret()
	if err != nil || s.Reveal() != "from-the-file" {
		t.Fatalf("secret from file: %v %v", s, err)
	}
	if cfg.ClientSecretSource() != filepath.Join(dir, "secret.txt") {
		t.Errorf("source %q", cfg.ClientSecretSource())
	}

	env := map[string]string{
		EnvTenantURL:    "http://127.0.0.1:8080/",
		EnvClientID:     "env-id",
		EnvClientSecret: "from-the-env",
	}
	if err := cfg.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg.Tenant.URL != "http://127.0.0.1:8080" || cfg.Tenant.ClientID != "env-id" {
		t.Errorf("tenant %+v", cfg.Tenant)
	}
	if s, err := cfg.ClientSecret(); err != nil || s.Reveal() != "from-the-env" || cfg.ClientSecretSource() != EnvClientSecret {
		t.Errorf("secret from env: %v", err)
	}

	bad := map[string]string{EnvTenantURL: "http://acme.api.identitynow.com"}
	err = cfg.ApplyEnv(func(k string) string { return bad[k] })
	if err == nil || !strings.Contains(err.Error(), "PATJANITOR_TENANT_URL: plain http:// is allowed only for a loopback host") {
		t.Errorf("err %v", err)
	}
	if cfg.Tenant.URL != "http://127.0.0.1:8080" {
		t.Errorf("a rejected URL was applied: %s", cfg.Tenant.URL)
	}

	none := mustParse(t, "policies: [{name: p, match: {neverUsed: true}, action: report}]")
	if _, err := none.ClientSecret(); err == nil || !strings.Contains(err.Error(), "no client secret: set PATJANITOR_CLIENT_SECRET or tenant.clientSecretFile") {
		t.Errorf("err %v", err)
	}
	missing := mustParse(t, "tenant: {clientSecretFile: /nonexistent/secret}\npolicies: [{name: p, match: {neverUsed: true}, action: report}]")
	if _, err := missing.ClientSecret(); err == nil || !strings.HasPrefix(err.Error(), "tenant.clientSecretFile: ") {
		t.Errorf("err %v", err)
	}
}

func TestSchedules(t *testing.T) {
	cfg := mustParse(t, `
schedule: "30 2 * * *"
timezone: Europe/Berlin
policies:
  - {name: a, match: {neverUsed: true}, action: report}
  - {name: b, match: {neverUsed: true}, action: report, schedule: "@every 6h"}
  - {name: c, match: {neverUsed: true}, action: report}
`)
	groups, err := cfg.ScheduleGroups()
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 || groups[0].Spec != "30 2 * * *" || !reflect.DeepEqual(groups[0].Policies, []string{"a", "c"}) ||
		groups[1].Spec != "@every 6h" || !reflect.DeepEqual(groups[1].Policies, []string{"b"}) {
		t.Fatalf("groups %+v", groups)
	}
	// 02:30 Berlin across the end of daylight saving time (25 October 2026):
	// robfig/cron fires at both 02:30s of that night (documented in
	// docs/policies.md, with the skipped 02:30 in spring).
	runs, err := cfg.NextRuns("30 2 * * *", time.Date(2026, 10, 23, 12, 0, 0, 0, time.UTC), 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range runs {
		got = append(got, r.Format(time.RFC3339))
	}
	want := []string{"2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("runs %v, want %v", got, want)
	}
	// Tests of the scheduler may lower the @every minimum.
	fast, err := ParseWithOptions("fast.yaml", []byte("schedule: \"@every 2s\"\npolicies: [{name: a, match: {neverUsed: true}, action: report}]"),
		Options{MinScheduleInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := fast.CronSchedule("@every 2s"); err != nil || s.Next(testNow).Sub(testNow) != 2*time.Second {
		t.Errorf("fast schedule: %v", err)
	}
	if _, err := Parse("fast.yaml", []byte("schedule: \"@every 2s\"\npolicies: [{name: a, match: {neverUsed: true}, action: report}]")); err == nil {
		t.Error("Parse accepted @every 2s")
	}
	for _, spec := range []string{"@daily", "@weekly", "0 */4 * * 1-5", "@every 1h30m"} {
		if _, err := ParseSchedule(spec); err != nil {
			t.Errorf("%s: %v", spec, err)
		}
	}
	for _, spec := range []string{"", "* * * *", "0 0 * * * *", "TZ=UTC", "@every 59s", "@fortnightly", "61 * * * *"} {
		if _, err := ParseSchedule(spec); err == nil {
			t.Errorf("%q accepted", spec)
		}
	}
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90d": 90 * Day, "2w": 14 * Day, "36h": 36 * time.Hour, "1d12h": 36 * time.Hour,
		"1.5d": 36 * time.Hour, "1h30m": 90 * time.Minute, "500ms": 500 * ms, "0": 0, "10s": 10 * time.Second,
		"1w2d3h4m5s": Week + 2*Day + 3*time.Hour + 4*time.Minute + 5*time.Second,
	} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "90", "d", "90 d", "90days", "-1d", "+1d", "1.2.3d", "1y", "99999999999w", "1d-2h", "."} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
	for d, want := range map[time.Duration]string{
		90 * Day: "90d", 36 * time.Hour: "1d12h", 30 * time.Minute: "30m", 0: "0", 90 * time.Minute: "1h30m", 1500 * ms: "1s500ms",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := ParseDuration(FormatDuration(d)); err != nil || back != d {
			t.Errorf("round trip of %v: %v %v", d, back, err)
		}
	}
}

// The compiled globs agree with path.Match.
func TestGlobsAgreeWithPathMatch(t *testing.T) {
	patterns := []string{"break-glass-*", "exact", "", "*", "a*b", "svc-?", "x[a-c]*", `esc\*`, "dir/*", "*-prod"}
	names := []string{"", "break-glass-", "break-glass-ops", "break-glass-a/b", "exact", "exactly", "anything", "ab", "a-b", "svc-1", "svc-12",
		"xb", "xbz", "esc*", `esc\*`, "dir/a", "dir/a/b", "app-prod", "break-glass"}
	for _, p := range patterns {
		g := compileGlob(p)
		for _, n := range names {
			want, _ := path.Match(p, n)
			if got := g.match(n); got != want {
				t.Errorf("glob %q on %q: %v, path.Match says %v", p, n, got, want)
			}
		}
	}
}

// TestPrecedenceEnforceBeforeReport: an enforce-mode policy wins over a
// report-mode one whatever their order and actions; within a mode the most
// destructive wins, then the first in the file. A copy forced to report
// mode (serve --dry-run) picks the same winners, so a dry run previews the
// real decisions.
func TestPrecedenceEnforceBeforeReport(t *testing.T) {
	cfg := mustParse(t, `
tenant: {apiVersion: v2025, clientId: janitor}
policies:
  - {name: r-delete, mode: report, match: {unusedFor: 90d}, action: delete}
  - {name: e-patch, mode: enforce, match: {unusedFor: 90d}, action: patch, patch: {namePrefix: "stale-"}}
  - {name: e-expire, mode: enforce, match: {unusedFor: 90d}, action: expire, expireIn: 30d}
  - {name: e-expire-2, mode: enforce, match: {unusedFor: 90d}, action: expire, expireIn: 14d}
`)
	env := Env{Now: testNow, ClientID: "janitor"}
	stale := tok(func(t *pat.Token) { t.LastUsed = tp(testNow.Add(-100 * Day)) })
	for _, c := range []struct {
		only []string
		want string
		also []string
	}{
		{[]string{"r-delete", "e-patch", "e-expire", "e-expire-2"}, "e-expire", []string{"r-delete", "e-patch", "e-expire-2"}},
		{[]string{"r-delete", "e-patch"}, "e-patch", []string{"r-delete"}},
		{[]string{"r-delete"}, "r-delete", nil},
	} {
		sub := cfg.Only(c.only...)
		for _, variant := range []*Config{sub, sub.ForceReport()} {
			d := variant.Evaluate(stale, env)
			if d.Policy != c.want || !reflect.DeepEqual(d.AlsoMatched, c.also) {
				t.Errorf("among %v: winner %s also %v, want %s also %v", c.only, d.Policy, d.AlsoMatched, c.want, c.also)
			}
		}
	}
}
