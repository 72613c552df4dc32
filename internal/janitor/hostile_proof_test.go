package janitor_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/metrics"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/notify/notifytest"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/state"
)

// lyingProxy stands between patjanitor and the simulated tenant. While
// lie is set it answers every DELETE of a PAT with 204 and does not forward
// it, and forwards every PATCH but puts the token back as it was once the
// tenant has answered (the 200 shows the new values, the tenant keeps the
// old ones). While failList is set it answers every listing with 500.
type lyingProxy struct {
	sim      *idnsim.Sim
	next     http.Handler
	lie      atomic.Bool
	failList atomic.Bool

	mu      sync.Mutex
	faked   []string // the DELETE paths answered without the tenant
	patched []string // the PATCH paths whose effect was undone
}

func (p *lyingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	isPAT := strings.Contains(r.URL.Path, "/personal-access-tokens")
	id := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	switch {
	case p.failList.Load() && isPAT && r.Method == http.MethodGet:
		http.Error(w, `{"messages":[{"text":"upstream unavailable"}]}`, http.StatusInternalServerError)
		return
	case p.lie.Load() && isPAT && r.Method == http.MethodDelete:
		p.mu.Lock()
		p.faked = append(p.faked, r.URL.Path)
		p.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	case p.lie.Load() && isPAT && r.Method == http.MethodPatch:
		before, ok := p.sim.Token(id)
		p.next.ServeHTTP(w, r)
		if ok {
			p.sim.Add(before, "")
			p.mu.Lock()
			p.patched = append(p.patched, r.URL.Path)
			p.mu.Unlock()
		}
		return
	}
	p.next.ServeHTTP(w, r)
}

func (p *lyingProxy) fakedDeletes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.faked)
}

// proofEnv is a graceEnv (state store, signed-webhook receiver as every
// notify receiver, metrics) whose tenant is reached through a lyingProxy.
type proofEnv struct {
	*graceEnv
	proxy *lyingProxy
}

func newProofEnv(t *testing.T, cfg string) *proofEnv {
	t.Helper()
	px := &lyingProxy{}
	e := newEnv(t, cfg, envOpts{wrap: func(h http.Handler) http.Handler {
		px.next = h
		return px
	}})
	px.sim = e.sim
	g := &graceEnv{env: e}
	g.hook = notifytest.NewReceiver(t, "/hooks/"+hookPathSecret, hookHMACKey, g.clock.Now)
	g.stPath = filepath.Join(t.TempDir(), state.FileName)
	g.reg = prometheus.NewRegistry()
	g.metrics = metrics.New(g.reg)
	g.openStore()
	return &proofEnv{graceEnv: g, proxy: px}
}

// runProof runs the engine as serve does, with the store as its ProofStore.
func (p *proofEnv) runProof() (*janitor.Result, error) {
	p.t.Helper()
	return p.engine(func(o *janitor.Options) { o.Proofs = p.st }).Run(context.Background(), janitor.RunInput{})
}

func (p *proofEnv) confirmed() map[string]state.Confirmed {
	p.t.Helper()
	cs, err := p.st.ConfirmedMutations(context.Background())
	if err != nil {
		p.t.Fatal(err)
	}
	out := map[string]state.Confirmed{}
	for _, c := range cs {
		out[c.TokenID] = c
	}
	return out
}

// outcomes are the journal's outcome records of a token, by status.
func (p *proofEnv) outcomes(tokenID string) []audit.Record {
	var out []audit.Record
	for _, r := range p.journalRecords() {
		if r.Kind == audit.KindOutcome && r.TokenID == tokenID {
			out = append(out, r)
		}
	}
	return out
}

func withStatus(recs []audit.Record, status string) []audit.Record {
	var out []audit.Record
	for _, r := range recs {
		if r.Outcome != nil && r.Outcome.Status == status {
			out = append(out, r)
		}
	}
	return out
}

// noticesTo are the owner notices the receiver got for owner, as the
// token ids they report.
func noticesTo(msgs []notifytest.Message, owner string) []string {
	var ids []string
	for _, m := range notifytest.OfKind(msgs, notify.KindNotice) {
		if m.Notice == nil || !pat.SameID(m.Notice.Owner.ID, owner) {
			continue
		}
		for _, it := range m.Notice.Items {
			ids = append(ids, it.TokenID)
		}
	}
	return ids
}

// proofNotify sends every kind of message to the test's receiver.
const proofNotify = "limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 0}\n" + `owners:
  fallbackEmail: iam@acme.example
notify:
  receivers:
    - name: hook
      webhook: {urlEnv: HOOK_URL, hmacSecretEnv: HOOK_KEY}
  owners: hook
  summary: [hook]
  failures: [hook]
`

const proofConfig = proofNotify + `policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
`

// A tenant (or a proxy in front of it) answers 204 to a DELETE and does not
// delete. patjanitor used to count the token as deleted, journal it applied,
// tell its owner so, and on every later run list it again, "delete" it
// again and tell the owner again: nobody learnt that the credential was
// alive. Now the listing of the next run, taken after the settle margin,
// still shows it: the journal records the delete as not in effect, the
// metric counts it, the plan and the run's error say it, and the owner is
// not told again.
func TestHostileTenantConfirmsDeletesItDoesNotDo(t *testing.T) {
	p := newProofEnv(t, proofConfig)
	p.add("stale-1", "owner-a", "old-ci", 400*day, 200*day)
	p.add("used-1", "owner-b", "busy", 400*day, 1*day)
	p.proxy.lie.Store(true)

	// Run 1: the DELETE is answered 204 by the proxy; the tenant never
	// receives it.
	res1, err := p.runProof()
	if err != nil {
		t.Fatalf("run 1: %v", err)
	}
	if res1.Count(janitor.OutcomeApplied) != 1 {
		t.Fatalf("run 1 items %+v; want the delete applied", res1.Items)
	}
	if n := p.proxy.fakedDeletes(); n != 1 {
		t.Fatalf("the proxy answered %d DELETEs, want 1", n)
	}
	p.requireNoMutations() // the tenant received nothing
	if !p.present("stale-1") {
		t.Fatal("the tenant deleted stale-1: the proxy did not lie")
	}
	if got := withStatus(p.outcomes("stale-1"), string(janitor.OutcomeApplied)); len(got) != 1 {
		t.Fatalf("journal outcomes for stale-1 %+v; want one applied", p.outcomes("stale-1"))
	}
	if got := noticesTo(p.hook.Take(), "owner-a"); len(got) != 1 || got[0] != "stale-1" {
		t.Fatalf("run 1 notices to owner-a %v; want stale-1 (the tenant said it was deleted)", got)
	}
	if c, ok := p.confirmed()["stale-1"]; !ok || c.Action != "delete" || c.RunID != res1.RunID || c.Code != http.StatusNoContent || c.Unproven() {
		t.Fatalf("confirmed record %+v (found %v); want the delete of run 1 awaiting proof", c, ok)
	}

	// Run 2, a day later: the token is still listed.
	p.clock.Set(t0.Add(day))
	res2, err := p.runProof()
	var uerr *janitor.UnprovenError
	if !errors.As(err, &uerr) || len(uerr.Unproven) != 1 || uerr.Unproven[0].Confirmed.TokenID != "stale-1" {
		t.Fatalf("run 2 error %v; want an UnprovenError naming stale-1", err)
	}
	const said = "1 token the tenant confirmed deleted is still listed (stale-1 of owner owner-a, deleted by policy unused-90d in run "
	if msg := fmt.Sprint(err); !strings.Contains(msg, said) || !strings.Contains(msg, res1.RunID) {
		t.Errorf("run 2 error %q; want %q… naming run %s", err, said, res1.RunID)
	}
	if !slicesContainsSub(res2.Plan.Warnings, said) {
		t.Errorf("plan warnings %q; want %q…", res2.Plan.Warnings, said)
	}
	lies := withStatus(p.outcomes("stale-1"), janitor.StatusNotInEffect)
	if len(lies) != 1 {
		t.Fatalf("journal outcomes for stale-1 %+v; want one %s", p.outcomes("stale-1"), janitor.StatusNotInEffect)
	}
	lie := lies[0]
	if lie.RunID != res2.RunID || lie.Before == nil || lie.Before.ID != "stale-1" || lie.Outcome.Code != http.StatusNoContent ||
		!strings.Contains(lie.Outcome.Error, "in run "+res1.RunID) || !strings.Contains(lie.Outcome.Error, "the delete did not happen") {
		t.Errorf("not-in-effect record %+v (outcome %+v); want run 2's, with the token as listed and run 1 named", lie, lie.Outcome)
	}
	if v := p.gauge("patjanitor_unproven_mutations", "action", "delete"); v != 1 {
		t.Errorf("unproven_mutations{action=delete} = %v, want 1", v)
	}
	if !strings.Contains(p.logs.String(), `"msg":"the tenant confirmed a change that a later listing does not show: it did not happen","token_id":"stale-1","owner_id":"owner-a"`) {
		t.Errorf("no error log naming stale-1 and its owner:\n%s", p.logs)
	}
	msgs := p.hook.Take()
	if got := noticesTo(msgs, "owner-a"); len(got) != 0 {
		t.Errorf("run 2 told owner-a again that %v was deleted", got)
	}
	var alerted bool
	for _, m := range notifytest.OfKind(msgs, notify.KindFailure) {
		alerted = alerted || (m.Failure != nil && strings.Contains(m.Failure.Error, said))
	}
	if !alerted {
		t.Errorf("no failure alert says %q", said)
	}
	// The policy still matches: the DELETE is sent again (harmless to a
	// liar, the fix for a tenant that failed once), and its 204 is again
	// only a confirmation.
	if n := p.proxy.fakedDeletes(); n != 2 {
		t.Errorf("the proxy answered %d DELETEs, want 2 (sent again in run 2)", n)
	}
	p.requireNoMutations()
	c := p.confirmed()["stale-1"]
	if !c.Unproven() || c.Checks != 1 || c.RunID != res2.RunID || !c.StillListed.Equal(res2.Finished) {
		t.Errorf("record after run 2 %+v; want found still listed once, confirmed again by run 2", c)
	}
	if _, err := audit.VerifyPath(p.jpath, audit.VerifyOptions{}); err != nil {
		t.Fatalf("audit verify: %v", err)
	}

	// Run 3, a minute later: within the margin of run 2's confirmation
	// nothing is judged or sent, and the alarm goes on.
	p.clock.Set(t0.Add(day + time.Minute))
	res3, err := p.runProof()
	if !errors.As(err, &uerr) {
		t.Fatalf("run 3 error %v; want the UnprovenError still", err)
	}
	if n := p.proxy.fakedDeletes(); n != 2 {
		t.Errorf("run 3 sent a DELETE within the settle margin (%d in all)", n)
	}
	if !skippedFor(res3.Plan, "stale-1", string(janitor.SkipAwaitingProof)) {
		t.Errorf("run 3 skipped %+v; want stale-1 awaiting proof", res3.Plan.Skipped)
	}
	if got := withStatus(p.outcomes("stale-1"), janitor.StatusNotInEffect); len(got) != 1 {
		t.Errorf("run 3 journaled another not-in-effect (%d): it judged within the margin", len(got))
	}
	if v := p.gauge("patjanitor_unproven_mutations", "action", "delete"); v != 1 {
		t.Errorf("run 3 unproven_mutations{action=delete} = %v, want 1", v)
	}

	// The proxy is fixed. Run 4 still finds the token listed (the DELETE
	// of run 2 was faked too) and sends it again, to the tenant this time;
	// run 5's listing proves it.
	p.proxy.lie.Store(false)
	p.clock.Set(t0.Add(2 * day))
	if _, err := p.runProof(); !errors.As(err, &uerr) {
		t.Fatalf("run 4 error %v; want the UnprovenError (still listed)", err)
	}
	if got := deletedIDs(p.mutations()); got["stale-1"] != 1 {
		t.Fatalf("run 4: the tenant received DELETEs %v; want stale-1", got)
	}
	if p.present("stale-1") {
		t.Fatal("stale-1 is still in the tenant")
	}
	if got := noticesTo(p.hook.Take(), "owner-a"); len(got) != 0 {
		t.Errorf("run 4 told owner-a about %v before a listing proved the delete", got)
	}
	p.clock.Set(t0.Add(3 * day))
	if _, err := p.runProof(); err != nil {
		t.Fatalf("run 5: %v", err)
	}
	if _, ok := p.confirmed()["stale-1"]; ok {
		t.Error("run 5 kept the record of stale-1, whose delete its listing proves")
	}
	if got := withStatus(p.outcomes("stale-1"), janitor.StatusInEffect); len(got) != 1 {
		t.Errorf("journal outcomes %+v; want one %s closing the alarm", p.outcomes("stale-1"), janitor.StatusInEffect)
	}
	if v := p.gauge("patjanitor_unproven_mutations", "action", "delete"); v != 0 {
		t.Errorf("run 5 unproven_mutations{action=delete} = %v, want 0", v)
	}
}

func slicesContainsSub(ss []string, sub string) bool {
	for _, s := range ss {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func skippedFor(p *plan.Plan, id, reason string) bool {
	for _, s := range p.Skipped {
		if s.TokenID == id && strings.HasPrefix(s.Reason, reason) {
			return true
		}
	}
	return false
}

// An honest tenant: the next run's listing no longer shows the deleted
// token, which proves the delete; the record is dropped and nothing is
// alarmed. A run within the settle margin proves nothing and keeps it.
func TestConfirmedDeleteProvenByLaterListing(t *testing.T) {
	p := newProofEnv(t, proofConfig)
	p.add("stale-1", "owner-a", "old-ci", 400*day, 200*day)
	if _, err := p.runProof(); err != nil {
		t.Fatalf("run 1: %v", err)
	}
	if got := deletedIDs(p.mutations()); got["stale-1"] != 1 {
		t.Fatalf("the tenant received DELETEs %v", got)
	}
	if _, ok := p.confirmed()["stale-1"]; !ok {
		t.Fatal("no record of the confirmed delete")
	}

	// Within the margin: kept, unjudged.
	p.clock.Set(t0.Add(janitor.SettleMargin - time.Second))
	res, err := p.runProof()
	if err != nil {
		t.Fatalf("run within the margin: %v", err)
	}
	if _, ok := p.confirmed()["stale-1"]; !ok {
		t.Fatal("a listing within the settle margin dropped the record")
	}
	if len(res.Plan.Warnings) != 0 || len(res.Unproven) != 0 {
		t.Errorf("warnings %q, unproven %+v; want none", res.Plan.Warnings, res.Unproven)
	}

	p.clock.Set(t0.Add(janitor.SettleMargin))
	res, err = p.runProof()
	if err != nil {
		t.Fatalf("run after the margin: %v", err)
	}
	if len(p.confirmed()) != 0 {
		t.Errorf("records %+v; want none (the listing proved the delete)", p.confirmed())
	}
	if len(res.Plan.Warnings) != 0 {
		t.Errorf("warnings %q", res.Plan.Warnings)
	}
	for _, r := range p.outcomes("stale-1") {
		if r.Outcome.Status != string(janitor.OutcomeApplied) {
			t.Errorf("journal outcome %+v; want only the applied one (a plain proof is not journaled)", r.Outcome)
		}
	}
	if v := p.gauge("patjanitor_unproven_mutations", "action", "delete"); v != 0 {
		t.Errorf("unproven_mutations{action=delete} = %v, want 0", v)
	}
}

// A listing within the settle margin that still shows the token proves
// nothing either way: no alarm, nothing sent again.
func TestHostileLyingDeleteWithinMarginProvesNothing(t *testing.T) {
	p := newProofEnv(t, proofConfig)
	p.add("stale-1", "owner-a", "old-ci", 400*day, 200*day)
	p.proxy.lie.Store(true)
	if _, err := p.runProof(); err != nil {
		t.Fatalf("run 1: %v", err)
	}
	p.clock.Set(t0.Add(2 * time.Minute))
	res, err := p.runProof()
	if err != nil {
		t.Fatalf("run 2 within the margin: %v", err)
	}
	if n := p.proxy.fakedDeletes(); n != 1 {
		t.Errorf("%d DELETEs; want the first one only", n)
	}
	if !skippedFor(res.Plan, "stale-1", string(janitor.SkipAwaitingProof)) {
		t.Errorf("skipped %+v; want stale-1 awaiting proof", res.Plan.Skipped)
	}
	if got := withStatus(p.outcomes("stale-1"), janitor.StatusNotInEffect); len(got) != 0 {
		t.Errorf("journaled %+v within the margin", got)
	}
	if c := p.confirmed()["stale-1"]; c.Unproven() {
		t.Errorf("record %+v flagged within the margin", c)
	}
}

// An incomplete listing proves nothing either way: the records stay as
// they are, nothing is alarmed (the run fails as incomplete data anyway).
func TestHostileIncompleteListingProvesNothing(t *testing.T) {
	p := newProofEnv(t, proofConfig)
	p.add("stale-1", "owner-a", "old-ci", 400*day, 200*day)
	p.proxy.lie.Store(true)
	if _, err := p.runProof(); err != nil {
		t.Fatalf("run 1: %v", err)
	}
	p.proxy.failList.Store(true)
	p.clock.Set(t0.Add(day))
	res, err := p.runProof()
	var inc *janitor.IncompleteError
	var uerr *janitor.UnprovenError
	if !errors.As(err, &inc) || errors.As(err, &uerr) {
		t.Fatalf("run 2: %v; want incomplete data and no verdict on the delete", err)
	}
	if c, ok := p.confirmed()["stale-1"]; !ok || c.Unproven() {
		t.Errorf("record %+v (kept %v); want kept, unjudged", c, ok)
	}
	if len(res.Unproven) != 0 || len(withStatus(p.outcomes("stale-1"), janitor.StatusNotInEffect)) != 0 {
		t.Errorf("an incomplete listing judged the delete")
	}
	// The next complete listing judges it.
	p.proxy.failList.Store(false)
	p.clock.Set(t0.Add(2 * day))
	if _, err := p.runProof(); !errors.As(err, &uerr) {
		t.Fatalf("run 3: %v; want the UnprovenError", err)
	}
}

// A PATCH answered 200 with the new values whose change the tenant does not
// keep is caught the same way: the next listing shows the old scope.
func TestHostileTenantConfirmsPatchItDoesNotKeep(t *testing.T) {
	const cfg = proofNotify + `policies:
  - name: full-access
    mode: enforce
    match: {scopes: {any: ["sp:scopes:all"]}}
    action: patch
    patch: {setScopes: ["sp:scopes:default"]}
`
	p := newProofEnv(t, cfg)
	own := p.own()
	p.add("mine-1", own, "wide", 10*day, 1*day, "sp:scopes:all")
	p.proxy.lie.Store(true)
	res1, err := p.runProof()
	if err != nil {
		t.Fatalf("run 1: %v", err)
	}
	if got := patchedIDs(p.mutations()); got["mine-1"] != 1 {
		t.Fatalf("the tenant received PATCHes %v; want mine-1", got)
	}
	if tok, _ := p.sim.Token("mine-1"); !tok.Scope.Null && (len(tok.Scope.Values) != 1 || tok.Scope.Values[0] != "sp:scopes:all") {
		t.Fatalf("the tenant kept the patch: %+v", tok.Scope)
	}
	if c := p.confirmed()["mine-1"]; c.Action != "patch" || len(c.Patch) != 1 || c.RunID != res1.RunID {
		t.Fatalf("record %+v; want the patch of run 1", c)
	}
	p.hook.Take()

	p.clock.Set(t0.Add(day))
	_, err = p.runProof()
	var uerr *janitor.UnprovenError
	if !errors.As(err, &uerr) || !strings.Contains(err.Error(), "1 token the tenant confirmed patched or expired does not show the change (mine-1") ||
		!strings.Contains(err.Error(), `scope ["sp:scopes:all"] (sent ["sp:scopes:default"])`) {
		t.Fatalf("run 2 error %v; want the patch not in effect, with what the listing shows", err)
	}
	if got := withStatus(p.outcomes("mine-1"), janitor.StatusNotInEffect); len(got) != 1 {
		t.Errorf("journal outcomes %+v; want one %s", p.outcomes("mine-1"), janitor.StatusNotInEffect)
	}
	if v := p.gauge("patjanitor_unproven_mutations", "action", "patch"); v != 1 {
		t.Errorf("unproven_mutations{action=patch} = %v, want 1", v)
	}
	if got := noticesTo(p.hook.Take(), own); len(got) != 0 {
		t.Errorf("run 2 told the owner again about %v", got)
	}
}

// apply PLAN judges the confirmed changes as a run does: within the settle
// margin the saved item of a token whose delete was just confirmed is
// dropped as awaiting proof; after it, the listing that still shows the
// token fails the apply with the delete not in effect, journaled.
func TestHostileApplyPlanJudgesConfirmedDeletes(t *testing.T) {
	p := newProofEnv(t, proofConfig)
	p.add("stale-1", "owner-a", "old-ci", 400*day, 200*day)
	p.proxy.lie.Store(true)
	eng := func() *janitor.Engine { return p.engine(func(o *janitor.Options) { o.Proofs = p.st }) }
	pl, err := eng().Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	saved := roundTrip(t, pl.Plan)
	if _, err := eng().ApplyPlan(context.Background(), saved, janitor.ApplyOptions{}); err != nil {
		t.Fatalf("apply 1: %v", err)
	}
	if p.proxy.fakedDeletes() != 1 {
		t.Fatalf("%d DELETEs faked, want 1", p.proxy.fakedDeletes())
	}

	p.clock.Set(t0.Add(time.Minute))
	res, err := eng().ApplyPlan(context.Background(), saved, janitor.ApplyOptions{})
	if err != nil {
		t.Fatalf("apply 2 within the margin: %v", err)
	}
	if res.Count(janitor.OutcomeDropped) != 1 || !strings.Contains(res.Items[0].Detail, "now exempt: awaiting-proof") {
		t.Fatalf("apply 2 items %+v; want stale-1 dropped as awaiting proof", res.Items)
	}
	if p.proxy.fakedDeletes() != 1 {
		t.Fatal("apply 2 sent a DELETE within the settle margin")
	}

	p.clock.Set(t0.Add(time.Hour))
	res, err = eng().ApplyPlan(context.Background(), saved, janitor.ApplyOptions{})
	var uerr *janitor.UnprovenError
	if !errors.As(err, &uerr) || len(res.Unproven) != 1 {
		t.Fatalf("apply 3: %v (unproven %+v); want the delete not in effect", err, res.Unproven)
	}
	if got := withStatus(p.outcomes("stale-1"), janitor.StatusNotInEffect); len(got) != 1 || got[0].RunID != res.RunID {
		t.Fatalf("journal %+v; want one not-in-effect outcome in apply 3's run", p.outcomes("stale-1"))
	}
}

// An honest tenant's bulk expiry shows in the next listing: proven, no
// alarm (the listing's expirationDate is the one sent).
func TestConfirmedExpireProvenByLaterListing(t *testing.T) {
	p := newExpiredEnv(t)
	if c := p.confirmed()["stale-1"]; c.Action != "expire" || len(c.Patch) == 0 {
		t.Fatalf("record %+v; want the expire with its operations", c)
	}
	p.clock.Set(t0.Add(day))
	res, err := p.runProof()
	if err != nil {
		t.Fatalf("run 2: %v", err)
	}
	// Run 1's record is proven and dropped (were the token expired again,
	// its record would be run 2's, awaiting proof).
	if c, ok := p.confirmed()["stale-1"]; len(res.Unproven) != 0 || (ok && (c.Unproven() || c.RunID != res.RunID)) {
		t.Errorf("unproven %+v, record %+v; want run 1's expiry proven and run 2's awaiting proof", res.Unproven, c)
	}
	if v := p.gauge("patjanitor_unproven_mutations", "action", "expire"); v != 0 {
		t.Errorf("unproven_mutations{action=expire} = %v, want 0", v)
	}
}

// newExpiredEnv is a proofEnv whose first run, at t0, expired stale-1
// (unused for 200 days) through the bulk update of an honest tenant.
func newExpiredEnv(t *testing.T) *proofEnv {
	t.Helper()
	p := newProofEnv(t, proofNotify+`policies:
  - name: expire-stale
    mode: enforce
    match: {unusedFor: 90d}
    action: expire
    expireIn: 14d
`)
	p.add("stale-1", "owner-a", "old-ci", 400*day, 200*day)
	if _, err := p.runProof(); err != nil {
		t.Fatalf("run 1: %v", err)
	}
	if got := bulkIDs(t, p.sim.Requests()); got["stale-1"] != 1 {
		t.Fatalf("bulk updates %v; want stale-1 expired", got)
	}
	return p
}
