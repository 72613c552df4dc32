// Package audit is patjanitor's journal: an append-only, hash-chained JSONL
// file with one record per line, written before and after every mutation.
//
// Why it exists (safety invariant 5): before each mutation the journal holds
// a durable (fsynced) record of the token's prior state and the intended
// request, and after it the outcome. If the journal cannot be written nothing
// is changed. After a crash, an intent without an outcome tells the engine
// exactly which request may or may not have reached the tenant.
//
// # Format
//
// Each line is one Record encoded by encoding/json, keys in the order of the
// Record struct, ending with "prevHash" and then "hash":
//
//	{"seq":1,"time":"…","runId":"…","kind":"run-start",…,"prevHash":"","hash":"sha256:…"}
//
// hash is "sha256:" and the lowercase hex SHA-256 of the line's bytes exactly as
// written, with the hash value replaced by the empty string (so the hashed
// bytes end in `,"hash":""}`). Hashing the bytes rather than a re-encoding
// makes the check independent of how a later version decodes the record: any
// change to any byte of a line is detected. prevHash is the hash of the
// previous line; the first record's prevHash is GenesisHash (the empty
// string), and seq counts from 1 without gaps. A checker in any language:
// strip the newline, replace the final `"sha256:<hex>"}` with `""}`, hash.
//
// The chain proves that no record was changed, inserted, removed or reordered
// in the middle. A hash chain alone cannot prove that records were not cut
// off the end, nor that the file is the one patjanitor wrote: the Anchor,
// kept outside the journal (in the state store) after every append, does.
//
// # Segments
//
// Past a size (Options.SegmentBytes) the active file is renamed to the next
// sealed segment, journal-000001.jsonl, journal-000002.jsonl, …, and a new
// journal.jsonl starts; the chain continues across them (the first record of
// a segment has the seq after, and the prevHash of, the last record of the
// previous one). VerifyPath walks them all, oldest first.
//
// Secrets never go in: the record types have no field for a credential, and
// the token state recorded is the listing's, which never contains a secret.
package audit

import (
	"time"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/pat"
)

// GenesisHash is the prevHash of a journal's first record.
const GenesisHash = ""

// Kind is what a record says.
type Kind string

// The record kinds.
const (
	// KindRunStart opens a run that will mutate (written before its first
	// intent).
	KindRunStart Kind = "run-start"
	// KindIntent is written, and fsynced, before a mutation's request is
	// sent: the token as listed (Before) and the request (Request).
	KindIntent Kind = "intent"
	// KindOutcome is written after the request: what the tenant answered.
	// It closes the intent with the same RunID and TokenID.
	KindOutcome Kind = "outcome"
	// KindRunEnd closes a run with a summary in Note.
	KindRunEnd Kind = "run-end"
	// KindSnooze records a token exempted until Until, with the reason in
	// Note.
	KindSnooze Kind = "snooze"
	// KindAnchorReset records that an operator accepted the journal as it
	// is although it did not match its anchor (`audit reanchor`): the old
	// anchor and the reason are in Note.
	KindAnchorReset Kind = "anchor-reset"
	// KindStateRepair records that `patjanitor state repair` moved a
	// state store record that did not decode to the quarantine bucket:
	// the bucket, the key, the SHA-256 of its bytes and the reason are in
	// Note. It is written before the record moves.
	KindStateRepair Kind = "state-repair"
)

// Valid reports whether k is one of the kinds above.
func (k Kind) Valid() bool {
	switch k {
	case KindRunStart, KindIntent, KindOutcome, KindRunEnd, KindSnooze, KindAnchorReset, KindStateRepair:
		return true
	}
	return false
}

// Record is one journal line. Append fills Seq, Time, PrevHash and Hash; the
// caller fills the rest.
type Record struct {
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	// RunID is the run the record belongs to (a snooze may have none).
	RunID string `json:"runId,omitempty"`
	Kind  Kind   `json:"kind"`
	// Policy and TokenID name the decision an intent or outcome is about.
	Policy  string `json:"policy,omitempty"`
	TokenID string `json:"tokenId,omitempty"`
	// Before is the token as listed before the mutation (intents).
	Before *pat.Token `json:"before,omitempty"`
	// Request is the request about to be sent (intents).
	Request *Request `json:"request,omitempty"`
	// Outcome is what happened (outcomes).
	Outcome *Outcome `json:"outcome,omitempty"`
	// Until is the end of a snooze.
	Until *time.Time `json:"until,omitempty"`
	// Plan is set on the run-start of a run that executes an approved plan
	// (apply PLAN, or an interactive apply's confirmed plan): which document
	// was approved, and the guardrails accepted for it. Absent from older
	// journals and from other records (omitempty keeps their bytes, and so
	// their hashes, unchanged).
	Plan *PlanRef `json:"plan,omitempty"`
	// Note is free text: a run summary, a snooze reason, how an interrupted
	// intent was resolved.
	Note string `json:"note,omitempty"`
	// Resource is "apiClients" for a record about an OAuth API client (then
	// TokenID holds the client's id and Client, not Before, its state as
	// listed); empty for personal access tokens.
	Resource string `json:"resource,omitempty"`
	// Client is the API client as listed before the mutation (intents of
	// resource apiClients).
	Client *apiclient.Client `json:"client,omitempty"`
	// PrevHash is the previous record's Hash (GenesisHash for the first).
	PrevHash string `json:"prevHash"`
	// Hash is this record's hash; it must stay the last field (see the
	// package documentation).
	Hash string `json:"hash"`
}

// Approval is one reviewer's signature that counted. Principal and
// Fingerprint are proven by the signature; SignedAt and Reason are what the
// reviewer stated when signing.
type Approval struct {
	Principal   string     `json:"principal"`
	Fingerprint string     `json:"fingerprint"`
	SignedAt    *time.Time `json:"signedAt,omitempty"`
	Reason      string     `json:"reason,omitempty"`
}

// Request is a mutation's HTTP request: method, path (API version prefix
// included) and, for PATCH, the JSON Patch operations.
type Request struct {
	Method string        `json:"method"`
	Path   string        `json:"path"`
	Patch  []pat.PatchOp `json:"patch,omitempty"`
}

// Outcome is what a mutation's request came to.
type Outcome struct {
	// Status is the engine's word for it (applied, gone, failed, ...).
	Status string `json:"status"`
	// Code is the HTTP status of the last attempt (0: none, or no response).
	Code int `json:"code,omitempty"`
	// Error is the failure, as text (API errors carry no secrets).
	Error string `json:"error,omitempty"`
	// AlreadyGone is set when a delete met a 404: the token was gone already.
	AlreadyGone bool `json:"alreadyGone,omitempty"`
}

// PlanRef ties a run to the plan document reviewers approved. apply
// executes a re-sealed copy (fresh listing, dropped items), whose hash is in
// the run-start's Note; PlanHash is the hash of the document as approved, so
// that `grep` of the approved planHash finds the run that acted on it.
type PlanRef struct {
	// PlanHash is the approved plan's planHash ("sha256:…").
	PlanHash string `json:"planHash"`
	// File is the plan file as given to apply, and FileSHA256 the SHA-256
	// of its bytes as read ("sha256:…"), empty for a plan made and
	// confirmed in the same apply.
	File       string `json:"file,omitempty"`
	FileSHA256 string `json:"fileSha256,omitempty"`
	// AcceptedGuardrails are the plan's tripped guardrails the operator
	// accepted explicitly (apply --accept-guardrail), one entry each.
	AcceptedGuardrails []AcceptedGuardrail `json:"acceptedGuardrails,omitempty"`
	// Approvals are the reviewers' signatures that counted (approvals
	// configured).
	Approvals []Approval `json:"approvals,omitempty"`
	// Refused is why the apply was refused before anything was listed:
	// nothing was executed.
	Refused string `json:"refused,omitempty"`
}

// AcceptedGuardrail is one tripped guardrail accepted for a run: which, by
// whom (the OS user who ran apply) and why.
type AcceptedGuardrail struct {
	Name   string  `json:"name"`
	Limit  float64 `json:"limit"`
	Wanted int     `json:"wanted"`
	By     string  `json:"by"`
	Reason string  `json:"reason"`
}
