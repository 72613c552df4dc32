package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/time/rate"

	"github.com/patjanitor/patjanitor/internal/buildinfo"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/redirect"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// Operation names, passed to the Observer and used as the metrics label values.
const (
	OpOAuthToken           = "oauth_token"
	OpListTokens           = "list_tokens"
	OpDeleteToken          = "delete_token"
	OpPatchToken           = "patch_token"
	OpCreateToken          = "create_token"
	OpListPublicIdentities = "list_public_identities"
	OpBulkUpdateTokens     = "bulk_update_tokens"
	OpOAuthInfo            = "oauth_info"
)

// Retry reasons, passed to Observer.ObserveRetry.
const (
	ReasonRateLimited  = "rate_limited"
	ReasonServerError  = "server_error"
	ReasonConnection   = "connection"
	ReasonUnauthorized = "unauthorized"
)

// Observer receives one call per HTTP exchange and one per retry, for metrics.
// It must be safe for concurrent use and must not block.
type Observer interface {
	// ObserveRequest reports one attempt: its operation, the HTTP status (0 when
	// no response arrived) and how long it took, body included.
	ObserveRequest(operation string, code int, d time.Duration)
	// ObserveRetry reports that an attempt is being repeated, and why: one of the
	// Reason* constants.
	ObserveRetry(operation, reason string)
}

// RateLimit is the tenant's request budget: Requests per Per. The zero value
// means SailPoint's documented default, 100 requests per 10 seconds per client
// id; Requests < 0 turns client-side limiting off.
type RateLimit struct {
	Requests int
	Per      time.Duration
}

// Defaults.
const (
	DefaultMaxAttempts   = 5
	DefaultRateRequests  = 100
	DefaultRatePer       = 10 * time.Second
	defaultHTTPTimeout   = 2 * time.Minute
	tokenRefreshLeadTime = 60 * time.Second
)

// Config configures a Client.
type Config struct {
	// BaseURL is the tenant base, e.g. https://acme.api.identitynow.com, without
	// an API version path. Plain http is accepted only for a loopback host (the
	// simulator, a local proxy).
	BaseURL string
	// Version selects the PAT paths; "" means v3.
	Version pat.APIVersion
	// TokenURL is the OAuth token endpoint; "" means BaseURL + "/oauth/token",
	// and then a 404 there makes the client look the endpoint up in
	// BaseURL + "/oauth/info" (see discoverTokenURL). https only, except for
	// a loopback host.
	TokenURL string
	// ClientID and ClientSecret are the PAT's id and secret.
	ClientID     string
	ClientSecret secret.Secret
	// HTTPClient is optional; the default has a 2-minute timeout per exchange
	// (a 100,000-token listing is 34 MB). The client uses a copy of it that
	// never follows a redirect, whatever its CheckRedirect says.
	HTTPClient *http.Client
	// RateLimit is the tenant's budget; see RateLimit.
	RateLimit RateLimit
	// MaxAttempts bounds the attempts per operation (default 5). The one refresh
	// after a 401 does not count against it.
	MaxAttempts int
	// Observer is optional.
	Observer Observer
	// Sleep waits for d or until ctx ends, returning ctx.Err() then. Optional;
	// tests inject one to observe and skip the waits. It is used for retry
	// backoff, Retry-After and the rate limiter's delays.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock used for access-token expiry and Retry-After dates.
	// Optional (time.Now); tests inject the simulator's clock.
	Now func() time.Time
	// Logger receives a warning for every wait of LongWait or more, with its
	// cause and end time. Optional (no logging).
	Logger *zap.Logger
}

// Client talks to one tenant with one credential. It is safe for concurrent use.
type Client struct {
	base        string // scheme://host[/prefix], no trailing slash
	version     pat.APIVersion
	clientID    string
	http        *http.Client
	limiter     *rate.Limiter // nil: unlimited
	maxAttempts int
	obs         Observer
	waits       WaitObserver // nil: obs does not implement it
	log         *zap.Logger
	sleep       func(context.Context, time.Duration) error
	now         func() time.Time
	userAgent   string
	auth        *tokenCache
}

// New validates cfg and returns a Client. It sends nothing: the first access
// token is fetched by the first operation.
func New(cfg Config) (*Client, error) {
	base, err := checkBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	version, err := pat.ParseAPIVersion(string(cfg.Version))
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if strings.TrimSpace(cfg.ClientID) == "" {
		return nil, errors.New("api: client id is empty")
	}
	if cfg.ClientSecret.IsZero() {
		return nil, fmt.Errorf("api: client secret for client id %q is empty", cfg.ClientID)
	}
	attempts := cfg.MaxAttempts
	switch {
	case attempts == 0:
		attempts = DefaultMaxAttempts
	case attempts < 0:
		return nil, fmt.Errorf("api: MaxAttempts %d is negative", attempts)
	}
	limiter, err := newLimiter(cfg.RateLimit)
	if err != nil {
		return nil, err
	}
	tokenURL := base + "/oauth/token"
	if cfg.TokenURL != "" {
		if tokenURL, err = checkTokenURL(cfg.TokenURL); err != nil {
			return nil, err
		}
	}
	c := &Client{
		base:        base,
		version:     version,
		clientID:    cfg.ClientID,
		http:        redirect.NoFollow(cfg.HTTPClient, defaultHTTPTimeout),
		limiter:     limiter,
		maxAttempts: attempts,
		obs:         cfg.Observer,
		sleep:       cfg.Sleep,
		now:         cfg.Now,
		userAgent:   "patjanitor/" + buildinfo.Version,
	}
	if c.obs == nil {
		c.obs = nopObserver{}
	}
	c.waits, _ = c.obs.(WaitObserver)
	c.log = cfg.Logger
	if c.log == nil {
		c.log = zap.NewNop()
	}
	if c.sleep == nil {
		c.sleep = sleepContext
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.auth = &tokenCache{
		conf: clientcredentials.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret.Reveal(),
			TokenURL:     tokenURL,
			// SailPoint documents the credentials as form parameters; the
			// default (AuthStyleAutoDetect) would first try HTTP Basic, which is
			// undocumented, and cost a failed request on every refresh.
			AuthStyle: oauth2.AuthStyleInParams,
		},
		client:   c,
		redact:   secret.NewRedactor(cfg.ClientSecret),
		sem:      make(chan struct{}, 1),
		discover: cfg.TokenURL == "",
		secrets:  []secret.Secret{cfg.ClientSecret},
	}
	c.auth.listed.Store(secret.NewRedactor(c.auth.secrets...))
	return c, nil
}

// Version returns the API version the client speaks.
func (c *Client) Version() pat.APIVersion { return c.version }

// ClientID returns the client id the client authenticates as (the PAT id, which
// the engine must never act on).
func (c *Client) ClientID() string { return c.clientID }

// BaseURL returns the normalised tenant base URL.
func (c *Client) BaseURL() string { return c.base }

// apiVersionSegments are path endings that mean the user pasted an API base
// rather than the tenant base; the client adds the version itself.
var apiVersionSegments = []string{"/v3", "/beta", "/v2024", "/v2025", "/v2026", "/v1"}

// checkBaseURL normalises the tenant base URL and refuses what would leak the
// bearer token (plain http to a remote host) or double the version path.
func checkBaseURL(raw string) (string, error) {
	if strings.TrimSpace(raw) == "" {
		return "", errors.New("api: tenant base URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("api: tenant base URL: %w", err)
	}
	if u.Host == "" {
		return "", fmt.Errorf("api: tenant base URL %q has no host", raw)
	}
	if u.User != nil {
		return "", fmt.Errorf("api: tenant base URL must not carry credentials (user info)")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("api: tenant base URL %q must not have a query or fragment", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return "", fmt.Errorf("api: tenant base URL %q uses plain http; only https is allowed except for a loopback host (127.0.0.0/8, ::1, localhost)", raw)
		}
	default:
		return "", fmt.Errorf("api: tenant base URL %q: scheme must be https", raw)
	}
	path := strings.TrimRight(u.Path, "/")
	for _, seg := range apiVersionSegments {
		if strings.HasSuffix(path, seg) {
			return "", fmt.Errorf("api: tenant base URL %q ends in the API version %s; give the tenant base (e.g. https://acme.api.identitynow.com) and set the API version separately", raw, seg)
		}
	}
	return u.Scheme + "://" + u.Host + path, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// TokensPath is the collection of personal access tokens in API version v.
func TokensPath(v pat.APIVersion) string {
	switch v {
	case pat.V2025:
		return "/v2025/personal-access-tokens"
	case pat.V1:
		return "/personal-access-tokens/v1"
	default:
		return "/v3/personal-access-tokens"
	}
}

// TokenPath is the path of one token in API version v, its id path-escaped
// (an id is data: a "/", "?" or "%" in it stays in its segment). The client
// sends it and the engine journals it with each intent, so the journal
// names the path the tenant received.
func TokenPath(v pat.APIVersion, id string) string {
	return TokensPath(v) + "/" + url.PathEscape(id)
}

// checkPathID refuses an id that no path can name: the empty id, and "." and
// "..", which escaping leaves as they are and which URL normalisation (the
// dot segments of RFC 3986, removed by proxies and gateways) turns into the
// collection or its parent: a DELETE of the token ".." would reach /v3, and
// its 404 would read as "already gone".
func checkPathID(op, id string) error {
	switch id {
	case "":
		return fmt.Errorf("api: %s: empty id", op)
	case ".", "..":
		return fmt.Errorf("api: %s: id %q is a dot segment: its path would name the collection or its parent, not the object", op, id)
	}
	return nil
}

type nopObserver struct{}

func (nopObserver) ObserveRequest(string, int, time.Duration) {}
func (nopObserver) ObserveRetry(string, string)               {}

// sleepContext is the default Config.Sleep.
func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
