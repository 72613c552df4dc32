package idnsim

import (
	"fmt"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/pat"
)

const bulkPath = "/personal-access-tokens/v1/bulk-update"

func TestBulkUpdate(t *testing.T) {
	const exp = "2027-01-01T00:00:00.000Z"
	body := func(ids ...string) string {
		return `{"ids":["` + strings.Join(ids, `","`) + `"],"patch":[{"op":"replace","path":"/expirationDate","value":"` + exp + `"}]}`
	}
	manyIDs := func(n int) []string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("%032x", i+1)
		}
		return ids
	}
	tests := []struct {
		name   string
		caller string
		method string
		ct     string
		body   string
		status int
		msg    string
		want   []string // ids answered, in order
	}{
		{name: "org admin expires other owners' tokens, answer sorted by id", caller: idAdminAll, method: "PATCH",
			body: body(idOttoNever, idOttoStale), status: 200, want: []string{idOttoStale, idOttoNever}},
		{name: "POST behaves identically", caller: idAdminAll, method: "POST",
			body: body(idOttoStale), status: 200, want: []string{idOttoStale}},
		{name: "all-manage scope of an org admin", caller: idAdminManage, method: "PATCH",
			body: body(idOttoStale), status: 200, want: []string{idOttoStale}},
		{name: "all-read scope is not enough", caller: idAdminRead, method: "PATCH",
			body: body(idOttoStale), status: 403, msg: Msg403Refused},
		{name: "not an org admin", caller: idUserAll, method: "PATCH",
			body: body(idOttoStale), status: 403, msg: "idn:all-personal-access-tokens:update"},
		{name: "json-patch content type is refused", caller: idAdminAll, method: "PATCH", ct: "application/json-patch+json",
			body: body(idOttoStale), status: 400, msg: "Content-Type must be application/json"},
		{name: "name is not allowed", caller: idAdminAll, method: "PATCH",
			body: `{"ids":["` + idOttoStale + `"],"patch":[{"op":"replace","path":"/name","value":"x"}]}`, status: 400,
			msg: "only /expirationDate and /userAwareTokenNeverExpires may be updated in bulk"},
		{name: "scope is not allowed", caller: idAdminAll, method: "PATCH",
			body: `{"ids":["` + idOttoStale + `"],"patch":[{"op":"replace","path":"/scope","value":["a"]}]}`, status: 400,
			msg: "only /expirationDate and /userAwareTokenNeverExpires"},
		{name: "26 ids", caller: idAdminAll, method: "PATCH", body: body(manyIDs(26)...), status: 400,
			msg: "at most 25 tokens can be updated per request"},
		{name: "no ids", caller: idAdminAll, method: "PATCH", body: `{"ids":[],"patch":[{"op":"remove","path":"/expirationDate"}]}`, status: 400, msg: "ids must hold at least one id"},
		{name: "ids missing", caller: idAdminAll, method: "PATCH", body: `{"patch":[{"op":"remove","path":"/expirationDate"}]}`, status: 400, msg: "ids is required"},
		{name: "patch missing", caller: idAdminAll, method: "PATCH", body: `{"ids":["` + idOttoStale + `"]}`, status: 400, msg: "patch is required"},
		{name: "empty patch", caller: idAdminAll, method: "PATCH", body: `{"ids":["` + idOttoStale + `"],"patch":[]}`, status: 400, msg: "patch must hold at least one operation"},
		{name: "duplicate ids", caller: idAdminAll, method: "PATCH", body: body(idOttoStale, idOttoStale), status: 400, msg: "duplicates"},
		{name: "blank id", caller: idAdminAll, method: "PATCH", body: body(idOttoStale, " "), status: 400, msg: "blank"},
		{name: "unknown id fails the whole request", caller: idAdminAll, method: "PATCH",
			body: body(idOttoStale, "ffffffffffffffffffffffffffffffff"), status: 400, msg: "not found: ffffffffffffffffffffffffffffffff"},
		{name: "managed token invisible to a blind admin", caller: idBlindAll, method: "PATCH", body: body(idUnaManaged), status: 400, msg: "not found"},
		{name: "clearing expiration needs the acknowledgement", caller: idAdminAll, method: "PATCH",
			body: `{"ids":["` + idOttoStale + `"],"patch":[{"op":"remove","path":"/expirationDate"}]}`, status: 400, msg: "userAwareTokenNeverExpires true"},
		{name: "never expires with acknowledgement", caller: idAdminAll, method: "PATCH",
			body:   `{"ids":["` + idOttoStale + `"],"patch":[{"op":"remove","path":"/expirationDate"},{"op":"replace","path":"/userAwareTokenNeverExpires","value":true}]}`,
			status: 200, want: []string{idOttoStale}},
		{name: "past date", caller: idAdminAll, method: "PATCH",
			body: `{"ids":["` + idOttoStale + `"],"patch":[{"op":"replace","path":"/expirationDate","value":"2020-01-01T00:00:00.000Z"}]}`, status: 400, msg: "must be in the future"},
		{name: "not an object", caller: idAdminAll, method: "PATCH", body: `[1]`, status: 400, msg: "not a JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newScenarioEnv(t, "rights.yaml", Options{RateLimit: -1})
			tok := e.login(tc.caller, e.secret(tc.caller))
			before := e.sim.Tokens()
			ct := "application/json"
			if tc.ct != "" {
				ct = tc.ct
			}
			r := e.do(tc.method, bulkPath, tok, ct, tc.body)
			if tc.status != 200 {
				wantError(t, r, tc.status, tc.msg)
				if fmt.Sprint(before) != fmt.Sprint(e.sim.Tokens()) {
					t.Errorf("a refused bulk update changed tokens")
				}
				return
			}
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			reqs := e.sim.Requests()
			if last := reqs[len(reqs)-1]; last.Operation != OpBulkUpdateTokens || !last.IsMutation() || last.APIVersion != "v1" {
				t.Errorf("logged %+v", last)
			}
			var got []map[string]any
			r.json(t, &got)
			var ids []string
			for _, g := range got {
				ids = append(ids, fmt.Sprint(g["id"]))
				if _, ok := g["userAwareTokenNeverExpires"]; ok {
					t.Errorf("answer carries userAwareTokenNeverExpires: %v", g)
				}
				if _, ok := g["expirationDate"]; !ok {
					t.Errorf("answer lacks expirationDate: %v", g)
				}
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
				t.Fatalf("answered ids %v, want %v", ids, tc.want)
			}
			if strings.Contains(tc.body, exp) {
				for _, id := range tc.want {
					st, _ := e.sim.Token(id)
					if st.ExpirationDate == nil || st.ExpirationDate.Format("2006-01-02T15:04:05.000Z") != exp {
						t.Errorf("stored %s expirationDate %v, want %s", id, st.ExpirationDate, exp)
					}
				}
				for _, g := range got {
					if g["expirationDate"] != exp {
						t.Errorf("answered expirationDate %v", g["expirationDate"])
					}
				}
			}
		})
	}
}

func TestBulkUpdateRoutes(t *testing.T) {
	e := newScenarioEnv(t, "rights.yaml", Options{RateLimit: -1})
	tok := e.login(idAdminAll, e.secret(idAdminAll))
	r := e.do("GET", bulkPath, tok, "", "")
	wantError(t, r, 405, "not supported")
	if got := r.header.Get("Allow"); got != "PATCH, POST" {
		t.Errorf("Allow %q", got)
	}
	// Only v1 has the bulk update: elsewhere it is a token id nobody has.
	r = e.do("PATCH", "/v2025/personal-access-tokens/bulk-update", tok, "application/json-patch+json", `[{"op":"replace","path":"/name","value":"x"}]`)
	wantError(t, r, 404, "not found")
}

func TestPaging(t *testing.T) {
	for _, paging := range []bool{false, true} {
		t.Run(fmt.Sprint("paging=", paging), func(t *testing.T) {
			e := newEnv(t, Options{RateLimit: -1, Paging: paging})
			for i := range 300 {
				e.sim.Add(tokenFor(fmt.Sprintf("%032x", i+1), "0000000000000000000000000000aa01"), "")
			}
			tok := e.admin()
			all := e.listIDs("/v3/personal-access-tokens", tok)
			second := e.listIDs("/v3/personal-access-tokens?limit=250&offset=250", tok)
			if !paging {
				// 300 + the admin's own PAT, limit and offset ignored.
				if len(all) != 301 || len(second) != 301 {
					t.Fatalf("unpaged: %d and %d tokens", len(all), len(second))
				}
				return
			}
			if len(all) != 250 || len(second) != 51 || second[0] == all[0] {
				t.Fatalf("paged: %d and %d tokens", len(all), len(second))
			}
			r := e.do("GET", "/v3/personal-access-tokens?limit=251", tok, "", "")
			wantError(t, r, 400, "limit")
		})
	}
}

// FuzzDecodeBulk: the bulk-update body parser never panics, and what it
// accepts holds what the fragment requires: 1..25 unique non-blank ids and
// at least one operation, each on one of the two allowed paths.
func FuzzDecodeBulk(f *testing.F) {
	f.Add(`{"ids":["a","b"],"patch":[{"op":"replace","path":"/expirationDate","value":"2027-01-01T00:00:00.000Z"}]}`)
	f.Add(`{"ids":["a"],"patch":[{"op":"remove","path":"/expirationDate"},{"op":"replace","path":"/userAwareTokenNeverExpires","value":true}]}`)
	f.Add(`{"ids":["a","a"],"patch":[]}`)
	f.Add(`{"ids":null,"patch":[{"op":"replace","path":"/name","value":"x"}]}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		ids, ops, msg := decodeBulk([]byte(body))
		if msg != "" {
			if ids != nil || ops != nil {
				t.Fatalf("%q refused (%s) but returned values", body, msg)
			}
			return
		}
		if len(ids) < 1 || len(ids) > MaxBulkIDs || len(ops) < 1 {
			t.Fatalf("%q accepted with %d ids, %d ops", body, len(ids), len(ops))
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if strings.TrimSpace(id) == "" || seen[id] {
				t.Fatalf("%q accepted a blank or duplicate id %q", body, id)
			}
			seen[id] = true
		}
		for _, op := range ops {
			if op.Path != "/expirationDate" && op.Path != "/userAwareTokenNeverExpires" {
				t.Fatalf("%q accepted path %q", body, op.Path)
			}
		}
	})
}

// The bulk update refuses an OAuth API client's credentials ("API OAuth
// client credentials are not permitted", section 15), whatever their scopes:
// a client with a null scope (sp:scopes:all) gets 403 and nothing changes,
// where it used to expire tokens as an org admin's PAT does.
func TestBulkUpdateRefusesAPIClientCredentials(t *testing.T) {
	e := newScenarioEnv(t, "rights.yaml", Options{RateLimit: -1})
	e.sim.AddOAuthClient(apiclient.Client{ID: "0b1c2d3e-0000-4000-8000-000000000001", Name: "svc", Internal: apiclient.Bool(false),
		Enabled: apiclient.Bool(true), Scope: pat.Scopes{Null: true}}, "s3cret")
	tok := e.login("0b1c2d3e-0000-4000-8000-000000000001", "s3cret")
	before := fmt.Sprint(e.sim.Tokens())
	r := e.do("PATCH", bulkPath, tok, "application/json",
		`{"ids":["`+idOttoStale+`"],"patch":[{"op":"replace","path":"/expirationDate","value":"2027-01-01T00:00:00.000Z"}]}`)
	wantError(t, r, 403, "API OAuth client credentials are not permitted")
	if fmt.Sprint(e.sim.Tokens()) != before {
		t.Error("a refused bulk update changed tokens")
	}
}
