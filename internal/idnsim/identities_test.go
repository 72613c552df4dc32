package idnsim

import (
	"net/url"
	"slices"
	"testing"
)

func TestPublicIdentities(t *testing.T) {
	e := newScenarioEnv(t, "golden.yaml", Options{RateLimit: -1})
	tok := e.admin()
	get := func(q url.Values) resp {
		return e.do("GET", "/v3/public-identities?"+q.Encode(), tok, "", "")
	}
	ids := func(r resp) []string {
		t.Helper()
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var out []map[string]any
		r.json(t, &out)
		var got []string
		for _, o := range out {
			got = append(got, o["id"].(string))
		}
		return got
	}

	// The client's form: id in ("a","b"), one of them no identity (ownerMissing).
	r := get(url.Values{"filters": {`id in ("ca700000000000000000000000000004","b0b00000000000000000000000000003","0000000000000000000000000000dead")`}})
	if got := ids(r); !slices.Equal(got, []string{"b0b00000000000000000000000000003", "ca700000000000000000000000000004"}) {
		t.Fatalf("id in: %v", got)
	}
	var items []map[string]any
	r.json(t, &items)
	bob, carol := items[0], items[1]
	if v, ok := bob["email"]; !ok || v != nil {
		t.Errorf("bob's email %v (present %v), want null", v, ok)
	}
	if carol["identityState"] != "INACTIVE_LONG_TERM" || carol["status"] != "Inactive" || carol["email"] != "carol.petrova@example.com" {
		t.Errorf("carol %v", carol)
	}
	if v, ok := carol["manager"]; !ok || v != nil {
		t.Errorf("carol's manager %v, want null", v)
	}
	if _, ok := bob["attributes"].([]any); !ok {
		t.Errorf("attributes %v, want a list", bob["attributes"])
	}

	// Manager reference.
	r = get(url.Values{"filters": {`id eq "da7e0000000000000000000000000005"`}})
	r.json(t, &items)
	if m, _ := items[0]["manager"].(map[string]any); m["type"] != "IDENTITY" || m["id"] != "a1100000000000000000000000000002" || m["name"] != "Alice Ferguson" {
		t.Errorf("manager %v", items[0]["manager"])
	}

	// Paging and count.
	r = get(url.Values{"limit": {"2"}, "offset": {"1"}, "count": {"true"}})
	if got := ids(r); !slices.Equal(got, []string{"ad000000000000000000000000000001", "b0b00000000000000000000000000003"}) {
		t.Errorf("limit/offset: %v", got)
	}
	if r.header.Get("X-Total-Count") != "5" {
		t.Errorf("X-Total-Count %q, want 5", r.header.Get("X-Total-Count"))
	}
	if r := get(url.Values{}); r.header.Get("X-Total-Count") != "" {
		t.Error("X-Total-Count without count=true")
	}
	if got := ids(get(url.Values{"offset": {"10"}})); len(got) != 0 {
		t.Errorf("offset past the end: %v", got)
	}
	if got := ids(get(url.Values{"sorters": {"-name"}, "limit": {"1"}})); !slices.Equal(got, []string{"ad000000000000000000000000000001"}) {
		t.Errorf("sorted by -name: %v", got) // "PAT Janitor Admin" sorts last by name
	}
	if got := ids(get(url.Values{"add-core-filters": {"true"}})); slices.Contains(got, "b0b00000000000000000000000000003") {
		t.Errorf("core filters kept an identity without email: %v", got)
	}
	if got := ids(get(url.Values{"filters": {`alias sw "ALICE" or email eq "dave.okafor@example.com"`}})); !slices.Equal(got, []string{"a1100000000000000000000000000002", "da7e0000000000000000000000000005"}) {
		t.Errorf("composite: %v", got)
	}
	if got := ids(get(url.Values{"filters": {`lastname eq "tanaka"`}})); !slices.Equal(got, []string{"b0b00000000000000000000000000003"}) {
		t.Errorf("lastname: %v", got)
	}

	bad := []struct {
		q   url.Values
		msg string
	}{
		{url.Values{"limit": {"251"}}, `limit must be an integer between 0 and 250, got "251"`},
		{url.Values{"limit": {"x"}}, `limit must be an integer between 0 and 250, got "x"`},
		{url.Values{"offset": {"-1"}}, `offset must be a non-negative integer, got "-1"`},
		{url.Values{"count": {"maybe"}}, `count must be true or false, got "maybe"`},
		{url.Values{"filters": {`name eq "x"`}}, `filtering on field "name" is not supported`},
		{url.Values{"filters": {`id sw "a"`}}, `operator "sw" is not supported for field "id"`},
		{url.Values{"filters": {`id in (1,2)`}}, `field "id" compares with quoted strings, got number 1`},
		{url.Values{"filters": {`id in ("a"`}}, `invalid filter`},
		{url.Values{"sorters": {"email"}}, `sorting on "email" is not supported`},
	}
	for _, tc := range bad {
		wantError(t, get(tc.q), 400, tc.msg)
	}
	// Authentication is required.
	if r := e.do("GET", "/v3/public-identities", "", "", ""); r.status != 401 {
		t.Errorf("unauthenticated: %d", r.status)
	}
}
