package notify

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/patjanitor/patjanitor/internal/fakeclock"
	"github.com/patjanitor/patjanitor/internal/state"
)

type fakeMetrics struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeMetrics) Notification(receiver, kind, outcome string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, receiver+"/"+kind+"/"+outcome)
}

func (f *fakeMetrics) get() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// notifierFunc adapts a function to Notifier (Alertmanager's notifierFunc).
type notifierFunc func(ctx context.Context, m *Message) (bool, error)

func (f notifierFunc) Notify(ctx context.Context, m *Message) (bool, error) { return f(ctx, m) }

type dispatchEnv struct {
	clk     *fakeclock.Clock
	sleep   *sleeper
	metrics *fakeMetrics
	path    string
	store   *state.Store
}

func newDispatchEnv(t *testing.T) *dispatchEnv {
	t.Helper()
	e := &dispatchEnv{clk: newClock(), metrics: &fakeMetrics{}, path: filepath.Join(t.TempDir(), "state", state.FileName)}
	e.sleep = &sleeper{clock: e.clk}
	e.open(t)
	t.Cleanup(func() { _ = e.store.Close() })
	return e
}

func (e *dispatchEnv) open(t *testing.T) {
	t.Helper()
	s, err := state.Open(e.path, state.Options{Clock: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.store = s
}

func (e *dispatchEnv) restart(t *testing.T) {
	t.Helper()
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	e.open(t)
}

func (e *dispatchEnv) dispatcher(t *testing.T, ns map[string]Notifier) *Dispatcher {
	t.Helper()
	d, err := NewDispatcher(DispatcherOptions{
		Notifiers: ns, Outbox: e.store, Metrics: e.metrics, Clock: e.clk.Now, Sleep: e.sleep.Sleep,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestOutboxSurvivesRestartAndDeliversOnNextDispatch(t *testing.T) {
	ctx := context.Background()
	env := newDispatchEnv(t)
	rec := newRecorder(answer{status: 503}, answer{status: 503}, answer{status: 503}, answer{status: 200})
	_, url := newServer(t, rec)
	hook := buildWebhook(t, url, env.clk)

	m := SummaryMessage("siem", "run-1", t0, sampleSummary())
	rep, err := env.dispatcher(t, map[string]Notifier{"siem": hook}).Send(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results[0].Outcome != Deferred || rep.Results[0].Attempts != 3 || rep.Results[0].Reason != ReasonServerError {
		t.Fatalf("first dispatch = %+v", rep.Results)
	}
	if got := env.sleep.Sleeps(); len(got) != 2 || got[0] != time.Second || got[1] != 2*time.Second {
		t.Errorf("backoff sleeps = %v, want [1s 2s]", got)
	}
	ob, _ := env.store.Outbox(ctx)
	if len(ob) != 1 || ob[0].Attempts != 3 || !strings.Contains(ob[0].LastError, "HTTP 503") {
		t.Fatalf("outbox after failure = %+v", ob)
	}

	// The process restarts.
	env.restart(t)
	d := env.dispatcher(t, map[string]Notifier{"siem": hook})
	// Not due yet: the retry interval has not passed.
	if rep, _ := d.Flush(ctx); len(rep.Results) != 0 {
		t.Fatalf("flushed before the retry interval: %+v", rep.Results)
	}
	env.clk.Advance(5 * time.Minute)
	rep, err = d.Flush(ctx)
	if err != nil || len(rep.Results) != 1 || rep.Results[0].Outcome != Sent {
		t.Fatalf("second dispatch = %+v, %v", rep.Results, err)
	}
	reqs := rec.requests()
	if len(reqs) != 4 || reqs[3].header.Get(HeaderMessageID) != m.ID {
		t.Errorf("%d requests; last id %q", len(reqs), reqs[len(reqs)-1].header.Get(HeaderMessageID))
	}
	if ob, _ := env.store.Outbox(ctx); len(ob) != 0 {
		t.Errorf("outbox after delivery = %+v", ob)
	}
	if got := env.metrics.get(); len(got) != 2 || got[0] != "siem/summary/deferred" || got[1] != "siem/summary/sent" {
		t.Errorf("metrics = %v", got)
	}
}

// seedMarks adds the marks of d's items to the store, as a run does: the
// marks already stored stay, with their clocks.
func seedMarks(t *testing.T, s *state.Store, d Digest) {
	t.Helper()
	ctx := context.Background()
	ms, err := s.Marks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range d.Items {
		ms = append(ms, state.Mark{TokenID: it.TokenID, OwnerID: d.Owner.ID, Policy: it.Policy, Action: it.Action,
			Reason: it.Reason, Grace: time.Duration(it.Grace), MarkedAt: it.MarkedAt})
	}
	var policies []string
	for _, m := range ms {
		if !slices.Contains(policies, m.Policy) {
			policies = append(policies, m.Policy)
		}
	}
	if _, err := s.ReconcileMarks(ctx, policies, ms); err != nil {
		t.Fatal(err)
	}
}

// markOf is the stored mark of a token under a policy (the zero Mark if
// there is none).
func markOf(t *testing.T, s *state.Store, tokenID, policy string) state.Mark {
	t.Helper()
	ms, err := s.Marks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Key() == state.KeyOf(tokenID, policy) {
			return m
		}
	}
	return state.Mark{}
}

// unwarnedDigest is a digest of marks not yet warned, as the engine builds
// it from the store.
func unwarnedDigest() Digest {
	d := sampleDigest()
	for i := range d.Items {
		d.Items[i].Deadline = nil
		d.Items[i].MarkedAt = t0
	}
	return d
}

func TestDigestDeliveryStartsGraceClockAndIsNotRepeated(t *testing.T) {
	ctx := context.Background()
	env := newDispatchEnv(t)
	d := unwarnedDigest()
	seedMarks(t, env.store, d)
	rec := newRecorder(answer{status: 200})
	_, url := newServer(t, rec)
	disp := env.dispatcher(t, map[string]Notifier{"siem": buildWebhook(t, url, env.clk)})

	env.clk.Advance(time.Hour) // delivered an hour after the run that marked
	rep, err := disp.Send(ctx, DigestMessage("siem", "run-1", env.clk.Now(), d))
	if err != nil || rep.Count(Sent) != 1 {
		t.Fatalf("Send = %+v, %v", rep, err)
	}
	if w := rep.Results[0].Warned; len(w) != 2 {
		t.Fatalf("warned = %+v", w)
	}
	deliveredAt := env.clk.Now()
	for _, it := range d.Items {
		m := markOf(t, env.store, it.TokenID, it.Policy)
		if m.WarnedAt == nil || !m.WarnedAt.Equal(deliveredAt) || !m.Deadline.Equal(deliveredAt.Add(14*24*time.Hour)) {
			t.Errorf("mark %s: warned %v deadline %v", it.TokenID, m.WarnedAt, m.Deadline)
		}
	}

	// The next run builds the same digest: suppressed within the interval.
	env.clk.Advance(24 * time.Hour)
	rep, _ = disp.Send(ctx, DigestMessage("siem", "run-2", env.clk.Now(), d))
	if rep.Count(Suppressed) != 1 || len(rec.requests()) != 1 {
		t.Fatalf("repeat digest = %+v, %d requests", rep.Results, len(rec.requests()))
	}
	// A new mark changes the digest: sent at once.
	d2 := d
	d2.Items = append(append([]DigestItem(nil), d.Items...), DigestItem{TokenID: "t-new", TokenName: "new", Policy: "unused-90d", Action: "delete", Reason: "r", MarkedAt: env.clk.Now(), Grace: grace14d})
	seedMarks(t, env.store, Digest{Owner: d.Owner, Items: d2.Items[2:]})
	rep, _ = disp.Send(ctx, DigestMessage("siem", "run-2", env.clk.Now(), d2))
	if rep.Count(Sent) != 1 || len(rep.Results[0].Warned) != 1 || rep.Results[0].Warned[0].TokenID != "t-new" {
		t.Fatalf("changed digest = %+v", rep.Results)
	}
	// After the interval the same digest is a reminder; clocks do not restart.
	env.clk.Advance(DefaultDigestInterval)
	rep, _ = disp.Send(ctx, DigestMessage("siem", "run-9", env.clk.Now(), d2))
	if rep.Count(Sent) != 1 || len(rep.Results[0].Warned) != 0 {
		t.Fatalf("reminder = %+v", rep.Results)
	}
	m := markOf(t, env.store, d.Items[0].TokenID, "unused-90d")
	if !m.WarnedAt.Equal(deliveredAt) {
		t.Errorf("reminder restarted the clock: %v", m.WarnedAt)
	}
	if got := env.metrics.get(); strings.Join(got, ",") != "siem/digest/sent,siem/digest/suppressed,siem/digest/sent,siem/digest/sent" {
		t.Errorf("metrics = %v", got)
	}
}

func TestFailedDigestStartsNoClock(t *testing.T) {
	ctx := context.Background()
	env := newDispatchEnv(t)
	d := unwarnedDigest()
	seedMarks(t, env.store, d)
	rec := newRecorder(answer{status: 500})
	_, url := newServer(t, rec)
	disp := env.dispatcher(t, map[string]Notifier{"siem": buildWebhook(t, url, env.clk)})

	rep, err := disp.Send(ctx, DigestMessage("siem", "run-1", t0, d))
	if err != nil || rep.Count(Deferred) != 1 {
		t.Fatalf("Send = %+v, %v", rep, err)
	}
	marks, _ := env.store.Marks(ctx)
	for _, m := range marks {
		if m.WarnedAt != nil || m.Deadline != nil {
			t.Errorf("failed delivery started the clock of %s", m.Key())
		}
	}
	if ds, _ := env.store.LastDeliveries(ctx, []string{"o-alice"}); len(ds) != 0 {
		t.Error("failed delivery recorded as delivered")
	}
	// The next run's digest replaces the pending one (one digest per owner).
	env.clk.Advance(time.Hour)
	rec.mu.Lock()
	rec.answers = []answer{{status: 200}}
	rec.mu.Unlock()
	rep, _ = disp.Send(ctx, DigestMessage("siem", "run-2", env.clk.Now(), d))
	if rep.Count(Sent) != 1 || len(rep.Results) != 1 {
		t.Fatalf("second run = %+v", rep.Results)
	}
	m := markOf(t, env.store, d.Items[0].TokenID, "unused-90d")
	if m.WarnedAt == nil || !m.WarnedAt.Equal(env.clk.Now()) {
		t.Errorf("clock did not start at the delivery: %v", m.WarnedAt)
	}
}

func TestPermanentFailureIsDroppedWithoutRetry(t *testing.T) {
	ctx := context.Background()
	env := newDispatchEnv(t)
	rec := newRecorder(answer{status: 400, body: "invalid_payload"})
	_, url := newServer(t, rec)
	disp := env.dispatcher(t, map[string]Notifier{"slack": buildSlack(t, url, env.clk)})
	rep, err := disp.Send(ctx, FailureMessage("slack", "run-1", t0, sampleFailure()))
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	if r.Outcome != Failed || r.Attempts != 1 || r.Reason != ReasonClientError || len(env.sleep.Sleeps()) != 0 {
		t.Errorf("result = %+v, sleeps %v", r, env.sleep.Sleeps())
	}
	if ob, _ := env.store.Outbox(ctx); len(ob) != 0 {
		t.Errorf("outbox = %+v", ob)
	}
	// Slack's 200-with-error is permanent too.
	rec.mu.Lock()
	rec.answers = []answer{{status: 200, body: "invalid_blocks"}}
	rec.mu.Unlock()
	rep, _ = disp.Send(ctx, FailureMessage("slack", "run-2", t0, sampleFailure()))
	if r := rep.Results[0]; r.Outcome != Failed || r.Attempts != 1 || r.Reason != ReasonRejected {
		t.Errorf("slack 200 error = %+v", r)
	}
}

func TestLongRetryAfterDefersInsteadOfWaiting(t *testing.T) {
	ctx := context.Background()
	env := newDispatchEnv(t)
	_, url := newServer(t, newRecorder(answer{status: 429, header: map[string]string{"Retry-After": "3600"}}))
	disp := env.dispatcher(t, map[string]Notifier{"siem": buildWebhook(t, url, env.clk)})
	rep, _ := disp.Send(ctx, SummaryMessage("siem", "run-1", t0, sampleSummary()))
	if r := rep.Results[0]; r.Outcome != Deferred || r.Attempts != 1 || r.Reason != ReasonRateLimited {
		t.Errorf("result = %+v", r)
	}
	if len(env.sleep.Sleeps()) != 0 {
		t.Errorf("slept %v", env.sleep.Sleeps())
	}
	ob, _ := env.store.Outbox(ctx)
	if len(ob) != 1 || !ob[0].NextAttempt.Equal(t0.Add(time.Hour)) {
		t.Errorf("next attempt = %+v", ob)
	}
}

// TestHostileRetryAfterOverflow: Retry-After: 9300000000 (seconds) is more
// nanoseconds than a time.Duration holds. The notifier's own parser turned it
// into a negative wait, so the long wait the server asked for was ignored and
// the message retried after a second's backoff. Now it is a long wait (capped
// at a day): deferred at once, due again in a day, no sleeping.
func TestHostileRetryAfterOverflow(t *testing.T) {
	ctx := context.Background()
	env := newDispatchEnv(t)
	rec := newRecorder(answer{status: 429, header: map[string]string{"Retry-After": "9300000000"}}, answer{status: 200})
	_, url := newServer(t, rec)
	disp := env.dispatcher(t, map[string]Notifier{"siem": buildWebhook(t, url, env.clk)})
	rep, _ := disp.Send(ctx, SummaryMessage("siem", "run-1", t0, sampleSummary()))
	r := rep.Results[0]
	if r.Outcome != Deferred || r.Attempts != 1 || r.Reason != ReasonRateLimited {
		t.Errorf("result = %+v, want deferred after one attempt", r)
	}
	var e *Error
	if !errors.As(r.Err, &e) || e.RetryAfter != 24*time.Hour {
		t.Errorf("error %v: RetryAfter want 24h", r.Err)
	}
	if len(env.sleep.Sleeps()) != 0 {
		t.Errorf("slept %v", env.sleep.Sleeps())
	}
	if n := len(rec.requests()); n != 1 {
		t.Errorf("the receiver got %d requests, want 1", n)
	}
	ob, _ := env.store.Outbox(ctx)
	if len(ob) != 1 || !ob[0].NextAttempt.Equal(t0.Add(24*time.Hour)) {
		t.Errorf("outbox = %+v, want one entry due in 24h", ob)
	}
}

// A wait between attempts of 10 s or more is logged with its cause and end
// time; a shorter one is not.
func TestLongNotificationWaitIsLogged(t *testing.T) {
	env := newDispatchEnv(t)
	_, url := newServer(t, newRecorder(answer{status: 429, header: map[string]string{"Retry-After": "12"}},
		answer{status: 503}, answer{status: 200}))
	core, logs := observer.New(zap.DebugLevel)
	d, err := NewDispatcher(DispatcherOptions{
		Notifiers: map[string]Notifier{"siem": buildWebhook(t, url, env.clk)}, Outbox: env.store,
		Clock: env.clk.Now, Sleep: env.sleep.Sleep, Logger: zap.New(core),
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, _ := d.Send(context.Background(), SummaryMessage("siem", "run-1", t0, sampleSummary()))
	if rep.Count(Sent) != 1 {
		t.Fatalf("rep = %+v", rep.Results)
	}
	got := logs.FilterMessage("waiting before retrying a notification").All()
	if len(got) != 1 {
		t.Fatalf("%d long-wait lines, want 1 (the 12 s Retry-After, not the 2 s backoff)", len(got))
	}
	f := got[0].ContextMap()
	if f["cause"] != string(ReasonRateLimited) || f["wait"] != 12*time.Second || !f["until"].(time.Time).Equal(t0.Add(12*time.Second)) {
		t.Errorf("fields %v", f)
	}
}

func TestShortRetryAfterIsHonoured(t *testing.T) {
	env := newDispatchEnv(t)
	_, url := newServer(t, newRecorder(answer{status: 429, header: map[string]string{"Retry-After": "9"}}, answer{status: 200}))
	disp := env.dispatcher(t, map[string]Notifier{"siem": buildWebhook(t, url, env.clk)})
	rep, _ := disp.Send(context.Background(), SummaryMessage("siem", "run-1", t0, sampleSummary()))
	if rep.Count(Sent) != 1 {
		t.Fatalf("rep = %+v", rep.Results)
	}
	if s := env.sleep.Sleeps(); len(s) != 1 || s[0] != 9*time.Second {
		t.Errorf("sleeps = %v", s)
	}
}

func TestCanceledRunLeavesMessagesInOutbox(t *testing.T) {
	env := newDispatchEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	n := notifierFunc(func(ctx context.Context, m *Message) (bool, error) {
		calls++
		cancel() // the run's deadline passes during the first attempt
		return true, &Error{Receiver: "x", Reason: ReasonServerError, Retryable: true, msg: "HTTP 502"}
	})
	disp := env.dispatcher(t, map[string]Notifier{"x": n})
	rep, err := disp.Send(ctx, SummaryMessage("x", "run-1", t0, sampleSummary()), FailureMessage("x", "run-1", t0, sampleFailure()))
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 || len(rep.Results) != 1 || rep.Results[0].Outcome != Deferred {
		t.Fatalf("calls %d, results %+v", calls, rep.Results)
	}
	// Bookkeeping was written although ctx had ended; both stay queued.
	ob, _ := env.store.Outbox(context.Background())
	if len(ob) != 2 {
		t.Fatalf("outbox = %+v", ob)
	}
	for _, e := range ob {
		if e.ID == rep.Results[0].ID && (e.Attempts != 1 || e.LastError == "") {
			t.Errorf("deferred entry = %+v", e)
		}
	}
}

func TestExpiredAndOrphanedEntriesAreDropped(t *testing.T) {
	ctx := context.Background()
	env := newDispatchEnv(t)
	calls := 0
	n := notifierFunc(func(context.Context, *Message) (bool, error) {
		calls++
		return true, errors.New("still down")
	})
	disp := env.dispatcher(t, map[string]Notifier{"x": n})
	if _, err := disp.Send(ctx, SummaryMessage("x", "run-1", t0, sampleSummary()), SummaryMessage("gone", "run-1", t0, sampleSummary())); err != nil {
		t.Fatal(err)
	}
	env.clk.Advance(8 * 24 * time.Hour)
	rep, _ := disp.Flush(ctx)
	if len(rep.Results) != 1 || rep.Results[0].Outcome != Failed || rep.Results[0].Reason != ReasonExpired {
		t.Fatalf("expired = %+v", rep.Results)
	}
	if ob, _ := env.store.Outbox(ctx); len(ob) != 0 {
		t.Errorf("outbox = %+v", ob)
	}
	// The message for a receiver no longer configured failed at once.
	if got := env.metrics.get(); len(got) != 3 || got[0] != "gone/summary/failed" || got[1] != "x/summary/deferred" || got[2] != "x/summary/failed" {
		t.Errorf("metrics = %v", got)
	}
}

func TestDeliverNowWithoutOutbox(t *testing.T) {
	_, url := newServer(t, newRecorder(answer{status: 500}, answer{status: 200, body: "ok"}))
	clk := newClock()
	sl := &sleeper{}
	m := &fakeMetrics{}
	d, err := NewDispatcher(DispatcherOptions{Notifiers: map[string]Notifier{"s": buildSlack(t, url, clk)}, Clock: clk.Now, Sleep: sl.Sleep, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	if r := d.Deliver(context.Background(), TestMessage("s", t0)); r.Outcome != Sent || r.Attempts != 2 {
		t.Errorf("Deliver = %+v", r)
	}
	if r := d.Deliver(context.Background(), TestMessage("nope", t0)); r.Outcome != Failed || r.Reason != ReasonConfig {
		t.Errorf("Deliver to unknown receiver = %+v", r)
	}
	if _, err := d.Send(context.Background(), TestMessage("s", t0)); err == nil {
		t.Error("Send without an outbox succeeded")
	}
	if got := m.get(); len(got) != 2 || got[0] != "s/test/sent" || got[1] != "nope/test/failed" {
		t.Errorf("metrics = %v", got)
	}
}

func TestSendRejectsInvalidMessage(t *testing.T) {
	env := newDispatchEnv(t)
	disp := env.dispatcher(t, map[string]Notifier{})
	if _, err := disp.Send(context.Background(), &Message{ID: "x", Kind: KindSummary, Receiver: "r"}); err == nil {
		t.Error("invalid message accepted")
	}
}

func TestSuppressedDigestDropsStalePendingOne(t *testing.T) {
	ctx := context.Background()
	env := newDispatchEnv(t)
	d := unwarnedDigest()
	seedMarks(t, env.store, d)
	rec := newRecorder(answer{status: 200}, answer{status: 503})
	_, url := newServer(t, rec)
	disp := env.dispatcher(t, map[string]Notifier{"siem": buildWebhook(t, url, env.clk)})

	// Run 1: digest A delivered.
	if rep, _ := disp.Send(ctx, DigestMessage("siem", "run-1", t0, d)); rep.Count(Sent) != 1 {
		t.Fatalf("run 1 = %+v", rep.Results)
	}
	// Run 2: a token joins; digest B cannot be delivered.
	env.clk.Advance(time.Hour)
	b := d
	b.Items = append(append([]DigestItem(nil), d.Items...), DigestItem{TokenID: "t-x", TokenName: "x", Policy: "unused-90d", Action: "delete", Reason: "r", MarkedAt: env.clk.Now(), Grace: grace14d})
	if rep, _ := disp.Send(ctx, DigestMessage("siem", "run-2", env.clk.Now(), b)); rep.Count(Deferred) != 1 {
		t.Fatalf("run 2 = %+v", rep.Results)
	}
	// Run 3: that token is gone again; the digest is A, already delivered.
	env.clk.Advance(time.Hour)
	rep, err := disp.Send(ctx, DigestMessage("siem", "run-3", env.clk.Now(), d))
	if err != nil || rep.Count(Suppressed) != 1 || len(rep.Results) != 1 {
		t.Fatalf("run 3 = %+v, %v", rep.Results, err)
	}
	if ob, _ := env.store.Outbox(ctx); len(ob) != 0 {
		t.Errorf("stale digest B still pending: %+v", ob)
	}
}

// Send with a context that has already ended (a shutdown at the end of a
// run) queues the messages and tries none, without an error; Withdraw takes
// a queued message back.
func TestSendAfterShutdownQueuesAndWithdrawRemoves(t *testing.T) {
	env := newDispatchEnv(t)
	calls := 0
	d := env.dispatcher(t, map[string]Notifier{"siem": notifierFunc(func(context.Context, *Message) (bool, error) {
		calls++
		return false, nil
	})})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a := SummaryMessage("siem", "run-1", t0, sampleSummary())
	b := FailureMessage("siem", "run-1", t0, Failure{Kind: FailureRun, Tenant: "https://acme", Error: "x", At: t0})
	rep, err := d.Send(ctx, a, b)
	if err != nil || len(rep.Results) != 0 || calls != 0 {
		t.Fatalf("Send after shutdown: %+v, %v, %d calls; want queued, untried, no error", rep.Results, err, calls)
	}
	if err := d.Withdraw(ctx, a.ID, "no-such-id"); err != nil {
		t.Fatal(err)
	}
	ob, err := env.store.Outbox(context.Background())
	if err != nil || len(ob) != 1 || ob[0].ID != b.ID {
		t.Fatalf("outbox %+v (%v), want only %s", ob, err, b.ID)
	}
	if rep, err := d.Flush(context.Background()); err != nil || rep.Count(Sent) != 1 || calls != 1 {
		t.Fatalf("next Flush: %+v, %v, %d calls", rep.Results, err, calls)
	}
}
