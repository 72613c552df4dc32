package janitor_test

import (
	"context"
	"errors"
	"testing"

	"github.com/patjanitor/patjanitor/internal/janitor"
)

// Invariant 5 for API clients: with the journal unwritable, neither the
// disable nor, after disabledFor, the delete is sent, and the disabled
// record that starts disabledFor is not kept for a disable never sent.
// (TestInvariant5_JournalFirst pins it for tokens only; the API client
// path journals through its own code.)
func TestInvariant5_JournalFirstForAPIClients(t *testing.T) {
	c := newClientEnv(t, "enforce")
	run := func(ok int) error {
		fj := newFailingJournal(c.journal, ok)
		_, err := c.env.engine(func(o *janitor.Options) {
			o.ClientID = cOwn
			o.ClientState = c.store
			o.Journal = fj
		}).Run(context.Background(), janitor.RunInput{})
		return err
	}
	// Only the run-start is written: the disable's intent fails.
	for _, ok := range []int{0, 1} {
		c.sim.ResetRequests()
		var jerr *janitor.JournalError
		if err := run(ok); !errors.As(err, &jerr) {
			t.Fatalf("journal writes %d: err = %v, want *JournalError", ok, err)
		}
		if m := clientMutations(c.sim.Requests()); len(m) != 0 {
			t.Fatalf("journal writes %d: the tenant received %+v with the journal unwritable", ok, m)
		}
		if got, _ := c.sim.OAuthClient(cTarget); !got.IsEnabled() {
			t.Fatal("the client was disabled with the journal unwritable")
		}
		if _, ok, err := c.store.DisabledClient(context.Background(), cTarget); err != nil || ok {
			t.Fatalf("disabled record kept for a disable never sent: %v %v", ok, err)
		}
	}

	// Disabled with a working journal; past disabledFor the delete is due.
	c.sim.ResetRequests()
	c.run()
	if m := clientMutations(c.sim.Requests()); len(m) != 1 || m[0].Method != "PATCH" {
		t.Fatalf("the tenant received %+v, want the disable", m)
	}
	c.clock.Set(t0.Add(15 * day))
	for _, ok := range []int{0, 1} {
		c.sim.ResetRequests()
		var jerr *janitor.JournalError
		if err := run(ok); !errors.As(err, &jerr) {
			t.Fatalf("day 15, journal writes %d: err = %v, want *JournalError", ok, err)
		}
		if m := clientMutations(c.sim.Requests()); len(m) != 0 {
			t.Fatalf("day 15, journal writes %d: the tenant received %+v with the journal unwritable", ok, m)
		}
		if _, found := c.sim.OAuthClient(cTarget); !found {
			t.Fatal("the client was deleted with the journal unwritable")
		}
	}
	c.sim.ResetRequests()
	c.run()
	if m := clientMutations(c.sim.Requests()); len(m) != 1 || m[0].Method != "DELETE" {
		t.Fatalf("the tenant received %+v, want the delete once the journal works", m)
	}
}
