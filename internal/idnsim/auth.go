package idnsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// session is an issued access token: the claims a JWT would carry.
type session struct {
	caller  caller
	expires time.Time
}

// caller is who is making an API call, as the access token says.
type caller struct {
	clientID   string
	identityID string
	scopes     pat.Scopes
	orgAdmin   bool
	seeManaged bool
	// apiClient: the access token was minted for an OAuth API client's
	// credentials, not a PAT's (no identity).
	apiClient bool
}

// PAT scopes.
const (
	scopeMyRead    = "sp:my-personal-access-tokens:read"
	scopeMyManage  = "sp:my-personal-access-tokens:manage"
	scopeAllRead   = "sp:all-personal-access-tokens:read"
	scopeAllManage = "sp:all-personal-access-tokens:manage"
)

// has reports whether the caller holds one of scopes. sp:scopes:all (and a
// null scope, which means it) holds every scope of the owner's user level.
func (c *caller) has(scopes ...string) bool {
	if c.scopes.Has(pat.ScopeAll) {
		return true
	}
	for _, s := range scopes {
		if c.scopes.Has(s) {
			return true
		}
	}
	return false
}

// hasAll reports whether the caller holds an all-personal-access-tokens right:
// the scope alone grants nothing outside the user level ("scopes outside the
// user's level are accepted on create but grant nothing"), so the identity must
// be an org admin too.
func (c *caller) hasAll(scopes ...string) bool { return c.orgAdmin && c.has(scopes...) }

// authenticate resolves the bearer token. It returns nil and the 401 message
// when there is none, it is unknown, or it has expired on the simulator clock.
func (s *Sim) authenticate(r *http.Request) (*caller, string) {
	tok, ok := bearer(r)
	if !ok {
		return nil, Msg401Expired
	}
	s.mu.RLock()
	sess, found := s.sessions[tok]
	s.mu.RUnlock()
	if !found {
		return nil, Msg401Invalid
	}
	if !s.clock().Before(sess.expires) {
		return nil, Msg401Expired
	}
	c := sess.caller
	return &c, ""
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// tokenResponse is the client_credentials answer, with the SailPoint
// extras a client may read.
type tokenResponse struct {
	AccessToken         string `json:"access_token"`
	TokenType           string `json:"token_type"`
	ExpiresIn           int64  `json:"expires_in"`
	Scope               string `json:"scope"`
	TenantID            string `json:"tenant_id"`
	Pod                 string `json:"pod"`
	StrongAuthSupported bool   `json:"strong_auth_supported"`
	Org                 string `json:"org"`
	IdentityID          string `json:"identity_id"`
	UserName            string `json:"user_name"`
	StrongAuth          bool   `json:"strong_auth"`
	Jti                 string `json:"jti"`
}

type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// tokenParams collects grant_type, client_id and client_secret from the form
// body (urlencoded or multipart), the query string, or HTTP Basic, in that
// order of precedence.
func tokenParams(r *http.Request) (grant, id, secret string) {
	form := url.Values{}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "multipart/form-data":
		if err := r.ParseMultipartForm(maxBodyBytes); err == nil && r.MultipartForm != nil {
			for k, v := range r.MultipartForm.Value {
				form[k] = v
			}
		}
	case "application/x-www-form-urlencoded", "":
		if err := r.ParseForm(); err == nil {
			form = r.PostForm
		}
	}
	q := r.URL.Query()
	pick := func(k string) string {
		if v := form.Get(k); v != "" {
			return v
		}
		return q.Get(k)
	}
	grant, id, secret = pick("grant_type"), pick("client_id"), pick("client_secret")
	if u, p, ok := r.BasicAuth(); ok && id == "" {
		id, secret = u, p
	}
	return grant, id, secret
}

// serveToken is POST /oauth/token.
func (s *Sim) serveToken(w http.ResponseWriter, r *http.Request, body []byte, entry *Request) {
	grant, id, secret := tokenParams(r)
	switch {
	case grant == "":
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "Missing grant type"})
		return
	case grant != "client_credentials":
		writeJSON(w, http.StatusBadRequest, oauthError{"unsupported_grant_type", "Unsupported grant type: " + grant})
		return
	}
	now := s.clock()
	if s.tokenLimited(w, id, entry.Time) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id = s.storedID(id)
	rec, ok := s.pop.tokens[id]
	if !ok && id != "" && s.serveClientToken(w, id, secret, now, entry) { // an API client: oauthclients.go
		return
	}
	if !ok || id == "" {
		s.writeBadCredentials(w)
		return
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], rec.secretHash[:]) != 1 {
		s.writeBadCredentials(w)
		return
	}
	if rec.tok.ExpirationDate != nil && !now.Before(*rec.tok.ExpirationDate) {
		writeJSON(w, http.StatusUnauthorized, oauthError{"invalid_client", "Personal access token has expired"})
		return
	}
	entry.ClientID = id
	ttl := s.set.accessTokenTTL
	if ttl <= 0 {
		secs := rec.tok.AccessTokenValiditySeconds
		if secs <= 0 {
			secs = DefaultAccessTokenValiditySeconds
		}
		ttl = time.Duration(secs) * time.Second
	}
	ident := s.pop.identities[rec.tok.Owner.ID]
	c := caller{clientID: id, identityID: rec.tok.Owner.ID, scopes: rec.tok.Scope}
	c.scopes.Values = append([]string(nil), rec.tok.Scope.Values...)
	userName := rec.tok.Owner.Name
	if ident != nil {
		c.orgAdmin, c.seeManaged = ident.OrgAdmin, ident.SeeManaged
		if ident.Alias != "" {
			userName = ident.Alias
		}
	}
	jti := randomHex(16)
	expires := now.Add(ttl)
	access := s.signJWT(map[string]any{
		"tenant_id": s.tenantID, "internal": false, "pod": "sim", "org": "sim",
		"identity_id": c.identityID, "user_name": userName, "strong_auth": false,
		"authorities": authorities(ident), "client_id": id,
		"strong_auth_supported": false, "scope": c.scopes.Effective(),
		"exp": expires.Unix(), "iat": now.Unix(), "jti": jti,
	})
	s.sweepSessions(now)
	s.sessions[access] = &session{caller: c, expires: expires}
	s.markUsed(rec, now)
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: access, TokenType: "bearer", ExpiresIn: int64(ttl / time.Second),
		Scope: strings.Join(c.scopes.Effective(), " "), TenantID: s.tenantID, Pod: "sim", Org: "sim",
		IdentityID: c.identityID, UserName: userName, Jti: jti,
	})
}

// authorities is the JWT's user level (a real org admin's: ["ORG_ADMIN"]).
// Nothing documents the value for a plain user; "USER" (the user level the public
// identities docs call it) stands for every identity that is not an org
// admin, so a client must not read anything into it but "not ORG_ADMIN".
func authorities(id *Identity) []string {
	if id != nil && id.OrgAdmin {
		return []string{"ORG_ADMIN"}
	}
	return []string{"USER"}
}

// markUsed records that the PAT minted an access token. The tenant updates
// lastUsed at most once a day (documented): only when the stored value is on an
// earlier UTC day. Callers hold s.mu.
func (s *Sim) markUsed(rec *record, now time.Time) {
	now = msTrunc(now)
	if lu := rec.tok.LastUsed; lu != nil {
		y1, m1, d1 := lu.UTC().Date()
		y2, m2, d2 := now.Date()
		if y1 == y2 && m1 == m2 && d1 == d2 || lu.After(now) {
			return
		}
	}
	nr := &record{tok: cloneToken(rec.tok), secretHash: rec.secretHash}
	nr.tok.LastUsed = &now
	s.pop.put(nr)
}

// sweepSessions drops expired access tokens once the table grows, so a long
// benchmark cannot grow it without bound. Callers hold s.mu.
func (s *Sim) sweepSessions(now time.Time) {
	if len(s.sessions) < 1024 {
		return
	}
	for k, v := range s.sessions {
		if !now.Before(v.expires) {
			delete(s.sessions, k)
		}
	}
}

// signJWT builds a JWT-shaped access token. The simulator recognises its
// tokens by table lookup; the signature only makes them look like the real
// thing to a client that decodes them.
func (s *Sim) signJWT(claims map[string]any) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	payload, _ := json.Marshal(claims)
	unsigned := head + "." + enc.EncodeToString(payload)
	m := hmac.New(sha256.New, s.signKey)
	m.Write([]byte(unsigned))
	return unsigned + "." + enc.EncodeToString(m.Sum(nil))
}
