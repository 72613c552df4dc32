package idnsim

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// Operation names, the same strings the API client uses as metric labels. Faults
// and the request log use them.
const (
	OpOAuthToken           = "oauth_token"
	OpListTokens           = "list_tokens"
	OpCreateToken          = "create_token"
	OpPatchToken           = "patch_token"
	OpDeleteToken          = "delete_token"
	OpListPublicIdentities = "list_public_identities"
	// OpBulkUpdateTokens is PATCH|POST /personal-access-tokens/v1/bulk-update.
	OpBulkUpdateTokens = "bulk_update_tokens"
	OpOAuthInfo        = "oauth_info"
)

// ControlPrefix is where the simulator's own test endpoints live. No SailPoint
// API uses it, so a client pointed at the simulator can never reach them by
// accident.
const ControlPrefix = "/__sim/"

// Defaults the zero Options mean.
const (
	DefaultRateLimit                  = 100
	DefaultRateWindow                 = 10 * time.Second
	DefaultAccessTokenValiditySeconds = 43200
	// MaxTokensPerOwner is the per-user cap the UI enforces.
	MaxTokensPerOwner = 10
	// maxBodyBytes bounds a request body; far above any PAT request.
	maxBodyBytes = 1 << 20
)

// Options configure a Sim. The zero value is a faithful tenant.
type Options struct {
	// Clock is the simulator's notion of now (token expiry, rate limit windows,
	// created and lastUsed stamps, the Date header of every answer). Default
	// time.Now.
	Clock func() time.Time
	// RateLimit is the number of requests per client id, per API version, per
	// RateWindow. 0 means 100; a negative value turns rate limiting off.
	RateLimit int
	// RateWindow is 10s when zero.
	RateWindow time.Duration
	// AccessTokenTTL overrides the lifetime of minted access tokens; 0 means the
	// PAT's accessTokenValiditySeconds.
	AccessTokenTTL time.Duration
	// PatchOthers lets an org admin with sp:scopes:all or
	// sp:all-personal-access-tokens:manage PATCH other owners' tokens. NOT how
	// a real tenant behaves: off (the default), a per-token PATCH of another
	// owner's token is refused with the 403 a real tenant answers ("The server
	// understood the request but refuses to authorize it"), and the spec lists
	// only sp:my-personal-access-tokens:manage for PATCH. A test that turns it
	// on must say why.
	PatchOthers bool
	// PageCap > 0 silently truncates every token listing to this many items,
	// as a paging server with that page size would (limit and offset are
	// then honoured, as with Paging).
	PageCap int
	// AnyCaseIDs makes the tenant take token ids in any case: the OAuth
	// client_id and the {id} of a token's path match a stored id without
	// regard to case. The API documents neither way; patjanitor must be
	// safe with both (its own credential spelled in capitals is still its
	// own).
	AnyCaseIDs bool
	// Paging models a server that pages the PAT list as the standard
	// collection parameters describe: limit (default and maximum 250) and
	// offset are honoured. Off by default: no version declares limit or
	// offset on the PAT list and its public callers (the official SDKs among
	// them) list it unpaged, so the faithful tenant ignores them.
	Paging bool
	// NonAdminListing is what a caller without the right
	// idn:all-personal-access-tokens:read gets when it lists every owner's
	// tokens (undocumented): NonAdminForbidden ("", the default: 403)
	// or NonAdminOwn (200 with only the caller's own tokens).
	NonAdminListing string
	// BadCredentials is the 401 body for a wrong client id or secret at the
	// token endpoint: BadCredentialsInvalidClient ("", the default:
	// {"error":"invalid_client"}) or BadCredentialsUnauthorized
	// ({"error":"unauthorized","error_description":"Full authentication is
	// required to access this resource"}); both are seen in the wild.
	BadCredentials string
	// TokenPath is where the token endpoint is served; "" means /oauth/token.
	// Another path makes /oauth/token answer 404, as on a vanity-domain
	// tenant, and GET /oauth/info names the real endpoint.
	TokenPath string
	// TokenRateLimit > 0 limits POST /oauth/token to this many requests per
	// client id per RateWindow (429 with Retry-After). 0: unlimited, the
	// default, as the documented budget is for API calls.
	TokenRateLimit int
	// OAuthInfoTokenEndpoint, if set, is the tokenEndpoint GET /oauth/info
	// announces verbatim (hostile tests: an endpoint on another host).
	OAuthInfoTokenEndpoint string
	// Sleep waits for injected latency. Default: a timer that gives up when ctx
	// ends. Tests inject a fake.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnRequest, if set, is called with every logged request after it is
	// answered (the CLI logs them).
	OnRequest func(Request)
	// EchoBearer makes the token listing echo the caller's credential: every
	// EchoMarker in a listed token's strings (name, owner, scopes, id) is
	// replaced with the bearer token of the listing request. NOT what a
	// real tenant does; it exists for the hostile tests: a tenant, or a
	// proxy, that knows the access token patjanitor sent can put it into
	// any listed string, and patjanitor must never carry it into a plan, a
	// report or a log.
	EchoBearer bool
}

// EchoMarker is what Options.EchoBearer replaces with the caller's bearer
// token in a token listing.
const EchoMarker = "$BEARER"

// Credentials are a PAT's client id and secret.
type Credentials struct {
	ClientID     string
	ClientSecret string
}

// Identity is an identity of the simulated tenant: the owner of tokens and an
// entry of GET /v3/public-identities. Tokens may name owners that are not
// identities (deleted users).
type Identity struct {
	ID    string
	Name  string
	Alias string
	// Email "" is null in the API.
	Email string
	// Status is the lifecycle status ("Active", "Inactive"); "" is null.
	Status string
	// IdentityState is ACTIVE, INACTIVE_SHORT_TERM or INACTIVE_LONG_TERM; "" is null.
	IdentityState string
	// ManagerID refers to another identity; "" means no manager.
	ManagerID  string
	Attributes []Attribute
	// OrgAdmin gives the identity's tokens the all-personal-access-tokens rights
	// (user level ORG_ADMIN).
	OrgAdmin bool
	// SeeManaged is the right idn:managed-personal-access-tokens:read: managed
	// tokens appear in this identity's listings.
	SeeManaged bool
}

// Attribute is one public identity attribute.
type Attribute struct {
	Key   string `json:"key" yaml:"key"`
	Name  string `json:"name" yaml:"name"`
	Value string `json:"value" yaml:"value"`
}

// record is one stored token. Records are immutable once stored: a mutation
// stores a new record, so a listing can collect pointers under the lock and
// encode them after releasing it, and each record can cache its JSON.
type record struct {
	tok        pat.Token
	secretHash [sha256.Size]byte
	// enc caches the listing JSON of the token: [0] the v3 shape, [1] the
	// v2025/v1 shape. A 100,000-token listing then costs a copy instead of
	// 100,000 encodings; a changed token is a new record with an empty cache.
	enc [2]atomic.Pointer[[]byte]
}

// encoded returns the token's JSON in the version's shape, cached.
func (r *record) encoded(v *apiVersion) []byte {
	i := 0
	if v.modern {
		i = 1
	}
	if p := r.enc[i].Load(); p != nil {
		return *p
	}
	b := appendToken(make([]byte, 0, 384), &r.tok, v)
	r.enc[i].Store(&b)
	return b
}

// population is the mutable tenant data guarded by Sim.mu.
type population struct {
	tokens map[string]*record
	// order holds the same records sorted by id, so that a listing walks a
	// slice instead of doing 100,000 map lookups.
	order      []*record
	identities map[string]*Identity
	admin      Credentials
}

func (p *population) clone() *population {
	c := &population{
		tokens:     make(map[string]*record, len(p.tokens)),
		order:      slices.Clone(p.order),
		identities: make(map[string]*Identity, len(p.identities)),
		admin:      p.admin,
	}
	for k, v := range p.tokens {
		c.tokens[k] = v
	}
	for k, v := range p.identities {
		cp := *v
		cp.Attributes = slices.Clone(v.Attributes)
		c.identities[k] = &cp
	}
	return c
}

func cmpRecordID(r *record, id string) int { return strings.Compare(r.tok.ID, id) }

// put adds or replaces a record, keeping order sorted.
func (p *population) put(r *record) {
	id := r.tok.ID
	i, found := slices.BinarySearchFunc(p.order, id, cmpRecordID)
	if found {
		p.order[i] = r
	} else {
		p.order = slices.Insert(p.order, i, r)
	}
	p.tokens[id] = r
}

// putBulk adds a record without keeping order sorted (sortOrder must follow):
// inserting 100,000 seeded tokens one by one into a sorted slice would be
// quadratic.
func (p *population) putBulk(r *record) {
	if old, ok := p.tokens[r.tok.ID]; ok {
		i := slices.Index(p.order, old)
		p.order[i] = r
	} else {
		p.order = append(p.order, r)
	}
	p.tokens[r.tok.ID] = r
}

func (p *population) sortOrder() {
	slices.SortFunc(p.order, func(a, b *record) int { return strings.Compare(a.tok.ID, b.tok.ID) })
}

func (p *population) remove(id string) bool {
	if _, ok := p.tokens[id]; !ok {
		return false
	}
	delete(p.tokens, id)
	if i, ok := slices.BinarySearchFunc(p.order, id, cmpRecordID); ok {
		p.order = slices.Delete(p.order, i, i+1)
	}
	return true
}

// settings are the Options a scenario may change at run time.
type settings struct {
	accessTokenTTL time.Duration
	patchOthers    bool
	pageCap        int
	anyCaseIDs     bool
	paging         bool
	view           viewSettings
}

// Sim is a simulated tenant. It is an http.Handler; serve it on a loopback
// listener (httptest.NewServer or the sim command). It is safe for concurrent
// use.
type Sim struct {
	clock     func() time.Time
	sleep     func(ctx context.Context, d time.Duration) error
	onRequest func(Request)
	// echoBearer is Options.EchoBearer.
	echoBearer bool
	signKey    []byte
	tenantID   string

	mu       sync.RWMutex
	pop      *population
	initial  *population // restored by /__sim/reset?population=true
	set      settings
	sessions map[string]*session

	limiter      *limiter
	tokenLimiter *limiter // nil: the token endpoint is not limited
	faults       faultSet
	oc           clientStore // the API clients (oauthclients.go)
	log          requestLog
}

// New returns a simulated tenant with no tokens but the admin PAT (owned by an
// org-admin identity, scope sp:scopes:all) that Admin returns.
func New(opts Options) *Sim {
	s := &Sim{
		echoBearer: opts.EchoBearer,
		clock:      opts.Clock,
		sleep:      opts.Sleep,
		onRequest:  opts.OnRequest,
		signKey:    randomBytes(32),
		sessions:   map[string]*session{},
		set: settings{
			accessTokenTTL: opts.AccessTokenTTL,
			patchOthers:    opts.PatchOthers,
			pageCap:        opts.PageCap,
			anyCaseIDs:     opts.AnyCaseIDs,
			paging:         opts.Paging,
			view:           viewSettingsOf(opts),
		},
		tokenLimiter: newTokenLimiter(opts),
		limiter:      newLimiter(opts.RateLimit, opts.RateWindow),
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.sleep == nil {
		s.sleep = sleepCtx
	}
	s.tenantID = uuidFrom(randomBytes(16))
	pop := &population{tokens: map[string]*record{}, identities: map[string]*Identity{}}
	admin := Identity{
		ID: randomHex(16), Name: "PAT Janitor Admin", Alias: "svc-patjanitor",
		Email: "svc-patjanitor@example.com", Status: "Active", IdentityState: "ACTIVE",
		OrgAdmin: true, SeeManaged: true,
	}
	pop.identities[admin.ID] = &admin
	creds := Credentials{ClientID: randomHex(16), ClientSecret: randomHex(32)}
	pop.put(&record{
		tok: pat.Token{
			ID: creds.ClientID, Name: "patjanitor", Scope: pat.ScopesOf(pat.ScopeAll),
			Owner:   pat.Owner{Type: "IDENTITY", ID: admin.ID, Name: admin.Name},
			Created: msTrunc(s.clock()), AccessTokenValiditySeconds: DefaultAccessTokenValiditySeconds,
		},
		secretHash: sha256.Sum256([]byte(creds.ClientSecret)),
	})
	pop.admin = creds
	s.pop = pop
	s.initial = pop.clone()
	return s
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Sim) now() time.Time { return msTrunc(s.clock()) }

func msTrunc(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}

func randomHex(nBytes int) string { return hex.EncodeToString(randomBytes(nBytes)) }

func uuidFrom(b []byte) string {
	h := hex.EncodeToString(b[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Warm encodes every token in both listing shapes ahead of the first listing
// (the sim command does it in the background after seeding), so that even the
// first listing of a large tenant is a copy. Safe to run concurrently with
// requests.
func (s *Sim) Warm() {
	s.mu.RLock()
	recs := slices.Clone(s.pop.order)
	s.mu.RUnlock()
	for _, r := range recs {
		r.encoded(versionV3)
		r.encoded(versionV2025)
	}
}

// Admin returns the credentials of the admin PAT the client logs in with.
func (s *Sim) Admin() Credentials {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.pop.admin
}

// Tokens returns the current tokens sorted by id.
func (s *Sim) Tokens() []pat.Token {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]pat.Token, 0, len(s.pop.order))
	for _, r := range s.pop.order {
		out = append(out, cloneToken(r.tok))
	}
	return out
}

// Token returns one token by id.
func (s *Sim) Token(id string) (pat.Token, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.pop.tokens[id]
	if !ok {
		return pat.Token{}, false
	}
	return cloneToken(r.tok), true
}

// Identities returns the tenant's identities sorted by id.
func (s *Sim) Identities() []Identity {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Identity, 0, len(s.pop.identities))
	for _, id := range s.pop.identities {
		cp := *id
		cp.Attributes = slices.Clone(id.Attributes)
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// AddIdentity adds or replaces an identity out of band.
func (s *Sim) AddIdentity(id Identity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := id
	cp.Attributes = slices.Clone(id.Attributes)
	s.pop.identities[id.ID] = &cp
}

// Touch sets a token's lastUsed to exactly at (truncated to milliseconds), as
// if it had been used then. Unknown ids are ignored.
func (s *Sim) Touch(id string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.pop.tokens[id]
	if !ok {
		return
	}
	nr := &record{tok: cloneToken(r.tok), secretHash: r.secretHash}
	lu := msTrunc(at)
	nr.tok.LastUsed = &lu
	s.pop.put(nr)
}

// Remove deletes a token out of band (its owner deleted it). Unknown ids are
// ignored.
func (s *Sim) Remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pop.remove(id)
}

// Add adds or replaces a token out of band. An empty ID gets a fresh one, an
// empty secret a random one (the token then cannot log in), a zero Created the
// current time, a zero AccessTokenValiditySeconds 43200, an empty owner type
// IDENTITY and an empty owner name the identity's name. Times are truncated to
// milliseconds, as the API reports them.
func (s *Sim) Add(t pat.Token, secret string) {
	if t.ID == "" {
		t.ID = randomHex(16)
	}
	if secret == "" {
		secret = randomHex(32)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pop.put(s.normalize(t, secret))
}

// normalize fills defaults and truncates times. Callers hold s.mu.
func (s *Sim) normalize(t pat.Token, secret string) *record {
	return normalizeToken(s.pop, s.now(), t, secret)
}

// normalizeToken fills defaults (owner names from pop's identities) and
// truncates times to milliseconds.
func normalizeToken(pop *population, now time.Time, t pat.Token, secret string) *record {
	t = cloneToken(t)
	if t.Created.IsZero() {
		t.Created = now
	}
	t.Created = msTrunc(t.Created)
	if t.LastUsed != nil {
		lu := msTrunc(*t.LastUsed)
		t.LastUsed = &lu
	}
	if t.ExpirationDate != nil {
		e := msTrunc(*t.ExpirationDate)
		t.ExpirationDate = &e
	}
	if t.AccessTokenValiditySeconds == 0 {
		t.AccessTokenValiditySeconds = DefaultAccessTokenValiditySeconds
	}
	if t.Owner.Type == "" {
		t.Owner.Type = "IDENTITY"
	}
	if t.Owner.Name == "" {
		if id, ok := pop.identities[t.Owner.ID]; ok {
			t.Owner.Name = id.Name
		}
	}
	return &record{tok: t, secretHash: sha256.Sum256([]byte(secret))}
}

func cloneToken(t pat.Token) pat.Token {
	t.Scope.Values = slices.Clone(t.Scope.Values)
	if t.LastUsed != nil {
		v := *t.LastUsed
		t.LastUsed = &v
	}
	if t.ExpirationDate != nil {
		v := *t.ExpirationDate
		t.ExpirationDate = &v
	}
	if t.UserAwareTokenNeverExpires != nil {
		v := *t.UserAwareTokenNeverExpires
		t.UserAwareTokenNeverExpires = &v
	}
	return t
}

// replacePopulation installs a new population (Seed, scenarios) and forgets
// every issued access token and rate-limit window.
func (s *Sim) replacePopulation(p *population) {
	s.mu.Lock()
	s.pop = p
	s.initial = p.clone()
	s.sessions = map[string]*session{}
	s.mu.Unlock()
	s.limiter.reset()
}

// Reset forgets the request log, faults, issued access tokens and rate-limit
// windows. With population true it also restores the tokens and identities the
// last Seed or scenario installed.
func (s *Sim) Reset(population bool) {
	s.mu.Lock()
	if population {
		s.pop = s.initial.clone()
		s.oc.restore()
	}
	s.sessions = map[string]*session{}
	s.mu.Unlock()
	s.limiter.reset()
	s.ClearFaults()
	s.ResetRequests()
}

// apiVersion describes what differs between the PAT API versions.
type apiVersion struct {
	name string
	// modern: expirationDate nullable and writable, userAwareTokenNeverExpires
	// present (v2025, v1); otherwise the v3 shape.
	modern bool
	// hideAware leaves userAwareTokenNeverExpires out of the token (the v1
	// bulk update's answer: the flag "is stored internally and is not
	// returned in the response").
	hideAware bool
}

var (
	versionV3    = &apiVersion{name: "v3"}
	versionV2025 = &apiVersion{name: "v2025", modern: true}
	versionV1    = &apiVersion{name: "v1", modern: true}
	// versionV1Bulk is the v1 shape of the bulk update's answer.
	versionV1Bulk = &apiVersion{name: "v1", modern: true, hideAware: true}
)

// route is what a request path and method resolve to.
type route struct {
	op      string
	version *apiVersion
	id      string
	allow   string // for 405: the methods the path supports
}

// resolve routes the escaped path (r.URL.EscapedPath()): an id is one
// segment, so a "/" in it arrives as %2F and stays in the id, as path
// parameters are read on HTTP servers; the route's id is unescaped.
func resolve(method, path string) route {
	var v *apiVersion
	var rest string
	switch {
	case path == "/oauth/token":
		if method != http.MethodPost {
			return route{allow: http.MethodPost}
		}
		return route{op: OpOAuthToken}
	case path == "/v3/public-identities":
		if method != http.MethodGet {
			return route{allow: http.MethodGet, version: versionV3}
		}
		return route{op: OpListPublicIdentities, version: versionV3}
	case path == "/public-identities/v1":
		if method != http.MethodGet {
			return route{allow: http.MethodGet, version: versionV1}
		}
		return route{op: OpListPublicIdentities, version: versionV1}
	case path == oauthClientsPath || strings.HasPrefix(path, oauthClientsPath+"/"):
		return resolveOAuthClients(method, path)
	case strings.HasPrefix(path, "/v3/personal-access-tokens"):
		v, rest = versionV3, strings.TrimPrefix(path, "/v3/personal-access-tokens")
	case strings.HasPrefix(path, "/v2025/personal-access-tokens"):
		v, rest = versionV2025, strings.TrimPrefix(path, "/v2025/personal-access-tokens")
	case strings.HasPrefix(path, "/personal-access-tokens/v1"):
		v, rest = versionV1, strings.TrimPrefix(path, "/personal-access-tokens/v1")
	default:
		return route{}
	}
	switch {
	case rest == "":
		switch method {
		case http.MethodGet:
			return route{op: OpListTokens, version: v}
		case http.MethodPost:
			return route{op: OpCreateToken, version: v}
		}
		return route{version: v, allow: "GET, POST"}
	case v == versionV1 && rest == bulkUpdatePath:
		if method == http.MethodPatch || method == http.MethodPost {
			return route{op: OpBulkUpdateTokens, version: v}
		}
		return route{version: v, allow: "PATCH, POST"}
	case strings.HasPrefix(rest, "/") && !strings.Contains(rest[1:], "/") && len(rest) > 1:
		id, err := url.PathUnescape(rest[1:])
		if err != nil {
			return route{}
		}
		switch method {
		case http.MethodPatch:
			return route{op: OpPatchToken, version: v, id: id}
		case http.MethodDelete:
			return route{op: OpDeleteToken, version: v, id: id}
		}
		return route{version: v, allow: "PATCH, DELETE"}
	}
	return route{}
}

// ServeHTTP answers one request: control endpoints, or an API call through
// fault injection, authentication, the rate limiter and the operation.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The Date header from the simulator's clock, as a real tenant stamps
	// its own (net/http would stamp the wall clock): a test that moves the
	// tenant's clock moves its Date, and patjanitor compares it with its own.
	w.Header().Set("Date", s.clock().UTC().Format(http.TimeFormat))
	if strings.HasPrefix(r.URL.Path, ControlPrefix) {
		s.serveControl(w, r)
		return
	}
	rt := s.resolveView(r.Method, r.URL.EscapedPath())
	body, tooLarge := readBody(r)
	entry := s.newEntry(r, rt, body)
	lw := &statusWriter{ResponseWriter: w}
	// The entry is logged before the client can see any of the answer (when
	// the status is written, or before a reset closes the connection): a test
	// that reads the log as soon as its call returns must find every request
	// the call made.
	record := sync.OnceFunc(func() {
		entry.Status = lw.status
		if entry.Fault == "reset" {
			entry.Status = 0
		}
		s.log.add(entry)
		if s.onRequest != nil {
			s.onRequest(entry)
		}
	})
	lw.onStatus = record
	defer record()

	if f, ok := s.faults.match(rt.op, r.Method, r.URL.Path); ok {
		entry.Fault = f.kind()
		if !s.applyFault(lw, r, f, rt, body, &entry, record) {
			// the client went away during injected latency
			entry.Fault = "latency"
		}
		return
	}
	if tooLarge {
		writeError(lw, http.StatusBadRequest, "request body larger than 1 MiB")
		return
	}
	s.dispatch(lw, r, rt, body, &entry)
}

// dispatch runs the operation without fault injection.
func (s *Sim) dispatch(w http.ResponseWriter, r *http.Request, rt route, body []byte, entry *Request) {
	switch {
	case rt.op == "" && rt.allow != "":
		w.Header().Set("Allow", rt.allow)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not supported on "+r.URL.Path)
		return
	case rt.op == "":
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
		return
	case rt.op == OpOAuthToken:
		s.serveToken(w, r, body, entry)
		return
	case rt.op == OpOAuthInfo:
		s.serveOAuthInfo(w, r)
		return
	}
	c, msg := s.authenticate(r)
	if c == nil {
		writeUnauthorized(w, msg)
		return
	}
	entry.ClientID = c.clientID
	// The window counts arrivals, as a gateway does: the time this request
	// came in, not after its body was read and its token checked (which
	// under load would let a request that arrived in time count late, or
	// one that arrived late count early).
	if wait, ok := s.limiter.allow(c.clientID+"|"+rt.version.name, entry.Time); !ok {
		writeRateLimited(w, wait)
		return
	}
	switch rt.op {
	case OpListTokens:
		s.listTokens(w, r, c, rt.version)
	case OpCreateToken:
		s.createToken(w, r, c, rt.version, body)
	case OpPatchToken:
		s.patchToken(w, r, c, rt.version, rt.id, body)
	case OpDeleteToken:
		s.deleteToken(w, c, rt.id)
	case OpBulkUpdateTokens:
		s.bulkUpdate(w, r, c, body)
	case OpListPublicIdentities:
		s.listPublicIdentities(w, r)
	case OpListOAuthClients, OpGetOAuthClient, OpPatchOAuthClient, OpDeleteOAuthClient:
		s.serveOAuthClients(w, r, c, rt, body)
	}
}

// readBody reads the whole body (bounded) and puts it back for form parsing.
func readBody(r *http.Request) (body []byte, tooLarge bool) {
	if r.Body == nil {
		return nil, false
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	_ = r.Body.Close()
	if len(b) > maxBodyBytes {
		b, tooLarge = b[:maxBodyBytes], true
	}
	if err != nil && !errors.Is(err, io.EOF) {
		b = nil
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, tooLarge
}

// statusWriter remembers the status for the request log, and calls onStatus
// once the status is known but before it reaches the client.
type statusWriter struct {
	http.ResponseWriter
	status   int
	onStatus func()
}

func (w *statusWriter) setStatus(code int) {
	if w.status == 0 {
		w.status = code
		if w.onStatus != nil {
			w.onStatus()
		}
	}
}

func (w *statusWriter) WriteHeader(code int) {
	w.setStatus(code)
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.setStatus(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// queryValue returns the first value of key, with presence.
func queryValue(q url.Values, key string) (string, bool) {
	v, ok := q[key]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}
