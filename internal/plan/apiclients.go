package plan

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// ActionDisable is the API client action that sets enabled to false.
const ActionDisable = "disable"

// Clients is the plan's section on OAuth API clients (resource: apiClients),
// present only when the config has apiClients policies: a plan without them
// encodes, and hashes, exactly as before the section existed. The section
// has its own population, listings, error and guardrails, because the two
// resources are listed and limited separately: an incomplete client listing
// blocks the client actions, not the token actions, and the reverse.
type Clients struct {
	Population int          `json:"population"`
	Listings   []Listing    `json:"listings"`
	Error      string       `json:"error,omitempty"`
	Policies   []Policy     `json:"policies"`
	Items      []ClientItem `json:"items"`
	Skipped    []Skipped    `json:"skipped"`
	Guardrails []Guardrail  `json:"guardrails"`
}

// ClientItem is one API client a policy decided on.
type ClientItem struct {
	ClientID   string
	Name       string
	Type       string
	GrantTypes []string
	Scope      pat.Scopes
	Enabled    bool
	Internal   bool
	Created    time.Time
	LastUsed   *time.Time
	Policy     string
	Mode       string
	// Action is what this run does: report, disable or delete (a delete
	// policy's item is disable while the client is enabled, report while
	// disabledFor runs).
	Action      string
	Reason      string
	AlsoMatched []string
	// DisabledAt is when patjanitor disabled the client, DeleteAfter when a
	// delete policy may delete it (delete policies only).
	DisabledAt  *time.Time
	DeleteAfter *time.Time
	// Marked and Deadline are set for an item of a policy with grace: when
	// the client was first marked, and the deadline the notify.apiClients
	// receivers were told (nil until the warning is delivered). Mode is
	// ModeGrace while the deadline has not passed.
	Marked   *time.Time
	Deadline *time.Time
}

// Mutating reports whether executing the item changes the tenant.
func (it *ClientItem) Mutating() bool {
	return it.Mode == ModeEnforce && (it.Action == ActionDisable || it.Action == ActionDelete)
}

// Tripped returns the section's tripped guardrails.
func (c *Clients) Tripped() []Guardrail {
	var out []Guardrail
	for _, g := range c.Guardrails {
		if g.Tripped {
			out = append(out, g)
		}
	}
	return out
}

type wireClientItem struct {
	ClientID    string     `json:"clientId"`
	Name        string     `json:"name"`
	Type        string     `json:"type"`
	GrantTypes  []string   `json:"grantTypes"`
	Scope       pat.Scopes `json:"scope"`
	Enabled     bool       `json:"enabled"`
	Internal    bool       `json:"internal"`
	Created     string     `json:"created"`
	LastUsed    *string    `json:"lastUsed"`
	Policy      string     `json:"policy"`
	Mode        string     `json:"mode"`
	Action      string     `json:"action"`
	Reason      string     `json:"reason"`
	AlsoMatched []string   `json:"alsoMatched"`
	DisabledAt  *string    `json:"disabledAt,omitempty"`
	DeleteAfter *string    `json:"deleteAfter,omitempty"`
	Marked      *string    `json:"marked,omitempty"`
	Deadline    *string    `json:"deadline,omitempty"`
}

func timeString(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := pat.FormatTime(*t)
	return &s
}

// MarshalJSON writes times in pat.TimeLayout and [] for empty lists, so that
// a plan read back hashes as it did when sealed.
func (it ClientItem) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireClientItem{
		ClientID: it.ClientID, Name: it.Name, Type: it.Type, GrantTypes: nonNil(it.GrantTypes),
		Scope: it.Scope, Enabled: it.Enabled, Internal: it.Internal, Created: pat.FormatTime(it.Created),
		LastUsed: timeString(it.LastUsed), Policy: it.Policy, Mode: it.Mode, Action: it.Action,
		Reason: it.Reason, AlsoMatched: nonNil(it.AlsoMatched),
		DisabledAt: timeString(it.DisabledAt), DeleteAfter: timeString(it.DeleteAfter),
		Marked: timeString(it.Marked), Deadline: timeString(it.Deadline),
	})
}

// UnmarshalJSON reads an item strictly (no unknown keys, valid times).
func (it *ClientItem) UnmarshalJSON(b []byte) error {
	var w wireClientItem
	if err := strictDecode(b, &w); err != nil {
		return err
	}
	if w.ClientID == "" {
		return fmt.Errorf("clientId is empty")
	}
	parse := func(name string, s *string) (*time.Time, error) {
		if s == nil {
			return nil, nil
		}
		t, err := pat.ParseTime(*s)
		if err != nil {
			return nil, fmt.Errorf("client %s: %s: %w", w.ClientID, name, err)
		}
		return &t, nil
	}
	created, err := pat.ParseTime(w.Created)
	if err != nil {
		return fmt.Errorf("client %s: created: %w", w.ClientID, err)
	}
	out := ClientItem{
		ClientID: w.ClientID, Name: w.Name, Type: w.Type, GrantTypes: nonNil(w.GrantTypes), Scope: w.Scope,
		Enabled: w.Enabled, Internal: w.Internal, Created: created, Policy: w.Policy, Mode: w.Mode,
		Action: w.Action, Reason: w.Reason, AlsoMatched: nonNil(w.AlsoMatched),
	}
	if out.LastUsed, err = parse("lastUsed", w.LastUsed); err != nil {
		return err
	}
	if out.DisabledAt, err = parse("disabledAt", w.DisabledAt); err != nil {
		return err
	}
	if out.DeleteAfter, err = parse("deleteAfter", w.DeleteAfter); err != nil {
		return err
	}
	if out.Marked, err = parse("marked", w.Marked); err != nil {
		return err
	}
	if out.Deadline, err = parse("deadline", w.Deadline); err != nil {
		return err
	}
	switch out.Mode {
	case ModeReport, ModeEnforce, ModeGrace:
	default:
		return fmt.Errorf("client %s: mode %q: want report, enforce or grace", w.ClientID, out.Mode)
	}
	switch out.Action {
	case ActionReport, ActionDisable, ActionDelete:
	default:
		return fmt.Errorf("client %s: action %q: want report, disable or delete", w.ClientID, out.Action)
	}
	*it = out
	return nil
}

// MarshalJSON writes the section with [] for every empty list.
func (c Clients) MarshalJSON() ([]byte, error) {
	type plain Clients
	p := plain(c)
	p.Listings, p.Policies, p.Items = nonNil(p.Listings), nonNil(p.Policies), nonNil(p.Items)
	p.Skipped, p.Guardrails = nonNil(p.Skipped), nonNil(p.Guardrails)
	return json.Marshal(p)
}

// UnmarshalJSON reads the section strictly.
func (c *Clients) UnmarshalJSON(b []byte) error {
	type plain Clients
	var p plain
	if err := strictDecode(b, &p); err != nil {
		return fmt.Errorf("apiClients: %w", err)
	}
	if p.Population < 0 {
		return fmt.Errorf("apiClients: population %d is negative", p.Population)
	}
	// By pat.IDKey: one client however its id is spelt (invariant 9); two
	// spellings would be two requests for one client.
	seen := map[string]bool{}
	for _, it := range p.Items {
		if seen[pat.IDKey(it.ClientID)] {
			return fmt.Errorf("apiClients: client %s has two items (a client gets at most one action)", it.ClientID)
		}
		seen[pat.IDKey(it.ClientID)] = true
	}
	p.Listings, p.Policies, p.Items = nonNil(p.Listings), nonNil(p.Policies), nonNil(p.Items)
	p.Skipped, p.Guardrails = nonNil(p.Skipped), nonNil(p.Guardrails)
	*c = Clients(p)
	return nil
}

// clients writes the section (when there is one) at the end of the
// document.
func (e *encoder) clients(c *Clients) error {
	if c == nil {
		return nil
	}
	e.key("apiClients")
	return e.marshaled(c)
}

// PendingClients returns the API client items that would change the tenant
// (enforce-mode disable and delete), in plan order; nil without the section.
func (p *Plan) PendingClients() []ClientItem {
	if p.APIClients == nil {
		return nil
	}
	var out []ClientItem
	for _, it := range p.APIClients.Items {
		if it.Mutating() {
			out = append(out, it)
		}
	}
	return out
}
