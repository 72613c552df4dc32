// Package janitor is patjanitor's engine: inventory -> decide -> guardrails ->
// plan -> (execute) -> journal. The plan command, apply and the daemon all run
// it; they differ only in whether Execute is called and where the plan comes
// from.
//
// The engine joins the other packages through small interfaces it declares
// itself (Tenant, Journal, Metrics): internal/api's *Client, internal/audit's
// *Journal and internal/metrics' *Metrics satisfy them, and tests substitute
// hand-written fakes where a real one cannot produce the failure to test.
//
// The safety invariants of DESIGN.md that live here:
//
//   - Incomplete data is fatal (invariant 3): a listing that failed, was
//     malformed, returned exactly the 250-item page cap of this API family, held
//     a token twice with different content, or held a token its filter excludes
//     makes the inventory incomplete. The plan is still produced, for the report,
//     carrying the error, but Execute refuses it.
//   - Guardrails trip before the first mutation (invariant 4): when any limit is
//     exceeded, the run acts on nothing; it never executes an arbitrary subset.
//   - The journal comes first (invariant 5): each mutation's intent, with the
//     token's prior state and the exact request, is appended (and fsynced by the
//     journal) before the request is sent; a failed append stops the run.
//   - A saved plan is re-verified (invariant 6): ApplyPlan executes only the
//     items whose token still gets the same decision in a fresh listing.
//   - The credential the engine runs as is never acted on (invariant 2): policy
//     evaluation skips it, and Execute checks again right before each request.
package janitor
