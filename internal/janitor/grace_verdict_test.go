package janitor

import (
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/state"
)

// TestGraceVerdictSameStepsForTokensAndClients pins what a token item and
// an API client item of a grace policy become at each step of the workflow
// (marked now, marked but not warned, warned and waiting, due): the same
// mode, Marked and Deadline, and the same reason but for who was warned.
// Both workflows read the clock through graceVerdict; this keeps the two
// wordings from drifting apart again.
func TestGraceVerdictSameStepsForTokensAndClients(t *testing.T) {
	const (
		id, pol = "2c9180835d2e5168015d32f890ca1581", "stale"
		grace   = 14 * 24 * time.Hour
	)
	now := time.Date(2026, 12, 20, 3, 0, 0, 0, time.UTC)
	marked := now.Add(-20 * 24 * time.Hour)
	warnedSoon, warnedLong := now.Add(-24*time.Hour), now.Add(-15*24*time.Hour)
	dSoon, dLong := warnedSoon.Add(grace), warnedLong.Add(grace)
	type stored struct {
		warned, deadline *time.Time
	}
	for _, tc := range []struct {
		name         string
		stored       *stored
		wantMode     string
		wantMarked   time.Time
		wantDeadline *time.Time
		token, cli   string
	}{
		{"new", nil, plan.ModeGrace, now, nil,
			"r; grace 14d: marked by this run, the clock starts when the owner's warning is delivered",
			"r; grace 14d: marked by this run, the clock starts when the warning to notify.apiClients is delivered"},
		{"not warned", &stored{}, plan.ModeGrace, marked, nil,
			"r; grace 14d: marked 2026-11-30T03:00:00.000Z, the owner's warning is not delivered yet (the clock starts on delivery)",
			"r; grace 14d: marked 2026-11-30T03:00:00.000Z, the warning to notify.apiClients is not delivered yet (the clock starts on delivery)"},
		{"waiting", &stored{&warnedSoon, &dSoon}, plan.ModeGrace, marked, &dSoon,
			"r; grace 14d: owner warned 2026-12-19T03:00:00.000Z, nothing is done before 2027-01-02T03:00:00.000Z",
			"r; grace 14d: notify.apiClients warned 2026-12-19T03:00:00.000Z, nothing is done before 2027-01-02T03:00:00.000Z"},
		{"due", &stored{&warnedLong, &dLong}, plan.ModeEnforce, marked, &dLong,
			"r; grace 14d: owner warned 2026-12-05T03:00:00.000Z, deadline 2026-12-19T03:00:00.000Z passed",
			"r; grace 14d: notify.apiClients warned 2026-12-05T03:00:00.000Z, deadline 2026-12-19T03:00:00.000Z passed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tokMarks := map[state.MarkKey]state.Mark{}
			cr := &clientRun{stored: map[state.ClientMarkKey]state.ClientMark{}}
			if s := tc.stored; s != nil {
				m := state.Mark{TokenID: id, Policy: pol, Action: plan.ActionDelete, Grace: grace, MarkedAt: marked, WarnedAt: s.warned, Deadline: s.deadline}
				tokMarks[m.Key()] = m
				cr.stored[clientMarkKey(id, pol)] = state.ClientMark{ClientID: id, Policy: pol, Action: plan.ActionDelete, Grace: grace,
					MarkedAt: marked, WarnedAt: s.warned, Deadline: s.deadline}
			}
			tok := plan.Item{TokenID: id, Policy: pol, Mode: plan.ModeEnforce, Action: plan.ActionDelete, Reason: "r"}
			graceItem(&tok, tokMarks, grace, now)
			cli := plan.ClientItem{ClientID: id, Policy: pol, Mode: plan.ModeEnforce, Action: plan.ActionDelete, Reason: "r"}
			(&Engine{}).clientGraceItem(&cli, cr, grace, now)
			for _, got := range []struct {
				what, mode, reason, want string
				marked, deadline         *time.Time
			}{
				{"token", tok.Mode, tok.Reason, tc.token, tok.Marked, tok.Deadline},
				{"client", cli.Mode, cli.Reason, tc.cli, cli.Marked, cli.Deadline},
			} {
				if got.mode != tc.wantMode || got.reason != got.want {
					t.Errorf("%s: mode %q reason %q, want %q %q", got.what, got.mode, got.reason, tc.wantMode, got.want)
				}
				if got.marked == nil || !got.marked.Equal(tc.wantMarked) {
					t.Errorf("%s: Marked %v, want %v", got.what, got.marked, tc.wantMarked)
				}
				if (got.deadline == nil) != (tc.wantDeadline == nil) || got.deadline != nil && !got.deadline.Equal(*tc.wantDeadline) {
					t.Errorf("%s: Deadline %v, want %v", got.what, got.deadline, tc.wantDeadline)
				}
			}
		})
	}
}

// TestGraceVerdictDeadlineWithoutWarning: a mark with a deadline but no
// warning time (no caller makes one, but the clock comes from the state
// file, which may be edited or written by another version) is read as not
// warned: held, no deadline, the warning still to deliver. It panicked.
func TestGraceVerdictDeadlineWithoutWarning(t *testing.T) {
	now := time.Date(2026, 12, 20, 3, 0, 0, 0, time.UTC)
	marked := now.Add(-30 * 24 * time.Hour)
	for _, dl := range []time.Time{now.Add(-24 * time.Hour), now, now.Add(24 * time.Hour)} {
		v := graceVerdict(ownerWarned, 14*24*time.Hour, marked, nil, &dl, true, now)
		if v.due || v.deadline != nil {
			t.Errorf("deadline %s without a warning: due %v deadline %v, want held without a deadline", dl, v.due, v.deadline)
		}
		if want := "; grace 14d: marked 2026-11-20T03:00:00.000Z, the owner's warning is not delivered yet (the clock starts on delivery)"; v.reason != want {
			t.Errorf("reason %q, want %q", v.reason, want)
		}
	}
}
