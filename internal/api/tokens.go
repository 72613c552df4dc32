package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// Content types the PAT endpoints document.
const (
	contentTypeJSON      = "application/json"
	contentTypeJSONPatch = "application/json-patch+json"
)

// maxSingleBody bounds the body of a create or patch response (one token).
const maxSingleBody = 1 << 20

// Filter renders a listing as the filter text the API documents: exactly
// "lastUsed le 2026-08-28T03:00:00.000Z" (UTC, milliseconds, unquoted) or
// "lastUsed isnull"; "" for a listing of every token. The two are never joined
// with "or": the docs give no example of it, so the engine makes two calls and
// merges them by id.
func Filter(l pat.Listing) string {
	switch l.Kind {
	case pat.ListLastUsedBefore:
		return "lastUsed le " + pat.FormatTime(l.Cutoff)
	case pat.ListNeverUsed:
		return "lastUsed isnull"
	default:
		return ""
	}
}

// ListOptions are the list endpoint's two documented query parameters.
type ListOptions struct {
	// OwnerID is sent as owner-id (kebab-case, as the API spells it): an
	// identity id or "me". Empty: every owner (needs the all-tokens right).
	OwnerID string
	// Filters is sent as filters, e.g. Filter(listing). Empty: no filter.
	Filters string
	// Limit and Offset, when Limit > 0, are sent as limit and offset. No
	// version declares them on this endpoint; they serve only to
	// probe whether a listing of exactly 250 tokens is a capped page (a
	// paging server honours them, a server that does not page ignores them).
	Limit, Offset int
	// Budget bounds the bytes of listing body read, shared with the other
	// listings given the same Budget (a run's). Nil: this listing alone may
	// read DefaultMaxListingBytes.
	Budget *Budget
}

// ListTokens lists the tenant's tokens in one call and returns them all: a
// thin wrapper over StreamTokens for the callers whose listings are small
// (the capped-page probe, owner-id=me) and for tests. A large tenant is
// planned with StreamTokens, which keeps none of them.
func (c *Client) ListTokens(ctx context.Context, opts ListOptions) ([]pat.Token, error) {
	var s collectSink
	if _, err := c.StreamTokens(ctx, opts, &s); err != nil {
		return nil, err
	}
	if s.tokens == nil {
		s.tokens = []pat.Token{}
	}
	return s.tokens, nil
}

// collectSink keeps every token it receives.
type collectSink struct{ tokens []pat.Token }

func (s *collectSink) Token(t *pat.Token) error { s.tokens = append(s.tokens, *t); return nil }
func (s *collectSink) Reset()                   { s.tokens = s.tokens[:0] }

// TokenSink receives the tokens of one listing as StreamTokens decodes them.
type TokenSink interface {
	// Token receives the next token. t is valid only during the call (the
	// decoder reuses it): copy what you keep. The strings and the times t
	// points to are never reused. An error ends the listing: StreamTokens
	// returns it (wrapped, matching errors.Is) without another attempt.
	Token(t *pat.Token) error
	// Reset discards every token received so far: the connection broke in
	// the middle of the body, and the listing is read again from its start.
	// After Reset, Token receives the whole listing again, each token once.
	Reset()
}

// StreamTokens lists the tenant's tokens in one call (the endpoint has no
// paging, and no limit or offset is sent unless opts.Limit asks for the
// probe) and hands each token to sink as soon as it is decoded, so that a
// listing of a million tokens is never held, as text or as tokens. The body
// is read through a 64 KiB window. It returns how many tokens the listing
// held.
//
// A body that is truncated or malformed anywhere is an error matching
// ErrMalformedResponse (or, when the connection broke, a retried connection
// failure): sink then has received a part of the listing, which is not a
// listing: a caller must treat everything it received as unusable. A retry
// after a connection that broke mid-body calls sink.Reset before the
// listing is read again, so sink never sees a token of one attempt twice,
// nor tokens of two attempts. A body larger than what is left of
// opts.Budget, or holding a string longer than MaxFieldBytes, is refused with
// a *LimitError (not retried) as soon as the excess is seen: its declared
// Content-Length alone is enough.
func (c *Client) StreamTokens(ctx context.Context, opts ListOptions, sink TokenSink) (int, error) {
	q := url.Values{}
	if opts.OwnerID != "" {
		q.Set("owner-id", opts.OwnerID)
	}
	if opts.Filters != "" {
		q.Set("filters", opts.Filters)
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
		q.Set("offset", strconv.Itoa(opts.Offset))
	}
	budget := opts.Budget
	if budget == nil {
		budget = NewBudget(DefaultMaxListingBytes, "")
	}
	n, delivered := 0, false
	err := c.do(ctx, &call{
		op:         OpListTokens,
		method:     http.MethodGet,
		path:       TokensPath(c.version),
		query:      q,
		replayable: true,
		want:       http.StatusOK,
		decode: func(r io.Reader) error {
			if delivered {
				// An earlier attempt handed over tokens before its
				// connection broke: this one starts the listing over.
				sink.Reset()
				delivered = false
			}
			size := int64(-1)
			if rt, ok := r.(*readTracker); ok {
				size = rt.size
			}
			if size > budget.left.Load() {
				return budget.exceeded(size)
			}
			br := &budgetReader{r: r, b: budget}
			d := newListingDecoder(br)
			red, listed := c.listedRedactor(), 0
			count, err := d.each(func(t *pat.Token) error {
				listed++
				if err := scrubToken(red, t, listed); err != nil {
					return &sinkError{err: err}
				}
				delivered = true
				if err := sink.Token(t); err != nil {
					return &sinkError{err: err}
				}
				return nil
			})
			if err != nil {
				var le *LimitError
				if !errors.As(err, &le) {
					// This attempt's bytes are given back; a retry reads
					// the listing again (and Reset drops its tokens).
					br.refund()
				}
				return err
			}
			n = count
			return nil
		},
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// sinkError is a TokenSink's own error: final, neither a malformed body nor a
// connection to retry.
type sinkError struct{ err error }

func (e *sinkError) Error() string { return e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

// decodeTokenArray reads a JSON array of tokens in one streaming pass (see
// decode.go), insisting on the closing bracket and nothing after it.
func decodeTokenArray(r io.Reader) ([]pat.Token, error) {
	return newListingDecoder(r).decode()
}

// eofAsUnexpected: inside a document, the end of the body is never expected.
func eofAsUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// DeleteToken deletes a token (204). A 404 is an *Error matching ErrNotFound:
// the token is already gone. When an earlier attempt of the same call may have
// deleted it (a 5xx or a connection that broke after sending), the retry's 404
// counts as success.
func (c *Client) DeleteToken(ctx context.Context, id string) error {
	if err := checkPathID(OpDeleteToken, id); err != nil {
		return err
	}
	return c.do(ctx, &call{
		op:         OpDeleteToken,
		method:     http.MethodDelete,
		path:       TokenPath(c.version, id),
		replayable: true,
		want:       http.StatusNoContent,
	})
}

// PatchToken applies JSON Patch operations to a token (Content-Type
// application/json-patch+json) and returns the token as the tenant now has it,
// its strings scrubbed of patjanitor's credentials like a listed token's.
// Paths outside the version's patchable set are refused before sending:
// /name and /scope everywhere, /expirationDate and /userAwareTokenNeverExpires
// from v2025 and in v1. Every operation is a replace, so the request is
// repeated after an ambiguous failure (applying it twice is applying it once).
func (c *Client) PatchToken(ctx context.Context, id string, ops []pat.PatchOp) (pat.Token, error) {
	if err := checkPathID(OpPatchToken, id); err != nil {
		return pat.Token{}, err
	}
	if len(ops) == 0 {
		return pat.Token{}, fmt.Errorf("api: patch_token %s: no operations", id)
	}
	for i, op := range ops {
		if err := c.checkPatchOp(op); err != nil {
			return pat.Token{}, fmt.Errorf("api: patch_token %s: operation %d: %w", id, i, err)
		}
	}
	return patchOne(ctx, c, OpPatchToken, id, TokenPath(c.version, id), ops, func(got *pat.Token) error {
		if err := confirmPatch(id, ops, got); err != nil {
			return err
		}
		// The answer is returned: scrubbed like a listed token (scrub.go),
		// as SetOAuthClientEnabled scrubs its own, so that no caller can
		// show or store a credential echoed into a string the patch did
		// not touch. After the confirmation, which compares what was sent
		// (never a credential) with what came back as it came.
		return scrubToken(c.listedRedactor(), got, 1)
	})
}

// patchOne sends ops as a JSON Patch (a token's or an API client's) and
// returns the one object of the 200 answer once check accepts it; check's
// error makes the answer malformed, or unconfirmed as an *unconfirmedError.
// Every operation of the closed set is a replace, so the request is
// repeated after an ambiguous failure. Each attempt decodes into a fresh
// value: nothing of a refused answer is kept.
func patchOne[T any](ctx context.Context, c *Client, op, id, path string, ops []pat.PatchOp, check func(*T) error) (T, error) {
	var out T
	body, err := json.Marshal(ops)
	if err != nil {
		return out, fmt.Errorf("api: %s %s: encoding the patch: %w", op, id, err)
	}
	err = c.do(ctx, &call{
		op:          op,
		method:      http.MethodPatch,
		path:        path,
		body:        body,
		contentType: contentTypeJSONPatch,
		replayable:  true,
		want:        http.StatusOK,
		decode: func(r io.Reader) error {
			var got T
			if err := decodeOne(r, &got); err != nil {
				return err
			}
			if err := check(&got); err != nil {
				return err
			}
			out = got
			return nil
		},
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return out, nil
}

// unconfirmedError is a PATCH answer that does not show the change asked
// for; attempt turns it into an *Error matching ErrUnconfirmed.
type unconfirmedError struct{ diffs []string }

func (e *unconfirmedError) Error() string {
	return "the tenant answered with " + strings.Join(e.diffs, "; ")
}

// confirmPatch checks a PATCH answer against the request: the same token
// (ids compared without regard to case) whose data is usable, and, for each
// operation, the value that was sent. A 200 that shows anything else has not
// been shown to apply the change: a proxy's cached page, another token, or a
// tenant that kept other values.
func confirmPatch(id string, ops []pat.PatchOp, got *pat.Token) error {
	var diffs []string
	if !strings.EqualFold(got.ID, id) {
		diffs = append(diffs, fmt.Sprintf("token id %q (the PATCH was for %q)", got.ID, id))
	}
	if got.Undecodable != "" {
		diffs = append(diffs, "undecodable data ("+got.Undecodable+")")
	}
	for _, op := range ops {
		if d := fieldDiff(op, got); d != "" {
			diffs = append(diffs, d)
		}
	}
	if len(diffs) > 0 {
		return &unconfirmedError{diffs: diffs}
	}
	return nil
}

// fieldDiff compares the value one operation sent with the answer's; ""
// when they agree.
func fieldDiff(op pat.PatchOp, got *pat.Token) string {
	show := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	sent := op.Value()
	if name, ok := op.Name(); ok && got.Name != name {
		return fmt.Sprintf("name %s (sent %s)", show(got.Name), sent)
	}
	if want, ok := op.Scopes(); ok && ((want == nil) != got.Scope.Null || !sameScopes(want, got.Scope.Values)) {
		return fmt.Sprintf("scope %s (sent %s)", show(got.Scope), sent)
	}
	if want, ok := op.Expiration(); ok && (got.ExpirationDate == nil || !want.Equal(*got.ExpirationDate)) {
		shown := "null"
		if got.ExpirationDate != nil {
			shown = pat.FormatTime(*got.ExpirationDate)
		}
		return fmt.Sprintf("expirationDate %s (sent %s)", shown, sent)
	}
	if op.Path() == pat.PathUserAwareTokenNeverExpires {
		want, _ := op.Flag()
		if got.UserAwareTokenNeverExpires == nil || *got.UserAwareTokenNeverExpires != want {
			return fmt.Sprintf("userAwareTokenNeverExpires %s (sent %s)", show(got.UserAwareTokenNeverExpires), sent)
		}
	}
	return ""
}

// sameScopes: the same scopes, in any order (the tenant may sort them).
func sameScopes(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// checkPatchOp refuses what this API version cannot write.
func (c *Client) checkPatchOp(op pat.PatchOp) error {
	switch op.Path() {
	case pat.PathName, pat.PathScope:
		return nil
	case pat.PathExpirationDate, pat.PathUserAwareTokenNeverExpires:
		if c.version.ExpirationWritable() {
			return nil
		}
		return fmt.Errorf("path %s is not patchable in API %s (only from v2025, and in v1)", op.Path(), c.version)
	}
	return fmt.Errorf("path %q is not patchable (want /name, /scope, /expirationDate or /userAwareTokenNeverExpires)", op.Path())
}

// CreateTokenRequest is CreatePersonalAccessTokenRequest. The token is created
// for the caller (the request has no owner).
type CreateTokenRequest struct {
	Name string
	// Scope nil is omitted (the tenant then grants sp:scopes:all); a non-nil
	// slice is sent as is, even empty.
	Scope []string
	// AccessTokenValiditySeconds 0 is omitted (tenant default 43200); else
	// 15..43200.
	AccessTokenValiditySeconds int
	// ExpirationDate nil is omitted: in v3 the token then expires after six
	// months, in v2025 and v1 it never expires, which needs
	// UserAwareTokenNeverExpires.
	ExpirationDate *time.Time
	// UserAwareTokenNeverExpires exists only in v2025 and v1.
	UserAwareTokenNeverExpires *bool
}

// CreatedToken is the create response: the token and its secret, which the
// tenant shows this once.
type CreatedToken struct {
	Token  pat.Token
	Secret secret.Secret
}

type wireCreateRequest struct {
	Name                       string    `json:"name"`
	Scope                      *[]string `json:"scope,omitempty"`
	AccessTokenValiditySeconds *int      `json:"accessTokenValiditySeconds,omitempty"`
	ExpirationDate             *string   `json:"expirationDate,omitempty"`
	UserAwareTokenNeverExpires *bool     `json:"userAwareTokenNeverExpires,omitempty"`
}

// CreateToken creates a token (200, not 201). It is never repeated after a
// failure that may have reached the tenant (a 5xx, or a connection that broke
// after sending): a second POST could create a second token, and the error says
// to check first. A 429, a 401 or a refused connection are retried as usual.
func (c *Client) CreateToken(ctx context.Context, req CreateTokenRequest) (CreatedToken, error) {
	if strings.TrimSpace(req.Name) == "" {
		return CreatedToken{}, errors.New("api: create_token: empty name")
	}
	w := wireCreateRequest{Name: req.Name, UserAwareTokenNeverExpires: req.UserAwareTokenNeverExpires}
	if req.Scope != nil {
		s := req.Scope
		w.Scope = &s
	}
	if v := req.AccessTokenValiditySeconds; v != 0 {
		if v < 15 || v > 43200 {
			return CreatedToken{}, fmt.Errorf("api: create_token %q: accessTokenValiditySeconds %d is outside 15..43200", req.Name, v)
		}
		w.AccessTokenValiditySeconds = &v
	}
	if req.ExpirationDate != nil {
		s := pat.FormatTime(*req.ExpirationDate)
		w.ExpirationDate = &s
	}
	if req.UserAwareTokenNeverExpires != nil && !c.version.ExpirationWritable() {
		return CreatedToken{}, fmt.Errorf("api: create_token %q: userAwareTokenNeverExpires does not exist in API %s", req.Name, c.version)
	}
	body, err := json.Marshal(w)
	if err != nil {
		return CreatedToken{}, fmt.Errorf("api: create_token %q: encoding the request: %w", req.Name, err)
	}
	var out CreatedToken
	err = c.do(ctx, &call{
		op:          OpCreateToken,
		method:      http.MethodPost,
		path:        TokensPath(c.version),
		body:        body,
		contentType: contentTypeJSON,
		replayable:  false,
		want:        http.StatusOK,
		decode: func(r io.Reader) error {
			data, err := io.ReadAll(io.LimitReader(r, maxSingleBody))
			if err != nil {
				return err
			}
			var tok pat.Token
			if err := json.Unmarshal(data, &tok); err != nil {
				return fmt.Errorf("create response: %w", err)
			}
			var s struct {
				Secret string `json:"secret"`
			}
			if err := json.Unmarshal(data, &s); err != nil {
				return fmt.Errorf("create response: %w", err)
			}
			if s.Secret == "" {
				return fmt.Errorf("create response for token %s has no secret", tok.ID)
			}
			out = CreatedToken{Token: tok, Secret: secret.New(s.Secret)}
			return nil
		},
	})
	if err != nil {
		return CreatedToken{}, err
	}
	return out, nil
}

// decodeOne decodes a single JSON document of at most maxSingleBody bytes
// into v and insists that nothing follows it.
func decodeOne(r io.Reader, v any) error { return decodeLimited(r, v, maxSingleBody) }

// BulkPath is the admin bulk update of personal access tokens. It exists only
// in v1, whatever version the client lists with.
const BulkPath = "/personal-access-tokens/v1/bulk-update"

// MaxBulkIDs is the most token ids one bulk update may name.
const MaxBulkIDs = 25

// bulkPaths are the only paths a bulk update may write.
var bulkPaths = map[string]bool{pat.PathExpirationDate: true, pat.PathUserAwareTokenNeverExpires: true}

type wireBulkRequest struct {
	IDs   []string      `json:"ids"`
	Patch []pat.PatchOp `json:"patch"`
}

// BulkUpdateTokens applies one JSON Patch to up to 25 tokens of any owner
// (PATCH /personal-access-tokens/v1/bulk-update, Content-Type
// application/json): the only way an org admin can change another owner's
// token, since a per-token PATCH is refused for anyone but the owner. Only
// /expirationDate and /userAwareTokenNeverExpires may be written; other paths,
// more than 25 ids, duplicate or blank ids are refused before sending. It
// returns the tokens as the tenant answered them (sorted by id, without
// userAwareTokenNeverExpires), their strings scrubbed of patjanitor's
// credentials, ids included (an answer is redacted, never refused: the
// update took effect): the caller checks that every id came back with
// the requested values. Like PatchToken, it is repeated after an ambiguous
// failure (every operation is a replace).
func (c *Client) BulkUpdateTokens(ctx context.Context, ids []string, ops []pat.PatchOp) ([]pat.Token, error) {
	switch {
	case len(ids) == 0:
		return nil, errors.New("api: bulk_update_tokens: no token ids")
	case len(ids) > MaxBulkIDs:
		return nil, fmt.Errorf("api: bulk_update_tokens: %d token ids, at most %d per request", len(ids), MaxBulkIDs)
	case len(ops) == 0:
		return nil, errors.New("api: bulk_update_tokens: no operations")
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		k := pat.IDKey(id)
		if strings.TrimSpace(id) == "" || seen[k] {
			return nil, fmt.Errorf("api: bulk_update_tokens: blank or duplicate token id %q", id)
		}
		seen[k] = true
	}
	for i, op := range ops {
		if !bulkPaths[op.Path()] {
			return nil, fmt.Errorf("api: bulk_update_tokens: operation %d: path %q cannot be updated in bulk (only /expirationDate and /userAwareTokenNeverExpires)", i, op.Path())
		}
	}
	body, err := json.Marshal(wireBulkRequest{IDs: ids, Patch: ops})
	if err != nil {
		return nil, fmt.Errorf("api: bulk_update_tokens: encoding the request: %w", err)
	}
	var out []pat.Token
	err = c.do(ctx, &call{
		op:          OpBulkUpdateTokens,
		method:      http.MethodPatch,
		path:        BulkPath,
		body:        body,
		contentType: contentTypeJSON,
		replayable:  true,
		want:        http.StatusOK,
		decode: func(r io.Reader) error {
			ts, err := decodeTokenArray(io.LimitReader(r, maxSingleBody))
			if err != nil {
				return err
			}
			// Returned, so scrubbed like PatchToken's answer (scrub.go).
			red := c.listedRedactor()
			for i := range ts {
				scrubAnswered(red, &ts[i])
			}
			out = ts
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
