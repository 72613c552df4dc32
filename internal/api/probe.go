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
	page, err := c.publicIdentities(ctx, q, false)
	if err != nil {
		return false, err
	}
	for _, idn := range page {
		if idn.ID != "" && !strings.EqualFold(idn.ID, self) {
			return true, nil
		}
	}
	return false, nil
}

// publicIdentities GETs one page of public identities with the query q, for
// the owner lookup and for OtherIdentities. With requireIDs, an entry
// without an id makes the page malformed (the lookup matches by id; the
// probe only looks for another id, so it passes over such entries).
func (c *Client) publicIdentities(ctx context.Context, q url.Values, requireIDs bool) ([]Identity, error) {
	var page []Identity
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
			red := c.listedRedactor()
			for i := range p {
				if requireIDs && p[i].ID == "" {
					return fmt.Errorf("public identities item %d has no id", i)
				}
				scrubIdentity(red, &p[i])
			}
			page = p
			return nil
		},
	})
	return page, err
}
