package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// publicIdentitiesPath is the public-identities collection of the client's
// API version: /public-identities/v1 with apiVersion v1 (the per-service v1
// API has it, and the legacy v3 paths will be retired), else
// /v3/public-identities (v2025 tenants have v3 too; the query parameters
// are the same).
func (c *Client) publicIdentitiesPath() string {
	if c.version == pat.V1 {
		return "/public-identities/v1"
	}
	return "/v3/public-identities"
}

// identityBatch is the most ids one lookup asks for: the endpoint's page limit
// (limit maximum 250), so every batch fits in one page.
const identityBatch = 250

// maxIdentityQuery bounds the encoded query string of one lookup. 250 ids of 32
// characters make a filter of 8.7 KB, 10 KB once URL-encoded: more than the
// 8 KiB request line many gateways and proxies accept (and more than the
// simulator's 8 KiB filter limit). Batches are cut at this size first, which
// for the usual 32-character ids is about 170 ids per request.
const maxIdentityQuery = 7000

// Identity is the PublicIdentity schema: what patjanitor needs to find and
// judge a token's owner.
type Identity struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Alias string `json:"alias,omitempty"`
	// Email is "" when the tenant has none (null).
	Email string `json:"email,omitempty"`
	// Status is the lifecycle status, e.g. "Active"; "" when null.
	Status string `json:"status,omitempty"`
	// IdentityState is ACTIVE, INACTIVE_SHORT_TERM or INACTIVE_LONG_TERM; ""
	// when null.
	IdentityState string `json:"identityState,omitempty"`
	// Manager is nil when the identity has none.
	Manager    *IdentityRef        `json:"manager,omitempty"`
	Attributes []IdentityAttribute `json:"attributes,omitempty"`
}

// IdentityRef is the IdentityReference schema.
type IdentityRef struct {
	Type string `json:"type,omitempty"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// IdentityAttribute is one public attribute; Value is nil when null.
type IdentityAttribute struct {
	Key   string  `json:"key"`
	Name  string  `json:"name,omitempty"`
	Value *string `json:"value"`
}

// Identity states (PublicIdentity.identityState).
const (
	IdentityActive            = "ACTIVE"
	IdentityInactiveShortTerm = "INACTIVE_SHORT_TERM"
	IdentityInactiveLongTerm  = "INACTIVE_LONG_TERM"
)

// ListPublicIdentities looks up identities by id with GET
// /v3/public-identities (v1: /public-identities/v1)?filters=id in ("a","b")&limit=250&offset=N, at most 250
// ids per request and fewer when the URL would grow past about 7 KB. Ids the tenant does not know are simply absent from the
// result (the caller decides what a missing owner means). So are ids an
// answer cut short left out (a page shorter than the limit is taken for the
// last one): a caller that acts on absence asks again for the absent ids
// (with one it knows exists) before it believes it (janitor's owner lookup
// does); duplicates and empty
// ids are dropped; identities the tenant returns that were not asked for are
// ignored. The result is in the order of first appearance in ids.
func (c *Client) ListPublicIdentities(ctx context.Context, ids []string) ([]Identity, error) {
	want := make(map[string]bool, len(ids))
	uniq := make([]string, 0, len(ids))
	// want and found are by pat.IDKey: an identity the tenant spells in
	// another case than asked is the one asked for (taken for missing, its
	// owner's tokens would match ownerMissing).
	for _, id := range ids {
		if k := pat.IDKey(id); id != "" && !want[k] {
			want[k] = true
			uniq = append(uniq, id)
		}
	}
	found := make(map[string]Identity, len(uniq))
	for _, batch := range identityBatches(uniq) {
		if err := c.lookupBatch(ctx, batch, want, found); err != nil {
			return nil, err
		}
	}
	out := make([]Identity, 0, len(found))
	for _, id := range uniq {
		if idn, ok := found[pat.IDKey(id)]; ok {
			out = append(out, idn)
		}
	}
	return out, nil
}

// identityBatches cuts ids into lookups of at most identityBatch ids whose
// encoded query stays within maxIdentityQuery (a single id longer than that
// still gets its own batch; the tenant will say what it thinks of it).
func identityBatches(ids []string) [][]string {
	// The fixed part: "filters=id+in+%28" ... "%29&limit=250&offset=NNNN".
	const fixed = len("filters=id+in+%28") + len("%29") + len("&limit=250&offset=0000")
	var out [][]string
	start, size := 0, fixed
	for i, id := range ids {
		cost := len(url.QueryEscape(`"`+filterEscaper.Replace(id)+`"`)) + len("%2C")
		if i > start && (i-start >= identityBatch || size+cost > maxIdentityQuery) {
			out = append(out, ids[start:i])
			start, size = i, fixed
		}
		size += cost
	}
	if start < len(ids) {
		out = append(out, ids[start:])
	}
	return out
}

// lookupBatch pages through one batch (offset advancing by the page size).
//
// A tenant that honours the filter answers a batch in one page. Paging goes
// on only while pages are full and each adds an id of the batch not seen
// before, so it ends after at most len(batch)+1 pages whatever the tenant
// sends. A full page that adds none (a tenant that ignores the filter and
// pages through every identity, or repeats itself) ends the lookup with an
// error: the ids not yet seen could be on a later page, and reading them as
// missing owners would be a wrong decision (ownerMissing).
func (c *Client) lookupBatch(ctx context.Context, batch []string, want map[string]bool, found map[string]Identity) error {
	filter := IDFilter(batch)
	got := 0
	for offset, pages := 0, 1; ; pages++ {
		q := url.Values{}
		q.Set("filters", filter)
		q.Set("limit", strconv.Itoa(identityBatch))
		q.Set("offset", strconv.Itoa(offset))
		page, err := c.publicIdentities(ctx, q, true)
		if err != nil {
			return err
		}
		added := 0
		for _, idn := range page {
			if k := pat.IDKey(idn.ID); want[k] {
				if _, dup := found[k]; !dup {
					got++
					added++
				}
				found[k] = idn
			}
		}
		offset += len(page)
		// A page shorter than the limit is the last one. With at most 250 ids
		// per batch a full page holds every id of the batch, so the loop goes
		// on only if the tenant sent identities that were not asked for. A
		// tenant whose real page size is smaller, or a proxy that cuts the
		// body short, cannot be told from one that knows no more of the ids:
		// the caller confirms the absent ones (ListPublicIdentities).
		if len(page) < identityBatch || got >= len(batch) {
			return nil
		}
		if added == 0 || pages > len(batch) {
			return &Error{Operation: OpListPublicIdentities, Method: http.MethodGet, Path: c.publicIdentitiesPath(),
				StatusCode: http.StatusOK, malformed: true, Err: fmt.Errorf(
					"stopped after %d pages: the page at offset %d held %d identities and none was a new one of the %d ids asked for "+
						"(the tenant ignores the id filter?); %d of them are still unknown, so the owner lookup is incomplete",
					pages, offset-len(page), len(page), len(batch), len(batch)-got)}
		}
	}
}

// filterEscaper escapes a string literal of the filter syntax. A Replacer is
// immutable and safe for concurrent use.
var filterEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// IDFilter renders `id in ("a","b")`, the documented filter form for
// public identities (strings in double quotes; backslash and quote escaped).
func IDFilter(ids []string) string {
	var b strings.Builder
	b.WriteString("id in (")
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(filterEscaper.Replace(id))
		b.WriteByte('"')
	}
	b.WriteByte(')')
	return b.String()
}
