package notify

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/state"
)

// settleOutbox is the store with a window on Settle: it counts the batches
// and, with crash set, dies before committing one (nothing is written, as
// when the process is killed between the delivery and the commit).
type settleOutbox struct {
	*state.Store
	crash   bool
	batches [][]state.Settlement
}

func (o *settleOutbox) Settle(ctx context.Context, batch ...state.Settlement) (map[string][]state.Mark, error) {
	o.batches = append(o.batches, append([]state.Settlement(nil), batch...))
	if o.crash {
		return nil, errors.New("killed before the commit")
	}
	return o.Store.Settle(ctx, batch...)
}

// A warning delivered but not recorded (the process died before the commit
// of its batch) is sent again, and the grace clock starts at the second
// delivery: the action comes later than the owner was first told, never
// sooner, and never without a delivered warning.
func TestDeliveredButNotSettledIsSentAgain(t *testing.T) {
	ctx := context.Background()
	env := newDispatchEnv(t)
	d := unwarnedDigest()
	seedMarks(t, env.store, d)
	rec := newRecorder(answer{status: 200}, answer{status: 200})
	_, url := newServer(t, rec)
	ns := map[string]Notifier{"siem": buildWebhook(t, url, env.clk)}
	ob := &settleOutbox{Store: env.store, crash: true}
	disp, err := NewDispatcher(DispatcherOptions{Notifiers: ns, Outbox: ob, Clock: env.clk.Now, Sleep: env.sleep.Sleep})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := disp.Send(ctx, DigestMessage("siem", "run-1", env.clk.Now(), d)); err == nil {
		t.Fatal("a failed settle was not reported")
	}
	if n := len(rec.requests()); n != 1 {
		t.Fatalf("%d deliveries, want 1", n)
	}
	marks, _ := env.store.Marks(ctx)
	for _, m := range marks {
		if m.WarnedAt != nil {
			t.Fatalf("mark %s has a clock without a recorded delivery", m.Key())
		}
	}

	// The restarted daemon's next run: the digest is still in the outbox,
	// not suppressed (no delivery recorded), and sent again.
	env.restart(t)
	env.clk.Advance(time.Hour)
	second := env.clk.Now()
	rep, err := env.dispatcher(t, ns).Send(ctx, DigestMessage("siem", "run-2", second, d))
	if err != nil || rep.Count(Sent) != 1 || len(rep.Results[0].Warned) != len(d.Items) {
		t.Fatalf("second run = %+v, %v", rep.Results, err)
	}
	if n := len(rec.requests()); n != 2 {
		t.Fatalf("%d deliveries, want 2", n)
	}
	for _, it := range d.Items {
		m := markOf(t, env.store, it.TokenID, it.Policy)
		if m.WarnedAt == nil || !m.WarnedAt.Equal(second) || !m.Deadline.Equal(second.Add(time.Duration(it.Grace))) {
			t.Errorf("mark %s: warned %v deadline %v, want the clock from the second delivery %s", it.TokenID, m.WarnedAt, m.Deadline, second)
		}
	}
}

// A dispatch records its deliveries in batches: settleBatch at a time, and
// no delivery waits much longer than settleAfter (by the dispatcher's clock)
// for its record; every clock starts at its own delivery time.
func TestDispatchSettlesInBatches(t *testing.T) {
	ctx := context.Background()
	env := newDispatchEnv(t)
	const owners = 2*settleBatch + 7
	var msgs []*Message
	var digests []Digest
	var seed []state.Mark
	for i := range owners {
		d := unwarnedDigest()
		d.Owner.ID = fmt.Sprintf("owner-%04d", i)
		d.Items = d.Items[:1]
		d.Items[0].TokenID = fmt.Sprintf("tok-%04d", i)
		it := d.Items[0]
		seed = append(seed, state.Mark{TokenID: it.TokenID, OwnerID: d.Owner.ID, Policy: it.Policy, Action: it.Action,
			Reason: it.Reason, Grace: time.Duration(it.Grace), MarkedAt: it.MarkedAt})
		msgs = append(msgs, DigestMessage("siem", "run-1", t0, d))
		digests = append(digests, d)
	}
	if _, err := env.store.ReconcileMarks(ctx, []string{seed[0].Policy}, seed); err != nil {
		t.Fatal(err)
	}
	slow := false
	delivered := map[string]time.Time{}
	ns := map[string]Notifier{"siem": notifierFunc(func(_ context.Context, m *Message) (bool, error) {
		if slow {
			env.clk.Advance(700 * time.Millisecond) // a slow receiver
		}
		delivered[m.Digest.Items[0].TokenID] = env.clk.Now()
		return false, nil
	})}
	ob := &settleOutbox{Store: env.store}
	disp, err := NewDispatcher(DispatcherOptions{Notifiers: ns, Outbox: ob, Clock: env.clk.Now, Sleep: env.sleep.Sleep})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := disp.Send(ctx, msgs...)
	if err != nil || rep.Count(Sent) != owners {
		t.Fatalf("Send: %d sent, %v", rep.Count(Sent), err)
	}
	if len(ob.batches) != 3 || len(ob.batches[0]) != settleBatch || len(ob.batches[2]) != 7 {
		t.Fatalf("%d batches, want 3 (%d, %d, 7)", len(ob.batches), settleBatch, settleBatch)
	}
	for _, r := range rep.Results {
		if len(r.Warned) != 1 {
			t.Fatalf("result %s warned %d marks", r.ID, len(r.Warned))
		}
	}
	marks, _ := env.store.Marks(ctx)
	for _, m := range marks {
		if m.WarnedAt == nil || !m.WarnedAt.Equal(delivered[m.TokenID]) {
			t.Fatalf("mark %s warned %v, delivered %v", m.TokenID, m.WarnedAt, delivered[m.TokenID])
		}
	}

	// A slow receiver: a batch is settled after the attempt by which its
	// first delivery is settleAfter old.
	ob.batches, slow = nil, true
	env.clk.Advance(DefaultDigestInterval)
	msgs = msgs[:0]
	for _, d := range digests[:10] {
		msgs = append(msgs, DigestMessage("siem", "run-2", env.clk.Now(), d))
	}
	if rep, err := disp.Send(ctx, msgs...); err != nil || rep.Count(Sent) != 10 {
		t.Fatalf("slow Send: %+v, %v", rep.Results, err)
	}
	for _, b := range ob.batches {
		if age := b[len(b)-1].DeliveredAt.Sub(b[0].DeliveredAt); age > settleAfter+700*time.Millisecond {
			t.Errorf("a batch held deliveries %s apart", age)
		}
	}
	if len(ob.batches) < int(10*700*time.Millisecond/settleAfter) {
		t.Errorf("%d batches for 7s of deliveries", len(ob.batches))
	}
}
