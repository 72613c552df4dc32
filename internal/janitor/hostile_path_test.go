package janitor_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/audit"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
)

// A tenant that lists tokens under ids with path syntax in them ("/", "..",
// "?", "#", "%", spaces, non-ASCII): each DELETE and PATCH reaches that one
// token, with the id escaped into a single path segment, and the journal's
// intent names the very path the tenant received.
func TestHostileTokenIDsEscapedInRequestAndJournal(t *testing.T) {
	cfg := noLimits + `policies:
  - name: unused-90d
    mode: enforce
    match: {unusedFor: 90d}
    action: delete
  - name: full-access
    mode: enforce
    match: {scopes: {any: ["sp:scopes:all"]}}
    action: patch
    patch: {removeScopes: ["sp:scopes:all"], addScopes: ["sp:scopes:default"]}
`
	deleted := []string{
		"a/b", "../../v3/oauth-clients/x", "a/../b", "id?owner-id=me", "id#frag",
		"100%", "%2F", "two words", "tøken-ü", "日本", "+;=,@:$&'()*!~",
	}
	patched := "own/../tok?x=1#y %"
	for _, v := range []pat.APIVersion{pat.V3, pat.V2025} {
		t.Run(string(v), func(t *testing.T) {
			e := newEnv(t, "tenant: {apiVersion: "+string(v)+"}\n"+cfg, envOpts{})
			for _, id := range deleted {
				e.add(id, "o1", "stale", 400*day, 200*day)
			}
			e.add("bystander", "o1", "fresh", 10*day, day)
			e.add(patched, e.own(), "ci", 10*day, day, pat.ScopeAll)

			if _, err := e.engine().Run(context.Background(), janitor.RunInput{}); err != nil {
				t.Fatalf("Run: %v", err)
			}

			sent := map[string]string{} // escaped path -> method
			for _, m := range e.mutations() {
				if m.Status >= 300 {
					t.Errorf("%s %s: status %d", m.Method, m.EscapedPath, m.Status)
				}
				sent[m.EscapedPath] = m.Method
			}
			want := map[string]string{api.TokenPath(v, patched): "PATCH"}
			for _, id := range deleted {
				want[api.TokenPath(v, id)] = "DELETE"
			}
			for path, method := range want {
				if sent[path] != method {
					t.Errorf("the tenant received %q for %s; want %s (received %v)", sent[path], path, method, sent)
				}
			}
			if len(sent) != len(want) {
				t.Errorf("the tenant received %d mutations, want %d: %v", len(sent), len(want), sent)
			}
			for _, id := range deleted {
				if e.present(id) {
					t.Errorf("token %q still present", id)
				}
			}
			if !e.present("bystander") {
				t.Error("bystander deleted")
			}
			if tok, _ := e.sim.Token(patched); tok.Scope.Has(pat.ScopeAll) {
				t.Errorf("token %q kept %s: %+v", patched, pat.ScopeAll, tok.Scope)
			}

			intents := 0
			for _, r := range e.journalRecords() {
				if r.Kind != audit.KindIntent {
					continue
				}
				intents++
				if r.Request == nil || sent[r.Request.Path] != r.Request.Method {
					t.Errorf("intent for %q journals %+v; the tenant received %v", r.TokenID, r.Request, sent)
					continue
				}
				if seg, err := url.PathUnescape(r.Request.Path[len(api.TokensPath(v))+1:]); err != nil || seg != r.TokenID {
					t.Errorf("intent for %q journals path %s (segment %q, %v)", r.TokenID, r.Request.Path, seg, err)
				}
			}
			if intents != len(want) {
				t.Errorf("%d intents, want %d", intents, len(want))
			}
		})
	}
}

// A tenant that lists tokens named "." and "..": no escaping keeps such an id
// one segment, and a proxy that removes dot segments would send the DELETE to
// the collection or to /v3, whose 404 reads as "already gone". Nothing is
// sent for them; their outcomes are failures that say why, and the other
// token of the run is deleted.
func TestHostileDotSegmentTokenIDs(t *testing.T) {
	e := newEnv(t, enforceDeleteStale, envOpts{})
	for _, id := range []string{".", "..", "s"} {
		e.add(id, "o1", "stale", 400*day, 200*day)
	}
	_, err := e.engine().Run(context.Background(), janitor.RunInput{})
	requireActionsFailed(t, err, 2)
	if got := deletedIDs(e.mutations()); len(got) != 1 || got["s"] != 1 {
		t.Fatalf("deleted %v; want only s", got)
	}
	for _, m := range e.mutations() {
		if m.EscapedPath != api.TokenPath(pat.V3, "s") {
			t.Errorf("the tenant received %s %s", m.Method, m.EscapedPath)
		}
	}
	if !e.present(".") || !e.present("..") {
		t.Fatal("a dot-segment token is gone")
	}
	failed := map[string]string{}
	for _, r := range e.journalRecords() {
		if r.Kind == audit.KindOutcome && r.Outcome != nil && r.Outcome.Error != "" {
			failed[r.TokenID] = r.Outcome.Error
		}
	}
	for _, id := range []string{".", ".."} {
		if !strings.Contains(failed[id], "dot segment") {
			t.Errorf("journal outcome of %q: %q; want the failure naming the dot segment", id, failed[id])
		}
	}
}
