package policy

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// defaulter is the second step of Parse, between the strict decode and the
// validation: it fills in what the file left out and resolves the relative
// file paths against the config's directory. It reports nothing.
//
// Two rules keep the validation's messages what the file says:
//   - A default fills a key only when the file did not write it (the decoder
//     records which keys were written): an explicit 0 or "" stays, for the
//     validation to refuse or accept as written.
//   - A written value is normalised (the tenant URL's final slash) only when
//     it is valid; an invalid one is left as written, so that the error
//     quotes it. Likewise a blank path is not resolved (it would stop being
//     blank and escape "must not be empty").
type defaulter struct {
	d   *decoder
	dir string
}

func (c *Config) applyDefaults(d *decoder, dir string) {
	f := defaulter{d: d, dir: dir}
	f.tenant(&c.Tenant)
	if !d.has("runTimeout") {
		c.RunTimeout = DefaultRunTimeout
	}
	if !d.has("schedule") {
		c.Schedule = DefaultSchedule
	}
	if !d.has("timezone") {
		c.Timezone = DefaultTimezone
	}
	f.limits(&c.Limits)
	f.notify(&c.Notify)
	if a := c.Approvals; a != nil {
		f.file(&a.AllowedSignersFile)
		f.file(&a.RevokedKeysFile)
		if !d.has("approvals.required") {
			a.Required = DefaultApprovalsRequired
		}
		if !d.has("approvals.for") {
			a.For = []Action{ActionDelete, ActionExpire, ActionPatch, ActionDisable}
		}
	}
	for i, p := range c.Policies {
		if p == nil {
			continue
		}
		at := fmt.Sprintf("policies[%d]", i)
		if !d.has(at + ".mode") {
			p.Mode = ModeReport
		}
		if !d.has(at + ".schedule") {
			p.Schedule = c.Schedule
		}
		// personalAccessTokens is the default, "" after Load (see Resource).
		if p.Resource == ResourcePATs {
			p.Resource = ""
		}
	}
}

// file resolves a path in the config against the config's directory.
func (f defaulter) file(p *string) {
	if strings.TrimSpace(*p) != "" && !filepath.IsAbs(*p) {
		*p = filepath.Join(f.dir, *p)
	}
}

func (f defaulter) tenant(t *Tenant) {
	has := f.d.has
	if t.URL != "" && CheckTenantURL(t.URL) == nil {
		t.URL = strings.TrimSuffix(t.URL, "/")
	}
	if !has("tenant.apiVersion") {
		t.APIVersion = pat.V3
	}
	// expire goes through the admin bulk update, which only v1 has.
	if !has("tenant.bulkApiVersion") {
		t.BulkAPIVersion = pat.V1
	}
	f.file(&t.ClientSecretFile)
	if !has("tenant.credentialExpiryWarning") {
		t.CredentialExpiryWarning = DefaultCredentialExpiryWarning
	}
	if !has("tenant.rateLimit.requests") {
		t.RateLimit.Requests = DefaultRateLimitRequests
	}
	if !has("tenant.rateLimit.per") {
		t.RateLimit.Per = DefaultRateLimitPer
	}
	if !has("tenant.maxListingBytes") {
		t.MaxListingBytes = DefaultMaxListingBytes
	}
	if !has("tenant.maxClockSkew") {
		t.MaxClockSkew = DefaultMaxClockSkew
	}
}

func (f defaulter) limits(l *Limits) {
	if !f.d.has("limits.maxActionsPerRun") {
		l.MaxActionsPerRun = DefaultMaxActionsPerRun
	}
	if !f.d.has("limits.maxActionsPerOwner") {
		l.MaxActionsPerOwner = DefaultMaxActionsPerOwner
	}
	if !f.d.has("limits.maxActionsPercent") {
		l.MaxActionsPercent = DefaultMaxActionsPercent
	}
}

func (f defaulter) notify(n *Notify) {
	for i := range n.Receivers {
		r := &n.Receivers[i]
		if r.Slack != nil {
			f.file(&r.Slack.WebhookURLFile)
		}
		if r.Webhook != nil {
			f.file(&r.Webhook.URLFile)
			f.file(&r.Webhook.HMACSecretFile)
		}
		if e := r.Email; e != nil {
			f.file(&e.UsernameFile)
			f.file(&e.PasswordFile)
			f.file(&e.CAFile)
			if e.RequireTLS == nil {
				t := true
				e.RequireTLS = &t
			}
		}
	}
	for _, tf := range []*TemplateFiles{&n.Templates.Summary, &n.Templates.Digest, &n.Templates.Notice, &n.Templates.Failure, &n.Templates.Test} {
		for _, p := range []*string{&tf.Subject, &tf.Text, &tf.HTML, &tf.Slack} {
			f.file(p)
		}
	}
}
