package janitor

import (
	"fmt"
	"slices"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// MaxReason and MaxBy bound, in bytes, the reason an operator gives a
// journaled command (acknowledge, snooze, unsnooze, enable, approve, apply
// --accept-guardrail, audit reanchor) and the name of who asks. The journal
// takes a record of at most audit.MaxRecordSize (1 MiB), and JSON writes a
// control byte as six: within these bounds a record fits whatever its text
// and the id (an id as listed is at most 64 KiB, one typed at most the
// 128 KiB of an argument), and beyond them nobody reads it. Unbounded, a
// snooze or an acknowledgement kept while serve held the journal could be
// too big to journal, and the run that owes it to the journal would fail at
// every start: apply would refuse to run, and serve would journal nothing
// after it.
const (
	MaxReason = 4096
	MaxBy     = 256
)

// CheckReason refuses a reason or a name (--by) over MaxReason or MaxBy;
// cmd starts the message. Commands call it before they change anything.
func CheckReason(cmd, reason, by string) error {
	switch {
	case len(reason) > MaxReason:
		return fmt.Errorf("%s: the reason (--reason) is %d bytes long, at most %d: say what was decided, and where the rest is (a ticket); nothing was changed", cmd, len(reason), MaxReason)
	case len(by) > MaxBy:
		return fmt.Errorf("%s: who asks (--by) is %d bytes long, at most %d; nothing was changed", cmd, len(by), MaxBy)
	}
	return nil
}

// ReasonNote is a journal note's "REASON (by BY)", REASON alone without a
// name. A reason or a name over the bounds, as an older version kept them
// while serve held the journal, is clipped, saying so (the state store keeps
// it whole): whole it could not be journaled, and would stop every run that
// must journal it first.
func ReasonNote(reason, by string) string {
	note := clipped(reason, MaxReason, "reason")
	if by != "" {
		note += " (by " + clipped(by, MaxBy, "name") + ")"
	}
	return note
}

// boundedApprovals is approvals as a run-start journals them: a reviewer's
// reason over MaxReason clipped, saying so. The reason is the signer's
// statement beside the signature (not signed), read from the signature
// file: one written by an older `approve`, by hand or through serve's POST
// /approve can hold up to the file's 1 MiB, which JSON writes up to six-fold
// ('<' is \u003c); whole, the run-start could not be journaled and the plan
// could never be applied, with an error that named no reason.
func boundedApprovals(as []audit.Approval) []audit.Approval {
	var out []audit.Approval
	for i, a := range as {
		if len(a.Reason) <= MaxReason {
			continue
		}
		if out == nil {
			out = slices.Clone(as)
		}
		out[i].Reason = clipped(a.Reason, MaxReason, "reason")
	}
	if out == nil {
		return as
	}
	return out
}

func clipped(s string, n int, what string) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s (%s clipped from %d bytes)", untrusted.Clip(s, n), what, len(s))
}
