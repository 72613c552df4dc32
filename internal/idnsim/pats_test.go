package idnsim

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// rights.yaml ids
const (
	idAdminAll    = "00000000000000000000000000000a01"
	idAdminNull   = "00000000000000000000000000000a02"
	idAdminRead   = "00000000000000000000000000000a03"
	idAdminManage = "00000000000000000000000000000a04"
	idBlindAll    = "00000000000000000000000000000b01"
	idUserAll     = "00000000000000000000000000000c01"
	idUserMyRead  = "00000000000000000000000000000c02"
	idUserMyMng   = "00000000000000000000000000000c03"
	idUserAllRead = "00000000000000000000000000000c04"
	idUserSources = "00000000000000000000000000000c05"
	idUnaManaged  = "00000000000000000000000000000d01"
	idOttoStale   = "00000000000000000000000000000e01"
	idOttoNever   = "00000000000000000000000000000e02"
	idOttoFresh   = "00000000000000000000000000000e03"
	ownerUna      = "0000000000000000000000000000aa01"
	ownerOtto     = "0000000000000000000000000000aa02"
)

func TestListRights(t *testing.T) {
	e := newScenarioEnv(t, "rights.yaml", Options{RateLimit: -1})
	all := func() []string {
		var ids []string
		for _, st := range e.sc.Tokens {
			ids = append(ids, st.Token.ID)
		}
		slices.Sort(ids)
		return ids
	}()
	without := func(ids []string, drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(ids), func(s string) bool { return slices.Contains(drop, s) })
	}
	unaTokens := []string{idUserAll, idUserMyRead, idUserMyMng, idUserAllRead, idUserSources, idUnaManaged}
	slices.Sort(unaTokens)
	tests := []struct {
		name   string
		caller string
		query  string
		status int
		want   []string
	}{
		{"org admin sp:scopes:all lists every owner", idAdminAll, "", 200, all},
		{"null scope means sp:scopes:all", idAdminNull, "", 200, all},
		{"org admin all-read scope", idAdminRead, "", 200, all},
		{"org admin all-manage scope", idAdminManage, "", 200, all},
		{"org admin without the managed right misses managed tokens", idBlindAll, "", 200, without(all, idUnaManaged)},
		{"org admin lists one owner", idAdminAll, "?owner-id=" + ownerOtto, 200, []string{idOttoStale, idOttoNever, idOttoFresh}},
		{"unknown owner lists nothing", idAdminAll, "?owner-id=ffffffffffffffffffffffffffffffff", 200, []string{}},
		{"user with sp:scopes:all cannot list every owner", idUserAll, "", 403, nil},
		{"user with sp:scopes:all cannot name an owner, even itself", idUserAll, "?owner-id=" + ownerUna, 403, nil},
		{"user all-read scope grants nothing outside the user level", idUserAllRead, "", 403, nil},
		{"user lists own with sp:scopes:all, managed hidden", idUserAll, "?owner-id=me", 200, without(unaTokens, idUnaManaged)},
		{"user lists own with my-read", idUserMyRead, "?owner-id=me", 200, without(unaTokens, idUnaManaged)},
		{"user lists own with my-manage", idUserMyMng, "?owner-id=me", 200, without(unaTokens, idUnaManaged)},
		{"fine-grained scope without PAT rights", idUserSources, "?owner-id=me", 403, nil},
		{"admin me", idAdminAll, "?owner-id=me", 200, []string{idAdminAll, idAdminNull, idAdminRead, idAdminManage}},
		{"unknown parameters are ignored", idAdminAll, "?owner-id=" + ownerOtto + "&limit=1&offset=2&sorters=name", 200, []string{idOttoStale, idOttoNever, idOttoFresh}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := e.login(tc.caller, e.secret(tc.caller))
			r := e.do("GET", "/v3/personal-access-tokens"+tc.query, tok, "", "")
			if tc.status != 200 {
				wantError(t, r, tc.status, "")
				return
			}
			var got []pat.Token
			r.json(t, &got)
			ids := []string{}
			for _, g := range got {
				ids = append(ids, g.ID)
			}
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(ids, want) {
				t.Fatalf("listed %v\nwant %v", ids, want)
			}
		})
	}
}

func TestListFilters(t *testing.T) {
	e := newScenarioEnv(t, "golden.yaml", Options{RateLimit: -1})
	tok := e.admin()
	list := func(filter string) []string {
		return e.listIDs("/v3/personal-access-tokens?"+url.Values{"filters": {filter}}.Encode(), tok)
	}
	// lastUsed le now-90d: the stale tokens, the one exactly at the cutoff,
	// never a never-used token.
	stale := list("lastUsed le 2026-08-28T03:00:00.000Z")
	wantStale := []string{
		"0000000000000000000000000000de01", "a1100000000000000000000000000101", "ad000000000000000000000000000b01",
		"ca700000000000000000000000000301", "ca700000000000000000000000000302", "da7e0000000000000000000000000403",
	}
	if !slices.Equal(stale, wantStale) {
		t.Errorf("lastUsed le cutoff: %v\nwant %v", stale, wantStale)
	}
	// One millisecond earlier drops the token used exactly at the cutoff.
	if got := list("lastUsed le 2026-08-28T02:59:59.999Z"); slices.Contains(got, "da7e0000000000000000000000000403") {
		t.Errorf("cutoff minus 1ms still lists the boundary token")
	}
	// Other RFC 3339 forms of the same instant are accepted.
	for _, f := range []string{"lastUsed le 2026-08-28T03:00:00Z", "lastUsed le 2026-08-28T05:00:00+02:00", "lastUsed le 2026-08-28T03:00:00.000000000Z"} {
		if got := list(f); !slices.Equal(got, wantStale) {
			t.Errorf("%s: %v", f, got)
		}
	}
	never := list("lastUsed isnull")
	wantNever := []string{"a1100000000000000000000000000103", "b0b00000000000000000000000000201", "da7e0000000000000000000000000402"}
	if !slices.Equal(never, wantNever) {
		t.Errorf("lastUsed isnull: %v\nwant %v", never, wantNever)
	}
	// '+' and %20 both decode to spaces.
	if got := e.listIDs("/v3/personal-access-tokens?filters=lastUsed%20isnull", tok); !slices.Equal(got, wantNever) {
		t.Errorf("%%20 form: %v", got)
	}
	if got := e.listIDs("/v3/personal-access-tokens?filters=", tok); len(got) != 15 {
		t.Errorf("empty filters lists %d tokens, want all 15", len(got))
	}

	bad := []struct{ filter, msg string }{
		{"name eq \"ci-deploy\"", `filtering on field "name" is not supported; supported: lastUsed le <date-time>, lastUsed isnull`},
		{"created le 2026-08-28T03:00:00.000Z", `filtering on field "created" is not supported; supported: lastUsed le <date-time>, lastUsed isnull`},
		{"lastUsed lt 2026-08-28T03:00:00.000Z", `operator "lt" is not supported for field "lastUsed"; supported: lastUsed le <date-time>, lastUsed isnull`},
		{"lastUsed ge 2026-08-28T03:00:00.000Z", `operator "ge" is not supported for field "lastUsed"; supported: lastUsed le <date-time>, lastUsed isnull`},
		{"pr lastUsed", `operator "pr" is not supported for field "lastUsed"; supported: lastUsed le <date-time>, lastUsed isnull`},
		{"lastUsed in (2026-08-28T03:00:00.000Z)", `operator "in" is not supported for field "lastUsed"; supported: lastUsed le <date-time>, lastUsed isnull`},
		{"lastUsed le \"2026-08-28T03:00:00.000Z\"", `operator "le" on lastUsed needs an unquoted RFC 3339 date-time, got string "2026-08-28T03:00:00.000Z"`},
		{"lastUsed le 42", `operator "le" on lastUsed needs an unquoted RFC 3339 date-time, got number 42`},
		{"lastUsed le 2026-08-28T03:00:00.000Z or lastUsed isnull", `composite operator "or" is not supported by this endpoint; supported: lastUsed le <date-time>, lastUsed isnull`},
		{"lastUsed isnull and lastUsed isnull", `composite operator "and" is not supported by this endpoint; supported: lastUsed le <date-time>, lastUsed isnull`},
		{"not lastUsed isnull", `composite operator "not" is not supported by this endpoint; supported: lastUsed le <date-time>, lastUsed isnull`},
		{"lastUsed LE 2026-08-28T03:00:00.000Z", `invalid filter "lastUsed LE 2026-08-28T03:00:00.000Z": operator "LE" must be lowercase at position 9`},
		{"lastUsed le", `invalid filter "lastUsed le": expected a value but found end of filter at position 11`},
		{"lastUsed le 2026-13-28T03:00:00.000Z", `invalid filter "lastUsed le 2026-13-28T03:00:00.000Z": invalid date-time "2026-13-28T03:00:00.000Z" (want RFC 3339, e.g. 2026-08-28T03:00:00.000Z) at position 12`},
		{"lastUsed le 2026-08-28", `invalid filter "lastUsed le 2026-08-28": unexpected value "2026-08-28" (strings must be in double quotes) at position 12`},
		{"(lastUsed isnull", `invalid filter "(lastUsed isnull": expected ")" but found end of filter at position 16`},
		{"lastUsed isnull)", `invalid filter "lastUsed isnull)": unexpected ")" after a complete expression (expected "and", "or" or end of filter) at position 15`},
		{"lastUsed", `invalid filter "lastUsed": expected an operator after field "lastUsed" but found end of filter at position 8`},
	}
	for _, tc := range bad {
		t.Run(tc.filter, func(t *testing.T) {
			r := e.do("GET", "/v3/personal-access-tokens?"+url.Values{"filters": {tc.filter}}.Encode(), tok, "", "")
			wantError(t, r, 400, tc.msg)
			var er ErrorResponse
			r.json(t, &er)
			if er.Messages[0].Text != tc.msg {
				t.Errorf("message\n got %s\nwant %s", er.Messages[0].Text, tc.msg)
			}
		})
	}
}

func TestPageCap(t *testing.T) {
	e := newEnv(t, Options{PageCap: 250, RateLimit: -1})
	e.sim.Seed(400, 3)
	if got := len(e.listIDs("/v3/personal-access-tokens", e.admin())); got != 250 {
		t.Fatalf("listed %d tokens, want the cap of 250", got)
	}
}

// Each version has its shape: v3 omits a missing expirationDate and has no
// userAwareTokenNeverExpires; v2025 and v1 write both, null included.
func TestVersionShapes(t *testing.T) {
	e := newScenarioEnv(t, "golden.yaml", Options{RateLimit: -1})
	tok := e.admin()
	const never = "b0b00000000000000000000000000202" // legacy-integration: null scope, no expiration
	find := func(path string) map[string]any {
		r := e.do("GET", path, tok, "", "")
		if r.status != 200 {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		var items []map[string]any
		r.json(t, &items)
		for _, it := range items {
			if it["id"] == never {
				return it
			}
		}
		t.Fatalf("%s: token %s missing", path, never)
		return nil
	}
	v3 := find("/v3/personal-access-tokens")
	if _, ok := v3["expirationDate"]; ok {
		t.Errorf("v3 writes expirationDate for a token without one: %v", v3)
	}
	if _, ok := v3["userAwareTokenNeverExpires"]; ok {
		t.Errorf("v3 writes userAwareTokenNeverExpires: %v", v3)
	}
	if v, ok := v3["scope"]; !ok || v != nil {
		t.Errorf("null scope written as %v (present %v)", v, ok)
	}
	if v3["lastUsed"] != "2026-11-01T07:00:00.000Z" || v3["created"] != "2024-08-15T07:00:00.000Z" {
		t.Errorf("timestamps: created %v lastUsed %v", v3["created"], v3["lastUsed"])
	}
	for _, path := range []string{"/v2025/personal-access-tokens", "/personal-access-tokens/v1"} {
		m := find(path)
		if v, ok := m["expirationDate"]; !ok || v != nil {
			t.Errorf("%s: expirationDate %v (present %v), want null", path, v, ok)
		}
		if m["userAwareTokenNeverExpires"] != true {
			t.Errorf("%s: userAwareTokenNeverExpires %v, want true", path, m["userAwareTokenNeverExpires"])
		}
	}
	// Every documented field of every item, with the documented types.
	r := e.do("GET", "/v2025/personal-access-tokens", tok, "", "")
	var items []map[string]any
	r.json(t, &items)
	for _, it := range items {
		for _, k := range []string{"id", "name", "scope", "owner", "created", "lastUsed", "managed", "accessTokenValiditySeconds", "expirationDate", "userAwareTokenNeverExpires"} {
			if _, ok := it[k]; !ok {
				t.Errorf("v2025 item %v lacks %s", it["id"], k)
			}
		}
		owner := it["owner"].(map[string]any)
		if owner["type"] != "IDENTITY" || owner["id"] == "" || owner["name"] == "" {
			t.Errorf("owner %v", owner)
		}
	}
}

func TestCreate(t *testing.T) {
	const ct = "application/json"
	tests := []struct {
		name    string
		version string
		body    string
		ct      string
		status  int
		msg     string
		check   func(t *testing.T, cr map[string]any)
	}{
		{name: "v3 minimal: scope sp:scopes:all, 43200 s, six months", version: "/v3", body: `{"name":"new"}`, status: 200,
			check: func(t *testing.T, cr map[string]any) {
				if fmt.Sprint(cr["scope"]) != "[sp:scopes:all]" || cr["accessTokenValiditySeconds"] != float64(43200) ||
					cr["expirationDate"] != "2027-05-26T03:00:00.000Z" || cr["created"] != "2026-11-26T03:00:00.000Z" {
					t.Errorf("create response %v", cr)
				}
				if s, _ := cr["secret"].(string); len(s) != 64 {
					t.Errorf("secret %q", s)
				}
			}},
		{name: "v3 explicit fields", version: "/v3", body: `{"name":"new","scope":["idn:sources:read"],"accessTokenValiditySeconds":900,"expirationDate":"2027-01-01T00:00:00.000Z"}`, status: 200,
			check: func(t *testing.T, cr map[string]any) {
				if fmt.Sprint(cr["scope"]) != "[idn:sources:read]" || cr["accessTokenValiditySeconds"] != float64(900) || cr["expirationDate"] != "2027-01-01T00:00:00.000Z" {
					t.Errorf("create response %v", cr)
				}
			}},
		{name: "null scope means the default", version: "/v3", body: `{"name":"new","scope":null}`, status: 200,
			check: func(t *testing.T, cr map[string]any) {
				if fmt.Sprint(cr["scope"]) != "[sp:scopes:all]" {
					t.Errorf("scope %v", cr["scope"])
				}
			}},
		{name: "v3 expiration beyond six months", version: "/v3", body: `{"name":"new","expirationDate":"2027-06-01T00:00:00.000Z"}`, status: 400, msg: "expirationDate must be between now and 6 months"},
		{name: "expiration in the past", version: "/v3", body: `{"name":"new","expirationDate":"2026-01-01T00:00:00.000Z"}`, status: 400, msg: "expirationDate must be in the future"},
		{name: "v2025 never expires", version: "/v2025", body: `{"name":"new","userAwareTokenNeverExpires":true}`, status: 200,
			check: func(t *testing.T, cr map[string]any) {
				if v, ok := cr["expirationDate"]; !ok || v != nil {
					t.Errorf("expirationDate %v", v)
				}
			}},
		{name: "v2025 far future", version: "/v2025", body: `{"name":"new","expirationDate":"2030-01-01T00:00:00.000Z"}`, status: 200},
		{name: "v2025 without expiration or acknowledgement", version: "/v2025", body: `{"name":"new"}`, status: 400, msg: "expirationDate is required unless userAwareTokenNeverExpires is true"},
		{name: "v1 without expiration or acknowledgement", version: "/personal-access-tokens/v1", body: `{"name":"new","userAwareTokenNeverExpires":false}`, status: 400, msg: "expirationDate is required"},
		{name: "validity too short", version: "/v3", body: `{"name":"new","accessTokenValiditySeconds":14}`, status: 400, msg: "accessTokenValiditySeconds must be an integer between 15 and 43200, got 14"},
		{name: "validity too long", version: "/v3", body: `{"name":"new","accessTokenValiditySeconds":43201}`, status: 400, msg: "got 43201"},
		{name: "validity not an integer", version: "/v3", body: `{"name":"new","accessTokenValiditySeconds":"60"}`, status: 400, msg: "accessTokenValiditySeconds must be an integer"},
		{name: "no name", version: "/v3", body: `{"scope":["a"]}`, status: 400, msg: "name is required"},
		{name: "empty scope", version: "/v3", body: `{"name":"new","scope":[]}`, status: 400, msg: "scope must hold at least one scope"},
		{name: "duplicate name", version: "/v3", body: `{"name":"admin-all-read"}`, status: 400, msg: `a personal access token named "admin-all-read" already exists for this owner`},
		{name: "not JSON", version: "/v3", body: `name=x`, status: 400, msg: "request body is not a JSON object"},
		{name: "wrong content type", version: "/v3", body: `{"name":"new"}`, ct: "text/plain", status: 400, msg: "Content-Type must be application/json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newScenarioEnv(t, "rights.yaml", Options{RateLimit: -1})
			tok := e.login(idAdminAll, e.secret(idAdminAll))
			path := tc.version + "/personal-access-tokens"
			if strings.HasPrefix(tc.version, "/personal-access-tokens") {
				path = tc.version
			}
			c := ct
			if tc.ct != "" {
				c = tc.ct
			}
			r := e.do("POST", path, tok, c, tc.body)
			if tc.status != 200 {
				wantError(t, r, tc.status, tc.msg)
				return
			}
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			var cr map[string]any
			r.json(t, &cr)
			if tc.check != nil {
				tc.check(t, cr)
			}
			// The token exists, belongs to the caller, and its secret logs in.
			got, ok := e.sim.Token(cr["id"].(string))
			if !ok || got.Owner.ID != "0000000000000000000000000000ad01" || got.LastUsed != nil {
				t.Fatalf("stored token %+v", got)
			}
			e.login(cr["id"].(string), cr["secret"].(string))
			// The secret is shown once: listings never carry it.
			list := e.do("GET", "/v3/personal-access-tokens?owner-id=me", tok, "", "")
			if strings.Contains(string(list.body), cr["secret"].(string)) || strings.Contains(string(list.body), "secret") {
				t.Fatal("a listing carries a secret")
			}
		})
	}
}

func TestCreateRightsAndCap(t *testing.T) {
	e := newScenarioEnv(t, "rights.yaml", Options{RateLimit: -1})
	// my-read cannot create.
	r := e.do("POST", "/v3/personal-access-tokens", e.login(idUserMyRead, e.secret(idUserMyRead)), "application/json", `{"name":"x"}`)
	wantError(t, r, 403, "needs sp:my-personal-access-tokens:manage")
	// Una has 5 unmanaged tokens (plus a managed one, not counted): 5 more fit, the 11th does not.
	tok := e.login(idUserMyMng, e.secret(idUserMyMng))
	for i := range 5 {
		if r := e.do("POST", "/v3/personal-access-tokens", tok, "application/json", fmt.Sprintf(`{"name":"extra-%d"}`, i)); r.status != 200 {
			t.Fatalf("token %d: %d %s", i, r.status, r.body)
		}
	}
	r = e.do("POST", "/v3/personal-access-tokens", tok, "application/json", `{"name":"one-too-many"}`)
	wantError(t, r, 400, "the owner already has the maximum of 10 personal access tokens")
}

func TestPatch(t *testing.T) {
	const jp = "application/json-patch+json"
	tests := []struct {
		name        string
		caller      string
		version     string
		id          string
		body        string
		ct          string
		patchOthers bool
		status      int
		msg         string
		check       func(t *testing.T, got map[string]any, stored pat.Token)
	}{
		{name: "own token name and scope", caller: idUserMyMng, version: "v3", id: idUserSources,
			body: `[{"op":"replace","path":"/name","value":"renamed"},{"op":"replace","path":"/scope","value":["sp:scopes:default"]}]`, status: 200,
			check: func(t *testing.T, got map[string]any, stored pat.Token) {
				if got["name"] != "renamed" || fmt.Sprint(got["scope"]) != "[sp:scopes:default]" || stored.Name != "renamed" {
					t.Errorf("patched %v / stored %+v", got, stored)
				}
				if _, ok := got["userAwareTokenNeverExpires"]; ok {
					t.Errorf("v3 response has userAwareTokenNeverExpires")
				}
			}},
		{name: "add replaces a member", caller: idUserMyMng, version: "v3", id: idUserSources,
			body: `[{"op":"add","path":"/name","value":"added"}]`, status: 200},
		// What a real tenant answers: an org admin with
		// sp:scopes:all gets this 403 on another user's PAT, in every version.
		{name: "another owner's token is refused by default", caller: idAdminAll, version: "v3", id: idOttoStale,
			body: `[{"op":"replace","path":"/scope","value":["sp:scopes:default"]}]`, status: 403, msg: Msg403Refused},
		{name: "another owner's token is refused in v1 too", caller: idAdminAll, version: "v1", id: idOttoStale,
			body: `[{"op":"replace","path":"/expirationDate","value":"2027-01-01T00:00:00.000Z"}]`, status: 403, msg: Msg403Refused},
		{name: "another owner's token with PatchOthers", caller: idAdminAll, version: "v3", id: idOttoStale, patchOthers: true,
			body: `[{"op":"replace","path":"/scope","value":["sp:scopes:default"]}]`, status: 200},
		{name: "PatchOthers still needs an org admin", caller: idUserAll, version: "v3", id: idOttoStale, patchOthers: true,
			body: `[{"op":"replace","path":"/name","value":"x"}]`, status: 403, msg: "needs sp:all-personal-access-tokens:manage"},
		{name: "all-manage scope alone without PatchOthers", caller: idAdminManage, version: "v3", id: idOttoStale,
			body: `[{"op":"replace","path":"/name","value":"x"}]`, status: 403, msg: "needs sp:my-personal-access-tokens:manage"},
		{name: "all-manage scope with PatchOthers", caller: idAdminManage, version: "v3", id: idOttoStale, patchOthers: true,
			body: `[{"op":"replace","path":"/name","value":"x"}]`, status: 200},
		{name: "my-read cannot patch", caller: idUserMyRead, version: "v3", id: idUserMyRead,
			body: `[{"op":"replace","path":"/name","value":"x"}]`, status: 403, msg: "needs sp:my-personal-access-tokens:manage"},
		{name: "unknown id", caller: idAdminAll, version: "v3", id: "ffffffffffffffffffffffffffffffff",
			body: `[{"op":"replace","path":"/name","value":"x"}]`, status: 404, msg: `personal access token "ffffffffffffffffffffffffffffffff" not found`},
		{name: "v3 cannot patch expirationDate", caller: idAdminAll, version: "v3", id: idAdminAll,
			body: `[{"op":"replace","path":"/expirationDate","value":"2027-01-01T00:00:00.000Z"}]`, status: 400, msg: "operation 0 (replace /expirationDate): path is not patchable; patchable: /name, /scope"},
		{name: "owner is not patchable", caller: idAdminAll, version: "v2025", id: idAdminAll,
			body: `[{"op":"replace","path":"/owner","value":{"id":"x"}}]`, status: 400, msg: "operation 0 (replace /owner): path is not patchable; patchable: /name, /scope, /expirationDate, /userAwareTokenNeverExpires"},
		{name: "move is refused", caller: idAdminAll, version: "v3", id: idAdminAll,
			body: `[{"op":"move","path":"/name","value":"x"}]`, status: 400, msg: "op move is not supported"},
		{name: "unknown op", caller: idAdminAll, version: "v3", id: idAdminAll,
			body: `[{"op":"frobnicate","path":"/name","value":"x"}]`, status: 400, msg: "op must be one of add, remove, replace, move, copy, test"},
		{name: "missing value", caller: idAdminAll, version: "v3", id: idAdminAll,
			body: `[{"op":"replace","path":"/name"}]`, status: 400, msg: "value is required"},
		{name: "empty scope", caller: idAdminAll, version: "v3", id: idAdminAll,
			body: `[{"op":"replace","path":"/scope","value":[]}]`, status: 400, msg: "scope must hold at least one scope"},
		{name: "empty patch", caller: idAdminAll, version: "v3", id: idAdminAll, body: `[]`, status: 400, msg: "the patch holds no operations"},
		{name: "not a list", caller: idAdminAll, version: "v3", id: idAdminAll, body: `{"op":"replace"}`, status: 400, msg: "request body is not a JSON Patch array"},
		{name: "plain JSON content type", caller: idAdminAll, version: "v3", id: idAdminAll, ct: "application/json",
			body: `[{"op":"replace","path":"/name","value":"x"}]`, status: 400, msg: "Content-Type must be application/json-patch+json"},
		{name: "duplicate name", caller: idAdminAll, version: "v3", id: idAdminAll,
			body: `[{"op":"replace","path":"/name","value":"admin-all-read"}]`, status: 400, msg: `a personal access token named "admin-all-read" already exists for this owner`},
		{name: "v2025 expirationDate", caller: idAdminAll, version: "v2025", id: idAdminAll,
			body: `[{"op":"replace","path":"/expirationDate","value":"2031-01-01T00:00:00.000Z"}]`, status: 200,
			check: func(t *testing.T, got map[string]any, stored pat.Token) {
				if got["expirationDate"] != "2031-01-01T00:00:00.000Z" {
					t.Errorf("expirationDate %v", got["expirationDate"])
				}
			}},
		{name: "v2025 null expiration needs acknowledgement", caller: idAdminAll, version: "v2025", id: idAdminAll,
			body: `[{"op":"replace","path":"/expirationDate","value":null}]`, status: 400, msg: "replacing expirationDate with null needs userAwareTokenNeverExpires true in the same patch"},
		{name: "v1 remove expiration needs acknowledgement", caller: idAdminAll, version: "v1", id: idAdminAll,
			body: `[{"op":"remove","path":"/expirationDate"}]`, status: 400, msg: "needs userAwareTokenNeverExpires true"},
		{name: "v2025 never expires", caller: idAdminAll, version: "v2025", id: idAdminAll,
			body: `[{"op":"replace","path":"/expirationDate","value":null},{"op":"replace","path":"/userAwareTokenNeverExpires","value":true}]`, status: 200,
			check: func(t *testing.T, got map[string]any, stored pat.Token) {
				if v, ok := got["expirationDate"]; !ok || v != nil || got["userAwareTokenNeverExpires"] != true || stored.ExpirationDate != nil {
					t.Errorf("patched %v", got)
				}
			}},
		{name: "v2025 past expiration", caller: idAdminAll, version: "v2025", id: idAdminAll,
			body: `[{"op":"replace","path":"/expirationDate","value":"2020-01-01T00:00:00.000Z"}]`, status: 400, msg: "expirationDate must be in the future"},
		{name: "managed token hidden from a caller who cannot see it", caller: idUserMyMng, version: "v3", id: idUnaManaged,
			body: `[{"op":"replace","path":"/name","value":"x"}]`, status: 404},
		{name: "atomic: a bad second op changes nothing", caller: idAdminAll, version: "v3", id: idAdminAll,
			body: `[{"op":"replace","path":"/name","value":"changed"},{"op":"replace","path":"/created","value":"x"}]`, status: 400, msg: "operation 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newScenarioEnv(t, "rights.yaml", Options{RateLimit: -1, PatchOthers: tc.patchOthers})
			tok := e.login(tc.caller, e.secret(tc.caller)) // marks the caller used
			before, _ := e.sim.Token(tc.id)
			path := "/" + tc.version + "/personal-access-tokens/" + tc.id
			if tc.version == "v1" {
				path = "/personal-access-tokens/v1/" + tc.id
			}
			ct := jp
			if tc.ct != "" {
				ct = tc.ct
			}
			r := e.do("PATCH", path, tok, ct, tc.body)
			after, _ := e.sim.Token(tc.id)
			if tc.status != 200 {
				wantError(t, r, tc.status, tc.msg)
				if fmt.Sprint(before) != fmt.Sprint(after) {
					t.Errorf("a refused patch changed the token:\n%+v\n%+v", before, after)
				}
				return
			}
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			var got map[string]any
			r.json(t, &got)
			if got["id"] != tc.id {
				t.Fatalf("patched %v", got)
			}
			if tc.check != nil {
				tc.check(t, got, after)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name   string
		caller string
		id     string
		status int
		msg    string
	}{
		{"org admin deletes another owner's token", idAdminAll, idOttoStale, 204, ""},
		{"all-manage scope as org admin", idAdminManage, idOttoStale, 204, ""},
		{"all-read scope cannot delete", idAdminRead, idOttoStale, 403, "needs sp:my-personal-access-tokens:manage or sp:all-personal-access-tokens:manage"},
		{"user deletes own token", idUserMyMng, idUserSources, 204, ""},
		{"user cannot delete another owner's token", idUserAll, idOttoStale, 403, "deleting another owner's token needs sp:all-personal-access-tokens:manage"},
		{"unknown id", idAdminAll, "ffffffffffffffffffffffffffffffff", 404, "not found"},
		{"managed token invisible to a blind admin", idBlindAll, idUnaManaged, 404, "not found"},
		{"managed token visible to the admin", idAdminAll, idUnaManaged, 204, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newScenarioEnv(t, "rights.yaml", Options{RateLimit: -1})
			tok := e.login(tc.caller, e.secret(tc.caller))
			r := e.do("DELETE", "/v3/personal-access-tokens/"+tc.id, tok, "", "")
			_, exists := e.sim.Token(tc.id)
			if tc.status != 204 {
				wantError(t, r, tc.status, tc.msg)
				return
			}
			if r.status != 204 || len(r.body) != 0 || exists {
				t.Fatalf("%d %q, token still exists: %v", r.status, r.body, exists)
			}
			// Deleting again: already gone.
			wantError(t, e.do("DELETE", "/v3/personal-access-tokens/"+tc.id, tok, "", ""), 404, "not found")
		})
	}
}

func TestRoutes(t *testing.T) {
	e := newEnv(t, Options{})
	tok := e.admin()
	tests := []struct {
		method, path string
		status       int
	}{
		{"GET", "/v3/personal-access-tokens/abc", 405},
		{"PUT", "/v3/personal-access-tokens", 405},
		{"GET", "/oauth/token", 405},
		{"GET", "/v4/personal-access-tokens", 404},
		{"GET", "/v3/personal-access-tokens/a/b", 404},
		{"GET", "/beta/personal-access-tokens", 404},
		{"GET", "/personal-access-tokens/v1", 200},
		{"GET", "/v2025/personal-access-tokens", 200},
	}
	for _, tc := range tests {
		r := e.do(tc.method, tc.path, tok, "", "")
		if r.status != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, r.status, tc.status)
		}
		if tc.status == 405 && r.header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tc.method, tc.path)
		}
	}
}

func TestOutOfBand(t *testing.T) {
	e := newEnv(t, Options{})
	lu := t0.Add(-48 * time.Hour)
	e.sim.Add(pat.Token{ID: "0000000000000000000000000000beef", Name: "oob", Owner: pat.Owner{ID: "someone", Name: "Some One"},
		Scope: pat.ScopesOf("a"), LastUsed: &lu}, "")
	got, ok := e.sim.Token("0000000000000000000000000000beef")
	if !ok || got.Owner.Type != "IDENTITY" || got.AccessTokenValiditySeconds != 43200 || !got.Created.Equal(t0) {
		t.Fatalf("added %+v", got)
	}
	toks := e.sim.Tokens()
	if len(toks) != 2 || !slices.IsSortedFunc(toks, func(a, b pat.Token) int { return strings.Compare(a.ID, b.ID) }) {
		t.Fatalf("tokens %v", toks)
	}
	e.sim.Remove("0000000000000000000000000000beef")
	if _, ok := e.sim.Token("0000000000000000000000000000beef"); ok {
		t.Fatal("removed token still there")
	}
	// Returned tokens are copies.
	toks = e.sim.Tokens()
	toks[0].Name = "mutated"
	if e.sim.Tokens()[0].Name == "mutated" {
		t.Fatal("Tokens returns shared state")
	}

}
