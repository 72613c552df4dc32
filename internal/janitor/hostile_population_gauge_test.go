package janitor_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/metrics"
)

// A run whose token listing fails has no population: it set
// patjanitor_tokens and every policy's tokens_matched to 0 (what the failed
// listing delivered is not a listing), so the dashboard's "credentials in
// the tenant" fell to zero on every failed run. The gauges keep what the
// last run that listed saw; the failure shows in runs_total.
func TestHostileFailedListingKeepsThePopulationGauges(t *testing.T) {
	g := newGraceEnvOpts(t, graceConfig, envOpts{})
	g.addStale("g", 3, 1)
	g.run()
	tokens := g.gauge("patjanitor_tokens", "resource", "personalAccessTokens")
	matched := g.gauge("patjanitor_tokens_matched", "policy", "unused-90d")
	if tokens < 3 || matched != 3 {
		t.Fatalf("after a run that listed: tokens %v, tokens_matched{unused-90d} %v; want at least 3 and 3", tokens, matched)
	}

	g.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, Status: http.StatusBadRequest})
	g.clock.Advance(time.Hour)
	if _, err := g.engine().Run(context.Background(), janitor.RunInput{}); err == nil {
		t.Fatal("a run whose listing failed succeeded")
	}
	g.requireNoMutations()
	if n := g.failedRuns(); n != 1 {
		t.Errorf("runs_total{result=\"failed\"} = %v, want 1", n)
	}
	if v := g.gauge("patjanitor_tokens", "resource", "personalAccessTokens"); v != tokens {
		t.Errorf("after a failed listing: patjanitor_tokens = %v, want %v (the last run that listed)", v, tokens)
	}
	if v := g.gauge("patjanitor_tokens_matched", "policy", "unused-90d"); v != matched {
		t.Errorf("after a failed listing: tokens_matched{unused-90d} = %v, want %v", v, matched)
	}
}

// The same for the API clients: a failed client listing kept
// patjanitor_tokens{resource="apiClients"} at 0 until the next good run.
func TestHostileFailedClientListingKeepsThePopulationGauge(t *testing.T) {
	c := newClientEnvOpts(t, "enforce", envOpts{})
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	run := func() error {
		_, err := c.env.engine(func(o *janitor.Options) {
			o.ClientID = cOwn
			o.ClientState = c.store
			o.Metrics = m
		}).Run(context.Background(), janitor.RunInput{})
		return err
	}
	clients := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "patjanitor_tokens" {
				continue
			}
			for _, mt := range mf.GetMetric() {
				for _, lp := range mt.GetLabel() {
					if lp.GetName() == "resource" && lp.GetValue() == "apiClients" {
						return mt.GetGauge().GetValue()
					}
				}
			}
		}
		return -1
	}
	_ = run() // the first run may act; what matters is what it counted
	before := clients()
	if before <= 0 {
		t.Fatalf("after a run that listed the API clients: patjanitor_tokens{resource=apiClients} = %v", before)
	}
	c.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListOAuthClients, Status: http.StatusBadRequest})
	sent := len(idnsim.Mutations(c.sim.Requests()))
	if err := run(); err == nil {
		t.Fatal("a run whose API client listing failed succeeded")
	}
	if n := len(idnsim.Mutations(c.sim.Requests())); n != sent {
		t.Errorf("the run with a failed API client listing sent %d mutations", n-sent)
	}
	if v := clients(); v != before {
		t.Errorf("after a failed API client listing: patjanitor_tokens{resource=apiClients} = %v, want %v (the last run that listed)", v, before)
	}
}
