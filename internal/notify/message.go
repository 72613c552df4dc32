package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/state"
)

// Notifier delivers one message through one channel. retry reports whether
// the same message may succeed later (a 5xx, a 429, a dropped connection);
// false with an error means trying again cannot help (a 4xx, a rejected
// address, a broken template). Implementations do not retry themselves.
type Notifier interface {
	Notify(ctx context.Context, m *Message) (retry bool, err error)
}

// Kind is the kind of a message. Its string is the `kind` metric label.
type Kind string

// The kinds of message.
const (
	KindSummary Kind = "summary" // after every run: counts per policy and action
	KindDigest  Kind = "digest"  // to an owner, before actions: the marked tokens
	KindNotice  Kind = "notice"  // to an owner, after actions: what was done
	KindFailure Kind = "failure" // a failed run, a tripped guardrail, an auth error
	KindTest    Kind = "test"    // `patjanitor notify test RECEIVER`
)

// Kinds lists every kind, in a fixed order (for metrics initialisation and
// template loading).
func Kinds() []Kind { return []Kind{KindSummary, KindDigest, KindNotice, KindFailure, KindTest} }

// Message is one notification for one receiver. Exactly one of the content
// fields (Summary, Digest, Notice, Failure, Test) is set, matching Kind. It is
// stored in the outbox as JSON, and rendered when it is sent, so a message that
// waits in the outbox is rendered with the templates and clock of the attempt
// that delivers it.
type Message struct {
	// ID is deterministic (see the constructors): it is the outbox key, so a
	// newer digest for the same owner replaces an undelivered older one.
	ID        string    `json:"id"`
	Kind      Kind      `json:"kind"`
	Receiver  string    `json:"receiver"`
	RunID     string    `json:"runId,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// To are the email recipients of an owner message; empty means the
	// receiver's configured recipients. Non-email receivers ignore it.
	To []string `json:"to,omitempty"`

	Summary *Summary `json:"summary,omitempty"`
	Digest  *Digest  `json:"digest,omitempty"`
	Notice  *Notice  `json:"notice,omitempty"`
	Failure *Failure `json:"failure,omitempty"`
	Test    *Test    `json:"test,omitempty"`
}

// Owner is a token owner as the engine knows them after the identity lookup.
type Owner struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	// Fallback is true when Email is the configured fallback address because
	// the owner has none (or no such identity exists).
	Fallback bool `json:"fallback,omitempty"`
}

// Summary is the run summary.
type Summary struct {
	Tenant     string    `json:"tenant"`
	DryRun     bool      `json:"dryRun"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	Population int       `json:"population"`
	// APIClients is the API client population, when the run had apiClients
	// policies (their items are rows and items like the tokens', by their
	// own policy names).
	APIClients int          `json:"apiClients,omitempty"`
	Rows       []SummaryRow `json:"rows"`
	// Top are the first items of the plan (its order), at most the limit
	// given to Summarize; More counts the rest.
	Top        []SummaryItem `json:"top"`
	More       int           `json:"more"`
	Guardrails []Guardrail   `json:"guardrails"`
	// Approved is set when the run applied a signed plan: which file, and
	// who approved it.
	Approved *ApprovedPlan `json:"approved,omitempty"`
	// Approval is set when actions wait for reviewers' signatures
	// (approvals configured): how many, and the plan file to sign.
	Approval *AwaitingApproval `json:"approval,omitempty"`
}

// ApprovedPlan names the signed plan a run applied.
type ApprovedPlan struct {
	File       string   `json:"file"`
	PlanHash   string   `json:"planHash"`
	Principals []string `json:"principals"`
}

// AwaitingApproval tells reviewers that there is something to sign.
type AwaitingApproval struct {
	Actions int `json:"actions"`
	// Plan is where serve saved the plan (empty without --plans-dir).
	Plan string `json:"plan,omitempty"`
	// Required is how many distinct reviewers must sign.
	Required int `json:"required"`
}

// Totals adds up the rows.
func (s *Summary) Totals() SummaryRow {
	var t SummaryRow
	for _, r := range s.Rows {
		t.Matched += r.Matched
		t.Applied += r.Applied
		t.WouldApply += r.WouldApply
		t.Pending += r.Pending
		t.Failed += r.Failed
		t.Skipped += r.Skipped
	}
	return t
}

// Tripped returns the tripped guardrails.
func (s *Summary) Tripped() []Guardrail {
	var out []Guardrail
	for _, g := range s.Guardrails {
		if g.Tripped {
			out = append(out, g)
		}
	}
	return out
}

// SummaryRow counts the items of one policy and action by outcome.
type SummaryRow struct {
	Policy     string `json:"policy"`
	Action     string `json:"action"`
	Matched    int    `json:"matched"`
	Applied    int    `json:"applied"`
	WouldApply int    `json:"wouldApply"`
	Pending    int    `json:"pending"` // marked, waiting for the grace period
	Failed     int    `json:"failed"`
	Skipped    int    `json:"skipped"`
}

// Item outcomes, as the engine reports them in SummaryItem.Outcome and
// NoticeItem.Outcome (the same words as actions_total's outcome label, plus
// pending and already_gone).
const (
	OutcomeApplied     = "applied"
	OutcomeWouldApply  = "would_apply"
	OutcomePending     = "pending"
	OutcomeFailed      = "failed"
	OutcomeSkipped     = "skipped"
	OutcomeAlreadyGone = "already_gone"
)

// SummaryItem is one plan item in a summary.
type SummaryItem struct {
	TokenID   string `json:"tokenId"`
	TokenName string `json:"tokenName"`
	OwnerID   string `json:"ownerId"`
	OwnerName string `json:"ownerName,omitempty"`
	Policy    string `json:"policy"`
	Action    string `json:"action"`
	Outcome   string `json:"outcome"`
	Reason    string `json:"reason"`
}

// Guardrail is a limit checked before the first mutation.
type Guardrail struct {
	Name    string  `json:"name"`
	Limit   float64 `json:"limit"`
	Wanted  int     `json:"wanted"`
	Tripped bool    `json:"tripped"`
}

// Summarize counts items per policy and action (rows sorted by policy, then
// action) and keeps the first top items.
func Summarize(items []SummaryItem, top int) (rows []SummaryRow, first []SummaryItem, more int) {
	idx := map[[2]string]int{}
	for _, it := range items {
		k := [2]string{it.Policy, it.Action}
		i, ok := idx[k]
		if !ok {
			i = len(rows)
			idx[k] = i
			rows = append(rows, SummaryRow{Policy: it.Policy, Action: it.Action})
		}
		r := &rows[i]
		r.Matched++
		switch it.Outcome {
		case OutcomeApplied, OutcomeAlreadyGone:
			r.Applied++
		case OutcomeWouldApply:
			r.WouldApply++
		case OutcomePending:
			r.Pending++
		case OutcomeFailed:
			r.Failed++
		case OutcomeSkipped:
			r.Skipped++
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Policy != rows[j].Policy {
			return rows[i].Policy < rows[j].Policy
		}
		return rows[i].Action < rows[j].Action
	})
	if top < 0 {
		top = 0
	}
	if len(items) > top {
		return rows, append([]SummaryItem(nil), items[:top]...), len(items) - top
	}
	return rows, append([]SummaryItem(nil), items...), 0
}

// Digest warns one owner about all of their marked tokens.
type Digest struct {
	// Resource is "apiClients" for a digest of marked API clients, sent to
	// the notify.apiClients receivers (API clients have no owner: Owner
	// names the receiver, Items hold client ids and names, and delivering it
	// starts the client marks' clocks); empty for tokens.
	Resource string       `json:"resource,omitempty"`
	Tenant   string       `json:"tenant"`
	Owner    Owner        `json:"owner"`
	Items    []DigestItem `json:"items"`
	// Contact is whom to ask for a snooze (the IAM team's address).
	Contact string `json:"contact,omitempty"`
	// SnoozeFor is the duration suggested in the example snooze command;
	// empty means 30d.
	SnoozeFor string `json:"snoozeFor,omitempty"`
}

// Earliest is the earliest item deadline (zero if no item has one).
func (d *Digest) Earliest() time.Time {
	var e time.Time
	for _, it := range d.Items {
		if it.Deadline != nil && (e.IsZero() || it.Deadline.Before(e)) {
			e = *it.Deadline
		}
	}
	return e
}

// DigestItem is one marked token.
type DigestItem struct {
	TokenID   string    `json:"tokenId"`
	TokenName string    `json:"tokenName"`
	Policy    string    `json:"policy"`
	Action    string    `json:"action"`
	Reason    string    `json:"reason"`
	MarkedAt  time.Time `json:"markedAt"`
	Grace     Duration  `json:"grace"`
	// Deadline is the mark's deadline once a warning was delivered. While
	// it is nil the renderer shows the time of rendering plus Grace: a
	// message is rendered when it is sent, and the clock starts on delivery.
	Deadline *time.Time `json:"deadline,omitempty"`
	// NeedsOwner marks a change patjanitor cannot make (the API lets only a
	// token's owner change its scopes): no action, no deadline; Change says
	// what the owner should change.
	NeedsOwner bool   `json:"needsOwner,omitempty"`
	Change     string `json:"change,omitempty"`
}

// Pending is the number of items with an action and a deadline.
func (d *Digest) Pending() int { return len(d.Items) - d.Asks() }

// Asks is the number of items only their owner can carry out.
func (d *Digest) Asks() int {
	n := 0
	for _, it := range d.Items {
		if it.NeedsOwner {
			n++
		}
	}
	return n
}

// Notice tells one owner what a run did to their tokens.
type Notice struct {
	// Resource is "apiClients" for a notice about API clients, sent to the
	// notify.apiClients receivers (API clients have no owner; Items then
	// hold client ids and names); empty for tokens.
	Resource string       `json:"resource,omitempty"`
	Tenant   string       `json:"tenant"`
	Owner    Owner        `json:"owner"`
	Items    []NoticeItem `json:"items"`
	Contact  string       `json:"contact,omitempty"`
}

// NoticeItem is one action on one token.
type NoticeItem struct {
	TokenID   string    `json:"tokenId"`
	TokenName string    `json:"tokenName"`
	Policy    string    `json:"policy"`
	Action    string    `json:"action"`
	Outcome   string    `json:"outcome"` // applied, already_gone, failed
	Reason    string    `json:"reason"`
	Detail    string    `json:"detail,omitempty"` // e.g. the scopes removed
	At        time.Time `json:"at"`
}

// FailureKind says what failed.
type FailureKind string

// The failure kinds.
const (
	FailureRun       FailureKind = "run_failed"
	FailureGuardrail FailureKind = "guardrail_tripped"
	FailureAuth      FailureKind = "auth_error"
	// FailureApprovalRefused: a signed plan was refused at apply time (too
	// few valid approvals, or apply PLAN's checks); nothing was changed. It
	// goes to the summary receivers too: reviewers wait for it.
	FailureApprovalRefused FailureKind = "approval_refused"
)

// Failure is an alert about a run.
type Failure struct {
	Kind   FailureKind `json:"kind"`
	Tenant string      `json:"tenant"`
	// Error is the failure's message. The engine's errors carry no secrets
	// (safety invariant 7); notifiers scrub the secrets they know anyway.
	Error      string      `json:"error,omitempty"`
	Guardrails []Guardrail `json:"guardrails,omitempty"`
	At         time.Time   `json:"at"`
}

// Test is the content of a test message.
type Test struct {
	Note string `json:"note"`
}

// SummaryMessage addresses a run summary to receiver.
func SummaryMessage(receiver, runID string, at time.Time, s Summary) *Message {
	return &Message{ID: joinID("summary", runID, receiver), Kind: KindSummary, Receiver: receiver, RunID: runID, CreatedAt: at, Summary: &s}
}

// DigestMessage addresses an owner digest to receiver, for d.Owner.Email.
// Its ID depends on the receiver and owner only, so that it replaces an
// undelivered digest from an earlier run: one digest per owner.
func DigestMessage(receiver, runID string, at time.Time, d Digest) *Message {
	m := &Message{ID: DigestID(receiver, d.Owner.ID), Kind: KindDigest, Receiver: receiver, RunID: runID, CreatedAt: at, Digest: &d}
	if d.Owner.Email != "" {
		m.To = []string{d.Owner.Email}
	}
	return m
}

// DigestID is the id of the digest for ownerID through receiver: the one
// outbox entry an owner's pending warning has.
func DigestID(receiver, ownerID string) string {
	return joinID("digest", receiver, pat.IDKey(ownerID))
}

// NoticeMessage addresses an after-action notice to receiver, for
// n.Owner.Email.
func NoticeMessage(receiver, runID string, at time.Time, n Notice) *Message {
	m := &Message{ID: joinID("notice", runID, receiver, n.Owner.ID), Kind: KindNotice, Receiver: receiver, RunID: runID, CreatedAt: at, Notice: &n}
	if n.Owner.Email != "" {
		m.To = []string{n.Owner.Email}
	}
	return m
}

// FailureMessage addresses a failure alert to receiver.
func FailureMessage(receiver, runID string, at time.Time, f Failure) *Message {
	return &Message{ID: joinID("failure", runID, receiver, string(f.Kind)), Kind: KindFailure, Receiver: receiver, RunID: runID, CreatedAt: at, Failure: &f}
}

// TestMessage is the message `patjanitor notify test` sends.
func TestMessage(receiver string, at time.Time) *Message {
	return &Message{
		ID: joinID("test", receiver, at.UTC().Format("20060102T150405.000000000Z")), Kind: KindTest, Receiver: receiver, CreatedAt: at,
		Test: &Test{Note: "This is a test message from patjanitor. If you can read it, the receiver works."},
	}
}

// joinID makes a message id of its parts. A part longer than maxIDPart (an
// owner id from the listing may be up to 64 KiB) stands as the hex SHA-256
// of itself: the id is the outbox entry's key, and the state store refuses a
// key over 32 KiB, which failed the queueing of the whole run's messages (no
// owner warned, run after run). The hash keeps the id unique and the same
// each time, as withdrawing a digest by DigestID needs. Shorter parts, every
// real tenant's, stay as they are, except one that starts with the hash's
// own prefix: it is hashed too, so that an owner id spelling the hash of
// another, long one cannot take that owner's message id (and replace its
// digest in the outbox).
func joinID(parts ...string) string {
	for i, p := range parts {
		if len(p) > maxIDPart || strings.HasPrefix(p, hashedIDPart) {
			sum := sha256.Sum256([]byte(p))
			parts[i] = hashedIDPart + hex.EncodeToString(sum[:])
		}
	}
	return strings.Join(parts, "/")
}

// maxIDPart is the longest part joinID keeps verbatim: far longer than any
// id, run id or receiver name of a real tenant or config.
const maxIDPart = 256

// hashedIDPart starts a part joinID replaced with its hash.
const hashedIDPart = "sha256-"

// Validate checks that the content matches the kind.
func (m *Message) Validate() error {
	set := 0
	for _, p := range []bool{m.Summary != nil, m.Digest != nil, m.Notice != nil, m.Failure != nil, m.Test != nil} {
		if p {
			set++
		}
	}
	ok := set == 1
	switch m.Kind {
	case KindSummary:
		ok = ok && m.Summary != nil
	case KindDigest:
		ok = ok && m.Digest != nil && m.Digest.Owner.addressable() && len(m.Digest.Items) > 0
	case KindNotice:
		ok = ok && m.Notice != nil && m.Notice.Owner.addressable() && len(m.Notice.Items) > 0
	case KindFailure:
		ok = ok && m.Failure != nil
	case KindTest:
		ok = ok && m.Test != nil
	default:
		return fmt.Errorf("message %s: unknown kind %q", m.ID, m.Kind)
	}
	if !ok || m.ID == "" || m.Receiver == "" {
		return fmt.Errorf("message %q (kind %s, receiver %q): needs an id, a receiver and exactly the content of its kind (items, and an owner id or no address but the fallback, for digests and notices)", m.ID, m.Kind, m.Receiver)
	}
	return nil
}

// addressable reports whether a digest or notice may go to o. The PAT API
// makes every field of a token's owner optional, so a tenant may list a
// token without an owner id: its messages go where those of an owner without
// an email go (the fallback address, else the receiver's recipients), and
// requiring an id failed the queueing of every run that held or acted on
// such a token. What it must not be is addressed to a person's own email:
// no lookup could have told whose that is.
func (o Owner) addressable() bool {
	return o.ID != "" || o.Email == "" || o.Fallback
}

// OwnerID is the owner a digest or notice is about, or "".
func (m *Message) OwnerID() string {
	switch {
	case m.Digest != nil:
		return m.Digest.Owner.ID
	case m.Notice != nil:
		return m.Notice.Owner.ID
	}
	return ""
}

// MarkKeys are the marks a digest warns about: delivering it starts their
// grace clocks.
func (m *Message) MarkKeys() []state.MarkKey {
	if m.Digest == nil || m.Digest.Resource != "" {
		return nil
	}
	keys := make([]state.MarkKey, 0, len(m.Digest.Items))
	for _, it := range m.Digest.Items {
		keys = append(keys, state.KeyOf(it.TokenID, it.Policy))
	}
	return keys
}

// ClientMarkKeys are the API client marks a digest of the notify.apiClients
// receivers warns about: delivering it starts their clocks.
func (m *Message) ClientMarkKeys() []state.ClientMarkKey {
	if m.Digest == nil || m.Digest.Resource == "" {
		return nil
	}
	keys := make([]state.ClientMarkKey, 0, len(m.Digest.Items))
	for _, it := range m.Digest.Items {
		keys = append(keys, state.ClientMarkKey{ClientID: it.TokenID, Policy: it.Policy})
	}
	return keys
}

// Fingerprint identifies a digest's marks: the same tokens under the same
// policies and actions, marked at the same times. A mark that was removed and
// made again (a new MarkedAt) changes it, so its owner is warned again. Other
// kinds have no fingerprint.
func (m *Message) Fingerprint() string {
	if m.Digest == nil {
		return ""
	}
	lines := make([]string, 0, len(m.Digest.Items))
	for _, it := range m.Digest.Items {
		lines = append(lines, strings.Join([]string{it.TokenID, it.Policy, it.Action, it.MarkedAt.UTC().Format(time.RFC3339Nano)}, "\x00"))
	}
	sort.Strings(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
		h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("336h0m0s"), which both people and programs can read.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}
