package idnsim

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

func TestSeedDeterministic(t *testing.T) {
	seeded := func(n int, seed int64) *Sim {
		c := newClock()
		s := New(Options{Clock: c.Now})
		s.Seed(n, seed)
		return s
	}
	a, b, c := seeded(300, 42), seeded(300, 42), seeded(300, 43)
	if !reflect.DeepEqual(a.Tokens(), b.Tokens()) || !reflect.DeepEqual(a.Identities(), b.Identities()) || a.Admin() != b.Admin() {
		t.Fatal("same seed and clock, different tenants")
	}
	if reflect.DeepEqual(a.Tokens(), c.Tokens()) || a.Admin() == c.Admin() {
		t.Fatal("different seeds, same tenant")
	}
	if got := len(a.Tokens()); got != 301 {
		t.Fatalf("%d tokens, want 300 plus the admin PAT", got)
	}
	if got := len(seeded(0, 1).Tokens()); got != 1 {
		t.Fatalf("Seed(0) has %d tokens, want only the admin PAT", got)
	}
}

// The population has every kind of token a policy cares about.
func TestSeedRealistic(t *testing.T) {
	s := New(Options{Clock: newClock().Now})
	s.Seed(2000, 1)
	toks := s.Tokens()
	ids := map[string]Identity{}
	for _, id := range s.Identities() {
		ids[id.ID] = id
	}
	admin := s.Admin()
	adminTok, ok := s.Token(admin.ClientID)
	if !ok || !adminTok.Scope.Has(pat.ScopeAll) || !ids[adminTok.Owner.ID].OrgAdmin || !ids[adminTok.Owner.ID].SeeManaged {
		t.Fatalf("admin PAT %+v", adminTok)
	}
	count := map[string]int{}
	perOwner := map[string]int{}
	names := map[string]bool{}
	staleCut, freshCut := t0.Add(-90*24*time.Hour), t0.Add(-30*24*time.Hour)
	for _, tk := range toks {
		perOwner[tk.Owner.ID]++
		key := tk.Owner.ID + "/" + tk.Name
		if names[key] {
			t.Errorf("duplicate name %s", key)
		}
		names[key] = true
		if tk.LastUsed != nil && tk.LastUsed.Before(tk.Created) {
			t.Errorf("%s used before created", tk.ID)
		}
		if tk.Created.After(t0) || (tk.LastUsed != nil && tk.LastUsed.After(t0)) {
			t.Errorf("%s has a future time", tk.ID)
		}
		switch {
		case tk.LastUsed == nil:
			count["never used"]++
		case tk.LastUsed.Before(staleCut):
			count["stale"]++
		case tk.LastUsed.After(freshCut):
			count["fresh"]++
		}
		switch {
		case tk.Scope.Null:
			count["null scope"]++
		case tk.Scope.Has(pat.ScopeAll):
			count["sp:scopes:all"]++
		default:
			count["fine-grained"]++
		}
		if tk.Managed {
			count["managed"]++
		}
		if tk.ExpirationDate == nil {
			count["never expires"]++
		} else if tk.ExpirationDate.Before(t0) {
			count["expired"]++
		}
		if strings.HasPrefix(tk.Name, "break-glass") {
			count["break-glass"]++
		}
		if id, ok := ids[tk.Owner.ID]; !ok {
			count["owner missing"]++
		} else {
			count["owner "+id.IdentityState]++
			if id.Email == "" {
				count["owner without email"]++
			}
		}
		if tk.AccessTokenValiditySeconds < 15 || tk.AccessTokenValiditySeconds > 43200 {
			t.Errorf("%s: accessTokenValiditySeconds %d", tk.ID, tk.AccessTokenValiditySeconds)
		}
	}
	t.Logf("mix: %v", count)
	for _, kind := range []string{"never used", "stale", "fresh", "null scope", "sp:scopes:all", "fine-grained", "managed",
		"never expires", "expired", "break-glass", "owner missing", "owner INACTIVE_LONG_TERM", "owner without email"} {
		if count[kind] < 5 {
			t.Errorf("only %d %s tokens in 2000: %v", count[kind], kind, count)
		}
	}
	for owner, n := range perOwner {
		if n > MaxTokensPerOwner+1 { // the admin identity also holds its own PAT
			t.Errorf("owner %s holds %d tokens", owner, n)
		}
	}
	if len(perOwner) < 200 {
		t.Errorf("only %d owners for 2000 tokens", len(perOwner))
	}
}

func TestSeedServes(t *testing.T) {
	e := newEnv(t, Options{RateLimit: -1})
	e.sim.Seed(50, 9)
	tok := e.admin() // Seed replaced the admin credentials; the new ones log in
	if got := len(e.listIDs("/v3/personal-access-tokens", tok)); got != 51 {
		t.Fatalf("listed %d, want 51", got)
	}
	// Seeding forgets access tokens minted before.
	e2 := newEnv(t, Options{})
	old := e2.admin()
	e2.sim.Seed(5, 1)
	if r := e2.do("GET", "/v3/personal-access-tokens", old, "", ""); r.status != 401 {
		t.Fatalf("an access token survived Seed: %d", r.status)
	}

}
