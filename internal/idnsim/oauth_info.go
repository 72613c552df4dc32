package idnsim

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Values of Options.NonAdminListing.
const (
	NonAdminForbidden = "forbidden"
	NonAdminOwn       = "own"
)

// Values of Options.BadCredentials.
const (
	BadCredentialsInvalidClient = "invalid_client"
	BadCredentialsUnauthorized  = "unauthorized"
)

// defaultTokenPath is the documented token endpoint.
const defaultTokenPath = "/oauth/token"

// viewSettings are the options about who the caller is and how it logs in.
type viewSettings struct {
	nonAdminListing string
	badCredentials  string
	tokenPath       string
	infoEndpoint    string
}

func viewSettingsOf(o Options) viewSettings {
	return viewSettings{
		nonAdminListing: o.NonAdminListing,
		badCredentials:  o.BadCredentials,
		tokenPath:       o.TokenPath,
		infoEndpoint:    o.OAuthInfoTokenEndpoint,
	}
}

// applyView applies a scenario's view options. Callers hold s.mu.
func (v *settings) applyView(o ScenarioOptions) {
	if o.NonAdminListing != nil {
		v.view.nonAdminListing = *o.NonAdminListing
	}
	if o.BadCredentials != nil {
		v.view.badCredentials = *o.BadCredentials
	}
	if o.TokenPath != nil {
		v.view.tokenPath = *o.TokenPath
	}
}

// mergeView fills unset Options from a scenario's options (explicit options
// win, as for the others).
func (o *Options) mergeView(so ScenarioOptions) {
	if o.NonAdminListing == "" && so.NonAdminListing != nil {
		o.NonAdminListing = *so.NonAdminListing
	}
	if o.BadCredentials == "" && so.BadCredentials != nil {
		o.BadCredentials = *so.BadCredentials
	}
	if o.TokenPath == "" && so.TokenPath != nil {
		o.TokenPath = *so.TokenPath
	}
}

// viewProblem is a scenario option's problem: its key and what is wrong.
type viewProblem struct{ key, msg string }

// checkViewOptions returns the problems of the view options, in file order.
func checkViewOptions(nonAdmin, bad, tokenPath *string) []viewProblem {
	var out []viewProblem
	if nonAdmin != nil && *nonAdmin != NonAdminForbidden && *nonAdmin != NonAdminOwn {
		out = append(out, viewProblem{"nonAdminListing", fmt.Sprintf("%q: want %s or %s", *nonAdmin, NonAdminForbidden, NonAdminOwn)})
	}
	if bad != nil && *bad != BadCredentialsInvalidClient && *bad != BadCredentialsUnauthorized {
		out = append(out, viewProblem{"badCredentials", fmt.Sprintf("%q: want %s or %s", *bad, BadCredentialsInvalidClient, BadCredentialsUnauthorized)})
	}
	if tokenPath != nil && (!strings.HasPrefix(*tokenPath, "/") || strings.HasPrefix(*tokenPath, ControlPrefix) || strings.ContainsAny(*tokenPath, "?#")) {
		out = append(out, viewProblem{"tokenPath", fmt.Sprintf("%q: want an absolute path outside %s", *tokenPath, ControlPrefix)})
	}
	return out
}

// nonAdminSeesOwn reports whether a non-admin listing of every owner answers
// with the caller's own tokens instead of 403.
func (s *Sim) nonAdminSeesOwn() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.set.view.nonAdminListing == NonAdminOwn
}

func (s *Sim) tokenPath() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if p := s.set.view.tokenPath; p != "" {
		return p
	}
	return defaultTokenPath
}

// resolveView routes the paths that depend on settings (the token endpoint's
// path, /oauth/info), compared decoded, and hands the rest to resolve. path
// is the escaped path, as resolve reads it.
func (s *Sim) resolveView(method, path string) route {
	dec, err := url.PathUnescape(path)
	if err != nil {
		return route{}
	}
	if dec == "/oauth/info" {
		if method != http.MethodGet {
			return route{allow: http.MethodGet}
		}
		return route{op: OpOAuthInfo}
	}
	if tp := s.tokenPath(); tp != defaultTokenPath {
		switch dec {
		case defaultTokenPath:
			return route{} // 404, as on a tenant whose endpoint is elsewhere
		case tp:
			path = defaultTokenPath
		}
	}
	return resolve(method, path)
}

// writeBadCredentials answers a wrong client id or secret. Callers hold s.mu.
func (s *Sim) writeBadCredentials(w http.ResponseWriter) {
	if s.set.view.badCredentials == BadCredentialsUnauthorized {
		writeJSON(w, http.StatusUnauthorized, oauthError{"unauthorized", "Full authentication is required to access this resource"})
		return
	}
	writeJSON(w, http.StatusUnauthorized, oauthError{"invalid_client", "Bad client credentials"})
}

// oauthInfo is the GET /oauth/info answer, with the documented fields.
type oauthInfo struct {
	TenantID          string `json:"tenantId"`
	TenantName        string `json:"tenantName"`
	AuthorizeEndpoint string `json:"authorizeEndpoint"`
	TokenEndpoint     string `json:"tokenEndpoint"`
	CloudDomainURL    string `json:"cloudDomainUrl"`
	LogoutURL         string `json:"logoutUrl"`
	Pod               string `json:"pod"`
}

// serveOAuthInfo is GET /oauth/info: public (no authentication), the
// tenant's OAuth endpoints on the host the request came to.
func (s *Sim) serveOAuthInfo(w http.ResponseWriter, r *http.Request) {
	base := "http://" + r.Host
	s.mu.RLock()
	endpoint := s.set.view.infoEndpoint
	s.mu.RUnlock()
	if endpoint == "" {
		endpoint = base + s.tokenPath()
	}
	writeJSON(w, http.StatusOK, oauthInfo{
		TenantID: s.tenantID, TenantName: "sim", AuthorizeEndpoint: base + "/oauth/authorize",
		TokenEndpoint: endpoint, CloudDomainURL: base, LogoutURL: base + "/logout", Pod: "sim",
	})
}

func newTokenLimiter(o Options) *limiter {
	if o.TokenRateLimit <= 0 {
		return nil
	}
	return newLimiter(o.TokenRateLimit, o.RateWindow)
}

// tokenLimited answers 429 with Retry-After when the token endpoint's budget
// for this client id is spent (the client must honour it), and says so.
func (s *Sim) tokenLimited(w http.ResponseWriter, clientID string, at time.Time) bool {
	if s.tokenLimiter == nil {
		return false
	}
	wait, ok := s.tokenLimiter.allow(clientID, at)
	if !ok {
		writeRateLimited(w, wait)
	}
	return !ok
}
