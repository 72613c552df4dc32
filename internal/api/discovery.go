package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/patjanitor/patjanitor/internal/redirect"
)

// oauthInfoPath is where a tenant publishes its OAuth endpoints (the answer has
// tenantId, tenantName, authorizeEndpoint, tokenEndpoint, cloudDomainUrl,
// logoutUrl, pod).
const oauthInfoPath = "/oauth/info"

// maxOAuthInfoBody bounds the /oauth/info answer (a few hundred bytes).
const maxOAuthInfoBody = 64 << 10

// checkTokenURL checks an explicitly configured token endpoint: https, or
// http for a loopback host only (the client secret is posted to it); no
// credentials, query or fragment. Any host: the operator chose it.
func checkTokenURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("api: token URL: %w", err)
	}
	if err := checkEndpointURL(u); err != nil {
		return "", fmt.Errorf("api: token URL %q: %w", raw, err)
	}
	return u.String(), nil
}

func checkEndpointURL(u *url.URL) error {
	switch {
	case u.Host == "" || u.Hostname() == "":
		return errors.New("has no host")
	case u.User != nil:
		return errors.New("must not carry credentials (user info)")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return errors.New("must not have a query or fragment")
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	case u.Scheme == "http":
		return errors.New("uses plain http to a host that is not loopback: the client secret would travel in clear")
	default:
		return errors.New("scheme must be https")
	}
	return nil
}

// discoverTokenURL asks {tenant}/oauth/info for the tokenEndpoint, after the
// configured {tenant}/oauth/token answered 404 (vanity-domain tenants).
//
// The answer decides where the client secret is sent next, so it is judged
// as an attacker would use it: a redirect is not followed (a 3xx is an
// error), the endpoint must be https (http only when the tenant itself is
// loopback, for the simulator), and its host must be the tenant's host or
// lie under the tenant's registrable domain (public suffix list + 1 label:
// acme.api.identitynow.com may name login.identitynow.com, never
// evil.example, and acme.co.uk never other.co.uk). An endpoint elsewhere is
// refused with an error that says to set tenant.tokenUrl, which an operator
// can do after checking it; nothing is sent to it.
func (tc *tokenCache) discoverTokenURL(ctx context.Context) (string, error) {
	c := tc.client
	e := &Error{Operation: OpOAuthInfo, Method: http.MethodGet, Path: oauthInfoPath}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+oauthInfoPath, nil)
	if err != nil {
		e.Err = err
		return "", e
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	start := time.Now()
	resp, err := c.http.Do(req) // never follows a redirect (redirect.NoFollow)
	if err != nil {
		c.obs.ObserveRequest(OpOAuthInfo, 0, time.Since(start))
		e.Err = err
		return "", fmt.Errorf("the token endpoint %s answered 404, and looking for another one failed: %w", tc.conf.TokenURL, e)
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxOAuthInfoBody+1))
	c.obs.ObserveRequest(OpOAuthInfo, resp.StatusCode, time.Since(start))
	e.StatusCode = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		if redirect.Is(resp.StatusCode) {
			// As for every other request: the host only, and the body,
			// which typically repeats the whole Location, not quoted.
			e.Location = redirect.Host(resp)
		} else {
			e.fillFromBody(body, tc.redact)
		}
		return "", fmt.Errorf("the token endpoint %s answered 404, and %s%s did not name another one (set tenant.tokenUrl): %w", tc.conf.TokenURL, c.base, oauthInfoPath, e)
	}
	if rerr != nil || len(body) > maxOAuthInfoBody {
		e.malformed, e.Err = true, errors.New("body unreadable or larger than 64 KiB")
		return "", e
	}
	var info struct {
		TokenEndpoint string `json:"tokenEndpoint"`
	}
	if err := json.Unmarshal(body, &info); err != nil || strings.TrimSpace(info.TokenEndpoint) == "" {
		e.malformed, e.Err = true, errors.New("no tokenEndpoint in the answer")
		return "", e
	}
	found, err := tc.acceptDiscovered(info.TokenEndpoint)
	if err != nil {
		return "", fmt.Errorf("api: %s%s: %w (set tenant.tokenUrl if that endpoint is right)", c.base, oauthInfoPath, err)
	}
	return found, nil
}

// acceptDiscovered applies the host rules of discoverTokenURL.
func (tc *tokenCache) acceptDiscovered(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("tokenEndpoint %q is not a URL", clip(raw))
	}
	if err := checkEndpointURL(u); err != nil {
		return "", fmt.Errorf("tokenEndpoint %q %w", clip(raw), err)
	}
	tenant, _ := url.Parse(tc.client.base)
	th, eh := strings.ToLower(tenant.Hostname()), strings.ToLower(u.Hostname())
	if u.Scheme == "http" && tenant.Scheme != "http" {
		return "", fmt.Errorf("tokenEndpoint %q uses plain http for an https tenant", clip(raw))
	}
	if eh == th {
		return u.String(), nil
	}
	if isLoopback(th) || net.ParseIP(eh) != nil || net.ParseIP(th) != nil {
		return "", fmt.Errorf("tokenEndpoint %q is on host %s, not the tenant's host %s: the client secret is not sent there", clip(raw), eh, th)
	}
	td, terr := publicsuffix.EffectiveTLDPlusOne(th)
	ed, eerr := publicsuffix.EffectiveTLDPlusOne(eh)
	if terr != nil || eerr != nil || td != ed {
		return "", fmt.Errorf("tokenEndpoint %q is on host %s, outside the tenant's domain %s: the client secret is not sent there", clip(raw), eh, td)
	}
	return u.String(), nil
}

// tokenURLPath is the token endpoint's path for errors: /oauth/token unless
// tenant.tokenUrl or discovery chose another; a host other than the tenant's
// is named too, so that an error says where the credentials went.
func (tc *tokenCache) tokenURLPath() string {
	u, err := url.Parse(tc.conf.TokenURL)
	if err != nil {
		return "/oauth/token"
	}
	if b, berr := url.Parse(tc.client.base); berr == nil && !strings.EqualFold(b.Host, u.Host) {
		return u.Scheme + "://" + u.Host + u.Path
	}
	return u.Path
}
