package api

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// A hostile tenant answers an API client's disable (PATCH /enabled) with
// 200 and the bearer token, and its base64, as the client's id. The answer
// describes another client, so the disable is not applied, and the error
// that says so quotes the id that came back: it must not carry the access
// token into the journal's outcome and the logs (invariant 7). A guard: no
// defect (the decode error of a success body is redacted with the error
// bodies'); a change that dropped that redaction for the API client's
// answer would fail here.
func TestHostileClientDisableAnswerEchoesAccessTokenAsID(t *testing.T) {
	var seen []string
	ft := newFakeTenant(t, func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		seen = append(seen, r.Method+" "+r.URL.Path)
		id := "c-" + tok + "-" + base64.StdEncoding.EncodeToString([]byte(tok))
		writeJSON(w, http.StatusOK, `{"id":"`+id+`","name":"n","grantTypes":["CLIENT_CREDENTIALS"],"scope":null,"internal":false,"enabled":false,"created":"2026-01-01T00:00:00.000Z","lastUsed":null}`)
	})
	c, _ := newTestClient(t, ft.srv.URL, nil)
	_, err := c.SetOAuthClientEnabled(t.Context(), "c1", false)
	if err == nil {
		t.Fatal("an answer describing another API client was taken for the disable")
	}
	if !errors.Is(err, ErrMalformedResponse) && !errors.Is(err, ErrUnconfirmed) {
		t.Errorf("error %v, want one matching ErrMalformedResponse or ErrUnconfirmed", err)
	}
	if !strings.Contains(err.Error(), "API client") {
		t.Errorf("error %v does not say the answer describes another API client", err)
	}
	for _, f := range []string{"access-1", base64.StdEncoding.EncodeToString([]byte("access-1"))} {
		if strings.Contains(err.Error(), f) {
			t.Errorf("the access token (%s) is in the error: %v", f, err)
		}
	}
	if len(seen) == 0 || seen[0] != "PATCH /v3/oauth-clients/c1" {
		t.Errorf("the tenant received %v, want PATCH /v3/oauth-clients/c1", seen)
	}
}
