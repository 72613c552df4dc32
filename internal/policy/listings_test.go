package policy

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

func TestListings(t *testing.T) {
	le := func(d time.Duration) pat.Listing {
		return pat.Listing{Kind: pat.ListLastUsedBefore, Cutoff: testNow.Add(-d)}
	}
	never := pat.Listing{Kind: pat.ListNeverUsed}
	all := pat.Listing{Kind: pat.ListAll}
	tests := []struct {
		name     string
		policies string
		limits   string
		want     []pat.Listing
	}{
		{"unusedFor: le and isnull", "[{name: a, match: {unusedFor: 90d}, action: delete}]", "", []pat.Listing{le(90 * Day), never}},
		{"the latest cutoff covers the others", `
  - {name: a, match: {unusedFor: 90d}, action: delete}
  - {name: b, match: {lastUsedOlderThan: 30d, scopes: {any: [x]}}, action: report}`, "", []pat.Listing{le(30 * Day), never}},
		{"lastUsedOlderThan alone: no isnull", "[{name: a, match: {lastUsedOlderThan: 30d}, action: delete}]", "", []pat.Listing{le(30 * Day)}},
		{"neverUsed alone: isnull only", "[{name: a, match: {neverUsed: true, createdOlderThan: 30d}, action: delete}]", "", []pat.Listing{never}},
		{"unusedFor and lastUsedOlderThan in one policy: the tighter, no isnull",
			"[{name: a, match: {unusedFor: 30d, lastUsedOlderThan: 90d}, action: delete}]", "", []pat.Listing{le(90 * Day)}},
		{"unusedFor and neverUsed in one policy: isnull only",
			"[{name: a, match: {unusedFor: 30d, neverUsed: true}, action: delete}]", "", []pat.Listing{never}},
		{"one unbounded policy: everything", `
  - {name: a, match: {unusedFor: 90d}, action: delete}
  - {name: b, match: {createdOlderThan: 365d}, action: report}`, "", []pat.Listing{all}},
		{"scopes only: everything", "[{name: a, match: {scopes: {any: [x]}}, action: report}]", "", []pat.Listing{all}},
		{"maxActionsPercent needs the population", "[{name: a, match: {unusedFor: 90d}, action: delete}]", "limits: {maxActionsPercent: 5}\n", []pat.Listing{all}},
		{"the default maxActionsPercent too", "[{name: a, match: {unusedFor: 90d}, action: delete}]", "limits: {maxActionsPerRun: 5}\n", []pat.Listing{all}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limits := tt.limits
			if limits == "" {
				limits = "limits: {maxActionsPercent: 0}\n"
			}
			cfg := mustParse(t, limits+"policies: "+tt.policies+"\n")
			if got := cfg.Listings(testNow); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Listings = %v, want %v", got, tt.want)
			}
		})
	}

	// The cutoff is rounded up to the millisecond the filter can express.
	cfg := mustParse(t, "limits: {maxActionsPercent: 0}\npolicies: [{name: a, match: {lastUsedOlderThan: 1d}, action: report}]")
	now := testNow.Add(123456789 * time.Nanosecond)
	got := cfg.Listings(now)
	if len(got) != 1 || got[0].String() != "lastUsed le 2026-11-25T03:00:00.124Z" {
		t.Errorf("Listings at %v = %v", now, got)
	}
	// Only restricts the planning to the schedule group's policies.
	two := mustParse(t, `limits: {maxActionsPercent: 0}
policies:
  - {name: a, match: {unusedFor: 90d}, action: delete}
  - {name: b, match: {createdOlderThan: 365d}, action: report}`)
	if got := two.Only("a").Listings(testNow); !reflect.DeepEqual(got, []pat.Listing{le(90 * Day), never}) {
		t.Errorf("Only(a).Listings = %v", got)
	}
	if got := two.Only().Listings(testNow); got != nil {
		t.Errorf("no policies: %v", got)
	}
}

// TestListingsCoverEverything is the property behind query planning: for
// random policy sets and random tokens, the decisions made on the tokens the
// planned listing calls return equal the decisions made on the whole
// population. Evaluation is per token, so that is: every token that gets a
// decision (acted on or skipped) is in a planned listing.
func TestListingsCoverEverything(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 2026))
	// 300 random configs catch every mutant of Listings that 1,500 caught
	// (the cutoff's direction, its millisecond rounding, the isnull listing of
	// unusedFor), already within the first 30; the rest cost CPU under -race.
	iterations := 300
	if testing.Short() {
		iterations = 200
	}
	var ownerData = map[string]OwnerInfo{"o1": {State: "INACTIVE_LONG_TERM"}, "o2": {Missing: true}, "o3": {State: "ACTIVE"}}
	env := Env{ClientID: "self", Owner: func(id string) (OwnerInfo, bool) { i, ok := ownerData[id]; return i, ok }}
	filtered, decided := 0, 0
	for it := 0; it < iterations; it++ {
		// A now with a sub-millisecond part, like time.Now().
		now := testNow.Add(time.Duration(rng.Int64N(int64(Day))))
		env.Now = now
		yaml := randomConfig(rng)
		cfg, err := Parse(fmt.Sprintf("random-%d.yaml", it), []byte(yaml))
		if err != nil {
			t.Fatalf("random config does not load:\n%s\n%v", yaml, err)
		}
		listings := cfg.Listings(now)
		if len(listings) == 0 || len(listings) > 2 {
			t.Fatalf("%d listings: %v", len(listings), listings)
		}
		if listings[0].Kind != pat.ListAll {
			filtered++
		}
		ev := cfg.Evaluator(env)
		for _, tk := range randomTokens(rng, now, cfg, 120) {
			d := ev.Evaluate(tk)
			if !d.Matched {
				continue
			}
			decided++
			if !covered(listings, tk) {
				t.Fatalf("token %+v (lastUsed %s) decided %+v but not in the listings %v\nconfig:\n%s",
					tk, tk.LastUsedString(), d, listings, yaml)
			}
		}
	}
	// The property must not hold vacuously.
	if filtered < iterations/4 || decided < iterations*5 {
		t.Errorf("weak test: %d of %d configs filtered, %d decisions", filtered, iterations, decided)
	}
}

// covered reports whether a listing returns tk, as the tenant evaluates the
// filter text (the cutoff at millisecond precision).
func covered(ls []pat.Listing, tk *pat.Token) bool {
	for _, l := range ls {
		switch l.Kind {
		case pat.ListAll:
			return true
		case pat.ListNeverUsed:
			if tk.LastUsed == nil {
				return true
			}
		case pat.ListLastUsedBefore:
			cut, err := pat.ParseTime(strings.TrimPrefix(l.String(), "lastUsed le "))
			if err != nil {
				panic(err)
			}
			if tk.LastUsed != nil && !tk.LastUsed.After(cut) {
				return true
			}
		}
	}
	return false
}

var randomDurations = []string{"1d", "7d", "30d", "90d", "36h", "2w"}

// randomConfig writes a v2025 config of 1 to 4 random policies, each with 1
// to 3 random conditions; three in four configs disable maxActionsPercent.
func randomConfig(rng *rand.Rand) string {
	var b strings.Builder
	b.WriteString("tenant: {apiVersion: v2025}\nowners: {lookup: true}\nexclude: {names: [\"keep-*\"], ownerIds: [o9]}\n")
	if rng.IntN(4) > 0 {
		b.WriteString("limits: {maxActionsPercent: 0}\n")
	}
	b.WriteString("policies:\n")
	dur := func() string { return randomDurations[rng.IntN(len(randomDurations))] }
	n := 1 + rng.IntN(4)
	for i := 0; i < n; i++ {
		conds := map[string]string{}
		// Bias towards the conditions that bound listings, so that many
		// configs are filtered.
		for k := 1 + rng.IntN(3); len(conds) < k; {
			switch rng.IntN(14) {
			case 0, 1, 2:
				conds["unusedFor"] = dur()
			case 3, 4:
				conds["lastUsedOlderThan"] = dur()
			case 5, 6:
				conds["neverUsed"] = "true"
			case 7:
				conds["createdOlderThan"] = dur()
			case 8:
				conds["scopes"] = `{any: ["sp:scopes:all"]}`
			case 9:
				conds["nameMatches"] = `"^ci-"`
			case 10:
				conds["neverExpires"] = "true"
			case 11:
				conds["expiresWithin"] = dur()
			case 12:
				conds["ownerStates"] = "[INACTIVE_LONG_TERM]"
			case 13:
				conds["ownerMissing"] = "true"
			}
		}
		if conds["neverUsed"] != "" && conds["lastUsedOlderThan"] != "" {
			delete(conds, "lastUsedOlderThan") // a contradiction Load refuses
		}
		if rng.IntN(4) == 0 {
			conds["includeManaged"] = "true"
		}
		fmt.Fprintf(&b, "  - name: p%d\n    match:\n", i)
		for _, k := range []string{"unusedFor", "lastUsedOlderThan", "neverUsed", "createdOlderThan", "scopes", "nameMatches", "neverExpires", "expiresWithin", "ownerStates", "ownerMissing", "includeManaged"} {
			if v, ok := conds[k]; ok {
				fmt.Fprintf(&b, "      %s: %s\n", k, v)
			}
		}
		switch rng.IntN(4) {
		case 0:
			b.WriteString("    action: report\n")
		case 1:
			b.WriteString("    action: delete\n")
		case 2:
			b.WriteString("    action: patch\n    patch: {removeScopes: [\"sp:scopes:all\"], addScopes: [\"sp:scopes:default\"]}\n")
		case 3:
			b.WriteString("    action: expire\n    expireIn: " + dur() + "\n")
		}
	}
	return b.String()
}

// randomTokens makes tokens whose times cluster at the cutoffs the config
// uses (exactly at one, a nanosecond or a millisecond either side) and spread
// elsewhere.
func randomTokens(rng *rand.Rand, now time.Time, cfg *Config, n int) []*pat.Token {
	var cuts []time.Time
	for _, p := range cfg.Policies {
		for _, d := range []time.Duration{p.Match.UnusedFor, p.Match.LastUsedOlderThan, p.Match.CreatedOlderThan} {
			if d > 0 {
				cuts = append(cuts, now.Add(-d))
			}
		}
	}
	jitters := []time.Duration{0, 1, -1, ms, -ms, ms / 2, -ms / 2, time.Second, -time.Hour}
	when := func() time.Time {
		if len(cuts) > 0 && rng.IntN(3) > 0 {
			return cuts[rng.IntN(len(cuts))].Add(jitters[rng.IntN(len(jitters))])
		}
		return now.Add(-time.Duration(rng.Int64N(int64(400 * Day))))
	}
	out := make([]*pat.Token, n)
	for i := range out {
		tk := &pat.Token{
			ID:      fmt.Sprintf("t%d", i),
			Name:    []string{"ci-deploy", "keep-me", "postman", "ci-x"}[rng.IntN(4)],
			Owner:   pat.Owner{ID: []string{"o1", "o2", "o3", "o4", "o9"}[rng.IntN(5)]},
			Created: when(),
			Managed: rng.IntN(8) == 0,
		}
		if rng.IntN(10) == 0 {
			tk.ID = "self"
		}
		if rng.IntN(3) > 0 {
			lu := when()
			tk.LastUsed = &lu
		}
		switch rng.IntN(3) {
		case 0:
			tk.Scope = pat.Scopes{Null: true}
		case 1:
			tk.Scope = pat.ScopesOf("sp:scopes:all")
		default:
			tk.Scope = pat.ScopesOf("idn:sources:read")
		}
		switch rng.IntN(3) {
		case 0:
			tk.UserAwareTokenNeverExpires = bp(true)
		case 1:
			e := now.Add(time.Duration(rng.Int64N(int64(60*Day))) - 10*Day)
			tk.ExpirationDate = &e
		}
		out[i] = tk
	}
	return out
}
