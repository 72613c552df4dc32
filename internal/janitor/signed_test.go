package janitor_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/patjanitor/patjanitor/internal/approval"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/state"
)

// signer is a reviewer's SSH key for a test.
type signer struct {
	principal string
	key       ssh.Signer
}

func newSigner(t *testing.T, principal string) signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer{principal: principal, key: s}
}

// approvalPolicy is approvals with required signatures by these reviewers,
// as the allowed signers file would name them.
func approvalPolicy(t *testing.T, required int, reviewers ...signer) *approval.Policy {
	t.Helper()
	var b strings.Builder
	for _, r := range reviewers {
		b.WriteString(r.principal + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(r.key.PublicKey()))) + "\n")
	}
	as, err := approval.ParseAllowedSigners("allowed_signers", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return &approval.Policy{Signers: as, Required: required}
}

// savePlan writes p as a reviewer would receive it and signs its bytes.
func savePlan(t *testing.T, dir string, p *plan.Plan, by ...signer) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := plan.Write(&buf, p); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, p.RunID+".json")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, s := range by {
		sig, err := approval.Sign(buf.Bytes(), s.key)
		if err != nil {
			t.Fatal(err)
		}
		if err := approval.AppendSignature(approval.SigFile(file), sig, t0, "ok"); err != nil {
			t.Fatal(err)
		}
	}
	return file, buf.Bytes()
}

const signedConfig = noLimits + `approvals:
  allowedSignersFile: /nonexistent/allowed_signers
  required: 2
  for: [delete]
policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
  - name: never-used
    schedule: "@weekly"
    mode: enforce
    match: {neverUsed: true}
    action: delete
`

// lastRunStart is the journal's last run-start record.
func lastRunStart(t *testing.T, e *env) audit.Record {
	t.Helper()
	var start *audit.Record
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindRunStart {
			start = &r
		}
	}
	if start == nil || start.Plan == nil {
		t.Fatal("no run-start naming a plan in the journal")
	}
	return *start
}

// ApplySigned is what serve does with each plan of its approved directory:
// the engine decides, from the plan as read and its signatures, whether it
// is applied, rejected (and why, journaled) or left for a later run, and
// the tenant sees mutations only for an approved plan whose run it governs.
func TestApplySigned(t *testing.T) {
	alice, bob, mallory := newSigner(t, "alice"), newSigner(t, "bob"), newSigner(t, "mallory")
	pol := approvalPolicy(t, 2, alice, bob)
	ctx := context.Background()
	setup := func(t *testing.T) (*env, *plan.Plan, string) {
		e := newEnv(t, signedConfig, envOpts{})
		e.addStale("stale", 2, 1)
		pl, err := e.engine().Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if pl.Plan.Items.Len() != 2 {
			t.Fatalf("plan of %d items, want 2", pl.Plan.Items.Len())
		}
		return e, pl.Plan, t.TempDir()
	}
	read := func(file string) janitor.SignedPlan {
		sp := janitor.SignedPlan{File: file}
		sp.Data, sp.Plan, sp.ReadErr = plan.ReadFile(file)
		return sp
	}
	refused := func(t *testing.T, e *env, s janitor.Settlement, reason, detail string) audit.Record {
		t.Helper()
		if !s.Settled || s.Result != janitor.PlanRejected || s.Reason != reason || !strings.Contains(s.Detail, detail) || s.JournalErr != nil {
			t.Fatalf("settlement %+v, want rejected for %s (%q)", s, reason, detail)
		}
		e.requireNoMutations()
		start := lastRunStart(t, e)
		if !strings.Contains(start.Plan.Refused, detail) {
			t.Fatalf("the journal's run-start %+v does not record the refusal %q", start.Plan, detail)
		}
		return start
	}

	t.Run("approved", func(t *testing.T) {
		e, p, dir := setup(t)
		file, data := savePlan(t, dir, p, alice, bob)
		s := e.engine().ApplySigned(ctx, janitor.RunInput{}, read(file), pol)
		if !s.Settled || s.Result != janitor.PlanApplied || s.Reason != janitor.PlanReasonNone || s.Err != nil ||
			!strings.Contains(s.Detail, "applied 2, already gone 0, failed 0, dropped 0, blocked 0") {
			t.Fatalf("settlement %+v", s)
		}
		if d := deletedIDs(e.sim.Requests()); len(d) != 2 || d["stale-000"] != 1 || d["stale-001"] != 1 {
			t.Fatalf("deleted %v, want the plan's two tokens", d)
		}
		start := lastRunStart(t, e)
		if start.Plan.Refused != "" || start.Plan.FileSHA256 != approval.FileDigest(data) || len(start.Plan.Approvals) != 2 {
			t.Fatalf("run-start %+v", start.Plan)
		}
	})
	t.Run("one approval of two", func(t *testing.T) {
		e, p, dir := setup(t)
		file, _ := savePlan(t, dir, p, alice, mallory)
		start := refused(t, e, e.engine().ApplySigned(ctx, janitor.RunInput{}, read(file), pol),
			janitor.PlanReasonSignatures, "needs 2 approvals by distinct principals and has 1 valid")
		if len(start.Plan.Approvals) != 1 || start.Plan.Approvals[0].Principal != "alice" {
			t.Errorf("the refusal records approvals %+v, want alice's", start.Plan.Approvals)
		}
	})
	t.Run("signature file unreadable", func(t *testing.T) {
		e, p, dir := setup(t)
		file, _ := savePlan(t, dir, p)
		if err := os.Mkdir(approval.SigFile(file), 0o700); err != nil {
			t.Fatal(err)
		}
		refused(t, e, e.engine().ApplySigned(ctx, janitor.RunInput{}, read(file), pol),
			janitor.PlanReasonUnreadable, "unreadable signature file")
	})
	t.Run("not a plan", func(t *testing.T) {
		e, _, dir := setup(t)
		file := filepath.Join(dir, "x.json")
		if err := os.WriteFile(file, []byte(`{"version": 1`), 0o600); err != nil {
			t.Fatal(err)
		}
		start := refused(t, e, e.engine().ApplySigned(ctx, janitor.RunInput{}, read(file), pol),
			janitor.PlanReasonUnreadable, "read plan "+file)
		if start.Plan.FileSHA256 != approval.FileDigest([]byte(`{"version": 1`)) {
			t.Errorf("the refusal names the file's digest %q", start.Plan.FileSHA256)
		}
	})
	t.Run("refused by apply PLAN's checks", func(t *testing.T) {
		e, p, dir := setup(t)
		file, _ := savePlan(t, dir, p, alice, bob)
		e.clock.Advance(janitor.DefaultMaxPlanAge + time.Hour)
		refused(t, e, e.engine().ApplySigned(ctx, janitor.RunInput{}, read(file), pol),
			janitor.PlanReasonPlan, "older than the maximum")
	})
	t.Run("another schedule's plan", func(t *testing.T) {
		e, p, dir := setup(t)
		file, _ := savePlan(t, dir, p, alice, bob)
		eng := e.engine(func(o *janitor.Options) { o.Config = o.Config.Only("never-used") })
		if s := eng.ApplySigned(ctx, janitor.RunInput{}, read(file), pol); s != (janitor.Settlement{}) {
			t.Fatalf("settlement %+v, want the plan left for its own schedule", s)
		}
		e.requireNoMutations()
		if n := len(e.journalRecords()); n != 0 {
			t.Fatalf("%d journal records, want none", n)
		}
	})
	t.Run("listing fails", func(t *testing.T) {
		e, p, dir := setup(t)
		file, _ := savePlan(t, dir, p, alice, bob)
		e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, Status: 500})
		s := e.engine().ApplySigned(ctx, janitor.RunInput{}, read(file), pol)
		if s.Settled || s.Err == nil {
			t.Fatalf("settlement %+v, want the plan left for the next run with the listing's error", s)
		}
		e.requireNoMutations()
		if !e.present("stale-000") || !e.present("stale-001") {
			t.Fatal("a token is gone")
		}
	})
	// The plan is recorded as executed and then the journal refuses the
	// run-start: nothing is sent, serve keeps the plan in approved/, and its
	// next run applies it (it refused it as executed before, and the plan
	// went to rejected/ with nothing done).
	t.Run("journal unwritable", func(t *testing.T) {
		e, p, dir := setup(t)
		file, _ := savePlan(t, dir, p, alice, bob)
		st, err := state.Open(filepath.Join(t.TempDir(), state.FileName), state.Options{Clock: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		full := newFailingJournal(e.journal, 0)
		s := e.engine(func(o *janitor.Options) { o.Executed, o.Journal = st, full }).ApplySigned(ctx, janitor.RunInput{}, read(file), pol)
		var jerr *janitor.JournalError
		if s.Settled || !errors.As(s.Err, &jerr) {
			t.Fatalf("settlement %+v, want the plan left for the next run with the journal's error", s)
		}
		e.requireNoMutations()
		s = e.engine(func(o *janitor.Options) { o.Executed = st }).ApplySigned(ctx, janitor.RunInput{}, read(file), pol)
		if !s.Settled || s.Result != janitor.PlanApplied || s.Err != nil ||
			!strings.Contains(s.Detail, "applied 2, already gone 0, failed 0, dropped 0, blocked 0") {
			t.Fatalf("the next run's settlement %+v, want applied", s)
		}
		if d := deletedIDs(e.sim.Requests()); len(d) != 2 || d["stale-000"] != 1 || d["stale-001"] != 1 {
			t.Fatalf("deleted %v, want the plan's two tokens once", d)
		}
		if start := lastRunStart(t, e); start.Plan == nil || start.Plan.PlanHash != p.PlanHash || start.Plan.Refused != "" {
			t.Fatalf("the journal's run-start %+v, want the plan applied", start.Plan)
		}
	})
}

// The token policies' schedule must leave a plan of API client actions to
// the API client policies' schedule: it took it (the plan named no policy it
// knew, so it read as a plan of policies gone from the file) and dropped
// every action. (Moved from the cli's tests with the decision.)
func TestHostileGovernsClientOnlyPlan(t *testing.T) {
	e := newEnv(t, `policies:
  - name: stale
    mode: enforce
    match: {neverUsed: true}
    action: delete
  - name: clients-unused
    resource: apiClients
    schedule: "@weekly"
    mode: enforce
    match: {neverUsed: true}
    action: disable
`, envOpts{})
	only := func(name string) *janitor.Engine {
		return e.engine(func(o *janitor.Options) { o.Config = o.Config.Only(name) })
	}
	p := &plan.Plan{APIClients: &plan.Clients{Items: []plan.ClientItem{{ClientID: "c", Policy: "clients-unused", Mode: plan.ModeEnforce, Action: plan.ActionDisable}}}}
	if only("stale").Governs(p) {
		t.Error("the token policies' schedule takes a plan of API client actions")
	}
	if !only("clients-unused").Governs(p) {
		t.Error("the API client policy's schedule does not take its plan")
	}
	if got := p.ItemPolicies(); len(got) != 1 || got[0] != "clients-unused" {
		t.Errorf("ItemPolicies = %v", got)
	}
	gone := &plan.Plan{Items: plan.NewItems(plan.Item{TokenID: "t", Policy: "removed", Mode: plan.ModeEnforce, Action: plan.ActionDelete})}
	if !only("stale").Governs(gone) {
		t.Error("a plan of policies gone from the file is taken by no schedule")
	}
}
