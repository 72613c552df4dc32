package redirect

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestNoFollowAndDescribe(t *testing.T) {
	var hits []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits = append(hits, r.URL.Path)
		switch r.URL.Path {
		case "/abs":
			http.Redirect(w, r, "https://evil.example:8443/steal?token=s3cr3t", http.StatusTemporaryRedirect)
		case "/rel":
			http.Redirect(w, r, "/v3/personal-access-tokens/own?x=1", http.StatusFound)
		case "/none":
			w.WriteHeader(http.StatusMovedPermanently)
		case "/bad":
			w.Header().Set("Location", "http://[::1")
			w.WriteHeader(http.StatusSeeOther)
		}
	}))
	defer srv.Close()
	caller := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
	c := NoFollow(caller, 0)
	if caller.CheckRedirect == nil || c == caller {
		t.Fatal("NoFollow changed the caller's client")
	}
	u, _ := url.Parse(srv.URL)
	for path, want := range map[string]string{
		"/abs":  "307 Temporary Redirect to host evil.example:8443 (redirects are not followed)",
		"/rel":  "302 Found to host " + u.Host + " (redirects are not followed)",
		"/none": "301 Moved Permanently without a Location (redirects are not followed)",
		"/bad":  "303 See Other to an unparseable Location (redirects are not followed)",
	} {
		resp, err := c.Post(srv.URL+path, "text/plain", strings.NewReader("secret=x"))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if !Is(resp.StatusCode) || Describe(resp) != want {
			t.Errorf("%s: %d %q, want %q", path, resp.StatusCode, Describe(resp), want)
		}
	}
	if len(hits) != 4 {
		t.Errorf("server hits %v: a redirect was followed", hits)
	}
	if NoFollow(nil, 7).Timeout != 7 || Is(200) || Is(400) {
		t.Error("NoFollow(nil) or Is is wrong")
	}
}

// Describe is DescribeStatus for the answer itself.
func Describe(resp *http.Response) string {
	return DescribeStatus(resp.StatusCode, Host(resp))
}
