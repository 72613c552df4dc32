package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

var t0 = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)

func tp(t time.Time) *time.Time { return &t }

// samplePlan exercises every distinction the document keeps: null vs []
// scope, never used vs used, an expiration date, patch values of several Go
// types, grace-period fields, HTML-significant characters.
func samplePlan() *Plan {
	p := &Plan{
		Version: Version, Tenant: "https://acme.api.identitynow.com", APIVersion: "v2025",
		GeneratedAt: t0.Add(123456789 * time.Nanosecond), RunID: "20261126T030000Z-0a1b2c3d",
		ConfigDigest: "sha256:" + strings.Repeat("ab", 32), Population: 1234,
		Listings: []Listing{{Filter: "lastUsed le 2026-08-28T03:00:00.000Z", Count: 12}, {Filter: "lastUsed isnull", Count: 3}},
		Items: NewItems(
			Item{
				TokenID: "b2", TokenName: "ci <deploy> & co", OwnerID: "o1", OwnerName: "Ann",
				Created: t0.AddDate(-1, 0, 0), Scope: pat.Scopes{Null: true},
				Policy: "full-access", Mode: ModeEnforce, Action: ActionPatch,
				Reason: "scope null counts as sp:scopes:all",
				Patch: []pat.PatchOp{
					pat.SetScopes([]string{"sp:scopes:default"}),
					pat.Rename("-ci <deploy> & co"),
					pat.SetScopes(nil),
				},
				AlsoMatched: []string{"unused-90d"},
			},
			Item{
				TokenID: "a1", TokenName: "old", OwnerID: "o2", OwnerName: "Bob",
				Created: t0.AddDate(0, -6, 0), LastUsed: tp(t0.AddDate(0, -4, 0)),
				ExpirationDate: nil, Scope: pat.ScopesOf(), Managed: false,
				Policy: "unused-90d", Mode: ModeReport, Action: ActionDelete,
				Reason: "lastUsed 2026-07-26T03:00:00.000Z is before cutoff 2026-08-28T03:00:00.000Z (unusedFor 90d)",
			},
			Item{
				TokenID: "c3", TokenName: "forever", OwnerID: "o2", OwnerName: "Bob",
				Created: t0.AddDate(0, -2, 0), ExpirationDate: tp(t0.AddDate(1, 0, 0)),
				Scope: pat.ScopesOf("idn:all"), Managed: true,
				Policy: "never-expires", Mode: ModeEnforce, Action: ActionExpire,
				Reason: "never used; expirationDate far",
				Patch: []pat.PatchOp{
					pat.SetExpiration(t0.AddDate(0, 0, 14)),
					pat.SetNeverExpires(false),
				},
				Marked: tp(t0.AddDate(0, 0, -14)), Deadline: tp(t0),
			},
		),
		Skipped: []Skipped{{TokenID: "me", TokenName: "patjanitor", OwnerID: "o9", Policy: "unused-90d", Reason: "own-credential"}},
		Guardrails: []Guardrail{
			{Name: "maxActionsPerRun", Limit: 25, Wanted: 2},
			{Name: "maxActionsPercent", Limit: 0.5, Wanted: 2, Tripped: true, Detail: "2 > 0.5% of 1234"},
		},
	}
	p.Items.Sort()
	return p
}

func sealed(t testing.TB) *Plan {
	t.Helper()
	p := samplePlan()
	if err := p.Seal(); err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return p
}

func roundTrip(t testing.TB, p *Plan) (*Plan, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, p); err != nil {
		t.Fatalf("Write: %v", err)
	}
	out := slices.Clone(buf.Bytes())
	q, err := Read(&buf)
	if err != nil {
		t.Fatalf("Read of a written plan: %v\n%s", err, out)
	}
	return q, out
}

func TestSealRoundTrip(t *testing.T) {
	p := sealed(t)
	if !hashPattern.MatchString(p.PlanHash) {
		t.Fatalf("PlanHash %q", p.PlanHash)
	}
	if err := p.VerifyHash(); err != nil {
		t.Fatalf("VerifyHash of a fresh seal: %v", err)
	}
	q, first := roundTrip(t, p)
	if q.PlanHash != p.PlanHash {
		t.Fatalf("planHash changed across Write/Read: %s -> %s", p.PlanHash, q.PlanHash)
	}
	if err := q.VerifyHash(); err != nil {
		t.Fatalf("VerifyHash after Write/Read: %v", err)
	}
	// Writing what was read gives the same bytes: the encoding is a fixed point.
	r, second := roundTrip(t, q)
	if !bytes.Equal(first, second) {
		t.Fatalf("second Write differs:\n%s\n---\n%s", first, second)
	}
	if err := r.VerifyHash(); err != nil {
		t.Fatal(err)
	}
	// Re-indenting the file (any whitespace) does not matter; the hash is over
	// the content.
	var compact bytes.Buffer
	if err := json.Compact(&compact, first); err != nil {
		t.Fatal(err)
	}
	c, err := Read(&compact)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifyHash(); err != nil {
		t.Fatalf("compacted plan: %v", err)
	}
}

func TestDocumentShape(t *testing.T) {
	p := sealed(t)
	var buf bytes.Buffer
	if err := Write(&buf, p); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "tenant", "apiVersion", "generatedAt", "runId", "configDigest", "planHash",
		"population", "listings", "items", "skipped", "guardrails"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("document lacks key %q", k)
		}
	}
	if got := doc["generatedAt"]; got != "2026-11-26T03:00:00.123Z" {
		t.Errorf("generatedAt = %v", got)
	}
	items := doc["items"].([]any)
	byID := map[string]map[string]any{}
	for _, x := range items {
		m := x.(map[string]any)
		byID[m["tokenId"].(string)] = m
	}
	if v, ok := byID["b2"]["scope"]; !ok || v != nil {
		t.Errorf("null scope written as %v (present %v), want null", v, ok)
	}
	if v := byID["a1"]["scope"]; !reflect.DeepEqual(v, []any{}) {
		t.Errorf("empty scope written as %#v, want []", v)
	}
	if v, ok := byID["b2"]["lastUsed"]; !ok || v != nil {
		t.Errorf("never used written as %v (present %v), want null", v, ok)
	}
	if _, ok := byID["a1"]["expirationDate"]; ok {
		t.Error("absent expirationDate written")
	}
	if v := byID["a1"]["patch"]; !reflect.DeepEqual(v, []any{}) {
		t.Errorf("no patch written as %#v, want []", v)
	}
	if v := byID["a1"]["alsoMatched"]; !reflect.DeepEqual(v, []any{}) {
		t.Errorf("no alsoMatched written as %#v, want []", v)
	}
	if _, ok := byID["a1"]["deadline"]; ok {
		t.Error("absent deadline written")
	}
	ops := byID["c3"]["patch"].([]any)
	if v := ops[0].(map[string]any)["value"]; v != "2026-12-10T03:00:00.000Z" {
		t.Errorf("time value written as %v", v)
	}
	if v, ok := ops[1].(map[string]any)["value"]; !ok || v != false {
		t.Errorf("false value written as %v (present %v)", v, ok)
	}
	// An empty plan has [] lists, never null.
	var empty bytes.Buffer
	if err := Write(&empty, &Plan{Version: Version}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"items": []`, `"skipped": []`, `"guardrails": []`, `"listings": []`} {
		if !strings.Contains(empty.String(), k) {
			t.Errorf("empty plan lacks %s:\n%s", k, empty.String())
		}
	}
}

func TestReadPreservesDistinctions(t *testing.T) {
	q, _ := roundTrip(t, sealed(t))
	by := map[string]Item{}
	for _, it := range q.Items.All() {
		by[it.TokenID] = it
	}
	if !by["b2"].Scope.Null {
		t.Error("null scope read back as non-null")
	}
	if s := by["a1"].Scope; s.Null || s.Values == nil || len(s.Values) != 0 {
		t.Errorf("empty scope read back as %#v", s)
	}
	if by["b2"].LastUsed != nil || by["a1"].LastUsed == nil {
		t.Error("lastUsed null/non-null not preserved")
	}
	if by["c3"].ExpirationDate == nil || !by["c3"].Managed || by["c3"].Deadline == nil || by["c3"].Marked == nil {
		t.Errorf("c3 lost fields: %+v", by["c3"])
	}
	// Every operation reads back as the one planned, by ==.
	planned := samplePlan()
	for _, it := range planned.Items.All() {
		if !slices.Equal(by[it.TokenID].Patch, it.Patch) {
			t.Errorf("%s: patch read back as %v, planned %v", it.TokenID, by[it.TokenID].Patch, it.Patch)
		}
	}
	// A patch re-encoded for the API carries the explicit null of SetScopes(nil).
	b, err := json.Marshal(by["b2"].Patch)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `{"op":"replace","path":"/scope","value":null}`) {
		t.Errorf("patch for the API lost the null: %s", b)
	}
}

func TestNilAndEmptyHashAlike(t *testing.T) {
	a := &Plan{Version: Version, Tenant: "x", Items: NewItems(Item{TokenID: "1", Policy: "p"})}
	b := &Plan{Version: Version, Tenant: "x", Items: NewItems(Item{TokenID: "1", Policy: "p", Patch: []pat.PatchOp{}, AlsoMatched: []string{}}),
		Listings: []Listing{}, Skipped: []Skipped{}, Guardrails: []Guardrail{}}
	ha, err := a.Hash()
	if err != nil {
		t.Fatal(err)
	}
	hb, err := b.Hash()
	if err != nil {
		t.Fatal(err)
	}
	if ha != hb {
		t.Fatal("nil and empty lists hash differently")
	}
	// Seal ignores an old PlanHash.
	a.PlanHash = "sha256:" + strings.Repeat("0", 64)
	if err := a.Seal(); err != nil || a.PlanHash != ha {
		t.Fatalf("Seal over an old hash: %v %s", err, a.PlanHash)
	}
}

// editItem0 changes the plan's first item.
func editItem0(p *Plan, f func(it *Item)) {
	it := p.Items.At(0)
	f(&it)
	p.Items.Set(0, it)
}

// tamper changes one field of a sealed plan; VerifyHash must notice.
type tamper struct {
	field string // Item field name ("" for plan-level)
	name  string
	do    func(p *Plan)
}

func tampers() []tamper {
	return []tamper{
		{"TokenID", "tokenId", func(p *Plan) { editItem0(p, func(it *Item) { it.TokenID += "x" }) }},
		{"TokenName", "tokenName", func(p *Plan) { editItem0(p, func(it *Item) { it.TokenName = "renamed" }) }},
		{"OwnerID", "ownerId", func(p *Plan) { editItem0(p, func(it *Item) { it.OwnerID = "o3" }) }},
		{"OwnerName", "ownerName", func(p *Plan) { editItem0(p, func(it *Item) { it.OwnerName = "Eve" }) }},
		{"Created", "created", func(p *Plan) { editItem0(p, func(it *Item) { it.Created = it.Created.Add(time.Millisecond) }) }},
		{"LastUsed", "lastUsed", func(p *Plan) { editItem0(p, func(it *Item) { it.LastUsed = tp(t0) }) }},
		{"ExpirationDate", "expirationDate", func(p *Plan) { editItem0(p, func(it *Item) { it.ExpirationDate = tp(t0) }) }},
		{"Scope", "scope null -> []", func(p *Plan) { editItem0(p, func(it *Item) { it.Scope = pat.ScopesOf() }) }},
		{"Managed", "managed", func(p *Plan) { editItem0(p, func(it *Item) { it.Managed = !it.Managed }) }},
		{"Policy", "policy", func(p *Plan) { editItem0(p, func(it *Item) { it.Policy = "other" }) }},
		{"Mode", "mode", func(p *Plan) { editItem0(p, func(it *Item) { it.Mode = ModeReport }) }},
		{"Action", "action", func(p *Plan) { editItem0(p, func(it *Item) { it.Action = ActionDelete }) }},
		{"Reason", "reason", func(p *Plan) { editItem0(p, func(it *Item) { it.Reason += "." }) }},
		{"Patch", "patch value", func(p *Plan) { editItem0(p, func(it *Item) { it.Patch[0] = pat.SetScopes([]string{"sp:scopes:all"}) }) }},
		{"Patch", "patch operation", func(p *Plan) { editItem0(p, func(it *Item) { it.Patch[0], it.Patch[1] = it.Patch[1], it.Patch[0] }) }},
		{"Patch", "patch dropped", func(p *Plan) { editItem0(p, func(it *Item) { it.Patch = it.Patch[:1] }) }},
		{"AlsoMatched", "alsoMatched", func(p *Plan) { editItem0(p, func(it *Item) { it.AlsoMatched = nil }) }},
		{"Marked", "marked", func(p *Plan) { editItem0(p, func(it *Item) { it.Marked = tp(t0) }) }},
		{"Deadline", "deadline", func(p *Plan) { editItem0(p, func(it *Item) { it.Deadline = tp(t0) }) }},
		{"", "item order", func(p *Plan) { a, b := p.Items.At(0), p.Items.At(1); p.Items.Set(0, b); p.Items.Set(1, a) }},
		{"", "item removed", func(p *Plan) { p.Items = NewItems(p.Items.Slice()[1:]...) }},
		{"", "tenant", func(p *Plan) { p.Tenant = "https://evil.api.identitynow.com" }},
		{"", "apiVersion", func(p *Plan) { p.APIVersion = "v3" }},
		{"", "generatedAt", func(p *Plan) { p.GeneratedAt = p.GeneratedAt.Add(time.Hour) }},
		{"", "runId", func(p *Plan) { p.RunID = "" }},
		{"", "configDigest", func(p *Plan) { p.ConfigDigest = "sha256:00" }},
		{"", "population", func(p *Plan) { p.Population++ }},
		{"", "listings", func(p *Plan) { p.Listings[0].Count++ }},
		{"", "error", func(p *Plan) { p.Error = "incomplete" }},
		{"", "skipped", func(p *Plan) { p.Skipped[0].Reason = "managed" }},
		{"", "guardrail tripped", func(p *Plan) { p.Guardrails[1].Tripped = false }},
		{"", "guardrail limit", func(p *Plan) { p.Guardrails[0].Limit = 1000 }},
		{"", "planHash", func(p *Plan) { p.PlanHash = "sha256:" + strings.Repeat("1", 64) }},
	}
}

func TestTamperDetected(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range tampers() {
		covered[tc.field] = true
		t.Run(tc.name, func(t *testing.T) {
			q, _ := roundTrip(t, sealed(t))
			tc.do(q)
			err := q.VerifyHash()
			if !errors.Is(err, ErrHashMismatch) {
				t.Fatalf("VerifyHash after changing %s = %v, want ErrHashMismatch", tc.name, err)
			}
		})
	}
	// Every field of Item has a tamper case, so a field added later cannot
	// silently escape the hash.
	rt := reflect.TypeFor[Item]()
	for i := range rt.NumField() {
		if !covered[rt.Field(i).Name] {
			t.Errorf("no tamper case for Item.%s", rt.Field(i).Name)
		}
	}
}

func TestTamperInFileDetected(t *testing.T) {
	_, doc := roundTrip(t, sealed(t))
	for _, edit := range [][2]string{
		{`"mode": "enforce"`, `"mode": "report"`},
		{`"sp:scopes:default"`, `"sp:scopes:all"`},
		{`"tripped": true`, `"tripped": false`},
		{`"wanted": 2,`, `"wanted": 1,`},
		{`"limit": 25`, `"limit": 25.0`}, // same number, written differently
	} {
		changed := bytes.Replace(doc, []byte(edit[0]), []byte(edit[1]), 1)
		if bytes.Equal(changed, doc) {
			t.Fatalf("edit %q did not apply", edit[0])
		}
		q, err := Read(bytes.NewReader(changed))
		if err != nil {
			t.Fatalf("edit %q: Read: %v", edit[0], err)
		}
		if edit[1] == `"limit": 25.0` {
			// 25.0 decodes to the same float64 as 25: the content did not
			// change, and the hash is over the content.
			if err := q.VerifyHash(); err != nil {
				t.Errorf("equal number written differently: %v", err)
			}
			continue
		}
		if err := q.VerifyHash(); !errors.Is(err, ErrHashMismatch) {
			t.Errorf("edit %q: VerifyHash = %v", edit[0], err)
		}
	}
}

func TestVerifyHashUnsealed(t *testing.T) {
	p := samplePlan()
	if err := p.VerifyHash(); !errors.Is(err, ErrHashMismatch) || !strings.Contains(err.Error(), "never sealed") {
		t.Fatalf("unsealed: %v", err)
	}
	p.PlanHash = "md5:abc"
	if err := p.VerifyHash(); !errors.Is(err, ErrHashMismatch) || !strings.Contains(err.Error(), "form") {
		t.Fatalf("malformed: %v", err)
	}
}

func TestSealUnencodable(t *testing.T) {
	p := samplePlan()
	p.Guardrails[0].Limit = math.NaN()
	if err := p.Seal(); err == nil {
		t.Fatal("Seal of a NaN limit succeeded")
	}
	if p.PlanHash != "" {
		t.Fatal("failed Seal left a hash")
	}
}

func TestReadStrict(t *testing.T) {
	_, good := roundTrip(t, sealed(t))
	var base map[string]any
	if err := json.Unmarshal(good, &base); err != nil {
		t.Fatal(err)
	}
	// edit returns the document with f applied to a fresh copy of base.
	edit := func(f func(m map[string]any)) string {
		var m map[string]any
		_ = json.Unmarshal(good, &m)
		f(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	item := func(m map[string]any, i int) map[string]any { return m["items"].([]any)[i].(map[string]any) }
	tests := []struct {
		name, doc, want string
	}{
		{"empty", "", "ends early"},
		{"not json", "plan: yes", "invalid JSON at line 1, column 1"},
		{"array", "[1,2]", "is a JSON array, not an object"},
		{"no version", `{"tenant":"x"}`, `no "version" key`},
		{"future version", `{"version":2,"newKey":1}`, "version 2 is not supported"},
		{"version string", `{"version":"1"}`, `version "1" is not an integer`},
		{"syntax error line", "{\n\"version\": 1,\n\"tenant\": x\n}", "line 3, column 11"},
		{"trailing", string(good) + "{}", "trailing data"},
		{"unknown top key", edit(func(m map[string]any) { m["approvedBy"] = "me" }), `unknown field "approvedBy"`},
		{"unknown item key", edit(func(m map[string]any) { item(m, 0)["extra"] = 1 }), `items[0]: unknown field "extra"`},
		{"missing tenant", edit(func(m map[string]any) { delete(m, "tenant") }), `missing key "tenant"`},
		{"missing items", edit(func(m map[string]any) { delete(m, "items") }), `missing key "items"`},
		{"missing planHash", edit(func(m map[string]any) { delete(m, "planHash") }), `missing key "planHash"`},
		{"bad planHash", edit(func(m map[string]any) { m["planHash"] = "sha256:XYZ" }), `planHash "sha256:XYZ"`},
		{"bad apiVersion", edit(func(m map[string]any) { m["apiVersion"] = "v4" }), `apiVersion "v4"`},
		{"bad generatedAt", edit(func(m map[string]any) { m["generatedAt"] = "yesterday" }), "generatedAt: invalid timestamp"},
		{"negative population", edit(func(m map[string]any) { m["population"] = -1 }), "population -1"},
		{"population string", edit(func(m map[string]any) { m["population"] = "12" }), "population: want a number, got a JSON string"},
		{"item type", edit(func(m map[string]any) { item(m, 1)["managed"] = "yes" }), "items[1]: managed: want true or false"},
		{"missing lastUsed", edit(func(m map[string]any) { delete(item(m, 0), "lastUsed") }), `items[0] "b2": missing key "lastUsed"`},
		{"missing scope", edit(func(m map[string]any) { delete(item(m, 0), "scope") }), `items[0] "b2": missing key "scope"`},
		{"bad lastUsed", edit(func(m map[string]any) { item(m, 2)["lastUsed"] = "soon" }), `items[2] "a1": lastUsed: invalid timestamp`},
		{"bad mode", edit(func(m map[string]any) { item(m, 2)["mode"] = "dry" }), `items[2] "a1": mode "dry"`},
		{"bad action", edit(func(m map[string]any) { item(m, 2)["action"] = "nuke" }), `items[2] "a1": action "nuke"`},
		{"patch without ops", edit(func(m map[string]any) { item(m, 0)["patch"] = []any{} }), `items[0] "b2": action patch without patch operations`},
		{"delete with ops", edit(func(m map[string]any) { item(m, 2)["patch"] = item(m, 0)["patch"] }), `items[2] "a1": action delete with patch operations`},
		{"empty reason", edit(func(m map[string]any) { item(m, 2)["reason"] = "" }), `items[2] "a1": reason is empty`},
		{"empty tokenId", edit(func(m map[string]any) { item(m, 1)["tokenId"] = "" }), `items[1]: tokenId is empty`},
		{"duplicate token", edit(func(m map[string]any) { item(m, 1)["tokenId"] = "b2" }), `items[1] "b2": the token is also items[0]`},
		{"skipped unknown", edit(func(m map[string]any) { m["skipped"].([]any)[0].(map[string]any)["x"] = 1 }), `skipped[0]: unknown field "x"`},
		{"guardrail no name", edit(func(m map[string]any) { m["guardrails"].([]any)[0].(map[string]any)["name"] = "" }), "guardrails[0]: name is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Read(strings.NewReader(tc.doc))
			if err == nil {
				t.Fatalf("Read accepted it: %+v", p)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestReadCollectsProblems(t *testing.T) {
	var items []string
	for i := range 25 {
		items = append(items, `{"tokenId":"t`+string(rune('a'+i))+`","created":"2026-01-01T00:00:00Z","lastUsed":null,"scope":null,"policy":"p","mode":"x","action":"delete","reason":"r"}`)
	}
	doc := `{"version":1,"tenant":"t","apiVersion":"v3","generatedAt":"2026-01-01T00:00:00Z","configDigest":"","planHash":"","population":0,"items":[` + strings.Join(items, ",") + `]}`
	_, err := Read(strings.NewReader(doc))
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	if !strings.Contains(msg, "25 problem(s)") || !strings.Contains(msg, "(and 5 more)") || strings.Count(msg, `mode "x"`) != 20 {
		t.Fatalf("problems not collected and capped: %s", msg)
	}
}

func TestReadTooLarge(t *testing.T) {
	_, doc := roundTrip(t, sealed(t))
	if _, err := readMax(bytes.NewReader(doc), int64(len(doc))); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	if _, err := readMax(bytes.NewReader(doc), int64(len(doc)-1)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("over the limit: %v", err)
	}
}

func TestSortDeterministic(t *testing.T) {
	items := []Item{
		{Policy: "b", OwnerName: "Ann", OwnerID: "1", TokenName: "x", TokenID: "5"},
		{Policy: "a", OwnerName: "Zed", OwnerID: "2", TokenName: "a", TokenID: "4"},
		{Policy: "a", OwnerName: "Ann", OwnerID: "9", TokenName: "b", TokenID: "3"},
		{Policy: "a", OwnerName: "Ann", OwnerID: "1", TokenName: "b", TokenID: "2"},
		{Policy: "a", OwnerName: "Ann", OwnerID: "1", TokenName: "b", TokenID: "1"},
		{Policy: "a", OwnerName: "Ann", OwnerID: "1", TokenName: "a", TokenID: "6"},
	}
	want := []string{"6", "1", "2", "3", "4", "5"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		rng.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
		s := NewItems(items...)
		s.Sort()
		var got []string
		for _, it := range s.All() {
			got = append(got, it.TokenID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Sort = %v, want %v", got, want)
		}
	}
}

func TestCountsAndPending(t *testing.T) {
	p := samplePlan()
	p.Items.Append(Item{TokenID: "d4", Policy: "unused-90d", Mode: ModeEnforce, Action: ActionReport, Reason: "r"})
	p.Items.Sort()
	c := p.Counts()
	if c.Items != 4 || c.Pending != 2 || c.Skipped != 1 {
		t.Fatalf("counts %+v", c)
	}
	want := []PolicyCount{
		{Policy: "full-access", Mode: ModeEnforce, Action: ActionPatch, Items: 1, Pending: 1},
		{Policy: "never-expires", Mode: ModeEnforce, Action: ActionExpire, Items: 1, Pending: 1},
		{Policy: "unused-90d", Mode: ModeEnforce, Action: ActionReport, Items: 1},
		{Policy: "unused-90d", Mode: ModeReport, Action: ActionDelete, Items: 1},
	}
	if !reflect.DeepEqual(c.Policies, want) {
		t.Fatalf("Policies = %+v", c.Policies)
	}
	if c.ByAction[ActionDelete] != 1 || c.ByMode[ModeEnforce] != 3 || c.SkippedByReason["own-credential"] != 1 {
		t.Fatalf("maps %+v %+v %+v", c.ByAction, c.ByMode, c.SkippedByReason)
	}
	var ids []string
	for _, it := range p.Pending() {
		ids = append(ids, it.TokenID)
	}
	if !slices.Equal(ids, []string{"b2", "c3"}) {
		t.Fatalf("Pending = %v", ids)
	}
	if tr := p.Tripped(); len(tr) != 1 || tr[0].Name != "maxActionsPercent" {
		t.Fatalf("Tripped = %+v", tr)
	}
}

func TestIsSorted(t *testing.T) {
	p := bigPlan(300)
	if !p.Items.IsSorted() {
		t.Fatal("IsSorted of sorted items = false")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 50 {
		items := p.Items.Slice()
		i, j := rng.IntN(len(items)), rng.IntN(len(items))
		items[i], items[j] = items[j], items[i]
		want := slices.IsSortedFunc(items, func(a, b Item) int { return compareItems(&a, &b) })
		if s := NewItems(items...); s.IsSorted() != want {
			t.Fatalf("IsSorted after swapping %d and %d = %v, want %v", i, j, !want, want)
		}
	}
	var empty Items
	if !empty.IsSorted() {
		t.Fatal("IsSorted of no items = false")
	}
}

// TestPoliciesOfTheRun: the policies of the run survive a round trip and are
// covered by the hash; Counts lists a policy that decided nothing with 0; and
// a plan without the key (written before it existed) reads, keeps its hash,
// and is written back without the key.
func TestPoliciesOfTheRun(t *testing.T) {
	p := samplePlan()
	p.Policies = []Policy{
		{Name: "unused-90d", Mode: ModeReport, Action: ActionDelete},
		{Name: "matches-nothing", Mode: ModeEnforce, Action: ActionDelete},
		{Name: "full-access", Mode: ModeEnforce, Action: ActionPatch},
	}
	if err := p.Seal(); err != nil {
		t.Fatal(err)
	}
	got, doc := roundTrip(t, p)
	if !reflect.DeepEqual(got.Policies, p.Policies) {
		t.Fatalf("policies after a round trip: %+v", got.Policies)
	}
	if !strings.Contains(string(doc), `"policies": [`) {
		t.Fatalf("no policies key:\n%s", doc)
	}
	c := got.Counts()
	zero := PolicyCount{Policy: "matches-nothing", Mode: ModeEnforce, Action: ActionDelete}
	if !slices.Contains(c.Policies, zero) || len(c.Policies) != 4 {
		t.Fatalf("Counts().Policies = %+v, want the 3 counted ones and %+v", c.Policies, zero)
	}
	got.Policies[1].Mode = ModeReport
	if err := got.VerifyHash(); err == nil {
		t.Fatal("a changed policy mode kept the hash")
	}

	old := samplePlan()
	if err := old.Seal(); err != nil {
		t.Fatal(err)
	}
	back, doc := roundTrip(t, old)
	if back.Policies != nil || strings.Contains(string(doc), "policies") {
		t.Fatalf("a plan without policies gained the key: %+v", back.Policies)
	}
	if err := back.VerifyHash(); err != nil {
		t.Fatal(err)
	}

	for _, bad := range []struct{ doc, want string }{
		{`[{"name": ""}]`, "policies[0]: name is empty"},
		{`[{"name": "a"}, {"name": "a"}]`, `policies[1] "a": also policies[0]`},
		{`[{"name": "a", "limit": 1}]`, `policies[0]`},
	} {
		raw := strings.Replace(string(doc), `"items": [`, `"policies": `+bad.doc+`, "items": [`, 1)
		if _, err := Read(strings.NewReader(raw)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("policies %s: %v, want %q", bad.doc, err, bad.want)
		}
	}
}

// Counts counts every item as the item itself says, whether a policy's
// items are next to each other (plan order) or interleaved.
func TestCountsOfManyItems(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, sorted := range []bool{false, true} {
		items := randomItems(rng, 3000)
		for i := range items {
			if rng.IntN(5) == 0 { // modes and actions mixed within a policy
				items[i].Mode, items[i].Action = ModeEnforce, []string{ActionPatch, ActionExpire, ActionReport}[rng.IntN(3)]
			}
		}
		p := &Plan{Items: NewItems(items...)}
		if sorted {
			p.Items.Sort()
		}
		c := p.Counts()
		want := map[[3]string]*PolicyCount{}
		byAction, byMode, pending := map[string]int{}, map[string]int{}, 0
		for _, it := range items {
			k := [3]string{it.Policy, it.Mode, it.Action}
			if want[k] == nil {
				want[k] = &PolicyCount{Policy: it.Policy, Mode: it.Mode, Action: it.Action}
			}
			want[k].Items++
			byAction[it.Action]++
			byMode[it.Mode]++
			if it.Mutating() {
				want[k].Pending++
				pending++
			}
		}
		if len(c.Policies) != len(want) || c.Items != len(items) || c.Pending != pending {
			t.Fatalf("sorted %v: %d policy counts, %d items, %d pending; want %d, %d, %d", sorted, len(c.Policies), c.Items, c.Pending, len(want), len(items), pending)
		}
		for _, pc := range c.Policies {
			if w := want[[3]string{pc.Policy, pc.Mode, pc.Action}]; w == nil || *w != pc {
				t.Fatalf("sorted %v: %+v, want %+v", sorted, pc, w)
			}
		}
		if !reflect.DeepEqual(c.ByAction, byAction) || !reflect.DeepEqual(c.ByMode, byMode) {
			t.Fatalf("sorted %v: ByAction %v ByMode %v, want %v %v", sorted, c.ByAction, c.ByMode, byAction, byMode)
		}
	}
}
