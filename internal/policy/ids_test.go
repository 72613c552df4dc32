package policy

import (
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// Every decision that depends on an id compares it without regard to case:
// the tenant takes ids in any case.
func TestHostileIDsComparedWithoutCase(t *testing.T) {
	const (
		tokID   = "ab12cd34ef56ab12cd34ef56ab12cd34"
		ownerID = "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f"
	)
	any := func(mod func(*pat.Token)) *pat.Token {
		return tok(func(x *pat.Token) { x.ID, x.Owner.ID = tokID, ownerID; mod(x) })
	}
	cases := []struct {
		name, yaml string
		env        Env
		tok        *pat.Token
		skip       SkipReason
		matched    bool
	}{
		{"own credential in capitals", "policies:\n  - name: p\n    match: {createdOlderThan: 1d}\n    action: delete\n",
			Env{Now: testNow, ClientID: strings.ToUpper(tokID)}, any(func(*pat.Token) {}), SkipOwnCredential, true},
		{"listed id in capitals", "policies:\n  - name: p\n    match: {createdOlderThan: 1d}\n    action: delete\n",
			Env{Now: testNow, ClientID: tokID}, any(func(x *pat.Token) { x.ID = strings.ToUpper(tokID) }), SkipOwnCredential, true},
		{"exclude.tokenIds in capitals", "exclude: {tokenIds: [" + strings.ToUpper(tokID) + "]}\npolicies:\n  - name: p\n    match: {createdOlderThan: 1d}\n    action: delete\n",
			Env{Now: testNow}, any(func(*pat.Token) {}), SkipExcludedID, true},
		{"exclude.ownerIds in capitals", "exclude: {ownerIds: [" + strings.ToUpper(ownerID) + "]}\npolicies:\n  - name: p\n    match: {createdOlderThan: 1d}\n    action: delete\n",
			Env{Now: testNow}, any(func(*pat.Token) {}), SkipExcludedOwner, true},
		{"owner listed in capitals", "exclude: {ownerIds: [" + ownerID + "]}\npolicies:\n  - name: p\n    match: {createdOlderThan: 1d}\n    action: delete\n",
			Env{Now: testNow}, any(func(x *pat.Token) { x.Owner.ID = strings.ToUpper(ownerID) }), SkipExcludedOwner, true},
		{"ownerIds condition in capitals", "policies:\n  - name: p\n    match: {ownerIds: [" + strings.ToUpper(ownerID) + "]}\n    action: delete\n",
			Env{Now: testNow}, any(func(*pat.Token) {}), "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := mustParse(t, c.yaml).Evaluate(c.tok, c.env)
			if d.Matched != c.matched || d.Skip != c.skip {
				t.Fatalf("decision %+v; want matched %v, skip %q", d, c.matched, c.skip)
			}
		})
	}
}

// validate's warnings name the file, line and field of each id that is not
// 32 lowercase hex characters; the config still loads.
func TestIDWarnings(t *testing.T) {
	cfg := mustParse(t, `tenant: {clientId: AB12CD34EF56AB12CD34EF56AB12CD34}
exclude:
  tokenIds: [ab12cd34ef56ab12cd34ef56ab12cd34]
  ownerIds: ["OWNER0002"]
policies:
  - name: p
    match: {ownerIds: [alice]}
    action: delete
`)
	var got []string
	for _, w := range cfg.Warnings {
		got = append(got, w.Error())
	}
	want := []string{
		`test.yaml:1: tenant.clientId: "AB12CD34EF56AB12CD34EF56AB12CD34" is not 32 lowercase hex characters, the form of the tenant's ids; it is compared without regard to case, as "ab12cd34ef56ab12cd34ef56ab12cd34"`,
		`test.yaml:4: exclude.ownerIds[0]: "OWNER0002" is not 32 lowercase hex characters, the form of the tenant's ids; check that it is an id and not a name (it is compared without regard to case)`,
		`test.yaml:7: policies[0] "p": match.ownerIds[0]: "alice" is not 32 lowercase hex characters, the form of the tenant's ids; check that it is an id and not a name (it is compared without regard to case)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
