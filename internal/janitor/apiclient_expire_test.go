package janitor_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// TestAPIClientCredentialExpireIsWarnedInThePlan: patjanitor runs as an
// OAuth API client (a deployment may; validate only warns about the id's
// form) with an enforce-mode expire policy. A real tenant refuses API client
// credentials on the bulk update that expire sends, so every expire fails
// with 403. The plan used to say nothing of it: a reviewer approved
// "expire 2 tokens" and learnt otherwise from the failures. The plan now warns
// before anything is sent; the run still sends the batch (the claims are
// only the tenant's word), which the tenant refuses, and the journal holds an
// intent and a failed outcome with the 403 per token.
func TestAPIClientCredentialExpireIsWarnedInThePlan(t *testing.T) {
	e := newEnv(t, expireStale, envOpts{})
	e.sim.AddOAuthClient(apiclient.Client{ID: cOwn, Name: "patjanitor-client", Internal: apiclient.Bool(false),
		Enabled: apiclient.Bool(true), Scope: pat.Scopes{Null: true}}, ownSecret)
	client, err := api.New(api.Config{BaseURL: e.url, Version: e.cfg.Tenant.APIVersion, ClientID: cOwn, ClientSecret: secret.New(ownSecret),
		RateLimit: api.RateLimit{Requests: -1}, Sleep: noSleep, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.client = client
	ids := e.addStale("x", 2, 1)
	before := map[string]string{}
	for _, id := range ids {
		tok, _ := e.sim.Token(id)
		before[id] = fmt.Sprint(tok.ExpirationDate)
	}
	eng := e.engine(func(o *janitor.Options) { o.ClientID = cOwn })

	pl, err := eng.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const warn = "names no identity in its access token: it is an OAuth API client's, not a personal access token's, and the bulk update that action: expire sends refuses API client credentials (403), so every expire (policy expire-stale) will fail"
	if !slicesContainsSub(pl.Plan.Warnings, warn) {
		t.Fatalf("plan warnings %q; want %q", pl.Plan.Warnings, warn)
	}
	e.requireNoMutations()

	res, err := eng.Execute(context.Background(), pl)
	requireActionsFailed(t, err, 2)
	for _, r := range res.Items {
		if r.Outcome != janitor.OutcomeFailed || r.Status != http.StatusForbidden {
			t.Errorf("%+v, want failed with the 403", r)
		}
	}
	m := e.mutations()
	if len(m) != 1 || m[0].Operation != idnsim.OpBulkUpdateTokens || m[0].Status != http.StatusForbidden {
		t.Fatalf("the tenant received %+v; want one bulk update, refused 403", m)
	}
	failed := 0
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindOutcome && r.Outcome.Status == "failed" && r.Outcome.Code == http.StatusForbidden &&
			strings.Contains(r.Outcome.Error, "API OAuth client credentials are not permitted") {
			failed++
		}
	}
	if failed != len(ids) {
		t.Errorf("%d failed outcomes quoting the 403, want %d", failed, len(ids))
	}
	for _, id := range ids {
		if tok, _ := e.sim.Token(id); fmt.Sprint(tok.ExpirationDate) != before[id] {
			t.Errorf("%s: expirationDate %v, was %s: changed despite the 403", id, tok.ExpirationDate, before[id])
		}
	}
}
