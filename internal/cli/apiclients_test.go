package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/notify/notifytest"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/state"
)

const wfClientPolicies = `limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 0}
policies:
  - name: clients-unused
    resource: apiClients
    mode: enforce
    match: {unusedFor: 90d, scopes: {any: ["sp:scopes:all"]}}
    action: delete
    disabledFor: 14d
`

const wfClient = "5e1c0000-0000-4000-8000-00000000c0de"

func clientMutations(reqs []idnsim.Request) []idnsim.Request {
	var out []idnsim.Request
	for _, r := range idnsim.Mutations(reqs) {
		if strings.HasPrefix(r.Path, "/v3/oauth-clients") {
			out = append(out, r)
		}
	}
	return out
}

// apply (no plan) with nothing but API client actions asks before acting:
// without a terminal it refuses, declined it changes nothing, confirmed it
// disables; plan --detailed-exitcode counts API client actions; enable
// re-enables, journaled; audit verify accepts the journal.
func TestAPIClientCommands(t *testing.T) {
	e := newWF(t, wfClientPolicies, idnsim.Options{})
	e.sim.AddOAuthClient(apiclient.Client{ID: wfClient, Name: "legacy", Internal: apiclient.Bool(false), Enabled: apiclient.Bool(true),
		Scope: pat.Scopes{Null: true}, Created: time.Now().Add(-400 * wfDay)}, "")

	if code, stdout, _ := e.run(nil, "validate"); code != 0 || !strings.Contains(stdout, "API client policies (resource: apiClients, 1)") ||
		!strings.Contains(stdout, "kept the client disabled for 14d") || !strings.Contains(stdout, "all API clients (no filter)") {
		t.Fatalf("validate: exit %d\n%s", code, stdout)
	}
	if code, stdout, _ := e.run(nil, "plan", "--detailed-exitcode"); code != 2 || !strings.Contains(stdout, "API clients") || !strings.Contains(stdout, wfClient) {
		t.Fatalf("plan --detailed-exitcode: exit %d, want 2 (an API client action is pending)\n%s", code, stdout)
	}
	code, _, stderr := e.run(nil, "apply")
	if code != 1 || !strings.Contains(stderr, "--auto-approve") {
		t.Fatalf("without a terminal: exit %d, %s; want a refusal", code, stderr)
	}
	if code, _, _ := e.run(fakeTTY{strings.NewReader("no\n")}, "apply"); code != 1 {
		t.Fatalf("declined: exit %d", code)
	}
	if m := clientMutations(e.sim.Requests()); len(m) != 0 {
		t.Fatalf("an unconfirmed apply changed API clients: %+v", m)
	}
	code, stdout, stderr := e.run(fakeTTY{strings.NewReader("yes\n")}, "apply")
	if code != 0 {
		t.Fatalf("confirmed: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if c, _ := e.sim.OAuthClient(wfClient); c.IsEnabled() || !strings.Contains(stdout, "disabled  "+wfClient) {
		t.Fatalf("the client was not disabled, or apply did not say so:\n%s", stdout)
	}

	if code, _, stderr := e.run(nil, "enable", wfClient); code != 1 || !strings.Contains(stderr, "--reason") {
		t.Fatalf("enable without a reason: exit %d %s", code, stderr)
	}
	code, stdout, stderr = e.run(nil, "enable", wfClient, "--reason", "the ERP still uses it", "--by", "alice")
	if code != 0 || !strings.Contains(stdout, "Enabled API client "+wfClient) {
		t.Fatalf("enable: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if c, _ := e.sim.OAuthClient(wfClient); !c.IsEnabled() {
		t.Fatal("the client is still disabled")
	}
	if code, _, stderr := e.run(nil, "enable", wfClient, "--reason", "again"); code != 1 || !strings.Contains(stderr, "no record") {
		t.Fatalf("a second enable: exit %d %s", code, stderr)
	}
	code, stdout, stderr = e.run(nil, "audit", "verify", filepath.Join(e.state, JournalFile))
	if code != 0 {
		t.Fatalf("audit verify: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// A saved plan whose API client guardrail tripped acts on no client; apply
// --accept-guardrail apiClients.maxActionsPerRun (the resource-qualified
// name: the token guardrails keep the bare names) carries it out, and the
// journal's run-start records the approved plan and the acceptance under
// that name.
func TestAPIClientAcceptGuardrail(t *testing.T) {
	e := newWF(t, `limits: {maxActionsPerRun: 1, maxActionsPercent: 0, maxActionsPerOwner: 0}
policies:
  - name: clients-unused
    resource: apiClients
    mode: enforce
    match: {unusedFor: 90d, scopes: {any: ["sp:scopes:all"]}}
    action: disable
`, idnsim.Options{})
	ids := []string{wfClient, "5e1c0000-0000-4000-8000-00000000c0df"}
	for _, id := range ids {
		e.sim.AddOAuthClient(apiclient.Client{ID: id, Name: "legacy-" + id[len(id)-4:], Internal: apiclient.Bool(false), Enabled: apiclient.Bool(true),
			Scope: pat.Scopes{Null: true}, Created: time.Now().Add(-400 * wfDay)}, "")
	}
	planPath := filepath.Join(e.dir, "plan.json")
	if code, _, stderr := e.run(nil, "plan", "--out", planPath); code != 0 {
		t.Fatalf("plan: exit %d: %s", code, stderr)
	}
	code, stdout, stderr := e.run(nil, "apply", planPath, "--auto-approve")
	if code == 0 || !strings.Contains(stdout+stderr, "apiClients.maxActionsPerRun (limit 1, wanted 2)") {
		t.Fatalf("apply with the tripped client guardrail: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if m := clientMutations(e.sim.Requests()); len(m) != 0 {
		t.Fatalf("a tripped client guardrail let %d mutations through", len(m))
	}
	if code, _, stderr := e.run(nil, "apply", planPath, "--auto-approve", "--accept-guardrail", "maxActionsPerRun", "--reason", "x"); code != 1 ||
		!strings.Contains(stderr, "apiClients.maxActionsPerRun") {
		t.Fatalf("the bare token name accepted the client guardrail: exit %d %s", code, stderr)
	}
	const reason = "CHG-77: both legacy clients"
	code, stdout, stderr = e.run(nil, "apply", planPath, "--auto-approve", "--accept-guardrail", "apiClients.maxActionsPerRun", "--reason", reason)
	if code != 0 {
		t.Fatalf("apply with the accepted client guardrail: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if m := clientMutations(e.sim.Requests()); len(m) != 2 {
		t.Fatalf("%d client mutations, want the 2 disables", len(m))
	}
	for _, id := range ids {
		if c, _ := e.sim.OAuthClient(id); c.IsEnabled() {
			t.Fatalf("client %s still enabled", id)
		}
	}
	// The plan holds API client actions only: the client run-start names the
	// approved plan (before, no run-start recorded its planHash).
	_, saved, err := plan.ReadFile(planPath)
	if err != nil {
		t.Fatal(err)
	}
	var accepted []audit.AcceptedGuardrail
	for _, r := range journalRecords(t, filepath.Join(e.state, JournalFile)) {
		if r.Kind == audit.KindRunStart && r.Plan != nil {
			if r.Plan.PlanHash != saved.PlanHash || r.Plan.File != planPath {
				t.Errorf("run-start names plan %+v, want %s", r.Plan, saved.PlanHash)
			}
			accepted = append(accepted, r.Plan.AcceptedGuardrails...)
		}
	}
	if len(accepted) != 1 || accepted[0].Name != "apiClients.maxActionsPerRun" || accepted[0].Wanted != 2 || accepted[0].Reason != reason {
		t.Fatalf("journaled acceptances = %+v", accepted)
	}
}

// apply with nothing but a held API client (an apiClients policy with
// grace) asks before warning the notify.apiClients receivers, as for
// owners; confirmed, it marks the client, the receiver gets the digest and
// the tenant nothing. A saved plan with only that held client is not
// "nothing to do": its apply marks too.
func TestAPIClientGraceApply(t *testing.T) {
	h := notifytest.NewReceiver(t, "/hooks/"+gcHookPathSecret, gcHookKey, nil)
	e := newWF(t, "", idnsim.Options{})
	notifyYAML := strings.Replace(gcNotifyYAML(t, e.dir, h.URL()), "  owners: hook\n", "  apiClients: [hook]\n", 1)
	e.writeConfig("limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 0}\n" + notifyYAML + `policies:
  - name: clients-unused
    resource: apiClients
    mode: enforce
    match: {unusedFor: 90d, scopes: {any: ["sp:scopes:all"]}}
    action: disable
    grace: 7d
`)
	e.sim.AddOAuthClient(apiclient.Client{ID: wfClient, Name: "legacy", Internal: apiclient.Bool(false), Enabled: apiclient.Bool(true),
		Scope: pat.Scopes{Null: true}, Created: time.Now().Add(-400 * wfDay)}, "")
	clientMarks := func() []state.ClientMark {
		t.Helper()
		st := gcOpenStore(t, e.state)
		defer func() { _ = st.Close() }()
		ms, err := st.ClientMarks(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}

	if code, stdout, _ := e.run(nil, "validate"); code != 0 || !strings.Contains(stdout, "grace   7d after the warning to notify.apiClients (hook) is delivered") {
		t.Fatalf("validate: exit %d\n%s", code, stdout)
	}
	planPath := filepath.Join(e.dir, "plan.json")
	if code, _, stderr := e.run(nil, "plan", "--out", planPath); code != 0 {
		t.Fatalf("plan: exit %d %s", code, stderr)
	}
	if code, stdout, stderr := e.run(nil, "apply"); code == 0 {
		t.Fatalf("apply without a terminal warned without asking: exit 0\n%s\n%s", stdout, stderr)
	}
	if n := h.Attempts(); n != 0 || len(clientMarks()) != 0 {
		t.Fatalf("a refused apply sent %d messages, marks %v", n, clientMarks())
	}
	code, stdout, stderr := e.run(nil, "apply", planPath, "--auto-approve")
	if code != 0 || strings.Contains(stdout, "Nothing to do") {
		t.Fatalf("apply of the saved plan: exit %d\n%s\n%s", code, stdout, stderr)
	}
	ms := clientMarks()
	if len(ms) != 1 || !strings.EqualFold(ms[0].ClientID, wfClient) || ms[0].WarnedAt == nil {
		t.Fatalf("marks = %+v", ms)
	}
	var digests []*notify.Digest
	for _, m := range notifytest.OfKind(h.Take(), notify.KindDigest) {
		digests = append(digests, m.Digest)
	}
	if len(digests) != 1 || digests[0].Resource != apiclient.Resource || digests[0].Items[0].TokenID != wfClient {
		t.Fatalf("digests = %+v", digests)
	}
	if m := clientMutations(e.sim.Requests()); len(m) != 0 {
		t.Fatalf("marking changed the tenant: %+v", m)
	}
	code, stdout, stderr = e.run(fakeTTY{strings.NewReader("yes\n")}, "apply")
	if code != 0 || !strings.Contains(stdout, "mark 1 API client of policies with a grace period and warn the notify.apiClients receivers") {
		t.Fatalf("confirmed apply: exit %d\n%s\n%s", code, stdout, stderr)
	}
}
