package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// AuthorityOrgAdmin is the user level that holds the rights a janitor needs
// on every owner's tokens: idn:all-personal-access-tokens:read (listing
// without owner-id) and :update (bulk-update). Other user levels see, at
// best, their own tokens.
const AuthorityOrgAdmin = "ORG_ADMIN"

// maxAccessTokenLen bounds what ParseClaims reads: a SailPoint access token is
// about 1-2 KB; anything far larger is not one.
const maxAccessTokenLen = 64 << 10

// Caller is who the tenant says patjanitor is: the claims of its access
// token (client_id, identity_id, user_name, authorities, scope, tenant_id,
// org, pod, exp). None of them is secret; the token itself is, and
// is never kept here.
type Caller struct {
	ClientID    string
	IdentityID  string
	UserName    string
	Authorities []string
	Scope       []string
	TenantID    string
	Org         string
	Pod         string
	// Expires is the access token's exp (zero when absent).
	Expires time.Time
}

// Has reports whether the caller holds an authority (user level), e.g.
// AuthorityOrgAdmin. Authorities are compared without regard to case.
func (c *Caller) Has(authority string) bool {
	for _, a := range c.Authorities {
		if strings.EqualFold(a, authority) {
			return true
		}
	}
	return false
}

// AdminLevel reports whether the caller's user level lets it see and change
// every owner's tokens.
func (c *Caller) AdminLevel() bool { return c.Has(AuthorityOrgAdmin) }

// ErrNotJWT means the access token is not a JWT whose claims can be read.
var ErrNotJWT = errors.New("the access token is not a JWT with readable claims")

// claims is the JSON payload of a SailPoint access token. scope is an array
// in the documented tokens; a space-separated string (RFC 8693 style) is
// accepted as well.
type claims struct {
	ClientID    string          `json:"client_id"`
	IdentityID  string          `json:"identity_id"`
	UserName    string          `json:"user_name"`
	Authorities []string        `json:"authorities"`
	Scope       json.RawMessage `json:"scope"`
	TenantID    string          `json:"tenant_id"`
	Org         string          `json:"org"`
	Pod         string          `json:"pod"`
	Exp         json.Number     `json:"exp"`
}

// ParseClaims reads the claims of a JWT access token WITHOUT verifying its
// signature. That is deliberate: the token came straight from the tenant's
// token endpoint over TLS (or loopback), in answer to our own credentials, so
// the transport already vouches for who issued it; the tenant verifies it on
// every call, and patjanitor only reads what the tenant said about us (who
// we are, which user level) to judge how much of the tenant it can see. A
// forged token could only make patjanitor more cautious or be refused by the
// tenant. Verifying would need the tenant's signing keys, which SailPoint does
// not document, and a JWT library, for nothing gained.
//
// Errors never contain the token.
func ParseClaims(token string) (Caller, error) {
	if len(token) > maxAccessTokenLen {
		return Caller{}, fmt.Errorf("%w: %d bytes is too long", ErrNotJWT, len(token))
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Caller{}, fmt.Errorf("%w: %d dot-separated parts, want 3", ErrNotJWT, len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return Caller{}, fmt.Errorf("%w: the payload is not base64url", ErrNotJWT)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var cl claims
	if err := dec.Decode(&cl); err != nil {
		return Caller{}, fmt.Errorf("%w: the payload is not a JSON object of the expected claims", ErrNotJWT)
	}
	if dec.More() {
		return Caller{}, fmt.Errorf("%w: data after the payload object", ErrNotJWT)
	}
	c := Caller{
		ClientID: cl.ClientID, IdentityID: cl.IdentityID, UserName: cl.UserName,
		Authorities: cl.Authorities, TenantID: cl.TenantID, Org: cl.Org, Pod: cl.Pod,
	}
	if len(cl.Scope) > 0 && !bytes.Equal(cl.Scope, []byte("null")) {
		var list []string
		var s string
		switch {
		case json.Unmarshal(cl.Scope, &list) == nil:
			c.Scope = list
		case json.Unmarshal(cl.Scope, &s) == nil:
			c.Scope = strings.Fields(s)
		default:
			return Caller{}, fmt.Errorf("%w: scope is neither a list nor a string", ErrNotJWT)
		}
	}
	if cl.Exp != "" {
		f, err := cl.Exp.Float64()
		if err != nil || f < 0 || f > 1e11 {
			return Caller{}, fmt.Errorf("%w: exp is not a plausible time", ErrNotJWT)
		}
		c.Expires = time.Unix(int64(f), 0).UTC()
	}
	return c, nil
}

// Caller returns the claims of the access token the client uses now,
// fetching one if it has none yet. The claims are those of the credential,
// whichever access token it is: a refresh does not change them.
func (c *Client) Caller(ctx context.Context) (Caller, error) {
	tok, err := c.auth.get(ctx)
	if err != nil {
		return Caller{}, err
	}
	cl, err := ParseClaims(tok)
	if err != nil {
		return Caller{}, err
	}
	// The claims are the token endpoint's text, shown in the plan (its
	// caller section): scrubbed like a listing (scrub.go), since that
	// endpoint received the client secret.
	r := c.listedRedactor()
	cl.ClientID, cl.IdentityID, cl.UserName = r.Redact(cl.ClientID), r.Redact(cl.IdentityID), r.Redact(cl.UserName)
	cl.TenantID, cl.Org, cl.Pod = r.Redact(cl.TenantID), r.Redact(cl.Org), r.Redact(cl.Pod)
	cl.Authorities, _ = redactAll(r, cl.Authorities)
	cl.Scope, _ = redactAll(r, cl.Scope)
	return cl, nil
}
