package plan

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

func clientPlan() *Plan {
	p := samplePlan()
	lu := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	da := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	due := da.Add(14 * 24 * time.Hour)
	p.APIClients = &Clients{
		Population: 3,
		Listings:   []Listing{{Filter: "", Count: 3}},
		Policies:   []Policy{{Name: "clients", Mode: ModeEnforce, Action: ActionDelete}},
		Items: []ClientItem{
			{ClientID: "c1", Name: "legacy", Type: "CONFIDENTIAL", GrantTypes: []string{"CLIENT_CREDENTIALS"}, Scope: pat.Scopes{Null: true},
				Enabled: true, Created: lu.Add(-time.Hour), Policy: "clients", Mode: ModeEnforce, Action: ActionDisable, Reason: "never used"},
			{ClientID: "c2", Name: "old", Scope: pat.ScopesOf(), Created: lu, LastUsed: &lu, Policy: "clients", Mode: ModeEnforce,
				Action: ActionReport, Reason: "waiting", DisabledAt: &da, DeleteAfter: &due},
		},
		Skipped:    []Skipped{{TokenID: "c3", TokenName: "ui", Policy: "clients", Reason: "internal"}},
		Guardrails: []Guardrail{{Name: "maxActionsPerRun", Limit: 25, Wanted: 1}},
	}
	return p
}

func TestClientsSectionRoundTrip(t *testing.T) {
	p := clientPlan()
	if err := p.Seal(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, p); err != nil {
		t.Fatal(err)
	}
	q, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("read: %v\n%s", err, buf.Bytes())
	}
	if err := q.VerifyHash(); err != nil {
		t.Fatalf("the read plan does not verify: %v", err)
	}
	if q.APIClients == nil || len(q.APIClients.Items) != 2 || !q.APIClients.Items[0].Mutating() || q.APIClients.Items[1].Mutating() ||
		!q.APIClients.Items[0].Scope.Null || q.APIClients.Items[1].DeleteAfter == nil {
		t.Fatalf("read back: %+v", q.APIClients)
	}
	// Changing the section breaks the hash: it is approved with the rest.
	q.APIClients.Items[1].Action = ActionDelete
	if err := q.VerifyHash(); err == nil {
		t.Fatal("a changed API client item still verifies")
	}
}

// A plan without API client policies has no apiClients key: its encoding,
// and so the hash of every plan made before the section existed, is
// unchanged.
func TestClientsSectionAbsentByDefault(t *testing.T) {
	p := samplePlan()
	var buf bytes.Buffer
	if err := Write(&buf, p); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "apiClients") {
		t.Fatal("a token-only plan carries an apiClients key")
	}
}

func TestClientsSectionStrict(t *testing.T) {
	p := clientPlan()
	if err := p.Seal(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, p); err != nil {
		t.Fatal(err)
	}
	good := buf.String()
	for name, bad := range map[string]string{
		"unknown key":      strings.Replace(good, `"clientId": "c1",`, `"clientId": "c1", "owner": "x",`, 1),
		"bad action":       strings.Replace(good, `"action": "disable"`, `"action": "patch"`, 1),
		"bad time":         strings.Replace(good, `"deleteAfter": "2026-11-15T00:00:00.000Z"`, `"deleteAfter": "soon"`, 1),
		"duplicate client": strings.Replace(good, `"clientId": "c2"`, `"clientId": "c1"`, 1),
		"empty id":         strings.Replace(good, `"clientId": "c1"`, `"clientId": ""`, 1),
	} {
		if bad == good {
			t.Fatalf("%s: the replacement did not apply", name)
		}
		if _, err := Read(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "apiClients") && !strings.Contains(err.Error(), "client") {
			t.Errorf("%s: Read = %v, want an error about the apiClients section", name, err)
		}
	}
}

// A grace item of the API client section (mode grace, marked, deadline)
// survives Write/Read and the hash; an unknown mode is refused.
func TestClientGraceItemRoundTrip(t *testing.T) {
	p := clientPlan()
	marked := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
	deadline := marked.Add(7 * 24 * time.Hour)
	p.APIClients.Items[0].Mode, p.APIClients.Items[0].Marked, p.APIClients.Items[0].Deadline = ModeGrace, &marked, &deadline
	if err := p.Seal(); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Write(&b, p); err != nil {
		t.Fatal(err)
	}
	q, err := Read(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	it := q.APIClients.Items[0]
	if it.Mode != ModeGrace || it.Marked == nil || !it.Marked.Equal(marked) || it.Deadline == nil || !it.Deadline.Equal(deadline) || it.Mutating() {
		t.Fatalf("read back %+v", it)
	}
	if err := q.VerifyHash(); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(b.Bytes(), []byte(`"mode": "grace"`), []byte(`"mode": "later"`), 1)
	if bytes.Equal(bad, b.Bytes()) {
		bad = bytes.Replace(b.Bytes(), []byte(`"mode":"grace"`), []byte(`"mode":"later"`), 1)
	}
	if _, err := Read(bytes.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "later") {
		t.Fatalf("an unknown mode: %v", err)
	}
}
