package api

import (
	"errors"
	"fmt"
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

// BenchmarkScrubToken is the cost scrubbing adds to each listed token, with
// a 64-character client secret and four access tokens of 900 characters:
// a name shorter than the shortest form costs one comparison per string.
//
//	go test -run '^$' -bench ScrubToken ./internal/api
func BenchmarkScrubToken(b *testing.B) {
	secrets := []secret.Secret{secret.New(strings.Repeat("0123456789abcdef", 4))}
	for i := range 4 {
		secrets = append(secrets, secret.New(strings.Repeat(string(rune('a'+i)), 900)))
	}
	r := secret.NewRedactor(secrets...)
	for _, name := range []string{"ci-deploy-bot", strings.Repeat("a long token name ", 12)} {
		b.Run(fmt.Sprintf("name%d", len(name)), func(b *testing.B) {
			tok := pat.Token{ID: "2c9180835d2e5168015d32f890ca1581", Name: name,
				Owner: pat.Owner{Type: "IDENTITY", ID: "2c9180835d2e5168015d32f890ca1582", Name: "Jane Doe"},
				Scope: pat.ScopesOf("idn:sources:read", "sp:scopes:default")}
			b.ReportAllocs()
			for b.Loop() {
				t := tok
				if err := scrubToken(r, &t, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
