package idnsim

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/patjanitor/patjanitor/internal/apiclient"
	"github.com/patjanitor/patjanitor/internal/pat"
)

// Operations of the OAuth API client endpoints (/v3/oauth-clients).
const (
	OpListOAuthClients  = "list_oauth_clients"
	OpGetOAuthClient    = "get_oauth_client"
	OpPatchOAuthClient  = "patch_oauth_client"
	OpDeleteOAuthClient = "delete_oauth_client"
)

// OAuth client scopes (listOauthClients and friends in the v3 spec).
const (
	scopeOAuthClientRead   = "sp:oauth-client:read"
	scopeOAuthClientManage = "sp:oauth-client:manage"
)

const oauthClientsPath = "/v3/oauth-clients"

// oauthClientPatchable are the fields the spec lists as patchable
// (patchOauthClient); every other path is a 400.
var oauthClientPatchable = []string{
	"tenant", "businessName", "homepageUrl", "name", "description", "accessTokenValiditySeconds",
	"refreshTokenValiditySeconds", "redirectUris", "grantTypes", "accessType", "enabled",
	"strongAuthSupported", "claimsSupported",
}

// simClient is a stored API client in the full GetOAuthClientResponse shape.
// Internal and Enabled nil are omitted from the JSON: a tenant that leaves
// them out (hostile tests) is simulated by adding such a client.
type simClient struct {
	ID                          string     `json:"id"`
	BusinessName                *string    `json:"businessName"`
	HomepageURL                 *string    `json:"homepageUrl"`
	Name                        string     `json:"name"`
	Description                 *string    `json:"description"`
	AccessTokenValiditySeconds  int        `json:"accessTokenValiditySeconds"`
	RefreshTokenValiditySeconds int        `json:"refreshTokenValiditySeconds"`
	RedirectURIs                []string   `json:"redirectUris"`
	GrantTypes                  []string   `json:"grantTypes"`
	AccessType                  string     `json:"accessType"`
	Type                        string     `json:"type"`
	Internal                    *bool      `json:"internal,omitempty"`
	Enabled                     *bool      `json:"enabled,omitempty"`
	StrongAuthSupported         bool       `json:"strongAuthSupported"`
	ClaimsSupported             bool       `json:"claimsSupported"`
	Created                     string     `json:"created"`
	Modified                    string     `json:"modified"`
	Secret                      *string    `json:"secret"`
	Metadata                    *string    `json:"metadata"`
	LastUsed                    *string    `json:"lastUsed"`
	Scope                       pat.Scopes `json:"scope"`

	tenant     string
	secretHash [sha256.Size]byte
}

// clientStore holds the simulated tenant's API clients. It has its own lock:
// the token population and its copy-on-write records are not involved.
type clientStore struct {
	mu      sync.RWMutex
	byID    map[string]*simClient
	initial map[string]*simClient
}

func cloneSimClient(c *simClient) *simClient {
	cp := *c
	cp.RedirectURIs = slices.Clone(c.RedirectURIs)
	cp.GrantTypes = slices.Clone(c.GrantTypes)
	cp.Scope.Values = slices.Clone(c.Scope.Values)
	return &cp
}

func (cs *clientStore) put(c *simClient) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.byID == nil {
		cs.byID = map[string]*simClient{}
	}
	cs.byID[strings.ToLower(c.ID)] = c
}

// snapshot makes the current clients what Reset(true) restores.
func (cs *clientStore) snapshot() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.initial = map[string]*simClient{}
	for k, c := range cs.byID {
		cs.initial[k] = cloneSimClient(c)
	}
}

func (cs *clientStore) restore() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.byID = map[string]*simClient{}
	for k, c := range cs.initial {
		cs.byID[k] = cloneSimClient(c)
	}
}

// sorted returns the clients by id (a stable listing order).
func (cs *clientStore) sorted() []*simClient {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	out := make([]*simClient, 0, len(cs.byID))
	for _, c := range cs.byID {
		out = append(out, cloneSimClient(c))
	}
	slices.SortFunc(out, func(a, b *simClient) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (c *simClient) model() apiclient.Client {
	out := apiclient.Client{
		ID: c.ID, Name: c.Name, Type: c.Type, GrantTypes: slices.Clone(c.GrantTypes), Scope: c.Scope,
		Internal: c.Internal, Enabled: c.Enabled,
	}
	out.Scope.Values = slices.Clone(c.Scope.Values)
	if c.BusinessName != nil {
		out.BusinessName = *c.BusinessName
	}
	if c.Description != nil {
		out.Description = *c.Description
	}
	out.Created, _ = pat.ParseTime(c.Created)
	if m, err := pat.ParseTime(c.Modified); err == nil {
		out.Modified = &m
	}
	if c.LastUsed != nil {
		if lu, err := pat.ParseTime(*c.LastUsed); err == nil {
			out.LastUsed = &lu
		}
	}
	return out
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// AddOAuthClient stores an API client (replacing one with the same id). An
// empty ID gets a UUID; a zero Created is now; Internal and Enabled nil are
// left out of every answer (a tenant that omits them); an empty Type is
// CONFIDENTIAL. secret may be empty.
func (s *Sim) AddOAuthClient(c apiclient.Client, secret string) apiclient.Client {
	now := s.now()
	if c.ID == "" {
		c.ID = uuidFrom(randomBytes(16))
	}
	if c.Created.IsZero() {
		c.Created = now
	}
	if c.Type == "" {
		c.Type = apiclient.TypeConfidential
	}
	if c.GrantTypes == nil {
		c.GrantTypes = []string{"CLIENT_CREDENTIALS"}
	}
	if !c.Scope.Null && c.Scope.Values == nil {
		c.Scope = pat.Scopes{Null: true}
	}
	modified := c.Created
	if c.Modified != nil {
		modified = *c.Modified
	}
	sc := &simClient{
		ID: c.ID, BusinessName: strPtr(c.BusinessName), Name: c.Name, Description: strPtr(c.Description),
		AccessTokenValiditySeconds: 750, RefreshTokenValiditySeconds: 86400,
		RedirectURIs: []string{}, GrantTypes: slices.Clone(c.GrantTypes), AccessType: "OFFLINE", Type: c.Type,
		Internal: c.Internal, Enabled: c.Enabled,
		Created: pat.FormatTime(c.Created), Modified: pat.FormatTime(modified), Scope: c.Scope,
		secretHash: sha256.Sum256([]byte(secret)),
	}
	if c.LastUsed != nil {
		lu := pat.FormatTime(*c.LastUsed)
		sc.LastUsed = &lu
	}
	s.oc.put(sc)
	return sc.model()
}

// OAuthClients returns the API clients, by id.
func (s *Sim) OAuthClients() []apiclient.Client {
	list := s.oc.sorted()
	out := make([]apiclient.Client, len(list))
	for i, c := range list {
		out[i] = c.model()
	}
	return out
}

// OAuthClient returns one API client (ids compared without regard to case).
func (s *Sim) OAuthClient(id string) (apiclient.Client, bool) {
	s.oc.mu.RLock()
	defer s.oc.mu.RUnlock()
	c, ok := s.oc.byID[strings.ToLower(id)]
	if !ok {
		return apiclient.Client{}, false
	}
	return c.model(), true
}

// SeedOAuthClients adds a realistic, deterministic set of API clients (the
// same seed and clock give the same clients) and makes them part of what
// Reset(true) restores: internal ones (the tenant's own, never to be
// touched), never-used ones with sp:scopes:all, stale ones, recently used
// ones with narrow scopes, a public authorization-code client, and a
// disabled one.
func (s *Sim) SeedOAuthClients(seed int64) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x2545f4914f6cdd1d))
	now := s.now()
	ago := func(days int) *time.Time {
		t := msTrunc(now.Add(-time.Duration(days)*24*time.Hour - time.Duration(rng.IntN(86400))*time.Second))
		return &t
	}
	id := func() string {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return uuidFrom(b[:])
	}
	t, f := apiclient.Bool(true), apiclient.Bool(false)
	all := pat.Scopes{Null: true}
	cc := []string{"CLIENT_CREDENTIALS"}
	for _, c := range []apiclient.Client{
		{Name: "IdentityNow UI", Internal: t, Enabled: t, GrantTypes: []string{"AUTHORIZATION_CODE", "REFRESH_TOKEN"}, Scope: all, Created: *ago(1400), LastUsed: ago(0)},
		{Name: "SailPoint internal sync", Internal: t, Enabled: t, GrantTypes: cc, Scope: all, Created: *ago(1300)},
		{Name: "legacy-integration", Description: "created for the 2022 migration", Internal: f, Enabled: t, GrantTypes: cc, Scope: all, Created: *ago(900)},
		{Name: "terraform-provider", Internal: f, Enabled: t, GrantTypes: cc, Scope: pat.ScopesOf(pat.ScopeAll), Created: *ago(400)},
		{Name: "servicenow-connector", Internal: f, Enabled: t, GrantTypes: cc, Scope: pat.ScopesOf("idn:accounts:read", "idn:access-request:manage"), Created: *ago(700), LastUsed: ago(2)},
		{Name: "reporting-etl", Internal: f, Enabled: t, GrantTypes: cc, Scope: pat.ScopesOf("idn:identity:read"), Created: *ago(800), LastUsed: ago(240)},
		{Name: "splunk-export", Internal: f, Enabled: t, GrantTypes: cc, Scope: pat.ScopesOf(pat.ScopeAll), Created: *ago(600), LastUsed: ago(150)},
		{Name: "partner-portal", BusinessName: "Acme-Solar", Internal: f, Enabled: t, Type: apiclient.TypePublic, GrantTypes: []string{"AUTHORIZATION_CODE", "REFRESH_TOKEN"}, Scope: pat.ScopesOf("sp:scopes:default"), Created: *ago(500), LastUsed: ago(20)},
		{Name: "old-okta-sync", Internal: f, Enabled: f, GrantTypes: cc, Scope: all, Created: *ago(1000), LastUsed: ago(400)},
		{Name: "break-glass-client", Internal: f, Enabled: t, GrantTypes: cc, Scope: all, Created: *ago(300)},
	} {
		c.ID = id()
		s.AddOAuthClient(c, "")
	}
	s.oc.snapshot()
}

// resolveOAuthClients routes /v3/oauth-clients and /v3/oauth-clients/{id}.
func resolveOAuthClients(method, path string) route {
	rest := strings.TrimPrefix(path, oauthClientsPath)
	switch {
	case rest == "":
		if method == http.MethodGet {
			return route{op: OpListOAuthClients, version: versionV3}
		}
		return route{version: versionV3, allow: "GET, POST"}
	case strings.HasPrefix(rest, "/") && len(rest) > 1 && !strings.Contains(rest[1:], "/"):
		id, err := url.PathUnescape(rest[1:])
		if err != nil {
			return route{}
		}
		switch method {
		case http.MethodGet:
			return route{op: OpGetOAuthClient, version: versionV3, id: id}
		case http.MethodPatch:
			return route{op: OpPatchOAuthClient, version: versionV3, id: id}
		case http.MethodDelete:
			return route{op: OpDeleteOAuthClient, version: versionV3, id: id}
		}
		return route{version: versionV3, allow: "GET, PATCH, DELETE"}
	}
	return route{}
}

// serveOAuthClients answers the API client operations. Reading needs
// sp:oauth-client:read or :manage, changing needs :manage (or
// sp:scopes:all, as everywhere).
func (s *Sim) serveOAuthClients(w http.ResponseWriter, r *http.Request, c *caller, rt route, body []byte) {
	switch rt.op {
	case OpListOAuthClients, OpGetOAuthClient:
		if !c.has(scopeOAuthClientRead, scopeOAuthClientManage) {
			writeError(w, http.StatusForbidden, "reading API clients needs "+scopeOAuthClientRead+" or "+scopeOAuthClientManage)
			return
		}
	default:
		if !c.has(scopeOAuthClientManage) {
			writeError(w, http.StatusForbidden, "changing API clients needs "+scopeOAuthClientManage)
			return
		}
	}
	switch rt.op {
	case OpListOAuthClients:
		match, err := CompileOAuthClientFilter(r.URL.Query().Get("filters"))
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		out := []*simClient{}
		for _, sc := range s.oc.sorted() {
			if match == nil || match(sc) {
				out = append(out, sc)
			}
		}
		writeJSON(w, http.StatusOK, out)
	case OpGetOAuthClient:
		s.oc.mu.RLock()
		sc, ok := s.oc.byID[strings.ToLower(rt.id)]
		if ok {
			sc = cloneSimClient(sc)
		}
		s.oc.mu.RUnlock()
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("API client %q not found", rt.id))
			return
		}
		writeJSON(w, http.StatusOK, sc)
	case OpDeleteOAuthClient:
		s.oc.mu.Lock()
		_, ok := s.oc.byID[strings.ToLower(rt.id)]
		delete(s.oc.byID, strings.ToLower(rt.id))
		s.oc.mu.Unlock()
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("API client %q not found", rt.id))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case OpPatchOAuthClient:
		s.patchOAuthClient(w, r, rt.id, body)
	}
}

func (s *Sim) patchOAuthClient(w http.ResponseWriter, r *http.Request, id string, body []byte) {
	ops, ok := readPatch(w, r, body)
	if !ok {
		return
	}
	now := s.now()
	s.oc.mu.Lock()
	cur, ok := s.oc.byID[strings.ToLower(id)]
	if !ok {
		s.oc.mu.Unlock()
		writeError(w, http.StatusNotFound, fmt.Sprintf("API client %q not found", id))
		return
	}
	sc := cloneSimClient(cur)
	if msg := applyOAuthClientPatch(sc, ops); msg != "" {
		s.oc.mu.Unlock()
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	sc.Modified = pat.FormatTime(now)
	s.oc.byID[strings.ToLower(id)] = sc
	out := cloneSimClient(sc)
	s.oc.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// applyOAuthClientPatch applies replace (or add) operations of the
// patchable fields, atomically: the first bad operation leaves sc unusable
// and returns the 400 message.
func applyOAuthClientPatch(sc *simClient, ops []patchOp) string {
	for i, op := range ops {
		where := fmt.Sprintf("operation %d (%s %s)", i, op.Op, op.Path)
		if op.Op != "replace" && op.Op != "add" {
			return where + ": only replace and add are supported"
		}
		field := strings.TrimPrefix(op.Path, "/")
		if !strings.HasPrefix(op.Path, "/") || !slices.Contains(oauthClientPatchable, field) {
			return where + ": path is not patchable; patchable: /" + strings.Join(oauthClientPatchable, ", /")
		}
		if op.Value == nil {
			return where + ": value is required"
		}
		var err error
		switch field {
		case "enabled":
			var b bool
			err = json.Unmarshal(op.Value, &b)
			sc.Enabled = &b
		case "strongAuthSupported":
			err = json.Unmarshal(op.Value, &sc.StrongAuthSupported)
		case "claimsSupported":
			err = json.Unmarshal(op.Value, &sc.ClaimsSupported)
		case "name":
			err = json.Unmarshal(op.Value, &sc.Name)
			if err == nil && strings.TrimSpace(sc.Name) == "" {
				return where + ": name must not be empty"
			}
		case "tenant":
			err = json.Unmarshal(op.Value, &sc.tenant)
		case "businessName":
			err = json.Unmarshal(op.Value, &sc.BusinessName)
		case "homepageUrl":
			err = json.Unmarshal(op.Value, &sc.HomepageURL)
		case "description":
			err = json.Unmarshal(op.Value, &sc.Description)
		case "accessTokenValiditySeconds":
			err = json.Unmarshal(op.Value, &sc.AccessTokenValiditySeconds)
		case "refreshTokenValiditySeconds":
			err = json.Unmarshal(op.Value, &sc.RefreshTokenValiditySeconds)
		case "redirectUris":
			err = json.Unmarshal(op.Value, &sc.RedirectURIs)
		case "grantTypes":
			var gts []string
			if err = json.Unmarshal(op.Value, &gts); err == nil {
				for _, g := range gts {
					if !slices.Contains(apiclient.GrantTypes, g) {
						return where + ": unknown grant type " + g
					}
				}
				sc.GrantTypes = gts
			}
		case "accessType":
			err = json.Unmarshal(op.Value, &sc.AccessType)
			if err == nil && sc.AccessType != "ONLINE" && sc.AccessType != "OFFLINE" {
				return where + ": accessType must be ONLINE or OFFLINE"
			}
		}
		if err != nil {
			return where + ": value has the wrong type: " + err.Error()
		}
	}
	return ""
}

// CompileOAuthClientFilter parses a filters value of the API client list
// endpoint. listOauthClients documents the same support list as the PAT list
// endpoint (lastUsed le <date-time>, lastUsed isnull), so it is the PAT
// filter, read against the client's lastUsed: the same forms accepted, the
// same 400 texts. An empty value means no filter (nil).
func CompileOAuthClientFilter(s string) (func(*simClient) bool, error) {
	match, err := CompilePATFilter(s)
	if match == nil {
		return nil, err
	}
	return func(c *simClient) bool {
		var t pat.Token
		if c.LastUsed != nil {
			lu, err := pat.ParseTime(*c.LastUsed)
			if err != nil {
				return false // matches neither isnull nor le
			}
			t.LastUsed = &lu
		}
		return match(&t)
	}, nil
}

// serveClientToken answers POST /oauth/token for an API client's
// client_credentials (s.mu is held). It reports false when id is no API
// client (the caller answers as for an unknown PAT). A disabled client, a
// wrong secret or a client without the CLIENT_CREDENTIALS grant is a 401:
// disabling a client is what cuts its users off. The caller acts for the
// tenant (no identity) with the client's scopes; lastUsed is updated once a
// day, as for tokens.
func (s *Sim) serveClientToken(w http.ResponseWriter, id, secret string, now time.Time, entry *Request) bool {
	s.oc.mu.Lock()
	defer s.oc.mu.Unlock()
	sc, ok := s.oc.byID[strings.ToLower(id)]
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(secret))
	switch {
	case subtle.ConstantTimeCompare(sum[:], sc.secretHash[:]) != 1 || secret == "":
		writeJSON(w, http.StatusUnauthorized, oauthError{"invalid_client", "Bad client credentials"})
		return true
	case sc.Enabled != nil && !*sc.Enabled:
		writeJSON(w, http.StatusUnauthorized, oauthError{"invalid_client", "Client is disabled"})
		return true
	case !slices.Contains(sc.GrantTypes, "CLIENT_CREDENTIALS"):
		writeJSON(w, http.StatusUnauthorized, oauthError{"unauthorized_client", "Unauthorized grant type: client_credentials"})
		return true
	}
	entry.ClientID = sc.ID
	ttl := s.set.accessTokenTTL
	if ttl <= 0 {
		ttl = time.Duration(sc.AccessTokenValiditySeconds) * time.Second
	}
	c := caller{clientID: sc.ID, scopes: sc.Scope, orgAdmin: true, apiClient: true}
	c.scopes.Values = slices.Clone(sc.Scope.Values)
	jti := randomHex(16)
	expires := now.Add(ttl)
	access := s.signJWT(map[string]any{
		"tenant_id": s.tenantID, "internal": sc.Internal != nil && *sc.Internal, "pod": "sim", "org": "sim",
		"authorities": []string{"ORG_ADMIN"}, "client_id": sc.ID, "strong_auth_supported": false,
		"scope": c.scopes.Effective(), "exp": expires.Unix(), "iat": now.Unix(), "jti": jti,
	})
	s.sweepSessions(now)
	s.sessions[access] = &session{caller: c, expires: expires}
	day := msTrunc(now)
	if sc.LastUsed == nil || (*sc.LastUsed)[:10] != pat.FormatTime(day)[:10] {
		lu := pat.FormatTime(day)
		nc := cloneSimClient(sc)
		nc.LastUsed = &lu
		s.oc.byID[strings.ToLower(id)] = nc
	}
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: access, TokenType: "bearer", ExpiresIn: int64(ttl / time.Second),
		Scope: strings.Join(c.scopes.Effective(), " "), TenantID: s.tenantID, Pod: "sim", Org: "sim", Jti: jti,
	})
	return true
}
