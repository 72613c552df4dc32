package janitor

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/state"
)

// Only a listing that can prove anything judges a confirmed mutation:
// complete, unfiltered and of the whole tenant. A partial view, a filtered
// listing or incomplete data keep the records as they are, whether the
// token is listed or not; so does a listing within the settle margin.
func TestJudgeProofsNeedsAListingThatCanProve(t *testing.T) {
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	later := at.Add(SettleMargin)
	listed := pat.Token{ID: "listed", Owner: pat.Owner{ID: "o"}}
	records := func() *proofs {
		return &proofs{records: map[string]state.Confirmed{
			"listed": {TokenID: "listed", Action: "delete", RunID: "r1", Code: 204, At: at},
			"gone":   {TokenID: "gone", Action: "delete", RunID: "r1", Code: 204, At: at},
		}}
	}
	inventory := func(mod func(*Inventory)) *Inventory {
		inv := &Inventory{Unfiltered: true, view: &view{}, kept: map[string]pat.Token{"listed": listed}, proofs: records()}
		if mod != nil {
			mod(inv)
		}
		return inv
	}
	e := &Engine{metrics: nopMetrics{}, log: zap.NewNop()}

	for name, mod := range map[string]func(*Inventory){
		"partial view": func(inv *Inventory) { inv.view.partial = "the credential's user level is not ORG_ADMIN" },
		"filtered":     func(inv *Inventory) { inv.Unfiltered = false },
		"incomplete data": func(inv *Inventory) {
			inv.Err = &IncompleteError{Problems: []string{"x"}, Causes: []error{errors.New("x")}}
		},
	} {
		inv := inventory(mod)
		e.judgeProofs(inv, later)
		if pr := inv.proofs; pr.judged || len(pr.proven) != 0 || len(pr.lies) != 0 {
			t.Errorf("%s: judged %v, proven %+v, not in effect %+v; want nothing judged", name, pr.judged, pr.proven, pr.lies)
		}
	}

	inv := inventory(nil)
	e.judgeProofs(inv, later.Add(-time.Nanosecond))
	if pr := inv.proofs; len(pr.proven) != 0 || len(pr.lies) != 0 {
		t.Errorf("within the margin: proven %+v, not in effect %+v; want nothing", pr.proven, pr.lies)
	}

	inv = inventory(nil)
	e.judgeProofs(inv, later)
	pr := inv.proofs
	if len(pr.proven) != 1 || pr.proven[0].TokenID != "gone" || len(pr.lies) != 1 || pr.lies[0].Confirmed.TokenID != "listed" || pr.lies[0].Detail != "still listed" {
		t.Errorf("complete listing: proven %+v, not in effect %+v; want gone proven, listed not in effect", pr.proven, pr.lies)
	}
}

// A listed id may be 64 KiB: the run's error, the plan's warning and the
// log line name it by its first 128 bytes (untrusted.ClipID), as every
// other error text does.
func TestUnprovenSentencesClipLongIDs(t *testing.T) {
	long := strings.Repeat("a", 64<<10)
	err := &UnprovenError{Unproven: []Unproven{{Confirmed: state.Confirmed{TokenID: long, OwnerID: long, Policy: "p", Action: "delete", RunID: "r1", Code: 204}}}}
	if msg := err.Error(); len(msg) > 1024 || !strings.Contains(msg, strings.Repeat("a", 128)+"…") {
		t.Errorf("error of %d bytes; want the ids clipped to 128 bytes", len(msg))
	}
}
