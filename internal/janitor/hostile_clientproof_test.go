package janitor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/metrics"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/notify/notifytest"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/state"
)

// clientLiar stands between patjanitor and the simulated tenant. While lie
// is set it answers every PATCH of an API client with 200 and the client as
// the tenant lists it but disabled, and every DELETE of one with 204,
// without forwarding either: the tenant receives nothing.
type clientLiar struct {
	sim  *idnsim.Sim
	next http.Handler
	lie  atomic.Bool

	mu    sync.Mutex
	faked []string // METHOD id of the requests answered without the tenant
}

func (p *clientLiar) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.lie.Load() && strings.Contains(r.URL.Path, "/oauth-clients/") {
		id := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		switch r.Method {
		case http.MethodPatch:
			if cl, ok := p.sim.OAuthClient(id); ok {
				cl.Enabled = apiclient.Bool(false)
				body, err := json.Marshal(cl)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				p.record(r.Method + " " + id)
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(body)
				return
			}
		case http.MethodDelete:
			p.record(r.Method + " " + id)
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	p.next.ServeHTTP(w, r)
}

func (p *clientLiar) record(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faked = append(p.faked, s)
}

func (p *clientLiar) fakedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.faked)
}

// clientProofEnv is a clientEnv reached through a clientLiar, with the state
// store as ClientState and Proofs (as serve and apply wire it), metrics, and
// the notify.apiClients receiver iam-team.
type clientProofEnv struct {
	*clientEnv
	liar *clientLiar
	reg  *prometheus.Registry
	m    *metrics.Metrics
	hook *notifytest.Receiver
	d    *notify.Dispatcher
}

func newClientProofEnv(t *testing.T) *clientProofEnv {
	t.Helper()
	liar := &clientLiar{}
	c := newClientEnvOpts(t, "enforce", envOpts{wrap: func(h http.Handler) http.Handler {
		liar.next = h
		return liar
	}})
	liar.sim = c.sim
	c.cfg = c.parseConfig(clientConfig("enforce") + `notify:
  receivers:
    - name: iam-team
      webhook: {urlEnv: HOOK_URL, hmacSecretEnv: HOOK_KEY}
  apiClients: [iam-team]
`)
	hook, d := iamTeamDispatcher(t, c)
	reg := prometheus.NewRegistry()
	return &clientProofEnv{clientEnv: c, liar: liar, reg: reg, m: metrics.New(reg), hook: hook, d: d}
}

func (p *clientProofEnv) runAt(at time.Time) (*janitor.Result, error) {
	p.t.Helper()
	p.clock.Set(at)
	p.sim.ResetRequests()
	return p.env.engine(func(o *janitor.Options) {
		o.ClientID, o.ClientState, o.Proofs, o.Notify, o.Metrics = cOwn, p.store, p.store, p.d, p.m
	}).Run(context.Background(), janitor.RunInput{})
}

// records are the confirmed API client mutations in the store, by id.
func (p *clientProofEnv) records() map[string]state.Confirmed {
	p.t.Helper()
	cs, err := p.store.ConfirmedClientMutations(context.Background())
	if err != nil {
		p.t.Fatal(err)
	}
	out := map[string]state.Confirmed{}
	for _, c := range cs {
		out[c.TokenID] = c
	}
	if ts, err := p.store.ConfirmedMutations(context.Background()); err != nil || len(ts) != 0 {
		p.t.Fatalf("token records %+v, %v: an API client's record went to the tokens'", ts, err)
	}
	return out
}

// clientOutcomes are the journal's API client outcome records of id with
// status, in order.
func (p *clientProofEnv) clientOutcomes(id, status string) []audit.Record {
	var out []audit.Record
	for _, r := range p.journalRecords() {
		if r.Kind == audit.KindOutcome && r.Resource == apiclient.Resource && r.TokenID == id && r.Outcome != nil && r.Outcome.Status == status {
			out = append(out, r)
		}
	}
	return out
}

// noticed are the client ids the iam-team notices since the last call name.
func (p *clientProofEnv) noticed() []string {
	var ids []string
	for _, m := range p.hook.Take() {
		if m.Kind == notify.KindNotice && m.Notice != nil {
			for _, it := range m.Notice.Items {
				ids = append(ids, it.Action+" "+it.TokenID)
			}
		}
	}
	return ids
}

func (p *clientProofEnv) gauge(action string) float64 {
	p.t.Helper()
	g := &graceEnv{env: p.env, reg: p.reg}
	return g.gauge("patjanitor_unproven_mutations", "action", action)
}

func (p *clientProofEnv) disabledAt() (time.Time, bool) {
	p.t.Helper()
	d, ok, err := p.store.DisabledClient(context.Background(), cTarget)
	if err != nil {
		p.t.Fatal(err)
	}
	return d.At, ok
}

func requireUnproven(t *testing.T, err error, id, said string) {
	t.Helper()
	var uerr *janitor.UnprovenError
	if !errors.As(err, &uerr) || len(uerr.Unproven) != 1 || uerr.Unproven[0].Confirmed.TokenID != id {
		t.Fatalf("error %v; want an UnprovenError naming %s", err, id)
	}
	if !strings.Contains(fmt.Sprint(err), said) {
		t.Errorf("error %q; want %q", err, said)
	}
}

// A tenant (or a proxy in front of it) answers 200 to the PATCH that
// disables an API client and does not disable it. patjanitor used to
// journal the disable applied, tell the notify.apiClients receivers so,
// start the disabledFor clock from it, and on every later run disable it
// "again" and tell them again, while the client's secret still worked; once
// disabledFor had passed from the last fake, a client disabled by someone
// else was deleted on the strength of that clock. Now the next complete
// listing still shows the client enabled: the journal records the disable
// as not in effect (naming the run that was confirmed), the metric counts
// it, the plan and the run's error say it, the receivers are not told
// again, and disabledFor counts from the listing that first shows the
// client disabled.
func TestHostileTenantConfirmsClientDisableItDoesNotDo(t *testing.T) {
	p := newClientProofEnv(t)
	p.liar.lie.Store(true)

	// Run 1: the PATCH is answered by the proxy; the tenant receives none.
	res1, err := p.runAt(t0)
	if err != nil {
		t.Fatalf("run 1: %v", err)
	}
	if len(res1.Clients) != 1 || res1.Clients[0].Outcome != janitor.OutcomeApplied || res1.Clients[0].Item.Action != "disable" {
		t.Fatalf("run 1 client results %+v; want the disable applied", res1.Clients)
	}
	if m := clientMutations(p.sim.Requests()); len(m) != 0 || p.liar.fakedCount() != 1 {
		t.Fatalf("the tenant received %+v, the proxy faked %d; want nothing and 1", m, p.liar.fakedCount())
	}
	if cl, _ := p.sim.OAuthClient(cTarget); !cl.IsEnabled() {
		t.Fatal("the tenant disabled the client: the proxy did not lie")
	}
	if got := p.noticed(); len(got) != 1 || got[0] != "disable "+cTarget {
		t.Fatalf("run 1 notices %v; want the disable of %s (the tenant said so)", got, cTarget)
	}
	rec, ok := p.records()[cTarget]
	if !ok || rec.Action != "disable" || rec.RunID != res1.RunID || rec.Code != http.StatusOK || rec.Unproven() ||
		rec.Resource != apiclient.Resource || rec.Before == nil || rec.Before.Modified == nil {
		t.Fatalf("confirmed record %+v (found %v); want run 1's disable awaiting proof, with the modified time from before", rec, ok)
	}

	// Ten minutes later: within the settle margin nothing is judged nor
	// sent again; the client is skipped as awaiting proof.
	res, err := p.runAt(t0.Add(10 * time.Minute))
	if err != nil {
		t.Fatalf("run within the margin: %v", err)
	}
	if p.liar.fakedCount() != 1 || len(clientMutations(p.sim.Requests())) != 0 || len(res.Clients) != 0 {
		t.Fatalf("within the margin the disable was sent again: results %+v", res.Clients)
	}
	if !slicesContainsSub(skippedReasons(res.Plan.APIClients.Skipped), string(janitor.SkipAwaitingProof)+": the tenant confirmed a disable of this API client") {
		t.Errorf("skipped %+v; want %s awaiting proof", res.Plan.APIClients.Skipped, cTarget)
	}

	// Run 2, a day later: the listing still shows the client enabled.
	res2, err := p.runAt(t0.Add(day))
	requireUnproven(t, err, cTarget, "1 API client the tenant confirmed disabled is still listed enabled ("+cTarget+", disabled by policy clients-full-scope-unused in run "+res1.RunID)
	if !slicesContainsSub(res2.Plan.Warnings, "1 API client the tenant confirmed disabled is still listed enabled") {
		t.Errorf("plan warnings %q", res2.Plan.Warnings)
	}
	lies := p.clientOutcomes(cTarget, janitor.StatusNotInEffect)
	if len(lies) != 1 {
		t.Fatalf("journal not-in-effect outcomes %+v; want one", lies)
	}
	if l := lies[0]; l.RunID != res2.RunID || l.Client == nil || !l.Client.IsEnabled() || l.Outcome.Code != http.StatusOK ||
		!strings.Contains(l.Note, "run "+res1.RunID) || !strings.Contains(l.Outcome.Error, "shows the API client listed enabled: the disable did not happen") {
		t.Errorf("not-in-effect record %+v (outcome %+v); want run 2's, the client as listed, run 1 named", l, l.Outcome)
	}
	if v := p.gauge(metrics.ProofDisableClient); v != 1 {
		t.Errorf("unproven_mutations{action=disable-client} = %v, want 1", v)
	}
	if v := p.gauge("delete"); v != 0 {
		t.Errorf("unproven_mutations{action=delete} = %v, want 0 (no token)", v)
	}
	// The disable is sent again (to the proxy: 2 fakes), not announced.
	if p.liar.fakedCount() != 2 || len(clientMutations(p.sim.Requests())) != 0 {
		t.Fatalf("run 2: faked %d, the tenant received %+v", p.liar.fakedCount(), clientMutations(p.sim.Requests()))
	}
	if got := p.noticed(); len(got) != 0 {
		t.Errorf("run 2 told the receivers again %v", got)
	}
	if rec := p.records()[cTarget]; !rec.Unproven() || rec.RunID != res2.RunID || rec.Checks != 1 {
		t.Errorf("record after run 2 %+v; want run 2's confirmation, found not in effect once", rec)
	}

	// Someone disables the client by hand nine days later; the proxy is
	// gone. Run 3, 14 days after run 2's fake: the old code counted
	// disabledFor from that fake and deleted the client now.
	p.liar.lie.Store(false)
	cl, _ := p.sim.OAuthClient(cTarget)
	cl.Enabled = apiclient.Bool(false)
	mod := t0.Add(10 * day)
	cl.Modified = &mod
	p.sim.AddOAuthClient(cl, "")
	res3, err := p.runAt(t0.Add(15 * day))
	if err != nil {
		t.Fatalf("run 3: %v", err)
	}
	if m := clientMutations(p.sim.Requests()); len(m) != 0 {
		t.Fatalf("run 3 sent %+v: a delete counted disabledFor from a disable that never happened", m)
	}
	if it := findClientItem(res3.Plan, cTarget); it == nil || it.Action != "report" || it.DeleteAfter == nil || !it.DeleteAfter.Equal(t0.Add(29*day)) {
		t.Fatalf("run 3 item %+v; want report, delete due 14 days after this listing", it)
	}
	if at, ok := p.disabledAt(); !ok || !at.Equal(t0.Add(15*day)) {
		t.Errorf("disabled record at %v (%v); want this listing's time", at, ok)
	}
	proven := p.clientOutcomes(cTarget, janitor.StatusInEffect)
	if len(proven) != 1 || proven[0].RunID != res3.RunID || !strings.Contains(proven[0].Note, "is in effect now") {
		t.Fatalf("journal in-effect outcomes %+v; want run 3's", proven)
	}
	if v := p.gauge(metrics.ProofDisableClient); v != 0 {
		t.Errorf("run 3 unproven_mutations{action=disable-client} = %v, want 0", v)
	}
	if len(p.records()) != 0 {
		t.Errorf("records after the proof %+v", p.records())
	}
}

func skippedReasons(sk []plan.Skipped) []string {
	out := make([]string, 0, len(sk))
	for _, s := range sk {
		out = append(out, s.TokenID+": "+s.Reason)
	}
	return out
}

// A tenant (or a proxy) answers 204 to the DELETE of an API client that
// patjanitor kept disabled for disabledFor, and does not delete it. The
// old code journaled it deleted, told the receivers so and forgot the
// disable; the client, still listed, was then "disabled, but not by
// patjanitor" and reported forever, with nobody told that its secret was
// still there. Now the next listing finds it still listed: not in effect
// (journal, metric, error), the record of the disable is kept so the delete
// is sent again, and the receivers are not told again; the delete that
// finally takes effect is journaled in effect.
func TestHostileTenantConfirmsClientDeleteItDoesNotDo(t *testing.T) {
	p := newClientProofEnv(t)

	// Run 1: an honest disable; an hour later a listing proves it, quietly.
	if _, err := p.runAt(t0); err != nil {
		t.Fatalf("run 1: %v", err)
	}
	if m := clientMutations(p.sim.Requests()); len(m) != 1 || m[0].Method != http.MethodPatch {
		t.Fatalf("run 1 sent %+v; want the PATCH", m)
	}
	p.noticed()
	if _, err := p.runAt(t0.Add(time.Hour)); err != nil {
		t.Fatalf("run 2: %v", err)
	}
	if len(p.records()) != 0 || len(p.clientOutcomes(cTarget, janitor.StatusInEffect)) != 0 {
		t.Fatalf("after the proof of an honest disable: records %+v, in-effect %+v", p.records(), p.clientOutcomes(cTarget, janitor.StatusInEffect))
	}

	// Run 3, disabledFor later: the DELETE is answered by the proxy.
	p.liar.lie.Store(true)
	res3, err := p.runAt(t0.Add(14 * day))
	if err != nil {
		t.Fatalf("run 3: %v", err)
	}
	if len(res3.Clients) != 1 || res3.Clients[0].Outcome != janitor.OutcomeApplied || res3.Clients[0].Item.Action != "delete" {
		t.Fatalf("run 3 client results %+v; want the delete applied", res3.Clients)
	}
	if m := clientMutations(p.sim.Requests()); len(m) != 0 || p.liar.fakedCount() != 1 {
		t.Fatalf("the tenant received %+v, the proxy faked %d", m, p.liar.fakedCount())
	}
	if _, ok := p.sim.OAuthClient(cTarget); !ok {
		t.Fatal("the tenant deleted the client: the proxy did not lie")
	}
	if got := p.noticed(); len(got) != 1 || got[0] != "delete "+cTarget {
		t.Fatalf("run 3 notices %v", got)
	}
	if len(p.clientOutcomes(cTarget, string(janitor.OutcomeApplied))) != 2 {
		t.Fatalf("journal applied outcomes %+v; want the disable's and the delete's", p.clientOutcomes(cTarget, string(janitor.OutcomeApplied)))
	}
	if at, ok := p.disabledAt(); !ok || !at.Equal(t0) {
		t.Fatalf("disabled record %v (%v); want it kept until the delete is proven", at, ok)
	}

	// Run 4, a day later: still listed. The delete is sent again (faked).
	res4, err := p.runAt(t0.Add(15 * day))
	requireUnproven(t, err, cTarget, "1 API client the tenant confirmed deleted is still listed ("+cTarget+", deleted by policy clients-full-scope-unused in run "+res3.RunID)
	lies := p.clientOutcomes(cTarget, janitor.StatusNotInEffect)
	if len(lies) != 1 || lies[0].RunID != res4.RunID || lies[0].Client == nil || lies[0].Client.ID != cTarget ||
		lies[0].Outcome.Code != http.StatusNoContent || !strings.Contains(lies[0].Note, "run "+res3.RunID) ||
		!strings.Contains(lies[0].Outcome.Error, "shows the API client still listed: the delete did not happen") {
		t.Fatalf("journal not-in-effect outcomes %+v", lies)
	}
	if v := p.gauge(metrics.ProofDeleteClient); v != 1 {
		t.Errorf("unproven_mutations{action=delete-client} = %v, want 1", v)
	}
	if p.liar.fakedCount() != 2 {
		t.Errorf("run 4 did not send the delete again (faked %d)", p.liar.fakedCount())
	}
	if got := p.noticed(); len(got) != 0 {
		t.Errorf("run 4 told the receivers again %v", got)
	}

	// The proxy is gone. Run 5: the faked repeat is judged (still listed)
	// and the delete reaches the tenant; run 6 proves it.
	p.liar.lie.Store(false)
	_, err = p.runAt(t0.Add(15*day + time.Hour))
	requireUnproven(t, err, cTarget, "1 API client the tenant confirmed deleted is still listed")
	if m := clientMutations(p.sim.Requests()); len(m) != 1 || m[0].Method != http.MethodDelete || m[0].Status != http.StatusNoContent {
		t.Fatalf("run 5 sent %+v; want the DELETE", m)
	}
	if _, ok := p.sim.OAuthClient(cTarget); ok {
		t.Fatal("the client survived an honest delete")
	}
	res6, err := p.runAt(t0.Add(15*day + 2*time.Hour))
	if err != nil {
		t.Fatalf("run 6: %v", err)
	}
	proven := p.clientOutcomes(cTarget, janitor.StatusInEffect)
	if len(proven) != 1 || proven[0].RunID != res6.RunID || !strings.Contains(proven[0].Note, "is in effect now (found not in effect since") {
		t.Fatalf("journal in-effect outcomes %+v; want run 6's", proven)
	}
	if v := p.gauge(metrics.ProofDeleteClient); v != 0 {
		t.Errorf("run 6 unproven_mutations{action=delete-client} = %v, want 0", v)
	}
	if _, ok := p.disabledAt(); ok || len(p.records()) != 0 {
		t.Errorf("after the proof: disabled record kept %v, records %+v", ok, p.records())
	}
}

// An honest tenant: the disable and the delete are each proven by the next
// listing after the margin, without an alarm, an outcome of the proof, or a
// record left behind; the disable's record is kept until the delete is
// proven, then forgotten.
func TestConfirmedClientDisableAndDeleteProvenWithoutAlarm(t *testing.T) {
	p := newClientProofEnv(t)
	for i, step := range []struct {
		at      time.Duration
		sent    string
		records int
	}{
		{0, http.MethodPatch, 1},
		{time.Hour, "", 0},
		{14 * day, http.MethodDelete, 1},
		{14*day + time.Hour, "", 0},
	} {
		res, err := p.runAt(t0.Add(step.at))
		if err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
		m := clientMutations(p.sim.Requests())
		if (step.sent == "" && len(m) != 0) || (step.sent != "" && (len(m) != 1 || m[0].Method != step.sent)) {
			t.Fatalf("run %d sent %+v; want %q", i+1, m, step.sent)
		}
		if n := len(p.records()); n != step.records {
			t.Errorf("run %d: %d records, want %d", i+1, n, step.records)
		}
		if len(res.Unproven) != 0 || len(res.Plan.Warnings) != 0 {
			t.Errorf("run %d: unproven %+v, warnings %q", i+1, res.Unproven, res.Plan.Warnings)
		}
		for _, a := range []string{metrics.ProofDisableClient, metrics.ProofDeleteClient} {
			if v := p.gauge(a); v != 0 {
				t.Errorf("run %d: unproven_mutations{action=%s} = %v", i+1, a, v)
			}
		}
		if _, kept := p.disabledAt(); kept != (i < 3) {
			t.Errorf("run %d: disabled record kept %v", i+1, kept)
		}
	}
	if _, ok := p.sim.OAuthClient(cTarget); ok {
		t.Fatal("the client was not deleted")
	}
	for _, st := range []string{janitor.StatusNotInEffect, janitor.StatusInEffect} {
		if got := p.clientOutcomes(cTarget, st); len(got) != 0 {
			t.Errorf("journal %s outcomes %+v on an honest tenant", st, got)
		}
	}
}

// An administrator re-enables a client patjanitor disabled (honestly) before
// the listing that judges it: the listing shows it enabled but modified
// since the disable was sent, which is no evidence against the tenant.
func TestConfirmedClientDisableReenabledSinceIsNoAlarm(t *testing.T) {
	p := newClientProofEnv(t)
	if _, err := p.runAt(t0); err != nil {
		t.Fatalf("run 1: %v", err)
	}
	cl, _ := p.sim.OAuthClient(cTarget)
	cl.Enabled = apiclient.Bool(true)
	mod := t0.Add(10 * time.Minute)
	cl.Modified = &mod
	p.sim.AddOAuthClient(cl, "")
	res, err := p.runAt(t0.Add(time.Hour))
	if err != nil || len(res.Unproven) != 0 {
		t.Fatalf("run 2: %v, unproven %+v; want no alarm", err, res.Unproven)
	}
	if got := p.clientOutcomes(cTarget, janitor.StatusNotInEffect); len(got) != 0 {
		t.Errorf("journal not-in-effect %+v", got)
	}
	if v := p.gauge(metrics.ProofDisableClient); v != 0 {
		t.Errorf("unproven_mutations{action=disable-client} = %v", v)
	}
}

// A listing taken within the settle margin of a confirmed disable may lag
// and still show the client enabled: that is no re-enable, and the disabled
// record (the start of disabledFor) is kept. Without that, the listing
// dropped it while the awaiting-proof skip kept the disable from being sent
// again, and the client, proven disabled by the next listing, was
// "disabled, but not by patjanitor" and never deleted.
func TestHostileLaggingListingKeepsTheDisabledRecord(t *testing.T) {
	p := newClientProofEnv(t)
	if _, err := p.runAt(t0); err != nil {
		t.Fatalf("run 1: %v", err)
	}
	setEnabled := func(on bool) {
		cl, _ := p.sim.OAuthClient(cTarget)
		cl.Enabled = apiclient.Bool(on)
		p.sim.AddOAuthClient(cl, "") // modified as it is: the listing lags
	}
	setEnabled(true)
	res, err := p.runAt(t0.Add(10 * time.Minute))
	if err != nil || len(res.Clients) != 0 {
		t.Fatalf("run within the margin: %v, results %+v; want nothing sent", err, res.Clients)
	}
	if at, ok := p.disabledAt(); !ok || !at.Equal(t0) {
		t.Fatalf("disabled record %v (%v) after a lagging listing; want run 1's", at, ok)
	}
	setEnabled(false)
	if _, err := p.runAt(t0.Add(time.Hour)); err != nil {
		t.Fatalf("run 3: %v", err)
	}
	_, err = p.runAt(t0.Add(14 * day))
	if err != nil {
		t.Fatalf("run 4: %v", err)
	}
	if m := clientMutations(p.sim.Requests()); len(m) != 1 || m[0].Method != http.MethodDelete {
		t.Fatalf("run 4 sent %+v; want the DELETE disabledFor after run 1", m)
	}
}

// A saved plan's API client item whose change the tenant confirmed less
// than SettleMargin ago (here by a scheduled run after the plan was made)
// is dropped at apply time, as a token's is, and says why: the reviewer
// reading the apply result learns that the disable was confirmed and when
// a listing will tell, not "gone, exempt, or no policy acts on it now".
func TestHostileApplyPlanDropsClientAwaitingProofSayingSo(t *testing.T) {
	p := newClientProofEnv(t)
	eng := p.env.engine(func(o *janitor.Options) {
		o.ClientID, o.ClientState, o.Proofs, o.Notify, o.Metrics = cOwn, p.store, p.store, p.d, p.m
	})
	pl, err := eng.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	saved := roundTrip(t, pl.Plan)
	p.liar.lie.Store(true)
	res1, err := p.runAt(t0)
	if err != nil || len(res1.Clients) != 1 || res1.Clients[0].Outcome != janitor.OutcomeApplied {
		t.Fatalf("run: %v, client results %+v; want the disable of %s confirmed", err, res1.Clients, cTarget)
	}

	p.clock.Set(t0.Add(10 * time.Minute))
	p.sim.ResetRequests()
	res, err := eng.ApplyPlan(context.Background(), saved, janitor.ApplyOptions{})
	if err != nil {
		t.Fatalf("apply within the margin: %v", err)
	}
	if m := clientMutations(p.sim.Requests()); len(m) != 0 || p.liar.fakedCount() != 1 {
		t.Fatalf("the apply sent %+v (faked %d); want nothing within the margin", m, p.liar.fakedCount())
	}
	want := fmt.Sprintf("awaiting-proof: the tenant confirmed a disable of this API client at %s (run %s); a listing from %s on shows whether it took effect",
		pat.FormatTime(t0), res1.RunID, pat.FormatTime(t0.Add(janitor.SettleMargin)))
	if len(res.Clients) != 1 || res.Clients[0].Outcome != janitor.OutcomeDropped || res.Clients[0].Detail != "now exempt: "+want {
		t.Fatalf("apply client results %+v; want %s dropped: now exempt: %s", res.Clients, cTarget, want)
	}
}
