package janitor_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
)

// A patch found not in effect whose token is then deleted (by hand) is no
// longer listed: the next listing ends the alarm with an in-effect outcome,
// and its note must not say the patch is in effect on a token that no
// longer exists: it says "token no longer listed". The not-in-effect note
// names the run that was confirmed and when.
func TestProvenPatchOfTokenGoneSinceSaysNoLongerListed(t *testing.T) {
	const cfg = proofNotify + `policies:
  - name: full-access
    mode: enforce
    match: {scopes: {any: ["sp:scopes:all"]}}
    action: patch
    patch: {setScopes: ["sp:scopes:default"]}
`
	p := newProofEnv(t, cfg)
	p.add("mine-1", p.own(), "wide", 10*day, 1*day, "sp:scopes:all")
	p.proxy.lie.Store(true)
	res1, err := p.runProof()
	if err != nil {
		t.Fatalf("run 1: %v", err)
	}
	p.clock.Set(t0.Add(day))
	_, err = p.runProof()
	var uerr *janitor.UnprovenError
	if !errors.As(err, &uerr) {
		t.Fatalf("run 2: %v; want the patch not in effect", err)
	}
	lies := withStatus(p.outcomes("mine-1"), janitor.StatusNotInEffect)
	if len(lies) != 1 || lies[0].Note != "confirmed patch of run "+res1.RunID+" at "+pat.FormatTime(t0)+" not in effect" {
		t.Fatalf("not-in-effect outcomes %+v; want a note naming run 1 and its time", lies)
	}

	// The owner deletes the token. The next listing no longer shows it.
	p.sim.Remove("mine-1")
	p.clock.Set(t0.Add(2 * day))
	res3, err := p.runProof()
	if err != nil {
		t.Fatalf("run 3: %v", err)
	}
	proven := withStatus(p.outcomes("mine-1"), janitor.StatusInEffect)
	if len(proven) != 1 || proven[0].RunID != res3.RunID {
		t.Fatalf("in-effect outcomes %+v; want run 3's", proven)
	}
	note := proven[0].Note
	if !strings.Contains(note, "token no longer listed") || strings.Contains(note, "in effect now") {
		t.Errorf("note %q; want it to say the token is no longer listed, not that the patch is in effect", note)
	}
	if len(p.confirmed()) != 0 {
		t.Errorf("records after the token went %+v", p.confirmed())
	}
}
