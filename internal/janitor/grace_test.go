package janitor_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/metrics"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/notify/notifytest"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/state"
)

// The secrets of the test receiver: none may show up in logs, errors, the
// plan, the journal or the metrics.
const (
	hookPathSecret = "T0KEN-in-the-url-path-9f8e7d"
	hookHMACKey    = "hmac-key-0123456789abcdef-secret"
)

// graceConfig is one enforce-mode delete policy with a 14-day grace period,
// and a webhook receiver that gets everything.
const graceConfig = noLimits + `owners:
  fallbackEmail: iam@acme.example
notify:
  receivers:
    - name: hook
      webhook: {urlEnv: HOOK_URL, hmacSecretEnv: HOOK_KEY}
  owners: hook
  summary: [hook]
  failures: [hook]
policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
    grace: 14d
`

// graceEnv is env plus a state store, the webhook receiver and metrics: what
// `serve` wires, with the test clock everywhere.
type graceEnv struct {
	*env
	hook    *notifytest.Receiver
	stPath  string
	st      *state.Store
	reg     *prometheus.Registry
	metrics *metrics.Metrics
}

func newGraceEnv(t *testing.T, cfg string) *graceEnv { return newGraceEnvTB(t, cfg) }

func newGraceEnvTB(t testing.TB, cfg string) *graceEnv { return newGraceEnvOpts(t, cfg, envOpts{}) }

func newGraceEnvOpts(t testing.TB, cfg string, o envOpts) *graceEnv {
	g := &graceEnv{env: newEnv(t, cfg, o)}
	g.hook = notifytest.NewReceiver(t, "/hooks/"+hookPathSecret, hookHMACKey, g.clock.Now)
	g.stPath = filepath.Join(t.TempDir(), state.FileName)
	g.reg = prometheus.NewRegistry()
	g.metrics = metrics.New(g.reg)
	g.openStore()
	return g
}

// openStore opens the state store; called again, it is a restart.
func (g *graceEnv) openStore() {
	g.t.Helper()
	if g.st != nil {
		_ = g.st.Close()
	}
	st, err := state.Open(g.stPath, state.Options{Clock: g.clock.Now})
	if err != nil {
		g.t.Fatalf("open state: %v", err)
	}
	g.t.Cleanup(func() { _ = st.Close() })
	g.st = st
}

// engine builds the engine as a run of `serve` does: a dispatcher over the
// store's outbox, the store as marks and snoozes.
func (g *graceEnv) engine(mod ...func(*janitor.Options)) *janitor.Engine {
	g.t.Helper()
	getenv := func(k string) string {
		return map[string]string{"HOOK_URL": g.hook.URL(), "HOOK_KEY": hookHMACKey}[k]
	}
	ncfg := notify.Config{
		Receivers: []notify.Receiver{{Name: "hook", Webhook: &notify.WebhookConfig{URLEnv: "HOOK_URL", HMACSecretEnv: "HOOK_KEY"}}},
		Owners:    "hook", Summary: []string{"hook"}, Failures: []string{"hook"},
	}
	ns, err := notify.Build(ncfg, notify.Deps{Logger: g.logger, Getenv: getenv, Clock: g.clock.Now})
	if err != nil {
		g.t.Fatalf("notify.Build: %v", err)
	}
	d, err := notify.NewDispatcher(notify.DispatcherOptions{
		Notifiers: ns, Outbox: g.st, Logger: g.logger, Metrics: g.metrics, Clock: g.clock.Now, Sleep: noSleep,
	})
	if err != nil {
		g.t.Fatal(err)
	}
	return g.env.engine(append([]func(*janitor.Options){func(o *janitor.Options) {
		o.Marks, o.Snoozes, o.Notify, o.Metrics = g.st, g.st, d, g.metrics
	}}, mod...)...)
}

// run runs the engine at the clock's time and fails the test on an error.
func (g *graceEnv) run() *janitor.Result {
	g.t.Helper()
	res, err := g.engine().Run(context.Background(), janitor.RunInput{})
	if err != nil {
		g.t.Fatalf("Run at %s: %v", g.clock.Now().Format(time.DateOnly), err)
	}
	return res
}

func (g *graceEnv) marks() map[string]state.Mark {
	g.t.Helper()
	ms, err := g.st.Marks(context.Background())
	if err != nil {
		g.t.Fatal(err)
	}
	out := map[string]state.Mark{}
	for _, m := range ms {
		out[m.TokenID] = m
	}
	return out
}

func (g *graceEnv) outbox() []state.OutboxEntry {
	g.t.Helper()
	ob, err := g.st.Outbox(context.Background())
	if err != nil {
		g.t.Fatal(err)
	}
	return ob
}

// gauge reads one series of a gauge from the registry (-1 when absent).
func (g *graceEnv) gauge(name, label, value string) float64 {
	g.t.Helper()
	fams, err := g.reg.Gather()
	if err != nil {
		g.t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

func itemModes(p *plan.Plan) map[string]string {
	out := map[string]string{}
	for _, it := range p.Items.All() {
		out[it.TokenID] = it.Mode
	}
	return out
}

func digestTokens(d *notify.Digest) []string {
	var ids []string
	for _, it := range d.Items {
		ids = append(ids, it.TokenID)
	}
	slices.Sort(ids)
	return ids
}

func at(days int) time.Time { return t0.Add(time.Duration(days) * day) }

// The whole workflow: warn, wait, act after the deadline. A token used during
// the grace period is unmarked and survives.
func TestGraceWarnWaitAct(t *testing.T) {
	g := newGraceEnv(t, graceConfig)
	g.addStale("g", 3, 2) // g-000, g-001 of g-owner-0; g-002 of g-owner-1

	// Day 0: everything is marked, each owner gets one digest, nothing is
	// deleted, and the clocks start on delivery.
	res := g.run()
	g.requireNoMutations()
	if got := itemModes(res.Plan); got["g-000"] != plan.ModeGrace || got["g-001"] != plan.ModeGrace || got["g-002"] != plan.ModeGrace {
		t.Fatalf("day 0 modes %v, want grace for all", got)
	}
	msgs := g.hook.Take()
	digests := notifytest.OfKind(msgs, notify.KindDigest)
	if len(digests) != 2 {
		t.Fatalf("day 0: %d digests, want one per owner (2): %+v", len(digests), msgs)
	}
	for _, d := range digests {
		want := map[string][]string{"g-owner-0": {"g-000", "g-001"}, "g-owner-1": {"g-002"}}[d.Digest.Owner.ID]
		if !slices.Equal(digestTokens(d.Digest), want) {
			t.Errorf("digest for %s lists %v, want %v", d.Digest.Owner.ID, digestTokens(d.Digest), want)
		}
		if d.Digest.Owner.Email != "iam@acme.example" || !d.Digest.Owner.Fallback {
			t.Errorf("digest owner %+v: want the fallback address (no owner lookup)", d.Digest.Owner)
		}
		for _, it := range d.Digest.Items {
			if it.Policy != "unused-90d" || it.Action != "delete" || time.Duration(it.Grace) != 14*day || it.Reason == "" {
				t.Errorf("digest item %+v", it)
			}
		}
	}
	if n := len(notifytest.OfKind(msgs, notify.KindSummary)); n != 1 {
		t.Errorf("day 0: %d summaries, want 1", n)
	}
	marks := g.marks()
	for _, id := range []string{"g-000", "g-001", "g-002"} {
		m, ok := marks[id]
		if !ok || m.WarnedAt == nil || !m.WarnedAt.Equal(t0) || !m.Deadline.Equal(at(14)) {
			t.Fatalf("mark %s = %+v (found %v), want warned at day 0, deadline day 14", id, m, ok)
		}
	}
	if v := g.gauge("patjanitor_pending_actions", "policy", "unused-90d"); v != 3 {
		t.Errorf("pending_actions = %v, want 3", v)
	}

	// Day 6: the same marks; the digest is not repeated within the
	// interval (a week), and the plan shows the deadline.
	g.clock.Set(at(6))
	res = g.run()
	g.requireNoMutations()
	if n := len(notifytest.OfKind(g.hook.Take(), notify.KindDigest)); n != 0 {
		t.Fatalf("day 6: %d digests, want none (same marks as delivered on day 0)", n)
	}
	if res.Plan.Items.Len() != 3 {
		t.Fatalf("day 6: %d plan items, want the 3 marked tokens", res.Plan.Items.Len())
	}
	for _, it := range res.Plan.Items.All() {
		if it.Mode != plan.ModeGrace || it.Deadline == nil || !it.Deadline.Equal(at(14)) {
			t.Fatalf("day 6 item %s: mode %s deadline %v, want grace until day 14", it.TokenID, it.Mode, it.Deadline)
		}
	}
	// Day 7: a week after the warning, the owners get a reminder with the
	// deadlines, which stay where the first delivery put them.
	g.clock.Set(at(7))
	res = g.run()
	g.requireNoMutations()
	reminders := notifytest.OfKind(g.hook.Take(), notify.KindDigest)
	if len(reminders) != 2 {
		t.Fatalf("day 7: %d digests, want a reminder per owner (2)", len(reminders))
	}
	for _, d := range reminders {
		for _, it := range d.Digest.Items {
			if it.Deadline == nil || !it.Deadline.Equal(at(14)) {
				t.Fatalf("reminder item %+v, want deadline day 14", it)
			}
		}
	}
	if m := g.marks()["g-000"]; !m.WarnedAt.Equal(t0) {
		t.Fatalf("the reminder moved the clock: %+v", m)
	}
	for _, it := range res.Plan.Items.All() {
		if it.Mode != plan.ModeGrace || it.Deadline == nil || !it.Deadline.Equal(at(14)) || !strings.Contains(it.Reason, "nothing is done before") {
			t.Fatalf("day 7 item %s: mode %s deadline %v reason %q", it.TokenID, it.Mode, it.Deadline, it.Reason)
		}
	}

	// Day 8: g-001 is used again.
	g.sim.Touch("g-001", at(8))

	// Day 13, one day short of the deadline: nothing yet; g-001 unmarked.
	g.clock.Set(at(13))
	g.run()
	g.requireNoMutations()
	if _, ok := g.marks()["g-001"]; ok {
		t.Fatal("g-001 was used during the grace period and is still marked")
	}
	g.hook.Take()

	// Day 14: the deadline has passed for g-000 and g-002; g-001 survives.
	g.clock.Set(at(14))
	res = g.run()
	if del := deletedIDs(g.mutations()); len(del) != 2 || del["g-000"] != 1 || del["g-002"] != 1 {
		t.Fatalf("day 14 deleted %v, want g-000 and g-002 once each", del)
	}
	if !g.present("g-001") {
		t.Fatal("g-001 was deleted although it was used during the grace period")
	}
	for _, it := range res.Plan.Items.All() {
		if it.Mode != plan.ModeEnforce || it.Marked == nil || it.Deadline == nil || !strings.Contains(it.Reason, "deadline 2026-12-10T03:00:00.000Z passed") {
			t.Fatalf("day 14 item %s: mode %s marked %v deadline %v reason %q", it.TokenID, it.Mode, it.Marked, it.Deadline, it.Reason)
		}
	}
	if len(g.marks()) != 0 {
		t.Fatalf("marks after the actions: %v, want none", g.marks())
	}
	if v := g.gauge("patjanitor_pending_actions", "policy", "unused-90d"); v != 0 {
		t.Errorf("pending_actions after the actions = %v, want 0", v)
	}
	notices := notifytest.OfKind(g.hook.Take(), notify.KindNotice)
	if len(notices) != 2 {
		t.Fatalf("day 14: %d notices, want one per owner (2)", len(notices))
	}
	for _, n := range notices {
		if len(n.Notice.Items) != 1 || n.Notice.Items[0].Outcome != notify.OutcomeApplied {
			t.Errorf("notice for %s: %+v", n.Notice.Owner.ID, n.Notice.Items)
		}
	}
	// The deletes went through the journal like any other.
	intents := 0
	for _, r := range g.journalRecords() {
		if r.Kind == "intent" {
			intents++
		}
	}
	if intents != 2 {
		t.Fatalf("journal intents = %d, want 2", intents)
	}
}

// A failed delivery starts no clock: the digest waits in the outbox, the
// deadline counts from the delivery that worked. A restart in between keeps
// the marks and the outbox.
func TestGraceFailedDeliveryDelaysDeadlineAcrossRestart(t *testing.T) {
	g := newGraceEnv(t, graceConfig)
	g.addStale("f", 1, 1)
	g.hook.Fail(http.StatusInternalServerError)

	res := g.run()
	g.requireNoMutations()
	if g.hook.Attempts() == 0 {
		t.Fatal("no delivery was attempted")
	}
	m := g.marks()["f-000"]
	if m.WarnedAt != nil || m.Deadline != nil || !m.MarkedAt.Equal(t0) {
		t.Fatalf("mark after a failed delivery = %+v, want marked at day 0 with no clock", m)
	}
	if res.Notified.Count(notify.Deferred) == 0 {
		t.Fatalf("notifications %+v, want deferred ones", res.Notified.Results)
	}
	if ob := g.outbox(); !slices.ContainsFunc(ob, func(e state.OutboxEntry) bool { return e.Kind == "digest" && e.OwnerID == "f-owner-0" }) {
		t.Fatalf("outbox %+v: the digest is not waiting", ob)
	}

	// A restart: the store is closed and opened again.
	g.openStore()
	if m2 := g.marks()["f-000"]; !m2.MarkedAt.Equal(t0) || m2.WarnedAt != nil {
		t.Fatalf("mark after restart = %+v", m2)
	}
	if len(g.outbox()) == 0 {
		t.Fatal("the outbox is empty after a restart")
	}

	// Day 3: the receiver works again; the clock starts now.
	g.hook.Fail(0)
	g.clock.Set(at(3))
	g.run()
	g.requireNoMutations()
	if n := len(notifytest.OfKind(g.hook.Take(), notify.KindDigest)); n != 1 {
		t.Fatalf("day 3: %d digests delivered, want 1 (the waiting one, superseded by this run's)", n)
	}
	m = g.marks()["f-000"]
	if m.WarnedAt == nil || !m.WarnedAt.Equal(at(3)) || !m.Deadline.Equal(at(17)) || !m.MarkedAt.Equal(t0) {
		t.Fatalf("mark after delivery = %+v, want warned day 3, deadline day 17", m)
	}
	for _, e := range g.outbox() {
		if e.Kind == "digest" {
			t.Fatalf("digest still in the outbox after delivery: %+v", e)
		}
	}

	// Day 14 (the deadline had the first delivery worked): nothing.
	g.clock.Set(at(14))
	g.run()
	g.requireNoMutations()

	// Day 17: due.
	g.clock.Set(at(17))
	g.run()
	if del := deletedIDs(g.mutations()); del["f-000"] != 1 {
		t.Fatalf("day 17 deleted %v, want f-000", del)
	}
}

// A digest that never arrives (the receiver answers 400 each time) never
// starts a clock, so the token is never acted on, however late it gets.
func TestGraceUndeliverableWarningNeverActs(t *testing.T) {
	g := newGraceEnv(t, graceConfig)
	g.addStale("u", 1, 1)
	g.hook.Fail(http.StatusBadRequest)
	for _, d := range []int{0, 14, 30, 60} {
		g.clock.Set(at(d))
		g.run()
	}
	g.requireNoMutations()
	if m := g.marks()["u-000"]; m.WarnedAt != nil {
		t.Fatalf("mark %+v: a clock started without a delivered warning", m)
	}
}

// A dry run (Plan, and the messages plan --notifications-dir renders) marks
// nothing and sends nothing.
func TestGraceDryRunSendsNothing(t *testing.T) {
	g := newGraceEnv(t, graceConfig)
	g.addStale("d", 2, 1)
	eng := g.engine()
	pl, err := eng.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	msgs := eng.DryRunMessages(pl, nil)
	kinds := map[notify.Kind]int{}
	for _, m := range msgs {
		kinds[m.Kind]++
	}
	if kinds[notify.KindDigest] != 2 || kinds[notify.KindSummary] != 1 || kinds[notify.KindNotice] != 0 {
		t.Fatalf("dry-run messages by kind %v, want 2 digests and 1 summary", kinds)
	}
	if n := g.hook.Attempts(); n != 0 {
		t.Fatalf("a dry run sent %d webhook requests", n)
	}
	if len(g.marks()) != 0 || len(g.outbox()) != 0 {
		t.Fatalf("a dry run wrote state: marks %v, outbox %v", g.marks(), g.outbox())
	}
	g.requireNoMutations()
}

// A tripped guardrail starts no clock and marks nothing; the failure alert
// goes out. Incomplete data leaves the existing marks alone.
func TestGraceBlockedRunsKeepMarks(t *testing.T) {
	g := newGraceEnv(t, graceConfig)
	g.addStale("b", 2, 1)
	g.run() // marks and warns b-000, b-001
	g.hook.Take()

	// Past the deadline with a limit of 1 action: blocked.
	g.cfg.Limits.MaxActionsPerRun = 1
	g.clock.Set(at(14))
	_, err := g.engine().Run(context.Background(), janitor.RunInput{})
	if err == nil || !strings.Contains(err.Error(), "guardrail") {
		t.Fatalf("Run: %v, want a guardrail error", err)
	}
	g.requireNoMutations()
	if len(g.marks()) != 2 {
		t.Fatalf("marks after a blocked run: %v", g.marks())
	}
	msgs := g.hook.Take()
	if f := notifytest.OfKind(msgs, notify.KindFailure); len(f) != 1 || f[0].Failure.Kind != notify.FailureGuardrail {
		t.Fatalf("failure alerts %+v, want one guardrail alert", f)
	}

	// A failing listing: incomplete, the marks stay (an absent token is no
	// evidence that it stopped matching).
	g.cfg.Limits.MaxActionsPerRun = 0
	g.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, Status: http.StatusBadRequest})
	if _, err := g.engine().Run(context.Background(), janitor.RunInput{}); err == nil {
		t.Fatal("Run with a failing listing succeeded")
	}
	g.requireNoMutations()
	if len(g.marks()) != 2 {
		t.Fatalf("marks after an incomplete run: %v", g.marks())
	}
	if f := notifytest.OfKind(g.hook.Take(), notify.KindFailure); len(f) != 1 || f[0].Failure.Kind != notify.FailureRun {
		t.Fatalf("failure alerts %+v, want one run-failed alert", f)
	}
}

// Changing the policy's action restarts the grace period: the owner was
// warned about a delete, not a patch.
func TestGraceActionChangeRestartsClock(t *testing.T) {
	g := newGraceEnv(t, graceConfig)
	g.addStale("c", 1, 1)
	g.run()
	g.clock.Set(at(14))
	expireCfg := strings.Replace(graceConfig, "    action: delete\n", "    action: expire\n    expireIn: 7d\n", 1)
	g.cfg = g.parseConfig(expireCfg)
	res := g.run()
	g.requireNoMutations()
	if res.Plan.Items.At(0).Mode != plan.ModeGrace {
		t.Fatalf("item %+v: acted on a warning about another action", res.Plan.Items.At(0))
	}
	m := g.marks()["c-000"]
	if m.Action != "expire" || !m.MarkedAt.Equal(at(14)) || m.WarnedAt == nil || !m.WarnedAt.Equal(at(14)) {
		t.Fatalf("mark %+v, want a new expire mark warned on day 14", m)
	}
}

// apply PLAN marks the plan's grace items and warns their owners, and acts on
// its due items, deleting their marks.
func TestGraceApplyPlan(t *testing.T) {
	g := newGraceEnv(t, graceConfig)
	g.addStale("a", 1, 1)
	planApply(t, g)
	g.requireNoMutations()
	if m := g.marks()["a-000"]; m.WarnedAt == nil {
		t.Fatalf("apply PLAN did not mark and warn: %+v", m)
	}
	if n := len(notifytest.OfKind(g.hook.Take(), notify.KindDigest)); n != 1 {
		t.Fatalf("%d digests, want 1", n)
	}

	g.clock.Set(at(14))
	eng := g.engine()
	pl, err := eng.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Plan.Pending()) != 1 {
		t.Fatalf("day 14 plan has %d pending actions, want 1", len(pl.Plan.Pending()))
	}
	res, err := eng.ApplyPlan(context.Background(), pl.Plan, janitor.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if g.present("a-000") {
		t.Fatalf("a-000 not deleted: %+v", res.Items)
	}
	if len(g.marks()) != 0 {
		t.Fatalf("marks %v after the action", g.marks())
	}
}

// No receiver secret (the URL, which carries a token in its path, or the HMAC
// key) appears in the logs, the errors, the plan, the journal, the outbox
// errors or the metrics, also when deliveries fail.
func TestGraceNoSecretsAnywhere(t *testing.T) {
	g := newGraceEnv(t, graceConfig)
	g.addStale("s", 2, 1)
	var texts []string
	g.hook.Fail(http.StatusInternalServerError)
	res := g.run()
	for _, r := range res.Notified.Results {
		if r.Err != nil {
			texts = append(texts, r.Err.Error())
		}
	}
	for _, e := range g.outbox() {
		texts = append(texts, e.LastError)
	}
	// A receiver that is not there at all: a connection error quotes the URL
	// in net/http's words.
	g.hook.Close()
	g.clock.Set(at(1))
	res = g.run()
	for _, r := range res.Notified.Results {
		if r.Err != nil {
			texts = append(texts, r.Err.Error())
		}
	}
	planJSON, err := json.Marshal(res.Plan)
	if err != nil {
		t.Fatal(err)
	}
	journal, err := os.ReadFile(g.jpath)
	if err != nil {
		t.Fatal(err)
	}
	fams, err := g.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var ms strings.Builder
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				ms.WriteString(lp.GetValue() + "\n")
			}
		}
	}
	texts = append(texts, g.logs.String(), string(planJSON), string(journal), ms.String())
	if len(texts) < 6 {
		t.Fatalf("only %d texts to check; the failures produced no errors", len(texts))
	}
	for i, s := range texts {
		for _, sec := range []string{hookPathSecret, hookHMACKey} {
			if strings.Contains(s, sec) {
				t.Errorf("text %d holds a secret %q:\n%s", i, sec, s)
			}
		}
	}
	if !strings.Contains(g.logs.String(), "notification deferred") {
		t.Error("the logs do not show the failed deliveries")
	}
}

// An authentication failure is alerted as such, to the failures receivers.
func TestFailureAlertNamesAuthErrors(t *testing.T) {
	g := newGraceEnv(t, graceConfig)
	g.addStale("x", 1, 1)
	g.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, Status: http.StatusUnauthorized})
	if _, err := g.engine().Run(context.Background(), janitor.RunInput{}); err == nil {
		t.Fatal("Run succeeded with every listing refused")
	}
	g.requireNoMutations()
	f := notifytest.OfKind(g.hook.Take(), notify.KindFailure)
	if len(f) != 1 || f[0].Failure.Kind != notify.FailureAuth || !strings.Contains(f[0].Failure.Error, "401") {
		t.Fatalf("failure alerts %+v, want one auth_error naming the 401", f)
	}
}

// Newly marked tokens count against the guardrails: a grace policy that
// suddenly matches more tokens than a run may act on warns nobody. Tokens
// already marked count again only when their action is due.
func TestGraceNewMarksCountAgainstGuardrails(t *testing.T) {
	g := newGraceEnv(t, graceConfig)
	g.addStale("n", 3, 1)
	g.cfg.Limits.MaxActionsPerRun = 2
	res, err := g.engine().Run(context.Background(), janitor.RunInput{})
	if err == nil || !strings.Contains(err.Error(), "3 tokens newly marked for a grace period") {
		t.Fatalf("Run: %v, want the guardrail naming the new marks", err)
	}
	if len(g.marks()) != 0 || len(notifytest.OfKind(g.hook.Take(), notify.KindDigest)) != 0 {
		t.Fatalf("a blocked run marked %v or warned owners", g.marks())
	}
	if tr := res.Plan.Tripped(); len(tr) != 1 || tr[0].Wanted != 3 {
		t.Fatalf("tripped %+v", tr)
	}

	// Two of them are marked while the limit is higher; with the limit back
	// at 2, the third one alone is new and the run goes through.
	g.cfg.Limits.MaxActionsPerRun = 0
	g.sim.Remove("n-002")
	g.run()
	g.addStale("n", 3, 1) // n-002 is back, n-000 and n-001 are still marked
	g.cfg.Limits.MaxActionsPerRun = 2
	g.clock.Set(at(1))
	res = g.run()
	if len(g.marks()) != 3 {
		t.Fatalf("marks %v, want all three", g.marks())
	}
	if tr := res.Plan.Guardrails[0]; tr.Wanted != 1 || tr.Tripped {
		t.Fatalf("guardrail %+v, want 1 wanted (the one new mark)", tr)
	}
}
func planApply(t *testing.T, g *graceEnv) *plan.Plan {
	t.Helper()
	eng := g.engine()
	pl, err := eng.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.ApplyPlan(context.Background(), pl.Plan, janitor.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	return pl.Plan
}

// The plan -> apply PLAN workflow (and interactive `apply`, which goes the
// same way) unmarks a token that stopped matching: when it matches again
// months later, it gets a new warning, not the old deadline.
func TestGraceApplyPlanUnmarks(t *testing.T) {
	g := newGraceEnv(t, graceConfig)
	g.addStale("k", 1, 1)
	planApply(t, g) // day 0: marked, warned, deadline day 14
	g.hook.Take()
	g.sim.Touch("k-000", at(5)) // used again: no longer matches
	g.clock.Set(at(5))
	planApply(t, g)
	if _, ok := g.marks()["k-000"]; ok {
		t.Errorf("day 5: k-000 stopped matching and is still marked")
	}
	g.clock.Set(at(96)) // stale again (unused 90d since day 5)
	p := planApply(t, g)
	if m := itemModes(p)["k-000"]; m != plan.ModeGrace {
		t.Errorf("day 96: k-000 planned %q, want grace (a new warning)", m)
	}
	if del := deletedIDs(g.mutations()); del["k-000"] != 0 {
		t.Fatalf("day 96: k-000 deleted without a new warning (used on day 5 after the day-0 warning)")
	}
}

// The marks of a policy that leaves the file are removed: added back later,
// the policy warns again instead of acting on the old warning.
func TestGraceRemovedPolicyLosesItsMarks(t *testing.T) {
	g := newGraceEnv(t, graceConfig)
	g.addStale("r", 1, 1)
	g.run() // day 0: warned, deadline day 14
	g.hook.Take()
	g.cfg = g.parseConfig(noLimits + "policies:\n  - name: other\n    match: {nameMatches: '^zzz$'}\n    action: report\n")
	g.clock.Set(at(2))
	g.sim.Touch("r-000", at(3))
	g.run()
	if _, ok := g.marks()["r-000"]; ok {
		t.Errorf("day 2: the policy is gone and r-000 is still marked")
	}
	g.cfg = g.parseConfig(graceConfig) // policy back
	g.clock.Set(at(100))               // r-000 stale again (used day 3)
	res := g.run()
	if m := itemModes(res.Plan)["r-000"]; m != plan.ModeGrace {
		t.Errorf("day 100: r-000 planned %q, want grace", m)
	}
	if del := deletedIDs(g.mutations()); del["r-000"] != 0 {
		t.Fatal("day 100: deleted on a warning about an earlier, ended match")
	}
}

// Shortening grace after the warning never brings the action before the
// deadline the owner was told.
func TestGraceShorterGraceKeepsTheToldDeadline(t *testing.T) {
	g := newGraceEnv(t, graceConfig)
	g.addStale("s", 1, 1)
	g.run() // warned day 0: "deadline day 14"
	g.hook.Take()
	g.cfg = g.parseConfig(strings.Replace(graceConfig, "grace: 14d", "grace: 1d", 1))
	g.clock.Set(at(2))
	g.run()
	if del := deletedIDs(g.mutations()); del["s-000"] != 0 {
		t.Fatal("day 2: deleted although the owner's warning said day 14")
	}
}

// A run whose ctx ends (SIGTERM) after planning queues its notifications for
// the next run and does not count that as a failure.
func TestGraceShutdownQueuesNotificationsWithoutFailing(t *testing.T) {
	g := newGraceEnv(t, graceConfig)
	g.addStale("c", 1, 1)
	eng := g.engine()
	pl, err := eng.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = eng.Execute(ctx, pl)
	queued := len(g.outbox())
	if err != nil {
		t.Fatalf("Execute after shutdown: %v (outbox holds %d queued messages)", err, queued)
	}
	if queued == 0 || g.hook.Attempts() != 0 {
		t.Fatalf("after shutdown: %d messages queued, %d delivery attempts; want them queued and none tried", queued, g.hook.Attempts())
	}
}

// A digest that waits in the outbox is withdrawn when its token is unmarked
// (it was used): the owner is not warned about a deletion that will not
// happen.
func TestGraceUnmarkWithdrawsTheWaitingDigest(t *testing.T) {
	g := newGraceEnv(t, graceConfig)
	g.addStale("d", 1, 1)
	g.hook.Fail(http.StatusInternalServerError)
	g.run()
	g.hook.Take()
	g.hook.Fail(0)
	g.sim.Touch("d-000", at(1))
	g.clock.Set(at(1))
	g.run()
	if len(g.marks()) != 0 {
		t.Fatalf("marks %v", g.marks())
	}
	if ds := notifytest.OfKind(g.hook.Take(), notify.KindDigest); len(ds) != 0 {
		t.Fatalf("day 1: delivered a digest warning about %v, which is no longer marked", digestTokens(ds[0].Digest))
	}
}

// A patch policy whose operations change after the warning (other scopes)
// warns again: the owner was told about a different change.
func TestGracePatchChangeRestartsClock(t *testing.T) {
	cfg := strings.Replace(graceConfig, "    action: delete\n", "    action: patch\n    patch: {setScopes: [\"sp:scopes:default\"]}\n", 1)
	g := newGraceEnv(t, cfg)
	// patjanitor's own identity's token: the only owner a patch is sent for.
	g.add("p-000", g.own(), "tok-p-000", 400*day, 200*day)
	g.run()
	if m := g.marks()["p-000"]; m.Change != "scope set to [sp:scopes:default]" || m.WarnedAt == nil {
		t.Fatalf("mark %+v", m)
	}
	g.clock.Set(at(14))
	g.cfg = g.parseConfig(strings.Replace(cfg, "sp:scopes:default", "idn:identity:read", 1))
	res := g.run()
	g.requireNoMutations()
	if res.Plan.Items.At(0).Mode != plan.ModeGrace {
		t.Fatalf("item %+v: acted on a warning about other scopes", res.Plan.Items.At(0))
	}
	if m := g.marks()["p-000"]; !m.MarkedAt.Equal(at(14)) || m.Change != "scope set to [idn:identity:read]" {
		t.Fatalf("mark %+v, want a new mark for the new scopes", m)
	}
}

// A daemon runs each schedule with its own policies: a run of one schedule
// neither unmarks the tokens of another schedule's policy nor removes its
// pending_actions series.
func TestGraceSchedulesKeepEachOthersMarks(t *testing.T) {
	cfg := graceConfig + `  - name: never-used
    mode: enforce
    match: {neverUsed: true, createdOlderThan: 30d}
    action: delete
    grace: 7d
`
	g := newGraceEnv(t, cfg)
	g.addStale("a", 1, 1)
	g.add("n-000", "n-owner", "never", 60*day, -1)
	full := g.cfg
	g.metrics.SetPolicies(full.FilePolicies())
	g.run()
	if len(g.marks()) != 2 {
		t.Fatalf("marks %v, want one per policy", g.marks())
	}
	g.cfg = full.Only("unused-90d")
	g.clock.Set(at(1))
	g.run()
	if _, ok := g.marks()["n-000"]; !ok {
		t.Fatal("a run of the other schedule unmarked n-000")
	}
	if v := g.gauge("patjanitor_pending_actions", "policy", "never-used"); v != 1 {
		t.Fatalf("pending_actions{never-used} = %v after a run of the other schedule, want 1", v)
	}
}

// An owner's digest says why each token was marked, also for the marks of a
// policy the run did not evaluate (another schedule's): that reason comes
// from the store, which keeps a reason's prose once per shape (package
// state) and must give back exactly the text it was given.
func TestGraceDigestReasonsOfEverySchedule(t *testing.T) {
	cfg := graceConfig + `  - name: never-used
    mode: enforce
    match: {neverUsed: true, createdOlderThan: 30d}
    action: delete
    grace: 7d
`
	g := newGraceEnv(t, cfg)
	g.add("n-000", "o-1", "never \"quoted\" 2026-02-30T10:00:00.000Z", 60*day, -1)
	full := g.cfg
	g.run()
	reasons := func(stage string, want map[string]string) {
		t.Helper()
		ds := notifytest.OfKind(g.hook.Take(), notify.KindDigest)
		if len(ds) != 1 || ds[0].Digest.Owner.ID != "o-1" {
			t.Fatalf("%s: digests %+v, want one for o-1", stage, ds)
		}
		got := map[string]string{}
		for _, it := range ds[0].Digest.Items {
			got[it.TokenID] = it.Reason
		}
		if !maps.Equal(got, want) {
			t.Fatalf("%s: digest reasons\n got %q\nwant %q", stage, got, want)
		}
	}
	neverUsed := "lastUsed is null: never used (neverUsed); created " + pat.FormatTime(t0.Add(-60*day)) +
		" is before cutoff " + pat.FormatTime(at(0).Add(-30*day)) + " (createdOlderThan 30d)"
	reasons("day 0, every policy", map[string]string{"n-000": neverUsed})

	// Day 1, a run of the other schedule only: it marks a-000 of the same
	// owner, whose digest lists n-000 too, with the reason of day 0.
	g.add("a-000", "o-1", "tok-a-000", 400*day, 200*day)
	g.cfg = full.Only("unused-90d")
	g.clock.Set(at(1))
	g.run()
	reasons("day 1, the unused-90d schedule", map[string]string{
		"n-000": neverUsed,
		"a-000": "lastUsed " + pat.FormatTime(t0.Add(-200*day)) + " is before cutoff " + pat.FormatTime(at(1).Add(-90*day)) + " (unusedFor 90d)",
	})
}
