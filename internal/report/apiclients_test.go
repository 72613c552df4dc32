package report

import (
	"bytes"
	"encoding/csv"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
)

func TestReportsShowAPIClients(t *testing.T) {
	p := &plan.Plan{Version: 1, Tenant: "https://t", APIVersion: "v3", GeneratedAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
		Items: plan.NewItems(), Skipped: []plan.Skipped{}, Guardrails: []plan.Guardrail{},
		APIClients: &plan.Clients{Population: 2, Error: "listing of all API clients: 403",
			Items: []plan.ClientItem{{ClientID: "c-1", Name: "evil\x1b[2Jname|x", Scope: pat.Scopes{Null: true}, Enabled: true,
				Policy: "cli\x1b[1ments", Mode: "enforce", Action: "disable", Reason: "never used"}},
			Skipped: []plan.Skipped{{TokenID: "c-2", TokenName: "ui", Policy: "clients", Reason: "internal"}},
			// A saved plan is a file anyone could have edited: its
			// guardrail text reaches the terminal only escaped.
			Guardrails: []plan.Guardrail{{Name: "maxActions\x1b[2JPerRun", Limit: 1, Wanted: 2, Tripped: true, Detail: "2 wanted\x1b]0;owned\x07"}}}}
	for _, format := range []string{FormatTable, FormatMarkdown, FormatHTML} {
		var b bytes.Buffer
		if err := Render(&b, p, format); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, want := range []string{"API clients", "c-1", "disable", "internal", "403"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s report lacks %q:\n%s", format, want, out)
			}
		}
		if strings.Contains(out, "\x1b") {
			t.Errorf("%s report passes a terminal escape from a client name, policy or guardrail through:\n%q", format, out)
		}
	}
}

// The CSV of a plan with an apiClients section has the API client items as
// rows, after the token rows, with a last resource column; the token columns
// keep their order, and a plan without the section writes no resource
// column.
func TestCSVCarriesAPIClients(t *testing.T) {
	gen := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	p := &plan.Plan{Version: 1, Tenant: "https://t", APIVersion: "v3", GeneratedAt: gen,
		Items: plan.NewItems(plan.Item{TokenID: "t-1", TokenName: "ci", OwnerID: "o-1", OwnerName: "Ann", Policy: "tokens",
			Mode: "report", Action: "delete", Reason: "old", Created: gen, Scope: pat.Scopes{Null: true}}),
		Skipped: []plan.Skipped{}, Guardrails: []plan.Guardrail{},
	}
	var b bytes.Buffer
	if err := Render(&b, p, FormatCSV); err != nil {
		t.Fatal(err)
	}
	before := b.String()
	if strings.Contains(before, "resource") {
		t.Fatalf("a plan without API client policies got a resource column:\n%s", before)
	}
	p.APIClients = &plan.Clients{Items: []plan.ClientItem{{ClientID: "c-1", Name: "=cmd", Scope: pat.Scopes{Null: true},
		Enabled: true, Created: gen, Policy: "clients", Mode: "grace", Action: "disable", Reason: "never used"}}}
	b.Reset()
	if err := Render(&b, p, FormatCSV); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"tokenId", "tokenName", "ownerId", "ownerName", "policy", "mode", "action", "reason", "created", "lastUsed", "scope", "patch", "resource"},
		{"t-1", "ci", "o-1", "Ann", "tokens", "report", "delete", "old", "2026-01-02T00:00:00.000Z", "", "null", "[]", "personalAccessTokens"},
		{"c-1", "'=cmd", "", "", "clients", "grace", "disable", "never used", "2026-01-02T00:00:00.000Z", "", "null", "[]", "apiClients"},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("rows = %q\nwant %q", rows, want)
	}
	old, _ := csv.NewReader(strings.NewReader(before)).ReadAll()
	if !reflect.DeepEqual(old[1], rows[1][:12]) {
		t.Fatalf("the token row changed: %q vs %q", old[1], rows[1][:12])
	}
}

// The confirmation table (ChangesOnly) lists a held API client (grace): it
// changes nothing in the tenant but warns the notify.apiClients receivers;
// report-only items are counted, not listed.
func TestChangesOnlyTableShowsHeldAPIClients(t *testing.T) {
	gen := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	p := &plan.Plan{Version: 1, Tenant: "https://t", APIVersion: "v3", GeneratedAt: gen,
		Items: plan.NewItems(), Skipped: []plan.Skipped{}, Guardrails: []plan.Guardrail{},
		APIClients: &plan.Clients{Population: 2, Items: []plan.ClientItem{
			{ClientID: "c-held", Name: "held", Scope: pat.Scopes{Null: true}, Created: gen, Policy: "clients", Mode: plan.ModeGrace, Action: "disable", Reason: "never used; grace 7d: marked by this run"},
			{ClientID: "c-report", Name: "rep", Scope: pat.Scopes{Null: true}, Created: gen, Policy: "clients-report", Mode: plan.ModeReport, Action: "report", Reason: "old"},
		}}}
	var b bytes.Buffer
	if err := RenderOptions(&b, p, FormatTable, Options{ChangesOnly: true}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "c-held") || !strings.Contains(out, "grace 7d") || strings.Contains(out, "c-report") || !strings.Contains(out, "1 report-only") {
		t.Fatalf("changes-only table:\n%s", out)
	}
}
