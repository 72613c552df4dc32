package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/idnsim"
	"github.com/patjanitor/patjanitor/internal/pat"
)

// The bulk update goes to the v1 path whatever version the client lists
// with, as application/json {ids, patch}, and returns the tokens answered.
func TestSimBulkUpdateTokens(t *testing.T) {
	for _, v := range []pat.APIVersion{pat.V3, pat.V2025, pat.V1} {
		t.Run(string(v), func(t *testing.T) {
			env := newSimEnv(t, idnsim.Options{})
			env.sim.Seed(30, 1)
			c, _ := env.client(t, func(cfg *Config) { cfg.Version = v })
			admin := env.sim.Admin().ClientID
			var ids []string
			for _, tk := range env.sim.Tokens() {
				if tk.ID != admin && !tk.Managed && len(ids) < 3 {
					ids = append(ids, tk.ID)
				}
			}
			exp := env.clock.Now().Add(14 * 24 * time.Hour)
			got, err := c.BulkUpdateTokens(t.Context(), []string{ids[2], ids[0], ids[1]},
				[]pat.PatchOp{pat.SetExpiration(exp)})
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []string
			for _, tk := range got {
				gotIDs = append(gotIDs, tk.ID)
				if tk.ExpirationDate == nil || !tk.ExpirationDate.Equal(exp) {
					t.Errorf("token %s answered expirationDate %v", tk.ID, tk.ExpirationDate)
				}
			}
			if !slices.Equal(gotIDs, ids) {
				t.Fatalf("answered %v, want %v (sorted)", gotIDs, ids)
			}
			reqs := apiRequests(env.requests())
			r := reqs[len(reqs)-1]
			if r.Method != http.MethodPatch || r.Path != BulkPath || r.ContentType != "application/json" || r.Status != 200 {
				t.Fatalf("sent %s %s (%s) -> %d", r.Method, r.Path, r.ContentType, r.Status)
			}
			var body struct {
				IDs   []string
				Patch []map[string]any
			}
			if err := json.Unmarshal(r.Body, &body); err != nil || len(body.IDs) != 3 || body.Patch[0]["value"] != pat.FormatTime(exp) {
				t.Fatalf("body %s (%v)", r.Body, err)
			}
			for _, id := range ids {
				if st, _ := env.sim.Token(id); st.ExpirationDate == nil || !st.ExpirationDate.Equal(exp) {
					t.Errorf("stored %s: %v", id, st.ExpirationDate)
				}
			}
		})
	}
}

// Requests the tenant would refuse are refused before sending.
func TestBulkUpdateTokensRefusedLocally(t *testing.T) {
	env := newSimEnv(t, idnsim.Options{})
	c, _ := env.client(t, nil)
	exp := []pat.PatchOp{pat.SetExpiration(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))}
	many := make([]string, 26)
	for i := range many {
		many[i] = fmt.Sprintf("%032x", i)
	}
	cases := []struct {
		ids []string
		ops []pat.PatchOp
	}{
		{nil, exp},
		{many, exp},
		{[]string{"a", "A"}, exp},
		{[]string{"a", " "}, exp},
		{[]string{"a"}, nil},
		{[]string{"a"}, []pat.PatchOp{pat.SetScopes([]string{"x"})}},
		{[]string{"a"}, []pat.PatchOp{pat.Rename("x")}},
	}
	for i, tc := range cases {
		if _, err := c.BulkUpdateTokens(t.Context(), tc.ids, tc.ops); err == nil {
			t.Errorf("case %d: no error", i)
		}
	}
	if n := len(apiRequests(env.requests())); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
	// The tenant's 400 (an unknown id) is an *Error.
	_, err := c.BulkUpdateTokens(t.Context(), []string{"ffffffffffffffffffffffffffffffff"}, exp)
	var aerr *Error
	if !errors.As(err, &aerr) || aerr.StatusCode != 400 {
		t.Fatalf("unknown id: %v", err)
	}
}
