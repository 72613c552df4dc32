package idnsim

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestControlEndpoints(t *testing.T) {
	e := newScenarioEnv(t, "golden.yaml", Options{RateLimit: -1})

	var admin map[string]string
	e.do("GET", "/__sim/admin", "", "", "").json(t, &admin)
	if admin["clientId"] != e.sim.Admin().ClientID || admin["clientSecret"] != e.sim.Admin().ClientSecret {
		t.Fatalf("admin %v", admin)
	}
	tok := e.login(admin["clientId"], admin["clientSecret"])

	// Add a token out of band; it logs in with its secret.
	r := e.do("POST", "/__sim/tokens", "", "application/json",
		`{"id":"0000000000000000000000000000f00d","name":"oob","scope":null,"owner":{"id":"a1100000000000000000000000000002"},"created":"2026-01-01T00:00:00Z","lastUsed":null,"secret":"pw"}`)
	if r.status != 201 || !strings.Contains(string(r.body), `"owner":{"type":"IDENTITY","id":"a1100000000000000000000000000002","name":"Alice Ferguson"}`) {
		t.Fatalf("add: %d %s", r.status, r.body)
	}
	e.login("0000000000000000000000000000f00d", "pw")
	if r := e.do("POST", "/__sim/tokens", "", "application/json", `{"name":"no id"}`); r.status != 400 {
		t.Fatalf("add without id: %d", r.status)
	}

	// Touch.
	if r := e.do("POST", "/__sim/touch", "", "application/json", `{"id":"a1100000000000000000000000000103","at":"2026-11-25T10:00:00.123Z"}`); r.status != 204 {
		t.Fatalf("touch: %d %s", r.status, r.body)
	}
	if tk, _ := e.sim.Token("a1100000000000000000000000000103"); tk.LastUsed == nil || !tk.LastUsed.Equal(time.Date(2026, 11, 25, 10, 0, 0, 123e6, time.UTC)) {
		t.Fatalf("touched %v", tk.LastUsed)
	}
	if r := e.do("POST", "/__sim/touch", "", "application/json", `{"id":"nope","at":"2026-11-25T10:00:00Z"}`); r.status != 404 {
		t.Fatalf("touch unknown: %d", r.status)
	}

	// The token dump keeps v2025's nulls.
	r = e.do("GET", "/__sim/tokens", "", "", "")
	if r.status != 200 || !strings.Contains(string(r.body), `"expirationDate":null`) || strings.Count(string(r.body), `"created":`) != 16 {
		t.Fatalf("tokens: %d %.200s", r.status, r.body)
	}

	// Faults through the control API; latency as a duration string.
	if r := e.do("POST", "/__sim/faults", "", "application/json", `{"operation":"list_tokens","status":503,"times":1,"latency":"1ms"}`); r.status != 201 {
		t.Fatalf("add fault: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/__sim/faults", "", "application/json", `{"operation":"list_tokens","stauts":503}`); r.status != 400 || !strings.Contains(string(r.body), `unknown field \"stauts\"`) {
		t.Fatalf("typo in a fault: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/__sim/faults", "", "application/json", `{"probability":2}`); r.status != 400 {
		t.Fatalf("invalid fault: %d", r.status)
	}
	if r := e.do("GET", "/v3/personal-access-tokens", tok, "", ""); r.status != 503 {
		t.Fatalf("injected: %d", r.status)
	}
	var faults []FaultStatus
	e.do("GET", "/__sim/faults", "", "", "").json(t, &faults)
	if len(faults) != 1 || faults[0].Fired != 1 || faults[0].Fault.Latency != time.Millisecond {
		t.Fatalf("faults %+v", faults)
	}
	e.do("DELETE", "/__sim/faults", "", "", "")
	if len(e.sim.Faults()) != 0 {
		t.Fatal("faults not cleared")
	}

	// The request log holds API calls only, never control calls.
	var reqs []Request
	e.do("GET", "/__sim/requests", "", "", "").json(t, &reqs)
	for _, rq := range reqs {
		if strings.HasPrefix(rq.Path, ControlPrefix) {
			t.Fatalf("control call logged: %+v", rq)
		}
	}
	if len(reqs) != 3 || reqs[2].Operation != OpListTokens || reqs[2].Status != 503 || reqs[2].Fault != "status 503" {
		t.Fatalf("log %+v", reqs)
	}
	if reqs[0].Header.Get("Authorization") != "" || !strings.Contains(string(reqs[0].Body), "client_secret=REDACTED") {
		t.Fatalf("token call logged as %+v", reqs[0])
	}
	if reqs[2].Header.Get("Authorization") != "Bearer REDACTED" {
		t.Fatalf("bearer logged as %q", reqs[2].Header.Get("Authorization"))
	}
	e.do("DELETE", "/__sim/requests", "", "", "")
	if len(e.sim.Requests()) != 0 {
		t.Fatal("log not emptied")
	}

	// Delete a token, then reset with the population restored.
	if r := e.do("DELETE", "/__sim/tokens/a1100000000000000000000000000101", "", "", ""); r.status != 204 {
		t.Fatalf("remove: %d", r.status)
	}
	if _, ok := e.sim.Token("a1100000000000000000000000000101"); ok {
		t.Fatal("not removed")
	}
	e.do("POST", "/__sim/reset", "", "", "")
	if _, ok := e.sim.Token("a1100000000000000000000000000101"); ok {
		t.Fatal("plain reset restored the population")
	}
	if r := e.do("GET", "/v3/personal-access-tokens", tok, "", ""); r.status != 401 {
		t.Fatalf("access token survived reset: %d", r.status)
	}
	e.do("POST", "/__sim/reset?population=true", "", "", "")
	if _, ok := e.sim.Token("a1100000000000000000000000000101"); !ok {
		t.Fatal("reset?population=true did not restore the token")
	}
	if _, ok := e.sim.Token("0000000000000000000000000000f00d"); ok {
		t.Fatal("reset?population=true kept an out-of-band token")
	}

	var ids []map[string]any
	e.do("GET", "/__sim/identities", "", "", "").json(t, &ids)
	if len(ids) != 5 || ids[4]["orgAdmin"] != false {
		t.Fatalf("identities %v", ids)
	}
	if r := e.do("GET", "/__sim/nope", "", "", ""); r.status != 404 {
		t.Fatalf("unknown control endpoint: %d", r.status)
	}
}

func TestMutationsHelper(t *testing.T) {
	e := newScenarioEnv(t, "golden.yaml", Options{RateLimit: -1})
	tok := e.admin()
	e.do("GET", "/v3/personal-access-tokens?filters=lastUsed+isnull", tok, "", "")
	e.do("DELETE", "/v3/personal-access-tokens/a1100000000000000000000000000103", tok, "", "")
	e.do("PATCH", "/v3/personal-access-tokens/ad000000000000000000000000000c02", tok, "application/json-patch+json", `[{"op":"replace","path":"/name","value":"cli"}]`)
	e.do("POST", "/v3/personal-access-tokens", tok, "application/json", `{"name":"n"}`)
	muts := Mutations(e.sim.Requests())
	if len(muts) != 3 || muts[0].Method != "DELETE" || muts[1].Method != "PATCH" || muts[2].Method != "POST" {
		t.Fatalf("mutations %+v", muts)
	}
	if muts[0].Status != 204 || muts[1].Status != 200 || muts[2].Status != 200 {
		t.Fatalf("statuses %d %d %d", muts[0].Status, muts[1].Status, muts[2].Status)
	}
	list := ByOperation(e.sim.Requests(), OpListTokens)
	if len(list) != 1 || list[0].Query.Get("filters") != "lastUsed isnull" || list[0].RawQuery != "filters=lastUsed+isnull" || list[0].APIVersion != "v3" {
		t.Fatalf("list %+v", list)
	}
	if string(muts[1].Body) != `[{"op":"replace","path":"/name","value":"cli"}]` || muts[1].ContentType != "application/json-patch+json" {
		t.Fatalf("patch logged as %+v", muts[1])
	}
}

// A reset connection finishes after the client's retry has been answered; the
// log must still show the reset first, as the requests arrived.
func TestRequestLogArrivalOrder(t *testing.T) {
	var l requestLog
	first, second := l.arrive(), l.arrive()
	third := l.arrive()
	l.add(Request{seq: second, Status: 404})
	l.add(Request{seq: third, Status: 204})
	l.add(Request{seq: first, Fault: "reset"})
	got := []string{l.entries[0].Fault, strconv.Itoa(l.entries[1].Status), strconv.Itoa(l.entries[2].Status)}
	if !slices.Equal(got, []string{"reset", "404", "204"}) {
		t.Fatalf("log order %v, want reset, 404, 204", got)
	}
}
