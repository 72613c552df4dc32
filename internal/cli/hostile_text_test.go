package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
)

// forged is what a hostile token name, owner name, reason or server message
// holds: an OSC that sets the window title, a clear screen, a right-to-left
// override, and a newline that forges a log line.
const forged = "\x1b]0;pwned\x07\x1b[2J\u202eeman\n2026-12-05T03:00:00.000Z\tINFO\tapplied token_id=deadbeef `x` *b* _i_"

// requireNoInjection fails when out holds a raw control or bidi character
// or a line the forged text started.
func requireNoInjection(t *testing.T, where, out string) {
	t.Helper()
	if i := strings.IndexAny(out, "\x1b\x07\u202e\r"); i >= 0 {
		t.Fatalf("%s: raw control character %q at %d:\n%s", where, out[i], i, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "2026-12-05T03:00:00.000Z") {
			t.Fatalf("%s: a forged line reached the output: %q\n%s", where, l, out)
		}
	}
	if !strings.Contains(out, `\x1b]0;pwned\x07\x1b[2J\u202eeman\n2026-12-05T03:00:00.000Z`) {
		t.Fatalf("%s: the forged text is not shown escaped:\n%s", where, out)
	}
}

// ttyBuffer is a standard output that claims to be a terminal.
type ttyBuffer struct{ bytes.Buffer }

func (*ttyBuffer) IsTerminal() bool { return true }

func (e *wfEnv) runTo(out io.Writer, args ...string) (int, string) {
	e.t.Helper()
	var errb bytes.Buffer
	argv := append([]string{"-c", e.cfgPath, "--state-dir", e.state}, args...)
	code := Main(context.Background(), argv, Streams{In: strings.NewReader(""), Out: out, Err: &errb})
	return code, errb.String()
}

const deleteStaleEnforce = `limits: {maxActionsPerRun: 0, maxActionsPercent: 0, maxActionsPerOwner: 0}
policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
`

func addForged(e *wfEnv, id string) {
	now := time.Now().UTC()
	lu := now.Add(-200 * wfDay)
	e.sim.Add(pat.Token{ID: id, Name: forged, Owner: pat.Owner{ID: "o1", Name: forged},
		Created: now.Add(-400 * wfDay), LastUsed: &lu, Scope: pat.ScopesOf("idn:sources:read")}, "")
}

// apply's result table, with a name and a server error message that try to
// take over the terminal.
func TestHostileApplyResultTableEscapes(t *testing.T) {
	e := newWF(t, deleteStaleEnforce, idnsim.Options{})
	addForged(e, "00000000000000000000000000000a01")
	body, _ := json.Marshal(map[string]any{"messages": []map[string]string{{"locale": "en-US", "text": forged}}})
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpDeleteToken, Status: 400, Body: string(body)})

	code, stdout, stderr := e.run(nil, "apply", "--auto-approve")
	if code == 0 {
		t.Fatalf("apply exit 0 with a failed delete\n%s\n%s", stdout, stderr)
	}
	i := strings.Index(stdout, "\nRun ")
	if i < 0 {
		t.Fatalf("no result table:\n%s", stdout)
	}
	requireNoInjection(t, "apply result table", stdout[i:])
	requireNoInjection(t, "apply stdout", stdout)
	if strings.ContainsAny(stderr, "\x1b\u202e") {
		t.Fatalf("stderr holds raw control characters:\n%q", stderr)
	}
	if len(e.mutations()) != 1 {
		t.Fatalf("mutations %v", e.mutations())
	}
}

// snoozes lists reasons (and names of who snoozed) typed by others.
func TestHostileSnoozesListEscapes(t *testing.T) {
	e := newWF(t, deleteStaleEnforce, idnsim.Options{})
	if code, out, errs := e.run(nil, "snooze", "00000000000000000000000000000a01", "--offline", "--for", "30d", "--reason", forged, "--by", "mallory"); code != 0 {
		t.Fatalf("snooze exit %d\n%s\n%s", code, out, errs)
	} else {
		requireNoInjection(t, "snooze", out)
	}
	code, out, errs := e.run(nil, "snoozes")
	if code != 0 {
		t.Fatalf("snoozes exit %d\n%s", code, errs)
	}
	requireNoInjection(t, "snoozes", out)
	if n := strings.Count(strings.TrimSpace(out), "\n"); n != 1 {
		t.Fatalf("snoozes printed %d lines for one snooze:\n%s", n+1, out)
	}
}

// plan -o csv on a terminal escapes the cells; to a file it stays the data.
func TestHostilePlanCSVOnTerminal(t *testing.T) {
	e := newWF(t, deleteStaleEnforce, idnsim.Options{})
	addForged(e, "00000000000000000000000000000a01")

	var tty ttyBuffer
	if code, errs := e.runTo(&tty, "plan", "-o", "csv"); code != 0 {
		t.Fatalf("plan exit %d\n%s", code, errs)
	}
	requireNoInjection(t, "plan -o csv on a terminal", tty.String())
	if n := strings.Count(tty.String(), "\n"); n != 2 {
		t.Fatalf("csv on a terminal: %d lines, want header and one row:\n%s", n, tty.String())
	}

	var pipe bytes.Buffer
	if code, errs := e.runTo(&pipe, "plan", "-o", "csv"); code != 0 {
		t.Fatalf("plan exit %d\n%s", code, errs)
	}
	rows, err := csv.NewReader(&pipe).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][1] != forged {
		t.Fatalf("csv to a pipe is not the data: %q, %v", rows, err)
	}

	// JSON on a terminal: the bidi override is a \u escape, and the
	// document decodes to the same plan.
	tty.Reset()
	if code, errs := e.runTo(&tty, "plan", "-o", "json"); code != 0 {
		t.Fatalf("plan exit %d\n%s", code, errs)
	}
	if strings.ContainsAny(tty.String(), "\x1b\u202e") || !strings.Contains(tty.String(), `\u202e`) {
		t.Fatalf("json on a terminal:\n%s", tty.String())
	}
	p, err := plan.Read(strings.NewReader(tty.String()))
	if err != nil || p.Items.At(0).TokenName != forged {
		t.Fatalf("json on a terminal does not decode to the plan: %v", err)
	}
}

// An error a hostile server sends back reaches the terminal as one escaped
// line.
func TestHostileServerErrorOnTerminal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request", "error_description": forged})
	}))
	defer srv.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "policies.yaml")
	body := "tenant:\n  url: " + srv.URL + "\n  clientId: 0123456789abcdef0123456789abcdef\n" + deleteStaleEnforce
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATJANITOR_TENANT_URL", "")
	t.Setenv("PATJANITOR_CLIENT_ID", "")
	t.Setenv("PATJANITOR_CLIENT_SECRET", "s3cret-value")
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"-c", cfg, "--state-dir", filepath.Join(dir, "state"), "plan"}, Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
	if code == 0 {
		t.Fatalf("plan exit 0 against a failing tenant")
	}
	requireNoInjection(t, "stderr", errb.String())
}

// The console log format escapes what zap writes raw (the message) and what
// JSON leaves raw in the fields (U+202E), keeping one entry per line.
func TestHostileConsoleLogLine(t *testing.T) {
	var errb bytes.Buffer
	g := &globals{streams: Streams{Err: &errb}, logLevel: "info", logFormat: "console"}
	log, err := g.logger()
	if err != nil {
		t.Fatal(err)
	}
	log.Info("listed "+forged, zap.String("token_name", forged))
	_ = log.Sync()
	out := errb.String()
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("one entry is %d lines:\n%s", strings.Count(out, "\n"), out)
	}
	requireNoInjection(t, "console log", out)
}
