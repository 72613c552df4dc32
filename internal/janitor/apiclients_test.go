package janitor_test

import (
	"context"

	"encoding/json"
	"errors"
	"github.com/prometheus/client_golang/prometheus"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/metrics"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/secret"
	"github.com/patjanitor/patjanitor/internal/state"
)

const clientPolicies = `
limits:
  maxActionsPerRun: 25
  maxActionsPercent: 0
policies:
  - name: tokens-unused
    match: {unusedFor: 90d}
    action: delete
    mode: %s
  - name: clients-full-scope-unused
    resource: apiClients
    mode: %s
    match:
      unusedFor: 90d
      scopes: {any: ["sp:scopes:all"]}
    action: delete
    disabledFor: 14d
`

func clientConfig(mode string) string {
	return strings.ReplaceAll(clientPolicies, "%s", mode)
}

// clientEnv is an env with a state store and a few API clients: a never
// used full-scope one (the target), the same but internal, the same but the
// credential patjanitor runs as, one listed without internal and enabled,
// and a recently used one.
type clientEnv struct {
	*env
	store *state.Store
}

const (
	cTarget   = "0f1e2d3c-0000-4000-8000-000000000001"
	cInternal = "0f1e2d3c-0000-4000-8000-000000000002"
	cOwn      = "0F1E2D3C-0000-4000-8000-000000000003" // upper case: ids compare without case
	cNoFlags  = "0f1e2d3c-0000-4000-8000-000000000004"
	cRecent   = "0f1e2d3c-0000-4000-8000-000000000005"
	ownSecret = "own-client-secret"
)

func newClientEnv(t *testing.T, mode string) *clientEnv {
	t.Helper()
	return newClientEnvOpts(t, mode, envOpts{})
}

// newClientEnvOpts is newClientEnv with envOpts (a wrap between the client
// and the simulator).
func newClientEnvOpts(t *testing.T, mode string, o envOpts) *clientEnv {
	t.Helper()
	e := newEnv(t, clientConfig(mode), o)
	st, err := state.Open(filepath.Join(t.TempDir(), state.FileName), state.Options{Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	yes, no := apiclient.Bool(true), apiclient.Bool(false)
	old := t0.Add(-400 * day)
	recent := t0.Add(-2 * day)
	for _, c := range []apiclient.Client{
		{ID: cTarget, Name: "legacy-integration", Internal: no, Enabled: yes, Scope: pat.Scopes{Null: true}, Created: old},
		{ID: cInternal, Name: "idn-internal", Internal: yes, Enabled: yes, Scope: pat.Scopes{Null: true}, Created: old},
		{ID: strings.ToLower(cOwn), Name: "patjanitor-client", Internal: no, Enabled: yes, Scope: pat.Scopes{Null: true}, Created: old},
		{ID: cNoFlags, Name: "no-flags", Scope: pat.Scopes{Null: true}, Created: old},
		{ID: cRecent, Name: "in-use", Internal: no, Enabled: yes, Scope: pat.Scopes{Null: true}, Created: old, LastUsed: &recent},
	} {
		secret := ""
		if strings.EqualFold(c.ID, cOwn) {
			secret = ownSecret
		}
		e.sim.AddOAuthClient(c, secret)
	}
	// patjanitor logs in as the API client cOwn, as a deployment that uses
	// an API client rather than a PAT does.
	client, err := api.New(api.Config{
		BaseURL: e.url, Version: e.cfg.Tenant.APIVersion, ClientID: cOwn, ClientSecret: secret.New(ownSecret),
		RateLimit: api.RateLimit{Requests: -1}, Sleep: noSleep, Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.client = client
	return &clientEnv{env: e, store: st}
}

// engine runs as the API client cOwn (its id as the configured client id),
// while the HTTP login uses the simulator's admin PAT.
func (c *clientEnv) engine() *janitor.Engine {
	return c.env.engine(func(o *janitor.Options) {
		o.ClientID = cOwn
		o.ClientState = c.store
	})
}

func (c *clientEnv) run() *janitor.Result {
	c.t.Helper()
	res, err := c.engine().Run(context.Background(), janitor.RunInput{})
	if err != nil {
		c.t.Fatalf("run: %v", err)
	}
	return res
}

func clientMutations(reqs []idnsim.Request) []idnsim.Request {
	var out []idnsim.Request
	for _, r := range idnsim.Mutations(reqs) {
		if r.Operation == idnsim.OpPatchOAuthClient || r.Operation == idnsim.OpDeleteOAuthClient {
			out = append(out, r)
		}
	}
	return out
}

func TestAPIClientDisabledThenDeletedAfterDisabledFor(t *testing.T) {
	c := newClientEnv(t, "enforce")

	// Run 1: the never-used full-scope client is disabled, nothing else.
	res := c.run()
	muts := clientMutations(c.sim.Requests())
	if len(muts) != 1 || muts[0].Method != "PATCH" || !strings.HasSuffix(muts[0].Path, "/"+cTarget) {
		t.Fatalf("run 1 mutations = %+v, want one PATCH of %s", muts, cTarget)
	}
	var ops []map[string]any
	if err := json.Unmarshal(muts[0].Body, &ops); err != nil {
		t.Fatal(err)
	}
	if len(ops) != 1 || ops[0]["path"] != "/enabled" || ops[0]["value"] != false || ops[0]["op"] != "replace" {
		t.Fatalf("PATCH body = %s, want exactly replace /enabled false", muts[0].Body)
	}
	if got, _ := c.sim.OAuthClient(cTarget); got.IsEnabled() {
		t.Fatal("the client is still enabled")
	}
	if len(res.Clients) != 1 || res.Clients[0].Outcome != janitor.OutcomeApplied || res.Clients[0].Item.Action != "disable" {
		t.Fatalf("run 1 client results = %+v", res.Clients)
	}
	d, ok, err := c.store.DisabledClient(context.Background(), cTarget)
	if err != nil || !ok || !d.At.Equal(t0) || d.Policy != "clients-full-scope-unused" {
		t.Fatalf("disabled record = %+v %v %v", d, ok, err)
	}
	// Journal: intent (with the client as listed and the exact request)
	// before the outcome.
	var intent, outcome *audit.Record
	for _, r := range c.journalRecords() {
		if r.Resource != apiclient.Resource || r.TokenID != cTarget {
			continue
		}
		r := r
		switch r.Kind {
		case audit.KindIntent:
			intent = &r
		case audit.KindOutcome:
			outcome = &r
		}
	}
	if intent == nil || outcome == nil || intent.Seq > outcome.Seq {
		t.Fatalf("journal intent %+v outcome %+v", intent, outcome)
	}
	if intent.Client == nil || !intent.Client.IsEnabled() || intent.Request.Method != "PATCH" || intent.Request.Path != "/v3/oauth-clients/"+cTarget {
		t.Fatalf("intent = %+v", intent)
	}
	if outcome.Outcome.Status != "applied" || outcome.Outcome.Code != 200 {
		t.Fatalf("outcome = %+v", outcome.Outcome)
	}

	// Run 2, 13 days later: disabledFor has not passed; nothing is sent.
	c.clock.Set(t0.Add(13 * day))
	c.sim.ResetRequests()
	res = c.run()
	if m := clientMutations(c.sim.Requests()); len(m) != 0 {
		t.Fatalf("run 2 sent %+v before disabledFor passed", m)
	}
	if it := findClientItem(res.Plan, cTarget); it == nil || it.Action != "report" || it.DeleteAfter == nil || !it.DeleteAfter.Equal(t0.Add(14*day)) {
		t.Fatalf("run 2 item = %+v", it)
	}

	// Run 3, 14 days after the disable: deleted; the record is gone.
	c.clock.Set(t0.Add(14 * day))
	c.sim.ResetRequests()
	c.run()
	muts = clientMutations(c.sim.Requests())
	if len(muts) != 1 || muts[0].Method != "DELETE" || muts[0].Status != 204 || !strings.HasSuffix(muts[0].Path, "/"+cTarget) {
		t.Fatalf("run 3 mutations = %+v, want one DELETE of %s", muts, cTarget)
	}
	if _, ok := c.sim.OAuthClient(cTarget); ok {
		t.Fatal("the client still exists")
	}
	if _, ok, _ := c.store.DisabledClient(context.Background(), cTarget); ok {
		t.Fatal("the disabled record survived the delete")
	}
	// Protected clients were never touched at any run.
	for _, id := range []string{cInternal, cOwn, cNoFlags} {
		got, ok := c.sim.OAuthClient(id)
		if !ok || (got.Enabled != nil && !*got.Enabled) {
			t.Fatalf("protected client %s: present %v, %+v", id, ok, got)
		}
	}
}

func findClientItem(p *plan.Plan, id string) *plan.ClientItem {
	if p == nil || p.APIClients == nil {
		return nil
	}
	for i := range p.APIClients.Items {
		if strings.EqualFold(p.APIClients.Items[i].ClientID, id) {
			return &p.APIClients.Items[i]
		}
	}
	return nil
}

func TestAPIClientProtectedAreSkippedAndReported(t *testing.T) {
	c := newClientEnv(t, "enforce")
	// Every full-scope client matches, also the one patjanitor logs in with
	// (logging in keeps its lastUsed fresh, so only a policy without a
	// lastUsed condition reaches it).
	c.cfg = c.parseConfig(`
limits: {maxActionsPercent: 0}
policies:
  - name: clients-full-scope-unused
    resource: apiClients
    mode: enforce
    match:
      scopes: {any: ["sp:scopes:all"]}
    action: disable
`)
	pl, err := c.engine().Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range pl.Plan.APIClients.Skipped {
		got[s.TokenID] = strings.SplitN(s.Reason, ":", 2)[0]
	}
	want := map[string]string{cInternal: "internal", strings.ToLower(cOwn): "own-credential", cNoFlags: "flags-missing"}
	for id, r := range want {
		if got[id] != r {
			t.Errorf("skipped[%s] = %q, want %q (all: %v)", id, got[id], r, got)
		}
	}
	for _, id := range []string{cTarget, cRecent} {
		if it := findClientItem(pl.Plan, id); it == nil || it.Action != "disable" {
			t.Errorf("client %s: item %+v, want disable", id, it)
		}
	}
	// Executed: the credential patjanitor runs as still works afterwards.
	if _, err := c.engine().Execute(context.Background(), pl); err != nil {
		t.Fatal(err)
	}
	if own, _ := c.sim.OAuthClient(cOwn); !own.IsEnabled() {
		t.Fatal("patjanitor disabled the API client it runs as")
	}
	if _, err := c.client.ListOAuthClients(context.Background(), ""); err != nil {
		t.Fatalf("patjanitor can no longer call the tenant: %v", err)
	}
}

func TestAPIClientReportModeSendsNoMutation(t *testing.T) {
	c := newClientEnv(t, "report")
	res := c.run()
	c.requireNoMutations()
	if it := findClientItem(res.Plan, cTarget); it == nil || it.Mode != "report" || it.Action != "disable" {
		t.Fatalf("report item = %+v", it)
	}
}

// A failing API client listing blocks the API client actions but neither the
// token actions nor the report of the clients' listing problem.
// Incomplete data stops every change of the run (invariant 3), whichever
// resource's listing failed; the other resource's report stays whole.
func TestHostileAPIClientListingFailureBlocksEveryChange(t *testing.T) {
	c := newClientEnv(t, "enforce")
	c.add("tok-stale", "owner-1", "stale", 400*day, 200*day)
	c.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListOAuthClients, Status: 500})
	res, err := c.engine().Run(context.Background(), janitor.RunInput{})
	var ce *janitor.ClientsError
	if !errors.As(err, &ce) {
		t.Fatalf("run error = %v, want a ClientsError", err)
	}
	if m := idnsim.Mutations(c.sim.Requests()); len(m) != 0 {
		t.Fatalf("mutations despite the failed API client listing: %+v", m)
	}
	if !c.present("tok-stale") {
		t.Fatal("a token was deleted although the API client listing failed")
	}
	if res.Count(janitor.OutcomeBlocked) != 1 {
		t.Fatalf("token results %+v, want the token's delete blocked", res.Items)
	}
	if res.Plan.APIClients == nil || res.Plan.APIClients.Error == "" {
		t.Fatalf("the plan does not report the client listing failure: %+v", res.Plan.APIClients)
	}
	if res.Plan.Items.Len() == 0 {
		t.Fatal("the token report is hidden by the API client listing failure")
	}
}

// And the other way round: a failed token listing stops the API client
// changes, and the client report stays whole.
func TestHostileTokenListingFailureBlocksAPIClientChanges(t *testing.T) {
	c := newClientEnv(t, "enforce")
	c.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, Status: 500, Times: 100})
	res, _ := c.engine().Run(context.Background(), janitor.RunInput{})
	if m := idnsim.Mutations(c.sim.Requests()); len(m) != 0 {
		t.Fatalf("mutations despite the failed token listing: %+v", m)
	}
	if res == nil || res.Plan.APIClients == nil || len(res.Plan.APIClients.Items) == 0 {
		t.Fatal("the API client report is hidden by the token listing failure")
	}
	blocked := 0
	for _, r := range res.Clients {
		if r.Outcome == janitor.OutcomeBlocked {
			blocked++
		}
	}
	if blocked == 0 {
		t.Fatalf("client results %+v, want the client actions blocked", res.Clients)
	}
}

func TestAPIClientApplyPlanRechecks(t *testing.T) {
	c := newClientEnv(t, "enforce")
	pl, err := c.engine().Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	saved := roundTrip(t, pl.Plan)
	if findClientItem(saved, cTarget) == nil {
		t.Fatal("the saved plan lost the API client item")
	}
	// Used since the plan: the saved disable must be dropped.
	used := t0.Add(-time.Hour)
	cur, _ := c.sim.OAuthClient(cTarget)
	cur.LastUsed = &used
	c.sim.AddOAuthClient(cur, "")
	res, err := c.engine().ApplyPlan(context.Background(), saved, janitor.ApplyOptions{})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if m := clientMutations(c.sim.Requests()); len(m) != 0 {
		t.Fatalf("apply sent %+v for a client used since the plan", m)
	}
	if len(res.Clients) != 1 || res.Clients[0].Outcome != janitor.OutcomeDropped || res.Clients[0].Detail != "decision changed: no policy matches the API client now" {
		t.Fatalf("client results = %+v", res.Clients)
	}
}

func TestAPIClientReEnableIsJournaled(t *testing.T) {
	c := newClientEnv(t, "enforce")
	c.run() // disables cTarget
	c.sim.ResetRequests()
	req := janitor.EnableRequest{ClientID: cTarget, Reason: "still needed by the ERP team", By: "alice", Now: t0.Add(day)}
	got, err := janitor.EnableClient(context.Background(), c.client, c.journal, c.store, req)
	if err != nil {
		t.Fatal(err)
	}
	if !got.IsEnabled() {
		t.Fatal("the answer does not show the client enabled")
	}
	muts := clientMutations(c.sim.Requests())
	if len(muts) != 1 || muts[0].Method != "PATCH" || !strings.Contains(string(muts[0].Body), `"path":"/enabled","value":true`) {
		t.Fatalf("mutations = %+v", muts)
	}
	if cur, _ := c.sim.OAuthClient(cTarget); !cur.IsEnabled() {
		t.Fatal("the client is still disabled")
	}
	if _, ok, _ := c.store.DisabledClient(context.Background(), cTarget); ok {
		t.Fatal("the disabled record was not cleared")
	}
	recs := c.journalRecords()
	last := recs[len(recs)-2:]
	if last[0].Kind != audit.KindIntent || !strings.Contains(last[0].Note, "still needed by the ERP team (by alice)") ||
		last[0].Request.Patch[0] != pat.SetEnabled(true) || last[1].Kind != audit.KindOutcome || last[1].Outcome.Status != "applied" {
		t.Fatalf("journal tail = %+v / %+v", last[0], last[1])
	}
	// A client patjanitor never disabled is refused, and nothing is sent.
	c.sim.ResetRequests()
	if _, err := janitor.EnableClient(context.Background(), c.client, c.journal, c.store, janitor.EnableRequest{ClientID: cRecent, Reason: "x", Now: t0}); err == nil || !strings.Contains(err.Error(), "no record") {
		t.Fatalf("enable of a client patjanitor did not disable: %v", err)
	}
	if len(idnsim.Mutations(c.sim.Requests())) != 0 {
		t.Fatal("a refused enable sent a request")
	}
}

func TestAPIClientMetricsCarryTheResource(t *testing.T) {
	c := newClientEnv(t, "enforce")
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	if _, err := c.env.engine(func(o *janitor.Options) {
		o.ClientID, o.ClientState, o.Metrics = cOwn, c.store, m
	}).Run(context.Background(), janitor.RunInput{}); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range mt.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			got[key] = mt.GetGauge().GetValue() + mt.GetCounter().GetValue()
		}
	}
	for key, want := range map[string]float64{
		"patjanitor_tokens,resource=apiClients": 5,
		"patjanitor_actions_total,action=disable,outcome=applied,policy=clients-full-scope-unused,resource=apiClients": 1,
		"patjanitor_tokens_matched,policy=clients-full-scope-unused":                                                   1,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
	if _, ok := got["patjanitor_tokens,resource=personalAccessTokens"]; !ok {
		t.Error("the token population lost its resource label")
	}
}

// With approvals (default for: every mutating action, disable included), an
// unsigned run sends no API client change and reports it as awaiting
// approval; a saved plan is refused without the approvals and carried out
// with them.
func TestAPIClientApprovalsHoldDisable(t *testing.T) {
	c := newClientEnv(t, "enforce")
	c.cfg = c.parseConfig(clientConfig("enforce") + `approvals:
  allowedSignersFile: /nonexistent/allowed_signers
  required: 2
`)
	ctx := context.Background()
	pl, err := c.engine().Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.engine().Execute(ctx, pl)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if m := clientMutations(c.sim.Requests()); len(m) != 0 {
		t.Fatalf("an unsigned run sent %+v", m)
	}
	if len(res.Clients) != 1 || res.Clients[0].Outcome != janitor.OutcomeAwaitingApproval {
		t.Fatalf("client results = %+v", res.Clients)
	}
	one := &audit.PlanRef{FileSHA256: "sha256:x", PlanHash: pl.Plan.PlanHash, Approvals: []audit.Approval{{Principal: "alice", Fingerprint: "SHA256:a"}}}
	if _, err := c.engine().ApplyPlan(ctx, pl.Plan, janitor.ApplyOptions{Plan: one}); !errors.Is(err, janitor.ErrPlanRejected) {
		t.Fatalf("ApplyPlan with one approval: %v", err)
	}
	if m := clientMutations(c.sim.Requests()); len(m) != 0 {
		t.Fatalf("a refused apply sent %+v", m)
	}
	two := &audit.PlanRef{FileSHA256: "sha256:x", PlanHash: pl.Plan.PlanHash, Approvals: []audit.Approval{
		{Principal: "alice", Fingerprint: "SHA256:a"}, {Principal: "bob", Fingerprint: "SHA256:b"}}}
	res, err = c.engine().ApplyPlan(ctx, pl.Plan, janitor.ApplyOptions{Plan: two})
	if err != nil {
		t.Fatalf("ApplyPlan with two approvals: %v", err)
	}
	if m := clientMutations(c.sim.Requests()); len(m) != 1 || m[0].Method != "PATCH" {
		t.Fatalf("the approved apply sent %+v", m)
	}
	if len(res.Clients) != 1 || res.Clients[0].Outcome != janitor.OutcomeApplied {
		t.Fatalf("client results = %+v", res.Clients)
	}
}

// requireOnlyEnabledPatches fails when the tenant saw a PATCH of an API
// client that is anything but one replace of /enabled: patjanitor has no
// business changing any other field.
func requireOnlyEnabledPatches(t *testing.T, reqs []idnsim.Request) int {
	t.Helper()
	n := 0
	for _, r := range reqs {
		if r.Method != "PATCH" || !strings.HasPrefix(r.Path, "/v3/oauth-clients") {
			continue
		}
		n++
		var ops []map[string]any
		if err := json.Unmarshal(r.Body, &ops); err != nil {
			t.Fatalf("PATCH %s: body %s: %v", r.Path, r.Body, err)
		}
		if len(ops) != 1 || ops[0]["op"] != "replace" || ops[0]["path"] != "/enabled" || len(ops[0]) != 3 {
			t.Fatalf("PATCH %s sent %s: only one replace of /enabled is allowed", r.Path, r.Body)
		}
		if _, ok := ops[0]["value"].(bool); !ok {
			t.Fatalf("PATCH %s sent %s: /enabled takes a boolean", r.Path, r.Body)
		}
	}
	return n
}

// The whole lifecycle against a seeded tenant, every run's request log
// checked: the only PATCH ever sent is /enabled, and the seeded internal and
// disabled-by-others clients are never touched.
func TestHostileAPIClientPatchesOnlyEnabled(t *testing.T) {
	e := newEnv(t, clientConfig("enforce"), envOpts{})
	e.sim.SeedOAuthClients(5)
	st, err := state.Open(filepath.Join(t.TempDir(), state.FileName), state.Options{Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	protected := map[string]apiclient.Client{}
	for _, c := range e.sim.OAuthClients() {
		if c.IsInternal() || !c.IsEnabled() {
			protected[c.ID] = c
		}
	}
	patches := 0
	for _, at := range []time.Time{t0, t0.Add(7 * day), t0.Add(15 * day), t0.Add(30 * day)} {
		e.clock.Set(at)
		if _, err := e.engine(func(o *janitor.Options) { o.ClientState = st }).Run(context.Background(), janitor.RunInput{}); err != nil {
			t.Fatalf("run at %s: %v", at, err)
		}
		patches += requireOnlyEnabledPatches(t, e.sim.Requests())
		e.sim.ResetRequests()
	}
	if patches == 0 {
		t.Fatal("no API client was disabled: the test proves nothing")
	}
	for id, before := range protected {
		after, ok := e.sim.OAuthClient(id)
		if !ok || after.IsEnabled() != before.IsEnabled() {
			t.Errorf("protected client %s (%s) changed: present %v, enabled %v", id, before.Name, ok, after.IsEnabled())
		}
	}
}

// A tenant that ignores the lastUsed filter of the API client listing makes
// the listing untrustworthy: no API client is changed.
func TestHostileAPIClientFilterIgnored(t *testing.T) {
	c := newClientEnv(t, "enforce")
	// The delete policy lists every client; a disable-only config uses the
	// filters.
	c.cfg = c.parseConfig(`
limits: {maxActionsPercent: 0}
policies:
  - name: quarantine
    resource: apiClients
    mode: enforce
    match: {unusedFor: 90d}
    action: disable
`)
	recent := t0.Add(-time.Hour)
	body, _ := json.Marshal([]apiclient.Client{{ID: cTarget, Name: "x", Internal: apiclient.Bool(false), Enabled: apiclient.Bool(true), Created: t0.Add(-400 * day), LastUsed: &recent}})
	c.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListOAuthClients, Status: 200, Body: string(body)})
	_, err := c.engine().Run(context.Background(), janitor.RunInput{})
	var ce *janitor.ClientsError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "did not apply the filter") {
		t.Fatalf("run error = %v", err)
	}
	if m := clientMutations(c.sim.Requests()); len(m) != 0 {
		t.Fatalf("mutations despite the ignored filter: %+v", m)
	}
}

// The notify.apiClients receivers get one notice after the run that disabled
// a client, naming it and saying how to re-enable it (API clients have no
// owner to tell); a run that changes no client sends none.
func TestAPIClientNoticeToTheAPIClientReceivers(t *testing.T) {
	c := newClientEnv(t, "enforce")
	c.cfg = c.parseConfig(clientConfig("enforce") + `notify:
  receivers:
    - name: iam-team
      webhook: {urlEnv: HOOK_URL, hmacSecretEnv: HOOK_KEY}
  apiClients: [iam-team]
`)
	hook, d := iamTeamDispatcher(t, c)
	run := func() {
		t.Helper()
		if _, err := c.env.engine(func(o *janitor.Options) {
			o.ClientID, o.ClientState, o.Notify = cOwn, c.store, d
		}).Run(context.Background(), janitor.RunInput{}); err != nil {
			t.Fatal(err)
		}
	}
	run()
	var notices []*notify.Notice
	for _, m := range hook.Take() {
		if m.Kind == notify.KindNotice {
			notices = append(notices, m.Notice)
		}
	}
	if len(notices) != 1 || notices[0].Resource != apiclient.Resource || len(notices[0].Items) != 1 ||
		notices[0].Items[0].TokenID != cTarget || notices[0].Items[0].Action != "disable" || notices[0].Items[0].Outcome != "applied" {
		t.Fatalf("notices = %+v", notices)
	}
	r, err := notify.NewRenderer(notify.RenderOptions{Clock: c.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.Render(notify.NoticeMessage("iam-team", "r", c.clock.Now(), *notices[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"API clients", "patjanitor enable", cTarget} {
		if !strings.Contains(out.Text, want) || !strings.Contains(out.HTML, want) {
			t.Errorf("the notice lacks %q:\n%s\n%s", want, out.Text, out.HTML)
		}
	}
	if !strings.Contains(out.Subject, "1 API client") || strings.Contains(out.Text, "you own") {
		t.Errorf("subject %q / text speak of tokens:\n%s", out.Subject, out.Text)
	}
	c.clock.Set(t0.Add(day))
	run()
	for _, m := range hook.Take() {
		if m.Kind == notify.KindNotice {
			t.Fatalf("a run that changed no client sent a notice: %+v", m.Notice)
		}
	}
}

// A 200 to the disable whose body does not show enabled false (or shows
// another client) is not an applied disable (invariant 8): the outcome is
// failed, no disabled record starts the disabledFor clock, and the journal
// says failed.
func TestHostileAPIClientDisableAnswerNotApplied(t *testing.T) {
	for name, body := range map[string]string{
		"still enabled": `{"id":"` + cTarget + `","name":"x","created":"2026-01-01T00:00:00.000Z","internal":false,"enabled":true,"scope":null,"grantTypes":[]}`,
		"other client":  `{"id":"` + cRecent + `","name":"x","created":"2026-01-01T00:00:00.000Z","internal":false,"enabled":false,"scope":null,"grantTypes":[]}`,
		"no enabled":    `{"id":"` + cTarget + `","name":"x","created":"2026-01-01T00:00:00.000Z","scope":null}`,
	} {
		t.Run(name, func(t *testing.T) {
			c := newClientEnv(t, "enforce")
			c.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpPatchOAuthClient, Status: 200, Body: body})
			res, err := c.engine().Run(context.Background(), janitor.RunInput{})
			if err == nil || len(res.Clients) != 1 || res.Clients[0].Outcome != janitor.OutcomeFailed {
				t.Fatalf("run: %v, results %+v", err, res.Clients)
			}
			if _, ok, _ := c.store.DisabledClient(context.Background(), cTarget); ok {
				t.Fatal("a disable the tenant did not confirm started the disabledFor clock")
			}
			var out *audit.Record
			for _, r := range c.journalRecords() {
				if r.Kind == audit.KindOutcome && r.TokenID == cTarget {
					r := r
					out = &r
				}
			}
			if out == nil || out.Outcome.Status != "failed" {
				t.Fatalf("journal outcome = %+v", out)
			}
		})
	}
}

// TestHostileAPIClientDeleteAnswers404 covers the client delete that finds
// the client already gone (deleted by someone else between the listing and
// the DELETE, or a proxy that says so): one DELETE, the item is gone rather
// than failed, the journal's outcome says already gone with the 404, and the
// disabled record is forgotten, as for a token.
func TestHostileAPIClientDeleteAnswers404(t *testing.T) {
	c := newClientEnv(t, "enforce")
	c.run() // disables cTarget, starting disabledFor
	c.clock.Set(t0.Add(14 * day))
	c.sim.ResetRequests()
	c.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpDeleteOAuthClient, Status: 404, Times: 1})
	res := c.run()
	muts := clientMutations(c.sim.Requests())
	if len(muts) != 1 || muts[0].Method != "DELETE" || !strings.HasSuffix(muts[0].Path, "/"+cTarget) {
		t.Fatalf("mutations = %+v, want one DELETE of %s", muts, cTarget)
	}
	if len(res.Clients) != 1 || res.Clients[0].Outcome != janitor.OutcomeGone || res.Clients[0].Status != 404 || res.Clients[0].Detail != "already gone (404)" {
		t.Fatalf("client results = %+v, want one gone with 404", res.Clients)
	}
	var out *audit.Record
	for _, r := range c.journalRecords() {
		if r.Kind == audit.KindOutcome && r.Resource == apiclient.Resource && r.TokenID == cTarget {
			r := r
			out = &r
		}
	}
	if out == nil || out.Outcome.Status != "gone" || !out.Outcome.AlreadyGone || out.Outcome.Code != 404 || out.Outcome.Error != "already gone (404)" {
		t.Fatalf("journal outcome = %+v", out)
	}
	if _, ok, _ := c.store.DisabledClient(context.Background(), cTarget); ok {
		t.Fatal("the disabled record of a client found gone survived")
	}
}
