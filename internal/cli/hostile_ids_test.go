package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/pat"
)

// Ids of the tokens these tests put into the tenant (32 lowercase hex, as a
// tenant makes them).
const (
	idOwner2Tok = "00000000000000000000000000000b02"
	idOther     = "00000000000000000000000000000c03"
	idOwner2    = "owner0002"
)

// journalRecords reads the journal of e's state dir.
func (e *wfEnv) journalRecords() []audit.Record {
	e.t.Helper()
	return journalRecords(e.t, filepath.Join(e.state, JournalFile))
}

// deletedPaths are the DELETE paths the tenant received.
func (e *wfEnv) deletedPaths() []string {
	var out []string
	for _, r := range e.mutations() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

const fullAccessDelete = `limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 0}
%s
policies:
  - name: full-access
    mode: enforce
    match: {scopes: {any: ["sp:scopes:all"]}}
    action: delete
`

// A tenant that takes ids in any case, and PATJANITOR_CLIENT_ID in capitals:
// the token patjanitor logs in with matches a delete policy, and is still
// its own credential.
func TestHostileUpperCaseClientIDKeepsOwnPAT(t *testing.T) {
	e := newWF(t, strings.Replace(fullAccessDelete, "%s", "", 1), idnsim.Options{AnyCaseIDs: true})
	e.add(idOther, "o3", 400*wfDay, 200*wfDay, pat.ScopeAll)
	t.Setenv("PATJANITOR_CLIENT_ID", strings.ToUpper(e.admin.ClientID))

	if code, stdout, stderr := e.run(nil, "plan", "-o", "json"); code != 0 || !strings.Contains(stdout, `"reason": "own-credential"`) {
		t.Fatalf("plan exit %d: the own credential is not skipped as own-credential\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr := e.run(nil, "apply", "--auto-approve")
	if code != 0 {
		t.Fatalf("apply exit %d\n%s\n%s", code, stdout, stderr)
	}
	got := e.deletedPaths()
	if len(got) != 1 || got[0] != "DELETE /v3/personal-access-tokens/"+idOther {
		t.Fatalf("the tenant received %v; want only the DELETE of %s", got, idOther)
	}
	if !e.present(e.admin.ClientID) {
		t.Fatal("patjanitor's own PAT was deleted")
	}
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindIntent && pat.SameID(r.TokenID, e.admin.ClientID) {
			t.Fatalf("journal has an intent for the own credential: %+v", r)
		}
	}
}

// exclude.ownerIds spelled in capitals protects the owner's tokens, and
// validate warns that the id is not in the tenant's form.
func TestHostileExcludeOwnerIDsWithoutCase(t *testing.T) {
	e := newWF(t, strings.Replace(fullAccessDelete, "%s", `exclude: {ownerIds: ["OWNER0002"]}`, 1), idnsim.Options{AnyCaseIDs: true})
	e.add(idOwner2Tok, idOwner2, 400*wfDay, 200*wfDay, pat.ScopeAll)
	e.add(idOther, "o3", 400*wfDay, 200*wfDay, pat.ScopeAll)

	code, stdout, stderr := e.run(nil, "validate")
	if code != 0 {
		t.Fatalf("validate exit %d\n%s\n%s", code, stdout, stderr)
	}
	want := e.cfgPath + `:6: exclude.ownerIds[0]: "OWNER0002" is not 32 lowercase hex characters`
	if !strings.Contains(stderr, "warning: "+want) {
		t.Fatalf("validate stderr lacks %q:\n%s", want, stderr)
	}

	code, stdout, stderr = e.run(nil, "apply", "--auto-approve")
	if code != 0 {
		t.Fatalf("apply exit %d\n%s\n%s", code, stdout, stderr)
	}
	if got := e.deletedPaths(); len(got) != 1 || got[0] != "DELETE /v3/personal-access-tokens/"+idOther {
		t.Fatalf("the tenant received %v; want only the DELETE of %s", got, idOther)
	}
	if !e.present(idOwner2Tok) {
		t.Fatal("owner0002's token was deleted despite exclude.ownerIds")
	}
	for _, r := range e.journalRecords() {
		if r.TokenID == idOwner2Tok {
			t.Fatalf("journal has a record for the excluded token: %+v", r)
		}
	}
}

// A snooze typed in capitals protects the token the tenant lists in
// lowercase.
func TestHostileSnoozeWithUpperCaseID(t *testing.T) {
	e := newWF(t, strings.Replace(fullAccessDelete, "%s", "", 1), idnsim.Options{})
	e.add(idOwner2Tok, idOwner2, 400*wfDay, 200*wfDay, pat.ScopeAll)
	e.add(idOther, "o3", 400*wfDay, 200*wfDay, pat.ScopeAll)

	if code, stdout, stderr := e.run(nil, "snooze", strings.ToUpper(idOwner2Tok), "--for", "30d", "--reason", "migration"); code != 0 {
		t.Fatalf("snooze exit %d\n%s\n%s", code, stdout, stderr)
	}
	if code, stdout, stderr := e.run(nil, "plan", "-o", "json"); code != 0 || !strings.Contains(stdout, `"reason": "snoozed until`) {
		t.Fatalf("plan exit %d: the token is not skipped as snoozed\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr := e.run(nil, "apply", "--auto-approve")
	if code != 0 {
		t.Fatalf("apply exit %d\n%s\n%s", code, stdout, stderr)
	}
	if got := e.deletedPaths(); len(got) != 1 || got[0] != "DELETE /v3/personal-access-tokens/"+idOther {
		t.Fatalf("the tenant received %v; want only the DELETE of %s", got, idOther)
	}
	if !e.present(idOwner2Tok) {
		t.Fatal("the snoozed token was deleted")
	}
}
