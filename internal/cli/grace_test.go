package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/metrics"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/notify/notifytest"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/state"
)

// The CLI-level tests of the grace workflow: apply, plan and serve wired to a
// state store and a signed webhook receiver whose URL and HMAC key are read
// from files. The engine-level workflow is in internal/janitor/grace_test.go;
// these check what the commands do with it.

// The receiver's secrets: neither may appear in any output or rendered file.
const (
	gcHookPathSecret = "hook-path-S3CRET-7c1d0e9b"
	gcHookKey        = "hmac-key-do-not-leak-0123456789ab"
	gcPolicy         = "unused-90d"
	gcFallback       = "iam@acme.example"
)

// gcDigests maps owner id to the sorted token ids of that owner's digests;
// it fails the test on a second digest for the same owner.
func gcDigests(t *testing.T, msgs []notifytest.Message) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, m := range notifytest.OfKind(msgs, notify.KindDigest) {
		if m.Digest == nil {
			t.Fatalf("digest %s without a digest body", m.ID)
		}
		o := m.Digest.Owner.ID
		if _, dup := out[o]; dup {
			t.Fatalf("owner %s got more than one digest in a run", o)
		}
		ids := []string{}
		for _, it := range m.Digest.Items {
			ids = append(ids, it.TokenID)
			if it.Policy != gcPolicy || it.Action != "delete" || time.Duration(it.Grace) != 14*wfDay || it.Reason == "" {
				t.Errorf("digest item for %s: %+v", o, it)
			}
		}
		if m.Digest.Owner.Email != gcFallback || !m.Digest.Owner.Fallback {
			t.Errorf("digest owner %+v: want the fallback address (no owner lookup)", m.Digest.Owner)
		}
		slices.Sort(ids)
		out[o] = ids
	}
	return out
}

// gcNotifyYAML is the owners and notify sections: one webhook receiver, hook,
// with its URL and HMAC key in files under dir, named for every kind.
func gcNotifyYAML(t *testing.T, dir, hookURL string) string {
	t.Helper()
	urlFile := filepath.Join(dir, "hook-url")
	keyFile := filepath.Join(dir, "hook-key")
	for p, v := range map[string]string{urlFile: hookURL, keyFile: gcHookKey} {
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return `owners:
  fallbackEmail: ` + gcFallback + `
notify:
  receivers:
    - name: hook
      webhook: {urlFile: ` + urlFile + `, hmacSecretFile: ` + keyFile + `}
  owners: hook
  summary: [hook]
  failures: [hook]
`
}

// gcPolicyYAML is one enforce-mode delete policy with a 14-day grace period.
const gcPolicyYAML = `policies:
  - name: ` + gcPolicy + `
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
    grace: 14d
`

// newGraceWF is a workflow env whose config has the grace policy and the
// receiver h, with no guardrail limits.
func newGraceWF(t *testing.T, h *notifytest.Receiver) *wfEnv {
	t.Helper()
	e := newWF(t, "", idnsim.Options{})
	e.writeConfig("limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 0}\n" +
		gcNotifyYAML(t, e.dir, h.URL()) + gcPolicyYAML)
	return e
}

// gcOpenStore opens the state store in stateDir; only while no command runs.
func gcOpenStore(t *testing.T, stateDir string) *state.Store {
	t.Helper()
	st, err := state.Open(filepath.Join(stateDir, state.FileName), state.Options{})
	if err != nil {
		t.Fatalf("open the state store: %v", err)
	}
	return st
}

// gcMarks reads the marks (by token id) and closes the store again. A store
// that does not exist has no marks; it is not created.
func gcMarks(t *testing.T, stateDir string) map[string]state.Mark {
	t.Helper()
	if _, err := os.Stat(filepath.Join(stateDir, state.FileName)); errors.Is(err, os.ErrNotExist) {
		return map[string]state.Mark{}
	}
	st := gcOpenStore(t, stateDir)
	defer func() { _ = st.Close() }()
	ms, err := st.Marks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]state.Mark{}
	for _, m := range ms {
		out[m.TokenID] = m
	}
	return out
}

func gcOutbox(t *testing.T, stateDir string) []state.OutboxEntry {
	t.Helper()
	st := gcOpenStore(t, stateDir)
	defer func() { _ = st.Close() }()
	ob, err := st.Outbox(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ob
}

// gcNoSecrets fails the test if a receiver secret appears in any of texts.
func gcNoSecrets(t *testing.T, what string, texts ...string) {
	t.Helper()
	all := strings.Join(texts, "\n")
	for _, s := range []string{gcHookPathSecret, gcHookKey} {
		if strings.Contains(all, s) {
			t.Errorf("%s leaks a receiver secret (%.8s…)", what, s)
		}
	}
}

// gcWarned checks that m's clock started within [from, to] with a 14-day
// deadline.
func gcWarned(t *testing.T, id string, m state.Mark, ok bool, from, to time.Time) {
	t.Helper()
	switch {
	case !ok:
		t.Errorf("no mark for %s", id)
	case m.Policy != gcPolicy || m.Action != "delete" || m.Grace != 14*wfDay:
		t.Errorf("mark %s = %+v", id, m)
	case m.WarnedAt == nil || m.Deadline == nil:
		t.Errorf("mark %s: the clock did not start (warned %v, deadline %v)", id, m.WarnedAt, m.Deadline)
	case m.WarnedAt.Before(from.Add(-time.Second)) || m.WarnedAt.After(to.Add(time.Second)):
		t.Errorf("mark %s warned at %s, want during the run (%s..%s)", id, m.WarnedAt, from, to)
	case !m.Deadline.Equal(m.WarnedAt.Add(14 * wfDay)):
		t.Errorf("mark %s: deadline %s, want warned + 14d", id, m.Deadline)
	}
}

// 1. apply with only grace items: nothing is deleted, each owner gets one
// digest of their tokens, a summary is sent, and the marks' clocks start.
func TestGraceApplyMarksAndWarns(t *testing.T) {
	h := notifytest.NewReceiver(t, "/hooks/"+gcHookPathSecret, gcHookKey, nil)
	e := newGraceWF(t, h)
	e.add("a1", "o1", 400*wfDay, 200*wfDay)
	e.add("a2", "o1", 400*wfDay, -1)
	e.add("b1", "o2", 400*wfDay, 120*wfDay)
	e.add("fresh", "o3", 10*wfDay, wfDay)

	before := time.Now()
	code, stdout, stderr := e.run(nil, "apply", "--auto-approve")
	after := time.Now()
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if m := e.mutations(); len(m) != 0 {
		t.Fatalf("apply sent %d mutating requests during the grace period: %+v", len(m), m)
	}
	for _, id := range []string{"a1", "a2", "b1", "fresh"} {
		if !e.present(id) {
			t.Errorf("%s is gone", id)
		}
	}
	if !strings.Contains(stdout, "No enforce-mode action is due. Marking 3 tokens") || strings.Contains(stdout, "Nothing to do") || !strings.Contains(stdout, "Applied 0") ||
		!strings.Contains(stdout, "Notifications: 3 sent (3 grace clocks started), 0 waiting") {
		t.Errorf("stdout does not say that nothing was mutated but marks were kept:\n%s", stdout)
	}
	gcNoSecrets(t, "apply's output", stdout, stderr)

	msgs := h.Take()
	digests := gcDigests(t, msgs)
	want := map[string][]string{"o1": {"a1", "a2"}, "o2": {"b1"}}
	if len(digests) != len(want) || !slices.Equal(digests["o1"], want["o1"]) || !slices.Equal(digests["o2"], want["o2"]) {
		t.Errorf("digests %v, want one per owner: %v", digests, want)
	}
	if n := len(notifytest.OfKind(msgs, notify.KindSummary)); n != 1 {
		t.Errorf("%d summaries, want 1", n)
	}
	if n := len(notifytest.OfKind(msgs, notify.KindNotice)) + len(notifytest.OfKind(msgs, notify.KindFailure)); n != 0 {
		t.Errorf("%d notices or failure alerts, want none", n)
	}
	if len(msgs) != 3 {
		t.Errorf("the receiver got %d messages, want 3 (2 digests, 1 summary)", len(msgs))
	}

	marks := gcMarks(t, e.state)
	if len(marks) != 3 {
		t.Errorf("marks %v, want a1, a2 and b1", marks)
	}
	for _, id := range []string{"a1", "a2", "b1"} {
		m, ok := marks[id]
		gcWarned(t, id, m, ok, before, after)
	}
	if ob := gcOutbox(t, e.state); len(ob) != 0 {
		t.Errorf("outbox after delivered messages: %+v", ob)
	}
}

// 2. Past the deadline: the warned token is deleted and its mark removed,
// its owner gets a notice; a stale token without a mark is only marked.
func TestGraceApplyActsAfterTheDeadline(t *testing.T) {
	h := notifytest.NewReceiver(t, "/hooks/"+gcHookPathSecret, gcHookKey, nil)
	e := newGraceWF(t, h)
	e.add("due-1", "o1", 400*wfDay, 200*wfDay)
	e.add("new-1", "o2", 400*wfDay, 200*wfDay)

	st := gcOpenStore(t, e.state)
	now := time.Now()
	ctx := context.Background()
	if _, err := st.ReconcileMarks(ctx, []string{gcPolicy}, []state.Mark{{TokenID: "due-1", TokenName: "tok-due-1", OwnerID: "o1", Policy: gcPolicy,
		Action: "delete", Reason: "unused", Grace: 14 * wfDay, MarkedAt: now.Add(-16 * wfDay)}}); err != nil {
		t.Fatal(err)
	}
	// The owner's warning was delivered 15 days ago: the clock started
	// then, as the dispatcher records a delivery.
	key := state.MarkKey{TokenID: "due-1", Policy: gcPolicy}
	warning := state.OutboxEntry{ID: "digest/hook/o1", Receiver: "hook", Kind: "digest", Marks: []state.MarkKey{key}, Payload: json.RawMessage(`{}`)}
	if err := st.Enqueue(ctx, warning); err != nil {
		t.Fatal(err)
	}
	if started, err := st.Settle(ctx, state.Settlement{ID: warning.ID, DeliveredAt: now.Add(-15 * wfDay)}); err != nil || len(started[warning.ID]) != 1 {
		t.Fatalf("Settle: %v, %v", started, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	before := time.Now()
	code, stdout, stderr := e.run(nil, "apply", "--auto-approve")
	after := time.Now()
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if del := deletedIDs(e.sim.Requests()); !slices.Equal(del, []string{"due-1"}) {
		t.Fatalf("DELETEs for %v, want exactly due-1", del)
	}
	if m := e.mutations(); len(m) != 1 {
		t.Fatalf("%d mutating requests, want the one delete", len(m))
	}
	if e.present("due-1") || !e.present("new-1") {
		t.Fatalf("due-1 present %v, new-1 present %v; want due-1 deleted, new-1 kept", e.present("due-1"), e.present("new-1"))
	}
	if !strings.Contains(stdout, "deleted") || !strings.Contains(stdout, "due-1") || !strings.Contains(stdout, "Applied 1") {
		t.Errorf("stdout does not report the delete:\n%s", stdout)
	}
	gcNoSecrets(t, "apply's output", stdout, stderr)

	msgs := h.Take()
	notices := notifytest.OfKind(msgs, notify.KindNotice)
	if len(notices) != 1 || notices[0].Notice == nil || notices[0].Notice.Owner.ID != "o1" {
		t.Fatalf("notices %+v, want one for o1", notices)
	}
	if it := notices[0].Notice.Items; len(it) != 1 || it[0].TokenID != "due-1" || it[0].Outcome != notify.OutcomeApplied || it[0].Action != "delete" {
		t.Errorf("notice items %+v, want due-1 applied", it)
	}
	if d := gcDigests(t, msgs); len(d) != 1 || !slices.Equal(d["o2"], []string{"new-1"}) {
		t.Errorf("digests %v, want one for o2 listing new-1", d)
	}
	if n := len(notifytest.OfKind(msgs, notify.KindSummary)); n != 1 {
		t.Errorf("%d summaries, want 1", n)
	}

	marks := gcMarks(t, e.state)
	if _, ok := marks["due-1"]; ok {
		t.Errorf("due-1 is still marked after its delete: %+v", marks["due-1"])
	}
	m, ok := marks["new-1"]
	gcWarned(t, "new-1", m, ok, before, after)
	if len(marks) != 1 {
		t.Errorf("marks %v, want only new-1", marks)
	}
}

// 3. A receiver that fails: apply still succeeds, the digest waits in the
// outbox and no clock starts; the next apply delivers it and starts it.
func TestGraceApplyFailedDeliveryWaitsInTheOutbox(t *testing.T) {
	h := notifytest.NewReceiver(t, "/hooks/"+gcHookPathSecret, gcHookKey, nil)
	// Throttled for an hour: the dispatcher defers at once instead of
	// holding the run (a 500 would be retried with real backoff sleeps; the
	// engine-level tests cover that path with an injected sleep).
	h.Throttle(time.Hour)
	e := newGraceWF(t, h)
	e.add("f1", "o1", 400*wfDay, 200*wfDay)

	code, stdout, stderr := e.run(nil, "apply", "--auto-approve", "--log-level", "debug")
	if code != 0 {
		t.Fatalf("apply with a failing receiver: exit %d (delivery failures are not run failures)\n%s\n%s", code, stdout, stderr)
	}
	gcNoSecrets(t, "apply's output (debug log of failed deliveries)", stdout, stderr)
	if len(e.mutations()) != 0 {
		t.Fatal("a mutation during the grace period")
	}
	if h.Attempts() == 0 {
		t.Fatal("no delivery was attempted")
	}
	if got := h.Take(); len(got) != 0 {
		t.Fatalf("the failing receiver accepted %d messages", len(got))
	}
	m, ok := gcMarks(t, e.state)["f1"]
	if !ok || m.WarnedAt != nil || m.Deadline != nil || m.MarkedAt.IsZero() {
		t.Fatalf("mark after a failed delivery = %+v (found %v), want marked with no clock", m, ok)
	}
	ob := gcOutbox(t, e.state)
	waiting := slices.ContainsFunc(ob, func(o state.OutboxEntry) bool {
		return o.Kind == string(notify.KindDigest) && o.OwnerID == "o1" && o.Attempts > 0 &&
			slices.Contains(o.Marks, state.MarkKey{TokenID: "f1", Policy: gcPolicy})
	})
	if !waiting {
		t.Fatalf("outbox %+v: the digest for o1 is not waiting", ob)
	}
	for _, o := range ob {
		gcNoSecrets(t, "the outbox", o.LastError, string(o.Payload))
	}

	h.Fail(0)
	before := time.Now()
	code, stdout, stderr = e.run(nil, "apply", "--auto-approve")
	after := time.Now()
	if code != 0 {
		t.Fatalf("second apply: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if len(e.mutations()) != 0 {
		t.Fatal("a mutation before any deadline")
	}
	if d := gcDigests(t, h.Take()); len(d) != 1 || !slices.Equal(d["o1"], []string{"f1"}) {
		t.Fatalf("second apply delivered digests %v, want one for o1 listing f1", d)
	}
	m, ok = gcMarks(t, e.state)["f1"]
	gcWarned(t, "f1", m, ok, before, after)
	for _, o := range gcOutbox(t, e.state) {
		if o.Kind == string(notify.KindDigest) {
			t.Errorf("a digest is still in the outbox after delivery: %+v", o)
		}
	}
}

// 4. plan --notifications-dir renders the digests and the summary, sends
// nothing and stores no mark.
func TestGracePlanNotificationsDir(t *testing.T) {
	h := notifytest.NewReceiver(t, "/hooks/"+gcHookPathSecret, gcHookKey, nil)
	e := newGraceWF(t, h)
	e.add("a1", "o1", 400*wfDay, 200*wfDay)
	e.add("a2", "o1", 400*wfDay, -1)
	e.add("b1", "o2", 400*wfDay, 200*wfDay)

	dir := filepath.Join(e.dir, "notifications")
	code, stdout, stderr := e.run(nil, "plan", "--notifications-dir", dir)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "Wrote 3 notifications") || !strings.Contains(stderr, "(none sent)") {
		t.Errorf("stderr does not report 3 written notifications: %s", stderr)
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	texts := []string{stdout, stderr}
	byName := map[string]string{}
	for _, f := range files {
		names = append(names, f.Name())
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(b))
		// WriteDir names files "<nnn>-<kind>-<receiver>[-<owner>].<ext>".
		if _, rest, ok := strings.Cut(f.Name(), "-"); ok {
			byName[rest] = string(b)
		}
	}
	if len(files) != 3 {
		t.Fatalf("notification files %v, want a digest per owner and the summary", names)
	}
	for name, want := range map[string][]string{
		"digest-hook-o1.json": {"a1", "a2"},
		"digest-hook-o2.json": {"b1"},
		"summary-hook.json":   {gcPolicy},
	} {
		body, ok := byName[name]
		if !ok {
			t.Errorf("no file *-%s among %v", name, names)
			continue
		}
		for _, w := range want {
			if !strings.Contains(body, `"`+w+`"`) {
				t.Errorf("%s does not mention %s:\n%s", name, w, body)
			}
		}
	}
	var d struct {
		Kind   notify.Kind    `json:"kind"`
		Digest *notify.Digest `json:"digest"`
	}
	if err := json.Unmarshal([]byte(byName["digest-hook-o2.json"]), &d); err != nil || d.Kind != notify.KindDigest || d.Digest == nil {
		t.Errorf("the o2 digest file is not a webhook digest body: %v", err)
	} else if len(d.Digest.Items) != 1 || d.Digest.Items[0].TokenID != "b1" || d.Digest.Owner.Email != gcFallback {
		t.Errorf("o2 digest %+v, want b1 only, to the fallback address", d.Digest)
	}
	gcNoSecrets(t, "plan's output or the rendered notifications", texts...)
	if n := h.Attempts(); n != 0 {
		t.Errorf("the receiver got %d requests from a plan", n)
	}
	if ms := gcMarks(t, e.state); len(ms) != 0 {
		t.Errorf("plan stored marks: %v", ms)
	}
	if len(e.mutations()) != 0 {
		t.Error("plan sent mutations")
	}
}

// gcServeConfig is a serve config for e's tenant with the grace policy and the
// receiver, run once at start (the schedule is daily).
func gcServeConfig(t *testing.T, e *serveEnv, hookURL string) string {
	t.Helper()
	return e.writeConfig(fmt.Sprintf(`tenant:
  url: %s
  clientId: %s
  clientSecretFile: %s
  rateLimit: {requests: -1, per: 1s}
schedule: "@daily"
timezone: UTC
limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 0}
`, e.srv.URL, e.sim.Admin().ClientID, e.secretFile) + gcNotifyYAML(t, e.dir, hookURL) + gcPolicyYAML)
}

// gcServeOnce runs serve in-process for its start-up run and stops it.
func gcServeOnce(t *testing.T, e *serveEnv, cfg string, o serveFlags) {
	t.Helper()
	o.runOnStart = true
	p := startInProcess(t, e, cfg, o)
	serveWait(t, "the start-up run", 30*time.Second, func() bool {
		m := scrape(t, p.base)
		n := 0.0
		for _, r := range []string{metrics.RunSuccess, metrics.RunFailed, metrics.RunBlocked} {
			n += m[series("patjanitor_runs_total", "result", r)]
		}
		return n >= 1
	})
	m := scrape(t, p.base)
	if err := p.stop(t); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if m[series("patjanitor_runs_total", "result", metrics.RunSuccess)] != 1 {
		t.Fatalf("the start-up run did not succeed: runs_total %v", m)
	}
}

// 5. serve --dry-run sends nothing and marks nothing; serve sends the digests
// and the summary and starts the clocks.
func TestGraceServe(t *testing.T) {
	h := notifytest.NewReceiver(t, "/hooks/"+gcHookPathSecret, gcHookKey, nil)
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	now := time.Now()
	for _, tk := range []struct{ id, owner string }{{"s1", "owner-a"}, {"s2", "owner-a"}, {"s3", "owner-b"}} {
		lu := now.Add(-200 * wfDay)
		e.sim.Add(pat.Token{ID: tk.id, Name: "tok-" + tk.id, Scope: pat.ScopesOf("sp:scopes:default"),
			Owner:   pat.Owner{Type: "IDENTITY", ID: tk.owner, Name: "Owner " + tk.owner},
			Created: now.Add(-400 * wfDay), LastUsed: &lu}, "")
	}
	cfg := gcServeConfig(t, e, h.URL())
	stateDir := filepath.Join(e.dir, "state")

	gcServeOnce(t, e, cfg, serveFlags{dryRun: true})
	if n := h.Attempts(); n != 0 {
		t.Errorf("serve --dry-run: the receiver got %d requests", n)
	}
	if ms := gcMarks(t, stateDir); len(ms) != 0 {
		t.Errorf("serve --dry-run stored marks: %v", ms)
	}
	if muts := idnsim.Mutations(e.sim.Requests()); len(muts) != 0 {
		t.Fatalf("serve --dry-run sent %d mutations", len(muts))
	}

	before := time.Now()
	gcServeOnce(t, e, cfg, serveFlags{})
	after := time.Now()
	if muts := idnsim.Mutations(e.sim.Requests()); len(muts) != 0 {
		t.Fatalf("serve sent %d mutations during the grace period", len(muts))
	}
	msgs := h.Take()
	d := gcDigests(t, msgs)
	if len(d) != 2 || !slices.Equal(d["owner-a"], []string{"s1", "s2"}) || !slices.Equal(d["owner-b"], []string{"s3"}) {
		t.Errorf("serve: digests %v, want owner-a: s1 s2, owner-b: s3", d)
	}
	if n := len(notifytest.OfKind(msgs, notify.KindSummary)); n != 1 {
		t.Errorf("serve: %d summaries, want 1", n)
	}
	marks := gcMarks(t, stateDir)
	for _, id := range []string{"s1", "s2", "s3"} {
		m, ok := marks[id]
		gcWarned(t, id, m, ok, before, after)
	}
}

// apply PLAN of a plan with only grace items marks and warns as apply does,
// and mutates nothing.
func TestGraceApplySavedPlanMarksAndWarns(t *testing.T) {
	h := notifytest.NewReceiver(t, "/hooks/"+gcHookPathSecret, gcHookKey, nil)
	e := newGraceWF(t, h)
	e.add("a1", "o1", 400*wfDay, 200*wfDay)
	e.add("b1", "o2", 400*wfDay, 200*wfDay)
	planFile := filepath.Join(e.dir, "plan.json")
	if code, _, stderr := e.run(nil, "plan", "--out", planFile); code != 0 {
		t.Fatalf("plan: %s", stderr)
	}
	if n := h.Attempts(); n != 0 {
		t.Fatalf("plan --out: the receiver got %d requests", n)
	}
	before := time.Now()
	code, stdout, stderr := e.run(nil, "apply", planFile, "--auto-approve")
	after := time.Now()
	if code != 0 {
		t.Fatalf("apply PLAN: exit %d\n%s\n%s", code, stdout, stderr)
	}
	gcNoSecrets(t, "apply PLAN's output", stdout, stderr)
	if len(e.mutations()) != 0 {
		t.Fatal("apply PLAN mutated during the grace period")
	}
	msgs := h.Take()
	if d := gcDigests(t, msgs); len(d) != 2 || !slices.Equal(d["o1"], []string{"a1"}) || !slices.Equal(d["o2"], []string{"b1"}) {
		t.Errorf("digests %v, want o1: a1, o2: b1", d)
	}
	if n := len(notifytest.OfKind(msgs, notify.KindSummary)); n != 1 {
		t.Errorf("%d summaries, want 1", n)
	}
	marks := gcMarks(t, e.state)
	for _, id := range []string{"a1", "b1"} {
		m, ok := marks[id]
		gcWarned(t, id, m, ok, before, after)
	}
}

// Marking warns owners, so an interactive apply asks before it marks, as it
// asks before it acts: without a terminal (and --auto-approve) it refuses
// and warns nobody; confirmed on a terminal, it marks and warns.
func TestGraceApplyAsksBeforeWarning(t *testing.T) {
	h := notifytest.NewReceiver(t, "/hooks/"+gcHookPathSecret, gcHookKey, nil)
	e := newGraceWF(t, h)
	e.add("q1", "o1", 400*wfDay, 200*wfDay)

	code, stdout, stderr := e.run(nil, "apply")
	if code == 0 {
		t.Fatalf("apply without a terminal or --auto-approve: exit 0\n%s\n%s", stdout, stderr)
	}
	if n := h.Attempts(); n != 0 || len(gcMarks(t, e.state)) != 0 {
		t.Fatalf("a refused apply sent %d messages and left marks %v", n, gcMarks(t, e.state))
	}
	if !strings.Contains(stdout, "will be marked (or stay marked)") {
		t.Errorf("the report does not say that owners will be warned:\n%s", stdout)
	}

	code, stdout, stderr = e.run(fakeTTY{strings.NewReader("yes\n")}, "apply")
	if code != 0 || !strings.Contains(stdout, "mark 1 tokens of policies with a grace period and warn their owners") {
		t.Fatalf("confirmed apply: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if m, ok := gcMarks(t, e.state)["q1"]; !ok || m.WarnedAt == nil {
		t.Fatalf("confirmed apply: mark %+v (found %v), want marked and warned", m, ok)
	}
	if len(e.mutations()) != 0 {
		t.Fatal("marking mutated the tenant")
	}
}

// apply with more owners than the outbox writes in one transaction (the
// store queues 500 entries at a time): every owner still gets exactly one
// digest naming their token, the summary counts them all, every mark's
// clock starts, and nothing is left in the outbox.
//
// 601 owners and the summary are two batches both for queueing and for
// settling (notify's settleBatch is 500 too). A store that queues only the
// first batch, or a dispatcher that drops a full batch unsettled, fails
// (both checked). It warned 1,201 owners before, at twice the CPU under
// -race; batches after the second are queued by the same loop, which
// state's TestEnqueueInBatchesStoresEveryEntryInOrder checks over three.
func TestGraceApplyDigestsMoreOwnersThanOneOutboxBatch(t *testing.T) {
	h := notifytest.NewReceiver(t, "/hooks/"+gcHookPathSecret, gcHookKey, nil)
	e := newGraceWF(t, h)
	const owners = 601
	for i := range owners {
		e.add(fmt.Sprintf("tok%04d", i), fmt.Sprintf("own%04d", i), 400*wfDay, 200*wfDay)
	}
	before := time.Now()
	code, stdout, stderr := e.run(nil, "apply", "--auto-approve")
	after := time.Now()
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if m := e.mutations(); len(m) != 0 {
		t.Fatalf("apply sent %d mutating requests during the grace period", len(m))
	}
	if want := fmt.Sprintf("Notifications: %d sent (%d grace clocks started), 0 waiting", owners+1, owners); !strings.Contains(stdout, want) {
		t.Errorf("stdout does not say %q:\n%s", want, stdout)
	}
	msgs := h.Take()
	digests := gcDigests(t, msgs)
	if len(digests) != owners {
		t.Errorf("%d owners got a digest, want %d", len(digests), owners)
	}
	for i := range owners {
		if got := digests[fmt.Sprintf("own%04d", i)]; len(got) != 1 || got[0] != fmt.Sprintf("tok%04d", i) {
			t.Fatalf("the digest of own%04d names %v", i, got)
		}
	}
	if n := len(notifytest.OfKind(msgs, notify.KindSummary)); n != 1 || len(msgs) != owners+1 {
		t.Errorf("the receiver got %d messages (%d summaries), want %d digests and 1 summary", len(msgs), n, owners)
	}
	marks := gcMarks(t, e.state)
	if len(marks) != owners {
		t.Errorf("%d marks, want %d", len(marks), owners)
	}
	for id, m := range marks {
		gcWarned(t, id, m, true, before, after)
	}
	if ob := gcOutbox(t, e.state); len(ob) != 0 {
		t.Errorf("%d entries left in the outbox after every message was delivered", len(ob))
	}
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindIntent || r.Kind == audit.KindOutcome {
			t.Errorf("the journal records an action of a run that only warned: %+v", r)
		}
	}
}
