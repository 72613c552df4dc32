package cli

import (
	"net/http"
	"os"
	"strings"
	"testing"
)

// POST /approve under a path that is not clean ("//approve", dot segments,
// a trailing slash), with a plan the two reviewers signed: the
// daemon's mux answers such a path with a redirect to its cleaned form, or
// 404. What a client (or a proxy in front) that follows it is sent to must
// be a path of this daemon, never another host (a Location of
// "//evil.example/…" is a network path, where curl -L would hand over the
// Basic credentials),
// and nothing is stored, sent or journaled on the way. A guard: no defect
// (net/http cleans to a single-slash path).
func TestHostileApproveEndpointUncleanPathRedirectsOnlyHere(t *testing.T) {
	a := newApproveServe(t, nil)
	planData, err := os.ReadFile(a.planFile)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := os.ReadFile(a.planFile + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	body := partHeader("plan") + string(planData) + "\r\n" + partHeader("sig") + string(sig) + "\r\n--" + testBoundary + "--\r\n"
	redirected := 0
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"//approve", "/x/../approve", "/./approve", "/approve/", "/evil.example/../approve"} {
		req, err := http.NewRequest(http.MethodPost, a.p.base+"/approve", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		// Sent as written, not cleaned by the client. (An Opaque of
		// "//host/…" would be sent in absolute form, to this daemon.)
		req.URL.Opaque = path
		req.Header.Set("Content-Type", "multipart/form-data; boundary="+testBoundary)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode/100 == 3 && loc == "/approve" {
			redirected++
		}
		switch {
		case resp.StatusCode/100 == 2:
			t.Errorf("POST %s answered %d: a submission taken under an unclean path", path, resp.StatusCode)
		case resp.StatusCode/100 == 3 && (!strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.Contains(loc, "://")):
			t.Errorf("POST %s redirected to %q: not a path of this daemon", path, loc)
		}
	}
	if redirected == 0 {
		t.Error("no unclean path was redirected to /approve: the test checks no redirect")
	}
	a.nothingDone(t)
}
