package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// specEnv names the environment variable that points at the spec directory.
const specEnv = "PATJANITOR_SPEC_DIR"

// specDir returns the directory of the OpenAPI files: $PATJANITOR_SPEC_DIR, or
// ../shared/ref/spec beside the repository root (the directory holding
// go.mod). The test skips, saying why, when the files are not there.
func specDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(specEnv)
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			t.Skipf("conformance: cannot find the repository root (%v); set %s to the spec directory", err, specEnv)
		}
		dir = filepath.Join(root, "..", "shared", "ref", "spec")
	}
	if _, err := os.Stat(filepath.Join(dir, "pat-v3.openapi.yaml")); err != nil {
		t.Skipf("conformance: the OpenAPI files are absent (%v); set %s to the directory holding pat-v3.openapi.yaml to run these tests", err, specEnv)
	}
	return dir
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// loadSpec loads one spec file and routes it at base: the spec's servers
// (https://{tenant}.api.identitynow.com/v3 and the like) are replaced by the
// test server's URL plus the version path the real servers have, so that
// paths match as they would against a tenant. Example and default validation
// are off: the spec has examples that do not match their schemas and
// `default: 6 Months from created date` on a date-time.
//
// only, if given, keeps just those paths: the full v3 spec fails validation
// elsewhere (POST /campaign-filters/{id} lacks a path parameter).
func loadSpec(t *testing.T, file, base string, only ...string) routers.Router {
	t.Helper()
	parsed, err := parseSpec(filepath.Join(specDir(t), file))
	if err != nil {
		t.Fatalf("loading %s: %v", file, err)
	}
	// A copy to route at base; the operations' servers, cleared below, are
	// cleared the same way by every caller.
	doc := new(openapi3.T)
	*doc = *parsed
	if len(only) > 0 {
		var keep []openapi3.NewPathsOption
		for _, p := range only {
			item := doc.Paths.Value(p)
			if item == nil {
				t.Fatalf("%s has no path %s", file, p)
			}
			keep = append(keep, openapi3.WithPath(p, item))
		}
		doc.Paths = openapi3.NewPaths(keep...)
	}
	doc.Servers = openapi3.Servers{{URL: base}}
	for _, item := range doc.Paths.Map() {
		item.Servers = nil
		for _, op := range item.Operations() {
			op.Servers = nil
		}
	}
	router, err := legacy.NewRouter(doc, openapi3.DisableExamplesValidation(), openapi3.DisableSchemaDefaultsValidation())
	if err != nil {
		t.Fatalf("routing %s: %v", file, err)
	}
	return router
}

// parsedSpecs holds each spec file parsed once per test binary: the full v3
// spec (1.5 MB) takes a second to load under the race detector, and four
// tests route parts of it.
var parsedSpecs sync.Map // path -> func() (*openapi3.T, error)

func parseSpec(path string) (*openapi3.T, error) {
	load, _ := parsedSpecs.LoadOrStore(path, sync.OnceValues(func() (*openapi3.T, error) {
		return openapi3.NewLoader().LoadFromFile(path)
	}))
	return load.(func() (*openapi3.T, error))()
}

// exchange is one request the client sent and the response it got.
type exchange struct {
	req     *http.Request
	reqBody []byte
	status  int
	header  http.Header
	body    []byte
}

// recorder is the client's transport: it keeps a copy of every exchange.
type recorder struct {
	mu        sync.Mutex
	exchanges []exchange
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	r.mu.Lock()
	r.exchanges = append(r.exchanges, exchange{req: req.Clone(context.Background()), reqBody: reqBody, status: resp.StatusCode, header: resp.Header.Clone(), body: body})
	r.mu.Unlock()
	return resp, nil
}

func (r *recorder) take() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.exchanges
	r.exchanges = nil
	return out
}

// requireBearer is the AuthenticationFunc for userAuth: the client must send
// a bearer token (what the tenant makes of it is the response's business).
func requireBearer(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if !strings.HasPrefix(h, "Bearer ") || len(h) == len("Bearer ") {
		return fmt.Errorf("no bearer token for security scheme %s", in.SecuritySchemeName)
	}
	return nil
}

// validate checks one exchange against router: the request, then the response
// (whose status must be one the operation declares). It returns the problems.
func validate(router routers.Router, ex exchange) []string {
	ctx := context.Background()
	req := ex.req.Clone(ctx)
	req.Body = io.NopCloser(bytes.NewReader(ex.reqBody))
	route, params, err := router.FindRoute(req)
	if err != nil {
		return []string{fmt.Sprintf("%s %s: no such operation in the spec: %v", req.Method, req.URL.Path, err)}
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:    requireBearer,
		IncludeResponseStatus: true,
		MultiError:            true,
		SkipSettingDefaults:   true,
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	var problems []string
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
		problems = append(problems, fmt.Sprintf("request %s %s?%s body %s: %v", req.Method, req.URL.Path, req.URL.RawQuery, clip(ex.reqBody), err))
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: ex.status, Header: ex.header,
		Body: io.NopCloser(bytes.NewReader(ex.body)), Options: opts,
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		problems = append(problems, fmt.Sprintf("response %d to %s %s, body %s: %v", ex.status, req.Method, req.URL.Path, clip(ex.body), err))
	}
	return problems
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// env is a simulated tenant on loopback with a recorded client logged in as
// its admin.
type env struct {
	sim    *idnsim.Sim
	srv    *httptest.Server
	rec    *recorder
	client *api.Client
}

func newEnv(t *testing.T, version pat.APIVersion, opts idnsim.Options) *env {
	t.Helper()
	sim := idnsim.New(opts)
	sim.Seed(40, 11)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	rec := &recorder{}
	admin := sim.Admin()
	c, err := api.New(api.Config{
		BaseURL: srv.URL, Version: version,
		ClientID: admin.ClientID, ClientSecret: secret.New(admin.ClientSecret),
		HTTPClient: &http.Client{Transport: rec},
		RateLimit:  api.RateLimit{Requests: -1},
		Sleep:      func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{sim: sim, srv: srv, rec: rec, client: c}
}

// basePath is where each version's PAT paths hang off the tenant.
func basePath(v pat.APIVersion) string {
	switch v {
	case pat.V2025:
		return "/v2025"
	case pat.V1:
		return ""
	}
	return "/v3"
}

// TestPATConformance drives every PAT operation and the documented error
// statuses through the client against the simulator, for each API version,
// and validates every request and response against that version's spec.
func TestPATConformance(t *testing.T) {
	for _, tt := range []struct {
		version pat.APIVersion
		file    string
	}{
		{pat.V3, "pat-v3.openapi.yaml"},
		{pat.V2025, "pat-v2025.openapi.yaml"},
		{pat.V1, "pat-v1.openapi.yaml"},
	} {
		t.Run(string(tt.version), func(t *testing.T) {
			e := newEnv(t, tt.version, idnsim.Options{})
			router := loadSpec(t, tt.file, e.srv.URL+basePath(tt.version))
			oauth := loadSpec(t, "oauth.openapi.yaml", e.srv.URL)
			statuses := exercise(t, e, tt.version)

			var problems []string
			seen := map[string]bool{}
			for _, ex := range e.rec.take() {
				r := router
				if ex.req.URL.Path == "/oauth/token" {
					r = oauth
				}
				seen[fmt.Sprintf("%s %d", opName(ex.req), ex.status)] = true
				found := validate(r, ex)
				if len(found) > 0 && neverExpiresCreate(r, ex) {
					t.Logf("known spec inconsistency, not a simulator fault: %s declares CreatePersonalAccessTokenResponse.expirationDate required and not nullable, yet a token created with userAwareTokenNeverExpires has no expiration date; the simulator sends null (the response is otherwise conformant)", tt.file)
					continue
				}
				problems = append(problems, found...)
			}
			for _, p := range problems {
				t.Error(p)
			}
			for _, want := range statuses {
				if !seen[want] {
					t.Errorf("no %s exchange was validated (seen: %v)", want, seen)
				}
			}
		})
	}
}

// neverExpiresCreate reports whether ex is the create of a never-expiring
// token (v2025, v1) whose only violation is "expirationDate": null: the same
// exchange with a date in its place validates cleanly.
func neverExpiresCreate(router routers.Router, ex exchange) bool {
	if ex.req.Method != http.MethodPost || ex.status != http.StatusOK ||
		!bytes.Contains(ex.reqBody, []byte(`"userAwareTokenNeverExpires":true`)) ||
		!bytes.Contains(ex.body, []byte(`"expirationDate":null`)) {
		return false
	}
	fixed := ex
	fixed.body = bytes.Replace(ex.body, []byte(`"expirationDate":null`), []byte(`"expirationDate":"2099-01-01T00:00:00.000Z"`), 1)
	return len(validate(router, fixed)) == 0
}

func opName(r *http.Request) string {
	switch {
	case r.URL.Path == "/oauth/token":
		return "token"
	case strings.Contains(r.URL.Path, "public-identities"):
		return "identities"
	}
	return r.Method
}

// exercise runs the operations and returns the "METHOD status" pairs that
// must have been seen.
func exercise(t *testing.T, e *env, version pat.APIVersion) []string {
	t.Helper()
	ctx := t.Context()
	c := e.client
	now := time.Now()
	admin := e.sim.Admin().ClientID
	self, _ := e.sim.Token(admin)

	mustList := func(opts api.ListOptions) []pat.Token {
		t.Helper()
		toks, err := c.ListTokens(ctx, opts)
		if err != nil {
			t.Fatalf("list %+v: %v", opts, err)
		}
		return toks
	}
	all := mustList(api.ListOptions{})
	mustList(api.ListOptions{Filters: api.Filter(pat.Listing{Kind: pat.ListLastUsedBefore, Cutoff: now.AddDate(0, 0, -90)})})
	mustList(api.ListOptions{Filters: api.Filter(pat.Listing{Kind: pat.ListNeverUsed})})
	mustList(api.ListOptions{OwnerID: "me"})
	mustList(api.ListOptions{OwnerID: self.Owner.ID, Filters: "lastUsed isnull"})

	// A filter the endpoint does not support: 400 with an ErrorResponseDto.
	if _, err := c.ListTokens(ctx, api.ListOptions{Filters: `name eq "x"`}); err == nil {
		t.Fatal("unsupported filter accepted")
	}

	// Create with every field the version has.
	req := api.CreateTokenRequest{Name: "conformance", Scope: []string{"sp:my-personal-access-tokens:manage"}, AccessTokenValiditySeconds: 900}
	exp := now.Add(30 * 24 * time.Hour)
	req.ExpirationDate = &exp
	created, err := c.CreateToken(ctx, req)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := c.CreateToken(ctx, api.CreateTokenRequest{Name: "conformance-default-scope"}); version == pat.V3 && err != nil {
		t.Fatalf("create with defaults: %v", err)
	}
	if version.ExpirationWritable() {
		never := true
		if _, err := c.CreateToken(ctx, api.CreateTokenRequest{Name: "conformance-never-expires", UserAwareTokenNeverExpires: &never}); err != nil {
			t.Fatalf("create a never-expiring token: %v", err)
		}
	}

	// Patch: own token (200), another owner's (403), unknown (404).
	ops := []pat.PatchOp{pat.Rename("conformance-renamed"), pat.SetScopes([]string{"sp:scopes:all"})}
	if _, err := c.PatchToken(ctx, created.Token.ID, ops); err != nil {
		t.Fatalf("patch own token: %v", err)
	}
	if version.ExpirationWritable() {
		if _, err := c.PatchToken(ctx, created.Token.ID, []pat.PatchOp{pat.SetExpiration(now.Add(60 * 24 * time.Hour))}); err != nil {
			t.Fatalf("patch expirationDate: %v", err)
		}
	}
	var other string
	for _, tok := range all {
		if tok.Owner.ID != self.Owner.ID {
			other = tok.ID
			break
		}
	}
	if _, err := c.PatchToken(ctx, other, ops[:1]); !errors.Is(err, api.ErrForbidden) {
		t.Fatalf("patch of another owner's token: %v", err)
	}
	if _, err := c.PatchToken(ctx, "ffffffffffffffffffffffffffffffff", ops[:1]); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("patch of an unknown token: %v", err)
	}

	// Delete (204) and delete again (404).
	if err := c.DeleteToken(ctx, created.Token.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := c.DeleteToken(ctx, created.Token.ID); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}

	// 401 (then the client refreshes), 429 (then it waits), 500 (then it
	// retries): the tenant's error bodies as the client meets them.
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, Status: 401, Times: 1})
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpDeleteToken, Status: 429, Times: 1})
	e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpPatchToken, Status: 500, Times: 1})
	mustList(api.ListOptions{})
	if err := c.DeleteToken(ctx, "ffffffffffffffffffffffffffffffff"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("delete after 429: %v", err)
	}
	if _, err := c.PatchToken(ctx, admin, ops[:1]); err != nil {
		t.Fatalf("patch after 500: %v", err)
	}
	// The tenant's own rate limiter.
	e.sim.ClearFaults()

	return []string{"token 200", "GET 200", "GET 400", "GET 401", "POST 200", "PATCH 200", "PATCH 403", "PATCH 404", "PATCH 500", "DELETE 204", "DELETE 404", "DELETE 429"}
}

// TestRateLimitedConformance: the simulator's own 429 (not an injected one)
// conforms too, Retry-After included.
func TestRateLimitedConformance(t *testing.T) {
	e := newEnv(t, pat.V3, idnsim.Options{RateLimit: 2, RateWindow: time.Hour})
	router := loadSpec(t, "pat-v3.openapi.yaml", e.srv.URL+"/v3")
	c, err := api.New(api.Config{
		BaseURL: e.srv.URL, ClientID: e.sim.Admin().ClientID, ClientSecret: secret.New(e.sim.Admin().ClientSecret),
		HTTPClient: &http.Client{Transport: e.rec}, RateLimit: api.RateLimit{Requests: -1}, MaxAttempts: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		_, err = c.ListTokens(t.Context(), api.ListOptions{})
	}
	if !errors.Is(err, api.ErrRateLimited) {
		t.Fatalf("third request: %v", err)
	}
	var saw429 bool
	for _, ex := range e.rec.take() {
		if ex.req.URL.Path == "/oauth/token" {
			continue
		}
		if ex.status == http.StatusTooManyRequests {
			saw429 = true
			if ex.header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		}
		for _, p := range validate(router, ex) {
			t.Error(p)
		}
	}
	if !saw429 {
		t.Fatal("no 429 was validated")
	}
}

// TestPublicIdentitiesConformance validates the owner lookup against the full
// v3 spec (getPublicIdentities), filter syntax included.
func TestPublicIdentitiesConformance(t *testing.T) {
	if _, err := os.Stat(filepath.Join(specDir(t), "sailpoint-api.v3.full.openapi.yaml")); err != nil {
		t.Skipf("the full v3 spec is absent: %v", err)
	}
	e := newEnv(t, pat.V3, idnsim.Options{})
	router := loadSpec(t, "sailpoint-api.v3.full.openapi.yaml", e.srv.URL+"/v3", "/public-identities")
	var ids []string
	for _, tok := range e.sim.Tokens() {
		ids = append(ids, tok.Owner.ID)
	}
	ids = append(ids, "deadbeefdeadbeefdeadbeefdeadbeef")
	got, err := e.client.ListPublicIdentities(t.Context(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 {
		t.Fatal("no identities found")
	}
	n := 0
	for _, ex := range e.rec.take() {
		if ex.req.URL.Path == "/oauth/token" {
			continue
		}
		n++
		for _, p := range validate(router, ex) {
			t.Error(p)
		}
	}
	if n == 0 {
		t.Fatal("no lookup was validated")
	}
}

// TestValidatorCatchesViolations makes sure the validation above can fail: a
// response and a request that break the spec are reported.
func TestValidatorCatchesViolations(t *testing.T) {
	e := newEnv(t, pat.V3, idnsim.Options{})
	router := loadSpec(t, "pat-v3.openapi.yaml", e.srv.URL+"/v3")
	for _, body := range []string{
		`[{"id":5,"name":"n","scope":null,"owner":{},"created":"2026-01-02T03:04:05.000Z"}]`,                // id not a string
		`[{"id":"a","name":"n","scope":null,"owner":{"type":"USER"},"created":"2026-01-02T03:04:05.000Z"}]`, // owner type outside the enum
		`[{"id":"a","name":"n","owner":{},"created":"2026-01-02T03:04:05.000Z"}]`,                           // scope missing (required)
		`{"items":[]}`,
	} {
		e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpListTokens, Status: 200, Body: body, Times: 1})
		_, _ = e.client.ListTokens(t.Context(), api.ListOptions{})
		var problems []string
		for _, ex := range e.rec.take() {
			if ex.req.URL.Path != "/oauth/token" {
				problems = append(problems, validate(router, ex)...)
			}
		}
		if len(problems) == 0 {
			t.Errorf("response %s passed validation", body)
		}
	}
	// A request the spec does not allow: PATCH with a plain JSON content type.
	req := httptest.NewRequest(http.MethodPatch, e.srv.URL+"/v3/personal-access-tokens/abc", strings.NewReader(`[{"op":"replace","path":"/name","value":"x"}]`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer x")
	problems := validate(router, exchange{req: req, reqBody: []byte(`[{"op":"replace","path":"/name","value":"x"}]`), status: 200, header: http.Header{"Content-Type": {"application/json"}}, body: []byte(`{"id":"abc","name":"x","scope":null,"owner":{},"created":"2026-01-02T03:04:05.000Z"}`)})
	if len(problems) == 0 {
		t.Error("a PATCH with Content-Type application/json passed validation")
	}
	// And a request without a bearer token.
	req = httptest.NewRequest(http.MethodGet, e.srv.URL+"/v3/personal-access-tokens", nil)
	if problems := validate(router, exchange{req: req, status: 200, header: http.Header{"Content-Type": {"application/json"}}, body: []byte(`[]`)}); len(problems) == 0 {
		t.Error("a request without a bearer token passed validation")
	}
}

// TestPublicIdentitiesV1Conformance: with apiVersion v1 the owner lookups and
// the partial-view probe use /public-identities/v1. The spec files here have
// no v1 public-identities document; the versioning migration table maps the
// v3 operation to it unchanged, so each v1 exchange is validated against the
// v3 operation (the path rewritten, nothing else).
func TestPublicIdentitiesV1Conformance(t *testing.T) {
	if _, err := os.Stat(filepath.Join(specDir(t), "sailpoint-api.v3.full.openapi.yaml")); err != nil {
		t.Skipf("the full v3 spec is absent: %v", err)
	}
	e := newEnv(t, pat.V1, idnsim.Options{})
	router := loadSpec(t, "sailpoint-api.v3.full.openapi.yaml", e.srv.URL+"/v3", "/public-identities")
	var ids []string
	for _, tok := range e.sim.Tokens() {
		ids = append(ids, tok.Owner.ID)
	}
	if got, err := e.client.ListPublicIdentities(t.Context(), ids); err != nil || len(got) == 0 {
		t.Fatalf("lookup: %v %v", got, err)
	}
	caller, err := e.client.Caller(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if others, err := e.client.OtherIdentities(t.Context(), caller.IdentityID); err != nil || !others {
		t.Fatalf("probe: %v %v", others, err)
	}
	n := 0
	for _, ex := range e.rec.take() {
		if ex.req.URL.Path == "/oauth/token" {
			continue
		}
		if ex.req.URL.Path != "/public-identities/v1" {
			t.Errorf("apiVersion v1 sent %s", ex.req.URL.Path)
			continue
		}
		n++
		r := ex.req.Clone(t.Context())
		r.URL.Path = "/v3/public-identities"
		ex.req = r
		for _, p := range validate(router, ex) {
			t.Error(p)
		}
	}
	if n < 2 {
		t.Fatalf("%d v1 lookups validated, want the lookup and the probe", n)
	}
}
