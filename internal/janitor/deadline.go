package janitor

import (
	"context"
	"fmt"
	"time"
)

// RunTimeoutError is the cause of a run's context once the config's
// runTimeout has passed: the run starts nothing new, the mutations in flight
// finish and are journaled, and the run fails with this error.
type RunTimeoutError struct {
	Timeout time.Duration
}

func (e *RunTimeoutError) Error() string {
	return fmt.Sprintf("the run took longer than runTimeout (%s) and was stopped; raise runTimeout if the tenant is that slow", e.Timeout)
}

// Is makes the error match context.DeadlineExceeded, which it is.
func (e *RunTimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// runKey marks a context that already carries a run's deadline; its value is
// the context before the deadline was added.
type runKey struct{}

// runContext gives ctx the run's deadline (the config's runTimeout) unless it
// already has one from an enclosing call (Run calls Plan). Everything a run
// does against the tenant happens under it; the follow-up after the run
// (notifications, bounded by their own timeout) uses outerContext.
func (e *Engine) runContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Value(runKey{}).(context.Context); ok || e.runTimeout <= 0 {
		return ctx, func() {}
	}
	rctx, cancel := context.WithTimeoutCause(ctx, e.runTimeout, &RunTimeoutError{Timeout: e.runTimeout})
	return context.WithValue(rctx, runKey{}, ctx), cancel
}

// outerContext is ctx without the run's deadline: a run that timed out still
// journals its end and sends its summary and failure notifications.
func outerContext(ctx context.Context) context.Context {
	if outer, ok := ctx.Value(runKey{}).(context.Context); ok {
		return outer
	}
	return ctx
}
