package policy

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// configInputs are the configs the tests know, by name: testdata's valid and
// invalid files, the shipped ones and FuzzLoad's corpus.
func configInputs(t testing.TB) map[string][]byte {
	t.Helper()
	in := map[string][]byte{}
	for _, pattern := range []string{"testdata/valid/*.yaml", "testdata/invalid/*.yaml", "../../policies.yaml", "../../examples/*.yaml"} {
		m, _ := filepath.Glob(pattern)
		for _, f := range m {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			in[f] = b
		}
	}
	// Flow mappings put many keys, and many problems, on one line.
	for i, s := range []string{
		"tenant: {url: 'https://x.example.com/v3/', apiVersion: v9, bulkApiVersion: v2, clientId: '', clientSecretFile: ' ', rateLimit: {requests: 0, per: 0s}, maxListingBytes: 1KiB, maxClockSkew: 1h}\nrunTimeout: 0s\nschedule: ' '\ntimezone: Local\nlimits: {maxActionsPerRun: -1, maxActionsPercent: .nan, maxActionsPerOwner: -2}\npolicies: [{name: A, mode: x, schedule: '@every 1s', match: {unusedFor: 0s, neverUsed: false, neverExpires: false, ownerMissing: false, lastUsedOlderThan: 1d, scopes: {}, ownerStates: [X]}, action: patch, patch: {setScopes: [], addScopes: [a], removeScopes: [a]}, grace: 1d, expireIn: 1d}]",
		"tenant: {url: 'https://x.example.com//', apiVersion: v1, bulkApiVersion: v1, clientId: abc, clientSecretFile: s}\nnotify: {receivers: [{name: e, email: {smarthost: 'mail.example.com:25', from: a@b.c, requireTLS: false, usernameFile: u, caFile: ' '}}, {name: e, slack: {webhookUrlFile: f, webhookUrlEnv: E}}], owners: zz, apiClients: [q, ''], templates: {summary: {subject: ' ', text: t.txt}}}\napprovals: {allowedSignersFile: '', revokedKeysFile: r, required: 0, for: [report]}\npolicies: [{name: a, resource: apiClients, match: {neverUsed: true, lastUsedOlderThan: 1d, grantTypes: {any: [x]}, enabled: true, type: q, ownerIds: [x]}, action: delete, grace: 1d, patch: {}}, {name: a, resource: personalAccessTokens, disabledFor: 1d, match: {unusedFor: 1d}, action: disable}, {name: b, resource: foo, match: {neverExpires: true, expiresWithin: 1d}, action: expire}]",
		"tenant: {url: 'https://x.example.com/', apiVersion: v2025, clientSecretFile: /abs/s}\napprovals: {allowedSignersFile: a, revokedKeysFile: r}\nowners: {lookup: true}\nnotify: {receivers: [{name: e, email: {smarthost: 'localhost:25', from: a@b.c, requireTLS: false, usernameEnv: U, passwordFile: p}}, {name: w, webhook: {urlFile: u, hmacSecretFile: h}}], owners: e, apiClients: [e]}\ntimezone: Europe/Berlin\npolicies: [{name: a, resource: personalAccessTokens, mode: enforce, match: {neverExpires: true, ownerStates: [ACTIVE]}, action: expire, expireIn: 1d, grace: 2d}, {name: c, resource: apiClients, schedule: '@hourly', match: {unusedFor: 1d}, action: disable, grace: 1d}]",
	} {
		in["flow-"+strconv.Itoa(i)] = []byte(s)
	}
	corpus, _ := filepath.Glob("testdata/fuzz/FuzzLoad/*")
	for _, f := range corpus {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// The go test fuzz v1 format with one []byte argument.
		s := strings.TrimSpace(strings.TrimPrefix(string(b), "go test fuzz v1\n"))
		u, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(s, "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		in[f] = []byte(u)
	}
	return in
}

// validateOnly runs the validation step alone on a decoded and defaulted
// config and returns what it reported (errors, then warnings).
func validateOnly(c *Config, d *decoder) string {
	errs, warns := &errorList{}, &errorList{}
	v := &validator{c: c, d: d, errs: errs, warns: warns, minEvery: MinScheduleInterval}
	v.validate()
	name := func(i int) string {
		if i < len(c.Policies) && c.Policies[i] != nil {
			return c.Policies[i].Name
		}
		return ""
	}
	return errs.render("x.yaml", name).Error() + "\n--\n" + warns.render("x.yaml", name).Error()
}

// checkValidateReadOnly decodes and defaults data, validates it twice and
// fails if validating changed the config (compared with a twin decoded and
// defaulted from the same bytes) or reported differently the second time.
// It reports whether data got as far as the validation.
func checkValidateReadOnly(t *testing.T, data []byte) bool {
	t.Helper()
	c, d, _, fatal := decodeFile("x.yaml", data)
	if fatal != nil || d.steps >= maxSteps {
		return false
	}
	twin, dt, _, _ := decodeFile("x.yaml", data)
	c.applyDefaults(d, "conf")
	twin.applyDefaults(dt, "conf")
	first := validateOnly(c, d)
	second := validateOnly(c, d)
	// NaN (maxActionsPercent: .nan) is never DeepEqual to itself.
	if math.IsNaN(c.Limits.MaxActionsPercent) && math.IsNaN(twin.Limits.MaxActionsPercent) {
		c.Limits.MaxActionsPercent, twin.Limits.MaxActionsPercent = 0, 0
	}
	if !reflect.DeepEqual(c, twin) {
		t.Fatalf("validate changed the config:\n got: %+v\nwant: %+v", *c, *twin)
	}
	if second != first {
		t.Fatalf("validating again reported differently:\nfirst:\n%s\nsecond:\n%s", first, second)
	}
	return true
}

// TestValidateDoesNotMutate: the validation step only reads. Every config
// the tests know, valid or not, is the same after validating it as the
// defaulted config was before, and validating it again reports exactly the
// same problems.
func TestValidateDoesNotMutate(t *testing.T) {
	checked, valid := 0, 0
	defer func() { t.Logf("validated %d configs, %d valid", checked, valid) }()
	for name, data := range configInputs(t) {
		t.Run(name, func(t *testing.T) {
			if !checkValidateReadOnly(t, data) {
				return
			}
			checked++
			if _, err := Parse("x.yaml", data); err == nil {
				valid++
			}
		})
	}
	// The corpus must exercise the validation, on valid configs and on
	// invalid ones (a test that validated nothing would pass).
	if checked < 40 || valid < 5 || checked-valid < 30 {
		t.Fatalf("validated %d configs (%d valid): too few", checked, valid)
	}
}

// TestDefaultsFillOnlyWhatIsMissing: the defaults step fills the keys the
// file left out, keeps what it wrote (an explicit 0 included), and resolves
// relative paths against the config's directory; the validation then judges
// what the file said.
func TestDefaultsFillOnlyWhatIsMissing(t *testing.T) {
	data := []byte(`tenant:
  url: https://acme.api.identitynow.com/
  clientSecretFile: secret
  rateLimit: {per: 0s}
limits: {maxActionsPerRun: 0}
approvals: {allowedSignersFile: /abs/signers, revokedKeysFile: revoked}
policies:
  - name: a
    resource: personalAccessTokens
    match: {unusedFor: 90d}
    action: report
`)
	c, d, errs, fatal := decodeFile("/etc/pj/policies.yaml", data)
	if fatal != nil || len(errs.errs) > 0 {
		t.Fatalf("decode: %v %v", fatal, errs.errs)
	}
	c.applyDefaults(d, "/etc/pj")
	tn, a, p := c.Tenant, c.Approvals, c.Policies[0]
	for _, f := range []struct {
		what      string
		got, want any
	}{
		{"tenant.url", tn.URL, "https://acme.api.identitynow.com"},
		{"tenant.apiVersion", string(tn.APIVersion), "v3"},
		{"tenant.bulkApiVersion", string(tn.BulkAPIVersion), "v1"},
		{"tenant.clientSecretFile", tn.ClientSecretFile, "/etc/pj/secret"},
		{"tenant.rateLimit.requests", tn.RateLimit.Requests, DefaultRateLimitRequests},
		{"tenant.rateLimit.per (written 0s)", tn.RateLimit.Per.String(), "0s"},
		{"limits.maxActionsPerRun (written 0)", c.Limits.MaxActionsPerRun, 0},
		{"limits.maxActionsPerOwner", c.Limits.MaxActionsPerOwner, DefaultMaxActionsPerOwner},
		{"schedule", c.Schedule, DefaultSchedule},
		{"approvals.allowedSignersFile", a.AllowedSignersFile, "/abs/signers"},
		{"approvals.revokedKeysFile", a.RevokedKeysFile, "/etc/pj/revoked"},
		{"approvals.required", a.Required, DefaultApprovalsRequired},
		{"policies[0].mode", string(p.Mode), "report"},
		{"policies[0].schedule", p.Schedule, DefaultSchedule},
		{"policies[0].resource", string(p.Resource), ""},
	} {
		if f.got != f.want {
			t.Errorf("%s = %v, want %v", f.what, f.got, f.want)
		}
	}
	// The written 0s is the validation's to refuse, at its line.
	if got := validateOnly(c, d); !strings.HasPrefix(got, "x.yaml:4: tenant.rateLimit.per: must be greater than 0\n--") {
		t.Errorf("validate reported:\n%s", got)
	}
}

// FuzzValidateReadOnly: whatever the file, validating its defaulted config
// changes nothing and reports the same twice.
func FuzzValidateReadOnly(f *testing.F) {
	for _, data := range configInputs(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkValidateReadOnly(t, data)
	})
}
