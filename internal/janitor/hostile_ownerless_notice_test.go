package janitor_test

import (
	"context"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/notify/notifytest"
)

// The PAT API's spec makes every field of a token's owner optional, so a
// tenant may list a token without an owner id. Its digest and notice failed
// the message check ("needs … an owner"): every run that held or acted on
// such a token returned a notification error (alerts fired), the grace
// warning never went out, and the deletion was announced to no one. They go
// where the messages of an owner without an email go: the fallback address.
// The grace clock starts only when that warning is delivered.
//
// The simulator lists a token added with an empty owner id without one
// (env.add passes the owner through), so no proxy is needed.
func TestHostileOwnerlessTokenNoticeGoesToTheFallback(t *testing.T) {
	g := newGraceEnv(t, graceConfig)
	g.add("tok-none", "", "orphan", 400*day, 200*day)

	fallback := func(day string, o notify.Owner) {
		t.Helper()
		if o.ID != "" || o.Email != "iam@acme.example" || !o.Fallback {
			t.Fatalf("%s: owner %+v; want no id, the fallback address", day, o)
		}
	}

	// Day 0, the receiver refuses: no warning delivered, so no clock.
	g.hook.Throttle(time.Hour) // longer than any backoff: deferred at once
	if _, err := g.engine().Run(context.Background(), janitor.RunInput{}); err != nil {
		t.Logf("day 0, receiver throttling: %v", err)
	}
	if m, ok := g.marks()["tok-none"]; !ok || m.WarnedAt != nil {
		t.Fatalf("day 0 mark %+v (found %v); want marked, not warned", m, ok)
	}

	// Day 1: the fallback receives the warning; the clock starts.
	g.hook.Fail(0)
	g.clock.Set(at(1))
	g.run()
	g.requireNoMutations()
	d := notifytest.OfKind(g.hook.Take(), notify.KindDigest)
	if len(d) != 1 || len(d[0].Digest.Items) != 1 || d[0].Digest.Items[0].TokenID != "tok-none" {
		t.Fatalf("day 1 digests %+v; want one, for tok-none", d)
	}
	fallback("day 1 digest", d[0].Digest.Owner)
	if m := g.marks()["tok-none"]; m.WarnedAt == nil || !m.WarnedAt.Equal(at(1)) || m.Deadline == nil || !m.Deadline.Equal(at(15)) {
		t.Fatalf("day 1 mark %+v; want warned day 1, deadline day 15", m)
	}

	// Day 15: deleted, announced to the fallback, counted; the run succeeds.
	g.clock.Set(at(15))
	g.run()
	if del := deletedIDs(g.mutations()); len(del) != 1 || del["tok-none"] != 1 {
		t.Fatalf("day 15 deleted %v; want tok-none", del)
	}
	got := g.hook.Take()
	if f := notifytest.OfKind(got, notify.KindFailure); len(f) != 0 {
		t.Fatalf("failure alerts %+v", f[0].Failure)
	}
	n := notifytest.OfKind(got, notify.KindNotice)
	if len(n) != 1 || len(n[0].Notice.Items) != 1 || n[0].Notice.Items[0].TokenID != "tok-none" || n[0].Notice.Items[0].Outcome != notify.OutcomeApplied {
		t.Fatalf("notices %+v; want tok-none applied", n)
	}
	fallback("day 15 notice", n[0].Notice.Owner)
	if s := notifytest.OfKind(got, notify.KindSummary); len(s) != 1 || s[0].Summary.Totals().Applied != 1 {
		t.Fatalf("summaries %+v; want one counting tok-none applied", s)
	}
	applied := 0
	for _, r := range g.journalRecords() {
		if r.Kind == audit.KindOutcome && r.Outcome != nil && r.TokenID == "tok-none" && r.Outcome.Status == "applied" {
			applied++
		}
	}
	if applied != 1 {
		t.Fatalf("journal: %d applied outcomes for tok-none; want 1", applied)
	}
}
