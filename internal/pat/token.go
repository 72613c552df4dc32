package pat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// ScopeAll is the scope that grants every right of the owner's user level. The
// tenant gives it to a token created without a scope, and a null scope means it.
const ScopeAll = "sp:scopes:all"

// Owner is the PatOwner object. Every field is optional in the spec.
type Owner struct {
	Type string `json:"type,omitempty"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// Scopes is a token's scope list as the API sent it. Null (the field was null or
// absent) is kept apart from an empty list because the tenant treats a null scope
// as sp:scopes:all, while an empty list grants nothing.
type Scopes struct {
	Null   bool
	Values []string
}

// ScopesOf returns a non-null scope list holding values (an empty list if none).
func ScopesOf(values ...string) Scopes {
	if values == nil {
		values = []string{}
	}
	return Scopes{Values: values}
}

// Effective returns the scopes the token really holds: sp:scopes:all for a null
// scope, the listed values otherwise.
func (s Scopes) Effective() []string {
	if s.Null {
		return []string{ScopeAll}
	}
	return s.Values
}

// Has reports whether the token effectively holds scope.
func (s Scopes) Has(scope string) bool {
	for _, v := range s.Effective() {
		if v == scope {
			return true
		}
	}
	return false
}

// MarshalJSON writes null for a null scope and a (possibly empty) array otherwise.
func (s Scopes) MarshalJSON() ([]byte, error) {
	if s.Null {
		return []byte("null"), nil
	}
	if s.Values == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(s.Values)
}

// UnmarshalJSON keeps null apart from [].
func (s *Scopes) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*s = Scopes{Null: true}
		return nil
	}
	var v []string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("scope: %w", err)
	}
	*s = ScopesOf(v...)
	return nil
}

// Token is a personal access token as listed by GET /personal-access-tokens
// (GetPersonalAccessTokenResponse), in any supported API version.
type Token struct {
	ID    string
	Name  string
	Scope Scopes
	Owner Owner
	// Created is when the token was created, in UTC.
	Created time.Time
	// LastUsed is nil when the token has never been used. The tenant updates it at
	// most once a day, and only when the token mints an access token.
	LastUsed *time.Time
	// Managed is true unless the listing said "managed": false in so many
	// words: a missing, null or malformed value is taken as managed, which
	// patjanitor leaves alone unless a policy opts in. Guessing "unmanaged"
	// would expose a platform token to deletion.
	Managed bool
	// AccessTokenValiditySeconds is 0 when the field was absent.
	AccessTokenValiditySeconds int
	// ExpirationDate is nil when the token never expires (v2025+, v1) or when the
	// field was absent or null (v3 declares it non-nullable, but tenants differ).
	ExpirationDate *time.Time
	// UserAwareTokenNeverExpires is nil where the API version does not send it.
	UserAwareTokenNeverExpires *bool
	// Undecodable says why the tenant's data for this token cannot be used
	// (e.g. "scope[0] is null"); "" when it can. Such a token is skipped with
	// that reason: never acted on, never the source of a patch value.
	Undecodable string
}

// LastUsedString renders LastUsed for explanations: the timestamp or "never".
func (t *Token) LastUsedString() string {
	if t.LastUsed == nil {
		return "never"
	}
	return FormatTime(*t.LastUsed)
}

// wireToken is the JSON shape. Times travel as strings so that they can be parsed
// leniently and written in TimeLayout.
type wireToken struct {
	ID                         string  `json:"id"`
	Name                       string  `json:"name"`
	Scope                      Scopes  `json:"scope"`
	Owner                      Owner   `json:"owner"`
	Created                    string  `json:"created"`
	LastUsed                   *string `json:"lastUsed"`
	Managed                    bool    `json:"managed"`
	AccessTokenValiditySeconds int     `json:"accessTokenValiditySeconds,omitempty"`
	ExpirationDate             *string `json:"expirationDate,omitempty"`
	UserAwareTokenNeverExpires *bool   `json:"userAwareTokenNeverExpires,omitempty"`
}

// MarshalJSON writes the token in the API's shape, times in TimeLayout.
func (t Token) MarshalJSON() ([]byte, error) {
	w := wireToken{
		ID: t.ID, Name: t.Name, Scope: t.Scope, Owner: t.Owner,
		Created:                    FormatTime(t.Created),
		Managed:                    t.Managed,
		AccessTokenValiditySeconds: t.AccessTokenValiditySeconds,
		UserAwareTokenNeverExpires: t.UserAwareTokenNeverExpires,
	}
	if t.LastUsed != nil {
		s := FormatTime(*t.LastUsed)
		w.LastUsed = &s
	}
	if t.ExpirationDate != nil {
		s := FormatTime(*t.ExpirationDate)
		w.ExpirationDate = &s
	}
	return json.Marshal(w)
}

// readToken is the JSON shape as read: scope and managed are kept raw, as
// their meaning depends on more than their Go type (a null element, a value
// that is not a boolean).
type readToken struct {
	ID                         string          `json:"id"`
	Name                       string          `json:"name"`
	Scope                      readScope       `json:"scope"`
	Owner                      Owner           `json:"owner"`
	Created                    string          `json:"created"`
	LastUsed                   *string         `json:"lastUsed"`
	Managed                    json.RawMessage `json:"managed"`
	AccessTokenValiditySeconds int             `json:"accessTokenValiditySeconds,omitempty"`
	ExpirationDate             *string         `json:"expirationDate,omitempty"`
	UserAwareTokenNeverExpires *bool           `json:"userAwareTokenNeverExpires,omitempty"`
}

// readScope reads one occurrence of the scope field (encoding/json calls
// UnmarshalJSON for each duplicate key, so a malformed earlier one is an
// error even if a later one replaces it): null is Null, an array is its
// strings, with the index of its first null element (-1 when none).
type readScope struct {
	s      Scopes
	nullAt int
	set    bool
}

func (r *readScope) UnmarshalJSON(b []byte) error {
	*r = readScope{s: Scopes{Null: true}, nullAt: -1, set: true}
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	var elems []*string
	if err := json.Unmarshal(b, &elems); err != nil {
		return fmt.Errorf("scope: %w", err)
	}
	values := make([]string, len(elems))
	for i, e := range elems {
		if e == nil {
			if r.nullAt < 0 {
				r.nullAt = i
			}
			continue
		}
		values[i] = *e
	}
	r.s = ScopesOf(values...)
	return nil
}

// ManagedValue reads the managed field as patjanitor does: only the literal
// false is unmanaged; raw is nil when the field was absent.
func ManagedValue(raw []byte) bool {
	return !bytes.Equal(bytes.TrimSpace(raw), []byte("false"))
}

// NullScopeElement is the Undecodable reason of a scope list whose element i
// is null: the tenant's own default for an element, sp:scopes:all, cannot be
// told from a corrupt entry, and "" would be sent back as a scope.
func NullScopeElement(i int) string { return fmt.Sprintf("scope[%d] is null", i) }

// UnmarshalJSON decodes the API's shape. A missing or null scope is Null, a
// null inside it makes the token Undecodable; anything but "managed": false
// is managed; id and created are required; every timestamp must parse.
func (t *Token) UnmarshalJSON(b []byte) error {
	var w readToken
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	scope, undecodable := Scopes{Null: true}, ""
	if w.Scope.set {
		scope = w.Scope.s
		if w.Scope.nullAt >= 0 {
			undecodable = NullScopeElement(w.Scope.nullAt)
		}
	}
	if w.ID == "" {
		return fmt.Errorf("token without id")
	}
	created, err := ParseTime(w.Created)
	if err != nil {
		return fmt.Errorf("token %s: created: %w", w.ID, err)
	}
	tok := Token{
		ID: w.ID, Name: w.Name, Scope: scope, Owner: w.Owner, Created: created,
		Managed:                    ManagedValue(w.Managed),
		AccessTokenValiditySeconds: w.AccessTokenValiditySeconds,
		UserAwareTokenNeverExpires: w.UserAwareTokenNeverExpires,
		Undecodable:                undecodable,
	}
	if w.LastUsed != nil {
		lu, err := ParseTime(*w.LastUsed)
		if err != nil {
			return fmt.Errorf("token %s: lastUsed: %w", w.ID, err)
		}
		tok.LastUsed = &lu
	}
	if w.ExpirationDate != nil {
		exp, err := ParseTime(*w.ExpirationDate)
		if err != nil {
			return fmt.Errorf("token %s: expirationDate: %w", w.ID, err)
		}
		tok.ExpirationDate = &exp
	}
	*t = tok
	return nil
}
