package api

import (
	"errors"
	"strings"
	"testing"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// What the tenant lists about API clients and identities is scrubbed like
// its tokens: shown strings redacted, an id holding a credential refused
// (clients) or never matching what was asked (identities), an email holding
// one dropped rather than written to.
func TestScrubClientsAndIdentities(t *testing.T) {
	const tok = "eyJhbGciOiJIUzI1NiJ9.echoed-access-token.c2lnbmF0dXJl"
	r := secret.NewRedactor(secret.New(tok))
	cl := apiclient.Client{ID: "c1", Name: "ci " + tok, Description: "uses " + tok, GrantTypes: []string{"CLIENT_CREDENTIALS", tok},
		Scope: pat.ScopesOf("sp:scopes:all", tok)}
	if err := scrubClient(r, &cl, 1); err != nil {
		t.Fatal(err)
	}
	if cl.Name != "ci "+secret.Redacted || cl.Description != "uses "+secret.Redacted ||
		cl.GrantTypes[1] != secret.Redacted || cl.Scope.Values[1] != secret.Redacted || cl.Scope.Values[0] != "sp:scopes:all" {
		t.Errorf("client %+v", cl)
	}
	bad := apiclient.Client{ID: "x" + tok}
	if err := scrubClient(r, &bad, 7); !errors.Is(err, ErrEchoedSecret) || strings.Contains(err.Error(), tok) || !strings.Contains(err.Error(), "API client #7") {
		t.Errorf("client id holding the token: %v", err)
	}

	v := "dept " + tok
	idn := Identity{ID: "i-" + tok, Name: tok, Email: tok + "@acme.com", Manager: &IdentityRef{Name: tok},
		Attributes: []IdentityAttribute{{Key: "k", Value: &v}}}
	scrubIdentity(r, &idn)
	if idn.ID != "i-"+secret.Redacted || idn.Name != secret.Redacted || idn.Email != "" || idn.Manager.Name != secret.Redacted ||
		*idn.Attributes[0].Value != "dept "+secret.Redacted {
		t.Errorf("identity %+v", idn)
	}

	// A token's scope list may be shared with other tokens by the decoder:
	// redacting it must not write into the shared slice.
	shared := []string{"idn:sources:read", tok}
	tk := pat.Token{ID: "t", Name: "n", Scope: pat.Scopes{Values: shared}}
	if err := scrubToken(r, &tk, 1); err != nil {
		t.Fatal(err)
	}
	if shared[1] != tok || tk.Scope.Values[1] != secret.Redacted || tk.Undecodable == "" {
		t.Errorf("token %+v, shared %v", tk, shared)
	}
}
