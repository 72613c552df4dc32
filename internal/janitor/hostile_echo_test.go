package janitor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
	"github.com/patjanitor/patjanitor/internal/report"
	"github.com/patjanitor/patjanitor/internal/secret"
	"github.com/patjanitor/patjanitor/internal/untrusted"
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

// A message quoted from an error answer is clipped to maxErrorText (512)
// characters. It was clipped before the credentials were searched for, so
// a token endpoint (or a proxy's error page) that echoes the client secret
// where it straddles the clip edge left all of the secret but its last
// character in the error, the journal and the logs, where no whole form of
// it matched. Here a DELETE is answered 401, the client asks the token
// endpoint for a new access token, and that answer echoes the secret so.
func TestHostileTokenEndpointEchoesTheSecretAtTheClipEdge(t *testing.T) {
	var e *env
	var mu sync.Mutex
	tokenPosts, deletes := 0, 0
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			var n, posts int
			if r.Method == http.MethodDelete {
				deletes++
				n = deletes
			}
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/oauth/token") {
				tokenPosts++
				posts = tokenPosts
			}
			mu.Unlock()
			switch {
			case n == 1:
				answerJSON(w, http.StatusUnauthorized, `{"error":"JWT expired"}`)
			case posts > 1:
				// "invalid_client: " + pad + the secret is 513 characters:
				// the clip edge falls before the secret's last character.
				s := e.admin.ClientSecret
				pad := strings.Repeat("x", 512-len("invalid_client: ")-len(s)+1)
				answerJSON(w, http.StatusUnauthorized, `{"error":"invalid_client","error_description":"`+pad+s+`"}`)
			default:
				h.ServeHTTP(w, r)
			}
		})
	}
	e = newEnv(t, enforceDeleteStale, envOpts{wrap: wrap})
	ctx := context.Background()
	e.addStale("stale", 1, 1)
	leak := e.admin.ClientSecret[:len(e.admin.ClientSecret)-1]

	pl, err := e.engine().Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.engine().Execute(ctx, pl)
	if err == nil {
		t.Fatal("a run whose DELETE failed succeeded")
	}
	mu.Lock()
	posts, n := tokenPosts, deletes
	mu.Unlock()
	if posts < 2 || n != 1 {
		t.Fatalf("%d token requests and %d DELETEs, want a second token request after the 401 and no second DELETE", posts, n)
	}
	e.requireNoMutations()
	if !e.present("stale-000") {
		t.Fatal("the token is gone")
	}
	failed := e.failedOutcomes()
	if len(failed) != 1 || !strings.Contains(failed[0], "invalid_client: x") || !strings.Contains(failed[0], secret.Redacted) {
		t.Errorf("the journal's failed outcomes %q, want one: the token endpoint's answer with the secret redacted", failed)
	}
	journal, rerr := os.ReadFile(e.jpath)
	if rerr != nil {
		t.Fatal(rerr)
	}
	for where, out := range map[string][]byte{"the run's error": []byte(err.Error()), "the journal": journal, "the logs": e.logs.Bytes()} {
		if bytes.Contains(out, []byte(leak)) {
			t.Errorf("%s holds the client secret but its last character", where)
		}
	}
}

// A proxy (or a tenant) answers patjanitor's DELETE with 401, which makes
// the client drop its access token and fetch another, then answers the
// repeated DELETE with an error body that quotes the first token: still
// valid at the tenant, as far as patjanitor can tell (the 401 was not the
// tenant's). The listing scrubs the last few access tokens issued; an
// error body was scrubbed of the token of its own request only, so the
// earlier token reached the run's error, the journal's outcome and the
// logs. Scrubbed of the same tokens as a listing, the error says where it
// was instead.
func TestHostileTenantEchoesAnEarlierAccessTokenInAnError(t *testing.T) {
	var watch bearerWatch
	var mu sync.Mutex
	var bearers []string // in the order first sent
	deletes := 0
	wrap := func(h http.Handler) http.Handler {
		return watch.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			mu.Lock()
			if tok != "" && !slices.Contains(bearers, tok) {
				bearers = append(bearers, tok)
			}
			first := ""
			if len(bearers) > 0 {
				first = bearers[0]
			}
			n := 0
			if r.Method == http.MethodDelete {
				deletes++
				n = deletes
			}
			mu.Unlock()
			switch {
			case n == 1:
				answerJSON(w, http.StatusUnauthorized, `{"error":"JWT expired"}`)
			case n > 1:
				answerJSON(w, http.StatusBadRequest, `{"detailCode":"400.1 Bad request content","messages":[{"locale":"en-US","text":"token `+first+` was revoked"}]}`)
			default:
				h.ServeHTTP(w, r)
			}
		}))
	}
	e := newEnv(t, enforceDeleteStale, envOpts{wrap: wrap})
	ctx := context.Background()
	e.addStale("stale", 1, 1)

	pl, err := e.engine().Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.engine().Execute(ctx, pl)
	if err == nil {
		t.Fatal("a run whose DELETE failed succeeded")
	}
	mu.Lock()
	sent, n := len(bearers), deletes
	mu.Unlock()
	if sent < 2 || n != 2 {
		t.Fatalf("%d bearer tokens and %d DELETEs sent, want a second token after the 401 and the DELETE repeated once", sent, n)
	}
	// The proxy answered both DELETEs: the tenant received none.
	e.requireNoMutations()
	if !e.present("stale-000") {
		t.Fatal("the token is gone")
	}
	watch.requireAbsent(t, e, "the run's error", []byte(err.Error()))
	if failed := e.failedOutcomes(); len(failed) != 1 || !strings.Contains(failed[0], "token "+secret.Redacted+" was revoked") {
		t.Errorf("the journal's failed outcomes %q, want one that shows where the credential was", failed)
	}
	journal, rerr := os.ReadFile(e.jpath)
	if rerr != nil {
		t.Fatal(rerr)
	}
	watch.requireAbsent(t, e, "the journal", journal)
	watch.requireAbsent(t, e, "the logs", e.logs.Bytes())
}

// answerJSON is a hostile front's answer in place of the simulator's.
func answerJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// failedOutcomes are the errors of the journal's failed outcomes.
func (e *env) failedOutcomes() []string {
	var out []string
	for _, r := range e.journalRecords() {
		if r.Outcome != nil && r.Outcome.Status == "failed" {
			out = append(out, r.Outcome.Error)
		}
	}
	return out
}

// A tenant (or a proxy) echoes the bearer token into the name of a token
// that a policy renames (patch namePrefix). The listed name carries
// secret.Redacted where the credential was, and a rename built from it
// sent the tenant "revoked-svc-<secret>-bot": the token's real name was
// overwritten with patjanitor's placeholder. A name is a value patjanitor
// sends back in a rename, so, as for a scope that held a credential, such
// a token is skipped as undecodable; the other token is renamed.
func TestHostileTenantEchoesTheAccessTokenInANameToRename(t *testing.T) {
	cfg := noLimits + `policies:
  - name: rename-stale
    mode: enforce
    match: {unusedFor: 90d}
    action: patch
    patch: {namePrefix: "revoked-"}
`
	var watch bearerWatch
	e := newEnv(t, cfg, envOpts{sim: idnsim.Options{EchoBearer: true}, wrap: watch.wrap})
	e.add("echo-name", e.own(), "svc-"+idnsim.EchoMarker+"-bot", 400*day, 200*day)
	e.add("plain", e.own(), "tok-plain", 400*day, 200*day)

	res, err := e.engine().Run(context.Background(), janitor.RunInput{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if p := patchedIDs(e.sim.Requests()); !mapKeysEqual(p, "plain") {
		t.Fatalf("patched %v, want only plain", keys(p))
	}
	for _, r := range e.mutations() {
		if strings.Contains(string(r.Body), secret.Redacted) || strings.Contains(string(r.Body), `\u003csecret\u003e`) {
			t.Errorf("the tenant was sent the placeholder: %s %s %s", r.Method, r.Path, r.Body)
		}
	}
	if tok, _ := e.sim.Token("echo-name"); tok.Name != "svc-"+idnsim.EchoMarker+"-bot" {
		t.Errorf("the token is named %q in the tenant now", tok.Name)
	}
	if tok, _ := e.sim.Token("plain"); tok.Name != "revoked-tok-plain" {
		t.Errorf("plain is named %q, want revoked-tok-plain", tok.Name)
	}
	skipped := false
	for _, s := range res.Plan.Skipped {
		if s.TokenID == "echo-name" {
			skipped = strings.HasPrefix(s.Reason, string(janitor.SkipUndecodable)+": ") && s.TokenName == "svc-"+secret.Redacted+"-bot"
		}
	}
	if !skipped {
		t.Errorf("echo-name is not skipped as undecodable: skipped %+v", res.Plan.Skipped)
	}
	for _, r := range e.journalRecords() {
		if r.TokenID == "echo-name" {
			t.Errorf("the journal holds a %s record for echo-name", r.Kind)
		}
	}
	journal, rerr := os.ReadFile(e.jpath)
	if rerr != nil {
		t.Fatal(rerr)
	}
	watch.requireAbsent(t, e, "the journal", journal)
	watch.requireAbsent(t, e, "the logs", e.logs.Bytes())
}

// An error answer's detailCode and trackingId were quoted whole: a tenant
// (or a proxy) answering a DELETE with a 400 whose detailCode is tens of
// kilobytes and whose trackingId holds a newline, terminal escapes and
// the access token put all of it into the run's error, the journal's
// outcome and the logs (the trackingId unquoted: a forged log line). They
// are scrubbed, then clipped like a message, and both quoted.
func TestHostileErrorDetailCodeHuge(t *testing.T) {
	var watch bearerWatch
	var e *env
	wrap := func(h http.Handler) http.Handler {
		return watch.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodDelete {
				h.ServeHTTP(w, r)
				return
			}
			tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			// The credentials sit well before the clip edge: the clip
			// alone would keep them. The rest is 60 KB of padding.
			detail := "500.1 " + tok + " " + e.admin.ClientSecret + " " + strings.Repeat("D", 60<<10)
			tracking := "abc\n2026-12-05T00:00:00Z INFO applied token_id=x\x1b[2J\x1b]0;pwned\x07 " + tok + " " + strings.Repeat("T", 2<<10)
			body, err := json.Marshal(map[string]any{"detailCode": detail, "trackingId": tracking,
				"messages": []map[string]string{{"locale": "en-US", "text": "Internal error"}}})
			if err != nil {
				t.Error(err)
			}
			answerJSON(w, http.StatusBadRequest, string(body))
		}))
	}
	e = newEnv(t, enforceDeleteStale, envOpts{wrap: wrap})
	ctx := context.Background()
	e.addStale("stale", 1, 1)

	pl, err := e.engine().Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.engine().Execute(ctx, pl)
	if err == nil {
		t.Fatal("a run whose DELETE failed succeeded")
	}
	e.requireNoMutations()
	if !e.present("stale-000") {
		t.Fatal("the token is gone")
	}
	failed := e.failedOutcomes()
	if len(failed) != 1 || res == nil || len(res.Items) != 1 {
		t.Fatalf("the journal's failed outcomes %q and the run's result %+v, want one failed item", failed, res)
	}
	for where, s := range map[string]string{"the item's error": res.Items[0].Detail, "the journal's outcome": failed[0]} {
		if len(s) > 4<<10 {
			t.Errorf("%s is %d bytes long", where, len(s))
		}
		if i := strings.IndexFunc(s, untrusted.Hidden); i >= 0 {
			t.Errorf("%s holds the raw control character %q: %.200q", where, s[i], s[i:])
		}
		for _, want := range []string{`detailCode "500.1 ` + secret.Redacted, `trackingId "abc\n2026-12-05`} {
			if !strings.Contains(s, want) {
				t.Errorf("%s does not show %s: %.300q", where, want, s)
			}
		}
		watch.requireAbsent(t, e, where, []byte(s))
	}
	journal, rerr := os.ReadFile(e.jpath)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if len(journal) > 64<<10 {
		t.Errorf("the journal is %d bytes after one failed DELETE", len(journal))
	}
	watch.requireAbsent(t, e, "the journal", journal)
	watch.requireAbsent(t, e, "the logs", e.logs.Bytes())
}
