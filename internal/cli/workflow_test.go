package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
)

// wfEnv runs the reviewer's workflow (plan, apply, audit verify) in-process
// against a simulated tenant on loopback.
type wfEnv struct {
	t       *testing.T
	sim     *idnsim.Sim
	url     string
	admin   idnsim.Credentials
	dir     string
	cfgPath string
	state   string
}

const wfDay = 24 * time.Hour

// newWF starts a simulated tenant and writes a config for it; policies is the
// YAML after the tenant section (limits, exclude, policies). The client
// secret comes from PATJANITOR_CLIENT_SECRET, as in production.
func newWF(t *testing.T, policies string, so idnsim.Options) *wfEnv {
	t.Helper()
	return newWFWrapped(t, policies, so, nil)
}

// newWFWrapped is newWF with wrap, if set, standing between patjanitor and
// the simulator (a hostile proxy, or a test that watches the wire).
func newWFWrapped(t *testing.T, policies string, so idnsim.Options, wrap func(http.Handler) http.Handler) *wfEnv {
	t.Helper()
	if so.RateLimit == 0 {
		so.RateLimit = -1
	}
	sim := idnsim.New(so)
	var h http.Handler = sim
	if wrap != nil {
		h = wrap(sim)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	e := &wfEnv{t: t, sim: sim, url: srv.URL, admin: sim.Admin(), dir: dir, state: filepath.Join(dir, "state")}
	e.writeConfig(policies)
	t.Setenv("PATJANITOR_TENANT_URL", "")
	t.Setenv("PATJANITOR_CLIENT_ID", "")
	t.Setenv("PATJANITOR_CLIENT_SECRET", e.admin.ClientSecret)
	return e
}

func (e *wfEnv) writeConfig(policies string) {
	e.t.Helper()
	body := fmt.Sprintf("tenant:\n  url: %s\n  clientId: %s\n  rateLimit: {requests: -1, per: 1s}\n%s", e.url, e.admin.ClientID, policies)
	e.cfgPath = filepath.Join(e.dir, "policies.yaml")
	if err := os.WriteFile(e.cfgPath, []byte(body), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// run runs one patjanitor command; in is its standard input.
func (e *wfEnv) run(in io.Reader, args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	if in == nil {
		in = strings.NewReader("")
	}
	var out, errb bytes.Buffer
	argv := append([]string{"-c", e.cfgPath, "--state-dir", e.state}, args...)
	code = Main(context.Background(), argv, Streams{In: in, Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

// add puts a token into the tenant; lastUsedAgo < 0 = never used.
func (e *wfEnv) add(id, owner string, createdAgo, lastUsedAgo time.Duration, scope ...string) {
	now := time.Now().UTC()
	tok := pat.Token{ID: id, Name: "tok-" + id, Owner: pat.Owner{ID: owner, Name: "Owner " + owner},
		Created: now.Add(-createdAgo), Scope: pat.ScopesOf(scope...)}
	if scope == nil {
		tok.Scope = pat.ScopesOf("idn:sources:read")
	}
	if lastUsedAgo >= 0 {
		lu := now.Add(-lastUsedAgo)
		tok.LastUsed = &lu
	}
	e.sim.Add(tok, "")
}

func (e *wfEnv) mutations() []idnsim.Request { return idnsim.Mutations(e.sim.Requests()) }

func (e *wfEnv) present(id string) bool { _, ok := e.sim.Token(id); return ok }

// fakeTTY is a standard input that claims to be a terminal.
type fakeTTY struct{ io.Reader }

func (fakeTTY) IsTerminal() bool { return true }

const wfPolicies = `limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 0}
policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
  - name: full-access
    mode: report
    match: {scopes: {any: ["sp:scopes:all"]}}
    action: patch
    patch: {setScopes: ["sp:scopes:default"]}
`

func TestPlanCommand(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.add("stale-2", "o2", 400*wfDay, -1)
	e.add("fresh", "o3", 10*wfDay, wfDay, pat.ScopeAll)
	out := filepath.Join(e.dir, "plan.json")

	code, stdout, stderr := e.run(nil, "plan", "-o", "json", "--out", out, "--detailed-exitcode")
	if code != 2 {
		t.Fatalf("exit %d, want 2 (enforce actions pending); stderr: %s", code, stderr)
	}
	p, err := plan.Read(strings.NewReader(stdout))
	if err != nil {
		t.Fatalf("-o json is not a plan document: %v\n%s", err, stdout)
	}
	if err := p.VerifyHash(); err != nil {
		t.Fatal(err)
	}
	if got := len(p.Pending()); got != 2 || p.Items.Len() != 3 {
		t.Errorf("items %d, pending %d; want 3 and 2", p.Items.Len(), got)
	}
	saved, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(saved) != stdout {
		t.Error("--out differs from -o json")
	}

	for _, format := range []string{"table", "markdown", "csv", "html"} {
		code, stdout, stderr := e.run(nil, "plan", "-o", format)
		if code != 0 || !strings.Contains(stdout, "tok-stale-1") {
			t.Errorf("-o %s: exit %d, stderr %s, output lacks the item:\n%s", format, code, stderr, stdout)
		}
	}
	if code, _, stderr := e.run(nil, "plan", "-o", "yaml"); code != 1 || !strings.Contains(stderr, "want one of") {
		t.Errorf("-o yaml: exit %d, %s", code, stderr)
	}
	if m := e.mutations(); len(m) != 0 {
		t.Fatalf("plan sent %d mutations", len(m))
	}

	// Report mode only: nothing pending.
	e.writeConfig(strings.Replace(wfPolicies, "mode: enforce", "mode: report", 1))
	if code, _, stderr := e.run(nil, "plan", "--detailed-exitcode"); code != 0 {
		t.Fatalf("exit %d, want 0 (nothing to do); %s", code, stderr)
	}
}

func TestPlanIncompleteDataExits1WithTheReport(t *testing.T) {
	// A tenant that silently caps listings at 250 items, with more stale
	// tokens than that.
	e := newWF(t, wfPolicies, idnsim.Options{PageCap: 250})
	for i := range 300 {
		e.add(fmt.Sprintf("stale-%03d", i), fmt.Sprintf("o%d", i/10), 400*wfDay, 200*wfDay)
	}
	code, stdout, stderr := e.run(nil, "plan", "--detailed-exitcode")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(stderr, "incomplete data") {
		t.Errorf("stderr lacks the reason: %s", stderr)
	}
	if stdout == "" {
		t.Error("nothing printed: the report of what was seen must still be shown")
	}
}

func TestApplyConfirmation(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)

	code, _, stderr := e.run(nil, "apply")
	if code != 1 || !strings.Contains(stderr, "--auto-approve") {
		t.Fatalf("without a terminal: exit %d, %s; want a refusal naming --auto-approve", code, stderr)
	}
	code, stdout, _ := e.run(fakeTTY{strings.NewReader("no\n")}, "apply")
	if code != 1 || !strings.Contains(stdout, "Only 'yes'") {
		t.Fatalf("declined: exit %d\n%s", code, stdout)
	}
	if len(e.mutations()) != 0 {
		t.Fatal("a declined apply changed the tenant")
	}
	code, stdout, stderr = e.run(fakeTTY{strings.NewReader("yes\n")}, "apply")
	if code != 0 {
		t.Fatalf("confirmed: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if e.present("stale-1") || !strings.Contains(stdout, "deleted") {
		t.Fatalf("stale-1 not deleted:\n%s", stdout)
	}
	// Nothing left: apply says so and exits 0.
	if code, stdout, _ := e.run(nil, "apply", "--auto-approve"); code != 0 || !strings.Contains(stdout, "Applied 0") {
		t.Fatalf("second apply: exit %d\n%s", code, stdout)
	}
}

// apply PLAN after the tenant changed: only still-valid items run, and a new
// stale token is not touched.
func TestApplySavedPlanAfterTheTenantChanged(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	for _, id := range []string{"a", "b", "c", "d"} {
		e.add(id, "owner-"+id, 400*wfDay, 200*wfDay)
	}
	planFile := filepath.Join(e.dir, "plan.json")
	if code, _, stderr := e.run(nil, "plan", "--out", planFile); code != 0 {
		t.Fatalf("plan: %s", stderr)
	}
	e.sim.Touch("a", time.Now())                  // used again
	e.sim.Remove("b")                             // deleted by its owner
	e.add("new", "owner-n", 400*wfDay, 300*wfDay) // a new stale token
	e.sim.ResetRequests()

	code, stdout, stderr := e.run(nil, "apply", planFile, "--auto-approve")
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var deleted []string
	for _, m := range e.mutations() {
		deleted = append(deleted, m.Path[strings.LastIndex(m.Path, "/")+1:])
	}
	if strings.Join(deleted, ",") != "c,d" && strings.Join(deleted, ",") != "d,c" {
		t.Fatalf("deleted %v, want c and d", deleted)
	}
	if !e.present("new") || !e.present("a") {
		t.Fatal("a token outside the still-valid plan was deleted")
	}
	for _, want := range []string{"DROPPED", "used again", "gone", "Applied 2", "dropped 2"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}

	// A plan for another tenant is refused before anything is listed.
	e.sim.ResetRequests()
	t.Setenv("PATJANITOR_TENANT_URL", strings.Replace(e.url, "127.0.0.1", "localhost", 1))
	code, _, stderr = e.run(nil, "apply", planFile, "--auto-approve")
	if code != 1 || !strings.Contains(stderr, "is for tenant") {
		t.Fatalf("foreign plan: exit %d, %s", code, stderr)
	}
	if len(e.sim.Requests()) != 0 {
		t.Fatal("a refused plan reached the tenant")
	}
}

func TestApplyWithUnwritableJournalChangesNothing(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	blocker := filepath.Join(e.dir, "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := e.run(nil, "apply", "--auto-approve", "--journal", filepath.Join(blocker, "journal.jsonl"))
	if code != 1 || !strings.Contains(stderr, "nothing was changed") {
		t.Fatalf("exit %d, %s", code, stderr)
	}
	if len(e.sim.Requests()) != 0 {
		t.Fatalf("the tenant saw %d requests before the journal was known to work", len(e.sim.Requests()))
	}
}

func TestAuditVerify(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	e.add("stale-2", "o2", 400*wfDay, 200*wfDay)
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
		t.Fatal(stderr)
	}
	code, stdout, stderr := e.run(nil, "audit", "verify")
	if code != 0 || !strings.Contains(stdout, "OK: 6 records, 1 run,") {
		t.Fatalf("verify: exit %d\n%s%s", code, stdout, stderr)
	}
	jpath := filepath.Join(e.state, JournalFile)
	data, _ := os.ReadFile(jpath)
	tampered := bytes.Replace(data, []byte(`"stale-2"`), []byte(`"stale-3"`), 1)
	if err := os.WriteFile(jpath, tampered, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = e.run(nil, "audit", "verify", jpath)
	if code != 1 || !strings.Contains(stderr, "BROKEN") || !strings.Contains(stderr, "line ") {
		t.Fatalf("tampered: exit %d, %s", code, stderr)
	}
	// And apply refuses to append to a broken journal.
	e.add("stale-4", "o4", 400*wfDay, 200*wfDay)
	if code, _, _ := e.run(nil, "apply", "--auto-approve"); code != 1 || !e.present("stale-4") {
		t.Fatal("apply appended to a broken journal")
	}
}

func TestSecretsStayOutOfTheOutput(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	var all strings.Builder
	for _, args := range [][]string{
		{"plan", "-o", "json", "--log-level", "debug"},
		{"apply", "--auto-approve", "--log-level", "debug", "--log-format", "json"},
		{"audit", "verify"},
	} {
		_, stdout, stderr := e.run(nil, args...)
		all.WriteString(stdout + stderr)
	}
	journal, _ := os.ReadFile(filepath.Join(e.state, JournalFile))
	all.Write(journal)
	// A wrong secret: the error names the client id, never the secret.
	t.Setenv("PATJANITOR_CLIENT_SECRET", "wrong-secret-value-123")
	code, stdout, stderr := e.run(nil, "plan")
	if code != 1 || !strings.Contains(stderr, e.admin.ClientID) {
		t.Errorf("wrong secret: exit %d, %s", code, stderr)
	}
	all.WriteString(stdout + stderr)
	for _, s := range []string{e.admin.ClientSecret, "wrong-secret-value-123"} {
		if strings.Contains(all.String(), s) {
			t.Errorf("a secret appears in the output or the journal")
		}
	}
}

func TestDemo(t *testing.T) {
	t.Setenv("PATJANITOR_TENANT_URL", "https://must-not-be-used.example.com")
	var out, errb bytes.Buffer
	start := time.Now()
	code := Main(context.Background(), []string{"-c", "../../policies.yaml", "demo"}, Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
	took := time.Since(start)
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	all := out.String() + errb.String()
	for _, want := range []string{"simulated tenant", "unused-90d", "PATJANITOR_CLIENT_SECRET", "patjanitor plan",
		// The whole loop: an enforced apply, its journal, its metrics.
		"== 2. APPLY", "Applied 13, already gone 0, failed 0", "The simulated tenant received 13 DELETE requests.",
		"OK: 28 records (1 run)", `patjanitor_actions_total{action="delete",outcome="applied",policy="demo-never-used-2y",resource="personalAccessTokens"} 13`,
		"== 5. NEXT",
		// Both resources: the API clients have their own section.
		"API clients (resource: apiClients): 10 listed"} {
		if !strings.Contains(all, want) {
			t.Errorf("demo output lacks %q:\n%s", want, all)
		}
	}
	if n := strings.Count(all, "\n"); n > 250 {
		t.Errorf("the demo prints %d lines, want a few screens", n)
	}
	// The target is < 2 s (about 0.1 s as a process on an idle machine); the
	// bound here leaves room for -race on a loaded shared machine.
	t.Logf("demo took %s", took)
	if took > 5*time.Second {
		t.Errorf("demo took %s, want well under 2s", took)
	}
	code = Main(context.Background(), []string{"-c", filepath.Join(t.TempDir(), "missing.yaml"), "demo"}, Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
	if code != 1 || !strings.Contains(errb.String(), "repository root") {
		t.Errorf("missing policies.yaml: exit %d, %s", code, errb.String())
	}
}
