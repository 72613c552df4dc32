package idnsim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// A scenario file describes an exact tenant in YAML. Decoding is strict:
// unknown keys, duplicate keys and wrong types are errors, and every error
// names the file and line. All problems are reported together.
//
//	now: 2026-11-26T03:00:00Z      # optional: the time the scenario is written for.
//	                               # Relative times count from it (else from the
//	                               # simulator clock at load), and `patjanitor sim
//	                               # --scenario` moves the file forward to now.
//	options:                       # optional; each key overrides the simulator's
//	  rateLimit: 100               # requests per client id and API version per window (-1 off)
//	  rateWindow: 10s
//	  accessTokenTTL: 1h           # 0 = the PAT's accessTokenValiditySeconds
//	  patchOthers: false           # true: PATCH of other owners' tokens succeeds (NOT a real tenant)
//	  pageCap: 0
//	  paging: false                # true: the PAT list honours limit (max 250) and offset
//	  nonAdminListing: forbidden   # forbidden (403) | own: what a caller without the
//	                               # all-tokens right gets from a listing of every owner
//	  badCredentials: invalid_client  # invalid_client | unauthorized: the 401 body for a
//	                               # wrong client id or secret
//	  tokenPath: /oauth/token      # another path makes /oauth/token answer 404 (a vanity
//	                               # tenant); /oauth/info names the real one
//	admin: 1e4f0c…                 # client id of the PAT the client logs in with (one of
//	                               # tokens); omitted = a generated org admin and PAT
//	identities:
//	  - id: 2c9180…                # required, unique
//	    name: Alison Ferguson      # required
//	    alias: alison.ferguson
//	    email: alison@example.com  # omitted = null
//	    status: Active             # omitted = null
//	    identityState: ACTIVE      # ACTIVE | INACTIVE_SHORT_TERM | INACTIVE_LONG_TERM; omitted = null
//	    manager: 2c9180…           # an identity id
//	    orgAdmin: true             # all-personal-access-tokens rights
//	    seeManaged: true           # idn:managed-personal-access-tokens:read
//	    attributes: [{key: department, name: Department, value: IT}]
//	tokens:
//	  - id: 7c1e…                  # optional; default derived from owner and name
//	    name: ci-deploy            # required, unique per owner
//	    owner: 2c9180…             # required; an id that is no identity = a deleted owner
//	    ownerName: Gone User       # optional; default the identity's name
//	    secret: …                  # optional; default derived from the id (sha256)
//	    scope: [idn:sources:read]  # a list, or null (legacy: means sp:scopes:all);
//	                               # omitted = [sp:scopes:all]
//	    created: 2026-01-02T10:00:00.000Z   # or relative: -400d, -36h, +2w, now
//	    lastUsed: -95d             # omitted or null = never used
//	    expirationDate: +30d       # omitted or null = never expires
//	    userAwareTokenNeverExpires: true
//	    managed: false
//	    accessTokenValiditySeconds: 43200
//
// Relative times are [+-]N{ms,s,m,h,d,w} or "now".

// Scenario is a parsed scenario file.
type Scenario struct {
	// File is the name errors carry.
	File string
	// Now is the file's reference time, if it has one.
	Now *time.Time
	// Options holds only the options the file sets.
	Options    ScenarioOptions
	AdminID    string
	Identities []Identity
	Tokens     []ScenarioToken
}

// ScenarioOptions are the simulator options a scenario may set; nil = unset.
type ScenarioOptions struct {
	RateLimit      *int
	RateWindow     *time.Duration
	AccessTokenTTL *time.Duration
	PatchOthers    *bool
	PageCap        *int
	Paging         *bool
	// Credential-view options (oauth_info.go).
	NonAdminListing *string
	BadCredentials  *string
	TokenPath       *string
}

// ScenarioToken is one token of a scenario with its secret.
type ScenarioToken struct {
	Token  pat.Token
	Secret string
}

type scenarioFile struct {
	Now        string             `yaml:"now"`
	Options    *scenarioOptsFile  `yaml:"options"`
	Admin      string             `yaml:"admin"`
	Identities []scenarioIdentity `yaml:"identities"`
	Tokens     []scenarioToken    `yaml:"tokens"`
}

type scenarioOptsFile struct {
	RateLimit      *int    `yaml:"rateLimit"`
	RateWindow     *string `yaml:"rateWindow"`
	AccessTokenTTL *string `yaml:"accessTokenTTL"`
	PatchOthers    *bool   `yaml:"patchOthers"`
	PageCap        *int    `yaml:"pageCap"`
	Paging         *bool   `yaml:"paging"`

	NonAdminListing *string `yaml:"nonAdminListing"`
	BadCredentials  *string `yaml:"badCredentials"`
	TokenPath       *string `yaml:"tokenPath"`
}

type scenarioIdentity struct {
	ID            string      `yaml:"id"`
	Name          string      `yaml:"name"`
	Alias         string      `yaml:"alias"`
	Email         string      `yaml:"email"`
	Status        string      `yaml:"status"`
	IdentityState string      `yaml:"identityState"`
	Manager       string      `yaml:"manager"`
	OrgAdmin      bool        `yaml:"orgAdmin"`
	SeeManaged    bool        `yaml:"seeManaged"`
	Attributes    []Attribute `yaml:"attributes"`
}

type scenarioToken struct {
	ID                         string    `yaml:"id"`
	Name                       string    `yaml:"name"`
	Owner                      string    `yaml:"owner"`
	OwnerName                  string    `yaml:"ownerName"`
	Secret                     string    `yaml:"secret"`
	Scope                      yaml.Node `yaml:"scope"` // a Node keeps "null" apart from "omitted"
	Created                    string    `yaml:"created"`
	LastUsed                   *string   `yaml:"lastUsed"`
	ExpirationDate             *string   `yaml:"expirationDate"`
	UserAwareTokenNeverExpires *bool     `yaml:"userAwareTokenNeverExpires"`
	Managed                    bool      `yaml:"managed"`
	AccessTokenValiditySeconds int       `yaml:"accessTokenValiditySeconds"`
}

// scenarioErrs collects problems with their lines.
type scenarioErrs struct {
	file string
	root *yaml.Node
	errs []error
}

func (e *scenarioErrs) add(line int, format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf("%s:%d: %s", e.file, line, fmt.Sprintf(format, args...)))
}

// line finds the line of a value by its path of mapping keys and sequence
// indexes; it falls back to the deepest node found.
func (e *scenarioErrs) line(path ...any) int {
	n := e.root
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, p := range path {
		switch key := p.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return n.Line
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					n, found = n.Content[i+1], true
					break
				}
			}
			if !found {
				return n.Line
			}
		case int:
			if n.Kind != yaml.SequenceNode || key >= len(n.Content) {
				return n.Line
			}
			n = n.Content[key]
		}
	}
	return n.Line
}

// ParseScenario parses a scenario. Relative times count from the file's now,
// or from now when the file has none.
func ParseScenario(file string, data []byte, now time.Time) (*Scenario, error) {
	var f scenarioFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty scenario", file)
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	e := &scenarioErrs{file: file, root: &root}
	sc := &Scenario{File: file, AdminID: f.Admin}

	ref := msTrunc(now)
	if f.Now != "" {
		t, err := time.Parse(time.RFC3339Nano, f.Now)
		if err != nil {
			e.add(e.line("now"), "now: %q is not an RFC 3339 date-time", f.Now)
		} else {
			t = msTrunc(t)
			sc.Now, ref = &t, t
		}
	}
	if o := f.Options; o != nil {
		sc.Options.RateLimit, sc.Options.PatchOthers, sc.Options.PageCap = o.RateLimit, o.PatchOthers, o.PageCap
		sc.Options.Paging = o.Paging
		sc.Options.NonAdminListing, sc.Options.BadCredentials, sc.Options.TokenPath = o.NonAdminListing, o.BadCredentials, o.TokenPath
		for _, p := range checkViewOptions(o.NonAdminListing, o.BadCredentials, o.TokenPath) {
			e.add(e.line("options", p.key), "options.%s: %s", p.key, p.msg)
		}
		if o.RateWindow != nil {
			d, err := parseDuration(*o.RateWindow)
			if err != nil || d <= 0 {
				e.add(e.line("options", "rateWindow"), "options.rateWindow: %q is not a positive duration", *o.RateWindow)
			}
			sc.Options.RateWindow = &d
		}
		if o.AccessTokenTTL != nil {
			d, err := parseDuration(*o.AccessTokenTTL)
			if err != nil || d < 0 {
				e.add(e.line("options", "accessTokenTTL"), "options.accessTokenTTL: %q is not a duration", *o.AccessTokenTTL)
			}
			sc.Options.AccessTokenTTL = &d
		}
		if o.PageCap != nil && *o.PageCap < 0 {
			e.add(e.line("options", "pageCap"), "options.pageCap: must not be negative")
		}
	}

	identities := map[string]bool{}
	for i, in := range f.Identities {
		where := fmt.Sprintf("identities[%d]", i)
		if in.ID == "" {
			e.add(e.line("identities", i), "%s: id is required", where)
		} else if identities[in.ID] {
			e.add(e.line("identities", i, "id"), "%s: duplicate identity id %q", where, in.ID)
		}
		identities[in.ID] = true
		if in.Name == "" {
			e.add(e.line("identities", i), "%s: name is required", where)
		}
		switch in.IdentityState {
		case "", "ACTIVE", "INACTIVE_SHORT_TERM", "INACTIVE_LONG_TERM":
		default:
			e.add(e.line("identities", i, "identityState"), "%s: identityState %q is not ACTIVE, INACTIVE_SHORT_TERM or INACTIVE_LONG_TERM", where, in.IdentityState)
		}
		sc.Identities = append(sc.Identities, Identity{
			ID: in.ID, Name: in.Name, Alias: in.Alias, Email: in.Email, Status: in.Status,
			IdentityState: in.IdentityState, ManagerID: in.Manager, Attributes: in.Attributes,
			OrgAdmin: in.OrgAdmin, SeeManaged: in.SeeManaged,
		})
	}
	for i, in := range f.Identities {
		if in.Manager != "" && !identities[in.Manager] {
			e.add(e.line("identities", i, "manager"), "identities[%d]: manager %q is not an identity", i, in.Manager)
		}
	}

	ids := map[string]bool{}
	names := map[string]bool{}
	perOwner := map[string]int{}
	for i, in := range f.Tokens {
		where := fmt.Sprintf("tokens[%d] %q", i, in.Name)
		t := pat.Token{
			ID: in.ID, Name: in.Name, Managed: in.Managed,
			Owner:                      pat.Owner{Type: "IDENTITY", ID: in.Owner, Name: in.OwnerName},
			AccessTokenValiditySeconds: in.AccessTokenValiditySeconds,
			UserAwareTokenNeverExpires: in.UserAwareTokenNeverExpires,
		}
		if in.Name == "" {
			e.add(e.line("tokens", i), "tokens[%d]: name is required", i)
		}
		if in.Owner == "" {
			e.add(e.line("tokens", i), "%s: owner is required", where)
		}
		if t.ID == "" {
			sum := sha256.Sum256([]byte("token:" + in.Owner + "/" + in.Name))
			t.ID = hex.EncodeToString(sum[:16])
		}
		if ids[t.ID] {
			e.add(e.line("tokens", i, "id"), "%s: duplicate token id %q", where, t.ID)
		}
		ids[t.ID] = true
		key := in.Owner + "\x00" + in.Name
		if names[key] {
			e.add(e.line("tokens", i, "name"), "%s: owner %s already has a token with this name", where, in.Owner)
		}
		names[key] = true
		if !in.Managed {
			perOwner[in.Owner]++
			if perOwner[in.Owner] == MaxTokensPerOwner+1 {
				e.add(e.line("tokens", i, "owner"), "%s: owner %s has more than %d tokens", where, in.Owner, MaxTokensPerOwner)
			}
		}
		if s := in.AccessTokenValiditySeconds; s != 0 && (s < 15 || s > 43200) {
			e.add(e.line("tokens", i, "accessTokenValiditySeconds"), "%s: accessTokenValiditySeconds %d is not between 15 and 43200", where, s)
		}
		t.Scope = scenarioScope(e, &in.Scope, i, where)
		if in.Created == "" {
			t.Created = ref
		} else if ts, err := parseScenarioTime(in.Created, ref); err != nil {
			e.add(e.line("tokens", i, "created"), "%s: created: %v", where, err)
		} else {
			t.Created = ts
		}
		if in.LastUsed != nil {
			if ts, err := parseScenarioTime(*in.LastUsed, ref); err != nil {
				e.add(e.line("tokens", i, "lastUsed"), "%s: lastUsed: %v", where, err)
			} else if ts.Before(t.Created) {
				e.add(e.line("tokens", i, "lastUsed"), "%s: lastUsed %s is before created %s", where, pat.FormatTime(ts), pat.FormatTime(t.Created))
			} else {
				t.LastUsed = &ts
			}
		}
		if in.ExpirationDate != nil {
			if ts, err := parseScenarioTime(*in.ExpirationDate, ref); err != nil {
				e.add(e.line("tokens", i, "expirationDate"), "%s: expirationDate: %v", where, err)
			} else {
				t.ExpirationDate = &ts
			}
		}
		secret := in.Secret
		if secret == "" {
			sum := sha256.Sum256([]byte("secret:" + t.ID))
			secret = hex.EncodeToString(sum[:])
		}
		sc.Tokens = append(sc.Tokens, ScenarioToken{Token: t, Secret: secret})
	}
	if f.Admin != "" && !ids[f.Admin] {
		e.add(e.line("admin"), "admin: %q is not the id of a token in this scenario", f.Admin)
	}
	if len(e.errs) > 0 {
		return nil, errors.Join(e.errs...)
	}
	return sc, nil
}

func scenarioScope(e *scenarioErrs, n *yaml.Node, i int, where string) pat.Scopes {
	switch {
	case n.Kind == 0:
		return pat.ScopesOf(pat.ScopeAll)
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
		return pat.Scopes{Null: true}
	case n.Kind == yaml.SequenceNode:
		vals := []string{}
		for _, item := range n.Content {
			if item.Kind != yaml.ScalarNode || item.ShortTag() != "!!str" {
				e.add(item.Line, "%s: scope items must be strings", where)
				continue
			}
			vals = append(vals, item.Value)
		}
		return pat.ScopesOf(vals...)
	}
	e.add(n.Line, "%s: scope must be a list of strings or null", where)
	return pat.Scopes{}
}

// parseScenarioTime reads an RFC 3339 time or a time relative to ref.
func parseScenarioTime(s string, ref time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "now" {
		return ref, nil
	}
	if strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-") {
		d, err := parseDuration(s[1:])
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 date-time nor a relative time like -90d", s)
		}
		if s[0] == '-' {
			d = -d
		}
		return msTrunc(ref.Add(d)), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 date-time nor a relative time like -90d", s)
	}
	return msTrunc(t), nil
}

// parseDuration is time.ParseDuration plus d (24h) and w (7d) units, in a
// single-unit form ("90d", "2w") or any Go duration ("36h", "1h30m").
func parseDuration(s string) (time.Duration, error) {
	for unit, mult := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if num, ok := strings.CutSuffix(s, unit); ok {
			n, err := strconv.ParseFloat(num, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("invalid duration %q", s)
			}
			return time.Duration(n * float64(mult)), nil
		}
	}
	return time.ParseDuration(s)
}

// ApplyScenario replaces the population with the scenario's and applies the
// options it sets. Without an admin in the scenario, an org-admin identity and
// its PAT are added as New does.
func (s *Sim) ApplyScenario(sc *Scenario) {
	pop := &population{tokens: map[string]*record{}, identities: map[string]*Identity{}}
	for _, id := range sc.Identities {
		cp := id
		pop.identities[id.ID] = &cp
	}
	now := s.now()
	for _, st := range sc.Tokens {
		pop.putBulk(normalizeToken(pop, now, st.Token, st.Secret))
	}
	pop.sortOrder()
	if sc.AdminID != "" {
		for _, st := range sc.Tokens {
			if st.Token.ID == sc.AdminID {
				pop.admin = Credentials{ClientID: st.Token.ID, ClientSecret: st.Secret}
			}
		}
	} else {
		admin := Identity{
			ID: randomHex(16), Name: "PAT Janitor Admin", Alias: "svc-patjanitor",
			Email: "svc-patjanitor@example.com", Status: "Active", IdentityState: "ACTIVE",
			OrgAdmin: true, SeeManaged: true,
		}
		pop.identities[admin.ID] = &admin
		pop.admin = Credentials{ClientID: randomHex(16), ClientSecret: randomHex(32)}
		pop.put(normalizeToken(pop, now, pat.Token{
			ID: pop.admin.ClientID, Name: "patjanitor", Scope: pat.ScopesOf(pat.ScopeAll),
			Owner: pat.Owner{ID: admin.ID},
		}, pop.admin.ClientSecret))
	}
	s.mu.Lock()
	o := sc.Options
	if o.AccessTokenTTL != nil {
		s.set.accessTokenTTL = *o.AccessTokenTTL
	}
	if o.PatchOthers != nil {
		s.set.patchOthers = *o.PatchOthers
	}
	if o.PageCap != nil {
		s.set.pageCap = *o.PageCap
	}
	if o.Paging != nil {
		s.set.paging = *o.Paging
	}
	s.set.applyView(o)
	s.mu.Unlock()
	if o.RateLimit != nil || o.RateWindow != nil {
		s.limiter.mu.Lock()
		n, w := s.limiter.n, s.limiter.window
		s.limiter.mu.Unlock()
		if o.RateLimit != nil {
			n = *o.RateLimit
		}
		if o.RateWindow != nil {
			w = *o.RateWindow
		}
		s.limiter.configure(n, w)
	}
	s.replacePopulation(pop)
}

// shift moves the scenario's times by d.
func (sc *Scenario) shift(d time.Duration) {
	now := sc.Now.Add(d)
	sc.Now = &now
	move := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		m := t.Add(d)
		return &m
	}
	for i := range sc.Tokens {
		tok := &sc.Tokens[i].Token
		tok.Created = tok.Created.Add(d)
		tok.LastUsed, tok.ExpirationDate = move(tok.LastUsed), move(tok.ExpirationDate)
	}
}

// LoadScenario reads a scenario (relative times count from the simulator
// clock unless the file sets now) and applies it.
func (s *Sim) LoadScenario(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read scenario: %w", err)
	}
	sc, err := ParseScenario("scenario", data, s.now())
	if err != nil {
		return err
	}
	s.ApplyScenario(sc)
	return nil
}

// ReadScenarioFile parses a scenario file; relative times count from the
// file's now or from now.
func ReadScenarioFile(path string, now time.Time) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	return ParseScenario(filepath.Base(path), data, now)
}

// LoadScenarioFile builds a simulator from a scenario file. Options set in
// opts win over the file's. Without opts.Clock the simulator runs on the
// wall clock, and a file that sets now is moved forward to it: each token's
// times by how long ago the file's now is, so that its tokens are exactly
// as stale, and expire as far ahead, as written. (Started at the file's now
// instead, the simulator's answers carry that time as their Date, and a
// patjanitor on the same host refuses a tenant whose clock is days from
// its own: tenant.maxClockSkew.)
func LoadScenarioFile(path string, opts Options) (*Sim, *Scenario, error) {
	clock := opts.Clock
	if clock == nil {
		clock = time.Now
	}
	sc, err := ReadScenarioFile(path, clock())
	if err != nil {
		return nil, nil, err
	}
	if opts.Clock == nil && sc.Now != nil {
		sc.shift(clock().Sub(*sc.Now).Truncate(time.Millisecond)) // the API's times have milliseconds
	}
	o := sc.Options
	if opts.RateLimit == 0 && o.RateLimit != nil {
		opts.RateLimit = *o.RateLimit
	}
	if opts.RateWindow == 0 && o.RateWindow != nil {
		opts.RateWindow = *o.RateWindow
	}
	if opts.AccessTokenTTL == 0 && o.AccessTokenTTL != nil {
		opts.AccessTokenTTL = *o.AccessTokenTTL
	}
	if !opts.PatchOthers && o.PatchOthers != nil {
		opts.PatchOthers = *o.PatchOthers
	}
	if opts.PageCap == 0 && o.PageCap != nil {
		opts.PageCap = *o.PageCap
	}
	if !opts.Paging && o.Paging != nil {
		opts.Paging = *o.Paging
	}
	opts.mergeView(o)
	s := New(opts)
	merged := *sc
	merged.Options = ScenarioOptions{} // already in opts, where explicit options win
	s.ApplyScenario(&merged)
	return s, sc, nil
}
