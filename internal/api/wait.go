package api

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/httpx"
)

// Why the client waits: the patjanitor_api_wait_seconds{cause} values.
const (
	// WaitRetryAfter: the tenant asked for the wait (Retry-After on a 429 or a 5xx).
	WaitRetryAfter = "retry_after"
	// WaitBackoff: the backoff before repeating a request that failed without
	// a Retry-After (5xx, connection failure, a 429 without the header).
	WaitBackoff = "backoff"
	// WaitRateLimit: the client-side limiter keeping requests within the
	// tenant's budget (tenant.rateLimit).
	WaitRateLimit = "rate_limit"
)

// LongWait is the shortest wait the client logs (with its cause and when it
// ends): a run that is silent for longer than this looks hung.
const LongWait = 10 * time.Second

// WaitObserver, when the Config's Observer also implements it, is told when
// a wait starts and ends, so that /metrics shows a run that is waiting. The
// calls come in pairs with the same cause and d; several waits (one per
// worker) may be in progress at once.
type WaitObserver interface {
	WaitStarted(cause string, d time.Duration)
	WaitEnded(cause string, d time.Duration)
}

// Backoff for 5xx, connection failures and a 429 without Retry-After: 1 s
// doubling to at most 30 s (what the official Go SDK's retryablehttp does),
// with equal jitter so that parallel janitors spread out.
var retryBackoff = httpx.Backoff{Base: time.Second, Max: 30 * time.Second}

// DeadlineError is a wait the client did not start because it would end after
// ctx's deadline (the run's runTimeout): the request is not repeated and the
// operation fails at once, instead of sleeping into a deadline it cannot meet.
type DeadlineError struct {
	Operation string
	// Cause is one of the Wait* values; Wait is how long it would have been.
	Cause string
	Wait  time.Duration
	// Left is what remained of the deadline.
	Left time.Duration
	// Err is the failure that called for the wait (nil for the rate limiter).
	Err error
}

func (e *DeadlineError) Error() string {
	var what string
	switch e.Cause {
	case WaitRetryAfter:
		what = fmt.Sprintf("the tenant asked to wait %s (Retry-After)", e.Wait)
		if e.Wait >= httpx.MaxRetryAfter {
			what = fmt.Sprintf("the tenant asked to wait %s or more (Retry-After)", e.Wait)
		}
	case WaitRateLimit:
		what = fmt.Sprintf("the client-side rate limit (tenant.rateLimit) needs a wait of %s", e.Wait)
	default:
		what = fmt.Sprintf("the retry backoff is %s", e.Wait)
	}
	tail := fmt.Sprintf("not retried: %s, more than the %s left before the run's deadline (runTimeout)",
		what, e.Left.Round(time.Second))
	if e.Err != nil {
		return e.Err.Error() + "; " + tail
	}
	return e.Operation + ": " + tail
}

// Unwrap returns the failure that called for the wait, so errors.Is(err,
// ErrRateLimited) still holds.
func (e *DeadlineError) Unwrap() error { return e.Err }

// Is makes a DeadlineError match context.DeadlineExceeded: the operation ran
// out of time, only sooner than the context would have said.
func (e *DeadlineError) Is(target error) bool { return target == context.DeadlineExceeded }

// pause waits before attempt+1: what the tenant asked for in Retry-After, or
// the backoff.
func (c *Client) pause(ctx context.Context, attempt int, e *Error) error {
	d, cause := retryBackoff.Delay(attempt), WaitBackoff
	if e.hasRetryAfter {
		d, cause = e.RetryAfter, WaitRetryAfter
	}
	return c.wait(ctx, e.Operation, cause, d, e)
}

// wait sleeps for d (through Config.Sleep) on behalf of op. A wait that would
// outlast ctx's deadline is not started: it returns a *DeadlineError at once.
// A wait of LongWait or more is logged with its cause and end time, and every
// wait is reported to a WaitObserver while it lasts.
func (c *Client) wait(ctx context.Context, op, cause string, d time.Duration, why error) error {
	if d <= 0 {
		return ctx.Err()
	}
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < d {
			return &DeadlineError{Operation: op, Cause: cause, Wait: d, Left: max(left, 0), Err: why}
		}
	}
	if d >= LongWait {
		fields := []zap.Field{zap.String("operation", op), zap.String("cause", cause),
			zap.Duration("wait", d), zap.Time("until", c.now().Add(d))}
		if why != nil {
			fields = append(fields, zap.String("after", why.Error()))
		}
		c.log.Warn("waiting before the next request to the tenant", fields...)
	}
	if c.waits != nil {
		c.waits.WaitStarted(cause, d)
		defer c.waits.WaitEnded(cause, d)
	}
	if err := c.sleep(ctx, d); err != nil {
		if why != nil {
			return fmt.Errorf("%s: waiting to retry after %w: %w", op, why, err)
		}
		return fmt.Errorf("%s: waiting for the rate limiter: %w", op, err)
	}
	return nil
}
