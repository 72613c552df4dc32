package idnsim

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// Name pools for seeded populations: what PATs in real tenants are called.
var (
	seedTokenNames = []string{
		"ci-deploy", "jenkins-prod", "jenkins-staging", "github-actions", "gitlab-runner",
		"terraform", "terraform-plan", "ansible", "postman", "sailpoint-cli", "vscode-extension",
		"powershell-scripts", "reporting-etl", "splunk-export", "servicenow-integration",
		"okta-sync", "access-review-bot", "data-export", "backup-job", "monitoring",
		"grafana", "airflow-dag", "lambda-rotation", "local-dev", "test", "my-token", "temp",
		"migration-2024", "qa-automation", "iam-scripts", "hr-sync", "audit-export",
		"break-glass-admin", "break-glass-ops", "nightly-certs", "onboarding-script",
	}
	seedManagedNames = []string{
		"workflow-onboarding", "workflow-leaver-cleanup", "workflow-access-request",
		"workflow-mover", "workflow-notify-manager", "workflow-sod-report",
	}
	seedFirstNames = []string{
		"Alison", "Thomas", "Maria", "James", "Wei", "Fatima", "Olga", "Carlos", "Priya", "John",
		"Aiko", "Noah", "Emma", "Liam", "Sofia", "Mateo", "Chloe", "Ravi", "Hannah", "Omar",
		"Ingrid", "Kenji", "Lucia", "Pierre", "Zanele", "Mikhail", "Ana", "David", "Grace", "Yusuf",
	}
	seedLastNames = []string{
		"Ferguson", "Edison", "Garcia", "Smith", "Zhang", "Khan", "Petrova", "Silva", "Patel",
		"Brown", "Tanaka", "Miller", "Johnson", "Nguyen", "Rossi", "Fernandez", "Martin", "Iyer",
		"Schmidt", "Haddad", "Larsen", "Sato", "Romero", "Dubois", "Dlamini", "Ivanov", "Costa",
		"Cohen", "Okafor", "Yilmaz",
	}
	seedDepartments = []string{"Engineering", "IT", "Security", "Finance", "HR", "Operations", "Sales"}
	seedCountries   = []string{"US", "GB", "DE", "IN", "BR", "JP", "ZA", "FR"}
	// Fine-grained scope sets a careful owner gives a token.
	seedScopeSets = [][]string{
		{"idn:sources:read", "idn:accounts:read"},
		{"sp:my-personal-access-tokens:read"},
		{"idn:identity:read", "idn:identity-profile:read"},
		{"idn:access-request:manage"},
		{"sp:all-personal-access-tokens:read"},
		{"idn:workflow:read", "idn:workflow:manage"},
		{"idn:sod-policy:read", "idn:sod-violation:read"},
		{"idn:accounts:read"},
		{"idn:access-profile:read", "idn:role-unchecked:read"},
		{"idn:sources-admin:manage", "idn:sources:aggregate"},
	}
)

// seeder draws a population from one seeded generator, so the same seed and
// clock give the same tenant.
type seeder struct {
	rng     *rand.Rand
	now     time.Time
	pop     *population
	aliases map[string]int
}

func (g *seeder) hexID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], g.rng.Uint64())
	binary.BigEndian.PutUint64(b[8:], g.rng.Uint64())
	return hex.EncodeToString(b[:])
}

func (g *seeder) secret() string { return g.hexID() + g.hexID() }

func (g *seeder) pick(list []string) string { return list[g.rng.IntN(len(list))] }

func (g *seeder) chance(p float64) bool { return g.rng.Float64() < p }

func (g *seeder) daysAgo(minDays, maxDays int) time.Time {
	d := minDays + g.rng.IntN(maxDays-minDays+1)
	secs := g.rng.IntN(86400)
	ms := g.rng.IntN(1000)
	return g.now.Add(-time.Duration(d)*24*time.Hour - time.Duration(secs)*time.Second - time.Duration(ms)*time.Millisecond)
}

// Seed replaces the population with a realistic, deterministic one: n tokens
// spread over owners holding 1 to 10 tokens each, plus the admin PAT (owned by
// an org-admin identity, sp:scopes:all) whose credentials Admin then returns.
// Dates are relative to the simulator clock, so the same seed and clock give
// the same tenant, credentials included.
//
// The mix: about a fifth never used, a third stale (last used 91 to 700 days
// ago), the rest used within 90 days; sp:scopes:all, null, sp:scopes:default
// and fine-grained scopes; about 6% managed (workflow-*); the six-month default
// expiry on recent tokens, later dates, past dates (expired, still listed) or
// none (never expires); names like ci-deploy, jenkins-prod and
// break-glass-admin. Owners: a few org
// admins, some INACTIVE_LONG_TERM or INACTIVE_SHORT_TERM, some without email,
// and about 3% that are no identity at all (deleted users: ownerMissing).
func (s *Sim) Seed(n int, seed int64) {
	g := &seeder{
		rng:     rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)),
		now:     s.now(),
		pop:     &population{tokens: map[string]*record{}, identities: map[string]*Identity{}},
		aliases: map[string]int{},
	}
	admin := &Identity{
		ID: g.hexID(), Name: "PAT Janitor Admin", Alias: "svc-patjanitor", Email: "svc-patjanitor@example.com",
		Status: "Active", IdentityState: "ACTIVE", OrgAdmin: true, SeeManaged: true,
		Attributes: []Attribute{{Key: "department", Name: "Department", Value: "Security"}},
	}
	g.pop.identities[admin.ID] = admin
	creds := Credentials{ClientID: g.hexID(), ClientSecret: g.secret()}
	g.pop.admin = creds
	g.pop.put(&record{
		tok: pat.Token{
			ID: creds.ClientID, Name: "patjanitor", Scope: pat.ScopesOf(pat.ScopeAll),
			Owner:   pat.Owner{Type: "IDENTITY", ID: admin.ID, Name: admin.Name},
			Created: msTrunc(g.daysAgo(30, 60)), AccessTokenValiditySeconds: DefaultAccessTokenValiditySeconds,
		},
		secretHash: sha256.Sum256([]byte(creds.ClientSecret)),
	})

	remaining := n
	// The admin identity owns a break-glass token and a CLI token of its own.
	if remaining > 0 {
		k := min(2, remaining)
		g.ownerTokens(admin.ID, admin.Name, k, []string{"break-glass-admin", "sailpoint-cli"})
		remaining -= k
	}
	var owners []*Identity
	for remaining > 0 {
		k := min(g.tokensPerOwner(), remaining)
		id := g.identity(owners)
		if g.chance(0.03) {
			// A deleted user: tokens survive, the identity does not.
			g.ownerTokens(id.ID, id.Name, k, nil)
		} else {
			g.pop.identities[id.ID] = id
			owners = append(owners, id)
			g.ownerTokens(id.ID, id.Name, k, nil)
		}
		remaining -= k
	}
	g.pop.sortOrder()
	s.replacePopulation(g.pop)
}

// tokensPerOwner is skewed to small numbers, with a tail up to the cap of 10.
func (g *seeder) tokensPerOwner() int {
	weights := []int{30, 22, 14, 10, 7, 5, 4, 3, 3, 2} // 1..10
	r := g.rng.IntN(100)
	for i, w := range weights {
		if r < w {
			return i + 1
		}
		r -= w
	}
	return 1
}

func (g *seeder) identity(earlier []*Identity) *Identity {
	first, last := g.pick(seedFirstNames), g.pick(seedLastNames)
	alias := strings.ToLower(first + "." + last)
	g.aliases[alias]++
	if c := g.aliases[alias]; c > 1 {
		alias = fmt.Sprintf("%s%d", alias, c)
	}
	id := &Identity{
		ID: g.hexID(), Name: first + " " + last, Alias: alias, Email: alias + "@example.com",
		Status: "Active", IdentityState: "ACTIVE",
		Attributes: []Attribute{
			{Key: "department", Name: "Department", Value: g.pick(seedDepartments)},
			{Key: "country", Name: "Country", Value: g.pick(seedCountries)},
		},
	}
	switch r := g.rng.Float64(); {
	case r < 0.08:
		id.Status, id.IdentityState = "Inactive", "INACTIVE_LONG_TERM"
	case r < 0.11:
		id.Status, id.IdentityState = "Inactive", "INACTIVE_SHORT_TERM"
	}
	if g.chance(0.06) {
		id.Email = ""
	}
	if g.chance(0.02) {
		id.OrgAdmin, id.SeeManaged = true, true
	}
	if len(earlier) > 0 && g.chance(0.7) {
		id.ManagerID = earlier[g.rng.IntN(len(earlier))].ID
	}
	return id
}

// ownerTokens adds k tokens for one owner, names unique for that owner; names
// given are used first.
func (g *seeder) ownerTokens(ownerID, ownerName string, k int, names []string) {
	used := map[string]bool{}
	for i := 0; i < k; i++ {
		managed := g.chance(0.06)
		var name string
		switch {
		case i < len(names):
			name = names[i]
		case managed:
			name = g.pick(seedManagedNames)
		default:
			name = g.pick(seedTokenNames)
		}
		for base, n := name, 2; used[name]; n++ {
			name = fmt.Sprintf("%s-%d", base, n)
		}
		used[name] = true
		t := g.token(name, managed)
		t.Owner = pat.Owner{Type: "IDENTITY", ID: ownerID, Name: ownerName}
		g.pop.putBulk(&record{tok: t, secretHash: sha256.Sum256([]byte(g.secret()))})
	}
}

func (g *seeder) token(name string, managed bool) pat.Token {
	t := pat.Token{ID: g.hexID(), Name: name, Managed: managed}
	t.Created = msTrunc(g.daysAgo(1, 1000))
	ageDays := int(g.now.Sub(t.Created) / (24 * time.Hour))
	switch r := g.rng.Float64(); {
	case r < 0.22:
		// never used
	case r < 0.55 && ageDays > 92:
		lu := g.between(t.Created, g.now.Add(-91*24*time.Hour))
		t.LastUsed = &lu
	case r < 0.65 && ageDays > 31:
		lu := g.between(maxTime(t.Created, g.now.Add(-90*24*time.Hour)), g.now.Add(-31*24*time.Hour))
		t.LastUsed = &lu
	default:
		lu := g.between(maxTime(t.Created, g.now.Add(-30*24*time.Hour)), g.now)
		t.LastUsed = &lu
	}
	switch r := g.rng.Float64(); {
	case r < 0.28 || strings.HasPrefix(name, "break-glass"):
		t.Scope = pat.ScopesOf(pat.ScopeAll)
	case r < 0.38:
		t.Scope = pat.Scopes{Null: true}
	case r < 0.46:
		t.Scope = pat.ScopesOf("sp:scopes:default")
	default:
		set := seedScopeSets[g.rng.IntN(len(seedScopeSets))]
		t.Scope = pat.ScopesOf(append([]string(nil), set...)...)
	}
	switch r := g.rng.Float64(); {
	case r < 0.75:
		t.AccessTokenValiditySeconds = 43200
	case r < 0.85:
		t.AccessTokenValiditySeconds = 3600
	case r < 0.95:
		t.AccessTokenValiditySeconds = 900
	default:
		t.AccessTokenValiditySeconds = 300
	}
	// Recent tokens mostly carry the six-month default; older ones predate the
	// policy (never expire) or were given a date, some of it already past.
	switch r := g.rng.Float64(); {
	case ageDays < 180 && r < 0.6:
		e := t.Created.AddDate(0, 6, 0)
		t.ExpirationDate = &e
	case r < 0.55:
		e := msTrunc(g.now.Add(time.Duration(1+g.rng.IntN(730)) * 24 * time.Hour))
		t.ExpirationDate = &e
	case r < 0.68:
		e := g.between(t.Created.Add(24*time.Hour), g.now)
		t.ExpirationDate = &e
	default:
		yes := true
		t.UserAwareTokenNeverExpires = &yes
	}
	return t
}

// between returns a millisecond time in [a, b] (a if b is not after a).
func (g *seeder) between(a, b time.Time) time.Time {
	if !b.After(a) {
		return msTrunc(a)
	}
	return msTrunc(a.Add(time.Duration(g.rng.Int64N(int64(b.Sub(a)) + 1))))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
