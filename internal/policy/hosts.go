package policy

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// KnownAPIHosts are the forms of SailPoint's API hosts seen on real tenants;
// every one contains ".api.".
var KnownAPIHosts = []string{
	"{tenant}.api.identitynow.com",
	"{tenant}.api.identitynow-demo.com",
	"{tenant}.api.saas.sailpointfedramp.com",
}

// CheckTokenURL checks tenant.tokenUrl: an absolute https URL (plain http only
// for a loopback host, as for the tenant URL), no credentials, no query or
// fragment. The client secret is posted to it, so it gets the same
// scrutiny as the tenant URL; its host may differ from the tenant's (that is
// what the key is for), since the operator wrote it down.
func CheckTokenURL(raw string) error {
	if strings.TrimSpace(raw) == "" {
		return errors.New("is empty (omit the key to use {url}/oauth/token)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("is not a URL")
	}
	switch {
	case u.User != nil:
		return errors.New("must not contain credentials (user:password@)")
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("must start with https://")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("has no host")
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return fmt.Errorf("plain http:// is allowed only for a loopback host (localhost, 127.0.0.1, ::1), not %s: the client secret is sent to it; use https://", u.Hostname())
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return errors.New("must not have a query or a fragment")
	}
	return nil
}

// TenantHostWarning returns a warning when the tenant URL's host does not
// look like a SailPoint API host ("" when it does, or is loopback). The
// common mistake is the UI host (acme.identitynow.com) pasted instead of the
// API host (acme.api.identitynow.com): its API paths answer with a sign-in
// page or 404, which reads as an outage. Only a warning: tenants behind a
// proxy or a new SailPoint domain are legitimate.
func TenantHostWarning(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	host := strings.ToLower(u.Hostname())
	if isLoopback(host) || strings.Contains(host, ".api.") {
		return ""
	}
	hint := ""
	for _, d := range []string{".identitynow.com", ".identitynow-demo.com", ".saas.sailpointfedramp.com"} {
		if tenant, ok := strings.CutSuffix(host, d); ok && tenant != "" && !strings.Contains(tenant, ".") {
			hint = fmt.Sprintf(" (did you mean https://%s.api%s?)", tenant, d)
		}
	}
	return fmt.Sprintf("tenant URL host %s does not contain \".api.\": SailPoint's API hosts are %s; the UI host does not serve the API%s",
		host, strings.Join(KnownAPIHosts, ", "), hint)
}
