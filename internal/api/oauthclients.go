package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/pat"
)

// Operation names of the OAuth API client calls (metrics label values).
const (
	OpListOAuthClients  = "list_oauth_clients"
	OpGetOAuthClient    = "get_oauth_client"
	OpDeleteOAuthClient = "delete_oauth_client"
	OpPatchOAuthClient  = "patch_oauth_client"
)

// OAuthClientsPath is the collection path. The API clients live under /v3 in
// every configured PAT API version: v2025 and v1 have no other documented
// path for them.
const OAuthClientsPath = "/v3/oauth-clients"

// OAuthClientPath is the path of one API client.
func OAuthClientPath(id string) string { return OAuthClientsPath + "/" + url.PathEscape(id) }

// maxClientListBody bounds a listing of API clients: a tenant has hundreds,
// not hundreds of thousands, of them (one is about 1 KB).
const maxClientListBody = 32 << 20

// ListOAuthClients lists the tenant's API clients in one call with the given
// filters ("" for all; the endpoint documents lastUsed le and isnull, the
// same text Filter renders for tokens). A body that is not a JSON array of
// clients, each with an id and a created time, is an error matching
// ErrMalformedResponse: never a partial listing.
func (c *Client) ListOAuthClients(ctx context.Context, filters string) ([]apiclient.Client, error) {
	q := url.Values{}
	if filters != "" {
		q.Set("filters", filters)
	}
	var out []apiclient.Client
	err := c.do(ctx, &call{
		op:         OpListOAuthClients,
		method:     http.MethodGet,
		path:       OAuthClientsPath,
		query:      q,
		replayable: true,
		want:       http.StatusOK,
		decode: func(r io.Reader) error {
			var list []apiclient.Client
			if err := decodeLimited(r, &list, maxClientListBody); err != nil {
				return fmt.Errorf("API client listing: %w", err)
			}
			if list == nil {
				return errors.New("API client listing: null instead of an array")
			}
			red := c.listedRedactor()
			for i := range list {
				if err := scrubClient(red, &list[i], i+1); err != nil {
					return err
				}
			}
			out = list
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetOAuthClient fetches one API client. A 404 matches ErrNotFound.
func (c *Client) GetOAuthClient(ctx context.Context, id string) (apiclient.Client, error) {
	if err := checkPathID(OpGetOAuthClient, id); err != nil {
		return apiclient.Client{}, err
	}
	var out apiclient.Client
	err := c.do(ctx, &call{
		op:         OpGetOAuthClient,
		method:     http.MethodGet,
		path:       OAuthClientPath(id),
		replayable: true,
		want:       http.StatusOK,
		decode: func(r io.Reader) error {
			if err := decodeOne(r, &out); err != nil {
				return err
			}
			return scrubClient(c.listedRedactor(), &out, 1)
		},
	})
	if err != nil {
		return apiclient.Client{}, err
	}
	return out, nil
}

// DeleteOAuthClient deletes an API client (204). A 404 is an *Error matching
// ErrNotFound (already gone); after an ambiguous failure the retry's 404
// counts as success, as for tokens.
func (c *Client) DeleteOAuthClient(ctx context.Context, id string) error {
	if err := checkPathID(OpDeleteOAuthClient, id); err != nil {
		return err
	}
	return c.do(ctx, &call{
		op:         OpDeleteOAuthClient,
		method:     http.MethodDelete,
		path:       OAuthClientPath(id),
		replayable: true,
		want:       http.StatusNoContent,
	})
}

// EnabledPatch is the JSON Patch SetOAuthClientEnabled sends: one replace of
// /enabled. It is the only patch patjanitor ever sends to an API client.
func EnabledPatch(enabled bool) []pat.PatchOp {
	return []pat.PatchOp{pat.SetEnabled(enabled)}
}

// SetOAuthClientEnabled disables (false) or re-enables (true) an API client
// with a PATCH of /enabled and nothing else; the method takes no other
// operation, so patjanitor cannot send one. Only a 200 whose body shows the
// same id with the requested enabled value counts as applied (invariant 8):
// anything else is an error matching ErrMalformedResponse. A replace is
// idempotent, so the request is repeated after an ambiguous failure.
func (c *Client) SetOAuthClientEnabled(ctx context.Context, id string, enabled bool) (apiclient.Client, error) {
	if err := checkPathID(OpPatchOAuthClient, id); err != nil {
		return apiclient.Client{}, err
	}
	return patchOne(ctx, c, OpPatchOAuthClient, id, OAuthClientPath(id), EnabledPatch(enabled), func(got *apiclient.Client) error {
		switch {
		case !pat.SameID(got.ID, id): // invariant 9: ids compare without regard to case
			return fmt.Errorf("the answer describes API client %q, not %q", got.ID, id)
		case got.Enabled == nil || *got.Enabled != enabled:
			return fmt.Errorf("the answer does not show enabled %t", enabled)
		}
		// The answer is returned and shown (`patjanitor enable` prints
		// its name): scrubbed like a listed client (scrub.go).
		return scrubClient(c.listedRedactor(), got, 1)
	})
}

// decodeLimited decodes one JSON document of at most max bytes into v and
// insists that nothing follows it.
func decodeLimited(r io.Reader, v any, max int64) error {
	lr := &io.LimitedReader{R: r, N: max + 1}
	dec := json.NewDecoder(lr)
	if err := dec.Decode(v); err != nil {
		if lr.N <= 0 {
			return fmt.Errorf("the body is larger than %d bytes", max)
		}
		return eofAsUnexpected(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if lr.N <= 0 {
			return fmt.Errorf("the body is larger than %d bytes", max)
		}
		return errors.New("data after the JSON document")
	}
	return nil
}
