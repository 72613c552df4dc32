package janitor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/fakeclock"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// t0 is the fixed "now" of every end-to-end test: the simulated tenant, the
// API client and the engine all read this clock.
var t0 = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)

// env is one end-to-end setup: a simulated tenant on loopback, an API client
// logged in as its admin PAT, a config and a journal in a temp dir.
type env struct {
	t       testing.TB
	clock   *fakeclock.Clock // shared by the simulator, the client and the engine
	sim     *idnsim.Sim
	url     string
	admin   idnsim.Credentials
	client  *api.Client
	cfg     *policy.Config
	jpath   string
	journal *audit.Journal
	logs    *bytes.Buffer
	logger  *zap.Logger
}

type envOpts struct {
	sim         idnsim.Options
	scenario    string // idnsim scenario file (testdata path); else an empty tenant
	maxAttempts int
	// wrap, if set, stands between the client and the simulator (a test
	// that watches what the client sends).
	wrap func(http.Handler) http.Handler
}

func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

// newEnv starts the simulated tenant and parses the config YAML (its tenant
// section is filled in here; the test gives limits, exclude and policies).
func newEnv(t testing.TB, cfgBody string, o envOpts) *env {
	t.Helper()
	clk := fakeclock.New(t0)
	so := o.sim
	so.Clock = clk.Now
	if so.RateLimit == 0 {
		so.RateLimit = -1 // the fixed clock never opens a new window
	}
	var sim *idnsim.Sim
	if o.scenario != "" {
		s, _, err := idnsim.LoadScenarioFile(o.scenario, so)
		if err != nil {
			t.Fatalf("load scenario: %v", err)
		}
		sim = s
	} else {
		sim = idnsim.New(so)
	}
	var h http.Handler = sim
	if o.wrap != nil {
		h = o.wrap(sim)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	admin := sim.Admin()

	e := &env{t: t, clock: clk, sim: sim, url: srv.URL, admin: admin, logs: &bytes.Buffer{}}
	e.cfg = e.parseConfig(cfgBody)
	client, err := api.New(api.Config{
		BaseURL: srv.URL, Version: e.cfg.Tenant.APIVersion, ClientID: admin.ClientID,
		ClientSecret: secret.New(admin.ClientSecret), RateLimit: api.RateLimit{Requests: -1},
		MaxAttempts: o.maxAttempts, Sleep: noSleep, Now: clk.Now,
	})
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	e.client = client
	e.logger = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.AddSync(&syncBuffer{b: e.logs}), zapcore.DebugLevel))
	e.jpath = filepath.Join(t.TempDir(), "journal.jsonl")
	e.journal = e.openJournal()
	return e
}

type syncBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (e *env) parseConfig(body string) *policy.Config {
	e.t.Helper()
	if !strings.Contains(body, "tenant:") {
		body = "tenant:\n  url: http://127.0.0.1:1\n  clientId: " + e.admin.ClientID + "\n" + body
	}
	cfg, err := policy.Parse("test.yaml", []byte(body))
	if err != nil {
		e.t.Fatalf("parse config: %v\n%s", err, body)
	}
	return cfg
}

func (e *env) openJournal() *audit.Journal {
	e.t.Helper()
	if e.journal != nil {
		_ = e.journal.Close()
	}
	j, err := audit.Open(e.jpath, audit.Options{Clock: e.clock.Now})
	if err != nil {
		e.t.Fatalf("open journal: %v", err)
	}
	e.t.Cleanup(func() { _ = j.Close() })
	e.journal = j
	return j
}

// engine builds an engine over the env; mod may change the options.
func (e *env) engine(mod ...func(*janitor.Options)) *janitor.Engine {
	e.t.Helper()
	o := janitor.Options{
		Config: e.cfg, Tenant: e.client, TenantURL: e.url, APIVersion: e.client.Version(),
		ClientID: e.admin.ClientID, Journal: e.journal,
		Logger: e.logger, Now: e.clock.Now,
	}
	for _, m := range mod {
		m(&o)
	}
	eng, err := janitor.New(o)
	if err != nil {
		e.t.Fatalf("janitor.New: %v", err)
	}
	return eng
}

// own is the identity patjanitor runs as (the owner of the admin PAT): the
// only owner whose tokens a real tenant lets it PATCH.
func (e *env) own() string {
	e.t.Helper()
	tok, ok := e.sim.Token(e.admin.ClientID)
	if !ok {
		e.t.Fatal("the admin PAT is not in the tenant")
	}
	return tok.Owner.ID
}

// add puts a token into the tenant. lastUsed < 0 means never used; ages are
// before t0.
func (e *env) add(id, owner, name string, createdAgo, lastUsedAgo time.Duration, scope ...string) {
	e.t.Helper()
	tok := pat.Token{
		ID: id, Name: name, Owner: pat.Owner{Type: "IDENTITY", ID: owner, Name: "Owner " + owner},
		Created: t0.Add(-createdAgo), Scope: pat.ScopesOf(scope...),
	}
	if scope == nil {
		tok.Scope = pat.ScopesOf("idn:sources:read")
	}
	if lastUsedAgo >= 0 {
		lu := t0.Add(-lastUsedAgo)
		tok.LastUsed = &lu
	}
	e.sim.Add(tok, "")
}

// addStale adds n tokens unused for 200 days, ids "<prefix>-NNN", spread over
// owners "<prefix>-owner-K" (perOwner each).
func (e *env) addStale(prefix string, n, perOwner int) []string {
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%03d", prefix, i)
		e.add(id, fmt.Sprintf("%s-owner-%d", prefix, i/perOwner), "tok-"+id, 400*day, 200*day)
		ids = append(ids, id)
	}
	return ids
}

const day = 24 * time.Hour

func (e *env) mutations() []idnsim.Request { return idnsim.Mutations(e.sim.Requests()) }

// requireActionsFailed: the run failed with an *ActionsFailedError counting
// exactly n failed actions.
func requireActionsFailed(t testing.TB, err error, n int) {
	t.Helper()
	var failed *janitor.ActionsFailedError
	if !errors.As(err, &failed) || failed.Failed != n {
		t.Fatalf("err = %v, want %d failed actions", err, n)
	}
}

// requireNoMutations fails when the tenant saw any mutating request.
func (e *env) requireNoMutations() {
	e.t.Helper()
	if m := e.mutations(); len(m) > 0 {
		var b strings.Builder
		for _, r := range m {
			fmt.Fprintf(&b, "\n  %s %s -> %d", r.Method, r.Path, r.Status)
		}
		e.t.Fatalf("the tenant saw %d mutating requests, want none:%s", len(m), b.String())
	}
}

// present reports whether the tenant still has the token.
func (e *env) present(id string) bool {
	_, ok := e.sim.Token(id)
	return ok
}

// journalRecords reads the journal back (verifying the chain).
func (e *env) journalRecords() []audit.Record {
	e.t.Helper()
	var recs []audit.Record
	if _, err := audit.VerifyPath(e.jpath, audit.VerifyOptions{Each: func(r audit.Record) error { recs = append(recs, r); return nil }}); err != nil {
		e.t.Fatalf("journal: %v", err)
	}
	return recs
}

// deletedIDs are the token ids of the successful DELETEs the tenant saw.
func deletedIDs(reqs []idnsim.Request) map[string]int {
	out := map[string]int{}
	for _, r := range reqs {
		if r.Operation == idnsim.OpDeleteToken && r.Status == 204 {
			out[r.Path[strings.LastIndex(r.Path, "/")+1:]]++
		}
	}
	return out
}

// patchedIDs are the token ids of the successful PATCHes.
func patchedIDs(reqs []idnsim.Request) map[string]int {
	out := map[string]int{}
	for _, r := range reqs {
		if r.Operation == idnsim.OpPatchToken && r.Status == 200 {
			out[r.Path[strings.LastIndex(r.Path, "/")+1:]]++
		}
	}
	return out
}

// bulkIDs are the token ids of the successful bulk updates, counted per id;
// it fails the test on a bulk update of more than 25 ids.
func bulkIDs(t *testing.T, reqs []idnsim.Request) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range reqs {
		if r.Operation != idnsim.OpBulkUpdateTokens || r.Status != 200 {
			continue
		}
		var body struct {
			IDs []string `json:"ids"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("bulk update body %s: %v", r.Body, err)
		}
		if len(body.IDs) > idnsim.MaxBulkIDs {
			t.Fatalf("bulk update of %d ids", len(body.IDs))
		}
		for _, id := range body.IDs {
			out[id]++
		}
	}
	return out
}
