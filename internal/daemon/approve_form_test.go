package daemon

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"

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
		timeouts:        DefaultHTTPTimeouts,
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
