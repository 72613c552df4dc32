package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"github.com/patjanitor/patjanitor/internal/approval"
	"github.com/patjanitor/patjanitor/internal/plan"
)

// approveDaemon is a Daemon with only what POST /approve uses; got records
// what reached the Approve function.
func approveDaemon(got *[][2][]byte) *Daemon {
	return &Daemon{
		log:             zap.NewNop(),
		enableLifecycle: true,
		approving:       make(chan struct{}, maxApproving),
		timeouts:        defaultHTTPTimeouts,
		approve: func(_ context.Context, p, s []byte) (Approved, error) {
			*got = append(*got, [2][]byte{p, s})
			return Approved{Path: "approved/x.json"}, nil
		},
	}
}

func form(t testing.TB, parts ...string) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for i := 0; i+1 < len(parts); i += 2 {
		fw, err := mw.CreateFormFile(parts[i], parts[i])
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(fw, parts[i+1])
	}
	_ = mw.Close()
	return mw.FormDataContentType(), b.Bytes()
}

// The parts of POST /approve are read up to the limits of the files they
// are, the same limits as where those files are read from disk (not copies
// that drift), and a form that is not exactly a plan and a sig is refused
// before anything is judged.
func TestApprovePartLimits(t *testing.T) {
	if l, _, _ := approvePartLimit("plan"); l != plan.MaxFileBytes {
		t.Errorf("plan part limit %d; want plan.MaxFileBytes %d", l, plan.MaxFileBytes)
	}
	if l, _, _ := approvePartLimit("sig"); l != approval.MaxFileBytes {
		t.Errorf("sig part limit %d; want approval.MaxFileBytes %d", l, approval.MaxFileBytes)
	}
	if maxApproveBytes < plan.MaxFileBytes+approval.MaxFileBytes {
		t.Errorf("maxApproveBytes %d is less than its two parts", maxApproveBytes)
	}
	for _, tc := range []struct {
		name  string
		parts []string
		code  int
		want  string
	}{
		{"ok", []string{"plan", "P", "sig", "S"}, http.StatusAccepted, "stored approved/x.json"},
		{"sig at its limit", []string{"plan", "P", "sig", strings.Repeat("s", approval.MaxFileBytes)}, http.StatusAccepted, "stored"},
		{"sig one byte over", []string{"plan", "P", "sig", strings.Repeat("s", approval.MaxFileBytes+1)}, http.StatusRequestEntityTooLarge, "the sig part is larger than 1 MiB, the most a signature file may be"},
		{"no sig", []string{"plan", "P"}, http.StatusBadRequest, "no sig part"},
		{"two plans", []string{"plan", "P", "plan", "Q", "sig", "S"}, http.StatusBadRequest, `two "plan" parts`},
		{"another part", []string{"plan", "P", "note", "N", "sig", "S"}, http.StatusBadRequest, `unexpected part "note"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got [][2][]byte
			d := approveDaemon(&got)
			ct, body := form(t, tc.parts...)
			req := httptest.NewRequest(http.MethodPost, "/approve", bytes.NewReader(body))
			req.Header.Set("Content-Type", ct)
			w := httptest.NewRecorder()
			d.serveApprove(w, req)
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
				t.Fatalf("%d %s; want %d %q", w.Code, w.Body, tc.code, tc.want)
			}
			if n := len(got); (tc.code == http.StatusAccepted) != (n == 1) {
				t.Fatalf("Approve called %d times", n)
			}
		})
	}
}

// FuzzApproveForm: whatever the body, POST /approve answers (no panic), and
// hands Approve a plan and a signature file within their limits or nothing.
func FuzzApproveForm(f *testing.F) {
	ct, body := form(f, "plan", "P", "sig", "S")
	boundary := strings.TrimPrefix(ct, "multipart/form-data; boundary=")
	f.Add(boundary, body)
	f.Add(boundary, body[:len(body)/2])
	f.Add("b", []byte("--b\r\nContent-Disposition: form-data; name=\"sig\"\r\n\r\nx\r\n--b--\r\n"))
	f.Fuzz(func(t *testing.T, boundary string, body []byte) {
		var got [][2][]byte
		d := approveDaemon(&got)
		req := httptest.NewRequest(http.MethodPost, "/approve", bytes.NewReader(body))
		req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		w := httptest.NewRecorder()
		d.serveApprove(w, req)
		switch w.Code {
		case http.StatusAccepted:
			if len(got) != 1 || len(got[0][0]) > plan.MaxFileBytes || len(got[0][1]) > approval.MaxFileBytes {
				t.Fatalf("202 with %d submissions", len(got))
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if len(got) != 0 {
				t.Fatalf("%d, yet Approve was called", w.Code)
			}
		default:
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}

// With basic_auth_users, a POST /approve without valid credentials is
// answered 401 by the web config's check before the handler runs: it takes
// none of the two places and none of its body is read (a client that asked
// Expect: 100-continue is never told to send it), so that clients who
// cannot log in cannot keep reviewers out, however slowly they send.
func TestHostileApproveEndpointUnauthenticatedTakesNoPlace(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webCfg := filepath.Join(dir, "web.yml")
	writeFile(t, webCfg, "basic_auth_users:\n  alice: "+string(hash)+"\n")
	var got [][2][]byte
	var mu sync.Mutex
	h := newHarness(t, configYAML("@daily", policyYAML("a", "report", "")), func(o *Options) {
		o.WebConfigFile = webCfg
		o.EnableLifecycle = true
		o.Approve = func(_ context.Context, p, s []byte) (Approved, error) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, [2][]byte{p, s})
			return Approved{Path: "approved/x.json"}, nil
		}
	})
	h.run()
	addr := h.d.Addr().String()
	ct, body := form(t, "plan", "P", "sig", "S")
	// Three clients without credentials (one more than the places), each
	// announcing a large body: one asks to be told to send it, the others
	// send its first bytes and then nothing.
	answer := func(expect bool, auth string) string {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		head := fmt.Sprintf("POST /approve HTTP/1.1\r\nHost: janitor\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s", ct, 64<<20, auth)
		if expect {
			head += "Expect: 100-continue\r\n\r\n"
		} else {
			head += "\r\n" + string(body[:len(body)/2])
		}
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
		// Generous: bcrypt under -race on a busy machine. A place taken
		// and the body awaited would answer 408 only after a minute.
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("no answer to an unauthenticated POST /approve (expect %v): %v", expect, err)
		}
		return line
	}
	for i, c := range []struct {
		expect bool
		auth   string
	}{
		{true, ""},
		{false, ""},
		{false, "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("alice:wrong")) + "\r\n"},
	} {
		if line := answer(c.expect, c.auth); !strings.HasPrefix(line, "HTTP/1.1 401 ") {
			t.Errorf("unauthenticated POST /approve %d: %q; want 401 at once (not 100 Continue, nor a read body)", i, line)
		}
	}
	if n := len(h.d.approving); n != 0 {
		t.Errorf("%d places taken by unauthenticated clients still connected", n)
	}
	// The reviewer is let in: no 503 while those clients stay connected.
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/approve", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	req.SetBasicAuth("alice", "s3cret-pass")
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /approve as alice beside the unauthenticated clients: %d %s", resp.StatusCode, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || string(got[0][0]) != "P" || string(got[0][1]) != "S" {
		t.Fatalf("Approve received %q; want alice's plan and sig once", got)
	}
}

// The reasons a POST /approve form is refused quote what the client sent
// (a part's name, a malformed header line), and mime/multipart lets a
// part's headers run to 10 MiB: the refusal was logged whole, each control
// byte quoted as four, so a 1 MiB header had the daemon log 4 MiB (and
// answer it) for every such request from anyone who reaches the port. The
// reason is clipped, and still says what was wrong.
func TestHostileApproveEndpointLongPartHeaderIsNotLoggedWhole(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"a part named with 1 MiB", "--B\r\nContent-Disposition: form-data; name=\"" + strings.Repeat("n", 1<<20) + "\"\r\n\r\nx\r\n--B--\r\n", `unexpected part "nnn`},
		{"a malformed header line of 1 MiB of control bytes", "--B\r\nContent-Disposition: form-data; name=\"plan\"\r\n" + strings.Repeat("\x01", 1<<20) + "\r\n\r\nx\r\n--B--\r\n", "read the form: malformed MIME header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got [][2][]byte
			d := approveDaemon(&got)
			core, logs := observer.New(zap.WarnLevel)
			d.log = zap.New(core)
			req := httptest.NewRequest(http.MethodPost, "/approve", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "multipart/form-data; boundary=B")
			rec := httptest.NewRecorder()
			d.serveApprove(rec, req)
			out := rec.Body.String()
			if rec.Code != http.StatusBadRequest || !strings.Contains(out, tc.want) || len(out) > 2048 {
				t.Errorf("answer %d, %d bytes, %.200q; want 400 of at most 2 KiB saying %q", rec.Code, len(out), out, tc.want)
			}
			entries := logs.All()
			if len(entries) != 1 {
				t.Fatalf("%d log entries; want the refusal once", len(entries))
			}
			var logged int
			for _, f := range entries[0].Context {
				logged += len(f.String) + len(fmt.Sprint(f.Interface))
			}
			if logged > 2048 || !strings.Contains(entries[0].ContextMap()["error"].(string), tc.want) {
				t.Errorf("logged %d bytes of fields (%.200v); want at most 2 KiB saying %q", logged, entries[0].ContextMap(), tc.want)
			}
			if len(got) != 0 {
				t.Errorf("Approve called with %d submissions", len(got))
			}
		})
	}
}
