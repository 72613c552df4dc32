package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/httpx"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/state"
)

// Outbox is the durable queue the Dispatcher works through; *state.Store
// implements it.
type Outbox interface {
	Enqueue(ctx context.Context, entries ...state.OutboxEntry) error
	DueOutbox(ctx context.Context, now time.Time) ([]state.OutboxEntry, error)
	// Settle records what a dispatch did with entries: delivered (and the
	// clocks it starts), dropped, deferred; in one transaction.
	Settle(ctx context.Context, batch ...state.Settlement) (map[string][]state.Mark, error)
	Drop(ctx context.Context, ids ...string) error
	// LastDeliveries are the owners' last delivered digests, by
	// pat.IDKey(owner id).
	LastDeliveries(ctx context.Context, ownerIDs []string) (map[string]state.Delivery, error)
}

// Metrics receives one call per message and final outcome of a dispatch
// (patjanitor_notifications_total{receiver,kind,outcome}).
type Metrics interface {
	Notification(receiver, kind, outcome string)
}

// Outcome is the result of one message in one dispatch. Its string is the
// `outcome` metric label.
type Outcome string

// The outcomes.
const (
	Sent       Outcome = "sent"       // delivered; removed from the outbox
	Failed     Outcome = "failed"     // permanent failure or expired; removed from the outbox
	Deferred   Outcome = "deferred"   // not delivered yet; stays in the outbox
	Suppressed Outcome = "suppressed" // a digest identical to one delivered within the interval; not sent
)

// Result is what happened to one message.
type Result struct {
	ID       string
	Receiver string
	Kind     Kind
	Outcome  Outcome
	Attempts int    // attempts in this dispatch
	Reason   Reason // for Failed and Deferred
	Err      error  // the last error (redacted), for Failed and Deferred
	// Warned are the marks whose grace clock this delivery started.
	Warned []state.Mark
}

// Report is the result of a dispatch.
type Report struct {
	Results []Result
}

// Count returns how many messages ended with outcome o.
func (r Report) Count(o Outcome) int {
	n := 0
	for _, res := range r.Results {
		if res.Outcome == o {
			n++
		}
	}
	return n
}

// DispatcherOptions configure a Dispatcher. Zero values take the defaults
// documented on each field.
type DispatcherOptions struct {
	Notifiers map[string]Notifier // by receiver name (from Build)
	Outbox    Outbox              // required for Send and Flush
	Logger    *zap.Logger         // nil: no-op
	Metrics   Metrics             // nil: none
	Clock     func() time.Time    // nil: time.Now
	// Sleep waits between attempts; it must return early with ctx's error
	// when ctx ends. nil: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Attempts per message per dispatch; default 3.
	Attempts int
	// Backoff is the first wait between attempts, doubled each time up to
	// MaxBackoff; defaults 1s and 30s. A longer Retry-After than MaxBackoff
	// defers the message to a later dispatch instead of holding the run.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// RetryInterval is the delay before a deferred message is due again,
	// doubled per deferral up to 6h; default 5m. Runs are usually further
	// apart, so in practice "the next run".
	RetryInterval time.Duration
	// MaxAge drops messages that have waited this long; default 7 days.
	// A dropped digest started no clock, and the next run warns again.
	MaxAge time.Duration
	// DigestInterval: see Config.DigestInterval; default DefaultDigestInterval.
	DigestInterval time.Duration
}

const maxRetryInterval = 6 * time.Hour

// longWait is the shortest wait between attempts that is logged (with its
// cause and end time), as the API client does: a run silent for longer looks
// hung.
const longWait = 10 * time.Second

// Dispatcher delivers messages: it writes them to the outbox first, then
// tries every due outbox entry with retries bounded by the caller's context.
// Run one dispatch at a time (the engine's run loop does): two concurrent
// Flushes could both pick up the same due entry.
type Dispatcher struct {
	o DispatcherOptions
}

// NewDispatcher checks opts and applies defaults.
func NewDispatcher(opts DispatcherOptions) (*Dispatcher, error) {
	if opts.Notifiers == nil {
		return nil, errors.New("notify dispatcher: no notifiers")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 3
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = 5 * time.Minute
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 7 * 24 * time.Hour
	}
	if opts.DigestInterval <= 0 {
		opts.DigestInterval = DefaultDigestInterval
	}
	return &Dispatcher{o: opts}, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Send puts msgs in the outbox (durably, in order, a batch of entries to a
// transaction: see state.Store.Enqueue) and then delivers every due entry,
// old and new, as Flush does. A digest identical to the one its owner got
// within the digest interval is not queued (Suppressed). The error is for the
// outbox itself (I/O): the messages before the failed batch stay queued,
// nothing is delivered by this call, and no grace clock starts (a clock
// starts only when a delivery is settled). Delivery failures are in the
// report.
func (d *Dispatcher) Send(ctx context.Context, msgs ...*Message) (Report, error) {
	if d.o.Outbox == nil {
		return Report{}, errors.New("notify dispatcher: no outbox")
	}
	var rep Report
	var entries []state.OutboxEntry
	now := d.o.Clock()
	// Queueing outlives the caller's context (a shutdown at the end of a
	// run): a message must reach the outbox to be delivered later; only the
	// delivery attempts stop with ctx.
	book := context.WithoutCancel(ctx)
	var owners []string
	for _, m := range msgs {
		if err := m.Validate(); err != nil {
			return rep, fmt.Errorf("send notifications: %w", err)
		}
		if m.Fingerprint() != "" {
			owners = append(owners, m.OwnerID())
		}
	}
	var last map[string]state.Delivery
	if len(owners) > 0 {
		var err error
		if last, err = d.o.Outbox.LastDeliveries(book, owners); err != nil {
			return rep, fmt.Errorf("send notifications: %w", err)
		}
	}
	var stale []string
	for _, m := range msgs {
		if fp := m.Fingerprint(); fp != "" {
			if l, ok := last[pat.IDKey(m.OwnerID())]; ok && l.Suppresses(fp, now, d.o.DigestInterval) {
				// An older, different digest still pending for this owner is
				// stale: the owner already has the current one. (Dropped
				// together below: one transaction, none when there is
				// nothing to drop, the usual case.)
				stale = append(stale, m.ID)
				d.o.Logger.Debug("digest suppressed: same marks delivered recently",
					zap.String("receiver", m.Receiver), zap.String("message_id", m.ID), zap.Time("last_sent", l.SentAt))
				d.record(&rep, Result{ID: m.ID, Receiver: m.Receiver, Kind: m.Kind, Outcome: Suppressed})
				continue
			}
		}
		payload, err := json.Marshal(m)
		if err != nil {
			return rep, fmt.Errorf("encode message %s: %w", m.ID, err)
		}
		entries = append(entries, state.OutboxEntry{
			ID: m.ID, Receiver: m.Receiver, Kind: string(m.Kind), OwnerID: m.OwnerID(), Fingerprint: m.Fingerprint(),
			Marks: m.MarkKeys(), ClientMarks: m.ClientMarkKeys(), Payload: payload, CreatedAt: m.CreatedAt,
		})
	}
	if len(stale) > 0 {
		if err := d.o.Outbox.Drop(book, stale...); err != nil {
			return rep, fmt.Errorf("send notifications: %w", err)
		}
	}
	if len(entries) > 0 {
		if err := d.o.Outbox.Enqueue(book, entries...); err != nil {
			return rep, err
		}
	}
	fl, err := d.Flush(ctx)
	rep.Results = append(rep.Results, fl.Results...)
	return rep, err
}

// Settling a dispatch's outcomes in the store is batched: one transaction
// (two fdatasyncs) per delivery made a first run with thousands of owner
// digests spend most of its time syncing. A batch is settled when it holds
// settleBatch outcomes, when its first delivery is settleAfter old, and at
// the end of the dispatch. A crash in between loses the record of at most
// one batch of deliveries: those warnings are sent again by the next run and
// their clocks start then, later than the owner was first told, never
// sooner (see state.Settle).
const (
	settleBatch = 500
	settleAfter = 2 * time.Second
)

// Flush tries every outbox entry that is due. When ctx ends it stops: the
// entry in flight is deferred and the rest stay due for the next dispatch
// (a ctx that has already ended tries nothing, and that is not an error:
// the messages wait, as they would for a receiver that is down).
// Bookkeeping after an attempt is written even if ctx has just ended, so a
// delivered message is never left looking undelivered.
func (d *Dispatcher) Flush(ctx context.Context) (Report, error) {
	if d.o.Outbox == nil {
		return Report{}, errors.New("notify dispatcher: no outbox")
	}
	var rep Report
	if ctx.Err() != nil {
		return rep, nil
	}
	due, err := d.o.Outbox.DueOutbox(ctx, d.o.Clock())
	if err != nil {
		return rep, fmt.Errorf("flush notifications: %w", err)
	}
	book := context.WithoutCancel(ctx)
	var batch []state.Settlement
	var sent []int // the results of batch's deliveries, in rep
	var first time.Time
	settle := func() error {
		if len(batch) == 0 {
			return nil
		}
		started, err := d.o.Outbox.Settle(book, batch...)
		for _, i := range sent {
			r := &rep.Results[i]
			if err == nil {
				r.Warned = started[r.ID]
			}
			d.o.Logger.Info("notification sent", zap.String("receiver", r.Receiver), zap.String("kind", string(r.Kind)),
				zap.String("message_id", r.ID), zap.Int("attempts", r.Attempts), zap.Int("grace_clocks_started", len(r.Warned)))
		}
		batch, sent = batch[:0], sent[:0]
		if err != nil {
			return fmt.Errorf("flush notifications: %w", err)
		}
		return nil
	}
	for _, e := range due {
		if ctx.Err() != nil {
			break
		}
		res, st := d.deliverEntry(ctx, e)
		if res.Outcome == Sent {
			sent = append(sent, len(rep.Results))
			if len(sent) == 1 {
				first = st.DeliveredAt
			}
		}
		d.record(&rep, res)
		batch = append(batch, st)
		if len(batch) >= settleBatch || (len(sent) > 0 && d.o.Clock().Sub(first) >= settleAfter) {
			if err := settle(); err != nil {
				return rep, err
			}
		}
	}
	return rep, settle()
}

// deliverEntry tries e and returns the result and what the store must
// record of it.
func (d *Dispatcher) deliverEntry(ctx context.Context, e state.OutboxEntry) (Result, state.Settlement) {
	res := Result{ID: e.ID, Receiver: e.Receiver, Kind: Kind(e.Kind)}
	log := d.o.Logger.With(zap.String("receiver", e.Receiver), zap.String("kind", e.Kind), zap.String("message_id", e.ID))
	fail := func(reason Reason, err error) (Result, state.Settlement) {
		res.Outcome, res.Reason, res.Err = Failed, reason, err
		log.Error("notification dropped", zap.String("reason", string(reason)), zap.Int("attempts_total", e.Attempts+res.Attempts), zap.Error(err))
		return res, state.Settlement{ID: e.ID, Drop: true}
	}
	now := d.o.Clock()
	if now.Sub(e.CreatedAt) > d.o.MaxAge {
		return fail(ReasonExpired, fmt.Errorf("message waited since %s, longer than %s; last error: %s", e.CreatedAt.UTC().Format(time.RFC3339), d.o.MaxAge, e.LastError))
	}
	var m Message
	if err := json.Unmarshal(e.Payload, &m); err != nil {
		return fail(ReasonConfig, fmt.Errorf("decode outbox payload: %w", err))
	}
	if err := m.Validate(); err != nil {
		return fail(ReasonConfig, err)
	}
	n, ok := d.o.Notifiers[e.Receiver]
	if !ok {
		return fail(ReasonConfig, fmt.Errorf("no receiver named %q in the configuration", e.Receiver))
	}
	retry, err := d.attempt(ctx, n, &m, log, &res)
	if err == nil {
		res.Outcome = Sent
		return res, state.Settlement{ID: e.ID, DeliveredAt: d.o.Clock()}
	}
	res.Reason, res.Err = reasonFor(err), err
	if !retry {
		return fail(res.Reason, err)
	}
	res.Outcome = Deferred
	total := e.Attempts + res.Attempts
	next := d.o.Clock().Add(d.retryDelay(total, err))
	log.Warn("notification deferred", zap.String("reason", string(res.Reason)), zap.Int("attempts_total", total), zap.Time("next_attempt", next), zap.Error(err))
	return res, state.Settlement{ID: e.ID, Attempts: total, NextAttempt: next, LastError: err.Error()}
}

// Withdraw removes undelivered messages from the outbox, for example the
// digest of an owner whose tokens are no longer marked: delivered later, it
// would warn about an action that will not happen. Ids not in the outbox are
// not an error. It is bookkeeping: it is done even if ctx has ended.
func (d *Dispatcher) Withdraw(ctx context.Context, ids ...string) error {
	if d.o.Outbox == nil {
		return errors.New("notify dispatcher: no outbox")
	}
	if len(ids) == 0 {
		return nil
	}
	if err := d.o.Outbox.Drop(context.WithoutCancel(ctx), ids...); err != nil {
		return fmt.Errorf("withdraw notification: %w", err)
	}
	for _, id := range ids {
		d.o.Logger.Debug("notification withdrawn", zap.String("message_id", id))
	}
	return nil
}

// Deliver sends one message now, with retries, without the outbox: for
// `patjanitor notify test`, where the operator is waiting for the answer.
func (d *Dispatcher) Deliver(ctx context.Context, m *Message) Result {
	res := Result{ID: m.ID, Receiver: m.Receiver, Kind: m.Kind}
	log := d.o.Logger.With(zap.String("receiver", m.Receiver), zap.String("kind", string(m.Kind)), zap.String("message_id", m.ID))
	var err error
	retry := false
	if n, ok := d.o.Notifiers[m.Receiver]; !ok {
		err = &Error{Receiver: m.Receiver, Reason: ReasonConfig, msg: "no such receiver in the configuration"}
	} else if verr := m.Validate(); verr != nil {
		err = &Error{Receiver: m.Receiver, Reason: ReasonConfig, msg: verr.Error(), err: verr}
	} else {
		retry, err = d.attempt(ctx, n, m, log, &res)
	}
	res.Reason = reasonFor(err)
	switch {
	case err == nil:
		res.Outcome, res.Reason = Sent, ""
	case retry:
		res.Outcome, res.Err = Deferred, err
	default:
		res.Outcome, res.Err = Failed, err
	}
	d.record(nil, res)
	return res
}

// attempt calls the notifier up to Attempts times, waiting with exponential
// backoff (or the server's Retry-After) between retryable failures. It logs a
// failed attempt only when the error differs from the previous one.
func (d *Dispatcher) attempt(ctx context.Context, n Notifier, m *Message, log *zap.Logger, res *Result) (retry bool, err error) {
	var prev string
	for i := 0; i < d.o.Attempts; i++ {
		if i > 0 {
			wait := d.backoff(i, err)
			if wait > d.o.MaxBackoff {
				return true, err // a long Retry-After: defer, do not hold the run
			}
			if wait >= longWait {
				log.Warn("waiting before retrying a notification", zap.Int("attempt", res.Attempts+1),
					zap.String("cause", string(reasonFor(err))), zap.Duration("wait", wait),
					zap.Time("until", d.o.Clock().Add(wait)), zap.Error(err))
			}
			if serr := d.o.Sleep(ctx, wait); serr != nil {
				return true, err
			}
		}
		res.Attempts++
		retry, err = n.Notify(ctx, m)
		if err == nil {
			return false, nil
		}
		if s := err.Error(); s != prev {
			log.Debug("notification attempt failed", zap.Int("attempt", res.Attempts), zap.Bool("retryable", retry), zap.Error(err))
			prev = s
		}
		if !retry || ctx.Err() != nil {
			return retry, err
		}
	}
	return true, err
}

// backoff is the wait before attempt i (1-based retries).
func (d *Dispatcher) backoff(i int, err error) time.Duration {
	wait := httpx.Backoff{Base: d.o.Backoff, Max: d.o.MaxBackoff}.Step(i)
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > wait {
		return e.RetryAfter
	}
	return wait
}

// retryDelay is how long a deferred entry waits for the next dispatch.
func (d *Dispatcher) retryDelay(totalAttempts int, err error) time.Duration {
	deferrals := (totalAttempts + d.o.Attempts - 1) / d.o.Attempts
	wait := d.o.RetryInterval
	for i := 1; i < deferrals && wait < maxRetryInterval; i++ {
		wait *= 2
	}
	if wait > maxRetryInterval {
		wait = maxRetryInterval
	}
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > wait {
		wait = e.RetryAfter
	}
	return wait
}

func reasonFor(err error) Reason {
	if err == nil {
		return ""
	}
	if r := ReasonOf(err); r != "" {
		return r
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return ReasonCanceled
	}
	return ReasonConnection
}

func (d *Dispatcher) record(rep *Report, res Result) {
	if rep != nil {
		rep.Results = append(rep.Results, res)
	}
	if d.o.Metrics != nil {
		d.o.Metrics.Notification(res.Receiver, string(res.Kind), string(res.Outcome))
	}
}
