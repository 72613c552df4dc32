package janitor_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
)

// TestHostileDeleteAnswered404WhileStillListed: a tenant (or a proxy in
// front of it) answers 404 to the DELETE of a token its listing shows, and
// the token lives on (a token of another org in the listing, a stale
// router, a lie). Invariant 8 records a 404 as already gone, not an error.
// patjanitor used to take that at its word for ever: every run listed the
// token, "deleted" it again, journaled it gone and told its owner it was
// already gone, while the credential stayed alive, and nothing ever said
// so. A 404 is now a claim to prove like a 204: the next complete listing
// after the settle margin still shows the token, so the journal records
// the delete as not in effect (with the 404), the run fails with an
// UnprovenError, the plan warns, and the owner is not told again.
func TestHostileDeleteAnswered404WhileStillListed(t *testing.T) {
	p := newProofEnv(t, proofConfig)
	p.add("stale-1", "owner-a", "old-ci", 400*day, 200*day)
	p.add("used-1", "owner-b", "busy", 400*day, 1*day)
	p.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpDeleteToken, Status: http.StatusNotFound})
	p.openAnchored()
	backup := p.backupStore()

	// Run 1: the tenant receives the DELETE, answers 404 and keeps the token.
	res1, err := p.runProof()
	if err != nil {
		t.Fatalf("run 1: %v", err)
	}
	if res1.Count(janitor.OutcomeGone) != 1 {
		t.Fatalf("run 1 items %+v; want the delete recorded already gone (invariant 8)", res1.Items)
	}
	if m := p.mutations(); len(m) != 1 || m[0].Method != http.MethodDelete || !strings.HasSuffix(m[0].Path, "/stale-1") || m[0].Status != http.StatusNotFound {
		t.Fatalf("run 1: the tenant received %+v; want one DELETE of stale-1 answered 404", m)
	}
	if !p.present("stale-1") {
		t.Fatal("the tenant deleted stale-1: the fault did not hold")
	}
	if got := withStatus(p.outcomes("stale-1"), string(janitor.OutcomeGone)); len(got) != 1 || !got[0].Outcome.AlreadyGone || got[0].Outcome.Code != http.StatusNotFound {
		t.Fatalf("journal outcomes for stale-1 %+v; want one gone with the 404", p.outcomes("stale-1"))
	}
	if c, ok := p.confirmed()["stale-1"]; !ok || c.Action != "delete" || c.RunID != res1.RunID || c.Code != http.StatusNotFound {
		t.Fatalf("confirmed record %+v (found %v); want run 1's delete, answered 404, awaiting proof", c, ok)
	}
	// A store restored from before run 1 gets the record back from the
	// journal (the catch-up), as it would the record of a 204.
	p.restoreStore(backup)
	if c, ok := p.confirmed()["stale-1"]; !ok || c.Action != "delete" || c.RunID != res1.RunID || c.Code != http.StatusNotFound {
		t.Fatalf("record rebuilt from the journal %+v (found %v); want run 1's delete, answered 404", c, ok)
	}
	p.hook.Take()

	// Run 2, a day later: the token is still listed.
	p.clock.Set(t0.Add(day))
	p.sim.ResetRequests()
	res2, err := p.runProof()
	const said = "1 token the tenant confirmed deleted is still listed (stale-1 of owner owner-a, deleted by policy unused-90d in run "
	requireUnproven(t, err, "stale-1", said)
	if !strings.Contains(fmt.Sprint(err), "(HTTP 404)") {
		t.Errorf("run 2 error %q; want it to quote the 404", err)
	}
	if !slicesContainsSub(res2.Plan.Warnings, said) {
		t.Errorf("plan warnings %q; want %q…", res2.Plan.Warnings, said)
	}
	lies := withStatus(p.outcomes("stale-1"), janitor.StatusNotInEffect)
	if len(lies) != 1 || lies[0].RunID != res2.RunID || lies[0].Outcome.Code != http.StatusNotFound ||
		!strings.Contains(lies[0].Outcome.Error, "in run "+res1.RunID) || !strings.Contains(lies[0].Outcome.Error, "the delete did not happen") {
		t.Fatalf("journal outcomes for stale-1 %+v; want one %s of run 2 naming run 1 and the 404", p.outcomes("stale-1"), janitor.StatusNotInEffect)
	}
	if got := noticesTo(p.hook.Take(), "owner-a"); len(got) != 0 {
		t.Errorf("run 2 told owner-a again that %v was gone", got)
	}
	// The policy still matches: the DELETE is sent again (the fix for a
	// tenant that failed once) and answered 404 again.
	if m := p.mutations(); len(m) != 1 || m[0].Status != http.StatusNotFound || !p.present("stale-1") {
		t.Errorf("run 2: the tenant received %+v; want the DELETE of stale-1 sent again, answered 404", m)
	}
	if c := p.confirmed()["stale-1"]; !c.Unproven() || c.RunID != res2.RunID {
		t.Errorf("record after run 2 %+v; want found still listed, sent again by run 2", c)
	}
}

// TestHostileAPIClientDeleteAnswered404WhileStillListed is the API client
// side of TestHostileDeleteAnswered404WhileStillListed: past disabledFor the
// DELETE of the quarantined client is answered 404 and the client stays
// listed (its secret still works). It used to be recorded gone and its
// disabled record forgotten, so no later run knew it had been quarantined or
// ever said the client was alive. Now the 404 awaits proof like a 204: the
// disabled record is kept, and the next listing past the settle margin
// journals the delete not in effect, fails the run and sends it again.
func TestHostileAPIClientDeleteAnswered404WhileStillListed(t *testing.T) {
	p := newClientProofEnv(t)
	if _, err := p.runAt(t0); err != nil { // disables cTarget
		t.Fatalf("run 1: %v", err)
	}
	if _, err := p.runAt(t0.Add(time.Hour)); err != nil { // proves the disable
		t.Fatalf("run 2: %v", err)
	}
	p.noticed()

	p.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpDeleteOAuthClient, Status: http.StatusNotFound})
	res3, err := p.runAt(t0.Add(14 * day))
	if err != nil {
		t.Fatalf("run 3: %v", err)
	}
	if len(res3.Clients) != 1 || res3.Clients[0].Outcome != janitor.OutcomeGone || res3.Clients[0].Item.Action != "delete" {
		t.Fatalf("run 3 client results %+v; want the delete recorded already gone", res3.Clients)
	}
	if m := clientMutations(p.sim.Requests()); len(m) != 1 || m[0].Method != http.MethodDelete || m[0].Status != http.StatusNotFound {
		t.Fatalf("run 3: the tenant received %+v; want one DELETE answered 404", m)
	}
	if _, ok := p.sim.OAuthClient(cTarget); !ok {
		t.Fatal("the tenant deleted the client: the fault did not hold")
	}
	if c, ok := p.records()[cTarget]; !ok || c.Action != "delete" || c.RunID != res3.RunID || c.Code != http.StatusNotFound {
		t.Fatalf("confirmed record %+v (found %v); want run 3's delete, answered 404, awaiting proof", c, ok)
	}
	if at, ok := p.disabledAt(); !ok || !at.Equal(t0) {
		t.Fatalf("disabled record %v (%v); want it kept until the delete is proven", at, ok)
	}
	p.noticed()

	res4, err := p.runAt(t0.Add(15 * day))
	requireUnproven(t, err, cTarget, "1 API client the tenant confirmed deleted is still listed ("+cTarget+", deleted by policy clients-full-scope-unused in run "+res3.RunID)
	lies := p.clientOutcomes(cTarget, janitor.StatusNotInEffect)
	if len(lies) != 1 || lies[0].RunID != res4.RunID || lies[0].Outcome.Code != http.StatusNotFound ||
		!strings.Contains(lies[0].Outcome.Error, "shows the API client still listed: the delete did not happen") {
		t.Fatalf("journal not-in-effect outcomes %+v; want run 4's, with the 404", lies)
	}
	if m := clientMutations(p.sim.Requests()); len(m) != 1 || m[0].Method != http.MethodDelete {
		t.Errorf("run 4: the tenant received %+v; want the DELETE sent again", m)
	}
	if got := p.noticed(); len(got) != 0 {
		t.Errorf("run 4 told the receivers again %v", got)
	}
}
