package janitor

import (
	"context"
	"fmt"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/state"
)

// SkipSnoozed is the plan.Skipped reason of a token whose owner or an
// operator snoozed it (`patjanitor snooze`); the reason text goes on with the
// snooze's end, "snoozed until <time>".
const SkipSnoozed policy.SkipReason = "snoozed"

// Snoozes are the active snoozes; *state.Store implements it.
type Snoozes interface {
	ActiveSnoozes(ctx context.Context) (map[string]state.Snooze, error)
}

// readSnoozes loads the active snoozes for one run. A store that cannot be
// read makes the inventory incomplete (appended to later, to record after the
// listing's own problems): acting without knowing the snoozes could act on a
// token someone was promised would be left alone.
func (e *Engine) readSnoozes(ctx context.Context, inv *Inventory, later *[]func()) error {
	if e.snoozes == nil {
		return nil
	}
	zs, err := e.snoozes.ActiveSnoozes(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		*later = append(*later, func() { inv.addProblem("read snoozes: "+err.Error(), err) })
		return nil
	}
	inv.snoozes = zs
	return nil
}

// snoozed returns the token's snooze when it is active at now (the engine's
// clock decides, so an expired snooze ends by itself whatever the store's
// clock says).
func (inv *Inventory) snoozed(id string, now time.Time) (state.Snooze, bool) {
	if len(inv.snoozes) == 0 {
		return state.Snooze{}, false
	}
	z, ok := inv.snoozes[pat.IDKey(id)]
	return z, ok && z.Active(now)
}

func snoozedOf(t *pat.Token, d policy.Decision, z state.Snooze) plan.Skipped {
	sk := skippedOf(t, d)
	sk.Reason = fmt.Sprintf("%s until %s", SkipSnoozed, pat.FormatTime(z.Until))
	return sk
}
