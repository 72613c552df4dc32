package cli

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/janitor"
)

// A lying tenant lists a token whose id carries a terminal escape sequence
// (ESC ] 0 ; … BEL retitles the window) and a newline, answers 204 to its
// DELETE and keeps it. The operator acknowledges it with the id as
// `unproven -o json` gives it, and a reason with control bytes of its own.
// What is printed shows the id and the reason escaped, never raw, while
// the journal's "acknowledged" outcome keeps the id exactly (JSON escapes
// it), so it names the token the tenant listed and the chain verifies; the
// record is gone and the next run, the token exempted, sends nothing.
// A guard: no defect found.
func TestHostileAcknowledgeIDWithControlBytes(t *testing.T) {
	const id = "evil\x1b]0;pwned\x07\nforged"
	e, faked := newLyingDeleteWF(t, wfPolicies)
	e.add(id, "o1", 400*wfDay, 200*wfDay)
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 || faked.Load() != 1 {
		t.Fatalf("apply: exit %d, %d DELETEs faked\n%s", code, faked.Load(), stderr)
	}
	backdateConfirmed(t, e.state, time.Hour)
	code, stdout, stderr := e.run(nil, "apply", "--auto-approve")
	if code != 1 || strings.ContainsAny(stdout+stderr, "\x1b\x07") {
		t.Fatalf("apply past the margin: exit %d, want 1 with the id escaped\n%q", code, stderr)
	}
	if faked.Load() != 2 || !e.present(id) || len(e.mutations()) != 0 {
		t.Fatalf("%d DELETEs faked, tenant received %v; want the delete sent again, faked, and the token kept", faked.Load(), e.mutations())
	}
	if u := e.unprovenJSONOf(); len(u) != 1 || u[0].ID != id || u[0].State != janitor.StatusNotInEffect {
		t.Fatalf("unproven -o json: %+v; want the id exactly, not in effect", u)
	}
	if _, stdout, _ := e.run(nil, "unproven"); strings.ContainsAny(stdout, "\x1b\x07") || !strings.Contains(stdout, `evil\x1b]0;pwned\x07\nforged`) {
		t.Fatalf("unproven shows the id unescaped:\n%q", stdout)
	}

	code, stdout, stderr = e.run(nil, "acknowledge", id, "--reason", "kept\x1b[2J, exempted\rX", "--by", "alice")
	if code != 0 {
		t.Fatalf("acknowledge: exit %d\n%q\n%q", code, stdout, stderr)
	}
	if strings.ContainsAny(stdout+stderr, "\x1b\x07\r") || strings.Count(stdout, "\n") != 1 ||
		!strings.Contains(stdout, `token evil\x1b]0;pwned\x07\nforged confirmed in run `) || !strings.Contains(stdout, `kept\x1b[2J, exempted\rX`) {
		t.Fatalf("acknowledge printed control bytes raw or lost the id:\n%q", stdout)
	}
	if toks, clients := storedRecords(t, e.state); len(toks)+len(clients) != 0 {
		t.Fatalf("records left: %+v %+v", toks, clients)
	}
	acks := e.outcomesOf(id, janitor.StatusAcknowledged)
	if len(acks) != 1 || acks[0].TokenID != id || acks[0].Outcome.Code != http.StatusNoContent ||
		!strings.HasPrefix(acks[0].Note, "kept\x1b[2J, exempted\rX (by alice); the delete confirmed in run ") {
		t.Fatalf("acknowledged outcomes %+v", acks)
	}
	if code, stdout, stderr := e.run(nil, "audit", "show", acks[0].RunID); code != 0 || strings.ContainsAny(stdout, "\x1b\x07\r") {
		t.Fatalf("audit show: exit %d\n%q%q", code, stdout, stderr)
	}
	e.mustRun("audit", "verify")

	e.writeConfig("exclude: {tokenIds: [" + `"evil\e]0;pwned\a\nforged"` + "]}\n" + wfPolicies)
	if code, _, stderr := e.run(nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply after the acknowledgement: exit %d\n%s", code, stderr)
	}
	if faked.Load() != 2 || !e.present(id) {
		t.Fatalf("%d DELETEs faked; the exempt token was deleted again", faked.Load())
	}
}
