package cli

import (
	"context"
	"fmt"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/untrusted"
)

// refuseExecuted is approve's check that the plan was not executed already,
// as far as the state directory given knows: apply refuses such a plan, so a
// signature on it approves nothing, and a reviewer asked to sign it again is
// being asked to approve a replay. Reviewers often sign on their own
// machine, whose state directory knows nothing: the check is a courtesy
// there, and apply's is the guard. A store that is absent is no error; one
// that cannot be read is a warning, and the plan is signed.
func (g *globals) refuseExecuted(ctx context.Context, planFile string, p *plan.Plan) error {
	st, err := g.openStateReadOnly()
	if err != nil {
		fmt.Fprintf(g.streams.Err, "warning: %s; not checked whether the plan was executed already\n", untrusted.Terminal(err.Error()))
		return nil
	}
	if st == nil {
		return nil
	}
	defer func() { _ = st.Close() }()
	rec, done, err := st.ExecutedPlan(ctx, p.PlanHash)
	if err != nil {
		fmt.Fprintf(g.streams.Err, "warning: %s; not checked whether the plan was executed already\n", untrusted.Terminal(err.Error()))
		return nil
	}
	if done {
		return fmt.Errorf("plan %s (planHash %s) was already executed, by run %s at %s: apply refuses it, a signature would approve nothing; not signed (make a new plan)",
			planFile, p.PlanHash, rec.RunID, pat.FormatTime(rec.At))
	}
	return nil
}
