package janitor_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/metrics"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// expireAdmin gives the simulator's admin PAT (patjanitor's own) an
// expirationDate.
func (e *env) expireAdmin(at time.Time) {
	e.t.Helper()
	tok, ok := e.sim.Token(e.admin.ClientID)
	if !ok {
		e.t.Fatal("admin token missing")
	}
	tok.ExpirationDate = &at
	e.sim.Add(tok, e.admin.ClientSecret)
}

const expiryGauge = "patjanitor_credential_expiry_timestamp_seconds"

// patjanitor's own PAT expires in 20 days: the plan header carries the date
// and a warning line, the log warns, and the metric has the timestamp. With
// filtered listings (no maxActionsPercent) the own token is not among the
// stale ones, so one owner-id=me listing finds it.
func TestCredentialExpiryInPlanLogAndMetrics(t *testing.T) {
	for _, tc := range []struct {
		name, limits string
		wantMeCall   bool
		owners       int
	}{
		{"unfiltered", "limits: {maxActionsPercent: 10}\n", false, 2},
		{"filtered", "limits: {maxActionsPercent: 0}\n", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "tenant:\n  url: http://127.0.0.1:1\n  apiVersion: v2025\n  clientId: x\n"+tc.limits+`
policies:
  - {name: unused-90d, mode: enforce, match: {unusedFor: 90d}, action: delete}
`, envOpts{})
			e.cfg.Tenant.ClientID = e.admin.ClientID
			expires := t0.Add(20 * day)
			e.expireAdmin(expires)
			e.add("a1", "owner-a", "stale", 400*day, 200*day)
			reg := prometheus.NewPedanticRegistry()
			m := metrics.New(reg)

			pl, err := e.engine(func(o *janitor.Options) { o.Metrics = m }).Plan(context.Background())
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			p := pl.Plan
			if p.CredentialExpires == nil || !p.CredentialExpires.Equal(expires) {
				t.Fatalf("credentialExpires = %v, want %v", p.CredentialExpires, expires)
			}
			if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "expires at 2026-12-16T03:00:00.000Z, in 20 days (warning window 30d)") ||
				!strings.Contains(p.Warnings[0], e.admin.ClientID) {
				t.Fatalf("warnings = %q", p.Warnings)
			}
			if !strings.Contains(e.logs.String(), `"msg":"credential expiring"`) {
				t.Errorf("no credential warning in the log:\n%s", e.logs)
			}
			if got := gaugeValue(t, reg, expiryGauge); got != float64(expires.Unix()) {
				t.Fatalf("%s = %v, want %d", expiryGauge, got, expires.Unix())
			}
			me := 0
			for _, r := range e.sim.Requests() {
				if r.Operation == idnsim.OpListTokens && r.Query.Get("owner-id") == "me" {
					me++
				}
			}
			if (me == 1) != tc.wantMeCall || me > 1 {
				t.Errorf("owner-id=me listings: %d, want one: %v", me, tc.wantMeCall)
			}
			if p.Owners != tc.owners {
				t.Errorf("owners = %d, want %d (owner-a, and the admin when every token is listed)", p.Owners, tc.owners)
			}
			e.requireNoMutations()
		})
	}
}

// A PAT that never expires (or whose expiry the listing does not show) has
// no metric series and no warning; one expiring after the window has the
// series and no warning.
func TestCredentialExpiryAbsentOrFar(t *testing.T) {
	e := newEnv(t, "tenant:\n  url: http://127.0.0.1:1\n  apiVersion: v2025\n  clientId: x\n  credentialExpiryWarning: 10d\npolicies:\n  - {name: r, match: {unusedFor: 90d}, action: report}\n", envOpts{})
	e.cfg.Tenant.ClientID = e.admin.ClientID
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	eng := e.engine(func(o *janitor.Options) { o.Metrics = m })

	e.expireAdmin(t0.Add(20 * day))
	pl, err := eng.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if pl.Plan.CredentialExpires == nil || len(pl.Plan.Warnings) != 0 {
		t.Fatalf("20 days with a 10d window: expires %v, warnings %q", pl.Plan.CredentialExpires, pl.Plan.Warnings)
	}
	if n := testutil.CollectAndCount(reg, expiryGauge); n != 1 {
		t.Fatalf("%d expiry series, want 1", n)
	}

	tok, _ := e.sim.Token(e.admin.ClientID)
	tok.ExpirationDate = nil
	e.sim.Add(tok, e.admin.ClientSecret)
	pl, err = eng.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if pl.Plan.CredentialExpires != nil || len(pl.Plan.Warnings) != 0 {
		t.Fatalf("never expires: expires %v, warnings %q", pl.Plan.CredentialExpires, pl.Plan.Warnings)
	}
	if n := testutil.CollectAndCount(reg, expiryGauge); n != 0 {
		t.Fatalf("%d expiry series for a PAT that never expires, want none", n)
	}
}

// nonAdminEnv is a tenant in its default mode plus NonAdminListing "own": a
// caller without the all-tokens right gets its own tokens from a listing of
// every owner. patjanitor logs in with a PAT of a plain user who owns stale
// tokens; other owners have stale tokens too.
func nonAdminEnv(t *testing.T, cfg string) (*env, idnsim.Credentials) {
	t.Helper()
	e := newEnv(t, cfg, envOpts{sim: idnsim.Options{NonAdminListing: idnsim.NonAdminOwn}})
	const user = "0000000000000000000000000000a5e1"
	e.sim.AddIdentity(idnsim.Identity{ID: user, Name: "Plain User", Alias: "plain.user", IdentityState: "ACTIVE"})
	creds := idnsim.Credentials{ClientID: "0000000000000000000000000000c1d0", ClientSecret: "plain-user-secret"}
	e.sim.Add(pat.Token{ID: creds.ClientID, Name: "janitor", Owner: pat.Owner{ID: user}, Created: t0.Add(-10 * day), Scope: pat.ScopesOf(pat.ScopeAll)}, creds.ClientSecret)
	e.add("0000000000000000000000000000a001", user, "user-stale", 400*day, 200*day)
	e.addStale("other", 4, 2)
	client, err := api.New(api.Config{
		BaseURL: e.url, Version: e.cfg.Tenant.APIVersion, ClientID: creds.ClientID,
		ClientSecret: secret.New(creds.ClientSecret), RateLimit: api.RateLimit{Requests: -1},
		Sleep: noSleep, Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.client = client
	e.cfg.Tenant.ClientID = creds.ClientID
	return e, creds
}

// A plain user's PAT sees only its own tokens (the tenant answers the
// listing of every owner with them, 200, nothing marks it as partial). An
// enforce run must change nothing: not even the caller's own stale token,
// since the guardrails' population and every "nothing to do" are wrong on
// such a view. The plan says why, and the metric exposes it.
func TestHostileNonAdminEnforceRunChangesNothing(t *testing.T) {
	e, creds := nonAdminEnv(t, "limits: {maxActionsPercent: 0, maxActionsPerRun: 0, maxActionsPerOwner: 0}\npolicies:\n  - {name: unused-90d, mode: enforce, match: {unusedFor: 90d}, action: delete}\n")
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	res, err := e.engine(func(o *janitor.Options) { o.ClientID = creds.ClientID; o.Metrics = m }).Run(context.Background(), janitor.RunInput{})
	var inc *janitor.IncompleteError
	if !errors.As(err, &inc) || !errors.Is(err, janitor.ErrPartialView) {
		t.Fatalf("Run: %v, want incomplete data (partial view)", err)
	}
	e.requireNoMutations()
	if !e.present("0000000000000000000000000000a001") {
		t.Fatal("the caller's own stale token was deleted")
	}
	p := res.Plan
	if !strings.Contains(p.PartialView, "authorities: USER") || !strings.Contains(p.PartialView, "not ORG_ADMIN") {
		t.Errorf("partialView = %q", p.PartialView)
	}
	if p.Caller == nil || p.Caller.IdentityID != "0000000000000000000000000000a5e1" || p.Caller.ClientID != creds.ClientID {
		t.Errorf("caller = %+v", p.Caller)
	}
	if p.Items.Len() != 1 || p.Items.At(0).TokenID != "0000000000000000000000000000a001" {
		t.Errorf("items = %+v, want the caller's own stale token only", p.Items.Slice())
	}
	if res.Count(janitor.OutcomeBlocked) != 1 {
		t.Errorf("blocked items: %d, want 1", res.Count(janitor.OutcomeBlocked))
	}
	if v := gaugeValue(t, reg, "patjanitor_partial_view"); v != 1 {
		t.Errorf("partial_view = %v, want 1", v)
	}
	if !strings.Contains(e.logs.String(), `"msg":"partial view: this run sees only part of the tenant"`) {
		t.Errorf("no partial-view warning in the log:\n%s", e.logs)
	}
}

// The same caller in report mode: the plan says the view is partial, and the
// run is not an error (nothing was going to change).
func TestNonAdminReportRunSaysPartialView(t *testing.T) {
	e, creds := nonAdminEnv(t, "policies:\n  - {name: unused-90d, match: {unusedFor: 90d}, action: delete}\n")
	pl, err := e.engine(func(o *janitor.Options) { o.ClientID = creds.ClientID }).Plan(context.Background())
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if pl.Plan.PartialView == "" || pl.Plan.Error != "" {
		t.Fatalf("partialView %q, error %q", pl.Plan.PartialView, pl.Plan.Error)
	}
	e.requireNoMutations()
}

// forgedAdmin claims ORG_ADMIN whatever the token says: the engine must not
// trust the claims alone when the listing of every owner holds only the
// caller's own tokens.
type forgedAdmin struct{ *api.Client }

func (f forgedAdmin) Caller(ctx context.Context) (api.Caller, error) {
	c, err := f.Client.Caller(ctx)
	c.Authorities = []string{api.AuthorityOrgAdmin}
	return c, err
}

func TestHostileOwnOnlyListingDespiteAdminClaimsIsPartial(t *testing.T) {
	e, creds := nonAdminEnv(t, "limits: {maxActionsPercent: 50, maxActionsPerRun: 0, maxActionsPerOwner: 0}\npolicies:\n  - {name: unused-90d, mode: enforce, match: {unusedFor: 90d}, action: delete}\n")
	_, err := e.engine(func(o *janitor.Options) { o.ClientID = creds.ClientID; o.Tenant = forgedAdmin{e.client} }).Run(context.Background(), janitor.RunInput{})
	if !errors.Is(err, janitor.ErrPartialView) || !strings.Contains(err.Error(), "holds only the caller's own tokens while the tenant has other identities") {
		t.Fatalf("Run: %v, want a partial view", err)
	}
	e.requireNoMutations()
	probes := 0
	for _, r := range e.sim.Requests() {
		if r.Operation == idnsim.OpListPublicIdentities && r.Query.Get("limit") == "2" {
			probes++
		}
	}
	if probes != 1 {
		t.Errorf("identity probes: %d, want 1", probes)
	}
}

// An org admin whose listing shows other owners: not partial, and no probe.
func TestAdminViewIsCompleteWithoutProbe(t *testing.T) {
	e := newEnv(t, "policies:\n  - {name: unused-90d, mode: enforce, match: {unusedFor: 90d}, action: delete}\n", envOpts{})
	e.addStale("s", 2, 1)
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	pl, err := e.engine(func(o *janitor.Options) { o.Metrics = m }).Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if pl.Plan.PartialView != "" || pl.Plan.Caller == nil || !slicesHas(pl.Plan.Caller.Authorities, "ORG_ADMIN") {
		t.Fatalf("partialView %q caller %+v", pl.Plan.PartialView, pl.Plan.Caller)
	}
	if pl.Plan.Owners != 3 {
		t.Errorf("owners = %d, want 3 (two stale owners and the admin)", pl.Plan.Owners)
	}
	for _, r := range e.sim.Requests() {
		if r.Operation == idnsim.OpListPublicIdentities {
			t.Errorf("unexpected identity probe: %s?%s", r.Path, r.RawQuery)
		}
	}
	if v := gaugeValue(t, reg, "patjanitor_partial_view"); v != 0 {
		t.Errorf("partial_view = %v, want 0", v)
	}
}

func slicesHas(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// gaugeValue gathers one unlabelled gauge from reg.
func gaugeValue(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not gathered", name)
	return 0
}

// A plan made by an org admin, applied with a plain user's PAT whose listing
// holds its own tokens: the item for the user's own stale token still
// "matches" in that listing, but the apply-time view is partial, so nothing
// is sent.
func TestHostileApplyPlanWithNonAdminCredentialChangesNothing(t *testing.T) {
	e, creds := nonAdminEnv(t, "limits: {maxActionsPercent: 0, maxActionsPerRun: 0, maxActionsPerOwner: 0}\npolicies:\n  - {name: unused-90d, mode: enforce, match: {unusedFor: 90d}, action: delete}\n")
	adminClient, err := api.New(api.Config{
		BaseURL: e.url, ClientID: e.admin.ClientID, ClientSecret: secret.New(e.admin.ClientSecret),
		RateLimit: api.RateLimit{Requests: -1}, Sleep: noSleep, Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	pl, err := e.engine(func(o *janitor.Options) { o.Tenant = adminClient; o.ClientID = e.admin.ClientID }).Plan(context.Background())
	if err != nil || pl.Plan.PartialView != "" {
		t.Fatalf("admin plan: %v, partial %q", err, pl.Plan.PartialView)
	}
	found := false
	for _, it := range pl.Plan.Items.All() {
		found = found || it.TokenID == "0000000000000000000000000000a001"
	}
	if !found {
		t.Fatal("the admin's plan lacks the user's stale token")
	}
	_, err = e.engine(func(o *janitor.Options) { o.ClientID = creds.ClientID }).ApplyPlan(context.Background(), pl.Plan, janitor.ApplyOptions{})
	if !errors.Is(err, janitor.ErrPartialView) {
		t.Fatalf("ApplyPlan: %v, want a partial view", err)
	}
	e.requireNoMutations()
	if !e.present("0000000000000000000000000000a001") {
		t.Fatal("deleted with a partial view")
	}
}
