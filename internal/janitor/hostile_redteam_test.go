package janitor_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/notify/notifytest"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
)

// A token that shows another owner at apply time than in the approved plan
// is not the token the reviewers approved acting on: PATs do not move
// between owners in IdentityNow, so the re-read is a lie or another token
// under the id. Acting anyway judged maxActionsPerOwner by the planned
// owners (one each, under the limit of 1) while the tenant's answer put both
// tokens on one owner, and the owner notice would name the planned owner.
// The item is dropped, naming both owners; the other one is applied.
func TestHostileApplyPlanTokenMovedOwner(t *testing.T) {
	const cfg = "limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 1}\n" + `policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
`
	e := newEnv(t, cfg, envOpts{})
	e.add("tok-a", "owner-a", "build-a", 400*day, 200*day)
	e.add("tok-b", "owner-b", "build-b", 400*day, 200*day)
	pl, err := e.engine().Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	saved := roundTrip(t, pl.Plan)
	if saved.Items.Len() != 2 {
		t.Fatalf("plan holds %d items, want 2", saved.Items.Len())
	}
	for _, g := range saved.Guardrails {
		if g.Tripped {
			t.Fatalf("plan trips %s", g.Name)
		}
	}

	// Between plan and apply the tenant answers tok-b under owner-a.
	moved, ok := e.sim.Token("tok-b")
	if !ok {
		t.Fatal("tok-b missing")
	}
	moved.Owner = pat.Owner{Type: "IDENTITY", ID: "owner-a", Name: "Owner owner-a"}
	e.sim.Add(moved, "")
	e.sim.ResetRequests()

	res, err := e.engine().ApplyPlan(context.Background(), saved, janitor.ApplyOptions{})
	if err != nil {
		t.Fatalf("ApplyPlan: %v", err)
	}
	if got := deletedIDs(e.mutations()); len(got) != 1 || got["tok-a"] != 1 {
		t.Fatalf("the tenant received DELETEs of %v; want only tok-a", got)
	}
	if !e.present("tok-b") {
		t.Fatal("tok-b was deleted")
	}
	var droppedB bool
	for _, r := range res.Items {
		switch r.Item.TokenID {
		case "tok-a":
			if r.Outcome != janitor.OutcomeApplied {
				t.Errorf("tok-a: %s %s; want applied", r.Outcome, r.Detail)
			}
		case "tok-b":
			droppedB = r.Outcome == janitor.OutcomeDropped && strings.Contains(r.Detail, "owner changed") &&
				strings.Contains(r.Detail, "owner-a") && strings.Contains(r.Detail, "owner-b")
			if !droppedB {
				t.Errorf("tok-b: %s %q; want dropped, naming both owners", r.Outcome, r.Detail)
			}
		}
	}
	if !droppedB {
		t.Errorf("no result for tok-b: %+v", res.Items)
	}
	var intents []string
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindIntent {
			intents = append(intents, r.TokenID)
		}
	}
	if len(intents) != 1 || intents[0] != "tok-a" {
		t.Fatalf("journal intents for %v; want tok-a only", intents)
	}
}

// A grace warning is for the owner it reached. A token whose listing names
// another owner once the deadline has passed was never announced to that
// owner: acting would delete a token its owner had no warning of (and no
// chance to snooze). The mark restarts: the listed owner gets a digest, and
// the token is acted on only after that owner's own grace period.
func TestHostileGraceTokenMovedOwnerAfterWarning(t *testing.T) {
	g := newGraceEnv(t, graceConfig)
	g.add("moved", "owner-a", "build", 400*day, 200*day)
	g.run()
	g.requireNoMutations()
	m := g.marks()["moved"]
	if m.WarnedAt == nil || !pat.SameID(m.OwnerID, "owner-a") {
		t.Fatalf("day 0 mark %+v; want owner-a warned", m)
	}
	if d := digestOwners(g.hook.Take()); len(d) != 1 || d[0] != "owner-a" {
		t.Fatalf("day 0 digests to %v; want owner-a", d)
	}

	// After the deadline the tenant lists the token under owner-b.
	tok, _ := g.sim.Token("moved")
	tok.Owner = pat.Owner{Type: "IDENTITY", ID: "owner-b", Name: "Owner owner-b"}
	g.sim.Add(tok, "")
	g.clock.Set(at(15))
	res := g.run()
	if muts := g.mutations(); len(muts) != 0 {
		t.Fatalf("the tenant received %+v; owner-b was never warned", muts)
	}
	if it := res.Plan.Items.At(0); it.Mode != plan.ModeGrace {
		t.Fatalf("day 15 item %+v; want held for owner-b's warning", it)
	}
	if d := digestOwners(g.hook.Take()); len(d) != 1 || d[0] != "owner-b" {
		t.Fatalf("day 15 digests to %v; want owner-b", d)
	}
	m = g.marks()["moved"]
	if !pat.SameID(m.OwnerID, "owner-b") || m.WarnedAt == nil || !m.WarnedAt.Equal(at(15)) {
		t.Fatalf("day 15 mark %+v; want owner-b's, warned on day 15", m)
	}
	for _, r := range g.journalRecords() {
		if r.Kind == audit.KindIntent {
			t.Fatalf("journal intent %+v; nothing was due", r)
		}
	}

	// owner-b's own grace period passes: now the token goes.
	g.clock.Set(at(30))
	g.run()
	if got := deletedIDs(g.mutations()); len(got) != 1 || got["moved"] != 1 {
		t.Fatalf("day 30 deletes %v; want moved", got)
	}
}

func digestOwners(msgs []notifytest.Message) []string {
	var out []string
	for _, m := range msgs {
		if m.Digest != nil {
			out = append(out, m.Digest.Owner.ID)
		}
	}
	return out
}

// patjanitor deletes an API client only after keeping it disabled itself for
// disabledFor. A client it disabled that an administrator re-enabled in the
// tenant (not with patjanitor enable) kept its disabled record: when the
// client was next found disabled, by someone else and perhaps for an hour,
// patjanitor counted disabledFor from its own old disable and deleted the
// client at once. A listing that shows the client enabled now ends the
// record, so the later disable reads as "not by patjanitor".
func TestHostileAPIClientReenabledOutsideKeepsItsQuarantine(t *testing.T) {
	c := newClientEnv(t, "enforce")
	c.run() // disables cTarget on day 0: its record starts disabledFor
	if _, ok, err := c.store.DisabledClient(context.Background(), cTarget); err != nil || !ok {
		t.Fatalf("no disabled record after the disable: %v", err)
	}
	target, _ := c.sim.OAuthClient(cTarget)

	// Day 1: an administrator enables it again in the console, and it is
	// used. Day 2's run sees it enabled and matching nothing.
	used := t0.Add(day)
	target.Enabled, target.LastUsed = apiclient.Bool(true), &used
	c.sim.AddOAuthClient(target, "")
	c.clock.Set(t0.Add(2 * day))
	c.sim.ResetRequests()
	c.run()
	if m := clientMutations(c.sim.Requests()); len(m) != 0 {
		t.Fatalf("day 2 sent %+v", m)
	}
	if _, ok, _ := c.store.DisabledClient(context.Background(), cTarget); ok {
		t.Error("the disabled record of a client listed enabled survived")
	}

	// Day 100: unused for 99 days again, and disabled by someone else
	// today. patjanitor never kept it disabled: nothing is deleted.
	// (cRecent, unused for 102 days by now, is disabled: not this test's.)
	c.disabledElsewhereIsKept(t, target, 100)
}

// The same door when the run that sees the client enabled again wants to
// disable it and does not (the PATCH failed; a tripped guardrail or a
// journal failure would block it alike): the disabled record of day 0 was
// kept because the run "disables it again", and when someone else disabled
// the client on day 15, disabledFor counted from patjanitor's day-0 disable
// and the client was deleted at once, never kept disabled by patjanitor.
func TestHostileAPIClientReenabledOutsideReDisableFails(t *testing.T) {
	c := newClientEnv(t, "enforce")
	c.run() // disables cTarget on day 0: its record starts disabledFor
	if _, ok, err := c.store.DisabledClient(context.Background(), cTarget); err != nil || !ok {
		t.Fatalf("no disabled record after the disable: %v", err)
	}
	target, _ := c.sim.OAuthClient(cTarget)

	// Day 1: an administrator enables it again in the console. Day 2's run
	// sees it enabled and still unused, and its disable fails.
	target.Enabled = apiclient.Bool(true)
	c.sim.AddOAuthClient(target, "")
	c.clock.Set(t0.Add(2 * day))
	c.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpPatchOAuthClient, Status: 403})
	if _, err := c.engine().Run(context.Background(), janitor.RunInput{}); err == nil {
		t.Fatal("day 2: the run with a failed disable succeeded")
	}
	c.sim.ClearFaults()
	if got, _ := c.sim.OAuthClient(cTarget); got.Enabled == nil || !*got.Enabled {
		t.Fatal("day 2: the client was disabled despite the fault")
	}
	if d, ok, _ := c.store.DisabledClient(context.Background(), cTarget); ok {
		t.Errorf("day 2: the disabled record of %s survived a run that found the client enabled and did not disable it", d.At)
	}

	// Day 15: disabled by someone else today. patjanitor never kept it
	// disabled for disabledFor (14d): nothing is deleted.
	c.disabledElsewhereIsKept(t, target, 15)
}

// ownerMissingDelete deletes the tokens of owners the directory does not
// know; answerNoIdentities is a directory that knows nobody (200 []).
const ownerMissingDelete = noLimits + `owners: {lookup: true}
policies:
  - name: deleted-owner
    mode: enforce
    match: {ownerMissing: true}
    action: delete
`

func answerNoIdentities(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte("[]"))
}

// An identity directory that answers 200 with no identities (a proxy, a
// tenant that filters what the caller may see, a broken page) made every
// owner "missing": an ownerMissing policy deleted every token. A directory
// that does not know patjanitor's own identity (the owner of the PAT it is
// logged in with, which exists) is not the whole directory: the lookup
// counts as failed, and the owner conditions match nothing.
func TestHostileIdentityDirectoryAnswersNothing(t *testing.T) {
	e, f, _ := hostileEnv(t, ownerMissingDelete, map[string]http.HandlerFunc{"GET /v3/public-identities": answerNoIdentities})
	res, err := e.engine().Run(context.Background(), janitor.RunInput{})
	if err != nil {
		t.Logf("Run: %v", err)
	}
	if f.count("GET /v3/public-identities") == 0 {
		t.Fatal("no owner lookup was made")
	}
	if res == nil || res.Count(janitor.OutcomeApplied) != 0 {
		t.Fatalf("result %+v", res)
	}
	e.requireNothingApplied()
	if !strings.Contains(e.logs.String(), "patjanitor's own identity") {
		t.Errorf("the log does not say why the owner lookup failed:\n%s", e.logs.String())
	}
}

// The owner-changed drop names both owners, as the tenant lists them: a
// listed owner id may be 64 KiB, and the detail (apply's result table, the
// summary) carries the start of it, not all of it.
func TestHostileApplyPlanTokenMovedToALongOwnerID(t *testing.T) {
	e := newEnv(t, noLimits+`policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
`, envOpts{})
	e.add("tok-b", "owner-b", "build-b", 400*day, 200*day)
	pl, err := e.engine().Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	saved := roundTrip(t, pl.Plan)
	moved, _ := e.sim.Token("tok-b")
	long := "owner-" + strings.Repeat("z", 40000)
	moved.Owner = pat.Owner{Type: "IDENTITY", ID: long, Name: "Owner z"}
	e.sim.Add(moved, "")
	e.sim.ResetRequests()

	res, err := e.engine().ApplyPlan(context.Background(), saved, janitor.ApplyOptions{})
	if err != nil {
		t.Fatalf("ApplyPlan: %.300v", err)
	}
	e.requireNoMutations()
	if len(res.Items) != 1 || res.Items[0].Outcome != janitor.OutcomeDropped {
		t.Fatalf("results %.300v; want tok-b dropped", res.Items)
	}
	d := res.Items[0].Detail
	if len(d) > 1024 || !strings.Contains(d, "owner changed") || !strings.Contains(d, "owner-zzz") || !strings.Contains(d, "owner-b") {
		t.Fatalf("drop detail of %d bytes: %.300q; want both owners named, the long one clipped", len(d), d)
	}
}

// The failed owner lookup's log line names patjanitor's own identity, as
// the tenant lists it (the owner of its PAT): the start of it, not 64 KiB.
func TestHostileIdentityDirectoryAnswersNothingLongOwnIdentity(t *testing.T) {
	e, _, _ := hostileEnv(t, ownerMissingDelete, map[string]http.HandlerFunc{"GET /v3/public-identities": answerNoIdentities})
	own, ok := e.sim.Token(e.admin.ClientID)
	if !ok {
		t.Fatal("no admin token")
	}
	long := "me-" + strings.Repeat("m", 40000)
	e.sim.AddIdentity(idnsim.Identity{ID: long, Name: "Me", OrgAdmin: true})
	own.Owner = pat.Owner{Type: "IDENTITY", ID: long, Name: "Me"}
	e.sim.Add(own, e.admin.ClientSecret)
	if _, err := e.engine().Run(context.Background(), janitor.RunInput{}); err != nil {
		t.Logf("Run: %.300v", err)
	}
	e.requireNothingApplied()
	logs := e.logs.String()
	i := strings.Index(logs, "patjanitor's own identity")
	if i < 0 {
		t.Fatalf("the log does not say why the owner lookup failed:\n%.2000s", logs)
	}
	if strings.Contains(logs, strings.Repeat("m", 2000)) {
		t.Fatalf("the log carries the 40,000-character identity id whole (%d bytes of log)", len(logs))
	}
	if !strings.Contains(logs[i:], "me-mmm") {
		t.Errorf("the log line does not name the identity:\n%.600s", logs[i:])
	}
}

// The owner check of a grace mark and of apply PLAN compares ids without
// regard to case, as every id comparison does: a tenant that lists the
// owner in another spelling than when it was warned (or planned) has not
// moved the token. Compared exactly, such a tenant restarted the clock at
// every spelling change, and dropped every approved item.
func TestHostileOwnerSpelledInAnotherCaseIsTheSameOwner(t *testing.T) {
	t.Run("grace", func(t *testing.T) {
		g := newGraceEnv(t, graceConfig)
		g.add("tok", "owner-a", "build", 400*day, 200*day)
		g.run()
		g.requireNoMutations()
		tok, _ := g.sim.Token("tok")
		tok.Owner = pat.Owner{Type: "IDENTITY", ID: "OWNER-A", Name: "Owner A"}
		g.sim.Add(tok, "")
		g.clock.Set(at(15))
		g.run()
		if got := deletedIDs(g.mutations()); len(got) != 1 || got["tok"] != 1 {
			t.Fatalf("day 15 deletes %v; want tok, its owner warned on day 0", got)
		}
	})
	t.Run("apply", func(t *testing.T) {
		e := newEnv(t, noLimits+`policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
`, envOpts{})
		e.add("tok", "owner-b", "build", 400*day, 200*day)
		pl, err := e.engine().Plan(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		saved := roundTrip(t, pl.Plan)
		tok, _ := e.sim.Token("tok")
		tok.Owner = pat.Owner{Type: "IDENTITY", ID: "OWNER-B", Name: "Owner B"}
		e.sim.Add(tok, "")
		res, err := e.engine().ApplyPlan(context.Background(), saved, janitor.ApplyOptions{})
		if err != nil {
			t.Fatalf("ApplyPlan: %v", err)
		}
		if got := deletedIDs(e.mutations()); len(got) != 1 || got["tok"] != 1 || res.Count(janitor.OutcomeApplied) != 1 {
			t.Fatalf("deletes %v, %d applied; want tok", got, res.Count(janitor.OutcomeApplied))
		}
	})
}

// disabledElsewhereIsKept has someone else disable target on day n (its
// record shown disabled) and checks that day's run: nothing is sent for
// it, it is not deleted, it is reported as disabled but not by patjanitor,
// and the journal holds no DELETE intent for it.
func (c *clientEnv) disabledElsewhereIsKept(t *testing.T, target apiclient.Client, n int) {
	t.Helper()
	target.Enabled = apiclient.Bool(false)
	c.sim.AddOAuthClient(target, "")
	c.clock.Set(t0.Add(time.Duration(n) * day))
	c.sim.ResetRequests()
	res := c.run()
	for _, m := range clientMutations(c.sim.Requests()) {
		if strings.HasSuffix(m.Path, "/"+cTarget) {
			t.Fatalf("day %d sent %s %s; the client was disabled by someone else today", n, m.Method, m.Path)
		}
	}
	if _, ok := c.sim.OAuthClient(cTarget); !ok {
		t.Fatal("the client was deleted")
	}
	if it := findClientItem(res.Plan, cTarget); it == nil || it.Action != "report" || !strings.Contains(it.Reason, "not by patjanitor") {
		t.Fatalf("day %d item %+v; want a report: disabled, but not by patjanitor", n, it)
	}
	deletes := 0
	for _, r := range c.journalRecords() {
		if r.Kind == audit.KindIntent && r.TokenID == cTarget && r.Request.Method == "DELETE" {
			deletes++
		}
	}
	if deletes != 0 {
		t.Fatalf("journal holds %d DELETE intents for the client", deletes)
	}
}
