package janitor_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/metrics"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/notify/notifytest"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/state"
)

// clientGraceConfig disables never-used full-scope API clients after a
// 7-day grace period, warning the iam-team receiver (notify.apiClients).
const clientGraceConfig = `limits: {maxActionsPerRun: 25, maxActionsPercent: 0}
notify:
  receivers:
    - name: iam-team
      webhook: {urlEnv: HOOK_URL, hmacSecretEnv: HOOK_KEY}
  apiClients: [iam-team]
  summary: [iam-team]
policies:
  - name: clients-unused
    resource: apiClients
    mode: %s
    match:
      unusedFor: 90d
      scopes: {any: ["sp:scopes:all"]}
    action: disable
    grace: 7d
`

// clientGraceEnv is a clientEnv with the iam-team webhook receiver and a
// dispatcher over the store's outbox, as serve wires them.
type clientGraceEnv struct {
	*clientEnv
	hook *notifytest.Receiver
	d    *notify.Dispatcher
}

func newClientGraceEnv(t *testing.T, mode string) *clientGraceEnv {
	t.Helper()
	c := newClientEnv(t, "enforce")
	c.cfg = c.parseConfig(strings.ReplaceAll(clientGraceConfig, "%s", mode))
	hook, d := iamTeamDispatcher(t, c)
	return &clientGraceEnv{clientEnv: c, hook: hook, d: d}
}

// iamTeamDispatcher is the iam-team webhook receiver (the notify.apiClients
// receiver of the configs here) and a dispatcher over c's outbox, as serve
// wires them.
func iamTeamDispatcher(t *testing.T, c *clientEnv) (*notifytest.Receiver, *notify.Dispatcher) {
	t.Helper()
	hook := notifytest.NewReceiver(t, "/hooks/"+hookPathSecret, hookHMACKey, c.clock.Now)
	getenv := func(k string) string { return map[string]string{"HOOK_URL": hook.URL(), "HOOK_KEY": hookHMACKey}[k] }
	ns, err := notify.Build(notify.Config{Receivers: []notify.Receiver{{Name: "iam-team", Webhook: &notify.WebhookConfig{URLEnv: "HOOK_URL", HMACSecretEnv: "HOOK_KEY"}}}},
		notify.Deps{Logger: c.logger, Getenv: getenv, Clock: c.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	d, err := notify.NewDispatcher(notify.DispatcherOptions{Notifiers: ns, Outbox: c.store, Logger: c.logger, Clock: c.clock.Now, Sleep: noSleep})
	if err != nil {
		t.Fatal(err)
	}
	return hook, d
}

func (g *clientGraceEnv) engine() *janitor.Engine {
	return g.env.engine(func(o *janitor.Options) {
		o.ClientID, o.ClientState, o.ClientMarks, o.Notify = cOwn, g.store, g.store, g.d
	})
}

func (g *clientGraceEnv) runAt(at time.Time) *janitor.Result {
	g.t.Helper()
	g.clock.Set(at)
	g.sim.ResetRequests()
	res, err := g.engine().Run(context.Background(), janitor.RunInput{})
	if err != nil {
		g.t.Fatalf("run at %s: %v", at.Format(time.DateOnly), err)
	}
	return res
}

func (g *clientGraceEnv) clientMarks() map[string]state.ClientMark {
	g.t.Helper()
	ms, err := g.store.ClientMarks(context.Background())
	if err != nil {
		g.t.Fatal(err)
	}
	out := map[string]state.ClientMark{}
	for _, m := range ms {
		out[m.ClientID] = m
	}
	return out
}

// clientDigests are the client digests the receiver accepted since the last
// call.
func (g *clientGraceEnv) clientDigests() []*notify.Digest {
	var out []*notify.Digest
	for _, m := range notifytest.OfKind(g.hook.Take(), notify.KindDigest) {
		if m.Digest.Resource == apiclient.Resource {
			out = append(out, m.Digest)
		}
	}
	return out
}

func (g *clientGraceEnv) journalHasIntent(id string) bool {
	for _, r := range g.journalRecords() {
		if r.Kind == audit.KindIntent && r.Resource == apiclient.Resource && strings.EqualFold(r.TokenID, id) {
			return true
		}
	}
	return false
}

// Warn, wait, act: the first run marks the client and warns iam-team (the
// clock starts on that delivery); a run before the deadline sends nothing to
// the tenant; the run at the deadline disables the client (journaled) and
// the mark is gone.
func TestAPIClientGraceWarnWaitAct(t *testing.T) {
	g := newClientGraceEnv(t, "enforce")

	res := g.runAt(t0)
	if m := clientMutations(g.sim.Requests()); len(m) != 0 {
		t.Fatalf("run 1 sent %+v: a grace policy must warn first", m)
	}
	it := findClientItem(res.Plan, cTarget)
	if it == nil || it.Mode != plan.ModeGrace || it.Action != "disable" || it.Marked == nil || !strings.Contains(it.Reason, "grace 7d") {
		t.Fatalf("run 1 item = %+v", it)
	}
	ds := g.clientDigests()
	if len(ds) != 1 || len(ds[0].Items) != 1 || ds[0].Items[0].TokenID != cTarget || ds[0].Items[0].Policy != "clients-unused" ||
		ds[0].Items[0].Action != "disable" || ds[0].Items[0].Reason == "" {
		t.Fatalf("run 1 digests = %+v", ds)
	}
	r, err := notify.NewRenderer(notify.RenderOptions{Clock: g.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.Render(notify.DigestMessage("iam-team", "r", g.clock.Now(), *ds[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{cTarget, "exclude.tokenIds", "patjanitor enable", "API client", "not before 2026"} {
		if !strings.Contains(out.Text, want) {
			t.Errorf("the digest text lacks %q:\n%s", want, out.Text)
		}
	}
	if !strings.Contains(out.Subject, "1 API client") || strings.Contains(out.Text, "of your tokens") {
		t.Errorf("subject %q / text speak of tokens:\n%s", out.Subject, out.Text)
	}
	m, ok := g.clientMarks()[cTarget]
	if !ok || m.WarnedAt == nil || !m.WarnedAt.Equal(t0) || m.Deadline == nil || !m.Deadline.Equal(t0.Add(7*day)) || m.Action != "disable" {
		t.Fatalf("mark after the delivered warning = %+v (found %v)", m, ok)
	}

	// Six days later: still held, nothing sent to the tenant.
	res = g.runAt(t0.Add(6 * day))
	if m := clientMutations(g.sim.Requests()); len(m) != 0 {
		t.Fatalf("run 2 sent %+v before the deadline", m)
	}
	if it := findClientItem(res.Plan, cTarget); it == nil || it.Mode != plan.ModeGrace || it.Deadline == nil || !it.Deadline.Equal(t0.Add(7*day)) {
		t.Fatalf("run 2 item = %+v", it)
	}
	if g.journalHasIntent(cTarget) {
		t.Fatal("the journal holds an intent before the deadline")
	}

	// At the deadline: disabled, journaled, unmarked.
	g.hook.Take()
	res = g.runAt(t0.Add(7 * day))
	muts := clientMutations(g.sim.Requests())
	if len(muts) != 1 || muts[0].Method != "PATCH" || !strings.HasSuffix(muts[0].Path, "/"+cTarget) {
		t.Fatalf("run 3 mutations = %+v, want the disable of %s", muts, cTarget)
	}
	if got, _ := g.sim.OAuthClient(cTarget); got.IsEnabled() {
		t.Fatal("the client is still enabled after the deadline")
	}
	if len(res.Clients) != 1 || res.Clients[0].Outcome != janitor.OutcomeApplied || res.Clients[0].Item.Deadline == nil {
		t.Fatalf("run 3 results = %+v", res.Clients)
	}
	if !g.journalHasIntent(cTarget) {
		t.Fatal("no journal intent for the disable")
	}
	if _, ok := g.clientMarks()[cTarget]; ok {
		t.Fatal("the mark outlived its action")
	}
	// The run summary counts the API clients per policy and action.
	sums := notifytest.OfKind(g.hook.Take(), notify.KindSummary)
	if len(sums) != 1 {
		t.Fatalf("summaries = %+v", sums)
	}
	sum := sums[0].Summary
	var row *notify.SummaryRow
	for i := range sum.Rows {
		if sum.Rows[i].Policy == "clients-unused" && sum.Rows[i].Action == "disable" {
			row = &sum.Rows[i]
		}
	}
	if row == nil || row.Matched != 1 || row.Applied != 1 || sum.APIClients == 0 || sum.APIClients != res.Plan.APIClients.Population {
		t.Fatalf("summary rows %+v, API client population %d", sum.Rows, sum.APIClients)
	}
}

// A warning that cannot be delivered starts no clock: it waits in the
// outbox, and the deadline counts from the delivery a later run makes.
func TestAPIClientGraceFailedDeliveryDelays(t *testing.T) {
	g := newClientGraceEnv(t, "enforce")
	g.hook.Throttle(time.Hour) // longer than any backoff: deferred at once

	g.runAt(t0)
	if m := g.clientMarks()[cTarget]; m.WarnedAt != nil || m.Deadline != nil {
		t.Fatalf("an undelivered warning started the clock: %+v", m)
	}
	ob, err := g.store.Outbox(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ob = slices.DeleteFunc(ob, func(e state.OutboxEntry) bool { return e.Kind != string(notify.KindDigest) })
	if len(ob) != 1 || len(ob[0].ClientMarks) != 1 || !strings.EqualFold(ob[0].ClientMarks[0].ClientID, cTarget) {
		t.Fatalf("outbox = %+v, want the client digest waiting", ob)
	}

	// Eight days later (past the 7 days counted from the marking) the
	// receiver is back: the digest is delivered now, and nothing is acted on.
	g.hook.Fail(0)
	g.runAt(t0.Add(8 * day))
	if m := clientMutations(g.sim.Requests()); len(m) != 0 {
		t.Fatalf("acted %+v although the warning was only delivered now", m)
	}
	m := g.clientMarks()[cTarget]
	if m.WarnedAt == nil || !m.WarnedAt.Equal(t0.Add(8*day)) || !m.Deadline.Equal(t0.Add(15*day)) {
		t.Fatalf("mark = %+v, want the clock started at the delivery", m)
	}
	if len(g.clientDigests()) != 1 {
		t.Fatal("the waiting digest was not delivered")
	}

	g.runAt(t0.Add(15*day - time.Second))
	if m := clientMutations(g.sim.Requests()); len(m) != 0 {
		t.Fatalf("acted %+v before the deadline", m)
	}
	g.runAt(t0.Add(15 * day))
	if m := clientMutations(g.sim.Requests()); len(m) != 1 {
		t.Fatalf("mutations at the deadline = %+v", m)
	}
}

// A client used again stops matching: the next run unmarks it and never
// acts on it, also after the old deadline.
func TestAPIClientGraceUsedAgainIsUnmarked(t *testing.T) {
	g := newClientGraceEnv(t, "enforce")
	g.runAt(t0)
	if _, ok := g.clientMarks()[cTarget]; !ok {
		t.Fatal("not marked")
	}
	c, _ := g.sim.OAuthClient(cTarget)
	used := t0.Add(2 * day)
	c.LastUsed = &used
	g.sim.AddOAuthClient(c, "")

	res := g.runAt(t0.Add(8 * day))
	if m := clientMutations(g.sim.Requests()); len(m) != 0 {
		t.Fatalf("acted %+v on a client used again", m)
	}
	if it := findClientItem(res.Plan, cTarget); it != nil {
		t.Fatalf("the used client is still an item: %+v", it)
	}
	if m, ok := g.clientMarks()[cTarget]; ok {
		t.Fatalf("still marked: %+v", m)
	}
	// Unused again for long enough, it starts over with a new warning.
	old := t0.Add(-200 * day)
	c.LastUsed = &old
	g.sim.AddOAuthClient(c, "")
	g.hook.Take()
	g.runAt(t0.Add(9 * day))
	if m := clientMutations(g.sim.Requests()); len(m) != 0 {
		t.Fatalf("acted %+v on the old warning", m)
	}
	if m := g.clientMarks()[cTarget]; m.WarnedAt == nil || !m.WarnedAt.Equal(t0.Add(9*day)) {
		t.Fatalf("mark = %+v, want a new warning", m)
	}
}

// A report-mode policy with grace marks nothing and warns nobody.
func TestAPIClientGraceReportModeMarksNothing(t *testing.T) {
	g := newClientGraceEnv(t, "report")
	for _, at := range []time.Time{t0, t0.Add(30 * day)} {
		res := g.runAt(at)
		if m := clientMutations(g.sim.Requests()); len(m) != 0 {
			t.Fatalf("report mode sent %+v", m)
		}
		if it := findClientItem(res.Plan, cTarget); it == nil || it.Mode != plan.ModeReport || it.Marked != nil {
			t.Fatalf("item = %+v", it)
		}
	}
	if ms := g.clientMarks(); len(ms) != 0 {
		t.Fatalf("report mode marked %+v", ms)
	}
	if ds := g.clientDigests(); len(ds) != 0 {
		t.Fatalf("report mode warned: %+v", ds)
	}
}

// A dry run (plan --notifications-dir) renders the digest it would send,
// and sends nothing, writes no mark and changes no client.
func TestAPIClientGraceDryRunSendsAndWritesNothing(t *testing.T) {
	g := newClientGraceEnv(t, "enforce")
	pl, err := g.engine().Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var digests []*notify.Message
	for _, m := range g.engine().DryRunMessages(pl, nil) {
		if m.Kind == notify.KindDigest && m.Digest.Resource == apiclient.Resource {
			digests = append(digests, m)
		}
	}
	if len(digests) != 1 || digests[0].Receiver != "iam-team" || len(digests[0].Digest.Items) != 1 || digests[0].Digest.Items[0].TokenID != cTarget {
		t.Fatalf("dry-run digests = %+v", digests)
	}
	if n := g.hook.Attempts(); n != 0 {
		t.Fatalf("a dry run made %d deliveries", n)
	}
	if ms := g.clientMarks(); len(ms) != 0 {
		t.Fatalf("a dry run wrote marks %+v", ms)
	}
	if ob, _ := g.store.Outbox(context.Background()); len(ob) != 0 { // summary included: nothing is queued
		t.Fatalf("a dry run queued %+v", ob)
	}
	if m := idnsim.Mutations(g.sim.Requests()); len(m) != 0 {
		t.Fatalf("a dry run sent %+v", m)
	}
}

// A schedule of apiClients policies only, with maxActionsPercent set, does
// not list the tokens: no token policy, no token share to count.
func TestAPIClientOnlyScheduleListsNoTokens(t *testing.T) {
	c := newClientEnv(t, "enforce")
	c.cfg = c.parseConfig(`limits: {maxActionsPerRun: 25, maxActionsPercent: 50}
policies:
  - name: clients-unused
    resource: apiClients
    mode: report
    match: {unusedFor: 90d}
    action: report
`)
	res := c.run()
	// The credential check lists the caller's own tokens (owner-id=me);
	// nothing else of the tokens is listed.
	for _, r := range idnsim.ByOperation(c.sim.Requests(), idnsim.OpListTokens) {
		if r.Query.Get("owner-id") != "me" {
			t.Fatalf("listed the tokens (%q) for a config without token policies", r.RawQuery)
		}
	}
	if len(idnsim.ByOperation(c.sim.Requests(), idnsim.OpListOAuthClients)) == 0 || findClientItem(res.Plan, cTarget) == nil {
		t.Fatal("the API clients were not listed and decided")
	}
}

// A client used again while its warning still waits in the outbox is
// unmarked, and the waiting digest is withdrawn: delivered later, it would
// warn about an action that will not happen.
func TestAPIClientGraceUnmarkedWithdrawsUndeliveredDigest(t *testing.T) {
	g := newClientGraceEnv(t, "enforce")
	g.hook.Throttle(time.Hour)
	g.runAt(t0)
	c, _ := g.sim.OAuthClient(cTarget)
	used := t0.Add(day)
	c.LastUsed = &used
	g.sim.AddOAuthClient(c, "")

	g.hook.Fail(0)
	g.runAt(t0.Add(2 * day))
	if ds := g.clientDigests(); len(ds) != 0 {
		t.Fatalf("a withdrawn warning was delivered: %+v", ds)
	}
	ob, err := g.store.Outbox(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ob {
		if len(e.ClientMarks) > 0 {
			t.Fatalf("the digest still waits: %+v", e)
		}
	}
	if ms := g.clientMarks(); len(ms) != 0 {
		t.Fatalf("marks = %+v", ms)
	}
}

// A delete policy with grace warns before each step: the disable after the
// first grace, then (disabledFor later) a new warning about the delete, and
// the delete only after that warning's grace. The receivers were never told
// about a delete before it is warned about.
func TestAPIClientGraceDeleteWarnsBeforeEachStep(t *testing.T) {
	g := newClientGraceEnv(t, "enforce")
	g.cfg = g.parseConfig(strings.ReplaceAll(strings.ReplaceAll(clientGraceConfig, "%s", "enforce"),
		"    action: disable\n", "    action: delete\n    disabledFor: 14d\n"))

	g.runAt(t0)
	if m := g.clientMarks()[cTarget]; m.Action != "disable" || m.WarnedAt == nil {
		t.Fatalf("first mark = %+v", m)
	}
	g.runAt(t0.Add(7 * day))
	if m := clientMutations(g.sim.Requests()); len(m) != 1 || m[0].Method != "PATCH" {
		t.Fatalf("at the first deadline: %+v, want the disable", m)
	}
	if ms := g.clientMarks(); len(ms) != 0 {
		t.Fatalf("marks after the disable = %+v", ms)
	}
	g.hook.Take()
	// disabledFor has passed: the delete is warned about first, not done.
	res := g.runAt(t0.Add(21 * day))
	if m := clientMutations(g.sim.Requests()); len(m) != 0 {
		t.Fatalf("deleted without a warning about the delete: %+v", m)
	}
	if it := findClientItem(res.Plan, cTarget); it == nil || it.Mode != plan.ModeGrace || it.Action != "delete" {
		t.Fatalf("item = %+v", it)
	}
	ds := g.clientDigests()
	if len(ds) != 1 || ds[0].Items[0].Action != "delete" {
		t.Fatalf("digests = %+v", ds)
	}
	g.runAt(t0.Add(28*day - time.Second))
	if m := clientMutations(g.sim.Requests()); len(m) != 0 {
		t.Fatalf("deleted before the second deadline: %+v", m)
	}
	g.runAt(t0.Add(28 * day))
	if m := clientMutations(g.sim.Requests()); len(m) != 1 || m[0].Method != "DELETE" {
		t.Fatalf("at the second deadline: %+v, want the delete", m)
	}
	if _, ok := g.sim.OAuthClient(cTarget); ok {
		t.Fatal("the client is still there")
	}
}

// A run whose API client listing fails leaves the client marks alone (an
// absent client is no evidence that it stopped matching) and acts on no
// client, even past the deadline; the next complete run acts.
func TestHostileAPIClientListingFailureKeepsClientMarks(t *testing.T) {
	g := newClientGraceEnv(t, "enforce")
	g.runAt(t0)
	before := g.clientMarks()[cTarget]
	g.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListOAuthClients, Status: 500, Times: 100})
	g.clock.Set(t0.Add(8 * day))
	g.sim.ResetRequests()
	res, err := g.engine().Run(context.Background(), janitor.RunInput{})
	if err == nil {
		t.Fatal("a run with a failed API client listing succeeded")
	}
	if m := clientMutations(g.sim.Requests()); len(m) != 0 {
		t.Fatalf("acted on incomplete data: %+v", m)
	}
	if res.Plan.APIClients == nil || res.Plan.APIClients.Error == "" {
		t.Fatalf("the plan does not say the API client data was incomplete: %+v", res.Plan.APIClients)
	}
	after, ok := g.clientMarks()[cTarget]
	if !ok || !after.MarkedAt.Equal(before.MarkedAt) || !after.WarnedAt.Equal(*before.WarnedAt) {
		t.Fatalf("mark after the failed listing = %+v (found %v), before %+v", after, ok, before)
	}
	g.sim.ClearFaults()
	g.runAt(t0.Add(9 * day))
	if m := clientMutations(g.sim.Requests()); len(m) != 1 {
		t.Fatalf("the complete run after it: %+v", m)
	}
}

// apply PLAN of a reviewed plan with a held API client marks it and warns
// the receivers (the reviewer approved the warning), acts on nothing; a plan
// made after the deadline holds the due disable, and its apply carries it
// out against a fresh listing. A saved plan's grace item round-trips.
func TestAPIClientGraceApplyPlan(t *testing.T) {
	g := newClientGraceEnv(t, "enforce")
	pl, err := g.engine().Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	saved := roundTrip(t, pl.Plan)
	if it := findClientItem(saved, cTarget); it == nil || it.Mode != plan.ModeGrace || it.Marked == nil {
		t.Fatalf("saved item = %+v", it)
	}
	if ms := g.clientMarks(); len(ms) != 0 {
		t.Fatalf("plan wrote marks %+v", ms)
	}
	if _, err := g.engine().ApplyPlan(context.Background(), saved, janitor.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if m := clientMutations(g.sim.Requests()); len(m) != 0 {
		t.Fatalf("apply of a held item sent %+v", m)
	}
	if m := g.clientMarks()[cTarget]; m.WarnedAt == nil || !m.WarnedAt.Equal(t0) {
		t.Fatalf("mark after apply = %+v", m)
	}
	if len(g.clientDigests()) != 1 {
		t.Fatal("apply did not warn the receivers")
	}

	g.clock.Set(t0.Add(7 * day))
	pl, err = g.engine().Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	saved = roundTrip(t, pl.Plan)
	if it := findClientItem(saved, cTarget); it == nil || it.Mode != plan.ModeEnforce || it.Deadline == nil || !it.Deadline.Equal(t0.Add(7*day)) {
		t.Fatalf("due item = %+v", it)
	}
	g.sim.ResetRequests()
	res, err := g.engine().ApplyPlan(context.Background(), saved, janitor.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m := clientMutations(g.sim.Requests()); len(m) != 1 || len(res.Clients) != 1 || res.Clients[0].Outcome != janitor.OutcomeApplied {
		t.Fatalf("apply of the due item: %+v / %+v", m, res.Clients)
	}
	if ms := g.clientMarks(); len(ms) != 0 {
		t.Fatalf("marks after the action = %+v", ms)
	}
}

// pending_actions{policy} counts the API client marks of a grace policy.
func TestAPIClientGracePendingMetric(t *testing.T) {
	g := newClientGraceEnv(t, "enforce")
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	run := func(at time.Time) {
		t.Helper()
		g.clock.Set(at)
		if _, err := g.env.engine(func(o *janitor.Options) {
			o.ClientID, o.ClientState, o.ClientMarks, o.Notify, o.Metrics = cOwn, g.store, g.store, g.d, m
		}).Run(context.Background(), janitor.RunInput{}); err != nil {
			t.Fatal(err)
		}
	}
	pending := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "patjanitor_pending_actions" {
				continue
			}
			for _, s := range mf.GetMetric() {
				for _, l := range s.GetLabel() {
					if l.GetName() == "policy" && l.GetValue() == "clients-unused" {
						return s.GetGauge().GetValue()
					}
				}
			}
		}
		return -1
	}
	run(t0)
	if got := pending(); got != 1 {
		t.Fatalf("pending_actions{clients-unused} = %v after marking, want 1", got)
	}
	run(t0.Add(7 * day))
	if got := pending(); got != 0 {
		t.Fatalf("pending_actions{clients-unused} = %v after the action, want 0", got)
	}
}

// Newly marked clients count against the API client guardrails, as newly
// marked tokens do: a grace policy that suddenly matches more clients than
// maxActionsPerRun marks none of them and warns nobody.
func TestAPIClientGraceNewMarksCountAgainstGuardrails(t *testing.T) {
	g := newClientGraceEnv(t, "enforce")
	g.cfg = g.parseConfig(strings.Replace(strings.ReplaceAll(clientGraceConfig, "%s", "enforce"), "maxActionsPerRun: 25", "maxActionsPerRun: 1", 1))
	c, _ := g.sim.OAuthClient(cTarget)
	c.ID, c.Name = "0f1e2d3c-0000-4000-8000-000000000009", "legacy-2"
	g.sim.AddOAuthClient(c, "")
	res, err := g.engine().Run(context.Background(), janitor.RunInput{})
	if err == nil || !strings.Contains(err.Error(), "2 clients newly marked") {
		t.Fatalf("run: %v", err)
	}
	if tr := res.Plan.APIClients.Tripped(); len(tr) != 1 || tr[0].Wanted != 2 {
		t.Fatalf("tripped = %+v", tr)
	}
	if ms := g.clientMarks(); len(ms) != 0 {
		t.Fatalf("a tripped guardrail let marks through: %+v", ms)
	}
	if ds := g.clientDigests(); len(ds) != 0 {
		t.Fatalf("a tripped guardrail let a warning through: %+v", ds)
	}
}

// A run of one schedule that unmarks its client, while a client of another
// schedule's policy still waits for its undelivered warning, replaces the
// waiting digest with one that lists only what still waits (rather than
// withdrawing a warning that is still due to be given).
func TestAPIClientGraceOtherScheduleKeepsItsWarning(t *testing.T) {
	g := newClientGraceEnv(t, "enforce")
	full := g.parseConfig(strings.ReplaceAll(clientGraceConfig, "%s", "enforce") + `  - name: clients-in-use
    resource: apiClients
    mode: enforce
    schedule: "@weekly"
    match: {nameMatches: "^in-use$"}
    action: disable
    grace: 7d
`)
	g.cfg = full
	g.hook.Throttle(time.Hour)
	g.runAt(t0)
	if ms := g.clientMarks(); len(ms) != 2 {
		t.Fatalf("marks = %+v, want both clients", ms)
	}
	// The second policy's client is renamed out of it; only that schedule
	// runs, with the receiver back.
	c, _ := g.sim.OAuthClient(cRecent)
	c.Name = "renamed"
	g.sim.AddOAuthClient(c, "")
	g.hook.Fail(0)
	g.cfg = full.Only("clients-in-use")
	g.runAt(t0.Add(day))
	ds := g.clientDigests()
	if len(ds) != 1 || len(ds[0].Items) != 1 || ds[0].Items[0].TokenID != cTarget {
		t.Fatalf("digests = %+v, want one listing only %s", ds, cTarget)
	}
	ms := g.clientMarks()
	if _, ok := ms[cRecent]; ok || len(ms) != 1 || ms[cTarget].WarnedAt == nil || !ms[cTarget].WarnedAt.Equal(t0.Add(day)) {
		t.Fatalf("marks = %+v", ms)
	}
}
