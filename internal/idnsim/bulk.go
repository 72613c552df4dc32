package idnsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// bulkUpdatePath is the bulk update's path below /personal-access-tokens/v1.
const bulkUpdatePath = "/bulk-update"

// MaxBulkIDs is the most ids one bulk update may name (the fragment's
// maxItems).
const MaxBulkIDs = 25

// Msg403Refused is the text of the 403 a real tenant answers to a PATCH of
// another owner's token (the spec's 403 example carries the same sentence).
const Msg403Refused = "The server understood the request but refuses to authorize it."

// bulkRequest is BulkUpdatePersonalAccessTokensRequest, kept raw so that
// absent, null and ill-typed members can be told apart.
type bulkRequest struct {
	IDs   json.RawMessage `json:"ids"`
	Patch json.RawMessage `json:"patch"`
}

// bulkUpdate is PATCH|POST /personal-access-tokens/v1/bulk-update
// (spec/golang-sdk-b6dc65ac-pat-v1-bulk-update.fragment.yaml): one JSON Patch
// applied to up to 25 tokens of any owner, by an org admin
// (ORG_ADMIN, right idn:all-personal-access-tokens:update) whose token holds
// sp:all-personal-access-tokens:manage (or sp:scopes:all); an OAuth API
// client's credentials are refused (403) whatever their scopes. The body is
// application/json {ids, patch}; only /expirationDate (replace or remove) and
// /userAwareTokenNeverExpires may be patched; anything else, an unknown id, a
// duplicate or blank id, is a 400 and nothing changes (the update is
// atomic: the documentation does not describe partial success). The answer is
// 200 with the updated tokens sorted by id, in the v1 shape without
// userAwareTokenNeverExpires ("stored internally and not returned").
func (s *Sim) bulkUpdate(w http.ResponseWriter, r *http.Request, c *caller, body []byte) {
	if c.apiClient {
		// "API OAuth client credentials are not permitted" (the fragment,
		// and the developer docs page): only a PAT of an org admin.
		writeError(w, http.StatusForbidden, Msg403Refused+" (bulk update: API OAuth client credentials are not permitted; use a personal access token of an org admin)")
		return
	}
	if !c.hasAll(scopeAllManage) {
		writeError(w, http.StatusForbidden, Msg403Refused+" (bulk update needs an org admin with the right idn:all-personal-access-tokens:update and the scope "+scopeAllManage+")")
		return
	}
	if !hasMediaType(r, "application/json") {
		writeError(w, http.StatusBadRequest, "Content-Type must be application/json")
		return
	}
	ids, ops, msg := decodeBulk(body)
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	status, msg, out := s.bulkLocked(c, ids, ops)
	if status != http.StatusOK {
		writeError(w, status, msg)
		return
	}
	b := []byte{'['}
	for i := range out {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendToken(b, &out[i], versionV1Bulk)
	}
	b = append(b, ']')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// decodeBulk checks the request body against the schema and the allowed
// paths, and returns the ids and operations, or a 400 message.
func decodeBulk(body []byte) ([]string, []patchOp, string) {
	var req bulkRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return nil, nil, "request body is not a JSON object: " + err.Error()
	}
	if dec.More() {
		return nil, nil, "request body has data after the JSON object"
	}
	if isNull(req.IDs) {
		return nil, nil, "ids is required"
	}
	var ids []string
	if err := json.Unmarshal(req.IDs, &ids); err != nil {
		return nil, nil, "ids must be an array of strings"
	}
	switch {
	case len(ids) == 0:
		return nil, nil, "ids must hold at least one id"
	case len(ids) > MaxBulkIDs:
		return nil, nil, fmt.Sprintf("ids holds %d ids; at most %d tokens can be updated per request", len(ids), MaxBulkIDs)
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if strings.TrimSpace(id) == "" {
			return nil, nil, "ids must not contain blank values"
		}
		if seen[id] {
			return nil, nil, fmt.Sprintf("ids must not contain duplicates (%q)", id)
		}
		seen[id] = true
	}
	if isNull(req.Patch) {
		return nil, nil, "patch is required"
	}
	var ops []patchOp
	if err := json.Unmarshal(req.Patch, &ops); err != nil {
		return nil, nil, "patch must be an array of JSON Patch operations: " + err.Error()
	}
	if len(ops) == 0 {
		return nil, nil, "patch must hold at least one operation"
	}
	for i, op := range ops {
		if op.Path != pat.PathExpirationDate && op.Path != pat.PathUserAwareTokenNeverExpires {
			return nil, nil, fmt.Sprintf("operation %d (%s %s): only /expirationDate and /userAwareTokenNeverExpires may be updated in bulk", i, op.Op, op.Path)
		}
	}
	return ids, ops, ""
}

// bulkLocked applies ops to every id under the lock, all or nothing, and
// returns the updated tokens sorted by id.
func (s *Sim) bulkLocked(c *caller, ids []string, ops []patchOp) (int, string, []pat.Token) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var missing []string
	recs := make([]*record, 0, len(ids))
	for _, id := range ids {
		rec, ok := s.lookupVisible(c, id)
		if !ok {
			missing = append(missing, id)
			continue
		}
		recs = append(recs, rec)
	}
	if len(missing) > 0 {
		// The fragment declares no 404: "All IDs must reference personal
		// access tokens that exist in the current tenant".
		return http.StatusBadRequest, "personal access tokens not found: " + strings.Join(missing, ", "), nil
	}
	out := make([]pat.Token, 0, len(recs))
	for _, rec := range recs {
		t := cloneToken(rec.tok)
		if msg := s.applyPatch(&t, ops, versionV1, now); msg != "" {
			return http.StatusBadRequest, "token " + t.ID + ": " + msg, nil
		}
		out = append(out, t)
	}
	for i, t := range out {
		s.pop.put(&record{tok: t, secretHash: recs[i].secretHash})
	}
	slices.SortFunc(out, func(a, b pat.Token) int { return strings.Compare(a.ID, b.ID) })
	return http.StatusOK, "", out
}

// pageOf reads limit and offset as the standard collection parameters define
// them (limit 0..250, default 250 on a paging server; offset >= 0), for a
// simulator that models a paging or capping server. It returns the page size
// (-1: no limit given and none by default), the offset, or a 400 message.
func pageOf(q url.Values, paging bool) (limit, offset int, msg string) {
	limit = -1
	if paging {
		limit = 250
	}
	if v, ok := queryValue(q, "limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 250 {
			return 0, 0, fmt.Sprintf("limit %q must be an integer between 0 and 250", v)
		}
		limit = n
	}
	if v, ok := queryValue(q, "offset"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, fmt.Sprintf("offset %q must be a non-negative integer", v)
		}
		offset = n
	}
	return limit, offset, ""
}
