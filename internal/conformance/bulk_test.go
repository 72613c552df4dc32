package conformance

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"gopkg.in/yaml.v3"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/pat"
)

// bulkFragment is the bulk-update operation excerpted from the golang-sdk's
// v1 spec; it is not in the published api-specs yet.
const bulkFragment = "golang-sdk-b6dc65ac-pat-v1-bulk-update.fragment.yaml"

// loadBulkSpec builds a document from pat-v1.openapi.yaml plus the fragment:
// the fragment's path and request schema are added, and the names it refers
// to (GetPersonalAccessTokenResponse, JsonPatchOperation, responses 400-500),
// which its header says are identical to the v1 file's, are pointed at the v1
// file's (lower-case) components.
func loadBulkSpec(t *testing.T, base string) routers.Router {
	t.Helper()
	dir := specDir(t)
	frag, err := os.ReadFile(filepath.Join(dir, bulkFragment))
	if err != nil {
		t.Skipf("the bulk-update fragment is absent: %v", err)
	}
	v1, err := os.ReadFile(filepath.Join(dir, "pat-v1.openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc, fr map[string]any
	if err := yaml.Unmarshal(v1, &doc); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(frag, &fr); err != nil {
		t.Fatal(err)
	}
	paths := doc["paths"].(map[string]any)
	for p, item := range fr["paths"].(map[string]any) {
		// "This operation is also accessible via POST to the same path;
		// both methods behave identically" (the fragment declares only
		// PATCH): POST gets a copy of the PATCH operation.
		ops := item.(map[string]any)
		post := map[string]any{}
		for k, v := range ops["patch"].(map[string]any) {
			post[k] = v
		}
		post["operationId"] = "updateBulkPersonalAccessTokensV1Post"
		ops["post"] = post
		paths[p] = ops
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for name, s := range fr["components"].(map[string]any)["schemas"].(map[string]any) {
		schemas[name] = s
	}
	schemas["GetPersonalAccessTokenResponse"] = map[string]any{"$ref": "#/components/schemas/getpersonalaccesstokenresponse"}
	schemas["JsonPatchOperation"] = map[string]any{"$ref": "#/components/schemas/jsonpatchoperation"}
	merged, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	spec, err := loader.LoadFromData(merged)
	if err != nil {
		t.Fatalf("loading v1 + the bulk-update fragment: %v", err)
	}
	if spec.Paths.Value("/personal-access-tokens/v1/bulk-update") == nil {
		t.Fatal("the merged spec has no bulk-update path")
	}
	spec.Servers = openapi3.Servers{{URL: base}}
	for _, item := range spec.Paths.Map() {
		item.Servers = nil
		for _, op := range item.Operations() {
			op.Servers = nil
		}
	}
	router, err := legacy.NewRouter(spec, openapi3.DisableExamplesValidation(), openapi3.DisableSchemaDefaultsValidation())
	if err != nil {
		t.Fatalf("routing: %v", err)
	}
	return router
}

// TestBulkUpdateConformance validates every bulk-update request the client
// sends (for each listing version: the bulk update is v1's alone) and every
// answer of the simulator against the fragment: 200 (PATCH and POST, the
// tokens sorted by id), 400 (unknown id, a path outside the two allowed, 26
// ids), 403 (no org admin) and 429.
func TestBulkUpdateConformance(t *testing.T) {
	for _, version := range []pat.APIVersion{pat.V3, pat.V2025, pat.V1} {
		t.Run(string(version), func(t *testing.T) {
			e := newEnv(t, version, idnsim.Options{})
			router := loadBulkSpec(t, e.srv.URL)
			ctx := t.Context()
			admin := e.sim.Admin()
			self, _ := e.sim.Token(admin.ClientID)
			var others []string
			for _, tok := range e.sim.Tokens() {
				if tok.Owner.ID != self.Owner.ID && !tok.Managed && len(others) < 3 {
					others = append(others, tok.ID)
				}
			}
			exp := time.Now().Add(30 * 24 * time.Hour)
			expire := []pat.PatchOp{pat.SetExpiration(exp)}
			got, err := e.client.BulkUpdateTokens(ctx, others, expire)
			if err != nil || len(got) != len(others) {
				t.Fatalf("bulk update: %d tokens, %v", len(got), err)
			}
			never := []pat.PatchOp{pat.SetNeverExpires(true)}
			if _, err := e.client.BulkUpdateTokens(ctx, others[:1], never); err != nil {
				t.Fatalf("bulk update to never expire: %v", err)
			}
			if _, err := e.client.BulkUpdateTokens(ctx, []string{"ffffffffffffffffffffffffffffffff"}, expire); err == nil {
				t.Fatal("unknown id accepted")
			}
			e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpBulkUpdateTokens, Status: 403, Times: 1})
			if _, err := e.client.BulkUpdateTokens(ctx, others, expire); err == nil {
				t.Fatal("injected 403 not reported")
			}
			e.sim.InjectFault(idnsim.Fault{Operation: idnsim.OpBulkUpdateTokens, Status: 429, RetryAfter: "1", Times: 1})
			if _, err := e.client.BulkUpdateTokens(ctx, others, expire); err != nil {
				t.Fatalf("bulk update after a 429: %v", err)
			}
			// Requests the client refuses to send, sent by hand: the
			// simulator's 400 must conform too. And POST, which behaves
			// as PATCH.
			bearer := accessToken(t, e)
			raw := func(method, body string) {
				t.Helper()
				req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+api.BulkPath, strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+bearer)
				req.Header.Set("Content-Type", "application/json")
				resp, err := (&http.Client{Transport: e.rec}).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
			}
			raw(http.MethodPost, fmt.Sprintf(`{"ids":[%q],"patch":[{"op":"replace","path":"/expirationDate","value":%q}]}`, others[0], pat.FormatTime(exp)))
			raw(http.MethodPatch, fmt.Sprintf(`{"ids":[%q],"patch":[{"op":"replace","path":"/name","value":"x"}]}`, others[0]))

			seen := map[string]bool{}
			for _, ex := range e.rec.take() {
				if ex.req.URL.Path != api.BulkPath {
					continue
				}
				seen[fmt.Sprintf("%s %d", ex.req.Method, ex.status)] = true
				for _, p := range validate(router, ex) {
					t.Error(p)
				}
				if ex.status == http.StatusOK && bytes.Contains(ex.body, []byte("userAwareTokenNeverExpires")) {
					t.Errorf("a bulk answer carries userAwareTokenNeverExpires: %s", clip(ex.body))
				}
			}
			for _, want := range []string{"PATCH 200", "POST 200", "PATCH 400", "PATCH 403", "PATCH 429"} {
				if !seen[want] {
					t.Errorf("no %s bulk-update exchange was validated (seen %v)", want, seen)
				}
			}
		})
	}
}

// accessToken logs in as the simulator's admin, outside the recorder.
func accessToken(t *testing.T, e *env) string {
	t.Helper()
	admin := e.sim.Admin()
	resp, err := http.PostForm(e.srv.URL+"/oauth/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {admin.ClientID}, "client_secret": {admin.ClientSecret},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	const key = `"access_token":"`
	s := buf.String()
	i := strings.Index(s, key)
	if i < 0 {
		t.Fatalf("token response %s", s)
	}
	s = s[i+len(key):]
	return s[:strings.Index(s, `"`)]
}
