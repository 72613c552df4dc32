package api

import (
	"errors"
	"fmt"
	"slices"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// What the tenant lists is text a hostile tenant, or a proxy between, may
// choose, and such a party knows the bearer token patjanitor sent it (and,
// at the token endpoint, the client secret). Echoed into a token's name, an
// owner's name or any other listed string, the credential would travel with
// that string into the plan file, every report format, the logs, the
// journal and the notifications. So every listed string is scrubbed as it
// is decoded, of the client secret and the access tokens issued lately, in
// every form they take on the wire (secret.Redactor). The run's other
// secrets (webhook URLs, HMAC keys, SMTP passwords) are never sent to the
// tenant, which cannot echo what it never saw; the notifiers scrub them from
// what their own receivers answer.
//
// Redacted, not refused: what patjanitor does to a token goes by its id,
// and a name or a scope is only shown, so replacing the credential with
// secret.Redacted in it changes no target, and the rest of the listing stays
// usable. Where a listed string is itself a target or a value patjanitor
// would send back, it is not rewritten:
//   - an id holding a secret refuses the whole listing (ErrEchoedSecret):
//     redacting it would name another object, and it cannot be shown;
//   - a token whose scopes or owner id hold one is undecodable (never acted
//     on, never the source of a patch), its strings redacted for the report;
//   - a token's name is redacted, as it is only shown unless a policy
//     renames the token (patch namePrefix), which builds the new name from
//     it: the engine then skips the token as undecodable (janitor's
//     renamesRedacted) rather than write the placeholder into the tenant;
//   - an identity's email holding one is dropped (the owner is then told
//     through owners.fallbackEmail), not sent a message at a redacted address.

// ErrEchoedSecret is matched by the error of a listing that holds one of
// patjanitor's own credentials where the tenant puts an id. It is final: a
// tenant, or a proxy, that echoes credentials is not asked again.
var ErrEchoedSecret = errors.New("a credential patjanitor sent the tenant came back where an id belongs (a hostile tenant, or a proxy, echoes credentials)")

// listedRedactor returns the redactor for listed strings (never nil).
func (c *Client) listedRedactor() *secret.Redactor { return c.auth.listed.Load() }

// echoError names where a secret was found, never the value.
func echoError(what string, n int) error {
	return fmt.Errorf("%w: in the id of %s #%d of the listing; the listing is refused", ErrEchoedSecret, what, n)
}

// scrubToken redacts the strings of the n-th listed token in place.
func scrubToken(r *secret.Redactor, t *pat.Token, n int) error {
	if r.Redact(t.ID) != t.ID {
		return echoError("token", n)
	}
	scrubTokenStrings(r, t)
	return nil
}

// scrubAnswered redacts the strings of a token an update answered with, its
// id included, and never refuses: the update took effect whatever the
// answer holds, and refusing it would record an applied change as failed.
// A redacted id matches no id that was sent, so the caller counts that
// token as not confirmed, which is what an answer that names it so is.
func scrubAnswered(r *secret.Redactor, t *pat.Token) {
	t.ID = r.Redact(t.ID)
	scrubTokenStrings(r, t)
}

// scrubTokenStrings redacts the strings of a token other than its id.
func scrubTokenStrings(r *secret.Redactor, t *pat.Token) {
	t.Name = r.Redact(t.Name)
	t.Owner.Name = r.Redact(t.Owner.Name)
	t.Owner.Type = r.Redact(t.Owner.Type)
	if id := r.Redact(t.Owner.ID); id != t.Owner.ID {
		t.Owner.ID = id
		undecodable(t, "the owner id holds a credential patjanitor sent the tenant (redacted)")
	}
	if vs, changed := redactAll(r, t.Scope.Values); changed {
		// A new slice: the decoder may share scope lists between tokens.
		t.Scope.Values = vs
		undecodable(t, "a scope holds a credential patjanitor sent the tenant (redacted)")
	}
}

func undecodable(t *pat.Token, why string) {
	if t.Undecodable == "" {
		t.Undecodable = why
	}
}

// redactAll returns vs redacted, as a new slice when anything changed.
func redactAll(r *secret.Redactor, vs []string) ([]string, bool) {
	for i, v := range vs {
		if r.Redact(v) != v {
			out := slices.Clone(vs)
			for j := i; j < len(out); j++ {
				out[j] = r.Redact(out[j])
			}
			return out, true
		}
	}
	return vs, false
}

// scrubClient redacts the strings of the n-th listed API client in place.
func scrubClient(r *secret.Redactor, cl *apiclient.Client, n int) error {
	if r.Redact(cl.ID) != cl.ID {
		return echoError("API client", n)
	}
	cl.Name = r.Redact(cl.Name)
	cl.BusinessName = r.Redact(cl.BusinessName)
	cl.Description = r.Redact(cl.Description)
	cl.Type = r.Redact(cl.Type)
	cl.GrantTypes, _ = redactAll(r, cl.GrantTypes)
	cl.Scope.Values, _ = redactAll(r, cl.Scope.Values)
	return nil
}

// scrubIdentity redacts the strings of a listed identity in place. Its id
// is redacted too: an identity is kept only when its id is one that was
// asked for, which a redacted id never is.
func scrubIdentity(r *secret.Redactor, id *Identity) {
	id.ID = r.Redact(id.ID)
	id.Name = r.Redact(id.Name)
	id.Alias = r.Redact(id.Alias)
	if r.Redact(id.Email) != id.Email {
		id.Email = ""
	}
	id.Status = r.Redact(id.Status)
	id.IdentityState = r.Redact(id.IdentityState)
	if m := id.Manager; m != nil {
		m.Type, m.ID, m.Name = r.Redact(m.Type), r.Redact(m.ID), r.Redact(m.Name)
	}
	for i := range id.Attributes {
		a := &id.Attributes[i]
		a.Key, a.Name = r.Redact(a.Key), r.Redact(a.Name)
		if a.Value != nil {
			v := r.Redact(*a.Value)
			a.Value = &v
		}
	}
}
