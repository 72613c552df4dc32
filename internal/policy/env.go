package policy

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/patjanitor/patjanitor/internal/secret"
)

// The environment variables that override the config's tenant settings. The
// secret has no config key at all, only clientSecretFile.
const (
	EnvTenantURL    = "PATJANITOR_TENANT_URL"
	EnvClientID     = "PATJANITOR_CLIENT_ID"
	EnvClientSecret = "PATJANITOR_CLIENT_SECRET"
)

// ApplyEnv applies the environment's overrides, read through getenv (pass
// os.Getenv; tests pass a map's lookup): PATJANITOR_TENANT_URL replaces
// tenant.url (checked like the file's), PATJANITOR_CLIENT_ID replaces
// tenant.clientId, and PATJANITOR_CLIENT_SECRET is kept, redacted, for
// ClientSecret. Unset or empty variables change nothing. Call it once, right
// after Load and before the config is shared.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	var errs []error
	if u := strings.TrimSpace(getenv(EnvTenantURL)); u != "" {
		if err := CheckTenantURL(u); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvTenantURL, err))
		} else {
			c.Tenant.URL = strings.TrimSuffix(u, "/")
		}
	}
	if id := strings.TrimSpace(getenv(EnvClientID)); id != "" {
		c.Tenant.ClientID = id
	}
	if s := strings.TrimSpace(getenv(EnvClientSecret)); s != "" {
		c.envSecret = secret.New(s)
	}
	return errors.Join(errs...)
}

// ClientSecretSource says where ClientSecret will read the secret from, for
// summaries: the environment variable's name, the file's path, or "" when
// neither is set. It reads nothing.
func (c *Config) ClientSecretSource() string {
	switch {
	case !c.envSecret.IsZero():
		return EnvClientSecret
	case c.Tenant.ClientSecretFile != "":
		return c.Tenant.ClientSecretFile
	}
	return ""
}

// ClientSecret returns the client secret: PATJANITOR_CLIENT_SECRET as
// ApplyEnv found it, else the content of tenant.clientSecretFile (trimmed).
// The secret never appears in the parsed config, in errors or in logs.
func (c *Config) ClientSecret() (secret.Secret, error) {
	if !c.envSecret.IsZero() {
		return c.envSecret, nil
	}
	if c.Tenant.ClientSecretFile != "" {
		s, err := secret.FromFile(c.Tenant.ClientSecretFile)
		if err != nil {
			return secret.Secret{}, fmt.Errorf("tenant.clientSecretFile: %w", err)
		}
		return s, nil
	}
	return secret.Secret{}, fmt.Errorf("no client secret: set %s or tenant.clientSecretFile in %s", EnvClientSecret, c.File)
}

// CheckTenantURL checks a tenant base URL: https (plain http only for a
// loopback host: the simulator and tests), a host, no credentials, no path
// (the API version is tenant.apiVersion), no query. Errors never repeat the
// URL, which could carry a password.
func CheckTenantURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("is not a URL")
	}
	switch {
	case u.User != nil:
		return errors.New("must not contain credentials (user:password@); the secret goes in tenant.clientSecretFile or " + EnvClientSecret)
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("must start with https://")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("has no host")
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return fmt.Errorf("plain http:// is allowed only for a loopback host (localhost, 127.0.0.1, ::1), not %s; use https://", u.Hostname())
	case u.Path != "" && u.Path != "/":
		return fmt.Errorf("must be the tenant's base URL without a path (remove %q; the API version is tenant.apiVersion)", u.Path)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return errors.New("must not have a query or a fragment")
	}
	return nil
}
