package janitor_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/metrics"
	"github.com/patjanitor/patjanitor/internal/plan"
)

// The listing of the caller's own tokens (owner-id=me) finds patjanitor's
// own identity when the run's listings did not hold its PAT, and that
// identity decides which tokens a patch is sent for: the answer feeds a
// decision, and a stored one (a cache in front of the tenant; its Date two
// days old) must not. Before, its Date was not read: the run took the
// identity from it and patched. Now the identity is unknown for this run,
// every patch item needs its owner and says why, nothing is sent, and the
// own PAT's expiry is not taken from that answer either. The listing is
// made once (the expiry check and the identity shared it).
func TestHostileStoredOwnTokensListingPatchesNothing(t *testing.T) {
	cfg := noLimits + `policies:
  - name: rename-stale
    mode: enforce
    match: {unusedFor: 90d}
    action: patch
    patch: {namePrefix: "stale-"}
`
	var e *env
	stored := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("owner-id") == "me" {
				w = oldDate{w, e.clock.Now()}
			}
			h.ServeHTTP(w, r)
		})
	}
	e = newEnv(t, cfg, envOpts{wrap: stored})
	e.expireAdmin(t0.Add(5 * day))
	e.add("mine", e.own(), "mine", 400*day, 200*day)
	res, err := e.engine().Run(context.Background(), janitor.RunInput{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	e.requireNoMutations()
	me := 0
	for _, r := range e.sim.Requests() {
		if r.Operation == idnsim.OpListTokens && r.Query.Get("owner-id") == "me" {
			me++
		}
	}
	if me != 1 {
		t.Errorf("owner-id=me listings: %d, want 1", me)
	}
	items := res.Plan.Items.Slice()
	if len(items) != 1 || items[0].Mode != plan.ModeNeedsOwner ||
		!strings.Contains(items[0].Reason, "own identity is unknown") || !strings.Contains(items[0].Reason, "tenant.maxClockSkew") {
		t.Fatalf("items %+v, want mine needs-owner for the stored owner-id=me answer", items)
	}
	if res.Plan.CredentialExpires != nil {
		t.Errorf("credentialExpires = %v, taken from the stored answer", res.Plan.CredentialExpires)
	}
	if w := strings.Join(res.Plan.Warnings, "\n"); !strings.Contains(w, "expiry of patjanitor's own PAT could not be read") || !strings.Contains(w, "tenant.maxClockSkew") {
		t.Errorf("warnings %q, want one saying the own PAT's expiry could not be read for the clock", res.Plan.Warnings)
	}
	for _, r := range e.journalRecords() {
		if r.Kind != "run-start" && r.Kind != "run-end" {
			t.Errorf("journal record %+v, want none but the run's start and end", r)
		}
	}
}

// An owner-id=me answer refused for its Date leaves the own PAT's expiry
// unknown for the run, not gone: credential_expiry_timestamp_seconds keeps
// the expiry the last run that read it found, and PatjanitorCredentialExpiring
// goes on firing. Before, the run removed the series, as for a PAT that
// never expires: behind a cache that stores the owner-id=me answer (the
// listings themselves filtered, so that answer is where the expiry comes
// from), the alert resolved and stayed quiet until the PAT expired and
// every run failed with 401.
func TestHostileStoredOwnTokensListingKeepsTheExpiryGauge(t *testing.T) {
	cfg := "tenant:\n  url: http://127.0.0.1:1\n  apiVersion: v2025\n  clientId: x\nlimits: {maxActionsPercent: 0}\n" + `
policies:
  - {name: unused-90d, mode: enforce, match: {unusedFor: 90d}, action: delete}
`
	var e *env
	var stored atomic.Bool
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if stored.Load() && r.URL.Query().Get("owner-id") == "me" {
				w = oldDate{w, e.clock.Now()}
			}
			h.ServeHTTP(w, r)
		})
	}
	e = newEnv(t, cfg, envOpts{wrap: wrap})
	e.cfg.Tenant.ClientID = e.admin.ClientID
	expires := t0.Add(5 * day)
	e.expireAdmin(expires)
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	eng := e.engine(func(o *janitor.Options) { o.Metrics = m })
	if _, err := eng.Plan(context.Background()); err != nil {
		t.Fatalf("run 1: %v", err)
	}
	if got := gaugeValue(t, reg, expiryGauge); got != float64(expires.Unix()) {
		t.Fatalf("after run 1: %s = %v, want %d", expiryGauge, got, expires.Unix())
	}

	stored.Store(true)
	e.clock.Advance(time.Hour)
	before := len(e.sim.Requests())
	pl, err := eng.Plan(context.Background())
	if err != nil {
		t.Fatalf("run 2: %v", err)
	}
	me := 0
	for _, r := range e.sim.Requests()[before:] {
		if r.Operation == idnsim.OpListTokens && r.Query.Get("owner-id") == "me" {
			me++
		}
	}
	if me != 1 {
		t.Fatalf("run 2 made %d owner-id=me listings, want 1 (the one refused)", me)
	}
	if pl.Plan.CredentialExpires != nil {
		t.Errorf("run 2: credentialExpires = %v, taken from the stored answer", pl.Plan.CredentialExpires)
	}
	if w := strings.Join(pl.Plan.Warnings, "\n"); !strings.Contains(w, "expiry of patjanitor's own PAT could not be read") {
		t.Errorf("run 2: warnings %q, want one saying the own PAT's expiry could not be read", pl.Plan.Warnings)
	}
	if n := testutil.CollectAndCount(reg, expiryGauge); n != 1 {
		t.Fatalf("after run 2: %d %s series, want the one run 1 set: the PAT still expires", n, expiryGauge)
	}
	if got := gaugeValue(t, reg, expiryGauge); got != float64(expires.Unix()) {
		t.Errorf("after run 2: %s = %v, want %d", expiryGauge, got, expires.Unix())
	}
	e.requireNoMutations()
}
