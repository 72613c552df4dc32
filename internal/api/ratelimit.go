package api

import (
	"context"
	"fmt"

	"golang.org/x/time/rate"
)

// windowMargin stretches the tenant's window by 3% when sizing the limiter. The
// tenant counts requests as they arrive, the limiter as they leave; the margin
// absorbs the difference in latency between requests (up to 300 ms at the
// default 10 s window) while keeping a long run within 3% of the fastest
// schedule the tenant allows.
const windowMargin = 0.03

// newLimiter sizes a token bucket for a tenant that allows Requests per Per,
// counted over a fixed or a sliding window (the docs do not say which; either
// way a window is half-open: "the requests of the last 10 s").
//
// The tempting "rate.Every(Per/Requests), burst Requests" grants up to
// 2·Requests in one window (a full bucket spent at once, then the refill) and
// earns a 429 on every large run. With burst 1 instead, two grants are always at
// least 1/r apart, so a half-open window of length L holds at most ceil(L·r)
// of them. Choosing r = Requests / (Per·(1+windowMargin)) keeps every window of
// up to Per·(1+windowMargin) at or under Requests: the tenant's own window, plus
// 3% of it for requests that arrive closer together than they left. A lone
// request still goes out at once, and a long run proceeds at 97% of the
// tenant's rate, inside the design's 5% of requests/allowed-rate.
//
// Only API requests pass through the limiter. The token endpoint is not behind
// the gateway's per-client-id API limit (and is called once per access-token
// lifetime), so it is not counted; the simulator does not count it either.
// One limiter serves all API versions the client uses (the PAT version and v3
// public identities), which is conservative where the tenant counts per version.
func newLimiter(rl RateLimit) (*rate.Limiter, error) {
	if rl.Requests < 0 {
		return nil, nil
	}
	if rl.Per < 0 {
		return nil, fmt.Errorf("api: rate limit period %s is negative", rl.Per)
	}
	n, per := rl.Requests, rl.Per
	if n == 0 {
		n = DefaultRateRequests
	}
	if per == 0 {
		per = DefaultRatePer
	}
	r := rate.Limit(float64(n) / (per.Seconds() * (1 + windowMargin)))
	return rate.NewLimiter(r, 1), nil
}

// waitTurn blocks until the limiter allows one more request, using the
// injectable Sleep so that tests see (and may skip) the delay.
func (c *Client) waitTurn(ctx context.Context, op string) error {
	if c.limiter == nil {
		return ctx.Err()
	}
	r := c.limiter.Reserve()
	if !r.OK() {
		return fmt.Errorf("api: rate limiter refused a request")
	}
	d := r.Delay()
	if d <= 0 {
		return ctx.Err()
	}
	if err := c.wait(ctx, op, WaitRateLimit, d, nil); err != nil {
		r.Cancel()
		return err
	}
	return nil
}
