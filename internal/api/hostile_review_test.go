package api

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patjanitor/patjanitor/internal/pat"
)

// A hostile tenant answers a PATCH with 200 and the bearer token (and its
// base64) in the token's name: the answer does not confirm the change, and
// the error that says so quotes what came back. Only error bodies were
// redacted, so the access token reached the error, and with it the journal's
// outcome and the logs (invariant 7).
func TestHostilePatchAnswerEchoesAccessToken(t *testing.T) {
	ft := newFakeTenant(t, func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		name := "stolen " + tok + " " + base64.StdEncoding.EncodeToString([]byte(tok))
		writeJSON(w, http.StatusOK, `{"id":"t1","name":"`+name+`","scope":["sp:scopes:default"],"owner":{"type":"IDENTITY","id":"o","name":"O"},"created":"2026-01-01T00:00:00.000Z","lastUsed":null,"managed":false}`)
	})
	c, _ := newTestClient(t, ft.srv.URL, nil)
	_, err := c.PatchToken(t.Context(), "t1", []pat.PatchOp{pat.Rename("renamed")})
	if err == nil {
		t.Fatal("an answer with another name was taken for the change")
	}
	for _, f := range []string{"access-1", base64.StdEncoding.EncodeToString([]byte("access-1"))} {
		if strings.Contains(err.Error(), f) {
			t.Errorf("the access token (%s) is in the error: %v", f, err)
		}
	}
}

// The same for the bulk update's answer, which the engine quotes per token.
func TestHostileBulkAnswerEchoesAccessToken(t *testing.T) {
	ft := newFakeTenant(t, func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		writeJSON(w, http.StatusOK, `[{"id":"t1","name":"`+tok+`","scope":null,"owner":{"type":"IDENTITY","id":"o","name":"O"},"created":"2026-01-01T00:00:00.000Z","lastUsed":null,"expirationDate":"`+tok+`"}]`)
	})
	c, _ := newTestClient(t, ft.srv.URL, nil)
	_, err := c.BulkUpdateTokens(t.Context(), []string{"t1"}, []pat.PatchOp{pat.SetExpiration(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))})
	if err != nil && strings.Contains(err.Error(), "access-1") {
		t.Errorf("the access token is in the error: %v", err)
	}
}

// A one-object answer larger than its bound (1 MiB) is refused as too large,
// not reported as a body that broke off ("unexpected EOF"), and not asked
// for again.
func TestHostileOversizeSingleAnswerSaysTooLarge(t *testing.T) {
	var gets atomic.Int32
	ft := newFakeTenant(t, func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		writeJSON(w, http.StatusOK, `{"id":"c1","name":"`+strings.Repeat("a", 2<<20)+`"}`)
	})
	c, _ := newTestClient(t, ft.srv.URL, nil)
	_, err := c.GetOAuthClient(t.Context(), "c1")
	if !errors.Is(err, ErrMalformedResponse) || !strings.Contains(err.Error(), "the body is larger than 1048576 bytes") {
		t.Fatalf("GetOAuthClient: %v, want a malformed answer that says it is too large", err)
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("the tenant received %d GETs, want 1", n)
	}
}
