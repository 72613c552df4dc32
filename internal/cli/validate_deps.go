package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/patjanitor/patjanitor/internal/notify"
	"github.com/patjanitor/patjanitor/internal/policy"
)

// checkDependencies loads, offline, everything besides the config file that
// serve, plan, apply and notify test load before they contact the tenant,
// through the same functions, so that validate fails where they would: the
// client secret, the notify receivers (their secret files, URLs, CA files)
// and templates, and the state directory. It reads secrets but never
// returns one: the errors name files and keys only. It creates nothing.
func checkDependencies(cfg *policy.Config, stateDir string) []error {
	var errs []error
	// connect's first step: PATJANITOR_CLIENT_SECRET, else the file.
	if _, err := cfg.ClientSecret(); err != nil {
		errs = append(errs, err)
	}
	if cfg.Tenant.URL == "" {
		errs = append(errs, fmt.Errorf("no tenant URL: set tenant.url in %s or %s", cfg.File, policy.EnvTenantURL))
	}
	if cfg.Tenant.ClientID == "" {
		errs = append(errs, fmt.Errorf("no client id: set tenant.clientId in %s or %s", cfg.File, policy.EnvClientID))
	}
	ncfg := notifyConfig(cfg.Notify)
	// The renderer is what plan --notifications-dir and every notifier
	// use: it reads and parses the template files.
	if _, err := notify.NewRenderer(notify.RenderOptions{Templates: ncfg.Templates, Location: cfg.Location}); err != nil {
		errs = appendEach(errs, "notify templates", err)
	} else if len(cfg.Notify.Receivers) > 0 {
		// buildNotifiers, as serve, apply and notify test call it: the
		// receivers' secrets and CA files. Nothing is sent.
		if _, err := notify.Build(ncfg, notify.Deps{}); err != nil {
			errs = appendEach(errs, "notify", err)
		}
	}
	// The approvals files, as apply and serve load them: a broken allowed
	// signers file fails here, not at the first apply.
	if _, err := loadApprovals(cfg); err != nil {
		errs = append(errs, err)
	}
	if err := checkStateDir(stateDir); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// appendEach appends err to errs with the prefix, each error it joins
// (errors.Join: notify.Build names every receiver's problem) on its own, so
// that validate prints, counts and reports in -o json one problem each.
func appendEach(errs []error, prefix string, err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			errs = appendEach(errs, prefix, e)
		}
		return errs
	}
	return append(errs, fmt.Errorf("%s: %w", prefix, err))
}

// checkStateDir checks that the state directory (journal, marks, snoozes,
// outbox) is a directory this process can write, or, when it does not exist
// yet, that its nearest existing parent is (apply and serve create it). It
// creates nothing: validate is read-only.
func checkStateDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return fmt.Errorf("--state-dir %s is not a directory", dir)
	case err == nil:
		if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
			return fmt.Errorf("--state-dir %s is not writable by this user (uid %d): %w", dir, os.Getuid(), err)
		}
		return nil
	case errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("--state-dir %s cannot be created: a parent is not a directory", dir)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("--state-dir: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("--state-dir: %w", err)
	}
	for parent := filepath.Dir(abs); ; parent = filepath.Dir(parent) {
		pfi, err := os.Stat(parent)
		if err == nil {
			if !pfi.IsDir() {
				return fmt.Errorf("--state-dir %s cannot be created: %s is not a directory", dir, parent)
			}
			if err := unix.Access(parent, unix.W_OK|unix.X_OK); err != nil {
				return fmt.Errorf("--state-dir %s does not exist and cannot be created: %s is not writable by this user (uid %d)", dir, parent, os.Getuid())
			}
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) || parent == filepath.Dir(parent) {
			return fmt.Errorf("--state-dir %s: %w", dir, err)
		}
	}
}

// validateJSON is validate -o json: whether the config is valid, every
// problem, and the policies.
type validateJSON struct {
	File     string            `json:"file"`
	Valid    bool              `json:"valid"`
	Digest   string            `json:"digest,omitempty"`
	Problems []validateProblem `json:"problems"`
	Policies []validatePolicy  `json:"policies"`
}

type validateProblem struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Policy  string `json:"policy,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

type validatePolicy struct {
	Name     string `json:"name"`
	Mode     string `json:"mode"`
	Action   string `json:"action"`
	Schedule string `json:"schedule"`
	Match    string `json:"match"`
}

func writeValidateJSON(w io.Writer, file string, cfg *policy.Config, problems policy.Errors, deps []error) error {
	v := validateJSON{File: file, Problems: []validateProblem{}, Policies: []validatePolicy{}}
	for _, p := range problems {
		v.Problems = append(v.Problems, validateProblem{File: p.File, Line: p.Line, Policy: p.Policy, Field: p.Field, Message: p.Msg})
	}
	for _, e := range deps {
		v.Problems = append(v.Problems, validateProblem{Message: e.Error()})
	}
	if cfg != nil {
		v.Digest = cfg.Digest
		for _, p := range cfg.Policies {
			v.Policies = append(v.Policies, validatePolicy{Name: p.Name, Mode: string(p.Mode), Action: string(p.Action), Schedule: p.Schedule, Match: p.Match.String()})
		}
	}
	v.Valid = len(v.Problems) == 0
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
