package idnsim

import (
	"net/http"
	"strings"
	"testing"
)

// AnyCaseIDs: the OAuth client_id and a token's path id match without regard
// to case; by default they must match exactly.
func TestAnyCaseIDs(t *testing.T) {
	for _, anyCase := range []bool{false, true} {
		e := newEnv(t, Options{AnyCaseIDs: anyCase, RateLimit: -1})
		a := e.sim.Admin()
		r := e.mintRaw(strings.ToUpper(a.ClientID), a.ClientSecret)
		if ok := r.status == http.StatusOK; ok != anyCase {
			t.Fatalf("anyCase %v: login with the client id in capitals: %d %s", anyCase, r.status, r.body)
		}
		id := "ab12cd34ef56ab12cd34ef56ab12cd34"
		e.sim.Add(tokenFor(id, "o1"), "")
		got := e.do(http.MethodDelete, "/v3/personal-access-tokens/"+strings.ToUpper(id), e.admin(), "", "")
		want := http.StatusNotFound
		if anyCase {
			want = http.StatusNoContent
		}
		if got.status != want {
			t.Fatalf("anyCase %v: DELETE in capitals: %d %s, want %d", anyCase, got.status, got.body, want)
		}
		if _, present := e.sim.Token(id); present == anyCase {
			t.Fatalf("anyCase %v: token present %v after the DELETE", anyCase, present)
		}
	}
}
