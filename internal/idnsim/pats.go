package idnsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// listTokens is GET …/personal-access-tokens.
//
// Rights (spec owner-id description): owner-id=me needs a my- or all- PAT
// scope; an explicit owner id, or none (every owner), needs an org admin with
// sp:scopes:all or an all-personal-access-tokens scope, even when the id is the
// caller's own. Managed tokens appear only for a caller whose identity may see
// them. An owner id that is no identity lists nothing. Unknown query
// parameters (limit, offset, …) are ignored, unless Options.Paging models a
// server that pages the list (see pageOf).
func (s *Sim) listTokens(w http.ResponseWriter, r *http.Request, c *caller, v *apiVersion) {
	q := r.URL.Query()
	match, err := CompilePATFilter(q.Get("filters"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	owner := q.Get("owner-id")
	switch {
	case owner == "me":
		if !c.has(scopeMyRead, scopeMyManage, scopeAllRead, scopeAllManage) {
			writeError(w, http.StatusForbidden, "listing your own personal access tokens needs "+scopeMyRead+" or "+scopeMyManage)
			return
		}
		owner = c.identityID
	default:
		if !c.hasAll(scopeAllRead, scopeAllManage) {
			if owner == "" && s.nonAdminSeesOwn() && c.has(scopeMyRead, scopeMyManage, scopeAllRead, scopeAllManage) {
				// The other undocumented answer: 200 with only
				// the caller's own tokens, indistinguishable by shape from
				// a complete listing.
				owner = c.identityID
				break
			}
			writeError(w, http.StatusForbidden, "listing other owners' personal access tokens needs the right idn:all-personal-access-tokens:read ("+scopeAllRead+" or sp:scopes:all for an org admin)")
			return
		}
	}

	s.mu.RLock()
	pageCap, paging := s.set.pageCap, s.set.paging
	s.mu.RUnlock()
	offset := 0
	if paging || pageCap > 0 {
		// A paging (or capping) server honours limit and offset.
		limit, off, msg := pageOf(q, paging)
		if msg != "" {
			writeError(w, http.StatusBadRequest, msg)
			return
		}
		if limit >= 0 && (pageCap == 0 || limit < pageCap) {
			pageCap = limit
		}
		offset = off
		if pageCap == 0 {
			writeTokenList(w, nil, v, "")
			return
		}
	}

	s.mu.RLock()
	recs := make([]*record, 0, min(len(s.pop.order), 4096))
	for _, rec := range s.pop.order {
		t := &rec.tok
		if owner != "" && t.Owner.ID != owner {
			continue
		}
		if t.Managed && !c.seeManaged {
			continue
		}
		if match != nil && !match(t) {
			continue
		}
		if offset > 0 {
			offset--
			continue
		}
		recs = append(recs, rec)
		if pageCap > 0 && len(recs) == pageCap {
			break
		}
	}
	s.mu.RUnlock()
	echo := ""
	if s.echoBearer {
		echo, _ = bearer(r)
	}
	writeTokenList(w, recs, v, echo)
}

// createRequest is CreatePersonalAccessTokenRequest with every optional field
// kept raw, so that absent, null and ill-typed values can be told apart.
type createRequest struct {
	Name                       json.RawMessage `json:"name"`
	Scope                      json.RawMessage `json:"scope"`
	AccessTokenValiditySeconds json.RawMessage `json:"accessTokenValiditySeconds"`
	ExpirationDate             json.RawMessage `json:"expirationDate"`
	UserAwareTokenNeverExpires json.RawMessage `json:"userAwareTokenNeverExpires"`
}

func isNull(raw json.RawMessage) bool {
	return raw == nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// createResponse is CreatePersonalAccessTokenResponse.
type createResponse struct {
	ID                         string     `json:"id"`
	Secret                     string     `json:"secret"`
	Scope                      pat.Scopes `json:"scope"`
	Name                       string     `json:"name"`
	Owner                      pat.Owner  `json:"owner"`
	Created                    string     `json:"created"`
	AccessTokenValiditySeconds int        `json:"accessTokenValiditySeconds"`
	// ExpirationDate is null for a never-expiring v2025/v1 token although the
	// spec declares it required and non-nullable here (a spec inconsistency):
	// null is the only truthful value.
	ExpirationDate *string `json:"expirationDate"`
}

func hasMediaType(r *http.Request, want string) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && strings.EqualFold(mt, want)
}

// createToken is POST …/personal-access-tokens: 200 with the secret, shown
// this once. The token belongs to the caller (the request has no owner).
//
// An omitted or null scope is stored and listed as ["sp:scopes:all"], the
// documented default; null scopes in listings come only from seeded or
// scenario tokens (tokens made before scopes existed). An empty scope list is
// refused: it would grant nothing and the documentation does not say the service
// accepts it.
func (s *Sim) createToken(w http.ResponseWriter, r *http.Request, c *caller, v *apiVersion, body []byte) {
	if !c.has(scopeMyManage, scopeAllManage) {
		writeError(w, http.StatusForbidden, "creating a personal access token needs "+scopeMyManage)
		return
	}
	if !hasMediaType(r, "application/json") {
		writeError(w, http.StatusBadRequest, "Content-Type must be application/json")
		return
	}
	var req createRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "request body is not a JSON object: "+err.Error())
		return
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "request body has data after the JSON object")
		return
	}
	now := s.now()
	t := pat.Token{
		ID: randomHex(16), Owner: pat.Owner{Type: "IDENTITY", ID: c.identityID},
		Created: now, AccessTokenValiditySeconds: DefaultAccessTokenValiditySeconds,
	}
	if err := json.Unmarshal(nullToEmpty(req.Name), &t.Name); err != nil || strings.TrimSpace(t.Name) == "" {
		writeError(w, http.StatusBadRequest, "name is required and must be a non-empty string")
		return
	}
	var err error
	if t.Scope, err = decodeScope(req.Scope, true); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !isNull(req.AccessTokenValiditySeconds) {
		var secs int
		if err := json.Unmarshal(req.AccessTokenValiditySeconds, &secs); err != nil || secs < 15 || secs > 43200 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("accessTokenValiditySeconds must be an integer between 15 and 43200, got %s", req.AccessTokenValiditySeconds))
			return
		}
		t.AccessTokenValiditySeconds = secs
	}
	if msg := s.createExpiration(&t, v, req, now); msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	secret := randomHex(32)

	s.mu.Lock()
	count := 0
	for _, rec := range s.pop.tokens {
		if rec.tok.Owner.ID != c.identityID {
			continue
		}
		if rec.tok.Name == t.Name {
			s.mu.Unlock()
			writeError(w, http.StatusBadRequest, fmt.Sprintf("a personal access token named %q already exists for this owner", t.Name))
			return
		}
		if !rec.tok.Managed {
			count++
		}
	}
	if count >= MaxTokensPerOwner {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, fmt.Sprintf("the owner already has the maximum of %d personal access tokens", MaxTokensPerOwner))
		return
	}
	rec := s.normalize(t, secret)
	s.pop.put(rec)
	s.mu.Unlock()

	resp := createResponse{
		ID: rec.tok.ID, Secret: secret, Scope: rec.tok.Scope, Name: rec.tok.Name, Owner: rec.tok.Owner,
		Created: pat.FormatTime(rec.tok.Created), AccessTokenValiditySeconds: rec.tok.AccessTokenValiditySeconds,
	}
	if rec.tok.ExpirationDate != nil {
		e := pat.FormatTime(*rec.tok.ExpirationDate)
		resp.ExpirationDate = &e
	}
	writeJSON(w, http.StatusOK, resp)
}

func nullToEmpty(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return json.RawMessage(`""`)
	}
	return raw
}

// createExpiration applies the version's documented expiration rules and
// returns a 400 message, or "".
func (s *Sim) createExpiration(t *pat.Token, v *apiVersion, req createRequest, now time.Time) string {
	sixMonths := now.AddDate(0, 6, 0)
	var exp *time.Time
	if !isNull(req.ExpirationDate) {
		e, msg := decodeTime(req.ExpirationDate, "expirationDate")
		if msg != "" {
			return msg
		}
		if !e.After(now) {
			return "expirationDate must be in the future"
		}
		exp = &e
	}
	if !v.modern {
		// v3: default and upper bound six months after creation.
		if exp == nil {
			t.ExpirationDate = &sixMonths
			return ""
		}
		if exp.After(sixMonths) {
			return "expirationDate must be between now and 6 months from the creation date (" + pat.FormatTime(sixMonths) + ")"
		}
		t.ExpirationDate = exp
		return ""
	}
	aware := false
	if !isNull(req.UserAwareTokenNeverExpires) {
		if err := json.Unmarshal(req.UserAwareTokenNeverExpires, &aware); err != nil {
			return "userAwareTokenNeverExpires must be a boolean"
		}
	}
	if exp == nil && !aware {
		return "expirationDate is required unless userAwareTokenNeverExpires is true (a token that never expires must be acknowledged)"
	}
	t.ExpirationDate = exp
	t.UserAwareTokenNeverExpires = &aware
	return ""
}

func decodeTime(raw json.RawMessage, field string) (time.Time, string) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, field + " must be a date-time string"
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Sprintf("%s %q is not an RFC 3339 date-time", field, s)
	}
	return msTrunc(t), ""
}

// decodeScope reads a scope value. With omittedIsAll, absent or null means
// ["sp:scopes:all"] (create); otherwise null is refused (patch).
func decodeScope(raw json.RawMessage, omittedIsAll bool) (pat.Scopes, error) {
	if isNull(raw) {
		if omittedIsAll {
			return pat.ScopesOf(pat.ScopeAll), nil
		}
		return pat.Scopes{}, fmt.Errorf("scope must be a non-empty array of strings")
	}
	var vals []string
	if err := json.Unmarshal(raw, &vals); err != nil {
		return pat.Scopes{}, fmt.Errorf("scope must be an array of strings")
	}
	if len(vals) == 0 {
		return pat.Scopes{}, fmt.Errorf("scope must hold at least one scope (omit it for sp:scopes:all)")
	}
	for _, s := range vals {
		if strings.TrimSpace(s) == "" {
			return pat.Scopes{}, fmt.Errorf("scope must not contain empty strings")
		}
	}
	return pat.ScopesOf(vals...), nil
}

type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

// readPatch reads a PATCH request's JSON Patch list, the same way for
// tokens and API clients: the json-patch media type, an array, at least one
// operation. Otherwise it answers 400 and reports false.
func readPatch(w http.ResponseWriter, r *http.Request, body []byte) ([]patchOp, bool) {
	if !hasMediaType(r, "application/json-patch+json") {
		writeError(w, http.StatusBadRequest, "Content-Type must be application/json-patch+json")
		return nil, false
	}
	var ops []patchOp
	if err := json.Unmarshal(body, &ops); err != nil {
		writeError(w, http.StatusBadRequest, "request body is not a JSON Patch array: "+err.Error())
		return nil, false
	}
	if len(ops) == 0 {
		writeError(w, http.StatusBadRequest, "the patch holds no operations")
		return nil, false
	}
	return ops, true
}

// lookupVisible finds a token the caller may see; managed tokens are hidden
// (404) from a caller who may not see managed tokens. Callers hold s.mu.
func (s *Sim) lookupVisible(c *caller, id string) (*record, bool) {
	rec, ok := s.pop.tokens[s.storedID(id)]
	if !ok || (rec.tok.Managed && !c.seeManaged) {
		return nil, false
	}
	return rec, true
}

// patchToken is PATCH …/personal-access-tokens/{id} with a JSON Patch list.
// Paths: /name and /scope in every version, /expirationDate and
// /userAwareTokenNeverExpires in v2025 and v1. Ops: replace and add (which
// replaces an existing member) on all, remove on /expirationDate only (the
// token then never expires). The patch is atomic.
func (s *Sim) patchToken(w http.ResponseWriter, r *http.Request, c *caller, v *apiVersion, id string, body []byte) {
	s.mu.RLock()
	patchOthers := s.set.patchOthers
	s.mu.RUnlock()
	if !c.has(scopeMyManage) && !(patchOthers && c.hasAll(scopeAllManage)) {
		writeError(w, http.StatusForbidden, "patching a personal access token needs "+scopeMyManage)
		return
	}
	ops, ok := readPatch(w, r, body)
	if !ok {
		return
	}
	status, msg, patched := s.patchLocked(c, v, id, ops, patchOthers)
	if status != http.StatusOK {
		writeError(w, status, msg)
		return
	}
	writeToken(w, http.StatusOK, patched, v)
}

// patchLocked applies a patch under the lock and returns the status, the
// error message, or the patched token; the response is written after the lock
// is released so that a slow client holds up nobody.
func (s *Sim) patchLocked(c *caller, v *apiVersion, id string, ops []patchOp, patchOthers bool) (int, string, *pat.Token) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.lookupVisible(c, id)
	if !ok {
		return http.StatusNotFound, fmt.Sprintf("personal access token %q not found", id), nil
	}
	if rec.tok.Owner.ID != c.identityID {
		if !patchOthers {
			// What a real tenant answers, also to
			// an org admin with sp:scopes:all: only the owner may PATCH.
			return http.StatusForbidden, Msg403Refused, nil
		}
		if !c.hasAll(scopeAllManage) {
			return http.StatusForbidden, "patching another owner's token needs " + scopeAllManage, nil
		}
	}
	t := cloneToken(rec.tok)
	if msg := s.applyPatch(&t, ops, v, now); msg != "" {
		return http.StatusBadRequest, msg, nil
	}
	if t.Name != rec.tok.Name {
		for _, other := range s.pop.tokens {
			if other.tok.ID != t.ID && other.tok.Owner.ID == t.Owner.ID && other.tok.Name == t.Name {
				return http.StatusBadRequest, fmt.Sprintf("a personal access token named %q already exists for this owner", t.Name), nil
			}
		}
	}
	nr := &record{tok: t, secretHash: rec.secretHash}
	s.pop.put(nr)
	return http.StatusOK, "", &nr.tok
}

// applyPatch applies ops to t and returns a 400 message, or "".
func (s *Sim) applyPatch(t *pat.Token, ops []patchOp, v *apiVersion, now time.Time) string {
	expNull, awareTrue := false, false
	for i, op := range ops {
		where := fmt.Sprintf("operation %d (%s %s)", i, op.Op, op.Path)
		switch op.Op {
		case "add", "replace", "remove":
		case "move", "copy", "test":
			return where + ": op " + op.Op + " is not supported; use replace"
		default:
			return where + ": op must be one of add, remove, replace, move, copy, test"
		}
		writable := op.Path == pat.PathName || op.Path == pat.PathScope ||
			(v.modern && (op.Path == pat.PathExpirationDate || op.Path == pat.PathUserAwareTokenNeverExpires))
		if !writable {
			if v.modern {
				return where + ": path is not patchable; patchable: /name, /scope, /expirationDate, /userAwareTokenNeverExpires"
			}
			return where + ": path is not patchable; patchable: /name, /scope"
		}
		if op.Op == "remove" {
			if op.Path != pat.PathExpirationDate {
				return where + ": remove is only allowed on /expirationDate"
			}
			t.ExpirationDate, expNull = nil, true
			continue
		}
		if op.Value == nil && op.Path != pat.PathExpirationDate {
			return where + ": value is required"
		}
		switch op.Path {
		case pat.PathName:
			var name string
			if err := json.Unmarshal(op.Value, &name); err != nil || strings.TrimSpace(name) == "" {
				return where + ": value must be a non-empty string"
			}
			t.Name = name
		case pat.PathScope:
			sc, err := decodeScope(op.Value, false)
			if err != nil {
				return where + ": " + err.Error()
			}
			t.Scope = sc
		case pat.PathExpirationDate:
			if isNull(op.Value) {
				t.ExpirationDate, expNull = nil, true
				continue
			}
			e, msg := decodeTime(op.Value, "value")
			if msg != "" {
				return where + ": " + msg
			}
			if !e.After(now) {
				return where + ": expirationDate must be in the future"
			}
			t.ExpirationDate = &e
		case pat.PathUserAwareTokenNeverExpires:
			var b bool
			if err := json.Unmarshal(op.Value, &b); err != nil {
				return where + ": value must be a boolean"
			}
			t.UserAwareTokenNeverExpires = &b
			awareTrue = b
		}
	}
	if expNull && !awareTrue {
		return "replacing expirationDate with null needs userAwareTokenNeverExpires true in the same patch"
	}
	if v.modern && t.ExpirationDate == nil && !neverExpiresFlag(t) {
		return "a token without expirationDate needs userAwareTokenNeverExpires true"
	}
	return ""
}

// deleteToken is DELETE …/personal-access-tokens/{id}: 204, 404 for an unknown
// (or, to this caller, invisible) id, 403 for another owner's token without
// sp:all-personal-access-tokens:manage (or sp:scopes:all) as an org admin.
func (s *Sim) deleteToken(w http.ResponseWriter, c *caller, id string) {
	if !c.has(scopeMyManage, scopeAllManage) {
		writeError(w, http.StatusForbidden, "deleting a personal access token needs "+scopeMyManage+" or "+scopeAllManage)
		return
	}
	s.mu.Lock()
	rec, ok := s.lookupVisible(c, id)
	switch {
	case !ok:
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, fmt.Sprintf("personal access token %q not found", id))
	case rec.tok.Owner.ID != c.identityID && !c.hasAll(scopeAllManage):
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, "deleting another owner's token needs "+scopeAllManage)
	default:
		s.pop.remove(rec.tok.ID)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}
}

// storedID returns the id under which the population holds the token id
// names: id itself, or with AnyCaseIDs the stored id equal to it without
// regard to case. Callers hold s.mu.
func (s *Sim) storedID(id string) string {
	if _, ok := s.pop.tokens[id]; ok || !s.set.anyCaseIDs {
		return id
	}
	for k := range s.pop.tokens {
		if strings.EqualFold(k, id) {
			return k
		}
	}
	return id
}
