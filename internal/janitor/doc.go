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
// patjanitor's safety invariants, numbered as the tests (invariants_test.go)
// and the comments across the repository cite them:
//
//  1. plan, validate, serve --dry-run and every report-mode policy send no
//     mutating request.
//  2. The credential patjanitor runs as is never acted on; managed tokens are
//     skipped unless a policy opts in with includeManaged.
//  3. Incomplete data is fatal: a failed or suspicious listing stops every
//     mutation of the run.
//  4. Limits trip before the first mutation, and then nothing is acted on.
//  5. The journal durably holds each mutation's intent before the request and
//     its outcome after; if it cannot be written, nothing is changed.
//  6. apply PLAN executes only the items whose token still gets the same
//     decision at apply time, for the same tenant, within the plan's age.
//  7. Secrets never appear in logs, reports, metrics, errors or the journal.
//  8. A 404 on delete means already gone; only the documented success (for a
//     PATCH, an answer showing the requested values) counts as applied.
//  9. No redirect is followed; ids are compared without regard to case;
//     anything but an explicit managed: false is managed.
//  10. The journal is anchored outside itself (in the state store): a missing
//     tail or a replaced file stops the run.
//
// Those that live here, and how:
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
