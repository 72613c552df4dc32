package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// OtherIdentities reports whether the tenant has an identity other than self,
// with one GET of the public identities (limit=2, no filter): any entry whose
// id is not self's says yes. The engine asks it only when a listing of all
// tokens holds nothing but the caller's own tokens, to tell a tenant where
// patjanitor's identity is alone (rare, but then the listing is complete)
// from a credential that sees only its own tokens. Public identities need
// no admin right (scope sp:scopes:default), so a non-admin caller can ask.
func (c *Client) OtherIdentities(ctx context.Context, self string) (bool, error) {
	q := url.Values{}
	q.Set("limit", "2")
	var found bool
	err := c.do(ctx, &call{
		op:         OpListPublicIdentities,
		method:     http.MethodGet,
		path:       c.publicIdentitiesPath(),
		query:      q,
		replayable: true,
		want:       http.StatusOK,
		decode: func(r io.Reader) error {
			var p []Identity
			if err := decodeOne(r, &p); err != nil {
				return fmt.Errorf("public identities body: %w", err)
			}
			other := false
			for _, idn := range p {
				if idn.ID != "" && !strings.EqualFold(idn.ID, self) {
					other = true
				}
			}
			found = other
			return nil
		},
	})
	return found, err
}
