package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/plan"
)

func TestReportsShowAPIClients(t *testing.T) {
	p := &plan.Plan{Version: 1, Tenant: "https://t", APIVersion: "v3", GeneratedAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
		Items: []plan.Item{}, Skipped: []plan.Skipped{}, Guardrails: []plan.Guardrail{},
		APIClients: &plan.Clients{Population: 2, Error: "listing of all API clients: 403",
			Items: []plan.ClientItem{{ClientID: "c-1", Name: "evil\x1b[2Jname|x", Scope: pat.Scopes{Null: true}, Enabled: true,
				Policy: "clients", Mode: "enforce", Action: "disable", Reason: "never used"}},
			Skipped: []plan.Skipped{{TokenID: "c-2", TokenName: "ui", Policy: "clients", Reason: "internal"}}}}
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
			t.Errorf("%s report passes a terminal escape from a client name through", format)
		}
	}
}
