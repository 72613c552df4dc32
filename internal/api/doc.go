// Package api is patjanitor's client for the SailPoint Identity Security Cloud
// (IdentityNow) personal access token API: OAuth2 client credentials, listing with
// the server-side lastUsed filters, delete, JSON Patch and create, in API versions
// v3, v2025 and v1, plus the public-identities lookup used to find token owners.
//
// The client is written for a janitor that deletes things, so it errs on the side
// of failing loudly: a listing whose body is truncated or malformed is an error,
// never a partial result; a create is never retried when the first attempt may have
// reached the tenant; and every error is an *Error that names the operation, the
// HTTP status and the tenant's detailCode and trackingId, and never the secret
// (nor the access token) in any form a server may echo it in. No request follows
// a redirect: a 3xx is ErrRedirect, naming the Location's host only. A PATCH
// counts only when its answer shows the same token with the values sent
// (ErrUnconfirmed otherwise).
//
// Requests pass through a client-side rate limiter sized so that a well-behaved run
// never meets the tenant's own limit (see RateLimit), and 429, 5xx and connection
// failures are retried within Config.MaxAttempts and the caller's context; a host
// name that does not resolve is not.
package api
