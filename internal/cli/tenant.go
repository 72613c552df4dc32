package cli

import (
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// The environment variables that override the config's tenant settings
// (defined by the policy package, which applies them in ApplyEnv).
const (
	EnvTenantURL    = policy.EnvTenantURL
	EnvClientID     = policy.EnvClientID
	EnvClientSecret = policy.EnvClientSecret
)

// tenantConn is what a command that talks to the tenant needs: the loaded
// config (with the environment's overrides applied) and a client for it.
type tenantConn struct {
	cfg    *policy.Config
	client *api.Client
}

// loadConfig loads --config strictly and applies the environment overrides.
func (g *globals) loadConfig() (*policy.Config, error) {
	cfg, err := policy.Load(g.config)
	if err != nil {
		return nil, err
	}
	if err := cfg.ApplyEnv(os.Getenv); err != nil {
		return nil, err
	}
	return cfg, nil
}

// connect builds the API client from the config: URL, API version, client id
// and rate limit from the config (after overrides), the secret from
// PATJANITOR_CLIENT_SECRET or tenant.clientSecretFile. obs may be nil; log
// (nil: none) gets the client's warnings about long waits.
func connect(cfg *policy.Config, obs api.Observer, log *zap.Logger) (*tenantConn, error) {
	sec, err := cfg.ClientSecret() // PATJANITOR_CLIENT_SECRET wins over tenant.clientSecretFile
	if err != nil {
		return nil, err
	}
	return connectWith(cfg, sec, obs, log)
}

// connectWith builds the client with a secret the caller already has (the
// demo's simulated tenant).
func connectWith(cfg *policy.Config, sec secret.Secret, obs api.Observer, log *zap.Logger) (*tenantConn, error) {
	if cfg.Tenant.URL == "" {
		return nil, fmt.Errorf("no tenant URL: set tenant.url in %s or %s", cfg.File, policy.EnvTenantURL)
	}
	if cfg.Tenant.ClientID == "" {
		return nil, fmt.Errorf("no client id: set tenant.clientId in %s or %s", cfg.File, policy.EnvClientID)
	}
	if log == nil {
		log = zap.NewNop()
	}
	client, err := api.New(api.Config{
		BaseURL:      cfg.Tenant.URL,
		TokenURL:     cfg.Tenant.TokenURL,
		Version:      cfg.Tenant.APIVersion,
		ClientID:     cfg.Tenant.ClientID,
		ClientSecret: sec,
		RateLimit:    api.RateLimit{Requests: cfg.Tenant.RateLimit.Requests, Per: cfg.Tenant.RateLimit.Per},
		Observer:     obs,
		Logger:       log.Named("api"),
	})
	if err != nil {
		return nil, err
	}
	return &tenantConn{cfg: cfg, client: client}, nil
}
