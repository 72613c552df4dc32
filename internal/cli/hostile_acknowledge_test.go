package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/state"
)

// newLyingDeleteWF is the workflow env behind a proxy that answers 204 to
// every token DELETE without forwarding it; faked counts them.
func newLyingDeleteWF(t *testing.T, policies string) (*wfEnv, *atomic.Int32) {
	var faked atomic.Int32
	e := newWFWrapped(t, policies, idnsim.Options{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodDelete && strings.Contains(r.URL.Path, "/personal-access-tokens/") {
				faked.Add(1)
				w.WriteHeader(http.StatusNoContent)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	return e, &faked
}

// storedRecords reads the token and API client records under stateDir.
func storedRecords(t *testing.T, stateDir string) (toks, clients []state.Confirmed) {
	t.Helper()
	ctx := context.Background()
	st, err := state.Open(filepath.Join(stateDir, state.FileName), state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	if toks, err = st.ConfirmedMutations(ctx); err != nil {
		t.Fatal(err)
	}
	if clients, err = st.ConfirmedClientMutations(ctx); err != nil {
		t.Fatal(err)
	}
	return toks, clients
}

// unprovenJSONOf runs `unproven -o json`.
func (e *wfEnv) unprovenJSONOf() []unprovenJSON {
	e.t.Helper()
	code, stdout, stderr := e.run(nil, "unproven", "-o", "json")
	if code != 0 {
		e.t.Fatalf("unproven -o json: exit %d\n%s", code, stderr)
	}
	var out []unprovenJSON
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		e.t.Fatalf("unproven -o json: %v\n%s", err, stdout)
	}
	return out
}

// refusedUnchanged runs args, wants exit 1 with want in stderr, and the
// journal and the records as they were.
func (e *wfEnv) refusedUnchanged(want string, args ...string) {
	e.t.Helper()
	journal := len(e.journalRecords())
	toks, clients := storedRecords(e.t, e.state)
	code, stdout, stderr := e.run(nil, args...)
	if code != 1 || !strings.Contains(stderr, want) {
		e.t.Fatalf("%v: exit %d; want 1 saying %q\nstdout:\n%s\nstderr:\n%s", args, code, want, stdout, stderr)
	}
	toks2, clients2 := storedRecords(e.t, e.state)
	if n := len(e.journalRecords()); n != journal || !reflect.DeepEqual(toks2, toks) || !reflect.DeepEqual(clients2, clients) {
		e.t.Fatalf("%v changed the journal (%d records, was %d) or the records:\n%+v %+v\nwas\n%+v %+v", args, n, journal, toks2, clients2, toks, clients)
	}
}

// toNotInEffect: apply deletes stale-1 through the lying proxy; within the
// settle margin the record awaits proof and acknowledge refuses it, as it
// refuses an id with no record; past the margin apply fails with the
// delete not in effect (and sends it again). It returns the id of the
// run that confirmed the delete first.
func toNotInEffect(t *testing.T, e *wfEnv, faked *atomic.Int32) {
	t.Helper()
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 || faked.Load() != 1 {
		t.Fatalf("apply: exit %d, %d DELETEs faked\n%s", code, faked.Load(), stderr)
	}
	if u := e.unprovenJSONOf(); len(u) != 1 || u[0].ID != "stale-1" || u[0].State != "awaiting-proof" || u[0].Action != "delete" || u[0].OwnerID != "o1" {
		t.Fatalf("unproven: %+v; want stale-1's delete awaiting proof", u)
	}
	e.refusedUnchanged("acknowledge: the delete of token stale-1 confirmed in run ", "acknowledge", "stale-1", "--reason", "kept")
	e.refusedUnchanged("awaits proof: a complete listing from ", "acknowledge", "stale-1", "--reason", "kept")
	e.refusedUnchanged("acknowledge: no confirmed change of no-such-token is kept", "acknowledge", "no-such-token", "--reason", "kept")
	e.refusedUnchanged("--reason is required", "acknowledge", "stale-1")

	backdateConfirmed(t, e.state, time.Hour)
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 1 || !strings.Contains(stderr, "1 token the tenant confirmed deleted is still listed (stale-1") {
		t.Fatalf("apply past the margin: exit %d; want 1, the delete not in effect\n%s", code, stderr)
	}
	if faked.Load() != 2 || !e.present("stale-1") || len(e.mutations()) != 0 {
		t.Fatalf("%d DELETEs faked, tenant received %v; want the delete sent again, faked", faked.Load(), e.mutations())
	}
	u := e.unprovenJSONOf()
	if len(u) != 1 || u[0].State != janitor.StatusNotInEffect {
		t.Fatalf("unproven: %+v; want stale-1 not in effect", u)
	}
	_, stdout, _ := e.run(nil, "unproven")
	if !strings.Contains(stdout, "stale-1  token  o1") || !strings.Contains(stdout, "not-in-effect") {
		t.Fatalf("unproven:\n%s", stdout)
	}
}

// A tenant that answers 204 to a DELETE and keeps the token: the run after
// the settle margin fails with the delete not in effect. The operator
// checks the token, decides to keep it (exempts it) and acknowledges it,
// with the id in another case: the record is gone, the journal has an
// outcome "acknowledged" with the reason, who and the confirming run, and
// the next run succeeds, sending nothing. On the old code there was no way
// out: every run failed.
func TestHostileAcknowledgeEndsTheAlarmOfAKeptToken(t *testing.T) {
	e, faked := newLyingDeleteWF(t, wfPolicies)
	toNotInEffect(t, e, faked)
	toks, _ := storedRecords(t, e.state)
	confirmedRun := toks[0].RunID
	if got := complete(t, "--state-dir", e.state, "acknowledge", ""); !slices.Equal(got, []string{"stale-1"}) {
		t.Errorf("acknowledge completes %q, want stale-1", got)
	}

	code, stdout, stderr := e.run(nil, "acknowledge", "STALE-1", "--reason", "break-glass token, exempted", "--by", "alice")
	if code != 0 || !strings.Contains(stdout, "Acknowledged the delete of token stale-1 confirmed in run "+confirmedRun) {
		t.Fatalf("acknowledge: exit %d\n%s%s", code, stdout, stderr)
	}
	if toks, clients := storedRecords(t, e.state); len(toks)+len(clients) != 0 {
		t.Fatalf("records left: %+v %+v", toks, clients)
	}
	acks := e.outcomesOf("stale-1", janitor.StatusAcknowledged)
	if len(acks) != 1 || !strings.HasPrefix(acks[0].Note, "break-glass token, exempted (by alice); the delete confirmed in run "+confirmedRun+" at ") ||
		acks[0].Policy != "unused-90d" || acks[0].Outcome.Code != http.StatusNoContent {
		t.Fatalf("acknowledged outcomes %+v", acks)
	}
	if code, stdout, _ := e.run(nil, "audit", "show", acks[0].RunID); code != 0 || !strings.Contains(stdout, "outcome    stale-1  acknowledged (HTTP 204)") ||
		!strings.Contains(stdout, "note     break-glass token, exempted (by alice)") {
		t.Fatalf("audit show: exit %d\n%s", code, stdout)
	}
	e.refusedUnchanged("no confirmed change of stale-1 is kept", "acknowledge", "stale-1", "--reason", "twice")
	// A hostile id of 40 KiB is named clipped.
	long := strings.Repeat("A", 40<<10)
	e.refusedUnchanged("no confirmed change of AAAA", "acknowledge", long, "--reason", "r")
	if _, _, stderr := e.run(nil, "acknowledge", long, "--reason", "r"); len(stderr) > 1024 {
		t.Fatalf("the refusal of a 40 KiB id is %d bytes long: not clipped", len(stderr))
	}

	e.writeConfig("exclude: {tokenIds: [stale-1]}\n" + wfPolicies)
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply after the acknowledgement: exit %d\n%s", code, stderr)
	}
	if faked.Load() != 2 {
		t.Fatalf("%d DELETEs faked; the exempt token was deleted again", faked.Load())
	}
	e.mustRun("audit", "verify")
}

// Acknowledging ends the alarm, not the proof: when a policy still deletes
// the token, the next run sends the DELETE again, keeps a new record
// awaiting proof, and the run after the margin fails again when the tenant
// lies again.
func TestHostileAcknowledgedDeleteIsSentAgainAndProvenAfresh(t *testing.T) {
	e, faked := newLyingDeleteWF(t, wfPolicies)
	toNotInEffect(t, e, faked)
	if code, stdout, stderr := e.run(nil, "acknowledge", "stale-1", "--reason", "checked"); code != 0 {
		t.Fatalf("acknowledge: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 || faked.Load() != 3 {
		t.Fatalf("apply: exit %d, %d DELETEs faked; want 0 and the delete sent again\n%s", code, faked.Load(), stderr)
	}
	toks, _ := storedRecords(t, e.state)
	if len(toks) != 1 || toks[0].Unproven() || toks[0].Checks != 0 {
		t.Fatalf("records %+v; want one fresh record awaiting proof", toks)
	}
	backdateConfirmed(t, e.state, time.Hour)
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 1 || !strings.Contains(stderr, "1 token the tenant confirmed deleted is still listed (stale-1") {
		t.Fatalf("apply: exit %d; want the alarm back\n%s", code, stderr)
	}
	if n := len(e.outcomesOf("stale-1", janitor.StatusNotInEffect)); n != 2 {
		t.Fatalf("%d not-in-effect outcomes, want 2", n)
	}
}

// While serve holds the journal, acknowledge keeps the acknowledgement in
// the store; the next run that holds the journal (here an apply) journals
// it and drops the record before judging, and succeeds.
func TestHostileAcknowledgeWhileTheJournalIsHeld(t *testing.T) {
	e, faked := newLyingDeleteWF(t, wfPolicies)
	toNotInEffect(t, e, faked)

	release := holdJournal(t, e)
	code, stdout, stderr := e.run(nil, "acknowledge", "stale-1", "--reason", "kept", "--by", "bob")
	if code != 0 || !strings.Contains(stdout, "held by a running patjanitor serve") {
		t.Fatalf("acknowledge: exit %d\n%s%s", code, stdout, stderr)
	}
	if u := e.unprovenJSONOf(); len(u) != 1 || u[0].Ack == nil || u[0].Ack.By != "bob" || !strings.HasPrefix(u[0].State, "acknowledged") {
		t.Fatalf("unproven: %+v; want the acknowledgement pending", u)
	}
	if n := len(e.outcomesOf("stale-1", janitor.StatusAcknowledged)); n != 0 {
		t.Fatalf("%d acknowledged outcomes while the journal was held", n)
	}
	release()
	e.writeConfig("exclude: {tokenIds: [stale-1]}\n" + wfPolicies)
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, stderr)
	}
	if acks := e.outcomesOf("stale-1", janitor.StatusAcknowledged); len(acks) != 1 || !strings.HasPrefix(acks[0].Note, "kept (by bob); the delete confirmed in run ") {
		t.Fatalf("acknowledged outcomes %+v", acks)
	}
	if toks, _ := storedRecords(t, e.state); len(toks) != 0 {
		t.Fatalf("records left: %+v", toks)
	}
	e.mustRun("audit", "verify")
}

// journalKeyOf is the key of e's journal's anchor in the state store.
func (e *wfEnv) journalKeyOf() string {
	g := &globals{stateDir: e.state}
	return g.journalKey(g.journalPath(""))
}

// The same for an API client: a proxy answers 200 (disabled) to the PATCH
// and forwards nothing; the disable awaiting proof is refused; found not
// in effect, it is acknowledged (resource apiClients in the journal), and
// the next run, whose policy no longer matches the client, succeeds.
func TestHostileAcknowledgeAPIClientDisableNotInEffect(t *testing.T) {
	e, faked := newFakedClientDisableWF(t)
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 || faked.Load() != 1 {
		t.Fatalf("apply: exit %d, %d faked\n%s", code, faked.Load(), stderr)
	}
	e.refusedUnchanged("acknowledge: the disable of API client "+wfClient+" confirmed in run ", "acknowledge", wfClient, "--reason", "kept")
	backdateClientConfirmed(t, e.state, time.Hour)
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 1 || !strings.Contains(stderr, "1 API client the tenant confirmed disabled is still listed enabled") {
		t.Fatalf("apply: exit %d; want the disable not in effect\n%s", code, stderr)
	}
	if u := e.unprovenJSONOf(); len(u) != 1 || u[0].Resource != apiclient.Resource || u[0].Name != "legacy" || u[0].State != janitor.StatusNotInEffect {
		t.Fatalf("unproven: %+v", u)
	}
	if code, stdout, stderr := e.run(nil, "acknowledge", strings.ToUpper(wfClient), "--reason", "client kept", "--by", "carol"); code != 0 ||
		!strings.Contains(stdout, "Acknowledged the disable of API client "+wfClient) {
		t.Fatalf("acknowledge: exit %d\n%s%s", code, stdout, stderr)
	}
	acks := e.outcomesOf(wfClient, janitor.StatusAcknowledged)
	if len(acks) != 1 || acks[0].Resource != apiclient.Resource || !strings.HasPrefix(acks[0].Note, "client kept (by carol); the disable confirmed in run ") {
		t.Fatalf("acknowledged outcomes %+v", acks)
	}
	// The policy no longer matches the client (it has no such scope); the
	// run still lists the clients, and would judge a record left.
	e.writeConfig(strings.Replace(wfClientPolicies, `["sp:scopes:all"]`, `["idn:none"]`, 1))
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 || faked.Load() != 2 {
		t.Fatalf("apply after the acknowledgement: exit %d, %d faked\n%s", code, faked.Load(), stderr)
	}
	e.mustRun("audit", "verify")
}

// serve holds the journal: acknowledge keeps the acknowledgement, serve's
// next run journals it, and patjanitor_unproven_mutations drops to 0 at
// that run (the policy still deletes the tokens: the DELETEs are sent
// again and the proof starts over, with no alarm until it is due).
func TestHostileServeDropsTheGaugeAfterAcknowledge(t *testing.T) {
	e := newServeEnv(t, idnsim.Options{RateLimit: -1})
	var faked atomic.Int32
	proxied := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete && strings.Contains(r.URL.Path, "/personal-access-tokens/") {
			faked.Add(1)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		e.sim.ServeHTTP(w, r)
	}))
	t.Cleanup(proxied.Close)
	e.srv = proxied
	stale := e.addTokens("stale", 2, 200*24*time.Hour)
	cfg := e.writeConfig(e.configYAML("@every 1s", servePolicy("stale-delete", "enforce", "", "stale", false)))
	stateDir := filepath.Join(e.dir, "state")
	unproven := series("patjanitor_unproven_mutations", "action", "delete")
	failed := series("patjanitor_runs_total", "result", "failed")

	p := startInProcess(t, e, cfg, serveFlags{runOnStart: true})
	p.tickUntil("the deletes faked", 1, func() bool { return faked.Load() >= 2 })
	serveWait(t, "the run to end", 30*time.Second, func() bool {
		m := scrape(t, p.base)
		return m["patjanitor_run_in_progress"] == 0 && m[series("patjanitor_runs_total", "result", "success")] >= 1
	})
	backdateConfirmed(t, stateDir, time.Hour)
	p.tickUntil("a failed run", 1, func() bool { return scrape(t, p.base)[failed] >= 1 })
	if v := scrape(t, p.base)[unproven]; v != 2 {
		t.Fatalf("%s = %v, want 2", unproven, v)
	}
	for _, id := range stale {
		var out, errb strings.Builder
		code := Main(context.Background(), []string{"--state-dir", stateDir, "acknowledge", id, "--reason", "kept"}, Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
		if code != 0 || !strings.Contains(out.String(), "held by a running patjanitor serve") {
			t.Fatalf("acknowledge %s: exit %d\n%s%s", id, code, out.String(), errb.String())
		}
	}
	before := scrape(t, p.base)[failed]
	p.tick(1)
	serveWait(t, "the run to end", 30*time.Second, func() bool { return scrape(t, p.base)["patjanitor_run_in_progress"] == 0 })
	m := scrape(t, p.base)
	if m[unproven] != 0 || m[failed] != before {
		t.Fatalf("%s = %v, failed runs %v (were %v); want 0 and no new failure", unproven, m[unproven], m[failed], before)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range journalRecords(t, filepath.Join(stateDir, JournalFile)) {
		if r.Kind == audit.KindOutcome && r.Outcome.Status == janitor.StatusAcknowledged {
			n++
		}
	}
	if n != len(stale) || faked.Load() != 6 {
		t.Fatalf("%d acknowledged outcomes, %d DELETEs faked; want %d and 6 (sent again after the acknowledgement)", n, faked.Load(), len(stale))
	}
}

// holdJournal holds e's journal as a running serve does, until release
// (making the state directory first, as serve does).
func holdJournal(t *testing.T, e *wfEnv) (release func()) {
	t.Helper()
	if err := os.MkdirAll(e.state, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(filepath.Join(e.state, state.FileName), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	held, err := audit.Open(filepath.Join(e.state, JournalFile), audit.Options{Anchors: st.AnchorOf(e.journalKeyOf())})
	if err != nil {
		t.Fatal(err)
	}
	held.Detach()
	_ = st.Close()
	return func() {
		t.Helper()
		if err := held.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Two operators acknowledge the same record while serve holds the
// journal: the second is refused, nothing changed, and the first stays
// pending as it was told; once the journal is free, a second
// acknowledgement journals the first one (owed since) and then its own.
// On the old code the second overwrote the first in the record: alice was
// told her acknowledgement would be journaled, and it never was.
func TestHostileSecondAcknowledgementKeepsThePendingFirst(t *testing.T) {
	e, faked := newLyingDeleteWF(t, wfPolicies)
	toNotInEffect(t, e, faked)
	release := holdJournal(t, e)
	if code, stdout, stderr := e.run(nil, "acknowledge", "stale-1", "--reason", "alice checked", "--by", "alice"); code != 0 || !strings.Contains(stdout, "held by a running patjanitor serve") {
		t.Fatalf("acknowledge by alice: exit %d\n%s%s", code, stdout, stderr)
	}
	e.refusedUnchanged("acknowledge: the delete of token stale-1 was already acknowledged by alice at ", "acknowledge", "STALE-1", "--reason", "bob checked", "--by", "bob")
	if u := e.unprovenJSONOf(); len(u) != 1 || u[0].Ack == nil || u[0].Ack.By != "alice" || u[0].Ack.Reason != "alice checked" {
		t.Fatalf("unproven: %+v; want alice's acknowledgement pending", u)
	}
	release()

	if code, stdout, stderr := e.run(nil, "acknowledge", "stale-1", "--reason", "carol checked", "--by", "carol"); code != 0 ||
		!strings.Contains(stdout, "Acknowledged the delete of token stale-1") || !strings.Contains(stdout, "already acknowledged by alice") {
		t.Fatalf("acknowledge by carol: exit %d\n%s%s", code, stdout, stderr)
	}
	acks := e.outcomesOf("stale-1", janitor.StatusAcknowledged)
	if len(acks) != 2 || !strings.HasPrefix(acks[0].Note, "alice checked (by alice); ") || !strings.HasPrefix(acks[1].Note, "carol checked (by carol); ") {
		t.Fatalf("acknowledged outcomes %+v; want alice's, then carol's", acks)
	}
	if toks, clients := storedRecords(t, e.state); len(toks)+len(clients) != 0 {
		t.Fatalf("records left: %+v %+v", toks, clients)
	}
	if faked.Load() != 2 || len(e.mutations()) != 0 {
		t.Fatalf("%d DELETEs faked, tenant received %v; acknowledging sends nothing", faked.Load(), e.mutations())
	}
	e.mustRun("audit", "verify")
}

// An acknowledgement too big for a journal record (a reason and a name
// pasted from a binary file, each within the 128 KiB a command-line
// argument may hold, escaped six-fold in JSON) is refused while serve
// holds the journal, nothing changed. On the old code it was kept in the
// record: no run could ever journal it, so every apply refused to start
// ("nothing was changed") and serve's runs failed to journal it, and any
// acknowledgement after it, forever.
func TestHostileOversizedAcknowledgementIsRefused(t *testing.T) {
	e, faked := newLyingDeleteWF(t, wfPolicies)
	toNotInEffect(t, e, faked)
	reason := "kept " + strings.Repeat("\x01", 128<<10-5)
	by := strings.Repeat("\x02", 64<<10)
	release := holdJournal(t, e)
	e.refusedUnchanged("acknowledge: the reason (--reason) is 131072 bytes long, at most 4096", "acknowledge", "stale-1", "--reason", reason, "--by", "ops")
	e.refusedUnchanged("acknowledge: who asks (--by) is 65536 bytes long, at most 256", "acknowledge", "stale-1", "--reason", "kept", "--by", by)
	release()
	e.refusedUnchanged("acknowledge: the reason (--reason) is 131072 bytes long, at most 4096", "acknowledge", "stale-1", "--reason", reason, "--by", by)

	e.writeConfig("exclude: {tokenIds: [stale-1]}\n" + wfPolicies)
	if code, stdout, stderr := e.run(nil, "acknowledge", "stale-1", "--reason", strings.Repeat("r", 4096), "--by", strings.Repeat("b", 256)); code != 0 {
		t.Fatalf("acknowledge at the bounds: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply after the acknowledgement: exit %d\n%s", code, stderr)
	}
	if acks := e.outcomesOf("stale-1", janitor.StatusAcknowledged); len(acks) != 1 || !strings.HasPrefix(acks[0].Note, strings.Repeat("r", 4096)+" (by "+strings.Repeat("b", 256)+"); ") {
		t.Fatalf("acknowledged outcomes: %d", len(acks))
	}
	if faked.Load() != 2 || len(e.mutations()) != 0 {
		t.Fatalf("%d DELETEs faked, tenant received %v", faked.Load(), e.mutations())
	}
}

// A damaged API client record does not stop apply from cleaning tokens
// under a config without an apiClients policy (that run never reads the
// client records), as it did not before acknowledge existed. On the old
// code apply's JournalAcks read both buckets first and refused the whole
// run: "decode confirmed mutation …; nothing was changed", the stale token
// kept, run after run.
func TestHostileDamagedClientRecordDoesNotBlockTokenRuns(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	e.add("stale-1", "o1", 400*wfDay, 200*wfDay)
	st, err := state.Open(filepath.Join(e.state, state.FileName), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	putRaw(t, e.state, "confirmed-client-mutations", []byte("client-x"), []byte("{damaged"))

	code, _, stderr := e.run(nil, "apply", "--auto-approve")
	if code != 0 || !slices.Equal(e.deletedPaths(), []string{"DELETE /v3/personal-access-tokens/stale-1"}) || e.present("stale-1") {
		t.Fatalf("apply: exit %d, tenant received %v; want stale-1 deleted\n%s", code, e.deletedPaths(), stderr)
	}
	if n := len(e.outcomesOf("stale-1", "applied")); n != 1 {
		t.Fatalf("%d applied outcomes of stale-1 in the journal, want 1", n)
	}
	// acknowledge, which must know whether an API client has the id,
	// refuses, naming the damaged record (and state repair, the way
	// out); nothing changed.
	journal := len(e.journalRecords())
	if code, _, stderr := e.run(nil, "acknowledge", "stale-1", "--reason", "r"); code != 1 || !strings.Contains(stderr, `the record "client-x" in bucket "confirmed-client-mutations" does not decode`) {
		t.Fatalf("acknowledge: exit %d; want 1 naming the damaged record\n%s", code, stderr)
	}
	if n := len(e.journalRecords()); n != journal {
		t.Fatalf("the refused acknowledge journaled %d records", n-journal)
	}
}

// A token and an API client share an id; the token's acknowledgement is
// journaled and its record dropped, then the client's cannot be journaled
// (a full disk; here a record too big for the journal). acknowledge exits 1
// and says both: what it acknowledged, and what failed. On the old code it
// printed the failure alone, and the operator took the token's alarm for
// still standing, though the journal had closed it.
func TestHostileAcknowledgeReportsWhatItDidBeforeAFailure(t *testing.T) {
	e := newWF(t, wfPolicies, idnsim.Options{})
	ctx := context.Background()
	st, err := state.Open(filepath.Join(e.state, state.FileName), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-2 * time.Hour).UTC()
	seen := at.Add(time.Hour)
	if _, err := st.UpdateConfirmed(ctx, []state.Confirmed{{TokenID: "dup-1", OwnerID: "o1", Policy: "unused-90d", Action: "delete", RunID: "r1", Code: 204, At: at, StillListed: &seen, Checks: 1}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateConfirmedClients(ctx, []state.Confirmed{{TokenID: "DUP-1", Policy: strings.Repeat("p", audit.MaxRecordSize), Action: "disable", RunID: "r1", Code: 200, At: at, StillListed: &seen, Checks: 1}}, nil); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()

	code, stdout, stderr := e.run(nil, "acknowledge", "dup-1", "--reason", "kept", "--by", "ops")
	if code != 1 || !strings.Contains(stdout, "Acknowledged the delete of token dup-1 confirmed in run r1") ||
		!strings.Contains(stderr, "journal the acknowledgement of API client DUP-1") {
		t.Fatalf("acknowledge: exit %d; want 1, the token acknowledged and the client's failure\nstdout:\n%s\nstderr:\n%.500s", code, stdout, stderr)
	}
	if acks := e.outcomesOf("dup-1", janitor.StatusAcknowledged); len(acks) != 1 {
		t.Fatalf("%d acknowledged outcomes of the token, want 1", len(acks))
	}
	toks, clients := storedRecords(t, e.state)
	if len(toks) != 0 || len(clients) != 1 || clients[0].Ack != nil {
		t.Fatalf("records %+v %+v; want the token's dropped, the client's as it was", toks, len(clients))
	}
}

// Shell completion offers the ids a terminal shows as they are: a tenant's
// id with an escape sequence is left out (the shell prints candidates raw,
// where it would retitle the window or worse), as every table escapes it.
// On the old code the candidate went out as the tenant wrote it.
func TestHostileAcknowledgeCompletionLeavesOutIdsThatAreNotText(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st, err := state.Open(filepath.Join(dir, state.FileName), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-2 * time.Hour).UTC()
	seen := at.Add(time.Hour)
	var cs []state.Confirmed
	for _, id := range []string{"ok-1", "evil\x1b]0;pwned\x07", "bidi\u202egnp", "nl\ninjected"} {
		cs = append(cs, state.Confirmed{TokenID: id, Policy: "p", Action: "delete", RunID: "r1", Code: 204, At: at, StillListed: &seen, Checks: 1})
	}
	if _, err := st.UpdateConfirmed(ctx, cs, nil); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	_, out, _ := runMain(t, "__complete", "--state-dir", dir, "acknowledge", "")
	if strings.ContainsAny(out, "\x1b\x07\u202e") || strings.Contains(out, "nl") {
		t.Fatalf("completion offers an id that is not text:\n%q", out)
	}
	if got := complete(t, "--state-dir", dir, "acknowledge", ""); !slices.Equal(got, []string{"ok-1"}) {
		t.Fatalf("acknowledge completes %q, want ok-1", got)
	}
}
