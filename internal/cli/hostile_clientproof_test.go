package cli

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/state"
)

// newFakedClientDisableWF is a workflow whose tenant holds wfClient, an
// enabled API client the policies disable, behind a proxy that answers a
// PATCH of an API client with 200 and the client shown disabled and
// forwards nothing; faked counts the PATCHes it answered so.
func newFakedClientDisableWF(t *testing.T) (e *wfEnv, faked *atomic.Int32) {
	t.Helper()
	faked = new(atomic.Int32)
	e = newWFWrapped(t, wfClientPolicies, idnsim.Options{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/v3/oauth-clients/") {
				cl, _ := e.sim.OAuthClient(wfClient)
				cl.Enabled = apiclient.Bool(false)
				body, _ := json.Marshal(cl)
				faked.Add(1)
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(body)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	e.sim.AddOAuthClient(apiclient.Client{ID: wfClient, Name: "legacy", Internal: apiclient.Bool(false), Enabled: apiclient.Bool(true),
		Scope: pat.Scopes{Null: true}, Created: time.Now().Add(-400 * wfDay)}, "")
	return e, faked
}

// The commands as an operator runs them, with a proxy that answers the
// PATCH disabling an API client with 200 (the client shown disabled) and
// never forwards it: apply records the confirmation; once the settle margin
// has passed, plan says the client is still listed enabled and exits 1, and
// apply fails the same way, journals the disable not in effect (resource
// apiClients), and audit show of that run names the run that was
// confirmed. On the old code plan showed one more disable, exit 0.
func TestHostileCommandsSayClientDisableNotInEffect(t *testing.T) {
	e, faked := newFakedClientDisableWF(t)
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, stderr)
	}
	if faked.Load() != 1 || len(clientMutations(e.sim.Requests())) != 0 {
		t.Fatalf("faked %d, the tenant received %+v; want one faked, none received", faked.Load(), clientMutations(e.sim.Requests()))
	}
	backdateClientConfirmed(t, e.state, time.Hour)

	const said = "1 API client the tenant confirmed disabled is still listed enabled (" + wfClient + ", disabled by policy clients-unused in run "
	code, stdout, stderr := e.run(nil, "plan")
	if code != 1 || !strings.Contains(stdout, "WARNING: 1 API client the tenant confirmed disabled is still listed enabled") || !strings.Contains(stderr, said) {
		t.Fatalf("plan: exit %d; want 1 saying %q\nstdout:\n%s\nstderr:\n%s", code, said, stdout, stderr)
	}
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 1 || !strings.Contains(stderr, said) {
		t.Fatalf("apply: exit %d; want 1 saying %q\n%s", code, said, stderr)
	}
	var lie *audit.Record
	if _, err := audit.VerifyPath(filepath.Join(e.state, JournalFile), audit.VerifyOptions{Each: func(r audit.Record) error {
		if r.Kind == audit.KindOutcome && r.Resource == apiclient.Resource && r.Outcome != nil && r.Outcome.Status == janitor.StatusNotInEffect {
			lie = &r
		}
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	if lie == nil || lie.TokenID != wfClient {
		t.Fatalf("not-in-effect outcome %+v; want the client's", lie)
	}
	code, stdout, _ = e.run(nil, "audit", "show", lie.RunID)
	if code != 0 || !strings.Contains(stdout, "outcome    "+wfClient+"  not-in-effect (HTTP 200)") || !strings.Contains(stdout, "note     confirmed disable of run ") {
		t.Fatalf("audit show: exit %d\n%s", code, stdout)
	}
}

// backdateClientConfirmed moves the confirmed API client mutations under
// stateDir back by d, as the clock passing would.
func backdateClientConfirmed(t *testing.T, stateDir string, d time.Duration) {
	t.Helper()
	backdateRecords(t, stateDir, d, "confirmed API client mutations", (*state.Store).ConfirmedClientMutations, (*state.Store).UpdateConfirmedClients)
}
