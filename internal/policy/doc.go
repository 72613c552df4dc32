// Package policy is patjanitor's configuration: the strict loader of
// policies.yaml (tenant, schedule, guardrails, exclusions, owners,
// notifications and the policies themselves) and the pure evaluation of
// policies against tokens.
//
// Loading is strict by design, because policies are what security teams write,
// review and are judged by: unknown and duplicate keys, wrong types, bad
// durations, regexps, globs, schedules and time zones, inline secrets, and
// actions or conditions the tenant's API version cannot support are errors,
// all reported together, each with its file, line, policy and field. A file
// is loaded in three steps: a strict decode that records where each key is
// written, the defaults for what it leaves out, and a validation that only
// reads the result.
//
// Evaluation does no I/O and reads no clock: the decision time, the
// janitor's own client id and any owner data come in an Env. Every Decision
// explains itself with the token's fields and the cutoffs that decided it.
// Listings turns the policy set into the fewest server-side listing calls
// that still return every token a policy could act on.
//
// The reference for users is docs/policies.md.
package policy
