// Package apiclient is the model of an OAuth API client of the tenant
// (GetOAuthClientResponse of GET /v3/oauth-clients): the other long-lived
// credential patjanitor governs besides personal access tokens. It holds the
// type and its JSON form only; listing and changing clients is the api
// package's job, deciding about them the policy package's.
package apiclient

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// Resource is the name of this resource in policies (resource: apiClients),
// plans, journal records and metric labels.
const Resource = "apiClients"

// PathEnabled is the one path patjanitor ever patches on an API client.
const PathEnabled = pat.PathEnabled

// Client types (ClientType in the spec).
const (
	TypeConfidential = "CONFIDENTIAL"
	TypePublic       = "PUBLIC"
)

// GrantTypes the spec lists (GrantType).
var GrantTypes = []string{"CLIENT_CREDENTIALS", "AUTHORIZATION_CODE", "REFRESH_TOKEN"}

// Client is an API client as listed. API clients have no owner.
type Client struct {
	ID           string
	Name         string
	BusinessName string
	Description  string
	// Type is CONFIDENTIAL or PUBLIC ("" when absent).
	Type       string
	GrantTypes []string
	// Scope keeps null (sp:scopes:all) apart from [] as for tokens.
	Scope pat.Scopes
	// Internal and Enabled are nil when the tenant did not send them (or sent
	// null): such a client is treated as internal and enabled, never acted
	// on, and reported (see Protected).
	Internal *bool
	Enabled  *bool
	Created  time.Time
	Modified *time.Time
	// LastUsed is nil when the client never minted an access token. The
	// tenant updates it once a day.
	LastUsed *time.Time
}

// IsEnabled reports whether the client can be used: true unless the tenant
// said enabled: false.
func (c *Client) IsEnabled() bool { return c.Enabled == nil || *c.Enabled }

// IsInternal reports whether the client is internal to the tenant, or may be:
// a missing internal flag counts as internal.
func (c *Client) IsInternal() bool { return c.Internal == nil || *c.Internal }

// Incomplete names the protection flags the tenant did not send ("" when
// both were there).
func (c *Client) Incomplete() string {
	switch {
	case c.Internal == nil && c.Enabled == nil:
		return "internal and enabled"
	case c.Internal == nil:
		return "internal"
	case c.Enabled == nil:
		return "enabled"
	}
	return ""
}

// LastUsedString renders LastUsed for explanations: the timestamp or "never".
func (c *Client) LastUsedString() string {
	if c.LastUsed == nil {
		return "never"
	}
	return pat.FormatTime(*c.LastUsed)
}

// wire is the JSON shape. Times travel as strings so that they are parsed
// leniently and written in pat.TimeLayout. Fields patjanitor does not use
// (redirect URIs, secrets, metadata) are not kept: a listing never carries
// a secret into the journal.
type wire struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	BusinessName *string    `json:"businessName,omitempty"`
	Description  *string    `json:"description,omitempty"`
	Type         string     `json:"type,omitempty"`
	GrantTypes   []string   `json:"grantTypes"`
	Scope        pat.Scopes `json:"scope"`
	Internal     *bool      `json:"internal"`
	Enabled      *bool      `json:"enabled"`
	Created      string     `json:"created"`
	Modified     *string    `json:"modified,omitempty"`
	LastUsed     *string    `json:"lastUsed"`
}

// MarshalJSON writes the client in the API's shape (the fields kept), times
// in pat.TimeLayout; a missing internal or enabled stays null.
func (c Client) MarshalJSON() ([]byte, error) {
	w := wire{
		ID: c.ID, Name: c.Name, Type: c.Type, GrantTypes: c.GrantTypes, Scope: c.Scope,
		Internal: c.Internal, Enabled: c.Enabled, Created: pat.FormatTime(c.Created),
	}
	if w.GrantTypes == nil {
		w.GrantTypes = []string{}
	}
	if c.BusinessName != "" {
		w.BusinessName = &c.BusinessName
	}
	if c.Description != "" {
		w.Description = &c.Description
	}
	if c.Modified != nil {
		s := pat.FormatTime(*c.Modified)
		w.Modified = &s
	}
	if c.LastUsed != nil {
		s := pat.FormatTime(*c.LastUsed)
		w.LastUsed = &s
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes the API's shape. id and created are required and
// every timestamp must parse; a missing or null scope is Null.
func (c *Client) UnmarshalJSON(b []byte) error {
	w := wire{Scope: pat.Scopes{Null: true}}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if w.ID == "" {
		return fmt.Errorf("API client without id")
	}
	created, err := pat.ParseTime(w.Created)
	if err != nil {
		return fmt.Errorf("API client %s: created: %w", w.ID, err)
	}
	out := Client{
		ID: w.ID, Name: w.Name, Type: w.Type, GrantTypes: w.GrantTypes, Scope: w.Scope,
		Internal: w.Internal, Enabled: w.Enabled, Created: created,
	}
	if w.BusinessName != nil {
		out.BusinessName = *w.BusinessName
	}
	if w.Description != nil {
		out.Description = *w.Description
	}
	for _, f := range []struct {
		name string
		src  *string
		dst  **time.Time
	}{{"modified", w.Modified, &out.Modified}, {"lastUsed", w.LastUsed, &out.LastUsed}} {
		if f.src == nil {
			continue
		}
		t, err := pat.ParseTime(*f.src)
		if err != nil {
			return fmt.Errorf("API client %s: %s: %w", w.ID, f.name, err)
		}
		*f.dst = &t
	}
	*c = out
	return nil
}

// Bool returns a pointer to b, for building clients in code.
func Bool(b bool) *bool { return &b }
