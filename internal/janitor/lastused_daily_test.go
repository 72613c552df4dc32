package janitor_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/api"
	"github.com/patjanitor/patjanitor/internal/janitor"
	"github.com/patjanitor/patjanitor/internal/pat"
	"github.com/patjanitor/patjanitor/internal/policy"
	"github.com/patjanitor/patjanitor/internal/secret"
)

// TestUnusedForUnderADayIsRefused: the tenant updates lastUsed at most once
// a day (documented; the simulator keeps the first use of each UTC day), so
// a token in use all day still shows this morning's lastUsed in the evening.
// A policy "unused for 12h" then matched it and deleted a token used an hour
// before. A lastUsed threshold under a day is refused when the config is
// loaded, naming the file, line, policy and field: the tenant receives
// nothing and nothing is journaled.
func TestUnusedForUnderADayIsRefused(t *testing.T) {
	e := newEnv(t, "policies:\n  - {name: placeholder, match: {unusedFor: 90d}, action: report}\n", envOpts{})
	const busy, busySecret = "b0000000000000000000000000000001", "busy-secret"
	e.sim.Add(pat.Token{ID: busy, Name: "ci-deploy", Owner: pat.Owner{Type: "IDENTITY", ID: "owner-1", Name: "Owner 1"},
		Created: t0.Add(-30 * day), Scope: pat.ScopesOf("idn:sources:read")}, busySecret)

	// The token is used (it mints an access token) at 03:00 and again at
	// 22:00 of the same day.
	use := func() {
		t.Helper()
		c, err := api.New(api.Config{BaseURL: e.url, Version: pat.V3, ClientID: busy, ClientSecret: secret.New(busySecret),
			RateLimit: api.RateLimit{Requests: -1}, Sleep: noSleep, Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Caller(context.Background()); err != nil {
			t.Fatalf("use the token: %v", err)
		}
	}
	use()
	e.clock.Set(t0.Add(19 * time.Hour))
	use()
	tok, _ := e.sim.Token(busy)
	if tok.LastUsed == nil || !tok.LastUsed.Equal(t0) {
		t.Fatalf("lastUsed after a use at 03:00 and one at 22:00 = %v, want %s (updated at most once a day)", tok.LastUsed, pat.FormatTime(t0))
	}
	e.clock.Set(t0.Add(20*time.Hour + 30*time.Minute)) // 23:30, an hour and a half after the last use

	for _, field := range []string{"unusedFor", "lastUsedOlderThan"} {
		body := "tenant:\n  url: http://127.0.0.1:1\n  clientId: " + e.admin.ClientID + "\n" +
			"limits: {maxActionsPercent: 0}\npolicies:\n  - name: idle-12h\n    mode: enforce\n    match:\n      " + field + ": 12h\n    action: delete\n"
		cfg, err := policy.Parse("test.yaml", []byte(body))
		if err == nil {
			// The old behaviour: the config loads and the run deletes a
			// token used an hour and a half ago.
			e.cfg = cfg
			if _, err := e.engine().Run(context.Background(), janitor.RunInput{}); err != nil {
				t.Logf("%s: 12h: run: %v", field, err)
			}
		} else {
			want := `test.yaml:9: policies[0] "idle-12h": match.` + field + `: 12h is shorter than a day`
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "lastUsed at most once a day") {
				t.Errorf("%s: 12h: error = %v, want it to contain %q and say why", field, err, want)
			}
		}
		if !e.present(busy) {
			t.Fatalf("%s: 12h deleted a token used an hour and a half ago", field)
		}
		e.requireNoMutations()
		if recs := e.journalRecords(); len(recs) != 0 {
			t.Fatalf("%s: 12h: the journal holds %d records, want none", field, len(recs))
		}
	}
}
