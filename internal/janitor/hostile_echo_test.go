package janitor_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/report"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// bearerWatch records the bearer tokens the client sends, to look for them
// where they must never be.
type bearerWatch struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (b *bearerWatch) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			b.mu.Lock()
			if b.seen == nil {
				b.seen = map[string]bool{}
			}
			b.seen[tok] = true
			b.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

// requireAbsent fails when out holds a bearer token sent so far, or the
// client secret.
func (b *bearerWatch) requireAbsent(t *testing.T, e *env, where string, out []byte) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.seen) == 0 {
		t.Fatal("no bearer token was sent")
	}
	for tok := range b.seen {
		if bytes.Contains(out, []byte(tok)) {
			t.Errorf("%s holds the access token patjanitor sent", where)
		}
	}
	if bytes.Contains(out, []byte(e.admin.ClientSecret)) {
		t.Errorf("%s holds the client secret", where)
	}
}

// A tenant (or a proxy) that knows the bearer token patjanitor sent echoes
// it in a token's name, its owner's name and a scope, and puts the client
// secret in another token's name. The credentials reach none of the plan
// file, the reports, the journal and the logs: the names carry
// secret.Redacted instead; the tokens are still deleted, by id, exactly
// those the policy matched; the token whose scope held the credential is
// left alone (undecodable: never acted on).
func TestHostileTenantEchoesTheAccessToken(t *testing.T) {
	var watch bearerWatch
	e := newEnv(t, enforceDeleteStale, envOpts{sim: idnsim.Options{EchoBearer: true}, wrap: watch.wrap})
	ctx := context.Background()
	stale := t0.Add(-200 * day)
	add := func(id, name, ownerName string, scope ...string) {
		e.sim.Add(pat.Token{ID: id, Name: name, Owner: pat.Owner{Type: "IDENTITY", ID: "owner-" + id, Name: ownerName},
			Created: t0.Add(-400 * day), LastUsed: &stale, Scope: pat.ScopesOf(scope...)}, "")
	}
	add("echo-name", "svc-"+idnsim.EchoMarker+"-bot", "Owner "+idnsim.EchoMarker, "idn:sources:read")
	add("echo-scope", "scoped", "Owner C", "sp:"+idnsim.EchoMarker)
	add("client-secret", "ci-"+e.admin.ClientSecret, "Owner D", "idn:sources:read")
	add("plain", "tok-plain", "Owner E", "idn:sources:read")
	// The token endpoint received the client secret: it could put it in a
	// claim of the access token, which the plan's caller section shows.
	for _, idn := range e.sim.Identities() {
		if idn.ID == e.own() {
			idn.Alias = "ops-" + e.admin.ClientSecret
			e.sim.AddIdentity(idn)
		}
	}

	pl, err := e.engine().Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var doc bytes.Buffer
	if err := plan.Write(&doc, pl.Plan); err != nil {
		t.Fatal(err)
	}
	watch.requireAbsent(t, e, "the plan file", doc.Bytes())
	for _, want := range []string{"svc-" + secret.Redacted + "-bot", "Owner " + secret.Redacted, "ci-" + secret.Redacted} {
		if !strings.Contains(doc.String(), strings.ReplaceAll(strings.ReplaceAll(want, "<", `\u003c`), ">", `\u003e`)) && !strings.Contains(doc.String(), want) {
			t.Errorf("the plan file does not show %q where the credential was", want)
		}
	}
	if c := pl.Plan.Caller; c == nil || c.UserName != "ops-"+secret.Redacted {
		t.Errorf("the plan's caller %+v, want the user name redacted", c)
	}
	for _, f := range report.Formats() {
		var out bytes.Buffer
		if err := report.RenderOptions(&out, pl.Plan, f, report.Options{}); err != nil {
			t.Fatal(err)
		}
		watch.requireAbsent(t, e, "the "+f+" report", out.Bytes())
	}

	if _, err := e.engine().Execute(ctx, pl); err != nil {
		t.Fatal(err)
	}
	if got := deletedIDs(e.sim.Requests()); len(got) != 3 || got["echo-name"] != 1 || got["client-secret"] != 1 || got["plain"] != 1 {
		t.Fatalf("the tenant deleted %v, want echo-name, client-secret and plain (by id), not echo-scope", got)
	}
	if !e.present("echo-scope") {
		t.Fatal("the token whose scope held the credential was acted on")
	}
	intents := 0
	for _, r := range e.journalRecords() {
		if r.Before != nil && r.Before.ID == "echo-name" {
			intents++
			if r.Before.Name != "svc-"+secret.Redacted+"-bot" {
				t.Errorf("the journal's intent names the token %q", r.Before.Name)
			}
		}
	}
	if intents != 1 {
		t.Errorf("%d intents for echo-name, want 1", intents)
	}
	journal, err := os.ReadFile(e.jpath)
	if err != nil {
		t.Fatal(err)
	}
	watch.requireAbsent(t, e, "the journal", journal)
	watch.requireAbsent(t, e, "the logs", e.logs.Bytes())
}

// A credential echoed into a token's id cannot be redacted (the id is what
// a mutation names: a redacted id would name another token) nor shown: the
// listing is refused as untrustworthy data, the run sends no mutation, and
// the error says where without the value.
func TestHostileTenantEchoesTheAccessTokenInAnID(t *testing.T) {
	var watch bearerWatch
	e := newEnv(t, enforceDeleteStale, envOpts{sim: idnsim.Options{EchoBearer: true}, wrap: watch.wrap})
	ctx := context.Background()
	e.addStale("stale", 2, 1)
	stale := t0.Add(-200 * day)
	e.sim.Add(pat.Token{ID: "id-" + idnsim.EchoMarker, Name: "x", Owner: pat.Owner{Type: "IDENTITY", ID: "o", Name: "O"},
		Created: t0.Add(-400 * day), LastUsed: &stale, Scope: pat.ScopesOf("idn:sources:read")}, "")

	pl, err := e.engine().Plan(ctx)
	if pl == nil {
		t.Fatalf("Plan: %v", err)
	}
	if !errors.Is(pl.Err, api.ErrEchoedSecret) || !strings.Contains(pl.Err.Error(), "in the id of token #1 of the listing; the listing is refused") {
		t.Fatalf("plan error %v, want the listing refused for the echoed credential", pl.Err)
	}
	if pl.Plan.Items.Len() != 0 {
		t.Errorf("a refused listing planned %d items", pl.Plan.Items.Len())
	}
	var doc bytes.Buffer
	if err := plan.Write(&doc, pl.Plan); err != nil {
		t.Fatal(err)
	}
	watch.requireAbsent(t, e, "the plan file", doc.Bytes())
	_, err = e.engine().Execute(ctx, pl)
	if err == nil {
		t.Fatal("a run over a refused listing succeeded")
	}
	watch.requireAbsent(t, e, "the run's error", []byte(err.Error()))
	e.requireNoMutations()
	journal, rerr := os.ReadFile(e.jpath)
	if rerr != nil {
		t.Fatal(rerr)
	}
	watch.requireAbsent(t, e, "the journal", journal)
	watch.requireAbsent(t, e, "the logs", e.logs.Bytes())
}
