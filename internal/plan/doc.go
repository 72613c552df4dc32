// Package plan is the plan document: what one patjanitor run would do to a
// tenant's personal access tokens and why, in the form a reviewer reads,
// saves, approves and later hands to `patjanitor apply`.
//
// The document is JSON (what `plan -o json` and `--out` write). It carries a planHash that
// binds the reviewed content: apply refuses a plan whose content no longer
// hashes to it. The hash is defined over the canonical encoding (see Seal), not
// over the bytes of a file, so a plan survives re-indentation but not an edit.
//
// The package has no I/O of its own beyond Read and Write and knows nothing of
// policies or HTTP; the engine fills a Plan and the report package renders it.
package plan
